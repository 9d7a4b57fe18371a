//! How a full trace store decides what it takes: a bucket of bytes for ordinary traces,
//! and a memory of the traces it did not take, so that their late spans are not taken
//! either.

use opentelemetry::trace::{SpanId, TraceId};
use std::collections::VecDeque;
use std::time::Instant;

use super::RENEWAL;

/// The dropped traces remembered: at 35,000 requests a second, a tenth of a second's
/// worth, far longer than a guest's span outlives its request's.
const DROPPED_REMEMBERED: usize = 4_096;

/// The rate at which a full store takes ordinary traces: a bucket of bytes, refilled at
/// the store's size per [`RENEWAL`], holding at most a second's worth. A trace is taken
/// while the bucket is not empty, and may take it below zero: a trace larger than the
/// bucket is taken too, once the bucket has refilled.
pub(super) struct Admission {
    rate: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Admission {
    pub fn new(budget: usize) -> Self {
        let rate = budget as f64 / RENEWAL.as_secs_f64();
        Admission {
            rate,
            tokens: rate,
            last: None,
        }
    }

    pub fn allows(&mut self, bytes: usize, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.rate);
        }
        self.last = Some(now);
        let allowed = self.tokens > 0.0;
        if allowed {
            self.tokens -= bytes as f64;
        }
        allowed
    }
}

/// The span ids of the traces dropped last. A span can end after its trace's entry span
/// (a guest's invocation, still ending as its response is sent): without this, such a
/// span would start a trace of its own that no entry span ever completes.
#[derive(Default)]
pub(super) struct Dropped {
    spans: super::ByTrace<Vec<SpanId>>,
    order: VecDeque<TraceId>,
}

impl Dropped {
    /// Remembers a dropped trace's spans.
    pub fn remember(&mut self, id: TraceId, spans: impl Iterator<Item = SpanId>) {
        let mut ids = match self.order.len() >= DROPPED_REMEMBERED {
            // The oldest one's list, reused.
            true => self
                .order
                .pop_front()
                .and_then(|oldest| self.spans.remove(&oldest))
                .unwrap_or_default(),
            false => Vec::new(),
        };
        ids.clear();
        ids.extend(spans);
        if self.spans.insert(id, ids).is_none() {
            self.order.push_back(id);
        }
    }

    /// Whether `span` (of trace `id`, child of `parent`) belongs to a dropped trace; if
    /// so, it is remembered as part of it, for its own late children.
    pub fn takes(&mut self, id: TraceId, parent: SpanId, span: SpanId) -> bool {
        match self.spans.get_mut(&id) {
            Some(ids) if ids.contains(&parent) => {
                ids.push(span);
                true
            }
            _ => false,
        }
    }
}
