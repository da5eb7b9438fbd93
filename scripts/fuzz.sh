#!/usr/bin/env bash
# Longer libFuzzer runs on demand. Builds build-fuzz with clang (OTSYNC_FUZZ=ON,
# only the fuzz targets and their libraries) when needed; then, per target,
# runs every checked-in seed once and whole (the hostile seeds are larger than
# the fuzzing's -max_len), and fuzzes for SECONDS from a copy of the corpus in a
# temporary directory (the checked-in corpus stays as it is;
# tests/fuzz/make_corpus.py writes it). Prints each run's executions,
# executions per second and outcome; a failing seed is reported and the
# fuzzing still runs.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...] [-- libFuzzer flags...]
#   SECONDS   per target, 60 by default
#   TARGET    fuzz_ws_frame fuzz_message fuzz_op_codec fuzz_http (default: all)
#   flags     appended to the defaults, later ones win: -- -max_len=4096 -jobs=2
# The input limit (-max_len) of each target is its ctest entry's (tests/fuzz/CMakeLists.txt).
# Crash, timeout and OOM inputs land in build-fuzz/fuzz-artifacts/, each run's
# full output in build-fuzz/fuzz-logs/TARGET.log. Exits 1 when any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
if (($#)) && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
fi
targets=()
extra=()
while (($#)); do
  if [[ "$1" == "--" ]]; then
    shift
    extra=("$@")
    break
  fi
  targets+=("$1")
  shift
done
((${#targets[@]})) || targets=(fuzz_ws_frame fuzz_message fuzz_op_codec fuzz_http)

dir=build-fuzz
export CC="${CC:-clang}" CXX="${CXX:-clang++}"
mkdir -p "$dir/fuzz-artifacts" "$dir/fuzz-logs"
echo "== building $dir (clang, fuzz targets only)"
scripts/build.sh "$dir" --target otsync_fuzz_targets -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTSYNC_FUZZ=ON \
  -DOTSYNC_BUILD_BENCH=OFF >"$dir/fuzz-logs/build.log" 2>&1 || {
  tail -n 40 "$dir/fuzz-logs/build.log"
  echo "fuzz.sh: building $dir failed (full log: $dir/fuzz-logs/build.log)" >&2
  exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/otsync-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

stat_of() {  # stat_of NAME LOG: a value from libFuzzer's final stats
  sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$2" | tail -n 1
}

failed=0
summary=()
for target in "${targets[@]}"; do
  binary="$dir/bin/$target"
  if [[ ! -x "$binary" ]]; then
    echo "fuzz.sh: no such target: $target" >&2
    exit 2
  fi
  max_len="$(ctest --test-dir "$dir" -N -V -R "^${target}\$" | grep -o -- '-max_len=[0-9]*' | head -n 1)"
  corpus="$work/$target"
  mkdir -p "$corpus"
  cp -R "tests/fuzz/corpus/$target/." "$corpus/"
  seeds="$(find "$corpus" -type f | wc -l)"
  log="$dir/fuzz-logs/$target.log"
  echo "== $target: every seed once, then ${seconds}s of fuzzing from $seeds seeds ${max_len} ${extra[*]:-}"
  seed_status=0
  "$binary" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$dir/fuzz-artifacts/$target-" "$corpus"/* \
    >"$log.seeds" 2>&1 || seed_status=$?
  status=0
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 ${max_len:+"$max_len"} -print_final_stats=1 \
    -artifact_prefix="$dir/fuzz-artifacts/$target-" ${extra[@]+"${extra[@]}"} "$corpus" >"$log" 2>&1 || status=$?
  execs="$(stat_of number_of_executed_units "$log")"
  rate="$(stat_of average_exec_per_sec "$log")"
  grown="$(find "$corpus" -type f | wc -l)"
  outcome=""
  if ((seed_status != 0)); then
    failed=1
    # libFuzzer stops at the first failing seed: try each alone to name them all.
    bad=()
    for seed in "$corpus"/*; do
      [[ -f "$seed" ]] || continue
      "$binary" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/" "$seed" >"$work/one.log" 2>&1 && continue
      bad+=("${seed##*/} ($(grep -m 1 -o -E 'ERROR: [A-Za-z]+: [a-z-]+|invariant violated: .*' "$work/one.log" || true))")
    done
    outcome="SEEDS FAILED (exit $seed_status): ${bad[*]}; "
  fi
  if ((status == 0)); then
    outcome+="fuzzing ok"
  else
    failed=1
    outcome+="fuzzing FAILED (exit $status): $(grep -m 1 -E 'ERROR:|invariant violated' "$log" || true)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY)|Test unit written|invariant violated|^ +#[0-9] ' "$log" | head -n 20 || true
  fi
  line="$target: ${execs:-?} execs, ${rate:-?} execs/s, corpus $seeds -> $grown, $outcome"
  echo "$line"
  summary+=("$line")
done

echo "== fuzz.sh summary (${seconds}s per target; logs in $dir/fuzz-logs)"
printf '%s\n' "${summary[@]}"
exit "$failed"
