//! Workloads: what a front end runs. A [`WorkloadSpec`] names components, each with its
//! trigger (an HTTP route, or a command run once), limits and grants; the `wasmlens.toml`
//! [`manifest`] is read into one. A [`Workload`] is loaded (every component checked,
//! compiled and bound), started, stopped for a reason, and waited for, each step reported
//! as the contract's lifecycle (`WorkloadStart`, `WorkloadStateChange`, `WorkloadStop`).
//! The `wasmlens` binary is one front end; a containerd shim would be another, through
//! the same calls.

mod lifecycle;
pub mod manifest;
mod shown;
mod spec;
mod workload;

pub use spec::{ComponentSpec, Trigger, WorkloadSpec};

/// The scheduler ticks between two looks at the network and the timers. A guest that
/// computes runs an epoch tick (10 ms) before it yields, so at tokio's default of 61 a
/// worker busy with looping guests would notice a new connection, or a queue timeout, only
/// every 0.6 s; at 8, within 80 ms, at no cost measurable in requests/s.
const EVENT_INTERVAL: u32 = 8;

/// The async runtime a front end runs workloads on (`wasmlens`, the containerd shim):
/// multi-threaded, one worker a core, looking at the network often enough that computing
/// guests do not hold new connections and timeouts up.
pub fn async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
}
pub use workload::{
    Ended, RunningWorkload, StopHandle, Workload, interrupted_exit_code, report_refused,
};

// What a front end needs to describe a workload, from the crates that define it.
pub use wasmlens_command::FAILURE_EXIT_CODE;
pub use wasmlens_config::{ConfigValues, parse_config_flag};
pub use wasmlens_engine::{
    BoundsChecks, GuestFailure, Limits, PoolMemory, component_names, exported_names, parse_bytes,
    parse_duration,
};
pub use wasmlens_host::Grants;
pub use wasmlens_http::ServeOptions;
pub use wasmlens_keyvalue::{KeyValueConfig, StoreBackend, parse_store_flag};
pub use wasmlens_outbound_http::{HostPattern, OutboundPolicy};
pub use wasmlens_wasi::{OutputFiles, Preopen, WasiConfig};
