//! Recent traces, grouped as their spans end, within a size.

mod admission;

use super::attributes_bytes;
use super::view::TraceSummary;
use crate::names::attr;
use admission::{Admission, Dropped};
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::trace::SpanData;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher as _};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A map by trace id. The store looks a trace up two to four times a span, and std's
/// SipHash cost 160 instructions a lookup.
type ByTrace<V> = HashMap<TraceId, V, TraceIdHash>;

/// foldhash's quality hash, its seeds drawn from the OS's random source (by way of std's
/// `RandomState`, as std's own maps are keyed; foldhash's own seeds come from addresses
/// and a counter). Trace ids come from callers: unknown seeds defeat collisions made in
/// advance, though foldhash does not claim SipHash's strength against an attacker who
/// could learn a seed by timing the server.
#[derive(Clone)]
struct TraceIdHash(foldhash::quality::SeedableRandomState);

impl Default for TraceIdHash {
    fn default() -> Self {
        static SHARED: OnceLock<foldhash::SharedSeed> = OnceLock::new();
        let random = || std::hash::RandomState::new().build_hasher().finish();
        let shared = SHARED.get_or_init(|| foldhash::SharedSeed::from_u64(random()));
        TraceIdHash(foldhash::quality::SeedableRandomState::with_seed(
            random(),
            shared,
        ))
    }
}

impl BuildHasher for TraceIdHash {
    type Hasher = foldhash::quality::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// A trace whose entry span took this long or longer is kept as long as a failed one.
pub const SLOW: Duration = Duration::from_millis(250);

/// At most this many spans of one trace are kept: a runaway trace cannot push out the
/// others.
const MAX_SPANS_PER_TRACE: usize = 10_000;

/// Once the store is full, ordinary traces are kept at a rate that renews it in about this
/// long. Keeping every one under load would evict a trace per request, and an evicted
/// trace is cold memory: its cache misses cost about a tenth of the requests a second
/// (measured at 35,000 requests/s: 30,200 against 33,700 with a store that stays in cache).
/// Failed and slow traces are always taken.
pub const RENEWAL: Duration = Duration::from_secs(10);

/// At most this many trace ids wait in order for their entry span (those of traces since
/// placed or dropped included); beyond it, the oldest trace still waiting is placed as an
/// ordinary one without waiting further (a request that runs long, spans whose entry span
/// was evicted before them).
const MAX_PENDING: usize = 16_384;

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

/// A span as the view keeps it: behind an `Arc`, shared with the OTLP exporter's queue
/// where there is one (see `crate::shared_batch`). A span held inline (330 bytes before
/// its attributes) was copied whole at each step of its way into its trace's list, four
/// `memcpy` calls a span; an `Arc` of the view's own costs one allocation instead, and
/// hands the span out of the store without a copy.
pub(crate) type Recorded = Arc<SpanData>;

pub(super) struct TraceStore {
    /// Traces placed: ordinary ones, and those kept longer (failed or slow).
    traces: ByTrace<Trace>,
    /// Traces whose entry span has not ended, about as many as requests in flight: a map
    /// of their own stays in cache, where the placed traces' map is large and cold, and
    /// most traces of a loaded store never enter it.
    pending: ByTrace<Trace>,
    /// Pending traces, oldest first. An id stays when its trace is placed or dropped, and
    /// is skipped then.
    pending_order: VecDeque<TraceId>,
    /// Placed traces oldest first, for eviction: ordinary ones, and those kept longer. A
    /// trace moves to `kept` when it turns out failed or slow; its id left in `ordinary`
    /// is then skipped.
    ordinary: VecDeque<TraceId>,
    kept: VecDeque<TraceId>,
    bytes: usize,
    budget: usize,
    /// Set when the store first overflows: from then on, ordinary traces are taken at
    /// the admission's rate.
    filled: bool,
    admission: Admission,
    dropped: Dropped,
    /// Ordinary traces not kept because the store was full and renewing faster than
    /// [`RENEWAL`].
    not_kept: u64,
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

impl Trace {
    fn new() -> Self {
        Trace {
            spans: Vec::new(),
            bytes: TRACE_OVERHEAD,
            entry: None,
            failed: false,
            kept: false,
            components: Vec::new(),
        }
    }

    /// Adds `span`; says whether it is an entry span, and whether the trace is now to be
    /// kept longer (failed, or its entry span slow). Nothing is added to a trace that is
    /// full.
    fn add(&mut self, span: Recorded, bytes: usize) -> Option<Added> {
        if self.spans.len() >= MAX_SPANS_PER_TRACE {
            return None;
        }
        let entry = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        // Only an entry span's duration counts (and is worked out).
        let slow = entry
            && span
                .end_time
                .duration_since(span.start_time)
                .is_ok_and(|duration| duration >= SLOW);
        if let Some(component) = string_attribute(&span, attr::COMPONENT_ID)
            && !self.components.iter().any(|c| c == component)
        {
            self.components.push(component.to_owned());
        }
        self.failed |= matches!(span.status, Status::Error { .. });
        if entry {
            self.entry = Some(span.span_context.span_id());
        }
        self.spans.push(span);
        self.bytes += bytes;
        Some(Added {
            entry,
            keep: self.failed || slow,
        })
    }
}

struct Added {
    entry: bool,
    keep: bool,
}

impl TraceStore {
    pub fn new(budget: usize) -> Self {
        TraceStore {
            traces: ByTrace::default(),
            pending: ByTrace::default(),
            pending_order: VecDeque::new(),
            ordinary: VecDeque::new(),
            kept: VecDeque::new(),
            bytes: 0,
            budget,
            filled: false,
            admission: Admission::new(budget),
            dropped: Dropped::default(),
            not_kept: 0,
        }
    }

