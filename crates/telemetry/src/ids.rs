//! Span ids chosen before their span starts. A guest's environment is built before the
//! guest is instantiated, and so before its `ComponentInvocation` span starts; to give the
//! guest that span's `TRACEPARENT`, its id is drawn first and handed to the SDK when the
//! span is created (on the same thread, synchronously: see [`start_with_span_id`]).

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use std::cell::Cell;

thread_local! {
    static NEXT_SPAN_ID: Cell<Option<SpanId>> = const { Cell::new(None) };
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The SDK's random ids, except for a span started inside [`start_with_span_id`].
#[derive(Debug, Default)]
pub(crate) struct PresetIdGenerator(RandomIdGenerator);

impl IdGenerator for PresetIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_SPAN_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_span_id())
    }
}

/// A fresh random span id, to be given to [`start_with_span_id`] later.
pub fn new_span_id() -> SpanId {
    RandomIdGenerator::default().new_span_id()
}

/// Runs `start`, which must start exactly one span synchronously, so that the span gets
/// `id`. A span that is not sampled still takes the id.
pub fn start_with_span_id<T>(id: SpanId, start: impl FnOnce() -> T) -> T {
    NEXT_SPAN_ID.with(|next| next.set(Some(id)));
    let started = start();
    // If `start` created no span, the id must not leak into an unrelated one.
    NEXT_SPAN_ID.with(|next| next.set(None));
    started
}

/// Runs `start`, which must start exactly one span synchronously, so that the span gets
/// `span_id` and, if it has no parent, `trace_id` (a span with a parent is in its
/// parent's trace): how a span a guest recorded (wasi:otel) keeps the ids it was given.
pub fn start_with_ids<T>(trace_id: TraceId, span_id: SpanId, start: impl FnOnce() -> T) -> T {
    NEXT_TRACE_ID.with(|next| next.set(Some(trace_id)));
    let started = start_with_span_id(span_id, start);
    NEXT_TRACE_ID.with(|next| next.set(None));
    started
}
