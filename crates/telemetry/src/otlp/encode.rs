//! SDK spans straight into OTLP protobuf: the bytes of an `ExportTraceServiceRequest`,
//! field for field what opentelemetry-proto's conversion and prost produce for the same
//! batch (`tests.rs` holds it to that), without building the intermediate messages.

use opentelemetry::trace::{SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// OTLP's `SpanFlags`: the flags field says whether the parent was remote.
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// Scopes whose encoded block is kept. The host has a handful; a guest could make any
/// number through wasi:otel, which are then encoded at every batch instead.
const CACHED_SCOPES: usize = 64;

/// Encodes batches of spans for one resource, into a buffer kept from batch to batch.
#[derive(Debug, Default)]
pub(crate) struct TraceEncoder {
    out: Writer,
    /// The `resource` field of `ResourceSpans`, and its schema URL: the same for every
    /// batch, so encoded once.
    resource: Vec<u8>,
    resource_schema_url: String,
    /// The `scope` field of `ScopeSpans`, by scope.
    scopes: Vec<(InstrumentationScope, Vec<u8>)>,
}

impl TraceEncoder {
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut encoder = TraceEncoder::default();
        encoder.set_resource(resource);
        encoder
    }

    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        let mut w = Writer::default();
        let block = w.begin(1);
        for (key, value) in resource.iter() {
            w.key_value(1, key.as_str(), value);
        }
        w.end(block);
        self.resource = w.buf;
        self.resource_schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }

    /// The request for `batch`: its spans grouped by scope, in the order each scope first
    /// appears, under the one resource, as the SDK's exporter groups them (by a hash map
    /// of scopes, so a scope with a NaN attribute, equal to nothing, is a group of its own
    /// at each of its spans, as there).
    pub(crate) fn encode<S: Borrow<SpanData>>(&mut self, batch: &[S]) -> &[u8] {
        let mut groups: HashMap<&InstrumentationScope, usize> = HashMap::new();
        let mut scopes: Vec<&InstrumentationScope> = Vec::new();
        let mut group_of = Vec::with_capacity(batch.len());
        let mut last: Option<(&InstrumentationScope, usize)> = None;
        for span in batch {
            let scope = &span.borrow().instrumentation_scope;
            // Spans come in runs of one scope: a run goes to its group without hashing
            // the scope again (an equal scope is in the same group of the map, unless it
            // has a float attribute: 0.0 equals -0.0 but hashes apart). The host's
            // scopes are recognised by their strings' addresses, before any comparison.
            let group = match last {
                Some((previous, group))
                    if cloned_alike(previous, scope)
                        || (previous == scope && !has_float_attribute(scope)) =>
                {
                    group
                }
                _ => *groups.entry(scope).or_insert_with(|| {
                    scopes.push(scope);
                    scopes.len() - 1
                }),
            };
            last = Some((scope, group));
            group_of.push(group);
        }
        self.out.buf.clear();
        let resource_spans = self.out.begin(1);
        self.out.buf.extend_from_slice(&self.resource);
        for (group, scope) in scopes.into_iter().enumerate() {
            let scope_spans = self.out.begin(2);
            self.scope(scope);
            let members = batch.iter().zip(&group_of).filter(|(_, g)| **g == group);
            for (span, _) in members {
                let at = self.out.begin_span(2);
                self.out.span(span.borrow());
                self.out.end_span(at);
            }
            self.out
                .string(3, scope.schema_url().unwrap_or_default().as_bytes());
            self.out.end(scope_spans);
        }
        self.out.string(3, self.resource_schema_url.as_bytes());
        self.out.end(resource_spans);
        &self.out.buf
    }

    /// The last batch's bytes, taken: the next batch is written into a new buffer of
    /// the same capacity.
    pub(crate) fn take_encoded(&mut self) -> Vec<u8> {
        let capacity = self.out.buf.capacity();
        std::mem::replace(&mut self.out.buf, Vec::with_capacity(capacity))
    }

    /// Writes the `scope` field of `ScopeSpans`, from the cache when this scope (with its
    /// attributes in the same order) was encoded before. A scope with a float attribute
    /// is not cached: NaN equals nothing, and 0.0 equals -0.0, whose bytes differ.
    fn scope(&mut self, scope: &InstrumentationScope) {
        let same = |(cached, _): &&(InstrumentationScope, Vec<u8>)| {
            cached == scope && cached.attributes().eq(scope.attributes())
        };
        if let Some((_, block)) = self.scopes.iter().find(same) {
            self.out.buf.extend_from_slice(block);
            return;
        }
        let block = scope_block(scope);
        self.out.buf.extend_from_slice(&block);
        if self.scopes.len() < CACHED_SCOPES && !has_float_attribute(scope) {
            self.scopes.push((scope.clone(), block));
        }
    }
}

