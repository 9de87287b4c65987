#!/usr/bin/env bash
# GET /v1/vms/NAME from a real phyllod, whose answer is kept between
# requests (src/ops/show-cache.h), while the VM changes behind its back:
# its definition edited by hand in place (same size, same inode, twice in a
# millisecond, mtime put back) and through PUT; started, paused, resumed;
# its monitor and QEMU killed with SIGKILL; started
# and stopped again; renamed, deleted and made anew.  Each change shows in
# the very next GET, and each answer is what `phyllo show --json` and
# `phyllo status --json` (no daemon) say at that moment.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
lc_new_home
S=$PHYLLOME_HOME/phyllod.sock
pd_start
ok $? "phyllod starts and serves $S"

# get NAME: GET /v1/vms/NAME; prints "STATUS BODY".
get() {
  local out
  out=$(curl -s --max-time 60 --unix-socket "$S" -w '\n%{http_code}' "http://localhost/v1/vms/$1")
  echo "${out##*$'\n'} ${out%$'\n'*}"
}
body() { get "$1" | cut -d' ' -f2-; }
api() {
  curl -s --max-time 120 --unix-socket "$S" -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
       -w '\n%{http_code}' "http://localhost$2" | tail -n1
}
# What phyllo says without the daemon, to compare with.
direct_model() { PHYLLOME_NO_DAEMON=1 "$PHYLLO" show "$1" --json | jq -cS .; }
direct_state() { PHYLLOME_NO_DAEMON=1 "$PHYLLO" status "$1" --json | jq -r .state; }
# same_as_direct NAME WHAT: the API's model is phyllo's, its config the file.
same_as_direct() {
  local b; b=$(body "$1")
  is "$(jq -cS .model <<<"$b")" "$(direct_model "$1")" "$2: the model is phyllo show's"
  is "$(jq -r .config <<<"$b")" "$(cat "$PHYLLOME_HOME/vms/$1/vm.conf")" "$2: the config is the file as it is now"
}
# edit_in_place NAME FROM TO: the same bytes' length, the same inode, the
# mtime put back: nothing in a stat says the file changed.
edit_in_place() {
  python3 - "$PHYLLOME_HOME/vms/$1/vm.conf" "$2" "$3" <<'PY'
import os, sys
p, a, b = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
st = os.stat(p)
with open(p, "r+b") as f:
    t = f.read(); i = t.index(a); f.seek(i); f.write(b)
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
}
mem() { body "$1" | jq -r .model.memory.size; }

lc_create sh
for i in 1 2 3; do get sh >/dev/null; done
same_as_direct sh "created"
is "$(mem sh)" $((256 << 20)) "256M"

# ---- the definition edited by hand
ino=$(stat -c %i "$PHYLLOME_HOME/vms/sh/vm.conf")
edit_in_place sh "size = 256M" "size = 512M"
is "$(mem sh)" $((512 << 20)) "edited in place (mtime put back): the next GET says 512M"
edit_in_place sh "size = 512M" "size = 768M"
is "$(mem sh)" $((768 << 20)) "edited again at once: 768M"
is "$(stat -c %i "$PHYLLOME_HOME/vms/sh/vm.conf")" "$ino" "the same inode throughout"
same_as_direct sh "after the edits in place"
sed -i 's/^size = 768M$/size = 384M/' "$PHYLLOME_HOME/vms/sh/vm.conf"
is "$(mem sh)" $((384 << 20)) "edited with sed -i (a new file): 384M"
cp "$PHYLLOME_HOME/vms/sh/vm.conf" "$PHYLLOME_HOME/sh.conf.good"
printf '[vm]\nprofile = nope\n' >"$PHYLLOME_HOME/vms/sh/vm.conf"
r=$(get sh)
is "${r%% *}" 400 "a broken definition: 400"
like "$(jq -r .error.message <<<"${r#* }")" "nope" "naming what is wrong"
cp "$PHYLLOME_HOME/sh.conf.good" "$PHYLLOME_HOME/vms/sh/vm.conf"
is "$(mem sh)" $((384 << 20)) "mended: 384M again"
conf=$(sed 's/^size = 384M$/size = 256M/' "$PHYLLOME_HOME/vms/sh/vm.conf")
is "$(api PUT /v1/vms/sh "$(jq -n --arg c "$conf" '{config: $c}')")" 200 "PUT the definition back to 256M"
is "$(mem sh)" $((256 << 20)) "the next GET says 256M"

# ---- its run state
is "$(body sh | jq -r .status.state)" stopped "stopped"
is "$(api POST /v1/vms/sh/start)" 200 "started through the API"
b=$(body sh)
is "$(jq -r .status.state <<<"$b")" running "the next GET: running"
qpid=$(jq -r .status.qemu_pid <<<"$b"); mpid=$(jq -r .status.monitor_pid <<<"$b")
is "$qpid" "$(lc_field sh qemu_pid)" "with QEMU's pid from the run record"
lc_wait_log sh PHYLLOME-GUEST-READY 120
ok $? "the guest boots"
# A VM without a display has no graphics card: its screenshot says so and how to get one.
sc=$(curl -s --max-time 60 --unix-socket "$S" "http://localhost/v1/vms/sh/screenshot")
like "$sc" "no graphics card.*\[gpu\] type = std" "a screenshot of a VM without a display names why there is none"
is "$(api POST /v1/vms/sh/pause)" 200 "paused"
is "$(body sh | jq -r .status.state)" paused "the next GET: paused"
is "$(api POST /v1/vms/sh/resume)" 200 "resumed"
is "$(body sh | jq -r .status.state)" running "the next GET: running"
# The monitor and QEMU killed: the record still says running until
# phyllod's watcher reconciles it; either way the next GET says crashed.
lc_alive "$mpid" && lc_alive "$qpid" && kill -9 "$mpid" "$qpid"
ok $? "the VM's monitor ($mpid) and QEMU ($qpid) killed with SIGKILL"
timeout 20 tail --pid="$mpid" -f /dev/null && timeout 20 tail --pid="$qpid" -f /dev/null
ok $? "both have ended"
is "$(body sh | jq -r .status.state)" crashed "the next GET: crashed"
is "$(direct_state sh)" crashed "as phyllo status says"
is "$(api POST /v1/vms/sh/start)" 200 "started again"
is "$(body sh | jq -r .status.state)" running "the next GET: running"
is "$(api POST /v1/vms/sh/stop '{"force": true}')" 200 "stopped (forced)"
is "$(body sh | jq -r .status.state)" stopped "the next GET: stopped"

# ---- renamed, deleted, made anew
get sh >/dev/null
is "$(api POST /v1/vms/sh/rename '{"name": "sh2"}')" 200 "renamed to sh2"
lc_vms+=(sh2)
is "$(get sh | cut -d' ' -f1)" 404 "sh: 404 at once"
is "$(body sh2 | jq -r .name)" sh2 "sh2 answers with its name"
same_as_direct sh2 "renamed"
is "$(api DELETE /v1/vms/sh2)" 200 "sh2 deleted"
is "$(get sh2 | cut -d' ' -f1)" 404 "sh2: 404 at once"
lc_create sh2 --memory 640M
is "$(mem sh2)" $((640 << 20)) "sh2 made anew with 640M: 640M"
same_as_direct sh2 "made anew"
tap_done
