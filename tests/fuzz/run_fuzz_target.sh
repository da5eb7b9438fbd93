#!/usr/bin/env bash
# Runs one libFuzzer target over its seed corpus without writing to it, in two steps:
#  1. every seed once, whole: a regression check of the hostile seeds, which
#     are larger than the -max_len the fuzzing uses (libFuzzer would cut them);
#  2. fuzzing from the seeds with the flags given (-max_total_time, -max_len, ...);
#     new inputs go to a fresh temporary directory, removed afterwards.
# Crash, timeout and OOM inputs go to ARTIFACT_DIR/<target>-crash-<sha1> and so on.
# Usage: run_fuzz_target.sh BINARY CORPUS_DIR ARTIFACT_DIR [libFuzzer flags...]
# Exits 0 when no input failed in either step.
set -uo pipefail
binary="$1"
corpus="$2"
artifacts="$3"
shift 3
mkdir -p "$artifacts"
work="$(mktemp -d "${TMPDIR:-/tmp}/otsync-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$artifacts/$(basename "$binary")-"

# Stack traces cut at 40 frames (a stack overflow's runs to hundreds).
short_traces() {
  awk '/^ +#[0-9]+ / { n = substr($1, 2) + 0; if (n >= 40) { if (n == 40) print "    ..."; next } } { print }'
}

seed_flags=()
for flag in "$@"; do
  case "$flag" in
    -max_len=* | -max_total_time=* | -runs=*) ;;
    *) seed_flags+=("$flag") ;;
  esac
done
seeds=("$corpus"/*)
echo "== ${#seeds[@]} seeds of $corpus, each once and whole"
"$binary" -artifact_prefix="$prefix" ${seed_flags[@]+"${seed_flags[@]}"} "${seeds[@]}" 2>&1 |
  awk '/^Running: / { last = substr($0, 10); next }
       /^Executed / { next }
       /DEADLYSIGNAL|ERROR:|invariant violated/ && last != "" { print "== failing seed: " last; last = "" }
       { print }' | short_traces
seed_status="${PIPESTATUS[0]}"
((seed_status == 0)) || echo "== a seed failed (exit $seed_status); fuzzing anyway"

echo "== fuzzing: $*"
# The first directory receives new inputs; the checked-in corpus is only read.
# libFuzzer's progress lines go to a log; its final lines (and any error) are shown.
log="$artifacts/$(basename "$binary").log"
"$binary" -artifact_prefix="$prefix" -print_final_stats=1 "$@" "$work" "$corpus" >"$log" 2>&1
fuzz_status=$?
if ((fuzz_status == 0)); then
  grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' "$log"
else
  echo "== fuzzing failed (exit $fuzz_status; whole output: $log):"
  sed -n '/ERROR:\|invariant violated\|Test unit written/,$p' "$log" | grep -v -E '^"|# Uses:' | short_traces | head -n 120
fi
((seed_status == 0 && fuzz_status == 0))
