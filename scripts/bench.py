#!/usr/bin/env python3
"""wasmlens against `wasmtime serve` 48.0.2, on one machine, in one run.

Contenders, alternated A B C D E / B C D E A / ... round after round so that drift hits
all alike:
  A  wasmtime serve 48.0.2 (no telemetry)
  B  wasmlens serve, telemetry off (OTEL_SDK_DISABLED=true)
  C  wasmlens serve, full telemetry: traces sampled 100 %, metrics and logs, exported with
     the defaults wasmlens ships (OTLP http/protobuf) to a sink on loopback that answers at
     once and decodes nothing while the load runs; the built-in view on, as by default
  D  wasmlens serve with its defaults: no exporter, the built-in view on (recording every
     trace, log record and metric in memory)
  E  wasmlens serve, telemetry off, --bounds-checks explicit (no mprotect per request for
     guests whose memory grows)
  F  C, with spans encoded by the OpenTelemetry SDK's exporter (WASMLENS_OTLP_SPAN_ENCODER=sdk):
     what full telemetry cost before wasmlens encoded its spans itself

For each guest: requests/s (median of the rounds), p50 and p99 latency, errors, RSS idle
and under load, spans exported against requests served (C), instantiation time per
request (C, from its own metric), and instructions per request under callgrind (B to E).
Then `wasmlens run` against `wasmtime run` wall time for the command guest. Writes
BENCHMARKS.md. Run it through scripts/bench.sh, which installs what it needs.
"""
import argparse
import json
import os
import pathlib
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
WASMTIME = ROOT / "target/tools/wasmtime"
GUESTS = {
    "WAT hello": ROOT / "guests/components/http-hello.wasm",
    "C hello": ROOT / "guests/components/c-http-hello.wasm",
    # One wasi:keyvalue `open` and one `get` on the default store, per request: the memory
    # store for wasmlens (a PluginOperation span each under full telemetry), wasmtime's
    # in-memory store (`-S keyvalue`) for the reference host.
    "WAT key-value": ROOT / "guests/components/http-kv.wasm",
    # Guests as real toolchains build them. A C service with zig's default layout (257
    # pages, a heap that grows at every request), and a componentize-py app (built into
    # target/ by guests/build_py.py, which bench.sh runs; not in --smoke: it takes
    # minutes to compile with a debug build).
    "C app (zig defaults)": ROOT / "guests/components/c-http-app.wasm",
    "Python app (componentize-py)": ROOT / "target/guests/py-app.wasm",
}
SLOW_GUESTS = {"py-app.wasm"}
# What the reference host needs to be told to link for a guest.
WASMTIME_FLAGS = {"http-kv.wasm": ["-S", "keyvalue"], "py-app.wasm": ["-S", "cli"]}
COMMAND = ROOT / "guests/components/command.wasm"
SINK_PORT = 14318
KEYS = "ABCDEF"
# The contenders each guest is measured with: F (the SDK's encoder) only where the
# comparison is about telemetry's cost, not for the Python guest (its milliseconds of
# interpreter dwarf it).
GUEST_KEYS = {"py-app.wasm": "ABCDE"}
# Spans per request (HttpRequest, HttpResponse, ComponentInstantiation, ComponentInvocation)
# and per process (WorkloadStart with the ComponentInstantiation that checks the component
# starts, four WorkloadStateChange, WorkloadStop).
SPANS_PER_REQUEST = 4
SPANS_PER_PROCESS = 7
# A guest's own: the key-value guest's `open` and `get` are a PluginOperation each, and
# its store's binding a PluginBind.
EXTRA_SPANS = {"http-kv.wasm": (2, 1)}


def spans_for(guest: pathlib.Path) -> tuple[int, int]:
    """Spans per request and per process for `guest`."""
    per_request, per_process = EXTRA_SPANS.get(guest.name, (0, 0))
    return SPANS_PER_REQUEST + per_request, SPANS_PER_PROCESS + per_process
