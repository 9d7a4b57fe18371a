//! What a guest is granted (its environment) and the per-instance state a store holds.

use crate::failure::{MemoryLimitExceeded, TimedOut};
use crate::limits::Limits;
use crate::output::GuestOutput;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wasmlens_telemetry::ComponentGauges;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// A host directory granted to the guest (`--dir HOST[::GUEST]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
}

impl Preopen {
    /// Parses `HOST[::GUEST]`; without `::GUEST` the guest sees the host path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (host, guest) = match text.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (text, text),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!(
                "{text:?}: expected HOST[::GUEST], e.g. ./data::/data"
            ));
        }
        Ok(Preopen {
            host: host.into(),
            guest: guest.into(),
        })
    }
}

/// Everything a guest is granted. By default nothing: no environment variables, no
/// files, no network, closed stdin.
#[derive(Clone, Debug, Default)]
pub struct GuestEnv {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub inherit_stdin: bool,
}

impl GuestEnv {
    /// Opens the granted directories once, so that a grant that cannot be given refuses
    /// the workload before anything runs, rather than failing every instance.
    pub fn check(&self) -> anyhow::Result<()> {
        self.grant_dirs(&mut WasiCtxBuilder::new())
    }

    fn grant_dirs(&self, builder: &mut WasiCtxBuilder) -> anyhow::Result<()> {
        for dir in &self.preopens {
            builder
                .preopened_dir(&dir.host, &dir.guest, FsPerms::ReadWrite)
                .map_err(|err| anyhow::anyhow!("--dir {}: {err}", dir.host.display()))?;
        }
        Ok(())
    }

    /// Builds the WASI context for one instance. `host_env` is set by the host for this
    /// instance (its `TRACEPARENT`) and wins over a variable of the same name.
    pub fn wasi_ctx(
        &self,
        host_env: &[(String, String)],
        stdout: GuestOutput,
        stderr: GuestOutput,
    ) -> anyhow::Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        let granted = self
            .env
            .iter()
            .filter(|(key, _)| !host_env.iter().any(|(k, _)| k == key));
        for (key, value) in granted.chain(host_env) {
            builder.env(key, value);
        }
        builder.args(&self.args).stdout(stdout).stderr(stderr);
        if self.inherit_stdin {
            builder.inherit_stdin();
        }
        self.grant_dirs(&mut builder)?;
        Ok(builder.build())
    }
}

/// Per-instance state: WASI, the resource table, the memory accounting, and the
/// instance's place in `wasmtime.instances.active`.
pub struct GuestState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub memory: MemoryLimiter,
    /// Set once the instance exists; dropped with the store, however the guest ended.
    pub(crate) instance: Option<crate::observe::ActiveInstance>,
}

impl GuestState {
    /// `gauges` are the component's, which this instance's memory counts towards.
    pub fn new(wasi: WasiCtx, limits: &Limits, gauges: Arc<ComponentGauges>) -> Self {
        GuestState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(limits.max_memory, gauges),
            instance: None,
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Store data that holds a [`GuestState`], so [`new_store`] can apply limits to it.
pub trait HasGuestState: Send + 'static {
    fn guest_state(&mut self) -> &mut GuestState;
}

impl HasGuestState for GuestState {
    fn guest_state(&mut self) -> &mut GuestState {
        self
    }
}

/// A store with the limits applied: fuel, the memory limiter, and an epoch callback
/// that yields to the executor at every tick and stops the guest at its deadline.
pub fn new_store<T: HasGuestState>(
    engine: &Engine,
    data: T,
    limits: &Limits,
) -> anyhow::Result<Store<T>> {
    let mut store = Store::new(engine, data);
    store.limiter(|data| &mut data.guest_state().memory);
    // `get_fuel` fails unless the engine meters fuel.
    if store.get_fuel().is_ok() {
        // Where the engine meters fuel (some component has a budget), a component
        // without one gets all there is, so that its fuel is counted but never runs out.
        store.set_fuel(limits.fuel.unwrap_or(u64::MAX))?;
    }
    let deadline = limits
        .timeout
        .map(|timeout| (Instant::now() + timeout, timeout));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| match deadline {
        Some((at, timeout)) if Instant::now() >= at => {
            Err(wasmtime::Error::new(TimedOut { timeout }))
        }
        _ => Ok(UpdateDeadline::Yield(1)),
    });
    Ok(store)
}

/// Accounts every growth of an instance's memories, refuses what passes the limit, and
/// keeps the component's memory gauges up to date.
pub struct MemoryLimiter {
    limit: Option<usize>,
    current: usize,
    peak: usize,
    gauges: Arc<ComponentGauges>,
}

impl MemoryLimiter {
    fn new(limit: Option<usize>, gauges: Arc<ComponentGauges>) -> Self {
        MemoryLimiter {
            limit,
            current: 0,
            peak: 0,
            gauges,
        }
    }

    /// The most linear memory this instance has held, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.gauges.memory_released(self.current as u64);
    }
}

/// Tables are bounded too, so a guest cannot exhaust the host through them.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let total = self.current - current.min(self.current) + desired;
        if let Some(limit) = self.limit
            && total > limit
        {
            // An error (not `false`) traps the guest right there, with a cause that says
            // which limit it hit; `false` would let memory.grow return -1 and leave the
            // guest to fail in some unrelated way.
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit,
                requested: total,
            }));
        }
        self.gauges
            .memory_grown((total - self.current) as u64, total as u64);
        self.current = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= maximum.unwrap_or(usize::MAX).min(MAX_TABLE_ELEMENTS))
    }
}
