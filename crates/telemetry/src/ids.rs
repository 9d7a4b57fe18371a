//! Span ids chosen before their span starts. A guest's environment is built before the
//! guest is instantiated, and so before its `ComponentInvocation` span starts; to give the
//! guest that span's `TRACEPARENT`, its id is drawn first ([`new_span_id`]) and given to
//! the host's tracer (`SpanStart::with_span_id`). A span the SDK's tracer starts takes
//! preset ids from the generator here instead (on the same thread, synchronously: see
//! [`start_with_ids`]), as a guest's spans through wasi:otel do.

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

/// `bytes` in lower-case hex, two digits each: a span id as `SpanId`'s `Display` writes
/// it (16 digits), a trace id as `TraceId`'s (32), without the formatting machinery
/// (a few hundred instructions a call, on the request path).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// `id` as its `Display` writes it.
pub fn span_id_hex(id: SpanId) -> String {
    let mut out = String::with_capacity(16);
    push_hex(&mut out, &id.to_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn ids_are_written_as_their_display_writes_them(span in proptest::prelude::any::<u64>(), trace in proptest::prelude::any::<u128>()) {
            let (span, trace) = (SpanId::from(span), TraceId::from(trace));
            proptest::prop_assert_eq!(span_id_hex(span), span.to_string());
            let mut written = String::new();
            push_hex(&mut written, &trace.to_bytes());
            proptest::prop_assert_eq!(written, trace.to_string());
        }
    }
}
