//! The OpenTelemetry side of wasmlens, with no WebAssembly in it: configuration from
//! the standard `OTEL_*` variables, the tracer/meter/logger pipeline and its shutdown,
//! the contract's names and instruments, and log records for guest output.

pub mod config;
mod console;
pub mod events;
mod export_health;
mod exporters;
mod fan_out;
mod guest_log;
#[cfg(target_os = "linux")]
mod host_metrics;
pub mod host_spans;
mod http_method;
pub mod ids;
mod instruments;
pub mod local_http;
pub mod names;
mod otlp;
mod pipeline;
pub mod plugin;
mod prometheus;
pub mod propagation;
pub mod recorder;
mod resource;
mod shared_batch;
mod shared_collection;
mod subscriber;
pub mod tls;

pub use config::{
    ConsoleFormat, Exporter, HistogramAggregation, OtlpEndpoint, Protocol, RootSampler,
    SamplerChoice, Signal, TelemetryConfig,
};
pub use guest_log::{GUEST_LOG_TARGET, GuestLogEmitter, GuestStream, guest_logged};
pub use host_spans::{HostSpan, HostTracer, SpanStart};
pub use http_method::KnownMethod;
pub use instruments::{
    ComponentGauges, INSTANTIATION_DURATION_BUCKETS, Instruments, REQUEST_DURATION_BUCKETS,
};
pub use opentelemetry_http::HeaderInjector;
pub use pipeline::Telemetry;
pub use subscriber::ACCESS_LOG_TARGET;
