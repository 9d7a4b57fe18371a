//! What the built-in telemetry view shows: recent traces and log records, kept in memory
//! within a size, fed by the same pipeline the exporters are (a span processor and a log
//! processor beside theirs), so nothing is recorded twice and the view works with no
//! exporter at all.
//!
//! Failed and slow traces are kept longer than ordinary ones: when the traces' share of
//! the memory is used up, the oldest ordinary trace goes first, and a failed or slow one
//! only when no ordinary one is left.

mod logs;
mod processors;
mod traces;
mod view;

pub use logs::LogFilter;
pub(crate) use processors::{RecordingLogProcessor, RecordingSpanProcessor};
pub use traces::{SLOW, TraceFilter};
pub use view::{LogView, MemoryView, SpanView, TraceSummary, TraceView};

use opentelemetry::trace::TraceId;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The memory the view keeps by default: room for tens of thousands of requests' traces
/// and log records on a laptop.
pub const DEFAULT_MEMORY: usize = 64 << 20;

/// Recent traces and log records.
pub struct Recorder {
    traces: Mutex<traces::TraceStore>,
    logs: Mutex<logs::LogStore>,
    /// The resource, for a trace downloaded as OTLP JSON.
    resource: ResourceAttributesWithSchema,
    budget: usize,
}

impl Recorder {
    /// Keeps at most about `budget` bytes: three quarters for traces, the rest for log
    /// records.
    pub(crate) fn new(budget: usize, resource: &opentelemetry_sdk::Resource) -> Self {
        let for_traces = budget / 4 * 3;
        Recorder {
            traces: Mutex::new(traces::TraceStore::new(for_traces)),
            logs: Mutex::new(logs::LogStore::new(budget - for_traces)),
            resource: resource.into(),
            budget,
        }
    }

    fn traces(&self) -> MutexGuard<'_, traces::TraceStore> {
        self.traces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn logs(&self) -> MutexGuard<'_, logs::LogStore> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The finished traces that pass `filter`, newest first, at most `limit`.
    pub fn trace_list(&self, filter: &TraceFilter, limit: usize) -> Vec<TraceSummary> {
        self.traces().list(filter, limit)
    }

    /// One trace: its spans as they have landed, and its log records.
    pub fn trace(&self, id: TraceId) -> Option<TraceView> {
        let (summary, spans) = self.traces().get(id)?;
        let filter = LogFilter {
            trace_id: Some(id),
            ..LogFilter::default()
        };
        let logs = self.logs().list(&filter, usize::MAX);
        Some(TraceView {
            summary,
            spans: spans.iter().map(SpanView::from).collect(),
            logs,
        })
    }

    /// One trace as an OTLP/JSON export request, to load into another tool.
    pub fn trace_otlp_json(&self, id: TraceId) -> Option<String> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        let (_, spans) = self.traces().get(id)?;
        let resource_spans =
            opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(
                spans,
                &self.resource,
            );
        serde_json::to_string(&ExportTraceServiceRequest { resource_spans }).ok()
    }

    /// The log records that pass `filter`, newest first, at most `limit`.
    pub fn log_list(&self, filter: &LogFilter, limit: usize) -> Vec<LogView> {
        self.logs().list(filter, limit)
    }

    /// What the recorder holds, against its bound.
    pub fn memory(&self) -> MemoryView {
        let traces = self.traces();
        let logs = self.logs();
        MemoryView {
            budget_bytes: self.budget,
            trace_bytes: traces.bytes(),
            traces: traces.len(),
            log_bytes: logs.bytes(),
            logs: logs.len(),
        }
    }
}

/// The memory an attribute value takes beyond its slot, roughly.
fn value_bytes(value: &opentelemetry::Value) -> usize {
    match value {
        opentelemetry::Value::String(s) => s.as_str().len(),
        opentelemetry::Value::Array(array) => match array {
            opentelemetry::Array::String(items) => {
                items.iter().map(|s| s.as_str().len() + 24).sum()
            }
            _ => 64,
        },
        _ => 0,
    }
}

/// The memory a set of attributes takes, roughly.
fn attributes_bytes<'a>(attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> usize {
    attributes
        .map(|kv| {
            std::mem::size_of::<opentelemetry::KeyValue>()
                + kv.key.as_str().len()
                + value_bytes(&kv.value)
        })
        .sum()
}

#[cfg(test)]
mod tests;
