//! The shim's integration tests, linked into one test binary (each binary links wasmtime
//! and the telemetry stack; one saves CI disk and link time).
//! Run one area with `cargo test -p wasmlens-shim --test integration containerd::`.

mod containerd;
mod ttrpc_context;
