#!/usr/bin/env python3
"""Builds the Python guest in py/ into target/guests/py-app.wasm with componentize-py.

It is the benchmark's real-world Python guest: CPython inside, 18 MB, 254 initial pages.
Too large to commit and too slow to load for the tests (several seconds to compile), so
the benchmark builds it when it runs:

    python3 guests/build_py.py            # build (or keep, if its inputs have not changed)

Needs componentize-py 0.25.1 (PyPI; scripts/bench.sh installs it).
"""
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "target" / "guests" / "py-app.wasm"
VERSION = "0.25.1"


def main() -> int:
    source = HERE / "py" / "app.py"
    stamp = OUT.with_suffix(".sha256")
    digest = hashlib.sha256(source.read_bytes() + VERSION.encode()).hexdigest()
    if OUT.exists() and stamp.exists() and stamp.read_text() == digest:
        print(f"{OUT.relative_to(HERE.parent)} is current")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        (pathlib.Path(tmp) / "app.py").write_text(source.read_text())
        subprocess.run(["componentize-py", "-d", HERE / "wit", "-w", "wasi:http/proxy@0.2.12",
                        "componentize", "app", "-o", OUT], check=True, cwd=tmp,
                       env={**os.environ, "RUST_BACKTRACE": "0"})
    stamp.write_text(digest)
    print(f"built {OUT.relative_to(HERE.parent)} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
