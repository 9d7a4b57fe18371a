#!/usr/bin/env python3
"""Retakes the README's screenshots of the built-in view (docs/view-overview.png and
docs/view-trace.png) from a real run: `wasmlens serve` of the misbehaving guest with a fuel
limit, 75 s of requests at a rate that rises and falls (93 % /ok, 3.5 % /trap, 3.5 % /loop),
then the page in Debian's chromium through the browser test's own driver
(crates/wasmlens/tests/browser/look.py). Needs what scripts/setup.sh installs.

    scripts/view_screenshots.py [--wasmlens target/debug/wasmlens] [--seconds 75]
"""
import argparse
import json
import pathlib
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVE, VIEW = "127.0.0.1:18180", "127.0.0.1:18181"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wasmlens", default=str(ROOT / "target/debug/wasmlens"))
    parser.add_argument("--seconds", type=float, default=75)
    args = parser.parse_args()
    server = subprocess.Popen(
        [args.wasmlens, "serve", "--listen", SERVE, "--ui-listen", VIEW, "--fuel", "5000000",
         "--max-memory", "16MiB", str(ROOT / "guests/components/http-misbehave.wasm")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://{SERVE}/ok", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("wasmlens did not start")
                time.sleep(0.1)
        random.seed(1)
        end = time.time() + args.seconds
        while time.time() < end:
            phase = (time.time() % 30) / 30
            rate = 40 + 120 * (phase if phase < 0.5 else 1 - phase)
            r = random.random()
            path = "/ok" if r < 0.93 else "/trap" if r < 0.965 else "/loop"
            try:
                urllib.request.urlopen(f"http://{SERVE}{path}", timeout=5).read()
            except OSError:
                pass  # the failing paths answer 500
            time.sleep(1 / rate)
        failed = json.load(urllib.request.urlopen(f"http://{VIEW}/api/traces?errors=true&limit=1"))
        with tempfile.TemporaryDirectory() as shots:
            subprocess.run(
                ["python3", str(ROOT / "crates/wasmlens/tests/browser/look.py"), "--url", f"http://{VIEW}",
                 "--failed-trace", failed[0]["trace_id"], "--screenshots", shots],
                check=True, stdout=subprocess.DEVNULL)
            shutil.copy(f"{shots}/overview.png", ROOT / "docs/view-overview.png")
            shutil.copy(f"{shots}/trace.png", ROOT / "docs/view-trace.png")
    finally:
        server.terminate()
        server.wait()
    print("docs/view-overview.png and docs/view-trace.png retaken")


if __name__ == "__main__":
    main()
