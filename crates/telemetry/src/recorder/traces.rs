//! Recent traces, grouped as their spans end, within a size.

use super::attributes_bytes;
use super::view::TraceSummary;
use crate::names::attr;
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::trace::SpanData;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// A trace whose entry span took this long or longer is kept as long as a failed one.
pub const SLOW: Duration = Duration::from_millis(250);

/// At most this many spans of one trace are kept: a runaway trace cannot push out the
/// others.
const MAX_SPANS_PER_TRACE: usize = 10_000;

/// Which traces a listing shows.
#[derive(Clone, Debug, Default)]
pub struct TraceFilter {
    /// `http.route` of the entry span.
    pub route: Option<String>,
    /// `component_id` of any span of the trace.
    pub component: Option<String>,
    /// `http.response.status_code` of the entry span.
    pub status: Option<u16>,
    /// Only traces with a failed span.
    pub errors_only: bool,
    /// Only traces whose entry span took at least this long.
    pub min_duration: Option<Duration>,
}

/// A span as the view keeps it: its own where the view is the only one to hold it, or
/// shared with the OTLP exporter's queue (see `crate::shared_batch`). An `Arc` of its
/// own would cost the view an allocation per span, and its memory one more block per span.
// Large on purpose: a span of its own is kept inline, in its trace's list.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Recorded {
    Owned(SpanData),
    Shared(Arc<SpanData>),
}

impl Recorded {
    /// The span, to hand out of the store: shared, or copied if the view holds it alone.
    fn shared(&self) -> Arc<SpanData> {
        match self {
            Recorded::Owned(span) => Arc::new(span.clone()),
            Recorded::Shared(span) => span.clone(),
        }
    }
}

impl std::ops::Deref for Recorded {
    type Target = SpanData;

    fn deref(&self) -> &SpanData {
        match self {
            Recorded::Owned(span) => span,
            Recorded::Shared(span) => span,
        }
    }
}

pub(super) struct TraceStore {
    traces: HashMap<TraceId, Trace>,
    /// Traces oldest first, for eviction: ordinary ones, and those kept longer (failed or
    /// slow). A trace moves to `kept` when it turns out failed or slow; its entry left in
    /// `ordinary` is then skipped.
    ordinary: VecDeque<TraceId>,
    kept: VecDeque<TraceId>,
    bytes: usize,
    budget: usize,
}

struct Trace {
    spans: Vec<Recorded>,
    bytes: usize,
    /// Set when its entry span (one whose parent is not in this process) has ended.
    entry: Option<SpanId>,
    failed: bool,
    kept: bool,
    components: Vec<String>,
}

