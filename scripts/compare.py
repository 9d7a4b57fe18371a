#!/usr/bin/env python3
"""What one setting or one change costs: wasmlens contenders on one guest, alternated round
by round in the same minutes, each reported as its median requests/s and CPU time a request
against the first contender's.

A contender is the benchmark's B (telemetry off), C (full telemetry to a sink on loopback)
or D (the defaults: the view, no exporter), as scripts/bench.py sets them up; `KEY@PATH`
runs the wasmlens binary at PATH instead of --wasmlens, and the VAR=VALUE arguments after a
key are variables of its own:

    python3 scripts/compare.py B C C OTEL_TRACES_SAMPLER=always_off \\
        C OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
    python3 scripts/compare.py D@/tmp/before/wasmlens D      # a change, before and after

Build first (scripts/bench.sh does, or `cargo build --release -p wasmlens
-p wasmlens-test-support --example otlp-sink`); wrk must be installed.
"""

import argparse
import pathlib
import statistics
import subprocess
import sys
import time

import bench


class Variant:
    def __init__(self, spec: str, default_binary: pathlib.Path):
        key, _, binary = spec.partition("@")
        if key not in ("B", "C", "D"):
            sys.exit(f"{spec!r}: a contender is B, C or D, optionally @PATH to a wasmlens binary")
        self.key = key
        self.binary = pathlib.Path(binary) if binary else default_binary
        self.env: dict[str, str] = {}
        self.name = spec

    def set(self, assignment: str) -> None:
        name, _, value = assignment.partition("=")
        self.env[name] = value
        self.name += f" {assignment}"

    def start(self, guest: pathlib.Path, port: int, log) -> subprocess.Popen:
        """Starts it on `port`, its stderr appended to `log` (where wasmlens says which of
        its variables it could not read)."""
        log.write(f"--- {self.name}\n")
        log.flush()
        return bench.Contender(self.key, self.binary, guest).start(port, env=self.env, stderr=log)


def parse(specs: list[str], default_binary: pathlib.Path) -> list[Variant]:
    variants: list[Variant] = []
    for arg in specs:
        if "=" in arg.partition("@")[0]:
            if not variants:
                sys.exit(f"{arg!r} comes before any contender (B, C or D)")
            variants[-1].set(arg)
        else:
            variants.append(Variant(arg, default_binary))
    for variant in variants:
        if not variant.binary.exists():
            sys.exit(f"{variant.binary} does not exist (build it first)")
    return variants


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("contenders", nargs="+", metavar="KEY[@PATH] [VAR=VALUE ...]")
    parser.add_argument("--wasmlens", default=str(bench.ROOT / "target/release/wasmlens"))
    parser.add_argument("--guest", default="WAT hello", choices=list(bench.GUESTS))
    parser.add_argument("--rounds", type=int, default=8,
                        help="at least this many, rounded up to a multiple of the contenders")
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes: proves the script works")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, "1s"
    variants = parse(args.contenders, pathlib.Path(args.wasmlens))
    guest = bench.GUESTS[args.guest]
    if not guest.exists():
        sys.exit(f"{guest} is not built (scripts/bench.sh builds it)")
    # Every contender gets the first slot equally often (a smoke run proves only that it runs).
    rounds = 1 if args.smoke else -(-args.rounds // len(variants)) * len(variants)
    log_path = bench.ROOT / "target/compare.log"
    measured: dict[int, list[dict]] = {i: [] for i in range(len(variants))}
    with open(log_path, "w") as log, OtlpSink(variants, pathlib.Path(args.wasmlens)) as sink:
        for round_ in range(rounds):
            order = list(range(len(variants)))
            order = order[round_ % len(order):] + order[:round_ % len(order)]
            figures = []
            for i in order:
                result = measure(variants[i], guest, args, log)
                measured[i].append(result)
                figures.append(f"{variants[i].name} {result['rps']:,.0f}/s {result['cpu_us']:.1f} µs")
                if variants[i].key == "C":
                    sink.drain()
            # Each round's figures, so that the spread behind a median can be seen.
            print(f"round {round_ + 1} of {rounds}: " + ", ".join(figures), file=sys.stderr, flush=True)

    medians = [(statistics.median(r["rps"] for r in m), statistics.median(r["cpu_us"] for r in m),
                sum(r["errors"] for r in m)) for m in measured.values()]
    base_rps, base_cpu, _ = medians[0]
    print(f"{args.guest}, {rounds} rounds of {args.duration}, medians (wasmlens's stderr: {log_path})\n")
    print("| contender | requests/s | against the first | CPU µs a request | against the first | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant, (rps, cpu, errors) in zip(variants, medians):
        print(f"| {variant.name} | {rps:,.0f} | {rps / base_rps - 1:+.1%} | {cpu:.1f} "
              f"| {cpu / base_cpu - 1:+.1%} | {errors} |")
    if any(errors for _, _, errors in medians):
        print("\nSome requests failed: their contender's figures do not measure what it should.")
        return 1
    return 0


def measure(variant: Variant, guest: pathlib.Path, args, log) -> dict:
    """One round of one contender: started, warmed up, loaded, and stopped however that ends."""
    port = bench.free_port()
    proc = variant.start(guest, port, log)
    try:
        bench.wait_ready(port, proc)
        bench.wrk(port, "1s", args.connections)  # warm-up
        return bench.wrk(port, args.duration, args.connections, proc.pid)
    finally:
        bench.stop(proc)


class OtlpSink:
    """C's OTLP sink (the one built beside `wasmlens`), when a contender is C."""

    def __init__(self, variants: list[Variant], wasmlens: pathlib.Path):
        self.binary = wasmlens.parent / "examples/otlp-sink"
        self.needed = any(v.key == "C" for v in variants)
        self.proc = None

    def __enter__(self):
        if not self.needed:
            return self
        if not self.binary.exists():
            sys.exit(f"{self.binary} does not exist (build it first)")
        self.proc = subprocess.Popen([str(self.binary), "--http", str(bench.SINK_PORT)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"the OTLP sink exited at once (is port {bench.SINK_PORT} taken?)")
            try:
                bench.sink_stats()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"the OTLP sink did not answer on port {bench.SINK_PORT}")
                time.sleep(0.05)

    def drain(self) -> None:
        """Empties the sink, which holds what it received until asked."""
        bench.sink_stats()

    def __exit__(self, *_):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()


if __name__ == "__main__":
    sys.exit(main())
