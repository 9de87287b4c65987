#!/bin/sh
# SPDX-License-Identifier: MIT
# phyllo caps against the real QEMU: probe, cache hit, JSON, errors.
set -u
: "${PHYLLO:?PHYLLO must point at the phyllo binary}"
QEMU=${PHYLLOME_QEMU:-/usr/bin/qemu-system-x86_64}
if [ ! -x "$QEMU" ]; then
        echo "1..0 # SKIP $QEMU is not installed (Debian: qemu-system-x86)"
        exit 77
fi
tmp=$(mktemp -d /tmp/phyllome-caps-sh.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export PHYLLOME_CACHE="$tmp/cache"
n=0
fail=0
check() {
        n=$((n + 1))
        if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

out=$("$PHYLLO" caps --qemu "$QEMU" 2>"$tmp/err"); rc=$?
check $rc "phyllo caps exits 0"
echo "$out" | grep -q "^binary: *$QEMU\$"; check $? "first run probes (not cached)"
echo "$out" | grep -Eq "^  machine q35 +yes\$"; check $? "q35 reported"
echo "$out" | grep -Eq "^  accel tcg +yes\$"; check $? "tcg reported"
echo "$out" | grep -Eq "^machines: +[1-9][0-9]*\$"; check $? "machines counted"
ls "$tmp"/cache/qemu-caps/*.caps >/dev/null 2>&1; check $? "cache entry written under PHYLLOME_CACHE"

out=$("$PHYLLO" caps --qemu "$QEMU"); rc=$?
check $rc "second run exits 0"
echo "$out" | grep -q "(cached)"; check $? "second run answered from the cache"
out=$("$PHYLLO" caps --qemu "$QEMU" --refresh); rc=$?
echo "$out" | grep -q "(cached)"; cached=$?
[ $rc = 0 ] && [ $cached != 0 ]; check $? "--refresh probes again"

"$PHYLLO" caps --json --qemu "$QEMU" >"$tmp/caps.json"; check $? "--json exits 0"
grep -q '"format": 2' "$tmp/caps.json" && grep -q '"pc-q35-' "$tmp/caps.json"; check $? "--json has the format and q35 machines"
grep -q '"displays": \[' "$tmp/caps.json" && grep -q '"audiodevs": \[' "$tmp/caps.json" && grep -q '"absent": \[' "$tmp/caps.json"
check $? "--json has the displays, audio drivers and absent devices"

"$PHYLLO" caps --qemu "$tmp/nope" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "$tmp/nope" "$tmp/err"; check $? "a missing binary fails naming it"
"$PHYLLO" caps --bogus 2>/dev/null; rc=$?
[ $rc = 2 ]; check $? "an unknown option is a usage error (2)"
echo "1..$n"
exit $fail
