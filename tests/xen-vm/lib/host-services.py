#!/usr/bin/env python3
"""Host-side peer for the VM tests, run by run-vm.sh inside the test's network namespace.

TCP sink on ADDR:PORT (default 5002): reads a connection to EOF (the client half-closes),
answers one line "SINK bytes=N md5=HEX secs=S Bps=R" and closes. Each connection is served by
its own thread with a socket timeout; the process is bounded by its --lifetime.
"""
import argparse
import hashlib
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
    ap.add_argument("--sink-port", type=int, default=5002)
    ap.add_argument("--lifetime", type=float, default=900)
    ap.add_argument("--log", default="-")
    a = ap.parse_args()
    log = sys.stdout if a.log == "-" else open(a.log, "a")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.sink_port))
    s.listen(8)
    s.settimeout(1.0)
    log.write("%.3f sink listening on %s:%d\n" % (time.time(), a.addr, a.sink_port))
    log.flush()
    deadline = time.monotonic() + a.lifetime
    while time.monotonic() < deadline:
        try:
            conn, peer = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve_sink, args=(conn, peer, log), daemon=True).start()


if __name__ == "__main__":
    main()
