//! wasi:otel's logs: a guest's records emitted through the host's logger provider, with
//! `component_id`, in the guest's scope.

use crate::bindings::wasi::otel::logs as wit;
use crate::{ON_EMIT, OtelCtxView, OtelGrant, convert};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::TraceFlags;
use wasmlens_telemetry::names::attr;

/// The severity a record's number (1 to 24) or, failing that, its text names.
fn severity(number: Option<u8>, text: Option<&str>) -> Option<Severity> {
    use Severity::*;
    const BY_NUMBER: [Severity; 24] = [
        Trace, Trace2, Trace3, Trace4, Debug, Debug2, Debug3, Debug4, Info, Info2, Info3, Info4,
        Warn, Warn2, Warn3, Warn4, Error, Error2, Error3, Error4, Fatal, Fatal2, Fatal3, Fatal4,
    ];
    if let Some(number) = number.filter(|n| (1..=24).contains(n)) {
        return Some(BY_NUMBER[usize::from(number) - 1]);
    }
    let text = text?.to_ascii_uppercase();
    BY_NUMBER.into_iter().find(|s| s.name() == text)
}

impl wit::Host for OtelCtxView<'_> {
    fn on_emit(&mut self, record: wit::LogRecord) {
        let state = &mut *self.0;
        let Some(grant) = &state.grant else { return };
        grant.calls.count(ON_EMIT, true);
        if state.records >= crate::MAX_RECORDS {
            grant.dropped_records.add(1);
            return;
        }
        state.records += 1;
        emit(grant, record);
    }
}

/// Emits a guest's record through the host's logger for its scope (one named after the
/// component if it gave none).
fn emit(grant: &OtelGrant, record: wit::LogRecord) {
    let scope = record.instrumentation_scope.clone().unwrap_or_else(|| {
        crate::bindings::wasi::otel::types::InstrumentationScope {
            name: grant.component_id.to_string(),
            version: None,
            schema_url: None,
            attributes: Vec::new(),
        }
    });
    let Some(scope) = grant.scope(&scope) else {
        grant.dropped_records.add(1);
        return;
    };
    let Some(logger) = &scope.logger else { return };
    let mut out = logger.create_log_record();
    if let Some(time) = record.timestamp {
        out.set_timestamp(convert::time(time));
    }
    if let Some(time) = record.observed_timestamp {
        out.set_observed_timestamp(convert::time(time));
    }
    let text = record.severity_text.as_deref();
    if let Some(severity) = severity(record.severity_number, text) {
        out.set_severity_number(severity);
        out.set_severity_text(severity.name());
    }
    if let Some(body) = &record.body {
        out.set_body(convert::any_value(body));
    }
    let attributes = record.attributes.unwrap_or_default();
    let over = attributes.len().saturating_sub(convert::MAX_ITEMS);
    if over > 0 {
        grant.dropped_records.add(over as u64);
    }
    for kv in attributes.into_iter().take(convert::MAX_ITEMS) {
        out.add_attribute(convert::text(kv.key), convert::any_value(&kv.value));
    }
    // The SDK takes only static event names: the guest's goes in an attribute.
    if let Some(name) = record.event_name {
        out.add_attribute("event.name", AnyValue::from(convert::text(name)));
    }
    let id = AnyValue::from(grant.component_id.to_string());
    out.add_attribute(attr::COMPONENT_ID, id);
    let trace = record.trace_id.as_deref().and_then(convert::trace_id);
    let span = record.span_id.as_deref().and_then(convert::span_id);
    if let (Some(trace), Some(span)) = (trace, span) {
        let flags = record.trace_flags.map(convert::flags);
        out.set_trace_context(trace, span, Some(flags.unwrap_or(TraceFlags::SAMPLED)));
    }
    // Without ids of its own, the SDK gives the record the invocation's.
    logger.emit(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_by_number_else_by_text() {
        assert_eq!(severity(Some(13), None), Some(Severity::Warn));
        assert_eq!(severity(Some(24), Some("info")), Some(Severity::Fatal4));
        assert_eq!(severity(None, Some("error")), Some(Severity::Error));
        assert_eq!(severity(Some(0), Some("nonsense")), None);
    }
}
