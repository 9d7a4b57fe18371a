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

/// How a pooled slot's memory is handed from one instance to the next: what it keeps
/// resident, and how a guest's accesses outside its memory are caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolMemory {
    /// How much of a slot's linear memory (and of its tables) is reset in place for the
    /// next instance rather than handed back to the kernel. Handing pages back
    /// (`madvise`) makes the kernel interrupt every CPU running the process to flush its
    /// TLB, and the next instance faults them in again. With `PAGEMAP_SCAN` (Linux 6.7
    /// and later) only the pages the guest dirtied count; without it, the first this many
    /// bytes are zeroed and the rest handed back. Either way the next instance sees
    /// pristine memory; this is memory kept resident per slot that has served, traded
    /// for speed.
    pub keep_resident: usize,
    pub bounds_checks: BoundsChecks,
}

impl Default for PoolMemory {
    fn default() -> Self {
        PoolMemory {
            keep_resident: 1 << 20,
            bounds_checks: BoundsChecks::default(),
        }
    }
}

/// How a guest's memory accesses are kept inside its memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoundsChecks {
    /// Guard pages: compiled code checks nothing, and an access outside the memory
    /// faults. Pages past a memory's size must then be inaccessible, so a memory that
    /// grows is made accessible with `mprotect`, and shrunk back when its slot is
    /// reused: two or three `mprotect` calls a request (each interrupting every CPU to
    /// flush its TLB) for a guest whose heap grows, as most from real toolchains do.
    #[default]
    GuardPages,
    /// A check in compiled code before each access. A slot's memory then stays accessible
    /// at the largest size an instance grew it to, reset in place, with no system call
    /// per request; memory-heavy code runs slower (about a fifth, measured), and wasmtime
    /// applies no Spectre mitigation to these checks. A memory's reservation covers every
    /// address a 32-bit index and offset can form, so even a mispredicted check stays
    /// inside the guest's own slot; 64-bit memories are refused.
    Explicit,
}

impl BoundsChecks {
    /// Virtual memory each pooled memory reserves under explicit checks: every address a
    /// 32-bit index plus a 32-bit offset plus an access (at most 16 bytes) can form.
    const EXPLICIT_RESERVATION: u64 = (8 << 30) + (64 << 10);

    fn apply(self, config: &mut Config) {
        match self {
            BoundsChecks::GuardPages => {}
            BoundsChecks::Explicit => {
                // Without signals-based traps wasmtime checks every access in code, and
                // keeps a grown pooled memory accessible (no guard to restore).
                config.signals_based_traps(false);
                config.memory_guard_size(0);
                config.memory_reservation(Self::EXPLICIT_RESERVATION);
                config.wasm_memory64(false);
                // SAFETY: wasmtime requires these off without signals-based traps (its
                // mitigation loads from address zero to fault); the reservation above
                // keeps a speculated access inside the guest's own slot.
                unsafe {
                    config.cranelift_flag_set("enable_heap_access_spectre_mitigation", "false");
                    config.cranelift_flag_set("enable_table_access_spectre_mitigation", "false");
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Count fuel (only when a fuel limit is set: metering costs time on every call).
    pub consume_fuel: bool,
    /// Pre-allocate instance slots for this many concurrent instances (a server), or
    /// allocate on demand (`None`, a single run).
    pub pooled_instances: Option<u32>,
    /// How the slots keep memory; bounds checks apply unpooled too.
    pub memory: PoolMemory,
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
        options.memory.bounds_checks.apply(&mut config);
        if let Some(instances) = options.pooled_instances {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(instances);
            // A component holds a few core instances, memories and tables.
            pool.total_core_instances(instances.saturating_mul(4));
            pool.total_memories(instances.saturating_mul(2));
            pool.total_tables(instances.saturating_mul(2));
            pool.linear_memory_keep_resident(options.memory.keep_resident);
            pool.table_keep_resident(options.memory.keep_resident);
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
