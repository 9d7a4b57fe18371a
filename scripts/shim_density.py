#!/usr/bin/env python3
"""How many wasmlens tasks containerd starts, and what each costs: a private containerd
(Debian's, as root) under a temp dir, the release shim, and images built here.

  scripts/shim_density.py [--shim target/release/containerd-shim-wasmlens-v1]

Reports: 100 command tasks started one after another (`ctr run --rm`, each to its exit),
20 at once, and the shim's memory (RSS and PSS) per running HTTP task, with 10 served at
once. runwasi publishes 1000 tasks in 3.03 s for its wasmtime shim (its benchmark
starts tasks through containerd's API in one process, not one `ctr` per task; here each
task also pays for a `ctr` process and its image lookup)."""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from oci_image import image_tar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Containerd:
    def __init__(self, base):
        self.dir = base
        config = f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{base}/containerd.sock"
[ttrpc]
  address = "{base}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
"""
        with open(f"{base}/config.toml", "w") as f:
            f.write(config)
        env = dict(os.environ, WASMLENS_CACHE_DIR=f"{base}/cache", RUST_BACKTRACE="0",
                   OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
        self.log = open(f"{base}/containerd.log", "w")
        self.process = subprocess.Popen(["containerd", "--config", f"{base}/config.toml"],
                                        stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 20
        while self.ctr("version", check=False).returncode != 0:
            if time.time() > deadline:
                sys.exit("containerd did not start")
            time.sleep(0.05)

    def ctr(self, *args, check=True):
        result = subprocess.run(["ctr", "--address", f"{self.dir}/containerd.sock", *args],
                                capture_output=True, text=True)
        if check and result.returncode != 0:
            sys.exit(f"ctr {' '.join(args)} failed: {result.stderr}")
        return result

    def stop(self):
        self.process.terminate()
        self.process.wait()
        subprocess.run(["pkill", "-9", "-f", f"{self.dir}/containerd.sock"], check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_of(pid):
    """RSS and PSS of a process, in KiB."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:"):
                values[parts[0][:-1]] = int(parts[1])
    return values["Rss"], values["Pss"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shim", default=f"{ROOT}/target/release/containerd-shim-wasmlens-v1")
    parser.add_argument("--serial", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--http", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("containerd"):
        sys.exit("needs root and containerd (scripts/setup.sh installs it)")
    shim = os.path.abspath(args.shim)
    base = tempfile.mkdtemp(prefix="wasmlens-density-")
    containerd = Containerd(base)
    try:
        for name, guest in [("command", "command"), ("hello", "http-hello")]:
            with open(f"{ROOT}/guests/components/{guest}.wasm", "rb") as f:
                path = f"{base}/{name}.tar"
                with open(path, "wb") as out:
                    out.write(image_tar(f"docker.io/wasmlens/{name}:bench", f.read()))
            containerd.ctr("images", "import", "--all-platforms", path)
        run = ["run", "--rm", "--platform", "wasip1/wasm", "--runtime", shim,
               "docker.io/wasmlens/command:bench"]
        # Warm: the first task compiles the component into the cache.
        containerd.ctr(*run, "warm", "/app.wasm", "args", "x")

        times = []
        started = time.perf_counter()
        for i in range(args.serial):
            t = time.perf_counter()
            containerd.ctr(*run, f"serial-{i}", "/app.wasm", "args", "x")
            times.append(time.perf_counter() - t)
        serial_total = time.perf_counter() - started

        started = time.perf_counter()
        processes = [subprocess.Popen(["ctr", "--address", f"{base}/containerd.sock", *run,
                                       f"concurrent-{i}", "/app.wasm", "args", "x"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for i in range(args.concurrent)]
        failed = sum(p.wait() != 0 for p in processes)
        concurrent_total = time.perf_counter() - started

        ports = []
        for i in range(args.http):
            port = free_port()
            ports.append(port)
            containerd.ctr("run", "-d", "--net-host", "--platform", "wasip1/wasm", "--runtime", shim,
                           "--env", f"WASMLENS_LISTEN=127.0.0.1:{port}",
                           "docker.io/wasmlens/hello:bench", f"web-{i}")
        for port in ports:
            deadline = time.time() + 20
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                    break
                except OSError:
                    if time.time() > deadline:
                        sys.exit(f"the task on port {port} did not answer")
                    time.sleep(0.05)
        pids = [int(line.split()[1]) for line in containerd.ctr("task", "ls").stdout.splitlines()[1:]
                if line.startswith("web-")]
        memory = [memory_of(pid) for pid in pids]
        for i in range(args.http):
            containerd.ctr("task", "kill", f"web-{i}")
        for i in range(args.http):
            deadline = time.time() + 20
            while "STOPPED" not in containerd.ctr("task", "ls").stdout.split(f"web-{i}")[1].splitlines()[0]:
                if time.time() > deadline:
                    sys.exit(f"web-{i} did not stop")
                time.sleep(0.05)
            containerd.ctr("task", "delete", f"web-{i}")
            containerd.ctr("container", "delete", f"web-{i}")

        version = subprocess.run(["containerd", "--version"], capture_output=True, text=True).stdout.split()[2]
        rss = statistics.median(m[0] for m in memory) / 1024
        pss = statistics.median(m[1] for m in memory) / 1024
        print(f"containerd {version}, shim {shim}")
        print()
        print("| measure | wasmlens shim |")
        print("|---|---:|")
        print(f"| {args.serial} command tasks one after another (`ctr run --rm`, to exit) | "
              f"{serial_total:.2f} s, {serial_total / args.serial * 1000:.1f} ms a task "
              f"(median {statistics.median(times) * 1000:.1f} ms, p90 "
              f"{sorted(times)[int(len(times) * 0.9)] * 1000:.1f} ms) |")
        print(f"| {args.concurrent} command tasks at once | {concurrent_total:.2f} s for all "
              f"({failed} failed) |")
        print(f"| shim memory per running HTTP task ({args.http} served at once) | "
              f"RSS {rss:.1f} MiB, PSS {pss:.1f} MiB (median) |")
    finally:
        containerd.stop()
        subprocess.run(["sh", "-c", f"grep ' {base}' /proc/self/mountinfo | cut -d' ' -f5 | sort -r | xargs -r -n1 umount -l"], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
