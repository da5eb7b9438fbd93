#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds with warnings as errors,
# runs the unit tests under ASan+UBSan, short libFuzzer runs of the fuzz
# targets (clang), then every test (unit, property, golden vectors, trace
# replays, the differential fuzz against ot-text-unicode under Node) in the
# release build. Ends with the release build's ctest summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The editor page (clients/editor/dist): every build of otsyncd below copies it next to the binary,
# and tests/js/editor_test.js drives it in Chromium.
scripts/build-editor.sh

echo "== ASan+UBSan build: unit and property tests, and otsyncd under the sharedb client suite"
# Every tree says which parts it builds: a tree configured by scripts/run.sh
# (tests off) must not silently run no tests here.
# -g1 (line tables: sanitizer reports keep their function names and lines) instead of -g: full debug
# info for the Beast-heavy files was most of this build's time on 2 cores. -O1, as the sanitizers'
# documentation suggests: it compiles the Beast-heavy files markedly faster than -O2.
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTSYNC_SANITIZE=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DOTSYNC_WARNINGS_AS_ERRORS=ON -DOTSYNC_BUILD_TESTS=ON -DOTSYNC_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L "unit|server|integration" --output-on-failure -j "$(nproc)"

echo "== libFuzzer build: short fuzz runs"
# Only the fuzz targets and the libraries they link (about 1 minute on 2 cores),
# then every seed once and 8 s of fuzzing per target (about 20 s); scripts/fuzz.sh runs longer.
CC=clang CXX=clang++ scripts/build.sh build-fuzz --target otsync_fuzz_targets -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DOTSYNC_FUZZ=ON -DOTSYNC_BUILD_TESTS=ON -DOTSYNC_BUILD_BENCH=OFF -DOTSYNC_WARNINGS_AS_ERRORS=ON
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j "$(nproc)"

echo "== Release build: the whole suite"
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release -DOTSYNC_WARNINGS_AS_ERRORS=ON -DOTSYNC_REQUIRE_ALL_TESTS=ON \
  -DOTSYNC_BUILD_TESTS=ON -DOTSYNC_BUILD_BENCH=ON
ctest --test-dir build --output-on-failure -j "$(nproc)"