ANALYSIS_MARKER = "<!-- Written by hand from here on; scripts/bench.py keeps it. -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"a contender exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                r.read()
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing answered on port {port} within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all threads) the process has used so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Contender:
    def __init__(self, key: str, wasmlens: pathlib.Path, guest: pathlib.Path):
        self.key, self.wasmlens, self.guest = key, wasmlens, guest

    def command(self, port: int) -> tuple[list[str], dict]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["RUST_BACKTRACE"] = "0"  # backtraces cost every contender throughput
        listen = f"127.0.0.1:{port}"
        if self.key == "A":
            flags = WASMTIME_FLAGS.get(self.guest.name, [])
            return [str(WASMTIME), "serve", "--addr", listen, *flags, str(self.guest)], env
        flags = []
        if self.key in "BE":
            env["OTEL_SDK_DISABLED"] = "true"
            if self.key == "E":
                flags = ["--bounds-checks", "explicit"]
        else:
            # The view on, as by default, on an address of its own: the default one taken
            # would only cost the view (and so not measure it).
            flags = ["--ui-listen", f"127.0.0.1:{free_port()}"]
        if self.key in "CF":
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{SINK_PORT}"
            env["OTEL_TRACES_SAMPLER"] = "always_on"
        if self.key == "F":
            env["WASMLENS_OTLP_SPAN_ENCODER"] = "sdk"
        return [str(self.wasmlens), "serve", "--listen", listen, *flags, str(self.guest)], env

    def start(self, port: int, extra: list[str] = (), env: dict | None = None,
              stderr=subprocess.DEVNULL) -> subprocess.Popen:
        """Starts it on `port`, with `extra` flags and `env` variables beside its own."""
        argv, own_env = self.command(port)
        if extra:
            argv = argv[:-1] + list(extra) + argv[-1:]
        own_env.update(env or {})
        return subprocess.Popen(argv, env=own_env, stdout=subprocess.DEVNULL, stderr=stderr)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(port: int, seconds: str, connections: int, pid: int | None = None) -> dict:
    proc = subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}", "--latency", f"http://127.0.0.1:{port}/"],
        stdout=subprocess.PIPE, text=True)
    rss = 0
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    if pid is not None:  # under load: sample the contender's RSS halfway through
        time.sleep(parse_seconds(seconds) / 2)
        rss = rss_kib(pid)
    out, _ = proc.communicate()
    cpu = cpu_seconds(pid) - cpu_before if pid is not None else float("nan")
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * unit[m.group(2)] if m else float("nan")

    served = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)",):
        m = re.search(pattern, out)
        errors += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": errors,
        "served": served,
        "rss_load": rss,
        # The contender's CPU time (all its threads: for C, the exporter's too) per request.
        "cpu_us": cpu / served * 1e6 if served else float("nan"),
    }


def parse_seconds(text: str) -> float:
    return float(text[:-1]) if text.endswith("s") else float(text)


def sink_stats() -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{SINK_PORT}/stats", timeout=60) as r:
        return json.loads(r.read())


