#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 19 through phyllod's own socket: every route of docs/openapi.json
# that takes a JSON body refuses a member it does not know, naming it, before
# it acts; POST /v1/vms with "memroy" makes no VM; a 404 names the document
# that exists; a bare size in a string means what it means to phyllo.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
lc_new_home
S=$PHYLLOME_HOME/phyllod.sock
OPENAPI=$SRCDIR/../docs/openapi.json

api() { # api METHOD PATH [BODY]: prints "STATUS BODY"
  local out
  out=$(curl -s --max-time 60 --unix-socket "$S" -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
        -w '\n%{http_code}' "http://localhost$2")
  echo "${out##*$'\n'} ${out%$'\n'*}"
}

pd_start; ok $? "phyllod serves $S"
lc_create v

# ---- 6: POST /v1/vms with a misspelt member: 400 naming it, no VM ----
out=$(api POST /v1/vms '{"name":"m","profile":"linux","memroy":"1G","no_disk":true}')
like "$out" "^400 " "POST /v1/vms with 'memroy': 400"
like "$out" "unknown member 'memroy'" "... naming the member"
ok "$(test ! -e "$PHYLLOME_HOME/vms/m"; echo $?)" "... and no VM 'm' made"
out=$(api POST /v1/vms '{"name":"m","profile":"linux","forward":["tcp:2222:22"],"no_disk":true}')
like "$out" "^400 .*unknown member 'forward'" "'forward' (for 'forwards') is refused, not dropped"
# What create --os sends (the catalog's disk bus and NIC) is known.
out=$(api POST /v1/vms '{"name":"m2","profile":"linux","no_disk":true,"disk_bus":"sata","nic":"e1000e","display":"none"}')
like "$out" "^201 " "disk_bus and nic are members of POST /v1/vms"
# A bare number in a size string: MiB of memory, GiB of disk (as phyllo).
out=$(api POST /v1/vms '{"name":"m3","profile":"linux","memory":"300","disk":"1","display":"none"}')
like "$out" "^201 " "POST /v1/vms with memory \"300\", disk \"1\""
is "$(api GET /v1/vms/m3 | cut -d' ' -f2- | jq -r .model.memory.size)" $((300 << 20)) "... memory is 300 MiB"

# ---- 6: every route with a JSON body refuses an unknown member ----
n_routes=0
while IFS=$'\t' read -r path method; do
  case $path in /v1/vms/import) continue ;; esac   # its body is a bundle, not JSON
  p=${path//\{name\}/v}; p=${p//\{snap\}/s1}; p=${p//\{disk\}/system}; p=${p//\{os\}/debian12}; p=${p//\{id\}/1}
  p=${p//\{addr\}/0000:00:02.0}; p=${p//\{uuid\}/6f1c2e58-0c3a-4a55-9d0e-6a1b5a3f0c11}; p=${p//\{nic\}/net0}
  p=${p//\{tag\}/t}; p=${p//\{device\}/1234:5678}
  M=$(tr a-z A-Z <<<"$method")
  out=$(api "$M" "$p" '{"bogus_member":1}')
  like "$out" "^400 .*unknown member 'bogus_member'" "$M $path refuses an unknown member, naming it"
  n_routes=$((n_routes + 1))
done < <(jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[]
                | select(.key == "post" or .key == "put" or .key == "delete" or .key == "patch")
                | "\($p)\t\(.key)"' "$OPENAPI")
ok "$([ "$n_routes" -ge 25 ]; echo $?)" "$n_routes routes walked"
is "$(lc_state v)" stopped "none of them acted on VM 'v' (not started)"
ok "$(test -f "$PHYLLOME_HOME/vms/v/vm.conf"; echo $?)" "... nor deleted it"

# ---- 8: a 404 names the API document that exists ----
out=$(api GET /v1/nosuch)
like "$out" "^404 .*docs/openapi.json" "a 404 names docs/openapi.json"
ok "$(test -f "$OPENAPI"; echo $?)" "... which exists"

# ---- 8: list --json and GET /v1/vms: the documented difference (docs/api.md) ----
# The route wraps the array in {"vms": [...]}; phyllo list --json prints that array.
out=$(api GET /v1/vms)
is "$(jq -r '.vms | type' <<<"${out#* }"):$(jq -c '.vms | map(.name)' <<<"${out#* }")" 'array:["m2","m3","v"]' \
   "GET /v1/vms is {\"vms\": [...]}"
is "$("$PHYLLO" list --json | jq -c 'map(.name)')" '["m2","m3","v"]' "phyllo list --json is the array itself"
is "$("$PHYLLO" list --json | jq -cS 'map(del(.state))')" "$(jq -cS '.vms | map(del(.state))' <<<"${out#* }")" \
   "... with the same members, VM by VM"
like "$(tr '\n' ' ' <"$SRCDIR/../docs/api.md")" '`GET /v1/vms` is `\{"vms": \[\.\.\.\]\}`.*matching `phyllo \.\.\. --json` prints that array itself' \
   "docs/api.md says so"

tap_done
