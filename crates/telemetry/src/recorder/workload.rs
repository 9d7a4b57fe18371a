//! What the view shows of a workload: its components, routes, limits, grants and state,
//! as the front end that runs it describes them.

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadView {
    /// `workload_id`.
    pub id: String,
    /// `workload.name`.
    pub name: String,
    /// `pending`, `starting`, `running`, `stopping`, `stopped` or `failed`.
    pub state: String,
    /// Since when, in nanoseconds since the epoch (the recorder stamps it).
    pub state_since_unix_nano: u64,
    pub components: Vec<ComponentView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ComponentView {
    /// `component_id`.
    pub id: String,
    /// The `.wasm` or `.wat` file.
    pub source: String,
    /// `http` or `cli`.
    pub trigger: &'static str,
    /// The path prefix an HTTP component serves.
    pub route: Option<String>,
    pub limits: LimitsView,
    /// What it is granted, a line each, without any value that could be a secret
    /// (environment variables and configuration keys by name only).
    pub grants: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LimitsView {
    /// Fuel for one invocation.
    pub fuel: Option<u64>,
    /// Linear memory one instance may hold, in bytes.
    pub memory_bytes: Option<u64>,
    /// Wall-clock time for one invocation, in milliseconds.
    pub timeout_ms: Option<u64>,
}
