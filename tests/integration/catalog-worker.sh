#!/bin/bash
# SPDX-License-Identifier: MIT
# phyllome-catalog-worker (src/libexec/catalog-worker.c), the one process
# that loads libosinfo, GLib and libcurl, and its two callers (issue 13):
#  - it refuses input it was not made for: an unknown verb or option, a
#    missing or extra operand, an argument over PATH_MAX, an oversized or
#    garbled password on stdin; each as one error record, exit 2 (usage);
#  - phyllo and phyllod refuse a worker that answers with a garbled line, an
#    oversized record, nothing, or more after its answer, each with a
#    sentence naming the worker, and leave no process behind;
#  - a download through phyllod cancelled by DELETE /v1/downloads/{id} ends
#    its worker, leaves no partial file and no child of phyllod;
#  - phyllod and phyllo link none of the catalog's libraries.
set -u
. "$(dirname "$0")/tap.sh"
for t in jq curl python3 ldd; do
  command -v $t >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"
done
W=$BUILDDIR/phyllome-catalog-worker
[ -x "$W" ] || skip_all "the worker is not built ($W)"

tap_new_home
t=$PHYLLOME_HOME/t
mkdir -p "$t/www" "$t/cache"
export XDG_CACHE_HOME=$t/cache
unset PHYLLOME_CACHE PHYLLOME_ROOT http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
media=$XDG_CACHE_HOME/phyllome/media

# ---- the binaries: only the worker has the catalog's libraries ----------
for b in phyllo phyllod; do
  is "$(ldd "$BUILDDIR/$b" | grep -cE 'libosinfo|libcurl|libglib')" 0 "$b links no libosinfo, libcurl or GLib"
done
ldd "$W" | grep -q libosinfo
ok $? "the worker does"

# ---- a slow loopback download (about 1 MiB/s) ----------------------------
head -c $((24 * 1024 * 1024)) /dev/urandom > "$t/www/slow-12.iso"
coproc SRV { exec python3 "$SRCDIR/app/slowhttp.py" "$t/www"; }
tap_own_pid "$SRV_PID"
read -r -t 10 -u "${SRV[0]}" port
like "$port" '^[0-9]+$' "a slow HTTP server on 127.0.0.1:$port"
cat > "$t/catalog.conf" <<EOC
[os slowos]
osinfo = http://debian.org/debian/12
name = Slow Debian (loopback)
url = http://127.0.0.1:$port/slow-12.iso
signed = none
sha256 = $(sha256sum "$t/www/slow-12.iso" | cut -d' ' -f1)
hash-source = http://127.0.0.1:$port/
EOC
export PHYLLOME_CATALOG=$t/catalog.conf

# ---- the worker refuses what it was not made for --------------------------
refused() { # refused DESCRIPTION PATTERN ARGS... (stdin: the test's)
  local what=$1 pat=$2 out rc; shift 2
  out=$("$W" "$@" 2>/dev/null); rc=$?
  is "$rc" 2 "worker: $what: exit 2"
  is "$(wc -l <<<"$out")" 1 "... one record"
  is "$(jq -r '.error.kind' <<<"$out" 2>/dev/null)" usage "... an error of kind usage"
  like "$(jq -r '.error.message' <<<"$out" 2>/dev/null)" "$pat" "... saying what is wrong"
}
refused "no verb" "no verb given" </dev/null
refused "an unknown verb" "unknown verb 'format-disk'" format-disk </dev/null
refused "an unknown option" "unknown option '--shell'" show slowos --shell /bin/sh </dev/null
refused "an option of another verb" "an option 'download' does not take" download slowos --out /tmp </dev/null
refused "a missing operand" "'show' needs an operand" show </dev/null
refused "an extra operand" "too many operands for 'identify'" identify a b </dev/null
refused "an argument over PATH_MAX" "over PATH_MAX" verify "/$(head -c 5000 /dev/zero | tr '\0' a)" </dev/null
refused "install without its required options" "missing a required option" install --iso /x </dev/null
# a password on stdin: at most 4 KiB, one line of printable bytes
out=$(head -c $((1024 * 1024)) /dev/zero | tr '\0' p | "$W" install --os slowos --iso /nonexistent --user alice \
  --password-file /dev/stdin 2>/dev/null); rc=$?
ok $(( rc == 0 )) "worker: a 1 MiB password on stdin is refused (exit $rc)"
like "$(jq -r .error.message <<<"$out")" "cannot read the password file '/dev/stdin'" "... naming where it came from"
out=$(printf 'pass\001word\n' | "$W" install --os slowos --iso /nonexistent --user alice --password-file /dev/stdin \
  2>/dev/null); rc=$?
is "$rc" 2 "worker: a password with a control character is refused (exit 2)"
like "$(jq -r .error.message <<<"$out")" "control character" "... saying why"
out=$("$W" list 2>/dev/null)
is "$(jq -r '.result[0].id' <<<"$out")" slowos "worker: list answers with one result record"

