#!/usr/bin/env bash
# Regenerates corpus/qmp from the replayed sessions in tests/fixtures/qmp:
# the bytes the server side sends, with $ID as the client's ids (phy-1 for
# qmp_capabilities, then phy-2, ...), S* lines shortened and E bursts capped,
# so the seeds stay small.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/corpus/qmp
mkdir -p "$out"
for f in "$here"/../fixtures/qmp/*.txt; do
  awk '
    /^#/ || /^$/ { next }
    /^C: / { id++; next }
    /^S: / { line = substr($0, 4); gsub(/\$ID/, "phy-" id, line); printf "%s\r\n", line; next }
    /^S~ / { printf "%s", substr($0, 4); next }
    /^S\* / { printf "{\"return\": \"%s\"}\r\n", "xxxxxxxxxxxxxxxx"; next }
    /^E / { n = $2 > 50 ? 50 : $2; for (i = 0; i < n; i++) printf "{\"event\": \"SEQ\", \"data\": {\"n\": %d}}\r\n", i; next }
  ' "$f" > "$out/$(basename "$f" .txt)"
done
