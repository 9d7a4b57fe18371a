//! `containerd-shim-wasmlens-v1`: containerd (and so Kubernetes, through a RuntimeClass)
//! runs WebAssembly components with wasmlens, with the same limits and telemetry as
//! `wasmlens serve` and `wasmlens run`.
//!
//! One shim process serves one container. Its task is a wasmlens workload of the one
//! component the container's entrypoint names: a wasi:http proxy is served on
//! `WASMLENS_LISTEN` (default `0.0.0.0:8080`), a wasi:cli command is run once, with the
//! container's arguments and environment, its output on the container's FIFOs and its
//! exit code as the task's. Each call containerd makes is a `Task<Method>` span, in the
//! trace containerd sends with it; the component's spans continue it (or a trace the
//! container's environment names). See docs/kubernetes.md.

mod artifact;
mod container;
pub mod daemon;
mod shim;
pub mod spec;
mod task;
mod traced;

pub use shim::{RUNTIME_ID, WasmlensShim};
pub use traced::{RPC_SERVICE, RPC_SYSTEM, traced};
