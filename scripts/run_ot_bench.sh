#!/usr/bin/env bash
# otsync's OT core against ot-text-unicode@4.0.0 under Node: the same inputs
# (every sequential trace, the same small ops, the same 100k keystrokes) in
# the same run; prints a table of medians and ratios (Markdown and JSON).
#
# Usage: scripts/run_ot_bench.sh [--reps N] [--peer-reps N] [--quick] [--out DIR]
#   --reps N       Google Benchmark repetitions for otsync (default 7)
#   --peer-reps N  runs per row for ot-text-unicode (default 3)
#   --quick        skip the peer's two slowest rows (automerge-paper replay, 100k compose fold)
#   --out DIR      where results go (default build/bench-results)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=7
peer_reps=3
out=build/bench-results
peer_filter=()
while (($#)); do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --peer-reps) peer_reps="$2"; shift 2 ;;
    --quick) peer_filter=(--skip 'replay:automerge-paper,compose_fold_100k'); shift ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# Its own dependencies when missing (Google Benchmark, Node, the JS modules):
# a machine set up by scripts/run.sh has only what otsyncd needs.
if ! dpkg-query -W -f='${Status}' libbenchmark-dev 2>/dev/null | grep -q "install ok installed" ||
  ! command -v node >/dev/null 2>&1 || [[ ! -d tests/js/node_modules/ot-text-unicode ]]; then
  scripts/install-deps.sh --bench
fi
echo "== building build/bin/ot_bench (Release)" >&2
# The benchmark explicitly: a tree configured by scripts/run.sh has OTSYNC_BUILD_BENCH=OFF in its cache.
traces=()
peer_traces=()
if [[ -n "${OTSYNC_TRACES_DIR:-}" ]]; then
  traces=(-DOTSYNC_TRACES_DIR="$OTSYNC_TRACES_DIR")
  peer_traces=(--traces "$OTSYNC_TRACES_DIR")
fi
scripts/build.sh build --target ot_bench -DCMAKE_BUILD_TYPE=Release -DOTSYNC_BUILD_BENCH=ON "${traces[@]}" >/dev/null
mkdir -p "$out"

echo "== small ops (shared by both sides)" >&2
node tests/js/ot_cases.js --profile small --seed 1 --count 2000 >"$out/small_ops.jsonl"

echo "== otsync: build/bin/ot_bench, $reps repetitions" >&2
OTSYNC_BENCH_SMALL_OPS="$out/small_ops.jsonl" build/bin/ot_bench \
  --benchmark_repetitions="$reps" --benchmark_out="$out/otsync-gbench.json" --benchmark_out_format=json \
  --benchmark_report_aggregates_only=true >&2
node bench/js/gbench_rows.js "$out/otsync-gbench.json" >"$out/otsync.json"

echo "== ot-text-unicode under Node $(node --version), $peer_reps runs per row" >&2
node bench/js/ot_peer_bench.js --reps "$peer_reps" --small-ops "$out/small_ops.jsonl" "${peer_filter[@]}" "${peer_traces[@]}" \
  --out "$out/peer.json" >/dev/null

node bench/js/ot_bench_table.js --otsync "$out/otsync.json" --peer "$out/peer.json" \
  --md "$out/ot_bench.md" --json "$out/ot_bench.json"
echo "results: $out/ot_bench.md $out/ot_bench.json" >&2
