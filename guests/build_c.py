#!/usr/bin/env python3
"""Builds the C test guests in c/ into components in components/ (c-NAME.wasm).

They are the benchmark's second guest: a service built the way C and C++ services are,
through wasi-libc and wit-bindgen's bindings, rather than hand-written WAT.

    python3 guests/build_c.py           # rebuild components/c-*.wasm
    python3 guests/build_c.py --check   # fail if they are not what the sources build

Needs zig 0.17.1 (PyPI `ziglang==0.17.1`, which bundles wasi-libc; another version builds
other bytes), `wit-bindgen` 0.63.0
(`cargo install wit-bindgen-cli --version 0.63.0 --locked --no-default-features --features c`,
about 7 minutes, which is why CI checks only the WAT guests), `wasm-tools`, and the preview1
proxy adapter from the crates.io crate `wasi-preview1-component-adapter-provider` 48 (found
in the cargo registry; `cargo fetch` brings it).
"""
import glob
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build import wasm_tools, write_or_check  # noqa: E402

GUESTS = {"http-hello": "http-hello", "http-app": "http-hello"}  # source stem -> WIT world


def adapter() -> str:
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    pattern = f"{home}/registry/src/*/wasi-preview1-component-adapter-provider-48.*/artefacts/wasi_snapshot_preview1.proxy.wasm"
    found = sorted(glob.glob(pattern))
    if not found:
        sys.exit("the preview1 proxy adapter is not in the cargo registry: fetch the crate "
                 "wasi-preview1-component-adapter-provider@48 (e.g. `cargo add` it in a scratch project and `cargo fetch`)")
    return found[-1]


def build(stem: str, world: str, tmp: pathlib.Path) -> bytes:
    run = lambda *args: subprocess.run([*map(str, args)], check=True, cwd=tmp)
    run("wit-bindgen", "c", HERE / "wit", "--world", world, "--out-dir", tmp)
    binding = world.replace("-", "_")
    run(sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", "-mexec-model=reactor",
        "-O2", "-s", "-I", tmp, HERE / "c" / f"{stem}.c", tmp / f"{binding}.c",
        tmp / f"{binding}_component_type.o", "-o", tmp / "core.wasm")
    run(wasm_tools(), "component", "new", tmp / "core.wasm",
        "--adapt", f"wasi_snapshot_preview1={adapter()}", "-o", tmp / "component.wasm")
    run(wasm_tools(), "validate", tmp / "component.wasm")
    return (tmp / "component.wasm").read_bytes()


def main() -> int:
    built = {}
    for stem, world in GUESTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            built[HERE / "components" / f"c-{stem}.wasm"] = build(stem, world, pathlib.Path(tmp))
    return write_or_check(built, "--check" in sys.argv[1:], "python3 guests/build_c.py")


if __name__ == "__main__":
    sys.exit(main())
