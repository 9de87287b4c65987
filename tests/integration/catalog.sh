#!/bin/bash
# SPDX-License-Identifier: MIT
# The OS catalog on loopback (issue 15): a local HTTP server with Range
# support (tests/helpers/range-server.py) serves a fixture ISO made with
# xorriso, its SHA256SUMS and a signature made with a throwaway key in a
# temporary GNUPGHOME.  Checked: a download cut mid-way resumes without
# fetching the first bytes again; a tampered ISO, a tampered checksum file, a
# wrong signature, an HTML page, a wrong volume id and a wrong size are each
# refused with the file deleted; progress arrives in order; catalog verify;
# create --iso identifies the OS with libosinfo; create --os downloads.
set -u
. "$(dirname "$0")/tap.sh"
for t in gpg gpgv xorriso python3 jq qemu-img; do
  command -v $t >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"
done

tap_new_home
t=$PHYLLOME_HOME/t
mkdir -p "$t/srv" "$t/gnupg" "$t/cache"
chmod 700 "$t/gnupg"
export PHYLLOME_CACHE=$t/cache GNUPGHOME=$t/gnupg
media=$PHYLLOME_CACHE/media
unset PHYLLOME_ROOT http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

# ---- fixtures: two throwaway keys, ISOs with osinfo's volume ids ----------
gpg --batch -q --passphrase '' --quick-gen-key 'Phyllome Test Vendor <vendor@test.invalid>' ed25519 sign never 2>/dev/null
gpg --batch -q --passphrase '' --quick-gen-key 'Someone Else <else@test.invalid>' ed25519 sign never 2>/dev/null
gpg --batch -q --export 'vendor@test.invalid' > "$t/vendor.gpg"
ok $? "a throwaway vendor key in a temporary GNUPGHOME"

iso_name=debian-12.11.0-amd64-netinst.iso
mkdir -p "$t/tree/install.amd" "$t/tree/boot"
head -c $((6 * 1024 * 1024)) /dev/urandom > "$t/tree/install.amd/initrd.gz"
head -c 2048 /dev/zero > "$t/tree/boot/boot.img"
mkiso() { # mkiso VOLID OUT: bootable (El Torito), as libosinfo wants install media
  xorriso -as mkisofs -quiet -V "$1" -b boot/boot.img -no-emul-boot -boot-load-size 4 -o "$2" "$t/tree" 2>/dev/null
}
mkiso 'Debian 12.11.0 amd64 n' "$t/debian.iso" && mkiso 'Ubuntu 24.04.3 LTS amd64' "$t/ubuntu.iso" &&
  mkiso 'NOT_AN_OS_ANYONE_KNOWS' "$t/unknown.iso"
ok $? "fixture ISOs made with xorriso"
size=$(stat -c %s "$t/debian.iso")

sign_dir() { # sign_dir DIR [KEY]: SHA256SUMS of DIR's ISO and its detached signature
  (cd "$1" && sha256sum "$iso_name" > SHA256SUMS)
  gpg --batch -q --yes --local-user "${2:-vendor@test.invalid}" --detach-sign -o "$1/SHA256SUMS.sign" "$1/SHA256SUMS"
}
d=$t/srv
mkdir -p $d/ok $d/resume $d/tampered-iso $d/tampered-sums $d/wrong-sig $d/html $d/wrong-vol $d/nosig $d/clear
for x in ok resume tampered-iso tampered-sums wrong-sig nosig clear; do cp "$t/debian.iso" "$d/$x/$iso_name"; done
for x in ok resume tampered-iso tampered-sums; do sign_dir "$d/$x"; done
sign_dir "$d/wrong-sig" else@test.invalid
# the ISO changed after the vendor signed its checksum
printf 'X' | dd of="$d/tampered-iso/$iso_name" bs=1 seek=$((size - 4096)) conv=notrunc 2>/dev/null
# the checksum file changed after it was signed (to the tampered ISO's hash)
cp "$d/tampered-iso/$iso_name" "$d/tampered-sums/$iso_name"
(cd "$d/tampered-sums" && sha256sum "$iso_name" > SHA256SUMS)
# an error page saved as the ISO, with a signed checksum of the page
printf '<!DOCTYPE html>\n<html><body>Mirror down for maintenance</body></html>\n' > "$d/html/$iso_name"
sign_dir "$d/html"
cp "$t/ubuntu.iso" "$d/wrong-vol/$iso_name"
sign_dir "$d/wrong-vol"
# a clearsigned checksum file in BSD format (Fedora, FreeBSD)
(cd "$d/clear" && echo "SHA256 ($iso_name) = $(sha256sum "$iso_name" | cut -d' ' -f1)" > CHECKSUM)
gpg --batch -q --yes --local-user vendor@test.invalid --clearsign -o "$d/clear/CHECKSUM.asc" "$d/clear/CHECKSUM"