# ---- callers refuse a worker that does not keep to its records ------------
fake=$t/fake-worker
mkfake() { # mkfake BODY: a worker that runs BODY (its pid in $t/fake.pid)
  printf '#!/bin/bash\necho $$ > %s/fake.pid\n%s\n' "$t" "$1" > "$fake"
  chmod +x "$fake"
  rm -f "$t/fake.pid"
}
gone() { # gone: the fake worker's process no longer exists
  local p; p=$(cat "$t/fake.pid" 2>/dev/null) || return 0
  ! kill -0 "$p" 2>/dev/null
}
caller_refuses() { # caller_refuses DESCRIPTION PATTERN BODY
  mkfake "$3"
  local out rc
  out=$(PHYLLOME_CATALOG_WORKER=$fake timeout 30 "$PHYLLO" catalog show slowos 2>&1); rc=$?
  is "$rc" 1 "phyllo, $1: exit 1"
  like "$out" "$fake $2" "... naming the worker: $(head -c 120 <<<"$out")"
  gone; ok $? "... and no worker process is left"
}
caller_refuses "a line that is not a record" "sent a line that is not one of its records \('hello'\)" 'echo hello; exec sleep 60'
caller_refuses "a record of no known kind" "sent a line that is not one of its records" 'echo "{\"answer\": 42}"; exec sleep 60'
caller_refuses "a record over 1 MiB" "sent a record over" \
  'head -c 2000000 /dev/zero | tr "\0" x; exec sleep 60'
caller_refuses "no answer" "ended with status 0 without its answer" 'exit 0'
caller_refuses "a death by signal" "was ended by signal 9" 'kill -9 $$'
caller_refuses "more after its answer" "sent a line that is not one of its records" \
  'echo "{\"result\": {}}"; echo "{\"result\": {}}"; exec sleep 60'

# ---- through phyllod ------------------------------------------------------
. "$(dirname "$0")/phyllod-lib.sh"
S=$PHYLLOME_HOME/phyllod.sock
api() { curl -s --max-time 30 --unix-socket "$S" -w '\n%{http_code}' -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} "http://localhost$2"; }
mkfake 'echo "{\"progress\": 7}"; exec sleep 60'
PHYLLOME_CATALOG_WORKER=$fake pd_start
ok $? "phyllod serves $S (with a worker that sends garbage)"
r=$(api GET /v1/catalog/slowos)
is "${r##*$'\n'}" 500 "GET /v1/catalog/slowos with a garbled worker: 500"
like "$(jq -r .error.message <<<"${r%$'\n'*}")" "$fake sent a line that is not one of its records" "... naming the worker"
gone; ok $? "... and its process is gone"
r=$(api GET /v1/catalog)
is "${r##*$'\n'}" 200 "GET /v1/catalog needs no worker (phyllod reads the catalog file itself)"
kill "$PD_PID"; wait "$PD_PID" 2>/dev/null

pd_start
ok $? "phyllod serves $S again, with the real worker"
mkfifo "$t/events"
curl -s -N --unix-socket "$S" http://localhost/v1/events > "$t/events" &
tap_own_pid $!
exec {ev}<"$t/events"
read -r -t 10 -u $ev hello
r=$(api POST /v1/downloads '{"os": "slowos"}')
is "${r##*$'\n'}" 202 "POST /v1/downloads of a slow download: 202"
id=$(jq -r .id <<<"${r%$'\n'*}")
seen=no
while read -r -t 60 -u $ev line; do
  [[ $line == data:*'"phase":"image"'* && $line != *'"done":0,'* ]] && { seen=yes; break; }
done
is "$seen" yes "the image's bytes arrive (download events)"
wpid=$(pgrep -P "$PD_PID" -f phyllome-catalog-worker)
like "$wpid" '^[0-9]+$' "phyllod's child is the worker (pid $wpid), not phyllo"
ls "$media"/*.part >/dev/null 2>&1
ok $? "a partial file is being written"
r=$(api DELETE "/v1/downloads/$id")
is "${r##*$'\n'}" 200 "DELETE /v1/downloads/$id: 200"
is "$(jq -r .state <<<"${r%$'\n'*}")" cancelled "... the download is cancelled"
is "$(ls -A "$media" | grep -cv '^\.')" 0 "no file is left in the media cache"
! kill -0 "$wpid" 2>/dev/null
ok $? "the worker has ended"
is "$(pgrep -P "$PD_PID" | wc -l)" 0 "no child of phyllod runs"
is "$(api DELETE "/v1/downloads/$id" | tail -1)" 409 "a second DELETE: 409 (it has ended)"
exec {ev}<&-
kill "$PD_PID"; wait "$PD_PID" 2>/dev/null

tap_done
