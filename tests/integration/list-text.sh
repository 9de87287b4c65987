#!/usr/bin/env bash
# phyllo list reads GET /v1/vms's text itself (src/cli/vm.c) rather than
# through json-c: against a stand-in phyllod on the home's socket that sends
# crafted bodies (escapes of every kind, surrogate pairs, pretty-printed,
# keys reordered, unknown members, numbers and nulls, nested values, another
# shape, not JSON), its table and its messages must be what the --json path
# (json-c's parse of the same body) makes of it: the table made here from
# --json's output, the errors on stderr the same, the exit status the same.
set -u
. "$(dirname "$0")/tap.sh"
command -v jq >/dev/null || skip_all "jq is not installed"
tap_new_home
BODY=$PHYLLOME_HOME/body.json
S=$PHYLLOME_HOME/phyllod.sock
python3 - "$S" "$BODY" <<'PY' &
import os, socket, sys
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1]); srv.listen(8)
while True:
    c, _ = srv.accept()
    req = b""
    while b"\r\n\r\n" not in req:
        b = c.recv(4096)
        if not b: break
        req += b
    body = open(sys.argv[2], "rb").read()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
              % len(body) + body)
    c.close()
PY
tap_own_pid $!
for i in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
ok $? "a stand-in phyllod listens on $S"
export PHYLLOME_REQUIRE_DAEMON=1

# table: the table phyllo prints, made from `phyllo list --json`'s objects
# as the json-c path prints them.
table() {
  python3 -c '
import json, sys
def size(v):
    u = -1
    while v != 0 and v % 1024 == 0 and u < 3:
        v //= 1024; u += 1
    return str(v) if u < 0 else "%d%s" % (v, "KMGT"[u])
print("%-24s %-10s %5s %8s  %s" % ("NAME", "PROFILE", "CPUS", "MEMORY", "STATE"))
for o in json.load(sys.stdin):
    print("%-24s %-10s %5s %8s  %s" % (o["name"], o.get("profile", "-"), int(o["cpus"]) if "cpus" in o else "-",
          size(int(o["memory"])) if "memory" in o else "-", o["state"]))'
}

# check WHAT BODY: the table path against the --json path on that body.
check() {
  printf '%s' "$2" >"$BODY"
  local t terr trc j jerr jrc
  t=$("$PHYLLO" list 2>"$PHYLLOME_HOME/t.err"); trc=$?
  j=$("$PHYLLO" list --json 2>"$PHYLLOME_HOME/j.err"); jrc=$?
  is "$trc" "$jrc" "$1: the same exit status ($jrc)"
  is "$(cat "$PHYLLOME_HOME/t.err")" "$(cat "$PHYLLOME_HOME/j.err")" "$1: the same messages on stderr"
  [ "$jrc" = 0 ] && is "$t" "$(table <<<"$j")" "$1: the table is the --json objects'"
}

check "plain" \
  '{"vms":[{"name":"a","profile":"linux","cpus":2,"memory":268435456,"state":"stopped"},{"name":"b.c_d-e","profile":"windows11","cpus":4,"memory":4294967296,"state":"running"}]}
'
check "escapes and errors" \
  '{"vms":[{"name":"bad","error":"vm.conf:2: \"q\" \\ back\/slash\ttab\nnew \u0001 \u00e9 é \ud83d\ude00 end","state":"invalid"},{"name":"ok","profile":"linux","cpus":1,"memory":1000,"state":"paused"}]}'
check "pretty-printed, reordered, unknown members" \
  '{ "vms" : [
     { "state" : "crashed", "memory" : 1073741824 , "x" : null, "name" : "p", "new" : "member", "n" : -3,
       "cpus" : 16, "profile" : "macos" },
     { "name" : "q", "state" : "stopped", "profile" : "", "cpus" : 0, "memory" : 0 }
  ] }
'
check "empty" '{"vms":[]}'
check "a nested member (json-c's turn)" \
  '{"vms":[{"name":"n","profile":"linux","cpus":1,"memory":1024,"state":"stopped","extra":{"a":[1,2]}}]}'
check "a fraction (json-c's turn)" '{"vms":[{"name":"f","profile":"linux","cpus":1.5,"memory":1024,"state":"stopped"}]}'
check "a bad escape (json-c's turn)" '{"vms":[{"name":"e","error":"\q","state":"invalid"}]}'
check "a long error (json-c's turn)" \
  "{\"vms\":[{\"name\":\"l\",\"error\":\"$(head -c 5000 /dev/zero | tr '\0' x)\",\"state\":\"invalid\"}]}"
check "trailing text (json-c's turn)" '{"vms":[{"name":"t","profile":"linux","cpus":1,"memory":1024,"state":"stopped"}]} junk'
check "another shape" '{"machines":[]}'
check "not JSON" 'nope'
tap_done
