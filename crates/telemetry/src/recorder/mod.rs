//! What the built-in telemetry view shows: recent traces, log records and metric time
//! series, kept in memory within a size, fed by the same pipeline the exporters are (a
//! span processor, a log processor and a metric reader beside theirs, on the same
//! instruments), so the view works with no exporter at all.
//!
//! Failed and slow traces are kept longer than ordinary ones: when the traces' share of
//! the memory is used up, the oldest ordinary trace goes first, and a failed or slow one
//! only when no ordinary one is left. A full store takes new ordinary traces at the rate
//! that renews it in [`RENEWAL`] (ten seconds), and counts those it does not keep (and
//! drops their late spans too); failed and slow ones it always takes.

mod logs;
mod metrics;
mod overview;
mod processors;
pub(crate) mod traces;
mod view;
mod workload;

pub use logs::LogFilter;
pub use metrics::{INTERVAL, MetricSeries, RESOLUTIONS};
pub use overview::{ComponentSeries, Overview, RouteSeries};
pub(crate) use processors::{
    RecordingLogProcessor, RecordingMetricExporter, RecordingSpanProcessor,
};
pub use traces::{RENEWAL, SLOW, TraceFilter};
pub use view::{LogView, MemoryView, SpanView, TraceSummary, TraceView};
pub use workload::{ComponentView, LimitsView, WorkloadView};

use opentelemetry::trace::TraceId;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The memory the view keeps by default: room for tens of thousands of requests' traces
/// and log records on a laptop.
pub const DEFAULT_MEMORY: usize = 64 << 20;

/// Recent traces, log records and metrics, and the workloads they came from.
pub struct Recorder {
    traces: Mutex<traces::TraceStore>,
    logs: Mutex<logs::LogStore>,
    metrics: Mutex<metrics::MetricStore>,
    workloads: Mutex<Vec<WorkloadView>>,
    /// The resource, for a trace downloaded as OTLP JSON.
    resource: ResourceAttributesWithSchema,
    budget: usize,
    /// The view's address (`http://127.0.0.1:8081`), once it is served.
    served_at: std::sync::OnceLock<String>,
}

impl Recorder {
    /// Keeps at most about `budget` bytes: five eighths for traces, a quarter for log
    /// records, an eighth for metrics.
    pub(crate) fn new(budget: usize, resource: &opentelemetry_sdk::Resource) -> Self {
        let (for_traces, for_metrics) = (budget / 8 * 5, budget / 8);
        Recorder {
            traces: Mutex::new(traces::TraceStore::new(for_traces)),
            logs: Mutex::new(logs::LogStore::new(budget - for_traces - for_metrics)),
            metrics: Mutex::new(metrics::MetricStore::new(for_metrics)),
            workloads: Mutex::new(Vec::new()),
            resource: resource.into(),
            budget,
            served_at: std::sync::OnceLock::new(),
        }
    }

    fn traces(&self) -> MutexGuard<'_, traces::TraceStore> {
        self.traces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn logs(&self) -> MutexGuard<'_, logs::LogStore> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn metrics(&self) -> MutexGuard<'_, metrics::MetricStore> {
        self.metrics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn workloads(&self) -> MutexGuard<'_, Vec<WorkloadView>> {
        self.workloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Says where the view is served, for the links the host's log lines carry.
    pub fn served_at(&self, base: String) {
        let _ = self.served_at.set(base);
    }

    /// The view's page of a trace, once the view is served.
    pub fn trace_link(&self, id: TraceId) -> Option<String> {
        Some(format!("{}/traces/{id}", self.served_at.get()?))
    }

    /// Shows a workload (replacing what was shown of one with its id).
    pub fn describe_workload(&self, mut workload: WorkloadView) {
        workload.state_since_unix_nano = view::unix_nanos(std::time::SystemTime::now());
        let mut workloads = self.workloads();
        workloads.retain(|w| w.id != workload.id);
        workloads.push(workload);
    }

    /// A workload's new state.
    pub fn workload_state(&self, id: &str, state: &str) {
        if let Some(workload) = self.workloads().iter_mut().find(|w| w.id == id) {
            workload.state = state.to_owned();
            workload.state_since_unix_nano = view::unix_nanos(std::time::SystemTime::now());
        }
    }

    /// The workloads described, as they are now.
    pub fn workload_list(&self) -> Vec<WorkloadView> {
        self.workloads().clone()
    }

    /// The time series of metric `name` (of every metric without one) at `resolution`,
    /// an index into [`RESOLUTIONS`].
    pub fn metric_series(&self, name: Option<&str>, resolution: usize) -> Vec<MetricSeries> {
        self.metrics().series(name, resolution)
    }

    /// The overview's plots at `resolution`, an index into [`RESOLUTIONS`].
    pub fn overview(&self, resolution: usize) -> Overview {
        let workloads = self.workload_list();
        overview::overview(&self.metrics(), &workloads, resolution)
    }

    /// Records an ended span: its own, or one the OTLP exporter's queue holds too.
    pub(crate) fn record_span(&self, span: traces::Recorded) {
        self.traces().add(span);
    }

    /// A trace's spans as recorded (shared, not copied), for tests.
    #[cfg(test)]
    pub(crate) fn recorded_spans(
        &self,
        id: TraceId,
    ) -> Option<Vec<std::sync::Arc<opentelemetry_sdk::trace::SpanData>>> {
        Some(self.traces().get(id)?.1)
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
            spans: spans
                .iter()
                .map(|span| SpanView::from(span.as_ref()))
                .collect(),
            logs,
        })
    }

    /// One trace as an OTLP/JSON export request, to load into another tool.
    pub fn trace_otlp_json(&self, id: TraceId) -> Option<String> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        let (_, spans) = self.traces().get(id)?;
        let spans = spans
            .into_iter()
            .map(std::sync::Arc::unwrap_or_clone)
            .collect();
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
        let metrics = self.metrics();
        MemoryView {
            budget_bytes: self.budget,
            trace_bytes: traces.bytes(),
            traces: traces.len(),
            traces_not_kept: traces.not_kept(),
            log_bytes: logs.bytes(),
            logs: logs.len(),
            metric_bytes: metrics.bytes(),
            metric_streams: metrics.len(),
            metric_streams_refused: metrics.refused(),
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
