#!/bin/bash
# Runs an integration test (its path is the argument) with QEMU 10.0 from
# bookworm-backports instead of the system's 7.2 (issue 18): scripts/qemu10
# unpacks it once into a private prefix (cached; later runs need no network)
# and PHYLLOME_QEMU selects it, so the same test proves both QEMUs.
# A QEMU 10.0 that cannot be fetched is a failure, not a skip: CI must prove
# both (exclude the suite 'qemu10' to run without it).
set -u
test=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
if ! q=$("$here/../../scripts/qemu10" 2>"${TMPDIR:-/tmp}/phyllome-qemu10.$$.err"); then
  echo "1..1"
  echo "not ok 1 - scripts/qemu10 made QEMU 10.0 available"
  sed 's/^/# /' "${TMPDIR:-/tmp}/phyllome-qemu10.$$.err"
  rm -f "${TMPDIR:-/tmp}/phyllome-qemu10.$$.err"
  exit 1
fi
rm -f "${TMPDIR:-/tmp}/phyllome-qemu10.$$.err"
export PHYLLOME_QEMU=$q
echo "# QEMU: $("$q" --version | head -n1) ($q)"
exec "$test" "$@"
