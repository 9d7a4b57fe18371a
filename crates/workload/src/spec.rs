//! What a front end asks to run: a workload of components, each with its trigger, limits
//! and grants. The `wasmlens` binary makes one from its flags or a manifest; a containerd
//! shim would make one from a container's spec.

use std::path::PathBuf;
use wasmlens_engine::{Limits, PoolMemory};
use wasmlens_host::Grants;
use wasmlens_http::ServeOptions;
use wasmlens_telemetry::names::trigger_type;

/// A workload to run.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// `workload_id` in telemetry.
    pub id: String,
    /// `workload.name` in telemetry.
    pub name: String,
    /// The manifest it was read from, if it was (`wasmlens up`). Then errors and log lines
    /// name each component by the id the manifest gives it, and say how to fix the
    /// manifest; without one (a component named on the command line) they need not.
    pub manifest: Option<PathBuf>,
    pub components: Vec<ComponentSpec>,
    /// How its HTTP components are served (unused without any), and how long its
    /// commands may take to finish once it is told to stop.
    pub server: ServeOptions,
    /// How a served workload's pooled instance slots keep their memory between requests.
    pub pool_memory: PoolMemory,
}

/// One component of a workload.
#[derive(Clone, Debug)]
pub struct ComponentSpec {
    /// Its id in the workload (`component_id`).
    pub id: String,
    /// The `.wasm` (or `.wat`) file.
    pub source: PathBuf,
    pub trigger: Trigger,
    pub limits: Limits,
    /// What it is granted. Its arguments (`wasi.args`: the source, then a command's
    /// `args`) and how its output reaches the host's (`wasi.output`: as written for a
    /// command, a whole line at a time for a server) follow from its trigger.
    pub grants: Grants,
}

/// What makes a component run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A wasi:http proxy serving a path prefix: `/api` serves `/api` and `/api/...`.
    Http { route: String },
    /// A wasi:cli command run once when the workload starts, with these arguments.
    Cli { args: Vec<String> },
}

impl WorkloadSpec {
    /// How the log names it: the workload and its manifest, or its component's path.
    pub fn shown(&self) -> String {
        match (&self.manifest, self.components.as_slice()) {
            (Some(manifest), _) => format!("workload {:?} ({})", self.name, manifest.display()),
            (None, [component]) => component.source.display().to_string(),
            (None, _) => format!("workload {:?}", self.name),
        }
    }

    /// `trigger_type` on `WorkloadStart`: `http`, `cli`, or both.
    pub fn trigger_type(&self) -> &'static str {
        let http = self
            .components
            .iter()
            .any(|c| matches!(c.trigger, Trigger::Http { .. }));
        let cli = self
            .components
            .iter()
            .any(|c| matches!(c.trigger, Trigger::Cli { .. }));
        match (http, cli) {
            (true, false) => trigger_type::HTTP,
            (false, true) => trigger_type::CLI,
            _ => trigger_type::HTTP_AND_CLI,
        }
    }

    /// Whether some component has a fuel budget (then the engine meters fuel).
    pub fn meters_fuel(&self) -> bool {
        self.components.iter().any(|c| c.limits.fuel.is_some())
    }

    /// Whether it serves HTTP.
    pub fn serves(&self) -> bool {
        self.routes().next().is_some()
    }

    /// The routes its HTTP components serve.
    pub fn routes(&self) -> impl Iterator<Item = &str> {
        self.components.iter().filter_map(|c| match &c.trigger {
            Trigger::Http { route } => Some(route.as_str()),
            Trigger::Cli { .. } => None,
        })
    }
}
