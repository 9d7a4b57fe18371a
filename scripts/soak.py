#!/usr/bin/env python3
"""Soak: wasmlens under steady mixed load for ten minutes, against a collector that goes away.

wasmlens serves the misbehaving guest (`/ok` answers, `/trap` traps, `/loop` loops until
`--timeout`) at a steady rate, with full telemetry exported over OTLP to a counting sink
(the test receiver, `crates/test-support/examples/otlp_sink.rs`). The sink is up, then
killed (connections refused), up again, then stopped with SIGSTOP (connections accepted and
never answered, so exports time out and the queue fills), then up for the rest.

It records the server's RSS every second, every request's status and latency, what the sink
received, and what wasmlens said and counted about what it lost, and writes docs/soak.md.
Not part of CI: it takes the time it says. Run it after `scripts/setup.sh`:

    scripts/soak.py                      # ten minutes, 300 requests/s, http/protobuf
    scripts/soak.py --minutes 2 --protocol grpc --out /tmp/soak.md
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
WASMLENS = ROOT / "target/release/wasmlens"
SINK = ROOT / "target/release/examples/otlp_sink"
GUEST = ROOT / "guests/components/http-misbehave.wasm"
# What the load asks for, and how often.
PATHS = [("/ok", 0.90), ("/trap", 0.05), ("/loop", 0.05)]
# The collector's states, as fractions of the run: up, killed, up, stopped, up.
SCHEDULE = [(0.00, "up"), (0.10, "killed"), (0.30, "up"), (0.45, "stopped"), (0.70, "up")]
ANALYSIS_MARKER = "<!-- Written by hand from here on; scripts/soak.py keeps it. -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """The counting collector, in its successive lives."""

    def __init__(self, grpc: int, http: int):
        self.addresses = [f"127.0.0.1:{grpc}", f"127.0.0.1:{http}"]
        self.lives = []  # each: {"started": t, "lines": [...]}
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([SINK, *self.addresses], stdout=subprocess.PIPE, text=True)
        life = {"started": time.time(), "lines": []}
        self.lives.append(life)
        threading.Thread(target=self._read, args=(self.proc, life), daemon=True).start()

    def _read(self, proc, life):
        for line in proc.stdout:
            life["lines"].append(json.loads(line))

    def kill(self):
        # SIGTERM: the sink says what it received last, then exits, and connections are
        # refused as after a crash.
        self.proc.terminate()
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.lives[-1]["resumed"] = time.time()

    def received(self, what: str) -> int:
        return sum(life["lines"][-1][what] for life in self.lives if life["lines"])

    def last_sdk(self) -> dict:
        for life in reversed(self.lives):
            if life["lines"]:
                return life["lines"][-1]["sdk"]
        return {}


def load(port: int, rate: float, until: float, results: list, threads: int):
    """Sends requests at `rate` a second over `threads` kept-alive connections until `until`."""

    def worker(seed: int):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        interval = threads / rate
        next_at = time.time() + rng.random() * interval
        paths, weights = zip(*PATHS)
        while next_at < until:
            time.sleep(max(0.0, next_at - time.time()))
            path = rng.choices(paths, weights)[0]
            sent = time.time()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            results.append((sent, path, status, time.time() - sent))
            next_at += interval

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    return workers


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=300, help="requests a second")
    parser.add_argument("--protocol", default="http/protobuf", choices=["http/protobuf", "grpc"])
    parser.add_argument("--out", default=str(ROOT / "docs/soak.md"))
    args = parser.parse_args()

    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "wasmlens", "--bin", "wasmlens",
         "-p", "wasmlens-test-support", "--example", "otlp_sink"],
        cwd=ROOT, check=True,
    )
    grpc, http_port, port = free_port(), free_port(), free_port()
    sink = Sink(grpc, http_port)
    sink.start()
    endpoint = f"http://127.0.0.1:{grpc if args.protocol == 'grpc' else http_port}"
    env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
               OTEL_EXPORTER_OTLP_PROTOCOL=args.protocol, RUST_LOG="info")
    stderr_path = ROOT / "target/soak-stderr.log"
    with open(stderr_path, "w") as stderr:
        server = subprocess.Popen(
            [WASMLENS, "serve", "--listen", f"127.0.0.1:{port}", "--timeout", "100ms", GUEST],
            env=env, stderr=stderr, stdout=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                sys.exit(f"wasmlens did not start: see {stderr_path}")
            time.sleep(0.1)

    duration = args.minutes * 60
    start = time.time()
    results = []
    workers = load(port, args.rate, start + duration, results, threads=8)
    rss = []  # (seconds since start, KiB)
    phases = []  # (start, end, state)
    schedule = [(start + f * duration, state) for f, state in SCHEDULE]
    state = "up"
    for i, (at, next_state) in enumerate(schedule):
        end = schedule[i + 1][0] if i + 1 < len(schedule) else start + duration
        if next_state != state:
            if next_state == "killed":
                sink.kill()
            elif next_state == "stopped":
                sink.stop()
            elif state == "killed":
                sink.start()
            elif state == "stopped":
                sink.resume()
            state = next_state
        phases.append((at, end, state))
        print(f"{at - start:6.0f}s  collector {state}", flush=True)
        while time.time() < end:
            rss.append((time.time() - start, rss_kib(server.pid)))
            time.sleep(1)
    for w in workers:
        w.join()
    # Let the last batches go, then stop the server: its final flush goes to the sink.
    time.sleep(3)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    time.sleep(2)
    sink.kill()
    report(args, results, rss, phases, start, sink, stderr_path.read_text())


def report(args, results, rss, phases, start, sink, stderr):
    lines = []
    out = lines.append
    out("# Soak: a collector away for minutes")
    out("")
    out(f"Written by `scripts/soak.py` on {time.strftime('%Y-%m-%d', time.gmtime(start))}: "
        f"{args.minutes:g} minutes of `wasmlens serve --timeout 100ms http-misbehave.wasm` "
        f"(release build) at {args.rate:g} requests/s "
        f"({', '.join(f'{int(w * 100)} % `{p}`' for p, w in PATHS)}), full telemetry over "
        f"OTLP {args.protocol} to a counting sink, on {os.cpu_count()} cores. The collector was:")
    out("")
    out("| from | to | collector | requests | /ok answered 200 | /ok p50 | /ok p99 | RSS at end |")
    out("|---|---|---|---|---|---|---|---|")
    for at, end, state in phases:
        inside = [r for r in results if at <= r[0] < end]
        ok = [r for r in inside if r[1] == "/ok"]
        ok_200 = sum(1 for r in ok if r[2] == 200)
        lat = [r[3] * 1000 for r in ok]
        rss_end = [kib for t, kib in rss if t <= end - start]
        state_text = {"up": "up", "killed": "killed (refuses connections)",
                      "stopped": "stopped (accepts, never answers)"}[state]
        out(f"| {at - start:.0f} s | {end - start:.0f} s | {state_text} | {len(inside)} | "
            f"{ok_200} / {len(ok)} | {percentile(lat, 50):.2f} ms | {percentile(lat, 99):.2f} ms | "
            f"{(rss_end[-1] if rss_end else 0) / 1024:.1f} MiB |")
    out("")
    by_path = {}
    for _, path, status, _ in results:
        by_path.setdefault(path, {}).setdefault(status, 0)
        by_path[path][status] += 1
    out("Requests: " + "; ".join(
        f"`{p}` " + ", ".join(f"{n} × {s or 'no answer'}" for s, n in sorted(st.items()))
        for p, st in sorted(by_path.items())) + ".")
    values = [kib for _, kib in rss]
    out("")
    out(f"RSS (sampled every second): min {min(values) / 1024:.1f} MiB, "
        f"max {max(values) / 1024:.1f} MiB, at the end {values[-1] / 1024:.1f} MiB.")
    out("")
    out("| s | " + " | ".join(f"{t:.0f}" for t, _ in rss[::30]) + " |")
    out("|---|" + "---|" * len(rss[::30]))
    out("| RSS MiB | " + " | ".join(f"{kib / 1024:.0f}" for _, kib in rss[::30]) + " |")
    out("")
    sdk = sink.last_sdk()
    def counted(name, error=None):
        total = 0
        for key, value in sdk.items():
            if key.startswith(name + "{") and ((error is None and "error.type" not in key)
                                               or (error and f"error.type={error}" in key)):
                total += value
        return int(total)
    exported = counted("otel.sdk.exporter.span.exported")
    failed = counted("otel.sdk.exporter.span.exported", "export_failed")
    timed_out = counted("otel.sdk.exporter.span.exported", "timeout")
    queue_full = counted("otel.sdk.processor.span.processed", "queue_full")
    summary = next((l for l in stderr.splitlines() if "were not exported" in l), "nothing lost")
    out("Spans:")
    out("")
    out(f"- received by the sink, over its lives: {sink.received('spans')}")
    out(f"- exported as wasmlens counts them (`otel.sdk.exporter.span.exported`): {exported}")
    out(f"- lost in failed exports: {failed}; in exports that timed out: {timed_out}; "
        f"turned away by the full queue (`otel.sdk.processor.span.processed`, "
        f"`error.type=queue_full`): {queue_full}")
    out("")
    logs_exported = counted("otel.sdk.exporter.log.exported")
    logs_lost = sum(counted("otel.sdk.exporter.log.exported", e) for e in ("export_failed", "timeout"))
    logs_lost += counted("otel.sdk.processor.log.processed", "queue_full")
    out(f"Log records: received by the sink {sink.received('logs')}; exported as wasmlens counts "
        f"them {logs_exported}; lost {logs_lost}.")
    out("")
    out(f"Said at exit: `{summary.strip()}`")
    out("")
    out("Time from the collector's return to its first span:")
    out("")
    returns = [(life, life["started"], "restarted") for life in sink.lives[1:]]
    returns += [(life, life["resumed"], "resumed from SIGSTOP") for life in sink.lives if "resumed" in life]
    for life, back, how in sorted(returns, key=lambda r: r[1]):
        before = max([l["spans"] for l in life["lines"] if l["t"] < back], default=0)
        first = next((l["t"] for l in life["lines"] if l["t"] >= back and l["spans"] > before), None)
        took = f"{first - back:.1f} s" if first else "no span"
        out(f"- {how} at {back - start:.0f} s: {took}")
    out("")
    out("What wasmlens said about its exports (target `wasmlens::export`):")
    out("")
    out("```text")
    export_lines = [re.sub(r"^\S+\s+", "", l) for l in stderr.splitlines() if "wasmlens::export" in l]
    for l in export_lines[:40]:
        out(l[:400])
    out("```")
    out_path = pathlib.Path(args.out)
    kept = "\n"
    if out_path.exists() and ANALYSIS_MARKER in out_path.read_text():
        kept = out_path.read_text().split(ANALYSIS_MARKER, 1)[1]
    out_path.write_text("\n".join(lines) + "\n\n" + ANALYSIS_MARKER + kept)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
