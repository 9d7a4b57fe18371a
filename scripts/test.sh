#!/usr/bin/env bash
# The tests, as CI runs them: setup, the test guests' freshness, formatting, lints, and
# every unit and integration test (which start real wasmlens processes and an in-process
# OTLP receiver on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
python3 guests/build.py --check
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