def scrape(url: str) -> dict[str, float]:
    """The Prometheus endpoint's series, summed over their labels."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    series: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            series[name] = series.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return series


def throughput(guest: pathlib.Path, wasmlens: pathlib.Path, rounds: int, seconds: str,
               connections: int) -> dict:
    keys = GUEST_KEYS.get(guest.name, KEYS)
    results = {k: [] for k in keys}
    orders = [keys[i:] + keys[:i] for i in range(len(keys))]
    for round_ in range(rounds):
        for key in orders[round_ % len(orders)]:
            contender = Contender(key, wasmlens, guest)
            port = free_port()
            metrics_port = free_port()
            exports = key in "CF"
            if exports:
                sink_stats()  # forgets what earlier runs (callgrind's) sent
            extra = ["--metrics-listen", f"127.0.0.1:{metrics_port}"] if exports else []
            proc = contender.start(port, extra)
            wait_ready(port, proc)
            time.sleep(0.2)
            idle = rss_kib(proc.pid)
            warm = wrk(port, "1s", connections)
            result = wrk(port, seconds, connections, pid=proc.pid)
            result["rss_idle"] = idle
            if exports:
                # What the server answered (wrk does not count the requests in flight when
                # it stops), by the server's own metric, which is not exported with spans.
                time.sleep(0.2)
                series = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
                total = series.get("component_instantiation_duration_seconds_sum", 0.0)
                count = series.get("component_instantiation_duration_seconds_count", 0.0)
                result["instantiation_us"] = total / count * 1e6 if count else float("nan")
                served = series.get("http_requests_total", 0.0)
            stop(proc)
            if exports:
                result["spans"] = sink_stats()["spans"]
                per_request, per_process = spans_for(guest)
                result["spans_expected"] = int(served) * per_request + per_process
            results[key].append(result)
            print(f"  round {round_ + 1} {key}: {result['rps']:.0f} req/s, p50 {result['p50']:.2f} ms, "
                  f"p99 {result['p99']:.2f} ms, errors {result['errors']}"
                  + (f", spans {result['spans']}/{result['spans_expected']}" if exports else ""),
                  flush=True)
    return results


def callgrind(guest: pathlib.Path, wasmlens: pathlib.Path, key: str, small: int,
              large: int) -> tuple[float, float]:
    """Instructions per request: the difference between runs of `small` and `large`
    sequential requests, so that startup and shutdown cancel out. Both runs compile the
    component (no cache): a cache filled outside valgrind does not serve under it, whose
    CPU features change the engine's compatibility hash, so one run would compile and
    the other load, and the difference would not be the requests'.

    Returns the instructions of every thread but the metric readers', and those of the
    metric readers' threads apart: their periodic collections come with time, not with
    requests, and callgrind runs the server tens of times slower than it runs, so it
    counts tens of times as many of them per request as a server at full speed does."""
    totals, periodic = [], []
    for n in (small, large):
        contender = Contender(key, wasmlens, guest)
        port = free_port()
        argv, env = contender.command(port)
        # The pooling allocator reserves more address space than valgrind can map (with
        # explicit bounds checks, 8 GiB a memory); the requests come one at a time.
        argv = argv[:-1] + ["--max-concurrent-requests", "1"] + argv[-1:]
        env["WASMLENS_CACHE_DIR"] = "off"
        with tempfile.TemporaryDirectory() as tmp:
            out = pathlib.Path(tmp) / "callgrind.out"
            proc = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                 f"--callgrind-out-file={out}", *argv],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_ready(port, proc, timeout=600)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(n - 1):  # the readiness probe was the first
                conn.request("GET", "/")
                conn.getresponse().read()
            conn.close()
            stop(proc)
            total = readers = 0
            for thread in pathlib.Path(tmp).glob("callgrind.out-*"):
                text = thread.read_text(errors="replace")
                count = int(re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M).group(1))
                total += count
                if "PeriodicReaderInner" in text:
                    readers += count
            totals.append(total - readers)
            periodic.append(readers)
    requests = large - small
    return (totals[1] - totals[0]) / requests, (periodic[1] - periodic[0]) / requests


def run_vs_wasmtime(wasmlens: pathlib.Path, runs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["RUST_BACKTRACE"] = "0"
    out = pathlib.Path(tempfile.mkdtemp()) / "hyperfine.json"
    subprocess.run(
        ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", str(out),
         "-n", "wasmtime run", f"{WASMTIME} run {COMMAND}",
         "-n", "wasmlens run", f"{wasmlens} run {COMMAND}"],
        env=env, check=True, stdout=subprocess.DEVNULL)
    results = json.loads(out.read_text())["results"]
    return {r["command"]: r["median"] * 1e3 for r in results}


def median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wasmlens", default=str(ROOT / "target/release/wasmlens"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--callgrind", nargs=2, type=int, default=[200, 1200], metavar=("SMALL", "LARGE"))
    parser.add_argument("--run-repeats", type=int, default=30)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes: proves the script works")
    parser.add_argument("--guest", action="append", choices=list(GUESTS), metavar="NAME",
                        help="only this guest (repeatable); the report then has only these")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.callgrind, args.run_repeats = 1, "1s", [5, 15], 3
    wasmlens = pathlib.Path(args.wasmlens)

    sink = subprocess.Popen(
        [str(pathlib.Path(args.wasmlens).parent / "examples/otlp-sink"), "--http", str(SINK_PORT)],
        stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        report = {}
        for name, guest in GUESTS.items():
            if args.guest and name not in args.guest:
                continue
            if args.smoke and guest.name in SLOW_GUESTS:
                continue
            if not guest.exists():
                sys.exit(f"{guest} is not built (scripts/bench.sh builds it)")
            print(f"{name} ({guest.name}): {args.rounds} rounds of {args.duration}", flush=True)
            results = throughput(guest, wasmlens, args.rounds, args.duration, args.connections)
            print(f"{name}: callgrind, {args.callgrind[0]} and {args.callgrind[1]} requests", flush=True)
            small, large = args.callgrind
            instructions, periodic = {}, {}
            # Compiling an 18 MB component under valgrind takes too long: the slow guests
            # are measured by CPU time only.
            measured = "" if guest.name in SLOW_GUESTS else GUEST_KEYS.get(guest.name, KEYS)
            if args.smoke:
                # Proves the counting works, on the path with the most code (full telemetry)
                # and one guest: each count compiles its component under valgrind, minutes
                # with a debug build, and four guests by two contenders were a third of CI.
                measured = "C" if not report else ""
            for k in measured.replace("A", ""):
                instructions[k], periodic[k] = callgrind(guest, wasmlens, k, small, large)
                print(f"  callgrind {k}: {instructions[k]:,.0f} instructions a request, "
                      f"{periodic[k]:,.0f} more in the metric readers' threads", flush=True)
            report[name] = (results, instructions, periodic)
        print("run: hyperfine", flush=True)
        run = run_vs_wasmtime(wasmlens, args.run_repeats)
    finally:
        sink.terminate()
        sink.wait()

    lines = write_report(report, run, args)
    # A hand-written analysis below the marker survives regeneration.
    out = pathlib.Path(args.out)
    kept = ""
    if out.exists() and ANALYSIS_MARKER in out.read_text():
        kept = out.read_text().split(ANALYSIS_MARKER, 1)[1]
    out.write_text("\n".join(lines) + "\n\n" + ANALYSIS_MARKER + kept)
    print("\n".join(lines))
    return 0


def write_report(report, run, args) -> list[str]:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Benchmarks",
        "",
        "Written by `scripts/bench.sh` (which runs `scripts/bench.py`); run it again to regenerate this file.",
        "",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), the load generator on the same machine. "
        f"`wrk -t2 -c{args.connections} -d{args.duration} --latency` on loopback after a 1 s warm-up, "
        f"{args.rounds} rounds, contenders alternated A B C D E F / B C D E F A / ...; medians of the rounds. "
        "CPU µs/request is the contender's CPU time (user and system, all its threads) during the "
        "load over the requests it served: unlike requests/s, it does not depend on how much of "
        "the machine the contender got.",
        "",
        "- **A** `wasmtime serve` 48.0.2 (no telemetry)",
        "- **B** `wasmlens serve`, telemetry off (`OTEL_SDK_DISABLED=true`)",
        "- **C** `wasmlens serve`, full telemetry: traces sampled 100 % (4 spans a request), metrics "
        "and logs, exported with the shipped defaults (OTLP http/protobuf, batch queues of 65,536) "
        "to a sink on loopback that answers at once and decodes nothing; the built-in view on, as by default",
        "- **D** `wasmlens serve` with its defaults: no exporter, the built-in view on (every trace, "
        "log record and metric recorded in memory, within the default 64 MiB)",
        "- **E** `wasmlens serve`, telemetry off, `--bounds-checks explicit`: memory accesses checked "
        "in code, so a slot keeps grown memory accessible (no `mprotect` per request)",
        "- **F** C with its spans encoded and sent by the OpenTelemetry SDK's exporter "
        "(`WASMLENS_OTLP_SPAN_ENCODER=sdk`): what full telemetry cost before wasmlens encoded its "
        "own spans (not for the Python guest, whose interpreter dwarfs it)",
        "",
    ]
    labels = {"A": "A wasmtime serve", "B": "B wasmlens, telemetry off",
              "C": "C wasmlens, full telemetry", "D": "D wasmlens defaults (view on)",
              "E": "E wasmlens, telemetry off, explicit bounds checks",
              "F": "F full telemetry, spans encoded by the SDK's exporter"}
    for name, (results, instructions, periodic) in report.items():
        keys = list(results)
        rps = {k: median(r["rps"] for r in results[k]) for k in keys}
        p50 = {k: median(r["p50"] for r in results[k]) for k in keys}
        p99 = {k: median(r["p99"] for r in results[k]) for k in keys}
        errors = {k: sum(r["errors"] for r in results[k]) for k in keys}
        idle = {k: median(r["rss_idle"] for r in results[k]) / 1024 for k in keys}
        load = {k: median(r["rss_load"] for r in results[k]) / 1024 for k in keys}
        cpu = {k: median(r["cpu_us"] for r in results[k]) for k in keys}
        inst = median(r["instantiation_us"] for r in results["C"])
        lines += [
            f"## {name}",
            "",
            "| contender | requests/s | vs A | p50 ms | p99 ms | errors | RSS idle MiB | RSS load MiB | CPU µs/request | instructions/request |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key in keys:
            ins = f"{instructions[key]:,.0f}" if key in instructions else "-"
            lines.append(f"| {labels[key]} | {rps[key]:,.0f} | {rps[key] / rps['A']:.2f} | {p50[key]:.2f} | "
                         f"{p99[key]:.2f} | {errors[key]} | {idle[key]:.0f} | {load[key]:.0f} | "
                         f"{cpu[key]:.1f} | {ins} |")

        def versus(key: str, base: str) -> str:
            counted = (f"{instructions[key] / instructions[base] - 1:+.1%} instructions/request, "
                       if key in instructions and base in instructions else "")
            return (f"{rps[key] / rps[base] - 1:+.1%} requests/s, {counted}"
                    f"{cpu[key] / cpu[base] - 1:+.1%} CPU time/request")

        lines += [
            "",
            f"- full telemetry vs off: {versus('C', 'B')}",
        ]
        if "F" in keys:
            lines.append(f"- full telemetry with the SDK's span exporter vs off: {versus('F', 'B')}")
        lines += [
            f"- the defaults (view on, no exporter) vs telemetry off: {versus('D', 'B')}",
            f"- telemetry off vs `wasmtime serve`: {cpu['B'] / cpu['A'] - 1:+.1%} CPU time/request",
            f"- explicit bounds checks vs guard pages (both telemetry off): {versus('E', 'B')}",
        ]
        per_request, per_process = spans_for(GUESTS[name])
        for key in "CF":
            if key not in keys:
                continue
            spans = sum(r["spans"] for r in results[key])
            expected = sum(r["spans_expected"] for r in results[key])
            lines.append(
                f"- spans exported by {key} over all rounds: {spans:,}, for {expected:,} expected from "
                f"the requests it answered ({per_request} each, by its `http.requests`, plus "
                f"{per_process} for its workload): {max(expected - spans, 0):,} missing "
                "(requests that clients abandoned are traced but not counted)")
        readers = ", ".join(f"{k} {v:,.0f}" for k, v in periodic.items() if v >= 1)
        if readers:
            lines.append(
                "- instructions/request counts every thread but the metric readers', whose "
                "collections come with time, not requests (the view's every second, the OTLP "
                "exporter's every minute; under callgrind, which runs the server tens of times "
                "slower, tens of times as many per request). Their threads' instructions per "
                f"request under callgrind, apart: {readers}")
        lines += [
            f"- instantiation per request (C, its `component.instantiation.duration`): {inst:.1f} µs",
            "",
        ]
    lines += [
        "## `wasmlens run` vs `wasmtime run`",
        "",
        f"The command guest ({COMMAND.name}), `hyperfine -N --warmup 3 --runs {args.run_repeats}`, "
        "median wall time; both with their defaults: no exporter configured for wasmlens, and each "
        "loading the component from its compilation cache (wasmtime's own, wasmlens's "
        "`~/.cache/wasmlens`), which the warm-up runs fill.",
        "",
        "| command | ms | vs wasmtime |",
        "|---|---:|---:|",
    ]
    for command, ms in run.items():
        lines.append(f"| `{command}` | {ms:.1f} | {ms / run['wasmtime run']:.2f} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
