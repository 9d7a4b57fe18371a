//! One wasmtime engine per process, and the one thread that drives its epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Every running guest yields to the executor at each
/// tick (so a busy guest cannot hold a worker thread) and checks its deadline, so this
/// is also the resolution of `--timeout`.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of a pooled slot's linear memory, and of its tables, is reset in place for
/// the next instance rather than handed back to the kernel. Handing pages back
/// (`madvise`) makes the kernel interrupt every CPU running the process to flush its
/// TLB: that was two thirds of the CPU time of a hello request. With `PAGEMAP_SCAN`
/// (Linux 6.7 and later) only the pages the guest dirtied are reset; without it, the
/// first `KEEP_RESIDENT` bytes are. Either way the next instance sees pristine memory.
const KEEP_RESIDENT: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Count fuel (only when a fuel limit is set: metering costs time on every call).
    pub consume_fuel: bool,
    /// Pre-allocate instance slots for this many concurrent instances (a server), or
    /// allocate on demand (`None`, a single run).
    pub pooled_instances: Option<u32>,
}

/// The engine and its epoch ticker. Dropping it stops the ticker.
pub struct Runtime {
    engine: Engine,
    consume_fuel: bool,
    ticker: Option<Ticker>,
}

struct Ticker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Runtime {
    pub fn new(options: &RuntimeOptions) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(options.consume_fuel);
        if let Some(instances) = options.pooled_instances {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(instances);
            // A component holds a few core instances, memories and tables.
            pool.total_core_instances(instances.saturating_mul(4));
            pool.total_memories(instances.saturating_mul(2));
            pool.total_tables(instances.saturating_mul(2));
            pool.linear_memory_keep_resident(KEEP_RESIDENT);
            pool.table_keep_resident(KEEP_RESIDENT);
            pool.pagemap_scan(Enabled::Auto);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)?;

        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("wasmlens-epoch".into())
            .spawn({
                let engine = engine.weak();
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(EPOCH_TICK);
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => return,
                        }
                    }
                }
            })?;
        Ok(Runtime {
            engine,
            consume_fuel: options.consume_fuel,
            ticker: Some(Ticker { stop, thread }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the engine meters fuel (and so every invocation's fuel is known).
    pub fn meters_fuel(&self) -> bool {
        self.consume_fuel
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop.store(true, Ordering::Relaxed);
            ticker.thread.thread().unpark();
            let _ = ticker.thread.join();
        }
    }
}