# ---- the server ----------------------------------------------------------
mkfifo "$t/port"
python3 "$SRCDIR/helpers/range-server.py" --root "$d" --log "$t/server.log" --port-file "$t/port" \
  --cut "/ok/$iso_name:1000000" &
tap_own_pid $!
read -r port < "$t/port"
like "$port" '^[0-9]+$' "the range server listens on 127.0.0.1:$port"
base=http://127.0.0.1:$port

entry() { # entry ID DIR [extra lines...]
  local id=$1 dir=$2; shift 2
  printf '[os %s]\nosinfo = http://debian.org/debian/12\nname = Test %s\nurl = %s/%s/%s\n' "$id" "$id" "$base" "$dir" "$iso_name"
  printf '%s\n' "$@"
  echo
}
signed=("checksums = $base/DIR/SHA256SUMS" "signature = $base/DIR/SHA256SUMS.sign" "signed = checksums"
        "key = $t/vendor.gpg" "key-source = made by the test")
s() { local x; for x in "${signed[@]}"; do echo "${x//DIR/$1}"; done; }
cat > "$t/catalog.conf" <<EOF
$(entry debian12 ok)
$(s ok)

$(entry resume resume)
$(s resume)

$(entry tampered-iso tampered-iso)
$(s tampered-iso)

$(entry tampered-sums tampered-sums)
$(s tampered-sums)

$(entry wrong-sig wrong-sig)
$(s wrong-sig)

$(entry html html)
$(s html)

$(entry wrong-vol wrong-vol)
$(s wrong-vol)

$(entry wrong-size ok)
$(s ok)
size = $((size + 2048))

$(entry nosig nosig)
signed = none

$(entry clear clear)
checksums = $base/clear/CHECKSUM.asc
signed = inline
key = $t/vendor.gpg
key-source = made by the test
EOF
export PHYLLOME_CATALOG=$t/catalog.conf

# ---- a download cut mid-way resumes; progress in order --------------------
out=$("$PHYLLO" download debian12 --json 2>"$t/err")
ok $? "download debian12 through a connection cut after 1000000 bytes"
diag "$(cat "$t/err")"
is "$(jq -r 'select(.event == "done") | .path' <<<"$out")" "$media/$iso_name" "the verified ISO lands in \$XDG_CACHE_HOME/phyllome/media"
cmp -s "$media/$iso_name" "$d/ok/$iso_name"
ok $? "the downloaded ISO is byte for byte the served one"
is "$(grep -c "^GET /ok/$iso_name " "$t/server.log")" 2 "the ISO took two requests (cut, then resumed)"
is "$(grep "^GET /ok/$iso_name " "$t/server.log" | tail -1 | cut -d' ' -f3)" "bytes=1000000-" \
  "the resume asked only for the bytes after the cut (Range: bytes=1000000-)"
