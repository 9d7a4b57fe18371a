//! Spans on the console: a trace is written as a tree once its entry span (the one
//! whose parent is not in this process) ends.

use super::{ConsoleFormat, write, write_json};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Spans kept while their trace's entry span runs; beyond, the oldest trace is written
/// as far as it got.
const MAX_PENDING: usize = 4096;
/// Traces remembered as written, so that a span ending after its trace's entry span is
/// written alone rather than kept for ever.
const WRITTEN: usize = 1024;

/// The attributes a span's line shows, where it has them: what tells one request or
/// invocation from another at a glance.
const SHOWN: &[&str] = &[
    "http.request.method",
    "url.path",
    "url.full",
    "http.response.status_code",
    "component_id",
    "new_state",
    "shutdown_reason",
];

#[derive(Debug)]
pub(crate) struct ConsoleSpanExporter {
    format: ConsoleFormat,
    resource: ResourceAttributesWithSchema,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    traces: HashMap<TraceId, Vec<SpanData>>,
    /// In the order their first span arrived.
    order: VecDeque<TraceId>,
    spans: usize,
    written: VecDeque<TraceId>,
}

impl ConsoleSpanExporter {
    pub fn new(format: ConsoleFormat) -> Self {
        ConsoleSpanExporter {
            format,
            resource: (&Resource::builder_empty().build()).into(),
            pending: Mutex::default(),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_text(&self, batch: Vec<SpanData>) -> String {
        let mut out = String::new();
        let mut pending = self.pending();
        for span in batch {
            let trace = span.span_context.trace_id();
            if pending.written.contains(&trace) {
                out.push_str(&format!("trace {trace} (after its entry span)\n"));
                line(&mut out, &span, 1);
                continue;
            }
            let entry = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
            if !pending.traces.contains_key(&trace) {
                pending.order.push_back(trace);
            }
            pending.traces.entry(trace).or_default().push(span);
            pending.spans += 1;
            if entry {
                pending.write_trace(trace, &mut out);
            }
            while pending.spans > MAX_PENDING {
                let Some(oldest) = pending.order.front().copied() else {
                    break;
                };
                pending.write_trace(oldest, &mut out);
            }
        }
        out
    }
}

impl Pending {
    fn write_trace(&mut self, trace: TraceId, out: &mut String) {
        let spans = self.traces.remove(&trace).unwrap_or_default();
        self.order.retain(|t| *t != trace);
        self.spans -= spans.len();
        if self.written.len() == WRITTEN {
            self.written.pop_front();
        }
        self.written.push_back(trace);
        tree(trace, spans, out);
    }
}

impl SpanExporter for ConsoleSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self.format {
            ConsoleFormat::Json => {
                let resource_spans = group_spans_by_resource_and_scope(batch, &self.resource);
                write_json(&ExportTraceServiceRequest { resource_spans });
            }
            ConsoleFormat::Text => write(&self.take_text(batch)),
        }
        Ok(())
    }

    /// Writes the traces whose entry span never ended, as far as they got.
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        let mut out = String::new();
        let mut pending = self.pending();
        while let Some(trace) = pending.order.front().copied() {
            pending.write_trace(trace, &mut out);
        }
        write(&out);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// `trace ID`, then each span under its parent, children in the order they started.
fn tree(trace: TraceId, mut spans: Vec<SpanData>, out: &mut String) {
    spans.sort_by_key(|s| s.start_time);
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let _ = writeln!(out, "trace {trace}");
    let mut stack: Vec<(usize, usize)> = (0..spans.len())
        .rev()
        .filter(|&i| !ids.contains(&spans[i].parent_span_id))
        .map(|i| (i, 1))
        .collect();
    while let Some((i, depth)) = stack.pop() {
        line(out, &spans[i], depth);
        let parent = ids[i];
        let children = (0..spans.len())
            .rev()
            .filter(|&c| spans[c].parent_span_id == parent);
        stack.extend(children.map(|c| (c, depth + 1)));
    }
}

/// `NAME [kind] attributes DURATION [ERROR ...]`, indented by `depth`.
fn line(out: &mut String, span: &SpanData, depth: usize) {
    let _ = write!(out, "{:width$}{}", "", span.name, width = depth * 2);
    match span.span_kind {
        SpanKind::Server => out.push_str(" (server)"),
        SpanKind::Client => out.push_str(" (client)"),
        _ => {}
    }
    for key in SHOWN {
        if let Some(value) = attribute(&span.attributes, key) {
            let _ = write!(out, " {value}");
        }
    }
    let took = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let _ = write!(out, " {:.3} ms", took.as_secs_f64() * 1000.0);
    if let Status::Error { description } = &span.status {
        out.push_str(" ERROR");
        if let Some(kind) = attribute(&span.attributes, "error.type") {
            let _ = write!(out, " {kind}");
        }
        if !description.is_empty() {
            let _ = write!(out, ": {description}");
        }
    }
    out.push('\n');
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}
