//! A store with a guest's limits applied: fuel, memory, and a deadline.

use crate::failure::{MemoryLimitExceeded, TimedOut};
use crate::limits::Limits;
use std::sync::Arc;
use std::time::Instant;
use wasmlens_telemetry::ComponentGauges;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};

/// A store with the limits applied: fuel, the memory limiter that `limiter` finds in
/// the store's data, and an epoch callback that yields to the executor at every tick and
/// stops the guest at its deadline.
pub fn limited_store<T: Send + 'static>(
    engine: &Engine,
    data: T,
    limits: &Limits,
    limiter: fn(&mut T) -> &mut MemoryLimiter,
) -> anyhow::Result<Store<T>> {
    let mut store = Store::new(engine, data);
    store.limiter(move |data| limiter(data));
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
    /// `limit`: bytes of linear memory one instance may hold in all; `gauges`: the
    /// component's, which this instance's memory counts towards.
    pub fn new(limit: Option<usize>, gauges: Arc<ComponentGauges>) -> Self {
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