# phases in order, bytes never going back within the image phase, the last one complete
order=$(jq -r 'select(.event == "progress") | .phase' <<<"$out" | uniq | tr '\n' ' ')
is "$order" "checksums image verify done " "progress phases arrive in order"
mono=$(jq -s '[.[] | select(.event == "progress" and .phase == "image") | .done] as $d
  | ([range(1; $d | length) | select($d[.] < $d[. - 1])] | length == 0) and ($d[-1] == '"$size"')' <<<"$out")
is "$mono" true "image progress only goes up and ends at $size bytes"
ls -A "$media" | grep -q '\.part$'
ok $(( ! $? )) "no .part file is left"

out=$("$PHYLLO" download debian12 2>&1)
like "$out" "verified" "a second download of a verified file is answered from the cache"
is "$(grep -c "^GET /ok/$iso_name " "$t/server.log")" 2 "... without fetching it again"

# a .part left by an earlier run: only the rest is fetched
head -c 3000000 "$d/resume/$iso_name" > "$media/$iso_name.part.tmp"
mkdir -p "$t/media2"
mv "$media/$iso_name.part.tmp" "$t/media2/$iso_name.part"
"$PHYLLO" download resume --to "$t/media2" >/dev/null 2>"$t/err"
ok $? "download --to DIR resumes a .part an earlier run left"
is "$(grep "^GET /resume/$iso_name " "$t/server.log" | cut -d' ' -f3 | tr '\n' ' ')" "bytes=3000000- " \
  "... asking only for the bytes after it"
cmp -s "$t/media2/$iso_name" "$d/resume/$iso_name"
ok $? "... and the result is the served ISO"

# ---- refusals: each check says what failed and leaves no file ------------
refused() { # refused ID PATTERN DESCRIPTION
  local dir=$t/refused-$1 out rc
  out=$("$PHYLLO" download "$1" --to "$dir" 2>&1); rc=$?
  ok $(( rc == 0 )) "$3: refused (exit $rc)"
  like "$out" "$2" "... saying which check failed"
  is "$(ls -A "$dir" 2>/dev/null | grep -v '^\.checksums$' | grep -c "$iso_name")" 0 "... and no file left"
}
refused tampered-iso 'SHA-256 of the download is .* \(checksum check\)' "a tampered ISO"
refused tampered-sums 'does not verify .*\(signature check\).*BAD signature' "a tampered checksum file"
refused wrong-sig 'does not verify .*\(signature check\).*not the vendor' "a signature by another key"
refused html 'web page, not a disk image' "an HTML page saved as the ISO"
refused wrong-vol "volume id 'Ubuntu 24.04.3 LTS amd64' is not one osinfo-db knows for Debian 12" "an ISO of another OS"
refused wrong-size "size is $size bytes, the catalog says $((size + 2048)) \(size check\)" "a wrong size"
is "$(grep -c "^GET /tampered-sums/$iso_name " "$t/server.log")" 0 "a bad signature stops before the ISO is fetched"

out=$("$PHYLLO" download nosig 2>&1)
ok $(( $? == 0 )) "an entry without checksum or signature is refused"
like "$out" "no checksum or signature .* only with --unverified" "... saying --unverified downloads it"
"$PHYLLO" download nosig --unverified --to "$t/nosig" >/dev/null 2>&1
ok $? "... and --unverified downloads it"

"$PHYLLO" download clear --to "$t/clear" >/dev/null 2>"$t/err"
ok $? "a clearsigned BSD-format checksum file (Fedora, FreeBSD style) verifies"
diag "$(cat "$t/err")"

# ---- catalog verify ------------------------------------------------------
out=$("$PHYLLO" catalog verify "$t/debian.iso" --json)
ok $? "catalog verify: a file the vendor's signed checksum file lists"
is "$(jq -r '.os + " " + .vendor_name' <<<"$out")" "debian12 $iso_name" "... names the OS and the vendor's file name"
out=$("$PHYLLO" catalog verify "$t/unknown.iso" 2>&1)
is "$?" 1 "catalog verify: an unknown file fails"
like "$out" 'matches no hash the catalog knows' "... saying so"

# ---- a bad catalog file is bad input, like a bad vm.conf -------------------
printf '[os a]\nosinfo = x\nname = A\ncolour = red\n' > "$t/bad.conf"
out=$("$PHYLLO" catalog list --catalog "$t/bad.conf" 2>&1)
is "$?" 2 "a bad --catalog file is a usage error (exit 2, as a bad vm.conf)"
like "$out" "$t/bad.conf:4: unknown key 'colour'" "... naming file:line and the key"
printf '[os a]\nosinfo = x\nname = A\nurl = http://x/a.iso\nsigned = inline\nkey = nokey.gpg\n' > "$t/bad.conf"
out=$("$PHYLLO" catalog list --catalog "$t/bad.conf" 2>&1)
is "$?" 1 "a key file that is not there: exit 1 (not found)"
like "$out" "$t/bad.conf:6: cannot use the key file '$t/nokey.gpg'" "... with file:line"

# ---- media detection and create -------------------------------------------
out=$("$PHYLLO" create fromiso --iso "$t/ubuntu.iso" --no-disk 2>&1)
ok $? "create --iso without --profile"
like "$out" "is Ubuntu 24.04 LTS \(volume id 'Ubuntu 24.04.3 LTS amd64'\): profile linux" \
  "libosinfo identifies the ISO by its volume id and proposes the profile"
is "$("$PHYLLO" show fromiso --json | jq -r .vm.profile)" linux "the VM has the proposed profile"
out=$("$PHYLLO" create unknown --iso "$t/unknown.iso" --no-disk 2>&1)
is "$?" 2 "an ISO osinfo does not know needs --profile"
like "$out" "volume id 'NOT_AN_OS_ANYONE_KNOWS'.*give --profile" "... and says what the ISO holds"

out=$("$PHYLLO" create deb --os debian12 --disk 1G 2>&1)
ok $? "create --os debian12"
diag "$out"
is "$("$PHYLLO" show deb --json | jq -r '.cdrom.install.path // .cdroms[0].path // empty')" "$media/$iso_name" \
  "the VM's install CD-ROM is the verified download"
is "$("$PHYLLO" show deb --json | jq -r .vm.profile)" linux "... with the profile for Debian 12"

# ---- through phyllod: the catalog, a download with progress events --------
PHYLLOD=$BUILDDIR/phyllod
if [ -x "$PHYLLOD" ]; then
  . "$(dirname "$0")/phyllod-lib.sh"
  S=$PHYLLOME_HOME/phyllod.sock
  export PHYLLOME_SOCKET=$S
  pd_start
  ok $? "phyllod serves $S"
  api() { curl -s --max-time 20 --unix-socket "$S" -w '\n%{http_code}' -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} "http://localhost$2"; }
  r=$(api GET /v1/catalog)
  is "${r##*$'\n'}" 200 "GET /v1/catalog"
  is "$(jq -r '.catalog | map(.id) | join(" ")' <<<"${r%$'\n'*}" | cut -d' ' -f1-2)" "debian12 resume" "... lists the catalog's entries"
  r=$(api GET /v1/catalog/debian12)
  is "$(jq -r '.plan.profile + " " + .os.short_id' <<<"${r%$'\n'*}")" "linux debian12" "GET /v1/catalog/debian12: osinfo's facts and the plan"
  is "$(api GET /v1/catalog/nosuch | tail -1)" 404 "GET /v1/catalog/nosuch: 404"
  mkfifo "$t/events"
  curl -s -N --unix-socket "$S" http://localhost/v1/events > "$t/events" &
  tap_own_pid $!
  exec {ev}<"$t/events"
  read -r -t 10 -u $ev hello
  is "$hello" ": phyllod events" "the event stream opens"
  rm -rf "$media"
  r=$(api POST /v1/downloads '{"os": "debian12"}')
  is "${r##*$'\n'}" 202 "POST /v1/downloads answers at once (202)"
  id=$(jq -r .id <<<"${r%$'\n'*}")
  is "$(api POST /v1/downloads '{"os": "debian12", "colour": 1}' | tail -1)" 400 "an unknown member is refused"
  : > "$t/dl-events"
  while read -r -t 60 -u $ev line; do
    [[ $line == data:* ]] || continue
    echo "${line#data: }" >> "$t/dl-events"
    [[ $line == *'"state":"done"'* || $line == *'"state":"failed"'* ]] && break
  done
  exec {ev}<&-
  last=$(tail -1 "$t/dl-events")
  is "$(jq -r '.state + " " + .path' <<<"$last")" "done $media/$iso_name" "the stream ends with the verified file"
  is "$(jq -r .phase "$t/dl-events" | uniq | tr '\n' ' ')" "checksums image verify done " "download events arrive in phase order"
  is "$(jq -s '[.[] | select(.phase == "image") | .done] | . == sort' "$t/dl-events")" true "... image bytes only go up"
  is "$(api GET /v1/downloads/$id | head -1 | jq -r .state)" done "GET /v1/downloads/$id: done"
fi

tap_done
