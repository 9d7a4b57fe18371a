//! The wasmtime side of wasmlens: one engine per process with its epoch ticker, the
//! limits a guest runs under and how a failure is classified, the environment a guest
//! is granted, what becomes of its output, and loading components with errors a user
//! can act on. Nothing here knows of HTTP; `wasmlens-http` and `wasmlens-command`
//! build on it.

mod cache;
mod component;
mod failure;
mod limits;
mod observe;
mod output;
mod runtime;
mod state;

pub use component::{component_names, load_exporting};
pub use failure::{FailureKind, GuestFailure, MemoryLimitExceeded, TimedOut};
pub use limits::{Limits, parse_bytes, parse_duration};
pub use observe::{ComponentTelemetry, Instantiation, Invocation, Invoked, mark_failed};
pub use output::{GuestOutput, Passthrough};
pub use runtime::{Runtime, RuntimeOptions};
pub use state::{GuestEnv, GuestState, HasGuestState, Preopen, new_store};
