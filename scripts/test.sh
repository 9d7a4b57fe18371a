#!/usr/bin/env bash
# The tests, as CI runs them: setup, the test guests' freshness, formatting, lints,
# every unit and integration test (which start real wasmlens processes and an in-process
# OTLP receiver on loopback), and a smoke run of the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

# No incremental build state: a fresh clone (as CI is) gains nothing from it, and it would
# add gigabytes to a target folder already large with wasmtime. Set it to 1 to keep it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Each step's start, and the time since the first: what a slow CI spent its time on.
phase() { echo "test.sh: $1, at $((SECONDS / 60)) min $((SECONDS % 60)) s" >&2; }
SECONDS=0

phase setup
scripts/setup.sh
phase "the guests' freshness"
python3 guests/build.py --check
phase formatting
cargo fmt --all --check
phase clippy
cargo clippy --workspace --all-targets --locked -- -D warnings
phase tests
cargo test --workspace --locked
# The benchmark, for seconds rather than minutes: it only proves the script still works
# (no thresholds; scripts/bench.sh without --smoke is the real measurement).
phase "the benchmark's smoke run"
scripts/bench.sh --smoke
phase done
