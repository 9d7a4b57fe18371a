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
