//! Log records for what a guest writes to stdout and stderr, and for its wasi:logging
//! calls.

use crate::names::attr;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry_sdk::logs::SdkLogger;
use std::sync::Arc;

/// The `tracing` target of the local copy of a guest's wasi:logging records (the record
/// itself is exported directly, so the log bridge leaves these out).
pub const GUEST_LOG_TARGET: &str = "wasmlens::guest";

/// Which of the guest's streams a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestStream {
    Stdout,
    Stderr,
}

impl GuestStream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    /// stdout lines are INFO, stderr lines WARN, as the contract says.
    fn severity(self) -> (Severity, &'static str) {
        match self {
            Self::Stdout => (Severity::Info, "INFO"),
            Self::Stderr => (Severity::Warn, "WARN"),
        }
    }
}

/// Turns lines of guest output into log records, correlated with the trace that is
/// current when the line is written (the SDK fills the trace context from
/// `Context::current()`, which is the invocation's while the guest runs).
#[derive(Clone)]
pub struct GuestLogEmitter {
    logger: SdkLogger,
    component_id: Arc<str>,
}

impl GuestLogEmitter {
    pub fn new(logger: SdkLogger, component_id: Arc<str>) -> Self {
        GuestLogEmitter {
            logger,
            component_id,
        }
    }

    pub fn emit(&self, stream: GuestStream, line: &[u8]) {
        let mut record = self.logger.create_log_record();
        let (severity, text) = stream.severity();
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_target("guest");
        record.set_body(AnyValue::from(String::from_utf8_lossy(line).into_owned()));
        record.add_attribute(
            attr::COMPONENT_ID,
            AnyValue::from(self.component_id.to_string()),
        );
        record.add_attribute(attr::LOG_IOSTREAM, stream.name());
        self.logger.emit(record);
    }
}

/// The longest wasi:logging message (or context) taken, in bytes, as for a line of output.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// `text` cut to `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`).
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let escape = |c: char| match c.is_control() {
        true => c.escape_default().to_string(),
        false => c.to_string(),
    };
    text.chars().map(escape).collect::<String>().into()
}

/// Emits what a guest logged through wasi:logging as a log record at `severity`, with the
/// guest's `context` and `component_id`, correlated with the current trace (the
/// invocation's); and writes it to the local log, as the host's own lines are.
pub fn guest_logged(
    logger: Option<&SdkLogger>,
    component_id: &Arc<str>,
    severity: Severity,
    context: &str,
    message: &str,
) {
    let message = cut(message, MAX_MESSAGE);
    let context = cut(context, MAX_MESSAGE);
    if let Some(logger) = logger {
        let mut record = logger.create_log_record();
        record.set_severity_number(severity);
        record.set_severity_text(severity.name());
        record.set_target("guest");
        record.set_body(AnyValue::from(message.to_owned()));
        record.add_attribute(attr::COMPONENT_ID, AnyValue::from(component_id.to_string()));
        record.add_attribute(attr::LOG_CONTEXT, AnyValue::from(context.to_owned()));
        logger.emit(record);
    }
    // The local line escapes control characters: a guest's text cannot forge host lines.
    let message = printable(message);
    let context = printable(context);
    let context = context.as_ref();
    let id = &**component_id;
    match severity {
        Severity::Trace => {
            tracing::trace!(target: GUEST_LOG_TARGET, component = id, context, "{message}")
        }
        Severity::Debug => {
            tracing::debug!(target: GUEST_LOG_TARGET, component = id, context, "{message}")
        }
        Severity::Info => {
            tracing::info!(target: GUEST_LOG_TARGET, component = id, context, "{message}")
        }
        Severity::Warn => {
            tracing::warn!(target: GUEST_LOG_TARGET, component = id, context, "{message}")
        }
        _ => tracing::error!(target: GUEST_LOG_TARGET, component = id, context, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_lines_escape_control_characters_and_long_messages_are_cut() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(
            printable("a\nfake line\u{1b}[31m"),
            "a\\nfake line\\u{1b}[31m"
        );
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("hello", 100), "hello");
    }
}
