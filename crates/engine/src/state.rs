//! What a guest is granted (its environment) and the per-instance state a store holds.

use crate::failure::{MemoryLimitExceeded, TimedOut};
use crate::limits::Limits;
use crate::output::GuestOutput;
use std::path::PathBuf;
use std::time::Instant;
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
        for dir in &self.preopens {
            builder
                .preopened_dir(&dir.host, &dir.guest, FsPerms::ReadWrite)
                .map_err(|err| anyhow::anyhow!("--dir {}: {err}", dir.host.display()))?;
        }
        Ok(builder.build())
    }
}

/// Per-instance state: WASI, the resource table, and the memory accounting.
pub struct GuestState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub memory: MemoryLimiter,
}

impl GuestState {
    pub fn new(wasi: WasiCtx, limits: &Limits) -> Self {
        GuestState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(limits.max_memory),
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
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel)?;
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

/// Accounts every growth of an instance's memories and refuses what passes the limit.
pub struct MemoryLimiter {
    limit: Option<usize>,
    current: usize,
}

impl MemoryLimiter {
    fn new(limit: Option<usize>) -> Self {
        MemoryLimiter { limit, current: 0 }
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
        self.current = total;
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
