//! A host span against the SDK's: the same spans, started under the same parents with the
//! same sampler, ids and limits, and treated alike, must come out alike.

use super::*;
use crate::ids::start_with_ids;
use opentelemetry::trace::{Span as _, TraceId, TraceState, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use std::sync::Mutex;

/// Keeps every span it is given.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Captured {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

const LIMITS: SpanLimits = SpanLimits {
    max_events_per_span: 2,
    max_attributes_per_span: 4,
    max_links_per_span: 1,
    max_attributes_per_event: 1,
    max_attributes_per_link: 1,
};

/// An SDK provider and a host tracer sharing one capturing processor.
fn both(sampler: Sampler) -> (SdkTracerProvider, HostTracer, Captured) {
    let captured = Captured::default();
    let mut fan_out = FanOut::default();
    fan_out.push(opentelemetry_sdk::trace::SimpleSpanProcessor::new(
        captured.clone(),
    ));
    let shared = SharedProcessors::new(fan_out, &Resource::builder_empty().build());
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler.clone())
        .with_span_limits(LIMITS)
        .with_id_generator(PresetIdGenerator::default())
        .with_span_processor(shared.clone())
        .build();
    let scope = InstrumentationScope::builder("wasmlens").build();
    let host = HostTracer::new(scope, sampler, LIMITS, Some(shared));
    (provider, host, captured)
}

fn samplers() -> Vec<Sampler> {
    let ratio = || Sampler::TraceIdRatioBased(0.5);
    vec![
        Sampler::AlwaysOn,
        Sampler::AlwaysOff,
        ratio(),
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        Sampler::ParentBased(Box::new(ratio())),
    ]
}

/// Parents of every kind a host span meets: none, remote (sampled or not, with a trace
/// state), local, invalid, and a context that suppresses telemetry.
fn parents(provider: &SdkTracerProvider, trace: u128) -> Vec<(&'static str, Context)> {
    let remote = |flags: TraceFlags, state: TraceState| {
        let sc = SpanContext::new(TraceId::from(trace), SpanId::from(7), flags, true, state);
        Context::new().with_remote_span_context(sc)
    };
    let state = TraceState::from_key_value([("vendor", "x")]).unwrap();
    let local = start_with_ids(TraceId::from(trace), SpanId::from(9), || {
        provider.tracer("parent").start("parent")
    });
    vec![
        ("none", Context::new()),
        ("remote sampled", remote(TraceFlags::SAMPLED, state.clone())),
        ("remote not sampled", remote(TraceFlags::default(), state)),
        ("local", Context::new().with_span(local)),
        (
            "invalid",
            Context::new().with_remote_span_context(SpanContext::empty_context()),
        ),
        ("suppressed", Context::new().with_telemetry_suppressed()),
    ]
}

/// What a host and a request do to their spans: more than the limits allow of each.
fn use_span(span: &mut impl opentelemetry::trace::Span) {
    for i in 0..4 {
        span.set_attribute(KeyValue::new("set", i));
        let attributes = vec![KeyValue::new("a", i), KeyValue::new("b", i)];
        span.add_event_with_timestamp("event", SystemTime::UNIX_EPOCH, attributes);
    }
    span.add_link(SpanContext::empty_context(), vec![KeyValue::new("l", 1)]);
    span.add_link(SpanContext::empty_context(), vec![]);
    span.set_status(Status::error("failed"));
    span.set_status(Status::Unset);
    span.update_name("renamed");
    span.end_with_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(5));
}

#[test]
fn host_spans_come_out_as_the_sdks_do() {
    for sampler in samplers() {
        let (provider, host, captured) = both(sampler.clone());
        let tracer = provider.tracer("wasmlens");
        // Ids on either side of the ratio sampler's half.
        for trace in [1u128, u128::MAX - 1, 1 << 126, 3 << 126] {
            for (parent_name, parent) in parents(&provider, trace) {
                let case = format!("{sampler:?} under {parent_name} (trace {trace:x})");
                captured.take();
                let (span_id, trace_id) = (SpanId::from(11), TraceId::from(trace));
                let mut sdk = start_with_ids(trace_id, span_id, || {
                    tracer
                        .span_builder("request")
                        .with_kind(SpanKind::Server)
                        .with_attributes([KeyValue::new("at", "start")])
                        .start_with_context(&tracer, &parent)
                });
                let start = SpanStart::new("request", SpanKind::Server).with_span_id(span_id);
                // The id it is given beats the generator's preset (12).
                let mut ours = start_with_ids(trace_id, SpanId::from(12), || {
                    host.start(&parent, start, || vec![KeyValue::new("at", "start")])
                });
                assert_eq!(sdk.span_context(), ours.span_context(), "{case}");
                use_span(&mut sdk);
                use_span(&mut ours);
                let mut spans = captured.take();
                if let [sdk_data, ours_data] = &mut spans[..] {
                    // The one thing that cannot be alike: when each started.
                    ours_data.start_time = sdk_data.start_time;
                    assert_eq!(sdk_data, ours_data, "{case}");
                } else {
                    assert!(spans.is_empty(), "{case}: only one of them recorded");
                }
            }
        }
    }
}

#[test]
fn attributes_are_built_only_for_a_span_that_records() {
    let (_provider, host, _) = both(Sampler::AlwaysOff);
    let start = SpanStart::new("request", SpanKind::Server);
    let span = host.start(&Context::new(), start, || panic!("built for nothing"));
    assert!(!span.is_recording());
}

#[test]
fn spans_that_go_nowhere_are_not_recorded_but_keep_the_sampled_flag() {
    let host = HostTracer::new(
        InstrumentationScope::builder("wasmlens").build(),
        Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        LIMITS,
        None,
    );
    let sampled = SpanContext::new(
        TraceId::from(5),
        SpanId::from(6),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let parent = Context::new().with_remote_span_context(sampled);
    let start = SpanStart::new("request", SpanKind::Server);
    let span = host.start(&parent, start, || panic!("built for nothing"));
    assert!(!span.is_recording());
    assert!(span.span_context().is_sampled());
    assert_eq!(span.span_context().trace_id(), TraceId::from(5));
}

#[test]
fn after_the_shutdown_host_spans_are_neither_recorded_nor_delivered() {
    let (provider, host, captured) = both(Sampler::AlwaysOn);
    let start = SpanStart::new("request", SpanKind::Server);
    let before = host.start(&Context::new(), start.clone(), Vec::new);
    provider.shutdown().unwrap();
    drop(before);
    let after = host.start(&Context::new(), start, Vec::new);
    assert!(!after.is_recording());
    assert!(!after.span_context().is_valid());
    assert!(captured.take().is_empty());
}

#[test]
fn a_span_dropped_without_ending_is_delivered_with_an_end_time() {
    let (_provider, host, captured) = both(Sampler::AlwaysOn);
    let start = SpanStart::new("request", SpanKind::Server);
    drop(host.start(&Context::new(), start, Vec::new));
    let spans = captured.take();
    assert_eq!(spans.len(), 1);
    assert!(spans[0].end_time >= spans[0].start_time);
    assert_eq!(spans[0].instrumentation_scope.name(), "wasmlens");
}
