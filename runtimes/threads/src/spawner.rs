//! The broker's [`Spawner`] for the threads row: one OS thread per task.

use fanbench_broker::{ReaderTask, Spawner, WriterTask};
use fanbench_rt::Runtime;

use crate::ThreadsRuntime;

/// Starts each of a connection's tasks on a new OS thread that runs its own
/// [`ThreadsRuntime`]: the reader blocks in `recv(2)`, the writer parks until its outbound
/// queue has something and then blocks in `writev(2)`. The task value is moved to the new
/// thread and its future is built there, so the future itself need not be `Send`.
///
/// Threads are detached; each ends when its task does (the broker closes a connection by
/// shutting its socket down, which unblocks the reader). If the OS refuses a new thread the
/// task is dropped unrun, and the refusal is printed to stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSpawner;

impl ThreadSpawner {
    fn spawn(name: &str, job: impl FnOnce() + Send + 'static) {
        if let Err(e) = std::thread::Builder::new().name(name.to_owned()).spawn(job) {
            eprintln!("fanbench threads row: cannot start a {name} thread: {e}");
        }
    }
}

impl Spawner<ThreadsRuntime> for ThreadSpawner {
    fn spawn_reader(&self, task: ReaderTask<ThreadsRuntime>) {
        Self::spawn("fanbench-reader", move || {
            ThreadsRuntime::new().block_on(task.run());
        });
    }

    fn spawn_writer(&self, task: WriterTask<ThreadsRuntime>) {
        Self::spawn("fanbench-writer", move || {
            ThreadsRuntime::new().block_on(task.run());
        });
    }
}
