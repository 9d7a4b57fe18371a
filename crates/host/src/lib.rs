//! The wasmlens host: what a front end (the `wasmlens` binary, a containerd shim) and a
//! trigger (HTTP, command) build on. It owns the one store-data type ([`HostState`]),
//! composes the host capabilities (WASI, outgoing HTTP, and the plugins: key-value,
//! configuration, logging, guest telemetry) on the seam
//! `wasmlens_engine::Capability` defines, links them once, checks what each component is
//! granted, and instantiates and invokes components with their telemetry
//! ([`HostComponent::invoke`]). A trigger asks it for an invocation; it never builds a
//! store or a linker.

mod component;
mod host;
mod observe;
mod plugins;
mod state;

pub use component::{CallOutcome, HostComponent, Nesting, World};
pub use host::{BoundComponent, Grants, Host};
pub use plugins::PluginBindFailed;
pub use state::HostState;
