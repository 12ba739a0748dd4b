#!/usr/bin/env bash
# Runs the sip_parse criterion bench RUNS times (default 5) and prints the median of the per-run
# medians with their range. The shared 2-core machine has bursts of steal time that move a single
# criterion run by up to 50%; sip-codec and rsip are measured in the same runs, so ratios hold.
#   benches/sip_parse.sh [RUNS] [CRITERION_FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
filter=${2:-}
out=$(mktemp)
for i in $(seq 1 "$runs"); do
  rm -rf target/criterion
  cargo bench -q -p sbcd-suite --bench sip_parse -- --warm-up-time 1 --measurement-time 4 $filter >/dev/null 2>&1
  python3 benches/summarize.py --raw >> "$out"
  echo "run $i/$runs done" >&2
done
python3 benches/summarize.py --aggregate "$out"
rm -f "$out"
