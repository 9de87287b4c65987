#!/usr/bin/env bash
# phyllod's streams outlive its idle timeout: a log follow and the event
# stream stay quiet for longer than --idle-timeout and still deliver the next
# line (libmicrohttpd used to cut them at that line: curl's exit 18, the line
# lost), while a connection that sent nothing is still closed at the timeout.
# No guest runs: the log line is written to the console file the monitor
# would write, the event is the "defined" of a VM made beside phyllod.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
lc_new_home
S=$PHYLLOME_HOME/phyllod.sock
IDLE=2
QUIET=$((IDLE * 2 + 1))

"$PHYLLO" create quiet --profile linux --no-disk --no-uefi --display none --memory 128M >/dev/null 2>&1
ok $? "a VM to follow"
pd_start --idle-timeout "$IDLE"; ok $? "phyllod starts with --idle-timeout $IDLE"

# The follow: one line at once, then a quiet spell longer than the timeout.
fo=$PHYLLOME_HOME/follow.out
curl -sN --max-time 60 --unix-socket "$S" "http://localhost/v1/vms/quiet/logs?follow=1" >"$fo" 2>&1 &
fpid=$!; tap_own_pid "$fpid"
# And the event stream, subscribed before the quiet spell.
eo=$PHYLLOME_HOME/events.out
curl -sN --max-time 60 --unix-socket "$S" "http://localhost/v1/events" >"$eo" 2>&1 &
epid=$!; tap_own_pid "$epid"
# And a connection that asks nothing: the timeout still applies to it.
exec {idle_fd}> >(exec python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); t = time.monotonic()
s.settimeout(30)
try:
    d = s.recv(1)
except OSError:
    d = None
print("closed" if d == b"" else "open", round(time.monotonic() - t), file=open(sys.argv[2], "w"))
' "$S" "$PHYLLOME_HOME/idle.out")

log=$PHYLLOME_HOME/run/quiet/console.log
for _ in $(seq 50); do [ -d "$PHYLLOME_HOME/run/quiet" ] && break; sleep 0.1; done
echo "line-before" >>"$log"
for _ in $(seq 50); do grep -q "line-before" "$fo" && break; sleep 0.1; done
like "$(cat "$fo")" "\[console\] line-before" "the follow prints the first line at once"

sleep "$QUIET"
echo "line-after-quiet" >>"$log"
"$PHYLLO" create quiet2 --profile linux --no-disk --no-uefi --display none --memory 128M >/dev/null 2>&1
for _ in $(seq 100); do grep -q "line-after-quiet" "$fo" && grep -q '"quiet2"' "$eo" && break; sleep 0.1; done
like "$(cat "$fo")" "\[console\] line-after-quiet" "after ${QUIET}s of quiet (--idle-timeout $IDLE) the follow still delivers the next line"
kill -0 "$fpid" 2>/dev/null; ok $? "the follow's client is still connected"
like "$(cat "$eo")" "quiet2" "after ${QUIET}s of quiet the event stream still delivers the next event"
kill -0 "$epid" 2>/dev/null; ok $? "the event stream's client is still connected"

for _ in $(seq 100); do [ -s "$PHYLLOME_HOME/idle.out" ] && break; sleep 0.1; done
like "$(cat "$PHYLLOME_HOME/idle.out" 2>/dev/null)" "^closed [0-9]+$" "a connection that sent nothing is closed at the idle timeout"
exec {idle_fd}>&-

kill "$fpid" "$epid" 2>/dev/null
wait "$fpid" "$epid" 2>/dev/null
# phyllod lets go of the streams whose clients left: it stops at once.
kill -TERM "$PD_PID"; wait "$PD_PID"; is "$?" 0 "phyllod stops cleanly after the streams' clients left"
tap_done