/// Whether two scopes are clones of one without attributes: their strings are the same
/// memory (`'static`, as the host's scopes are). Cheaper than comparing them, which is
/// otherwise done for nearly every span of a batch.
fn cloned_alike(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    let same = |a: Option<&str>, b: Option<&str>| match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        (a, b) => a.is_none() && b.is_none(),
    };
    std::ptr::eq(a.name(), b.name())
        && same(a.version(), b.version())
        && same(a.schema_url(), b.schema_url())
        && a.attributes().next().is_none()
        && b.attributes().next().is_none()
}

fn has_float_attribute(scope: &InstrumentationScope) -> bool {
    scope
        .attributes()
        .any(|kv| matches!(kv.value, Value::F64(_) | Value::Array(Array::F64(_))))
}

/// The `scope` field of `ScopeSpans`.
fn scope_block(scope: &InstrumentationScope) -> Vec<u8> {
    let mut w = Writer::default();
    let block = w.begin(1);
    w.string(1, scope.name().as_bytes());
    w.string(2, scope.version().unwrap_or_default().as_bytes());
    for attribute in scope.attributes() {
        w.attribute(3, attribute);
    }
    w.end(block);
    w.buf
}

/// A protobuf writer. A nested message is written in place after a one-byte length,
/// which is widened when the message ends: only a message longer than 127 bytes moves
/// (its scope's group, then the resource's: a few copies of a batch), rather than every
/// level's length being computed again for every level above. A span, almost always
/// 128 bytes to 16 KiB long, has two bytes for its length from the start. Scalar fields at their default value are
/// left out, as proto3 (and prost) do.
#[derive(Debug, Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    #[inline]
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    #[inline]
    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from(field << 3 | wire_type));
    }

    /// A length-delimited field, written even when empty.
    #[inline]
    fn len_delimited(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, LEN);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// A string or bytes field, left out when empty.
    #[inline]
    fn string(&mut self, field: u32, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.len_delimited(field, bytes);
        }
    }

    #[inline]
    fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    #[inline]
    fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    #[inline]
    fn fixed32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.key(field, FIXED32);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// Starts a nested message in `field`; returns where its contents begin, for `end`.
    #[inline]
    fn begin(&mut self, field: u32) -> usize {
        self.key(field, LEN);
        self.buf.push(0);
        self.buf.len()
    }

    #[inline]
    fn end(&mut self, start: usize) {
        let len = self.buf.len() - start;
        match self.buf.get_mut(start - 1) {
            Some(prefix) if len < 0x80 => *prefix = len as u8,
            _ => self.resize_length(start, len, 1),
        }
    }

    /// Starts a nested message with two bytes for its length, for `end_span`.
    #[inline]
    fn begin_span(&mut self, field: u32) -> usize {
        self.key(field, LEN);
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.len()
    }

    #[inline]
    fn end_span(&mut self, start: usize) {
        let len = self.buf.len() - start;
        if (0x80..0x4000).contains(&len) {
            self.buf[start - 2] = len as u8 | 0x80;
            self.buf[start - 1] = (len >> 7) as u8;
        } else {
            self.resize_length(start, len, 2);
        }
    }

    /// Ends a message whose length takes other than the `reserved` bytes left for it:
    /// moves it to fit (prost writes the shortest varint).
    #[cold]
    fn resize_length(&mut self, start: usize, len: usize, reserved: usize) {
        let mut prefix = [0u8; 10];
        let n = varint_into(&mut prefix, len as u64);
        let at = start - reserved;
        if n > reserved {
            self.buf.resize(self.buf.len() + n - reserved, 0);
        }
        self.buf.copy_within(start..start + len, at + n);
        self.buf.truncate(at + n + len);
        self.buf[at..at + n].copy_from_slice(&prefix[..n]);
    }

    #[inline]
    fn attribute(&mut self, field: u32, attribute: &KeyValue) {
        self.key_value(field, attribute.key.as_str(), &attribute.value);
    }

    /// A `KeyValue` message in `field`. One under 128 bytes with a scalar or string
    /// value, as nearly every attribute is, has its lengths known before it is written:
    /// it goes in a few pieces, with no length left to patch.
    #[inline]
    fn key_value(&mut self, field: u32, key: &str, value: &Value) {
        let key = key.as_bytes();
        let mut head = [0u8; 11];
        let Some((head_len, text)) = scalar_value(value, &mut head) else {
            return self.key_value_by_field(field, key, value);
        };
        let any_len = head_len + text.len();
        let key_field_len = if key.is_empty() { 0 } else { 2 + key.len() };
        let kv_len = key_field_len + 2 + any_len;
        if kv_len >= 0x80 {
            return self.key_value_by_field(field, key, value);
        }
        // Every length is under 128 here: each is one byte.
        self.buf.extend_from_slice(&[tag(field, LEN), kv_len as u8]);
        if !key.is_empty() {
            self.buf.extend_from_slice(&[tag(1, LEN), key.len() as u8]);
            self.buf.extend_from_slice(key);
        }
        self.buf.extend_from_slice(&[tag(2, LEN), any_len as u8]);
        self.buf.extend_from_slice(&head[..head_len]);
        self.buf.extend_from_slice(text);
    }

    /// A `KeyValue` message written field by field, its lengths patched as they end.
    fn key_value_by_field(&mut self, field: u32, key: &[u8], value: &Value) {
        let kv = self.begin(field);
        self.string(1, key);
        let any = self.begin(2);
        self.any_value(value);
        self.end(any);
        self.end(kv);
    }

    /// The contents of an `AnyValue`: its one value, written even when it is the default.
    #[inline]
    fn any_value(&mut self, value: &Value) {
        let mut head = [0u8; 11];
        if let Some((head_len, text)) = scalar_value(value, &mut head) {
            self.buf.extend_from_slice(&head[..head_len]);
            self.buf.extend_from_slice(text);
            return;
        }
        // Else an array, or a kind of value newer than this encoder (the SDK's exporter
        // panics), which is left empty.
        if let Value::Array(array) = value {
            let at = self.begin(5);
            match array {
                Array::Bool(values) => self.array(values, |v| Value::Bool(*v)),
                Array::I64(values) => self.array(values, |v| Value::I64(*v)),
                Array::F64(values) => self.array(values, |v| Value::F64(*v)),
                Array::String(values) => {
                    for text in values {
                        let element = self.begin(1);
                        self.len_delimited(1, text.as_str().as_bytes());
                        self.end(element);
                    }
                }
                // A kind of array newer than this encoder (the SDK's exporter panics).
                _ => {}
            }
            self.end(at);
        }
    }

    fn array<T>(&mut self, values: &[T], value: impl Fn(&T) -> Value) {
        for item in values {
            let element = self.begin(1);
            self.any_value(&value(item));
            self.end(element);
        }
    }

    /// The `trace_state` field (3 of a span and of a link). Most spans have none: their
    /// header, a new `String`, is not made.
    #[inline]
    fn trace_state(&mut self, state: &TraceState) {
        if *state != TraceState::NONE {
            self.string(3, state.header().as_bytes());
        }
    }

    /// The contents of a `Span`, its fields in the order prost writes them (by number).
    fn span(&mut self, span: &SpanData) {
        let context = &span.span_context;
        self.len_delimited(1, &context.trace_id().to_bytes());
        self.len_delimited(2, &context.span_id().to_bytes());
        self.trace_state(context.trace_state());
        if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
            self.len_delimited(4, &span.parent_span_id.to_bytes());
        }
        self.string(5, span.name.as_bytes());
        self.uint(6, kind(&span.span_kind));
        self.fixed64(7, nanos(span.start_time));
        self.fixed64(8, nanos(span.end_time));
        for attribute in &span.attributes {
            self.attribute(9, attribute);
        }
        self.uint(10, u64::from(span.dropped_attributes_count));
        for event in &span.events.events {
            let at = self.begin(11);
            self.fixed64(1, nanos(event.timestamp));
            self.string(2, event.name.as_bytes());
            for attribute in &event.attributes {
                self.attribute(3, attribute);
            }
            self.uint(4, u64::from(event.dropped_attributes_count));
            self.end(at);
        }
        self.uint(12, u64::from(span.events.dropped_count));
        for link in &span.links.links {
            let at = self.begin(13);
            let linked = &link.span_context;
            self.len_delimited(1, &linked.trace_id().to_bytes());
            self.len_delimited(2, &linked.span_id().to_bytes());
            self.trace_state(linked.trace_state());
            for attribute in &link.attributes {
                self.attribute(4, attribute);
            }
            self.uint(5, u64::from(link.dropped_attributes_count));
            self.fixed32(6, flags(linked.is_remote(), linked.trace_flags().to_u8()));
            self.end(at);
        }
        self.uint(14, u64::from(span.links.dropped_count));
        let status = self.begin(15);
        match &span.status {
            Status::Unset => {}
            Status::Ok => self.uint(3, 1),
            Status::Error { description } => {
                self.string(2, description.as_bytes());
                self.uint(3, 2);
            }
        }
        self.end(status);
        // prost writes fields in the order of their numbers: the flags (16) come last.
        self.fixed32(
            16,
            flags(span.parent_span_is_remote, context.trace_flags().to_u8()),
        );
    }
}

