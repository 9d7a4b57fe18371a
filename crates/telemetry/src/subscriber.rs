//! The process's `tracing` subscriber: the host's own log on stderr, and every `tracing`
//! event of the host as an OpenTelemetry log record. It is global, so only a front end
//! installs it (once); a library or a test builds a [`Telemetry`] without it.

use crate::Telemetry;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The target of the access log (`--access-log`): a line for each HTTP request. It goes
/// to stderr only: the request's `HttpRequest` span already says as much.
pub const ACCESS_LOG_TARGET: &str = "wasmlens::access";

/// Targets whose events would loop back into the exporters that produced them.
fn is_exporter_internal(target: &str) -> bool {
    ["opentelemetry", "tonic", "h2", "hyper", "reqwest", "tower"]
        .iter()
        .any(|prefix| target.starts_with(prefix))
}

impl Telemetry {
    /// Installs the global `tracing` subscriber: events pass `RUST_LOG` (else
    /// `default_log_filter`, e.g. `info` for a server and `warn` for a CLI run) to
    /// stderr, and INFO and above become log records where logs are exported. Then says,
    /// in one line, where each signal goes. Fails if a subscriber is already installed.
    pub fn install_subscriber(&self, default_log_filter: &str) -> anyhow::Result<()> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|err| {
            if std::env::var_os("RUST_LOG").is_some() {
                eprintln!("wasmlens: ignoring RUST_LOG: {err}; using {default_log_filter}");
            }
            EnvFilter::new(default_log_filter)
        });
        // The SDK's line for each failed export is said better by `export_health`. It only
        // removes lines, so it passes on `filter`'s level: without a hint of its own the
        // pair would have none, the subscriber's maximum level would be TRACE, and every
        // `log::trace!` in wasmtime would cross the `log` bridge (about 26,000
        // instructions a request, all dropped).
        let not_sdk_export_errors = tracing_subscriber::filter::filter_fn(|meta| {
            !crate::export_health::is_sdk_export_error(meta)
        })
        .with_max_level_hint(tracing::level_filters::LevelFilter::TRACE);
        let stderr = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(tracing_subscriber::filter::FilterExt::and(
                filter,
                not_sdk_export_errors,
            ));
        let otel_logs = self.logger_provider().map(|provider| {
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(provider)
                .with_filter(
                    tracing_subscriber::filter::filter_fn(|meta| {
                        !is_exporter_internal(meta.target())
                            && meta.target() != crate::events::TARGET
                            && meta.target() != ACCESS_LOG_TARGET
                            && meta.target() != crate::guest_log::GUEST_LOG_TARGET
                            && meta.target() != crate::export_health::TARGET
                            && *meta.level() <= tracing::Level::INFO
                        // Said up front too: without the hint the subscriber's maximum
                        // level is TRACE, and every `log::trace!` in wasmtime (several a
                        // request) goes through the `log` bridge only to be dropped here.
                    })
                    .with_max_level_hint(tracing::level_filters::LevelFilter::INFO),
                )
        });
        tracing_subscriber::registry()
            .with(stderr)
            .with(otel_logs)
            .try_init()?;
        tracing::info!("telemetry: {}", self.describe());
        Ok(())
    }
}
