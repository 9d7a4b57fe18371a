//! Telemetry on the console (`OTEL_TRACES_EXPORTER=console` and the like), written to
//! stderr so that it never mixes with a guest's own output (`wasmlens run app.wasm | jq`
//! keeps working). For a person by default: each trace as a tree of one line a span, each
//! log record on a line, each metric series on a line at every export. For a program,
//! `WASMLENS_CONSOLE_FORMAT=json`: one OTLP JSON export request a line, as an OTLP/HTTP
//! JSON receiver would get it (encoded by opentelemetry-proto).

mod logs;
mod metrics;
mod spans;

pub(crate) use logs::ConsoleLogExporter;
pub(crate) use metrics::ConsoleMetricExporter;
pub(crate) use spans::ConsoleSpanExporter;

use std::io::Write as _;

/// How console telemetry is written (`WASMLENS_CONSOLE_FORMAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConsoleFormat {
    /// Lines for a person.
    #[default]
    Text,
    /// OTLP JSON, one export request a line.
    Json,
}

/// Writes `text` (whole lines) to stderr in one go, so that lines written by other
/// threads never cut into it.
fn write(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// One OTLP JSON line for `request`.
fn write_json(request: &impl serde::Serialize) {
    match serde_json::to_string(request) {
        Ok(mut line) => {
            line.push('\n');
            write(&line);
        }
        Err(err) => write(&format!(
            "wasmlens: cannot write telemetry as JSON: {err}\n"
        )),
    }
}
