#!/usr/bin/env bash
# phyllod against the real library, QEMU and the tiny guest, over its unix
# socket with curl: every route of docs/openapi.json, errors, 100 concurrent
# clients during a start and a stop, an event stream that sees a
# guest-initiated shutdown, another uid refused, oversize and malformed
# requests, kill -9 and restart with a VM running, idle wakeups and RSS.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
lc_new_home
S=$PHYLLOME_HOME/phyllod.sock
OPENAPI=$SRCDIR/../docs/openapi.json
# the catalog routes walk a catalog whose one download stays on loopback
export PHYLLOME_CATALOG=$SRCDIR/fixtures/catalog/loopback.conf

# api METHOD PATH [BODY]: prints "STATUS BODY".
api() {
  local out code
  out=$(curl -s --max-time 120 --unix-socket "$S" -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
        -w '\n%{http_code}' "http://localhost$2")
  code=${out##*$'\n'}
  echo "$code ${out%$'\n'*}"
}
# api_file METHOD PATH FILE: the file as a binary body; prints "STATUS BODY".
api_file() {
  local out
  out=$(curl -s --max-time 120 --unix-socket "$S" -X "$1" -H 'Content-Type: application/zstd' --data-binary @"$3" \
        -w '\n%{http_code}' "http://localhost$2")
  echo "${out##*$'\n'} ${out%$'\n'*}"
}
# A bundle is tar+zstd: the zstd frame magic.
is_zstd() { [ "$(od -An -tx1 -N4 "$1" | tr -d ' ')" = 28b52ffd ]; }
status_of() { api "$@" | cut -d' ' -f1; }
body_of() { api "$@" | cut -d' ' -f2-; }

t0=$SECONDS
# A directory the walk's share may name: outside the Phyllome home and under
# a directory a definition may name files in ($HOME, per user: allow-paths).
SHAREHOME=$(mktemp -d /tmp/phyllome-test-sharehome.XXXXXX)
trap 'rm -rf "$SHAREHOME"; lc_cleanup' EXIT
mkdir "$SHAREHOME/walkshare"
HOME=$SHAREHOME pd_start
ok $? "phyllod starts and serves $S"
is "$(stat -c %a "$S")" 600 "the per-user socket is mode 0600"

# ---- every route of the OpenAPI document, in its order, against a VM "walk"
sub() { sed -e "s|\$KERNEL|$GUEST/vmlinux|g" -e "s|\$INITRD|$GUEST/initrd.img|g" -e "s|\$SHARE|$SHAREHOME/walkshare|g"; }
lc_vms+=(walk)
walked=0
while IFS=$'\t' read -r path method; do
  ex=$(jq -r --arg p "$path" --arg m "$method" '.paths[$p][$m]["x-example-path"] // empty' "$OPENAPI")
  p=${ex:-$path}
  p=${p//\{name\}/walk}; p=${p//\{snap\}/s1}; p=${p//\{disk\}/d1}; p=${p//\{os\}/debian12}; p=${p//\{id\}/1}
  body=$(jq -c --arg p "$path" --arg m "$method" '.paths[$p][$m]["x-example-body"] // empty' "$OPENAPI" | sub)
  want=$(jq -r --arg p "$path" --arg m "$method" '.paths[$p][$m]["x-example-status"] // empty' "$OPENAPI")
  [ "$method" = delete ] && [ "$path" = "/v1/vms/{name}" ] && continue  # walked last, below
  case $path in
  */export)  # binary: kept for the import route, which the document lists next
    code=$(curl -s --max-time 120 --unix-socket "$S" -o "$PHYLLOME_HOME/walk.bundle" -w '%{http_code}' "http://localhost$p")
    r="$code $(is_zstd "$PHYLLOME_HOME/walk.bundle" && echo '{"bundle": true}' || echo 'not a bundle')";;
  /v1/vms/import)
    q=$(jq -r --arg p "$path" --arg m "$method" '.paths[$p][$m]["x-example-query"] // empty' "$OPENAPI")
    r=$(api_file POST "$p$q" "$PHYLLOME_HOME/walk.bundle");;
  */console) code=$(pd_console "$p"); r="$code {\"upgraded\": $([ "$code" = 101 ] && echo true || echo false)}";;
  *) r=$(api "${method^^}" "$p" "$body");;
  esac
  code=${r%% *}
  allowed=$(jq -r --arg p "$path" --arg m "$method" '.paths[$p][$m].responses | keys | join(" ")' "$OPENAPI")
  # A route whose example cannot succeed on every host (a PCI device, an
  # mdev) documents the status it gets instead: x-example-status.
  if [ -n "$want" ]; then good() { [ "$code" = "$want" ]; }; else good() { [[ "$code" =~ ^2 ]]; }; fi
  [[ " $allowed " == *" $code "* ]] && good && [ "$path" != /v1/events ] &&
    jq -e . >/dev/null <<<"${r#* }"
  ok $? "${method^^} $path answers $code (documented: $allowed)" || diag "${r:0:400}"
  walked=$((walked + 1))
