//! The OpenTelemetry side of wasmlens, with no WebAssembly in it: configuration from
//! the standard `OTEL_*` variables, the tracer/meter/logger pipeline and its shutdown,
//! the contract's names and instruments, and log records for guest output.

pub mod config;
mod guest_log;
pub mod ids;
mod instruments;
pub mod names;
mod pipeline;
pub mod propagation;
mod resource;

pub use config::{Exporter, Protocol, Signal, TelemetryConfig};
pub use guest_log::{GuestLogEmitter, GuestStream};
pub use instruments::{Instruments, REQUEST_DURATION_BUCKETS};
pub use opentelemetry_http::HeaderInjector;
pub use pipeline::{InitOptions, Telemetry};
