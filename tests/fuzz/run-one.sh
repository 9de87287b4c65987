#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time (docs/fuzzing.md).
#   run-one.sh FUZZER DICT SEED_DIR...
# New inputs go to a scratch corpus (the seeds in the tree stay as they are);
# a crash leaves its input as crash-* under $PHYLLOME_FUZZ_ARTIFACTS (default:
# the current directory) and fails the run.
#   PHYLLOME_FUZZ_SECONDS   how long (default 20)
#   PHYLLOME_FUZZ_CORPUS    keep the grown corpus here instead of a temp dir
set -euo pipefail
fuzzer=$1 dict=$2
shift 2
seconds=${PHYLLOME_FUZZ_SECONDS:-20}
artifacts=${PHYLLOME_FUZZ_ARTIFACTS:-$PWD}
mkdir -p "$artifacts"
if [ -n "${PHYLLOME_FUZZ_CORPUS:-}" ]; then
  corpus=$PHYLLOME_FUZZ_CORPUS
  mkdir -p "$corpus"
else
  corpus=$(mktemp -d /tmp/phyllome-fuzz-corpus.XXXXXX)
  trap 'rm -rf "$corpus"' EXIT
fi
opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536
      -artifact_prefix="$artifacts/$(basename "$fuzzer")-" -print_final_stats=1)
[ -f "$dict" ] && opts+=(-dict="$dict")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "fuzz: $(basename "$fuzzer") for ${seconds}s, seeds: $*"
# Not exec: the EXIT trap must still remove the scratch corpus.
"$fuzzer" "${opts[@]}" "$corpus" "$@"
