#!/usr/bin/env python3
"""RSS of `corralctl proxy` holding N idle keep-alive client connections.

Starts a tiny backend and the proxy, opens N connections, sends one request on each and
reads the answer (so each is a real keep-alive connection, not a half-open one), waits, then
reads the proxy's VmRSS. Usage: idle_connections.py [--connections 10000] [--corralctl PATH]
"""
import argparse, os, resource, selectors, signal, socket, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--connections", type=int, default=10000)
ap.add_argument("--corralctl", default=os.path.join(os.path.dirname(__file__), "../../build-bench/bin/corralctl"))
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 1000)), hard))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

backend_port, proxy_port = free_port(), free_port()
# The same Node.js backend as the shared harness (a Python one has a listen backlog of 5).
backend = subprocess.Popen(["node", "-e", f"""
require('http').createServer((q, s) => s.end('ok\\n')).listen({backend_port}, '127.0.0.1');
"""], start_new_session=True)
proxy = subprocess.Popen([args.corralctl, "proxy", "--listen", f"127.0.0.1:{proxy_port}",
                          "--backends", f"127.0.0.1:{backend_port}", "--threads", str(args.threads)],
                         stdout=subprocess.DEVNULL, start_new_session=True)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", proxy_port)).close(); break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.3)
    base = rss_kb(proxy.pid)
    sel = selectors.DefaultSelector()
    conns, pending = [], 0
    request = b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n"
    for i in range(args.connections):
        s = socket.create_connection(("127.0.0.1", proxy_port))
        s.sendall(request)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        conns.append(s)
        pending += 1
        # Collect the answers in batches: every connection must have served one request.
        if pending >= 500 or i == args.connections - 1:
            while pending:
                events = sel.select(timeout=10)
                if not events:
                    break
                for key, _ in events:
                    data = key.fileobj.recv(4096)
                    if not data.startswith(b"HTTP/1.1 200"):
                        raise SystemExit(f"bad answer: {data[:80]!r}")
                    sel.unregister(key.fileobj)
                    pending -= 1
    if pending: raise SystemExit(f"{pending} connections without an answer")
    time.sleep(1.0)
    rss = rss_kb(proxy.pid)
    print(f"{args.connections} idle keep-alive connections: proxy RSS {rss/1024:.1f} MB "
          f"(at start {base/1024:.1f} MB, {(rss-base)*1024/args.connections:.0f} bytes/connection)")
finally:
    for p in (proxy, backend):
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=15)
