"""One publisher sends N x SIZE bytes (default 3000 x 64 KiB) to 10 readers and one stuck
subscriber (4 KiB receive buffer, never reads) of a server running at 127.0.0.1:PORT with its
default limits (max pending 64 MiB), and prints the server's peak RSS (VmHWM, reset first
through /proc/PID/clear_refs: run as root or as the server's user) in MiB.

Usage: stuck_subscriber.py PID PORT [SIZE] [N]   (see broker/PERF.md)
"""
import socket, sys, threading, time
pid, port = int(sys.argv[1]), int(sys.argv[2])
size = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
n = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
def conn(rcvbuf=None):
    s = socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'CONNECT {"verbose":false}\r\n')
    return s
def sync(s):
    s.sendall(b"PING\r\n")
    buf = b""
    while b"PONG" not in buf:
        buf += s.recv(65536)
stuck = conn(4096); stuck.sendall(b"SUB fan 9\r\n"); sync(stuck)
total = [0]*10
def reader(i, s):
    while True:
        d = s.recv(1 << 20)
        if not d: return
        total[i] += len(d)
readers = []
for i in range(10):
    s = conn(); s.sendall(b"SUB fan 1\r\n"); sync(s)
    t = threading.Thread(target=reader, args=(i, s), daemon=True); t.start(); readers.append(s)
def hwm():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"): return int(line.split()[1]) // 1024
open(f"/proc/{pid}/clear_refs", "w").write("5")
pub = conn()
msg = b"PUB fan %d\r\n" % size + b"x" * size + b"\r\n"
t0 = time.time()
# Flow control: at most 64 messages (32 MiB) ahead of the slowest reader, so no reader is a slow
# consumer; only the stuck subscriber is.
for i in range(n):
    stall = time.time() + 15
    while min(total) < (i - min(64, (32 << 20) // size)) * size:
        time.sleep(0.0005)
        if time.time() > stall:
            sys.exit(f"readers stalled at message {i}: {[t // size for t in total]}")
    pub.sendall(msg)
sync(pub)
want = n * (size + 30)
deadline = time.time() + 60
while min(total) < n * size and time.time() < deadline:
    time.sleep(0.05)
print(f"peak {hwm()} MiB; readers got {min(total)//size}..{max(total)//size} msgs worth; {time.time()-t0:.1f}s")