impl TraceStore {
    pub fn new(budget: usize) -> Self {
        TraceStore {
            traces: HashMap::new(),
            ordinary: VecDeque::new(),
            kept: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Adds an ended span to its trace.
    pub fn add(&mut self, span: Recorded) {
        let id = span.span_context.trace_id();
        let mut bytes = span_bytes(&span);
        let trace = self.traces.entry(id).or_insert_with(|| {
            bytes += TRACE_OVERHEAD;
            self.ordinary.push_back(id);
            Trace {
                spans: Vec::new(),
                bytes: 0,
                entry: None,
                failed: false,
                kept: false,
                components: Vec::new(),
            }
        });
        if trace.spans.len() >= MAX_SPANS_PER_TRACE {
            return;
        }
        let entry = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        let duration = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        if let Some(component) = string_attribute(&span, attr::COMPONENT_ID)
            && !trace.components.iter().any(|c| c == component)
        {
            trace.components.push(component.to_owned());
        }
        trace.failed |= matches!(span.status, Status::Error { .. });
        if entry {
            trace.entry = Some(span.span_context.span_id());
        }
        let keep = trace.failed || (entry && duration >= SLOW);
        if keep && !trace.kept {
            trace.kept = true;
            self.kept.push_back(id);
        }
        trace.spans.push(span);
        trace.bytes += bytes;
        self.bytes += bytes;
        self.evict();
    }

    /// Drops the oldest traces until the store is within its budget: ordinary ones first.
    fn evict(&mut self) {
        while self.bytes > self.budget {
            let next = loop {
                match self.ordinary.pop_front() {
                    // Skip ids of traces gone, or moved to `kept`.
                    Some(id) if self.traces.get(&id).is_some_and(|t| !t.kept) => break Some(id),
                    Some(_) => continue,
                    None => break self.kept.pop_front(),
                }
            };
            let Some(id) = next else { return };
            if let Some(trace) = self.traces.remove(&id) {
                self.bytes -= trace.bytes;
            }
        }
    }

    pub fn list(&self, filter: &TraceFilter, limit: usize) -> Vec<TraceSummary> {
        let mut found: Vec<TraceSummary> = self
            .traces
            .iter()
            .filter_map(|(id, trace)| summary(*id, trace))
            .filter(|summary| passes(summary, filter))
            .collect();
        found.sort_unstable_by_key(|s| std::cmp::Reverse(s.start_unix_nano));
        found.truncate(limit);
        found
    }

    /// A trace's summary (once its entry span has ended) and its spans.
    pub fn get(&self, id: TraceId) -> Option<(Option<TraceSummary>, Vec<Arc<SpanData>>)> {
        let trace = self.traces.get(&id)?;
        let spans = trace.spans.iter().map(Recorded::shared).collect();
        Some((summary(id, trace), spans))
    }
}

fn passes(summary: &TraceSummary, filter: &TraceFilter) -> bool {
    filter
        .route
        .as_ref()
        .is_none_or(|r| summary.route.as_ref() == Some(r))
        && filter
            .component
            .as_ref()
            .is_none_or(|c| summary.components.contains(c))
        && filter.status.is_none_or(|s| summary.status_code == Some(s))
        && (!filter.errors_only || summary.failed)
        && filter
            .min_duration
            .is_none_or(|d| summary.duration_ns >= d.as_nanos() as u64)
}

fn summary(id: TraceId, trace: &Trace) -> Option<TraceSummary> {
    let entry_id = trace.entry?;
    let entry = trace
        .spans
        .iter()
        .find(|s| s.span_context.span_id() == entry_id)?;
    let nanos = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    };
    let start = nanos(entry.start_time);
    Some(TraceSummary {
        trace_id: id.to_string(),
        name: entry.name.to_string(),
        start_unix_nano: start,
        duration_ns: nanos(entry.end_time).saturating_sub(start),
        route: string_attribute(entry, attr::HTTP_ROUTE).map(str::to_owned),
        method: string_attribute(entry, attr::HTTP_REQUEST_METHOD).map(str::to_owned),
        status_code: entry
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == attr::HTTP_RESPONSE_STATUS_CODE)
            .and_then(|kv| match kv.value {
                opentelemetry::Value::I64(code) => u16::try_from(code).ok(),
                _ => None,
            }),
        error_type: trace
            .spans
            .iter()
            .find_map(|s| string_attribute(s, attr::ERROR_TYPE))
            .map(str::to_owned),
        failed: trace.failed,
        components: trace.components.clone(),
        spans: trace.spans.len(),
    })
}

fn string_attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .and_then(|kv| match &kv.value {
            opentelemetry::Value::String(s) => Some(s.as_str()),
            _ => None,
        })
}

/// The memory a span takes in the store, roughly.
/// What a trace takes beyond its spans: its map entry, its place in the eviction queues,
/// its list of components, and its span list's spare room.
const TRACE_OVERHEAD: usize = 400;

/// What a span takes, roughly: its own size, and a quarter more for what the allocator
/// rounds each of its allocations up to (measured: with these, the process's RSS grows by
/// about the bound and no more; docs in the README).
fn span_bytes(span: &SpanData) -> usize {
    let events: usize = span
        .events
        .iter()
        .map(|e| 64 + e.name.len() + attributes_bytes(e.attributes.iter()))
        .sum();
    let bytes = std::mem::size_of::<SpanData>()
        + span.name.len()
        + attributes_bytes(span.attributes.iter())
        + events
        + span.links.len() * 96;
    bytes + bytes / 4
}
