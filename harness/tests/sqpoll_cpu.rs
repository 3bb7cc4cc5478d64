//! Under the SQPOLL policy the kernel submission thread (`iou-sqp-<pid>`) is a thread of the
//! server process, so the CPU it burns is in the process's own accounting (`/proc/<pid>/stat`,
//! and the per-thread task-clock events the harness opens on `/proc/<pid>/task`): CPU per
//! message includes it. This shows it, and that `--uring-sqpoll-cpu` binds the thread.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, Server};

/// (utime + stime) in clock ticks from a `stat` file.
fn cpu_ticks(stat: &str) -> u64 {
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat has a command") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// The last CPU a thread ran on (field 39 of `stat`).
fn last_cpu(stat: &str) -> usize {
    let rest = &stat[stat.rfind(')').expect("stat has a command") + 2..];
    rest.split_whitespace()
        .nth(36)
        .expect("processor")
        .parse()
        .expect("cpu")
}

#[test]
fn the_sqpoll_thread_is_a_server_thread_and_its_cpu_is_the_servers() {
    let server = Server::start(
        "uring",
        &["--uring-policy", "sqpoll", "--uring-sqpoll-cpu", "0"],
    );
    let pid = server.pid();
    let mut sub = Raw::connect(server.addr);
    sub.send(b"CONNECT {\"verbose\":false}\r\nSUB cpu.x 1\r\n");
    sub.sync();
    let mut publisher = Raw::connect(server.addr);
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    // Traffic for a while, so the submission thread has work (it spins while busy).
    let until = Instant::now() + Duration::from_millis(500);
    let mut sent = 0;
    while Instant::now() < until {
        publisher.send(b"PUB cpu.x 2\r\nhi\r\n");
        sent += 1;
    }
    publisher.sync();
    for _ in 0..sent {
        assert_eq!(sub.line(), "MSG cpu.x 1 2");
        assert_eq!(sub.bytes(4), b"hi\r\n");
    }

    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("server tasks");
    let sqp = tasks
        .filter_map(|t| t.ok())
        .find(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("iou-sqp"))
        })
        .expect("an iou-sqp thread among the server's threads");
    let thread_stat = std::fs::read_to_string(sqp.path().join("stat")).expect("thread stat");
    let process_stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let thread = cpu_ticks(&thread_stat);
    assert!(
        thread > 0,
        "the submission thread used no CPU: {thread_stat}"
    );
    assert!(
        cpu_ticks(&process_stat) >= thread,
        "process CPU {} < its submission thread's {thread}",
        cpu_ticks(&process_stat)
    );
    assert_eq!(last_cpu(&thread_stat), 0, "bound to CPU 0: {thread_stat}");
    let status = server.terminate();
    assert!(status.success(), "uring exited with {status}");
}