/// Writes `value` as a varint at the start of `out`; returns how many bytes it took.
fn varint_into(out: &mut [u8], mut value: u64) -> usize {
    let mut n = 0;
    while value >= 0x80 {
        out[n] = value as u8 | 0x80;
        value >>= 7;
        n += 1;
    }
    out[n] = value as u8;
    n + 1
}

/// The contents of an `AnyValue` holding a string or a scalar: its fixed-size part (the
/// field's key, then a string's length or the scalar) written into `head`, with its
/// length, and a string's bytes to follow it. `None` for an array, or a kind of value
/// newer than this encoder.
// Always: left to itself the compiler calls it, and an attribute costs 20 instructions more.
#[inline(always)]
fn scalar_value<'a>(value: &'a Value, head: &mut [u8; 11]) -> Option<(usize, &'a [u8])> {
    Some(match value {
        Value::String(text) => {
            let text = text.as_str().as_bytes();
            head[0] = tag(1, LEN);
            (1 + varint_into(&mut head[1..], text.len() as u64), text)
        }
        Value::Bool(flag) => {
            head[0] = tag(2, VARINT);
            head[1] = u8::from(*flag);
            (2, &[])
        }
        Value::I64(number) => {
            head[0] = tag(3, VARINT);
            (1 + varint_into(&mut head[1..], *number as u64), &[])
        }
        Value::F64(number) => {
            head[0] = tag(4, FIXED64);
            head[1..9].copy_from_slice(&number.to_bits().to_le_bytes());
            (9, &[])
        }
        _ => return None,
    })
}

/// A field's key in one byte, for the fields numbered under 16.
const fn tag(field: u32, wire_type: u32) -> u8 {
    debug_assert!(field < 16);
    (field << 3 | wire_type) as u8
}

fn flags(remote: bool, trace_flags: u8) -> u32 {
    let remote = if remote { CONTEXT_IS_REMOTE } else { 0 };
    u32::from(trace_flags) | CONTEXT_HAS_IS_REMOTE | remote
}

/// OTLP's `SpanKind` values.
fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// Nanoseconds since the Unix epoch; a time before it is 0, as the SDK's exporter has it.
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}
