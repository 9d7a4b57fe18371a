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

    def start(self, guest: pathlib.Path, port: int) -> subprocess.Popen:
        argv, env = bench.Contender(self.key, self.binary, guest).command(port)
        env.update(self.env)
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes: proves the script works")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, "1s"
    variants = parse(args.contenders, pathlib.Path(args.wasmlens))
    guest = bench.GUESTS[args.guest]
    # The sink built beside the first contender's binary.
    sink = subprocess.Popen(
        [str(variants[0].binary.parent / "examples/otlp-sink"), "--http", str(bench.SINK_PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    measured: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(variants))}
    try:
        time.sleep(0.3)
        for round_ in range(args.rounds):
            # Each round starts one contender later, so none is always first.
            order = list(range(len(variants)))
            order = order[round_ % len(order):] + order[:round_ % len(order)]
            for i in order:
                port = bench.free_port()
                proc = variants[i].start(guest, port)
                bench.wait_ready(port, proc)
                bench.wrk(port, "1s", args.connections)  # warm-up
                result = bench.wrk(port, args.duration, args.connections, proc.pid)
                bench.stop(proc)
                measured[i].append((result["rps"], result["cpu_us"]))
            print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    finally:
        sink.terminate()
        sink.wait()

    medians = [(statistics.median(r for r, _ in m), statistics.median(c for _, c in m))
               for m in measured.values()]
    base_rps, base_cpu = medians[0]
    print(f"{args.guest}, {args.rounds} rounds of {args.duration}, medians\n")
    print("| contender | requests/s | against the first | CPU µs a request | against the first |")
    print("|---|---:|---:|---:|---:|")
    for variant, (rps, cpu) in zip(variants, medians):
        print(f"| {variant.name} | {rps:,.0f} | {rps / base_rps - 1:+.1%} | {cpu:.1f} | {cpu / base_cpu - 1:+.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
