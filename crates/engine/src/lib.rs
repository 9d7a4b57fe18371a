//! The wasmtime side of wasmlens, below the host: one engine per process with its epoch
//! ticker, the limits a guest runs under and how its failures are classified, a store
//! with those limits applied, loading components (with a cache of compiled ones and
//! errors a user can act on), and the seam host capabilities plug into. Nothing here
//! knows of HTTP, of a store's data, or of workloads.

mod cache;
pub mod capability;
mod component;
mod failure;
mod limits;
mod runtime;
mod store;

pub use capability::{Capability, ComponentContext, InstanceContext, Plugin};
pub use component::{component_names, exported_names, load_exporting};
pub use failure::{FailureKind, GuestFailure, MemoryLimitExceeded, TimedOut};
pub use limits::{Limits, parse_bytes, parse_duration};
pub use runtime::{BoundsChecks, PoolMemory, Runtime, RuntimeOptions};
pub use store::{MemoryLimiter, limited_store};
