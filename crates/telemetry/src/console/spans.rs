//! Spans on the console: when an entry span (one whose parent is not in this process)
//! ends, it is written with the spans under it as a tree.

use super::{ConsoleFormat, write, write_json};
use crate::names::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Spans kept while the entry span above them runs; beyond, the oldest are written as
/// far as they got.
const MAX_PENDING: usize = 4096;
/// Entry spans remembered as written, so that a span ending after the entry span above
/// it (a guest that goes on after its response was sent) is written at once, alone.
const WRITTEN: usize = 1024;

/// The attributes a span's line shows, where it has them: what tells one request or
/// invocation from another at a glance.
const SHOWN: &[&str] = &[
    attr::HTTP_REQUEST_METHOD,
    attr::URL_PATH,
    attr::URL_FULL,
    attr::HTTP_RESPONSE_STATUS_CODE,
    attr::COMPONENT_ID,
    attr::NEW_STATE,
    attr::SHUTDOWN_REASON,
];

#[derive(Debug)]
pub(crate) struct ConsoleSpanExporter {
    format: ConsoleFormat,
    resource: ResourceAttributesWithSchema,
    pending: Mutex<Pending>,
}

/// Spans that ended before the entry span above them.
#[derive(Debug, Default)]
struct Pending {
    spans: HashMap<SpanId, SpanData>,
    /// The pending spans' ids by their parent's.
    children: HashMap<SpanId, Vec<SpanId>>,
    /// Pending spans in the order they ended.
    order: VecDeque<SpanId>,
    /// Spans already written (entry spans and those under them), newest last.
    written: HashSet<SpanId>,
    written_order: VecDeque<SpanId>,
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
}

impl Pending {
    /// Takes `span` in, and writes to `out` what can be written now.
    fn ended(&mut self, span: SpanData, out: &mut String) {
        let id = span.span_context.span_id();
        let entry = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        // Its parent was written already: it ended after it (a guest that went on after
        // its response was sent, say).
        let late = self.written.contains(&span.parent_span_id);
        self.children
            .entry(span.parent_span_id)
            .or_default()
            .push(id);
        self.spans.insert(id, span);
        self.order.push_back(id);
        if entry || late {
            self.write_tree(id, late, out);
        }
        while self.spans.len() > MAX_PENDING {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.spans.contains_key(&oldest) {
                self.write_tree(oldest, false, out);
            }
        }
    }

    /// Writes `top` (its trace first) and the pending spans under it, each child under its
    /// parent in the order they started, and lets go of them. `late`: `top` ended after
    /// its parent was written.
    fn write_tree(&mut self, top: SpanId, late: bool, out: &mut String) {
        let Some(trace) = self.spans.get(&top).map(|s| s.span_context.trace_id()) else {
            return;
        };
        let _ = match late {
            true => writeln!(out, "trace {trace} (ended after its parent)"),
            false => writeln!(out, "trace {trace}"),
        };
        let mut stack = vec![(top, 1)];
        while let Some((id, depth)) = stack.pop() {
            let Some(span) = self.spans.remove(&id) else {
                continue;
            };
            if let Some(list) = self.children.get_mut(&span.parent_span_id) {
                list.retain(|child| *child != id);
            }
            line(out, &span, depth);
            self.remember_written(id);
            let mut children = self.children.remove(&id).unwrap_or_default();
            children.sort_by_key(|child| std::cmp::Reverse(self.spans[child].start_time));
            stack.extend(children.into_iter().map(|child| (child, depth + 1)));
        }
        self.order.retain(|id| self.spans.contains_key(id));
        self.children.retain(|_, list| !list.is_empty());
    }

    fn remember_written(&mut self, id: SpanId) {
        if self.written_order.len() == WRITTEN
            && let Some(oldest) = self.written_order.pop_front()
        {
            self.written.remove(&oldest);
        }
        self.written.insert(id);
        self.written_order.push_back(id);
    }
}

impl SpanExporter for ConsoleSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self.format {
            ConsoleFormat::Json => {
                let resource_spans = group_spans_by_resource_and_scope(batch, &self.resource);
                write_json(&ExportTraceServiceRequest { resource_spans });
            }
            ConsoleFormat::Text => {
                let mut out = String::new();
                let mut pending = self.pending();
                for span in batch {
                    pending.ended(span, &mut out);
                }
                drop(pending);
                write(&out);
            }
        }
        Ok(())
    }

    /// Writes the spans whose entry span never ended, as far as they got.
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        let mut out = String::new();
        let mut pending = self.pending();
        while let Some(oldest) = pending.order.pop_front() {
            if pending.spans.contains_key(&oldest) {
                pending.write_tree(oldest, false, &mut out);
            }
        }
        drop(pending);
        write(&out);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
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
        if let Some(kind) = attribute(&span.attributes, attr::ERROR_TYPE) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use std::time::{Duration, UNIX_EPOCH};

    /// A span `id` of trace 7 under `parent` (0 for none), started at `start` ms.
    fn span(id: u64, parent: u64, remote_parent: bool, name: &'static str, start: u64) -> SpanData {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(7),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: remote_parent,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: at(start),
            end_time: at(start + 1),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    #[test]
    fn each_entry_span_is_its_own_tree_and_a_late_child_is_written_when_it_ends() {
        let mut pending = Pending::default();
        let mut out = String::new();
        // Two requests in one trace (the caller's, so their parent is remote); the first
        // one's guest ends after its request did.
        for span in [
            span(2, 1, false, "first-child", 1),
            span(1, 99, true, "first", 0),
            span(4, 3, false, "second-child", 11),
            span(5, 1, false, "late-child", 2),
            span(3, 99, true, "second", 10),
        ] {
            pending.ended(span, &mut out);
        }
        let trace = TraceId::from(7);
        let lines: Vec<&str> = out
            .lines()
            .map(|l| l.split(" 1.000 ms").next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                &format!("trace {trace}")[..],
                "  first",
                "    first-child",
                &format!("trace {trace} (ended after its parent)"),
                "  late-child",
                &format!("trace {trace}"),
                "  second",
                "    second-child",
            ]
        );
        assert!(
            pending.spans.is_empty() && pending.order.is_empty() && pending.children.is_empty()
        );
    }
}
