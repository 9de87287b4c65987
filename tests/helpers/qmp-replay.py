#!/usr/bin/env python3
"""A stand-in QEMU that replays a recorded capability probe.

The probe (src/qemu/caps.c) runs its QEMU as `BINARY -machine none ...
-chardev socket,id=qmp,fd=N ...` and later `BINARY -display help` and
`BINARY -audiodev help`.  Pointed at this script, with PHYLLOME_QMP_REPLAY
naming a transcript that tests/helpers/qmp-record.py made from a real QEMU,
it plays QEMU's side: each `S:` line is sent (its "id" replaced by the id of
the probe's last command), each `C:` line must match the probe's next
command as JSON (ids aside), and a help run prints the recorded `O:` lines.
A command that differs from the recording ends it with exit status 3 and
the difference on stderr.
"""
import json, os, re, socket, sys

path = os.environ.get("PHYLLOME_QMP_REPLAY")
if not path:
    sys.exit("qmp-replay: PHYLLOME_QMP_REPLAY names no transcript")
lines = open(path).read().splitlines()
args = sys.argv[1:]

if len(args) == 2 and args[1] == "help":
    on = False
    for line in lines:
        if line.startswith("HELP "):
            on = line[5:] == args[0]
        elif on and line.startswith("O: "):
            print(line[3:])
    sys.exit(0)

fd = next((int(m.group(1)) for a in args for m in [re.match(r"socket,id=qmp,fd=(\d+)$", a)] if m), None)
if fd is None:
    sys.exit("qmp-replay: no QMP chardev with fd= in the arguments")
sock = socket.socket(fileno=fd)
rd = sock.makefile("rb")
last_id = None
for n, line in enumerate(lines, 1):
    if line.startswith("HELP "):
        break
    if line.startswith("S: "):
        msg = json.loads(line[3:])
        if "id" in msg and last_id is not None:
            msg["id"] = last_id
        try:
            sock.sendall((json.dumps(msg) + "\r\n").encode())
        except OSError:
            break
    elif line.startswith("C: "):
        got = rd.readline()
        if not got:
            break       # the probe closed: it is done (quit needs no answer)
        g, want = json.loads(got), json.loads(line[3:])
        last_id = g.pop("id", None)
        want.pop("id", None)
        if g != want:
            sys.stderr.write("qmp-replay: %s:%d: the probe sent %s, the recording has %s\n"
                             % (path, n, json.dumps(g), json.dumps(want)))
            sys.exit(3)
# Like QEMU after 'quit': the connection ends with the process.
sys.exit(0)
