#!/usr/bin/env python3
"""Host-side peer for the VM tests, run by run-vm.sh inside the test's network namespace.

TCP sink on ADDR:PORT (default 5002), and on [ADDR6]:PORT with --addr6: reads a connection to
EOF (the client half-closes),
answers one line "SINK bytes=N md5=HEX secs=S Bps=R" and closes. Each connection is served by
its own thread with a socket timeout; the process is bounded by its --lifetime.
"""
import argparse
import hashlib
import select
import socket
import sys
import threading
import time


def serve_sink(conn, peer, log):
    conn.settimeout(60)
    md5 = hashlib.md5()
    n = 0
    t0 = None
    try:
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            if t0 is None:
                t0 = time.monotonic()
            n += len(data)
            md5.update(data)
        secs = (time.monotonic() - t0) if t0 is not None else 0.0
        line = "SINK bytes=%d md5=%s secs=%.3f Bps=%d\n" % (
            n, md5.hexdigest(), secs, n / secs if secs > 0 else 0)
        conn.sendall(line.encode())
        log.write("%.3f %s %s" % (time.time(), peer[0], line))
        log.flush()
    except OSError as e:
        log.write("%.3f %s error after %d bytes: %s\n" % (time.time(), peer[0], n, e))
        log.flush()
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="10.99.0.1")
    ap.add_argument("--addr6", default=None)
    ap.add_argument("--sink-port", type=int, default=5002)
    ap.add_argument("--lifetime", type=float, default=900)
    ap.add_argument("--log", default="-")
    a = ap.parse_args()
    log = sys.stdout if a.log == "-" else open(a.log, "a")
    socks = []
    for fam, addr in ((socket.AF_INET, a.addr), (socket.AF_INET6, a.addr6)):
        if not addr:
            continue
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, a.sink_port))
        s.listen(8)
        socks.append(s)
        log.write("%.3f sink listening on %s port %d\n" % (time.time(), addr, a.sink_port))
    log.flush()
    deadline = time.monotonic() + a.lifetime
    while time.monotonic() < deadline:
        ready, _, _ = select.select(socks, [], [], 1.0)
        for s in ready:
            conn, peer = s.accept()
            threading.Thread(target=serve_sink, args=(conn, peer, log), daemon=True).start()


if __name__ == "__main__":
    main()