done < <(jq -r '.paths | to_entries[] | .key as $p | .value | keys_unsorted[] | select(. != "parameters") |
               select($p != "/v1/events") | "\($p)\t\(.)"' "$OPENAPI")
lc_vms+=(walk2 walk3 walk4)
is "$(status_of DELETE /v1/vms/walk2)" 200 "the clone the walk made is deleted"
like "$("$PHYLLO" show walk3)" "name = walk3" "the walk's export, imported through the API as walk3, is a VM phyllo shows"
is "$(status_of DELETE /v1/vms/walk3)" 200 "the VM the walk imported is deleted"
is "$("$PHYLLO" show walk4 --json | jq -r .vm.uuid)" "$("$PHYLLO" show walk --json | jq -r .vm.uuid)" \
   "the walk's libvirt export, imported back through the API as walk4, keeps walk's UUID"
is "$(status_of DELETE /v1/vms/walk4)" 200 "the VM the walk imported from its libvirt export is deleted"
is "$(status_of DELETE /v1/vms/walk)" 200 "DELETE /v1/vms/{name} (walked last)"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$S" http://localhost/v1/events)
is "$code" 200 "GET /v1/events answers 200 (a stream)"
is "$(jq '[.paths[] | keys_unsorted[] | select(. != "parameters")] | length' "$OPENAPI")" "$((walked + 2))" \
   "the walk covered every route of docs/openapi.json"

# GET /v1/host has the checks of `phyllo host check --json`, 3D modes included.
is "$(body_of GET /v1/host | jq -c '[.checks[] | "\(.id) \(.status)"]')" \
   "$("$PHYLLO" host check --json | jq -c '[.checks[] | "\(.id) \(.status)"]')" \
   "GET /v1/host: the same checks and results as phyllo host check --json"
like "$(body_of GET /v1/host | jq -r '.checks[].title')" "3D: virgl" "GET /v1/host lists the 3D display modes"

# ---- errors carry the CLI's sentence and a fitting status
r=$(api GET /v1/vms/nosuch)
is "${r%% *}" 404 "unknown VM: 404"
is "$(jq -r .error.message <<<"${r#* }")" "no VM named 'nosuch' (looked in $PHYLLOME_HOME/vms)" \
   "the message is the CLI's sentence"
is "$(jq -r .error.code <<<"${r#* }")" ENOENT "the code is the errno name"
is "$(status_of GET /v1/nothing)" 404 "unknown path: 404"
is "$(status_of PATCH /v1/vms)" 405 "wrong method: 405"
is "$(status_of POST /v1/vms '{"name": "x", "profile": "nope"}')" 400 "unknown profile: 400"
r=$(api PUT /v1/vms/nosuch '{"config": "[vm]\nprofile = linux\n"}')
is "${r%% *}" 404 "PUT on an unknown VM: 404"

# Two VMs: "a" runs, "h" powers itself off right after boot (phyllome.halt).
create() {
  lc_vms+=("$1")
  api POST /v1/vms "{\"name\":\"$1\",\"profile\":\"linux\",\"no_disk\":true,\"memory\":\"256M\",\"cpus\":1,
    \"display\":\"none\",\"uefi\":false,\"kernel\":\"$GUEST/vmlinux\",\"initrd\":\"$GUEST/initrd.img\",
    \"append\":\"console=ttyS0 $2\"}" | cut -d' ' -f1
}
is "$(create a '')" 201 "POST /v1/vms creates 'a'"
is "$(create h phyllome.halt)" 201 "POST /v1/vms creates 'h'"
is "$(create a '')" 409 "creating 'a' again: 409"
r=$(api PUT /v1/vms/a '{"config": "[vm]\nprofile = linux\n[memory]\nsize = lots\n"}')
is "${r%% *}" 400 "an invalid definition: 400"
like "$(jq -r .error.message <<<"${r#* }")" "vm.conf:[0-9]+: " "the message names file:line"
is "$(grep -c lots "$PHYLLOME_HOME/vms/a/vm.conf")" 0 \
   "the refused definition did not replace the file"

# ---- events: a guest-initiated shutdown seen on the stream
ev=$PHYLLOME_HOME/events.txt
: >"$ev"        # made first: tail -f must find it whoever runs first
curl -s -N --unix-socket "$S" http://localhost/v1/events >"$ev" &
ev_pid=$!; tap_own_pid $ev_pid
timeout 10 tail -n +1 -f "$ev" | grep -m1 -q '^: phyllod events'
ok $? "the event stream opens"
t=$SECONDS
is "$(status_of POST /v1/vms/h/start)" 200 "POST start 'h' (it halts itself)"
timeout 60 tail -n +1 -f "$ev" | grep -m1 -q '"name":"h","state":"stopped"'
ok $? "the stream sees h stopped after the guest powered off ($((SECONDS - t)) s)"
h_states=$(grep '"name":"h"' "$ev" | sed 's/.*"state":"\([a-z]*\)".*/\1/' | tr '\n' ' ')
like "$h_states" "running .*stopped" "h went running -> stopped on the stream: $h_states"
is "$(jq -r .status.exit_status <<<"$(body_of GET /v1/vms/h)")" 0 "QEMU of h exited 0 (a guest poweroff, not a kill)"
like "$(grep -A1 '^event: guest' "$ev" | grep '"name":"h"' | tr '\n' ' ')" '"event":"SHUTDOWN","reason":"guest-shutdown"' \
  "the stream has h's SHUTDOWN guest event, with QEMU's reason"

# ---- 100 concurrent clients listing while 'a' starts
# The listings run in the background (their pids in many) while an action runs.
many=()
wait_jobs() { wait "${many[@]}"; many=(); }
list_many() {
  local i dir=$1
  mkdir -p "$dir"
  for i in $(seq 1 100); do
    curl -s --max-time 60 --unix-socket "$S" -o "$dir/$i.json" -w '%{http_code}' http://localhost/v1/vms >"$dir/$i.code" &
    many+=($!)
  done
}
check_many() {
  local dir=$1 bad=0 f
  for f in "$dir"/*.code; do [ "$(cat "$f")" = 200 ] || bad=$((bad + 1)); done
  for f in "$dir"/*.json; do jq -e '.vms | map(.name) | index("a") != null' "$f" >/dev/null || bad=$((bad + 1)); done
  echo "$bad"
}
t=$SECONDS
list_many "$PHYLLOME_HOME/l1"
r=$(api POST /v1/vms/a/start)
wait_jobs
is "${r%% *}" 200 "POST start 'a' during 100 listings"
is "$(check_many "$PHYLLOME_HOME/l1")" 0 "100 concurrent listings all answered 200 with 'a' ($((SECONDS - t)) s)"
is "$(jq -r .state <<<"$(body_of GET /v1/vms/a/status)")" running "a is running"
r=$(api POST /v1/vms/a/start)
is "${r%% *}" 409 "starting a running VM: 409"
like "$(jq -r .error.message <<<"${r#* }")" "VM 'a' is already running" "with the CLI's sentence"
is "$(status_of DELETE /v1/vms/a)" 409 "deleting a running VM: 409"
r=$(api GET /v1/vms/a/export)
is "${r%% *}" 409 "exporting a running VM: 409, before any byte of a bundle"
like "$(jq -r .error.message <<<"${r#* }")" "running" "with the store's sentence"
is "$(jq -r .state <<<"$(body_of POST /v1/vms/a/pause)")" paused "pause"
is "$(jq -r .state <<<"$(body_of POST /v1/vms/a/resume)")" running "resume"
timeout 20 tail -n +1 -f "$ev" | grep -m1 -q '"name":"a","state":"running","previous":"paused"'
ok $? "the stream saw a paused -> running"
# A reset changes no state; it is still an event (QMP system_reset here).
"$BUILDDIR/tests/qmp-query" "$PHYLLOME_HOME/run/a/qmp.sock" system_reset >/dev/null
ok $? "system_reset of 'a' over QMP"
timeout 20 tail -n +1 -f "$ev" | grep -m1 -q '"name":"a","event":"RESET","reason":"host-qmp-system-reset"'
ok $? "the stream saw a's RESET with its reason"
# (The rebooting guest may reset again itself: only the kind is certain here.)
like "$(jq -r '.status.guest_event | "\(.event) \(.reason) \(.count)"' <<<"$(body_of GET /v1/vms/a)")" \
   "^RESET [a-z-]+ [0-9]+$" "GET /v1/vms/a shows the last guest event with its reason and count"

# ---- another uid is refused (the socket opened to it for this check only)
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
  chmod 666 "$S"
  out=$(setpriv --reuid nobody --regid nogroup --clear-groups curl -s -w '\n%{http_code}' --unix-socket "$S" http://localhost/v1/vms)
  chmod 600 "$S"
  is "${out##*$'\n'}" 403 "uid nobody is refused with 403"
  like "${out%$'\n'*}" '"code":"EACCES".*may not use this phyllod' "with a JSON error saying why"
else
  ok 0 "# SKIP another uid: needs root, setpriv and user nobody"
fi

# ---- oversize and malformed requests; the daemon still answers after them
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'x' >"$PHYLLOME_HOME/big"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" -X POST -H 'Content-Type: application/json' \
       --data-binary @"$PHYLLOME_HOME/big" http://localhost/v1/vms)
is "$code" 413 "a 2 MiB body is refused with 413"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" -X POST -H 'Transfer-Encoding: chunked' \
       --data-binary @"$PHYLLOME_HOME/big" http://localhost/v1/vms)
is "$code" 413 "a 2 MiB chunked body is refused with 413"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" -H "X-Big: $(head -c 65536 /dev/zero | tr '\0' y)" \
       http://localhost/v1/version)
like "$code" '^4(13|31)$' "a 64 KiB header is refused ($code)"
is "$(status_of POST /v1/vms '{"name": "x"} trailing')" 400 "JSON with trailing junk: 400"
is "$(status_of POST /v1/vms '[1,2]')" 400 "a JSON array body: 400"
is "$(status_of POST /v1/vms/a/stop '{"timeout": "soon"}')" 400 "a wrongly typed member: 400"
is "$(status_of POST /v1/vms/a/stop '{"forse": true}')" 400 "an unknown member: 400"
python3 - "$S" <<'EOF'
import socket, sys
for junk in (b"GARBAGE\r\n\r\n", b"\x00\xff" * 1000 + b"\r\n\r\n", b"GET /v1/version HTTP/9.9\r\n\r\n", b"GET /v1/ver"):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1]); s.sendall(junk)
    s.shutdown(socket.SHUT_WR)
    try: s.recv(4096)
    except OSError: pass
    s.close()
EOF
is "$(status_of GET /v1/version)" 200 "phyllod still answers after malformed requests"
is "$(jq -r .state <<<"$(body_of GET /v1/vms/a/status)")" running "and a still runs"

# ---- bundles: a cut-short import adds nothing; a client leaving mid-export
lc_vms+=(big)
is "$(status_of POST /v1/vms '{"name": "big", "profile": "linux", "disk": "64M", "display": "none"}')" 201 \
   "a VM 'big' for the export checks"
# Random data does not compress: the bundle outgrows every pipe and socket buffer.
head -c $((16 * 1024 * 1024)) /dev/urandom >"$PHYLLOME_HOME/rand.raw"
qemu-img convert -f raw -O qcow2 "$PHYLLOME_HOME/rand.raw" "$PHYLLOME_HOME/vms/big/disk-system.qcow2"
ok $? "big's disk holds 16 MiB of random data"
before=$(ls -A "$PHYLLOME_HOME/vms")
curl -s --max-time 60 --unix-socket "$S" -o "$PHYLLOME_HOME/big.bundle" http://localhost/v1/vms/big/export
head -c $(($(stat -c %s "$PHYLLOME_HOME/big.bundle") / 2)) "$PHYLLOME_HOME/big.bundle" >"$PHYLLOME_HOME/half.bundle"
r=$(api_file POST '/v1/vms/import?name=half' "$PHYLLOME_HOME/half.bundle")
is "${r%% *}" 400 "half a bundle is refused with 400"
like "$(jq -r .error.message <<<"${r#* }")" "bundle" "saying the bundle is bad"
is "$(ls -A "$PHYLLOME_HOME/vms")" "$before" "and nothing was added to the home, no temporary directory left"
r=$(api_file POST '/v1/vms/import' "$PHYLLOME_HOME/big.bundle")
is "${r%% *}" 409 "importing over an existing VM: 409"
curl -s --max-time 60 --unix-socket "$S" http://localhost/v1/vms/big/export | head -c 100000 | wc -c >/dev/null
is "$(status_of GET /v1/version)" 200 "phyllod still answers after a client left mid-export"
# The export thread ends when its next write fails; wait (inotify, 20 s at most) for its staging dir to go.
python3 - "$PHYLLOME_HOME/vms/big" <<'EOF'
import ctypes, os, select, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x200)  # IN_DELETE
end = time.monotonic() + 20
while any(n.startswith(".#export") for n in os.listdir(sys.argv[1])) and time.monotonic() < end:
    if select.select([fd], [], [], max(0, end - time.monotonic()))[0]:
        os.read(fd, 65536)
EOF
is "$(ls -A "$PHYLLOME_HOME/vms/big")" "$(printf 'disk-system.qcow2\nvm.conf')" "the export's staging directory is removed"
# The CLI's export and import go through phyllod (PHYLLOME_REQUIRE_DAEMON:
# no direct fallback), streamed both ways, and give what the direct way gives.
D() { PHYLLOME_REQUIRE_DAEMON=1 "$PHYLLO" "$@"; }
D export big "$PHYLLOME_HOME/cli.bundle" >/dev/null; ok $? "phyllo export through phyllod"
PHYLLOME_NO_DAEMON=1 "$PHYLLO" export big "$PHYLLOME_HOME/direct.bundle" >/dev/null
is "$(zstd -dc "$PHYLLOME_HOME/cli.bundle" | tar -tf - | sort | tr '\n' ' ')" \
   "$(zstd -dc "$PHYLLOME_HOME/direct.bundle" | tar -tf - | sort | tr '\n' ' ')" "the same members as a direct export"
lc_vms+=(big2)
out=$(D import "$PHYLLOME_HOME/cli.bundle" --name big2); ok $? "phyllo import through phyllod: $out"
cmp -s "$PHYLLOME_HOME/vms/big/disk-system.qcow2" "$PHYLLOME_HOME/vms/big2/disk-system.qcow2"
ok $? "the imported disk is the original, byte for byte"
before=$(ls -A "$PHYLLOME_HOME/vms")
out=$(D import - --name big3 <"$PHYLLOME_HOME/half.bundle" 2>&1); rc=$?
ok $((rc == 0)) "a cut-short bundle on stdin is refused through phyllod too (exit $rc)"
like "$out" "truncated or damaged" "with the store's sentence"
is "$(ls -A "$PHYLLOME_HOME/vms")" "$before" "and nothing was added"
out=$(D export nosuch "$PHYLLOME_HOME/no.bundle" 2>&1); is "$?" 1 "exporting an unknown VM through phyllod fails"
like "$out" "no VM named 'nosuch'" "with the store's sentence"
[ ! -e "$PHYLLOME_HOME/no.bundle" ] && [ ! -e "$PHYLLOME_HOME/no.bundle.partial" ]; ok $? "and leaves no file"
is "$(status_of DELETE /v1/vms/big2)" 200 "big2 is deleted"
is "$(status_of DELETE /v1/vms/big)" 200 "big is deleted"

# ---- idle: no wakeups, small RSS
# Per thread (tid, switches): a connection thread that ends during the
# window must not count as negative wakeups, so only threads present in both
# samples are compared.
sw() {
  local t
  for t in /proc/"$PD_PID"/task/*; do
    echo "${t##*/} $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status" 2>/dev/null)"
  done | sort
}
kill $ev_pid; wait $ev_pid 2>/dev/null
sleep 1   # let the event stream's connection thread end first
a=$(sw); sleep 2; b=$(sw)
is "$(join <(echo "$a") <(echo "$b") | awk '{s += $3 - $2} END {print s + 0}')" 0 \
  "idle phyllod: no context switch in 2 s over all its threads"
rss=$(awk '/^VmRSS/ {print $2}' /proc/"$PD_PID"/status)
diag "phyllod idle RSS: $rss kB, threads: $(awk '/^Threads/ {print $2}' /proc/"$PD_PID"/status)"
if ldd "$PHYLLOD" | grep -q libasan; then
  ok 0 "# SKIP idle RSS bound: ASan's shadow memory is counted"
else
  [ "$rss" -lt 20480 ]; ok $? "idle RSS under 20 MiB ($rss kB)"
fi

# ---- kill -9 phyllod while a runs; a new one finds it and controls it
qpid=$(lc_field a qemu_pid)
kill -9 "$PD_PID"; wait "$PD_PID" 2>/dev/null
lc_alive "$qpid"; ok $? "a's QEMU survives phyllod's kill -9"
pd_start
ok $? "a new phyllod starts over the stale socket"
: >"$ev"        # made first: tail -f must find it whoever runs first
curl -s -N --unix-socket "$S" http://localhost/v1/events >"$ev" &
ev_pid=$!; tap_own_pid $ev_pid
timeout 10 tail -n +1 -f "$ev" | grep -m1 -q '"name":"a","state":"running"'
ok $? "the new phyllod's stream knows a is running (rediscovered)"

# ---- 100 concurrent listings while a stops (through the new daemon)
t=$SECONDS
list_many "$PHYLLOME_HOME/l2"
r=$(api POST /v1/vms/a/stop '{"timeout": 20}')
wait_jobs
is "${r%% *}" 200 "POST stop 'a' during 100 listings"
is "$(jq -r .was_running <<<"${r#* }")" true "it was running"
is "$(check_many "$PHYLLOME_HOME/l2")" 0 "100 concurrent listings all answered 200 ($((SECONDS - t)) s)"
timeout 20 tail -n +1 -f "$ev" | grep -m1 -q '"name":"a","state":"stopped"'
ok $? "the stream saw a stopped"
lc_alive "$qpid"; is $? 1 "a's QEMU is gone"
r=$(api POST /v1/vms/a/stop)
is "$(jq -r .was_running <<<"${r#* }")" false "stopping a stopped VM is not an error (was_running false)"
is "$(status_of POST /v1/vms/a/pause)" 409 "pausing a stopped VM: 409"
is "$(status_of DELETE /v1/vms/a)" 200 "DELETE a"
is "$(status_of GET /v1/vms/a)" 404 "a is gone"

kill "$PD_PID"; wait "$PD_PID"
is "$?" 0 "SIGTERM ends phyllod cleanly"
[ ! -e "$S" ]; ok $? "and it removed its socket"
# ---- loopback TCP: only when asked for, loopback only, a token on every request
out=$("$PHYLLOD" --listen-tcp 0.0.0.0:7780 2>&1); is "$?" 2 "--listen-tcp 0.0.0.0 is refused"
like "$out" "0.0.0.0 is not a loopback address" "... naming the address"
[ ! -e "$S" ]; ok $? "the refused start left no socket behind"
for try in 1 2 3 4 5; do   # a free port: phyllod says so when one is taken
  port=$((20000 + RANDOM % 30000))
  pd_start --listen-tcp "127.0.0.1:$port"
  [[ "$PD_LINE" == *"serving"* ]] && break
  wait "$PD_PID"
done
like "$PD_LINE" "serving" "phyllod with --listen-tcp 127.0.0.1:$port starts"
tok=$PHYLLOME_HOME/phyllod.token
is "$(stat -c %a "$tok")" 600 "its token file is 0600"
tcp() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@" "http://127.0.0.1:$port/v1/vms"; }
is "$(tcp)" 403 "TCP without the token: 403"
is "$(tcp -H 'Authorization: Bearer 0000')" 403 "TCP with a wrong token: 403"
is "$(tcp -H "Authorization: Bearer $(cat "$tok")")" 200 "TCP with the token: 200"
is "$(curl -s --max-time 10 --unix-socket "$S" http://localhost/v1/version | jq -r .api)" v1 "the unix socket still answers"
kill "$PD_PID"; wait "$PD_PID"
[ ! -e "$tok" ]; ok $? "the token goes when phyllod ends"

# ---- socket activation: systemd's listener as fd 3 (systemd-socket-activate)
if command -v systemd-socket-activate >/dev/null; then
  coproc SA { exec systemd-socket-activate -E PHYLLOME_HOME -l "$PHYLLOME_HOME/sa.sock" "$PHYLLOD" 2>&1; }
  sa_pid=$SA_PID; tap_own_pid "$sa_pid"
  exec {safd}<&"${SA[0]}"
  read -r -t 10 -u "$safd" line   # "Listening on ... as 3." once the socket exists
  r=$(curl -s --max-time 10 --unix-socket "$PHYLLOME_HOME/sa.sock" http://localhost/v1/vms)
  is "$(jq -r '.vms | map(.name) | join(",")' <<<"$r")" h "socket-activated phyllod answers on the passed socket"
  # It runs phyllod as its child: that one ends first, by its pid.
  for p in $(cat /proc/"$sa_pid"/task/*/children 2>/dev/null); do kill "$p"; done
  kill "$sa_pid"; wait "$sa_pid" 2>/dev/null
  exec {safd}<&-
else
  ok 0 "# SKIP socket activation: systemd-socket-activate is not installed"
fi

diag "api test: $((SECONDS - t0)) s"
tap_done
