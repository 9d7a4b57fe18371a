//! What a full store keeps, on a clock the tests move: ordinary traces at the rate that
//! renews it in RENEWAL, every failed one, and a trace whose entry span ends last whole.

use super::*;
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceState};
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// A store with room for about this many of the tests' traces.
const ROOM: usize = 40;

struct Clock {
    start: Instant,
    at: Duration,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            at: Duration::ZERO,
        }
    }

    fn now(&self) -> Instant {
        self.start + self.at
    }
}

fn span(trace: u128, id: u64, parent: u64, failed: bool) -> Recorded {
    let context = SpanContext::new(
        TraceId::from(trace),
        SpanId::from(id),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    let start: SystemTime = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    Recorded::new(SpanData {
        span_context: context,
        parent_span_id: SpanId::from(parent),
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /"),
        start_time: start,
        end_time: start + Duration::from_micros(40),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match failed {
            true => Status::error("trap"),
            false => Status::Unset,
        },
        instrumentation_scope: InstrumentationScope::builder("wasmlens").build(),
    })
}

/// A request's trace: a child span, then its entry span.
fn request(store: &mut TraceStore, clock: &Clock, trace: u128, failed: bool) {
    store.add_at(span(trace, 2, 1, failed), || clock.now());
    store.add_at(span(trace, 1, 0, false), || clock.now());
}

fn trace_bytes() -> usize {
    2 * span_bytes(&span(1, 2, 1, false)) + TRACE_OVERHEAD
}

fn store() -> TraceStore {
    TraceStore::new(ROOM * trace_bytes())
}

#[test]
fn below_its_size_the_store_keeps_every_trace_however_fast_they_come() {
    let (mut store, clock) = (store(), Clock::new());
    for trace in 1..=ROOM as u128 {
        request(&mut store, &clock, trace, false);
    }
    assert_eq!(store.len(), ROOM);
    assert_eq!(store.not_kept(), 0);
    assert!(store.bytes() <= store.budget);
}

#[test]
fn a_full_store_takes_ordinary_traces_at_the_rate_that_renews_it_in_renewal() {
    let (mut store, mut clock) = (store(), Clock::new());
    // A thousand requests a second for three renewals, far more than the store holds.
    let seconds = 3 * RENEWAL.as_secs() as u128;
    let mut trace = 0;
    for _ in 0..seconds * 1000 {
        trace += 1;
        clock.at += Duration::from_millis(1);
        request(&mut store, &clock, trace, false);
    }
    let kept = trace as u64 - store.not_kept();
    // The store's size once, then its size per RENEWAL, give or take the bucket's second.
    let per_second = ROOM as f64 / RENEWAL.as_secs_f64();
    let expected = ROOM as f64 + per_second * seconds as f64;
    assert!(
        (kept as f64 - expected).abs() <= per_second + 1.0,
        "kept {kept}, expected about {expected}"
    );
    assert!(store.bytes() <= store.budget);
    // The last RENEWAL's traces are there: the store is renewed, not frozen.
    let newest_kept = (trace - 500..=trace)
        .filter(|t| store.traces.contains_key(&TraceId::from(*t)))
        .count();
    assert!(newest_kept >= 1, "none of the last half second kept");
    // And a trace after a pause is kept.
    clock.at += RENEWAL;
    request(&mut store, &clock, trace + 1, false);
    assert!(store.traces.contains_key(&TraceId::from(trace + 1)));
}

#[test]
fn a_full_store_keeps_every_failed_trace_and_evicts_ordinary_ones_first() {
    let (mut store, clock) = (store(), Clock::new());
    for trace in 1..=10 * ROOM as u128 {
        request(&mut store, &clock, trace, false);
    }
    let failed: Vec<u128> = (100_000..100_000 + ROOM as u128 / 2).collect();
    for &trace in &failed {
        request(&mut store, &clock, trace, true);
    }
    for &trace in &failed {
        assert!(store.traces.contains_key(&TraceId::from(trace)), "{trace}");
    }
    assert!(store.not_kept() > 0);
    assert!(store.bytes() <= store.budget);
}

#[test]
fn a_trace_whose_entry_span_ends_last_is_kept_whole() {
    let (mut store, mut clock) = (store(), Clock::new());
    // A long request's first span, then ten times what the store holds of others.
    store.add_at(span(7, 2, 1, false), || clock.now());
    for trace in 100..100 + 10 * ROOM as u128 {
        request(&mut store, &clock, trace, false);
    }
    assert!(store.not_kept() > 0, "the store was full");
    clock.at += RENEWAL;
    store.add_at(span(7, 1, 0, false), || clock.now());
    let (summary, spans) = store.get(TraceId::from(7)).expect("kept");
    assert_eq!(spans.len(), 2);
    assert!(summary.is_some());
}

#[test]
fn the_late_spans_of_a_trace_not_kept_are_not_kept_either() {
    let (mut store, clock) = (store(), Clock::new());
    for trace in 1..=10 * ROOM as u128 {
        request(&mut store, &clock, trace, false);
    }
    let dropped = 10 * ROOM as u128;
    assert!(store.get(TraceId::from(dropped)).is_none(), "not kept");
    let (len, bytes) = (store.len(), store.bytes());
    // Its guest's invocation ends after its entry span, then a span under that.
    store.add_at(span(dropped, 3, 1, false), || clock.now());
    store.add_at(span(dropped, 4, 3, false), || clock.now());
    assert_eq!((store.len(), store.bytes()), (len, bytes));
    assert!(store.get(TraceId::from(dropped)).is_none());
    // The caller's next request in the same trace is a trace again.
    store.add_at(span(dropped, 6, 5, true), || clock.now());
    store.add_at(span(dropped, 5, 0, false), || clock.now());
    assert_eq!(store.get(TraceId::from(dropped)).unwrap().1.len(), 2);
}

#[test]
fn a_flood_of_failed_traces_leaves_the_requests_in_flight_whole() {
    let (mut store, clock) = (store(), Clock::new());
    store.add_at(span(7, 2, 1, false), || clock.now());
    for trace in 100..100 + 10 * ROOM as u128 {
        request(&mut store, &clock, trace, true);
    }
    assert!(store.bytes() <= store.budget);
    store.add_at(span(7, 1, 0, true), || clock.now());
    assert_eq!(store.get(TraceId::from(7)).unwrap().1.len(), 2);
    // The newest failed traces are there, the oldest gone.
    assert!(store.get(TraceId::from(99 + 10 * ROOM as u128)).is_some());
    assert!(store.get(TraceId::from(100)).is_none());
}

#[test]
fn traces_that_never_see_their_entry_span_are_bounded_too() {
    let (mut store, clock) = (store(), Clock::new());
    for trace in 1..=10 * ROOM as u128 {
        store.add_at(span(trace, 2, 1, false), || clock.now());
    }
    assert!(store.bytes() <= store.budget);
    assert!(store.len() <= 2 * ROOM, "{}", store.len());
    assert_eq!(store.not_kept(), 0, "evicted, not refused");
}

#[test]
fn waiting_traces_are_placed_past_max_pending() {
    let mut store = TraceStore::new(usize::MAX / 2);
    let clock = Clock::new();
    for trace in 1..=MAX_PENDING as u128 + 10 {
        store.add_at(span(trace, 2, 1, false), || clock.now());
    }
    assert_eq!(store.pending.len(), MAX_PENDING);
    assert_eq!(store.pending_order.len(), MAX_PENDING);
    assert_eq!((store.ordinary.len(), store.traces.len()), (10, 10));
}

#[test]
fn a_trace_that_comes_back_is_one_trace_and_a_failure_in_it_keeps_it_longer() {
    let (mut store, clock) = (store(), Clock::new());
    request(&mut store, &clock, 5, false);
    // The caller's next request in the same trace, failing this time.
    store.add_at(span(5, 4, 3, true), || clock.now());
    store.add_at(span(5, 3, 0, false), || clock.now());
    assert_eq!(store.len(), 1);
    let (summary, spans) = store.get(TraceId::from(5)).unwrap();
    assert_eq!(spans.len(), 4);
    assert!(summary.unwrap().failed);
    assert_eq!(store.kept.len(), 1);
    // A span waiting for its entry span is found too.
    store.add_at(span(6, 2, 1, false), || clock.now());
    assert_eq!(store.get(TraceId::from(6)).unwrap().1.len(), 1);
}
