#!/usr/bin/python3
"""Test helpers for systemd's notify protocol (sd_notify(3)), without systemd.

  notify-helper.py listen SOCKET LOG [--on-ready CMD...]
      Binds a datagram socket at SOCKET, as systemd does for $NOTIFY_SOCKET,
      and appends each message to LOG as "<monotonic seconds> <line>" (one
      line per assignment). On the first READY=1 it runs CMD and writes its
      output to LOG.ready before reading on, so what CMD sees is the state at
      READY time. Runs until killed.
  notify-helper.py freeze TID SECONDS
      Stops one thread (not its process) for SECONDS with ptrace
      (PTRACE_SEIZE + PTRACE_INTERRUPT), then lets it go: a worker stuck
      while the rest of xbrd runs."""
import ctypes
import os
import socket
import subprocess
import sys
import time


def listen(path, log, on_ready):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    ready_done = False
    with open(log, "a", buffering=1) as out:
        out.write("%.3f LISTENING\n" % time.monotonic())
        while True:
            msg = s.recv(4096).decode(errors="replace")
            now = time.monotonic()
            for line in msg.split("\n"):
                if line:
                    out.write("%.3f %s\n" % (now, line))
            if "READY=1" in msg.split("\n") and on_ready and not ready_done:
                ready_done = True
                r = subprocess.run(on_ready, capture_output=True, text=True)
                with open(log + ".ready", "w") as f:
                    f.write(r.stdout)


def freeze(tid, seconds):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
    if libc.ptrace(PTRACE_SEIZE, tid, None, None) < 0:
        sys.exit("PTRACE_SEIZE %d: %s" % (tid, os.strerror(ctypes.get_errno())))
    if libc.ptrace(PTRACE_INTERRUPT, tid, None, None) < 0:
        sys.exit("PTRACE_INTERRUPT: %s" % os.strerror(ctypes.get_errno()))
    os.waitpid(tid, os.__dict__.get("__WALL", 0x40000000))
    print("frozen", flush=True)
    time.sleep(seconds)
    if libc.ptrace(PTRACE_DETACH, tid, None, None) < 0:
        sys.exit("PTRACE_DETACH: %s" % os.strerror(ctypes.get_errno()))
    print("released", flush=True)


if sys.argv[1] == "listen":
    cmd = sys.argv[sys.argv.index("--on-ready") + 1:] if "--on-ready" in sys.argv else None
    listen(sys.argv[2], sys.argv[3], cmd)
elif sys.argv[1] == "freeze":
    freeze(int(sys.argv[2]), float(sys.argv[3]))
else:
    sys.exit(__doc__)
