//! What the view's JSON API answers: traces, spans and log records, flattened for a page.

use crate::names::attr;
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::trace::SpanData;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// A finished trace, as a listing shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The entry span's name (`HttpRequest`, `WorkloadStart`).
    pub name: String,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    pub route: Option<String>,
    pub method: Option<String>,
    pub status_code: Option<u16>,
    /// The first `error.type` among its spans.
    pub error_type: Option<String>,
    /// Whether any of its spans failed.
    pub failed: bool,
    /// The components its spans name.
    pub components: Vec<String>,
    pub spans: usize,
}

/// One trace: its summary (once its entry span has ended), its spans as they have
/// landed, and its log records.
#[derive(Debug, Serialize)]
pub struct TraceView {
    pub summary: Option<TraceSummary>,
    pub spans: Vec<SpanView>,
    pub logs: Vec<LogView>,
}

#[derive(Debug, Serialize)]
pub struct SpanView {
    pub span_id: String,
    /// Empty for the trace's root.
    pub parent_span_id: String,
    pub name: String,
    /// `internal`, `server`, `client`, `producer` or `consumer`.
    pub kind: &'static str,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// `unset`, `ok` or `error`.
    pub status: &'static str,
    pub status_message: String,
    pub attributes: BTreeMap<String, String>,
    pub events: Vec<EventView>,
    /// The instrumentation scope: `wasmlens` for the host's spans, the guest's own for
    /// spans it made through wasi:otel.
    pub scope: String,
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: BTreeMap<String, String>,
}

/// A log record.
#[derive(Clone, Debug, Serialize)]
pub struct LogView {
    pub time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub component_id: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub scope: String,
}

/// What the recorder holds, against its bound.
#[derive(Debug, Serialize)]
pub struct MemoryView {
    pub budget_bytes: usize,
    pub trace_bytes: usize,
    pub traces: usize,
    /// Ordinary traces not kept: the store was full and would have renewed faster than
    /// in [`crate::recorder::RENEWAL`] (failed and slow traces are always taken).
    pub traces_not_kept: u64,
    pub log_bytes: usize,
    pub logs: usize,
    pub metric_bytes: usize,
    /// Metric streams (a metric and one set of attributes) kept.
    pub metric_streams: usize,
    /// Streams not kept for want of room.
    pub metric_streams_refused: u64,
}

pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn attributes<'a>(
    attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>,
) -> BTreeMap<String, String> {
    attributes
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

impl From<&SpanData> for SpanView {
    fn from(span: &SpanData) -> Self {
        let parent = span.parent_span_id;
        SpanView {
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: if parent == opentelemetry::trace::SpanId::INVALID {
                String::new()
            } else {
                parent.to_string()
            },
            name: span.name.to_string(),
            kind: match span.span_kind {
                SpanKind::Internal => "internal",
                SpanKind::Server => "server",
                SpanKind::Client => "client",
                SpanKind::Producer => "producer",
                SpanKind::Consumer => "consumer",
            },
            start_unix_nano: unix_nanos(span.start_time),
            end_unix_nano: unix_nanos(span.end_time),
            status: match span.status {
                Status::Unset => "unset",
                Status::Ok => "ok",
                Status::Error { .. } => "error",
            },
            status_message: match &span.status {
                Status::Error { description } => description.to_string(),
                _ => String::new(),
            },
            attributes: attributes(span.attributes.iter()),
            events: span
                .events
                .iter()
                .map(|event| EventView {
                    name: event.name.to_string(),
                    time_unix_nano: unix_nanos(event.timestamp),
                    attributes: attributes(event.attributes.iter()),
                })
                .collect(),
            scope: span.instrumentation_scope.name().to_owned(),
        }
    }
}

fn any_value(value: &AnyValue) -> String {
    match value {
        AnyValue::String(s) => s.as_str().to_owned(),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Double(d) => d.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

impl LogView {
    pub(crate) fn new(record: &SdkLogRecord, scope: &opentelemetry::InstrumentationScope) -> Self {
        let attributes: BTreeMap<String, String> = record
            .attributes_iter()
            .map(|(key, value)| (key.to_string(), any_value(value)))
            .collect();
        let time = record.timestamp().or(record.observed_timestamp());
        let context = record.trace_context();
        LogView {
            time_unix_nano: time.map_or(0, unix_nanos),
            severity_number: record.severity_number().map_or(0, |s| s as i32),
            severity_text: record.severity_text().unwrap_or_default().to_owned(),
            body: record.body().map(any_value).unwrap_or_default(),
            trace_id: context.map(|c| c.trace_id.to_string()),
            span_id: context.map(|c| c.span_id.to_string()),
            component_id: attributes.get(attr::COMPONENT_ID).cloned(),
            attributes,
            scope: scope.name().to_owned(),
        }
    }

    /// The memory the record takes, roughly.
    pub(crate) fn bytes(&self) -> usize {
        let strings: usize = self
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + 64)
            .sum();
        let bytes =
            std::mem::size_of::<Self>() + self.body.len() + self.severity_text.len() + strings + 96;
        // A quarter more for what the allocator rounds each allocation up to.
        bytes + bytes / 4
    }
}
