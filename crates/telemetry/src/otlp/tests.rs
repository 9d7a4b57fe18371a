//! The purpose-built encoding against the SDK's own: generated batches encoded both ways,
//! wasmlens's output decoded with opentelemetry-proto and compared with what
//! opentelemetry-proto's conversion builds from the same spans, message for message and
//! byte for byte.

use super::encode::TraceEncoder;
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message as _;
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the SDK's HTTP/protobuf exporter sends for `batch`.
fn sdk_request(batch: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
    let resource = ResourceAttributesWithSchema::from(resource);
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(batch.to_vec(), &resource),
    }
}

fn assert_same_as_sdk(encoder: &mut TraceEncoder, batch: &[SpanData], resource: &Resource) {
    let expected = sdk_request(batch, resource);
    let ours = encoder.encode(batch).to_vec();
    let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("valid protobuf");
    assert_eq!(decoded, expected, "decoded message");
    assert_eq!(ours, expected.encode_to_vec(), "bytes");
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z_.]{1,12}",
        "\\PC{0,40}",
        // Long enough that a message holding it needs a two-byte length.
        "[a-z]{120,300}",
    ]
}

fn string_value() -> impl Strategy<Value = StringValue> {
    text().prop_map(StringValue::from)
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(-1.5), -1e300..1e300f64]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        // Around the varint's one- and two-byte lengths, and anywhere.
        prop_oneof![-2..300i64, any::<i64>()].prop_map(Value::I64),
        finite().prop_map(Value::F64),
        string_value().prop_map(Value::String),
        vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(Array::Bool(v))),
        vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
        vec(finite(), 0..4).prop_map(|v| Value::Array(Array::F64(v))),
        vec(string_value(), 0..4).prop_map(|v| Value::Array(Array::String(v))),
    ]
}

fn attributes(max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (text(), value()).prop_map(|(key, value)| KeyValue::new(key, value)),
        0..max,
    )
}

fn time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH),
        // Before the epoch: the SDK's exporter writes 0.
        Just(UNIX_EPOCH - Duration::from_secs(1)),
        (0u64..4_000_000_000_000_000_000).prop_map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
    ]
}

fn trace_state() -> impl Strategy<Value = TraceState> {
    prop_oneof![
        Just(TraceState::NONE),
        Just(TraceState::from_key_value([("vendor", "value"), ("other", "x")]).unwrap()),
    ]
}

fn span_context() -> impl Strategy<Value = SpanContext> {
    (
        any::<u128>(),
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
        trace_state(),
    )
        .prop_map(|(trace, span, flags, remote, state)| {
            SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::new(flags),
                remote,
                state,
            )
        })
}

/// A few scopes, so that batches mix them as the host's and guests' spans do.
fn scope() -> impl Strategy<Value = InstrumentationScope> {
    prop_oneof![
        Just(
            InstrumentationScope::builder("wasmlens")
                .with_version("0.1.0")
                .build()
        ),
        Just(InstrumentationScope::builder("guest").build()),
        (text(), text(), attributes(3)).prop_map(|(name, url, attributes)| {
            InstrumentationScope::builder(name)
                .with_version("1.2.3")
                .with_schema_url(url)
                .with_attributes(attributes)
                .build()
        }),
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        text().prop_map(Status::error),
    ]
}

fn kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        Just(SpanKind::Internal),
        Just(SpanKind::Server),
        Just(SpanKind::Client),
        Just(SpanKind::Producer),
        Just(SpanKind::Consumer),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (text(), time(), attributes(3), 0u32..3)
        .prop_map(|(name, time, attributes, dropped)| Event::new(name, time, attributes, dropped))
}

fn link() -> impl Strategy<Value = Link> {
    (span_context(), attributes(3), 0u32..3)
        .prop_map(|(context, attributes, dropped)| Link::new(context, attributes, dropped))
}

