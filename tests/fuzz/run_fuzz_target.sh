#!/usr/bin/env bash
# Runs one libFuzzer target over its seed corpus without writing to it:
# new inputs go to a fresh temporary directory (removed afterwards), crash,
# timeout and OOM inputs to ARTIFACT_DIR/<target>-crash-<sha1> and so on.
# Usage: run_fuzz_target.sh BINARY CORPUS_DIR ARTIFACT_DIR [libFuzzer flags...]
# Exits with libFuzzer's status: 0 when no input failed.
set -euo pipefail
binary="$1"
corpus="$2"
artifacts="$3"
shift 3
mkdir -p "$artifacts"
work="$(mktemp -d "${TMPDIR:-/tmp}/otsync-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
name="$(basename "$binary")"
# The first directory receives new inputs; the checked-in corpus is only read.
"$binary" -artifact_prefix="$artifacts/$name-" -print_final_stats=1 "$@" "$work" "$corpus"
