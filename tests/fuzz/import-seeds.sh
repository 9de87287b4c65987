#!/usr/bin/env bash
# Regenerates corpus/import (small-v1.phyb, a version 1 bundle, is kept as it
# was made before format version 2): a real bundle of a --no-disk VM made with
# `phyllo export` (zstd-compressed, as shipped), the same tar uncompressed
# (store_import reads plain tar too, and the fuzzer mutates tar headers and
# the manifest far better without the compression), and truncated copies.
#   import-seeds.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
phyllo=$(cd "$build" && pwd)/phyllo
out=$here/corpus/import
mkdir -p "$out"
home=$(mktemp -d /tmp/phyllome-import-seeds.XXXXXX)
trap 'rm -rf "$home"' EXIT
export PHYLLOME_HOME=$home PHYLLOME_CACHE=$home/cache
"$phyllo" create seed --profile linux --memory 256M --cpus 1 --display none --no-disk >/dev/null
"$phyllo" export seed "$out/small.phyb" >/dev/null
zstd -dq -c "$out/small.phyb" >"$out/small.tar"
size=$(stat -c %s "$out/small.phyb")
head -c $((size / 2)) "$out/small.phyb" >"$out/small-truncated.phyb"
size=$(stat -c %s "$out/small.tar")
head -c $((size - 1024)) "$out/small.tar" >"$out/small-truncated.tar"