    pub fn not_kept(&self) -> u64 {
        self.not_kept
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.traces.len() + self.pending.len()
    }

    /// Adds an ended span to its trace.
    pub fn add(&mut self, span: Recorded) {
        self.add_at(span, Instant::now);
    }

    /// Adds an ended span to its trace; `now` is asked only when a full store decides
    /// whether to keep an ordinary trace.
    pub(super) fn add_at(&mut self, span: Recorded, now: impl FnOnce() -> Instant) {
        let id = span.span_context.trace_id();
        let bytes = span_bytes(&span);
        // Most spans belong to a request in flight: its pending trace is looked for first,
        // and its map entry found once. The order of pending ids is trimmed when a trace
        // leaves it, or when it grows past MAX_PENDING.
        let mut trim = false;
        let trace = match self.pending.entry(id) {
            Entry::Occupied(pending) => pending.into_mut(),
            Entry::Vacant(vacant) => {
                if let Some(trace) = self.traces.get_mut(&id) {
                    let Some(added) = trace.add(span, bytes) else {
                        return;
                    };
                    self.bytes += bytes;
                    if added.keep && !trace.kept {
                        trace.kept = true;
                        self.kept.push_back(id);
                    }
                    self.evict();
                    return;
                }
                let (parent, own) = (span.parent_span_id, span.span_context.span_id());
                if self.dropped.takes(id, parent, own) {
                    return;
                }
                self.pending_order.push_back(id);
                self.bytes += TRACE_OVERHEAD;
                trim = self.pending_order.len() > MAX_PENDING;
                vacant.insert(Trace::new())
            }
        };
        let Some(added) = trace.add(span, bytes) else {
            return;
        };
        self.bytes += bytes;
        if added.keep {
            self.place(id, true);
            trim = true;
        } else if added.entry {
            // An ordinary trace whose entry span has ended: taken until the store first
            // fills, then at the rate that renews it in RENEWAL; else dropped while it is
            // still in cache.
            let trace_bytes = trace.bytes;
            if !self.filled || self.admission.allows(trace_bytes, now()) {
                self.place(id, false);
            } else if let Some(trace) = self.pending.remove(&id) {
                self.bytes -= trace.bytes;
                self.not_kept += 1;
                let spans = trace.spans.iter().map(|s| s.span_context.span_id());
                self.dropped.remember(id, spans);
            }
            trim = true;
        }
        if trim {
            self.trim_pending();
        }
        self.evict();
    }

    /// Moves a pending trace among the placed ones: kept longer, or ordinary.
    fn place(&mut self, id: TraceId, keep: bool) {
        let Some(mut trace) = self.pending.remove(&id) else {
            return;
        };
        trace.kept = keep;
        match keep {
            true => self.kept.push_back(id),
            false => self.ordinary.push_back(id),
        }
        self.traces.insert(id, trace);
    }

    /// Forgets the pending ids at the front whose traces were placed or dropped. Past
    /// MAX_PENDING ids (those of traces since placed or dropped included), places the
    /// oldest pending trace as an ordinary one: a request that runs long, or a trace id
    /// that came back, is then placed without waiting for the admission.
    fn trim_pending(&mut self) {
        while let Some(&id) = self.pending_order.front() {
            if self.pending.contains_key(&id) {
                if self.pending_order.len() <= MAX_PENDING {
                    return;
                }
                self.place(id, false);
            }
            self.pending_order.pop_front();
        }
    }

    /// Drops the oldest traces until the store is within its budget: ordinary ones first,
    /// then failed or slow ones, and only then those still waiting for their entry span
    /// (the requests in flight).
    fn evict(&mut self) {
        while self.bytes > self.budget {
            self.filled = true;
            let evicted = if let Some(id) = self.ordinary.pop_front() {
                // Skip ids of traces gone, or moved to `kept`.
                match self.traces.get(&id) {
                    Some(trace) if !trace.kept => self.traces.remove(&id),
                    _ => continue,
                }
            } else if let Some(id) = self.kept.pop_front() {
                self.traces.remove(&id)
            } else if let Some(id) = self.pending_order.pop_front() {
                self.pending.remove(&id)
            } else {
                return;
            };
            if let Some(trace) = evicted {
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
        let trace = self.traces.get(&id).or_else(|| self.pending.get(&id))?;
        let spans = trace.spans.clone();
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

#[cfg(test)]
mod tests;
