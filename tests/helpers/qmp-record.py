#!/usr/bin/env python3
"""Records what a QEMU binary answers Phyllome's capability probe.

Stands in for QEMU (PHYLLOME_QEMU or `phyllo caps --qemu` pointing at a
wrapper that runs `qmp-record.py REAL-QEMU TRANSCRIPT "$@"`): runs the real
QEMU with the same arguments, but with the QMP chardev's fd replaced by one
end of its own socketpair, relays every line between the probe and QEMU, and
appends them to TRANSCRIPT in tests/fixtures/qmp's replay format (C: what the
probe sent, S: what QEMU answered).  `-display help` and `-audiodev help`
runs are recorded as `HELP <option>` followed by `O: <line>` lines.  One
probe session per file (a QEMU that dies mid-probe is not recordable).
"""
import os, re, socket, subprocess, sys, threading

real, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if len(args) == 2 and args[1] == "help":
    p = subprocess.run([real] + args, capture_output=True, text=True)
    with open(out, "a") as f:
        f.write("HELP %s\n" % args[0])
        for line in p.stdout.splitlines():
            f.write("O: %s\n" % line)
    sys.stdout.write(p.stdout)
    sys.exit(p.returncode)

fd = None
for i, a in enumerate(args):
    m = re.match(r"socket,id=qmp,fd=(\d+)$", a)
    if m:
        fd = int(m.group(1))
        ours, theirs = socket.socketpair()
        args[i] = "socket,id=qmp,fd=%d" % theirs.fileno()
if fd is None:
    os.execv(real, [real] + args)
probe = socket.socket(fileno=fd)
qemu = subprocess.Popen([real] + args, pass_fds=(theirs.fileno(),))
theirs.close()
log = open(out, "a")
lock = threading.Lock()

def relay(src, dst, tag):
    buf = b""
    while True:
        data = src.recv(65536)
        if not data:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        # Logged before it is passed on: a reply is then never logged
        # before the command it answers.
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            with lock:
                log.write("%s: %s\n" % (tag, line.decode().rstrip("\r")))
                log.flush()
        dst.sendall(data)

t1 = threading.Thread(target=relay, args=(probe, ours, "C"), daemon=True)
t2 = threading.Thread(target=relay, args=(ours, probe, "S"), daemon=True)
t1.start(); t2.start()
rc = qemu.wait()
t2.join(timeout=5)
log.close()
sys.exit(rc)