prop_compose! {
    fn span()(
        context in span_context(),
        parent in prop_oneof![Just(SpanId::INVALID), any::<u64>().prop_map(SpanId::from)],
        parent_is_remote in any::<bool>(),
        kind in kind(),
        name in text(),
        start in time(),
        end in time(),
        attributes in attributes(8),
        dropped_attributes in 0u32..3,
        events in vec(event(), 0..3),
        dropped_events in 0u32..3,
        links in vec(link(), 0..3),
        dropped_links in 0u32..3,
        status in status(),
        scope in scope(),
    ) -> SpanData {
        let mut span_events = SpanEvents::default();
        span_events.events = events;
        span_events.dropped_count = dropped_events;
        let mut span_links = SpanLinks::default();
        span_links.links = links;
        span_links.dropped_count = dropped_links;
        SpanData {
            span_context: context,
            parent_span_id: parent,
            parent_span_is_remote: parent_is_remote,
            span_kind: kind,
            name: Cow::Owned(name),
            start_time: start,
            end_time: end,
            attributes,
            dropped_attributes_count: dropped_attributes,
            events: span_events,
            links: span_links,
            status,
            instrumentation_scope: scope,
        }
    }
}

fn resource() -> impl Strategy<Value = Resource> {
    (attributes(6), prop::option::of(text())).prop_map(|(attributes, url)| {
        let builder = Resource::builder_empty();
        match url {
            Some(url) => builder.with_schema_url(attributes, url).build(),
            None => builder.with_attributes(attributes).build(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Two batches through one encoder, as the exporter sends them: the buffer and the
    /// cached scopes carry over from one to the next.
    #[test]
    fn generated_batches_encode_as_the_sdk_does(
        resource in resource(),
        first in vec(span(), 0..12),
        second in vec(span(), 0..12),
    ) {
        let mut encoder = TraceEncoder::new(&resource);
        assert_same_as_sdk(&mut encoder, &first, &resource);
        assert_same_as_sdk(&mut encoder, &second, &resource);
    }
}

/// Floats a decoded comparison cannot hold (NaN is not equal to itself), byte for byte.
#[test]
fn special_floats_encode_as_the_sdk_does() {
    let resource = Resource::builder_empty().build();
    let values = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE,
    ];
    let span = SpanData {
        span_context: SpanContext::empty_context(),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed("floats"),
        start_time: UNIX_EPOCH,
        end_time: UNIX_EPOCH,
        attributes: values
            .iter()
            .map(|v| KeyValue::new("f", *v))
            .chain([KeyValue::new(
                "fs",
                Value::Array(Array::F64(values.to_vec())),
            )])
            .collect(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("s").build(),
    };
    let batch = [span];
    let mut encoder = TraceEncoder::new(&resource);
    let expected = sdk_request(&batch, &resource).encode_to_vec();
    assert_eq!(encoder.encode(&batch), expected.as_slice());
}

/// More scopes than the encoder keeps encoded: the ones past the cache are encoded at
/// every batch, the same.
#[test]
fn scopes_past_the_cache_encode_the_same() {
    let resource = Resource::builder().build();
    let batch: Vec<SpanData> = (0..100)
        .map(|i| SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::from(i + 1),
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: Cow::Owned(format!("span {i}")),
            start_time: UNIX_EPOCH + Duration::from_secs(i),
            end_time: UNIX_EPOCH + Duration::from_secs(i + 1),
            attributes: vec![KeyValue::new("i", i as i64)],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Ok,
            instrumentation_scope: InstrumentationScope::builder(format!("scope {}", i % 80))
                .build(),
        })
        .collect();
    let mut encoder = TraceEncoder::new(&resource);
    for _ in 0..2 {
        assert_same_as_sdk(&mut encoder, &batch, &resource);
    }
}

fn plain_span(scope: InstrumentationScope, attributes: Vec<KeyValue>) -> SpanData {
    SpanData {
        span_context: SpanContext::empty_context(),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed("span"),
        start_time: UNIX_EPOCH,
        end_time: UNIX_EPOCH,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope,
    }
}

/// Spans whose lengths take one, two, three and four bytes (no attribute, a value of
/// 200 bytes, of 20 KB, of 3 MB): a span's length has two bytes before it is known.
#[test]
fn messages_of_every_length_encode_as_the_sdk_does() {
    let resource = Resource::builder().build();
    let scope = InstrumentationScope::builder("s").build();
    let batch = [
        plain_span(scope.clone(), vec![]),
        plain_span(scope.clone(), vec![KeyValue::new("a", "w".repeat(200))]),
        plain_span(scope.clone(), vec![KeyValue::new("a", "x".repeat(20_000))]),
        plain_span(scope, vec![KeyValue::new("b", "y".repeat(3 << 20))]),
    ];
    assert_same_as_sdk(&mut TraceEncoder::new(&resource), &batch, &resource);
}

/// A scope met again with its attributes in another order, and scopes with float
/// attributes (NaN equals nothing; 0.0 equals -0.0 but hashes apart), grouped and written
/// as the SDK's exporter does, batch after batch.
#[test]
fn scopes_with_reordered_or_float_attributes_encode_as_the_sdk_does() {
    let resource = Resource::builder_empty().build();
    let scope = |attributes: Vec<KeyValue>| {
        InstrumentationScope::builder("guest")
            .with_attributes(attributes)
            .build()
    };
    let (a, b) = (KeyValue::new("a", 1), KeyValue::new("b", "two"));
    let mut encoder = TraceEncoder::new(&resource);
    for attributes in [vec![a.clone(), b.clone()], vec![b, a]] {
        let batch = [plain_span(scope(attributes), vec![])];
        assert_same_as_sdk(&mut encoder, &batch, &resource);
    }
    for value in [f64::NAN, 0.0, -0.0] {
        let float = scope(vec![KeyValue::new("f", value)]);
        let batch = [
            plain_span(float.clone(), vec![]),
            plain_span(scope(vec![]), vec![]),
            plain_span(float, vec![]),
        ];
        let expected = sdk_request(&batch, &resource).encode_to_vec();
        for _ in 0..2 {
            assert_eq!(encoder.encode(&batch), expected.as_slice(), "{value}");
        }
    }
    // One after the other: equal, yet grouped apart.
    let zeros = [0.0, -0.0, 0.0, 0.0, -0.0]
        .map(|zero| plain_span(scope(vec![KeyValue::new("f", zero)]), vec![]));
    let expected = sdk_request(&zeros, &resource).encode_to_vec();
    assert_eq!(encoder.encode(&zeros), expected.as_slice());
}

/// Attributes around the length at which a `KeyValue` stops being written in one go
/// (127 bytes, then 128): every key length from none to past it, with values of every
/// kind written that way, and a few lengths of string on either side.
#[test]
fn attributes_on_either_side_of_the_one_piece_length_encode_as_the_sdk_does() {
    let resource = Resource::builder_empty().build();
    let scope = InstrumentationScope::builder("s").build();
    let values = || {
        let texts = [0, 1, 90, 110, 120, 123, 124, 125, 126, 127, 128, 129].map(|n| "v".repeat(n));
        let scalars = [
            Value::Bool(true),
            Value::Bool(false),
            Value::I64(0),
            Value::I64(200),
            Value::I64(-1),
            Value::I64(i64::MAX),
            Value::F64(-0.0),
        ];
        texts.into_iter().map(Value::from).chain(scalars)
    };
    let batch: Vec<SpanData> = (0..=130)
        .map(|key_len| {
            let key = "k".repeat(key_len);
            let attributes = values().map(|v| KeyValue::new(key.clone(), v)).collect();
            plain_span(scope.clone(), attributes)
        })
        .collect();
    assert_same_as_sdk(&mut TraceEncoder::new(&resource), &batch, &resource);
}
