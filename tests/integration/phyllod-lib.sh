# Sourced after tap.sh and lifecycle-lib.sh by the tests that run a phyllod
# of their own for their home: PHYLLOD, S (its socket) and pd_start.
PHYLLOD=${PHYLLOD:-$BUILDDIR/phyllod}
[ -x "$PHYLLOD" ] || skip_all "phyllod is not built ($PHYLLOD)"

# pd_start [ARGS...]: starts phyllod (its pid in PD_PID, owned by the test)
# and returns once it has said whether it serves: its first stderr line goes
# to PD_LINE, the rest to $PHYLLOME_HOME/phyllod.log.  True when it serves.
pd_start() {
  coproc PD { exec "$PHYLLOD" "$@" 2>&1; }
  PD_PID=$PD_PID
  tap_own_pid "$PD_PID"
  local fd
  exec {fd}<&"${PD[0]}"   # coproc fds are not inherited by subshells; a dup is
  read -r -t 10 -u "$fd" PD_LINE
  cat <&"$fd" >>"$PHYLLOME_HOME/phyllod.log" &
  exec {fd}<&-
  [[ $PD_LINE == "phyllod: serving "* ]]
}

# pd_console PATH [TAG]: GET PATH (a console route) on $S with the Upgrade to
# phyllome-console; prints the reply's status code.  With TAG it then types
# `echo api""con-TAG` into the stream and prints "echo: yes" once the guest's
# shell printed apicon-TAG back (60 s at most), else "echo: no".
pd_console() {
  python3 - "$S" "$1" "${2:-}" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(sys.argv[1])
s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: phyllome-console\r\n\r\n" % sys.argv[2].encode())
head = b""
while b"\r\n\r\n" not in head:
    b = s.recv(1)
    if not b: break
    head += b
print(head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else "000")
if sys.argv[3] and head.startswith(b"HTTP/1.1 101"):
    # Typed as "api""con-TAG": only the shell's output reads "apicon-TAG".
    s.sendall(b'echo api""con-%s\n' % sys.argv[3].encode())
    want, got, end = b"apicon-" + sys.argv[3].encode(), b"", time.monotonic() + 60
    while want not in got.replace(b'api""con', b"") and time.monotonic() < end:
        b = s.recv(4096)
        if not b: break
        got += b
    print("echo:", "yes" if want in got.replace(b'api""con', b"") else "no")
PY
}
