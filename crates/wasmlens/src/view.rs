//! The built-in telemetry view's flags, and starting it beside `serve` and `up`.

use clap::Args;
use std::sync::Arc;
use wasmlens_telemetry::Telemetry;
use wasmlens_workload::parse_bytes;

#[derive(Args)]
pub(crate) struct ViewArgs {
    /// Serve the built-in telemetry view on ADDR: a page of recent traces, metrics and log
    /// records, kept in memory, at http://ADDR/. `none`: no view and no recording. A
    /// non-loopback address exposes what the view shows to whoever can reach it.
    #[arg(long, value_name = "ADDR|none", default_value = wasmlens_view::DEFAULT_LISTEN)]
    ui_listen: String,

    /// The memory the view's recording may take, e.g. 64MiB; the oldest ordinary traces and
    /// log records go first, failed and slow traces last.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_bytes)]
    ui_memory: usize,
}

impl ViewArgs {
    /// How much the pipeline records for the view: nothing when it is off.
    pub fn recording(&self) -> Option<usize> {
        (self.ui_listen != "none").then_some(self.ui_memory)
    }

    /// Serves the view, if it is on and recording (not with `OTEL_SDK_DISABLED=true`). An
    /// address given that cannot be bound refuses the start; the default one, taken by
    /// another process, only costs the view, with a line saying so.
    pub async fn start(&self, telemetry: &Telemetry) -> anyhow::Result<()> {
        let Some(recorder) = telemetry.recorder() else {
            return Ok(());
        };
        let explicit = self.ui_listen != wasmlens_view::DEFAULT_LISTEN;
        match tokio::net::TcpListener::bind(&self.ui_listen).await {
            Ok(listener) => {
                let addr = wasmlens_view::serve(listener, Arc::clone(recorder));
                recorder.served_at(format!("http://{addr}"));
                tracing::info!(
                    "telemetry view: http://{addr}/ (recent traces, metrics and logs, up to {} in memory)",
                    Bytes(self.ui_memory)
                );
                Ok(())
            }
            Err(err) if explicit => Err(anyhow::anyhow!(
                "cannot serve the telemetry view on {}: {err}",
                self.ui_listen
            )),
            Err(err) => {
                tracing::warn!(
                    "telemetry view not served: {}: {err} (--ui-listen ADDR picks another address, --ui-listen none turns it off)",
                    self.ui_listen
                );
                Ok(())
            }
        }
    }
}

/// A size as a person reads it.
struct Bytes(usize);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{} MiB", n >> 20),
            n => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_memory_is_the_recorders() {
        let parsed = wasmlens_workload::parse_bytes("64MiB").unwrap();
        assert_eq!(parsed, wasmlens_telemetry::recorder::DEFAULT_MEMORY);
    }
}
