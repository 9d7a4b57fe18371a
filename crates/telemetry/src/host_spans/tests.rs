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
fn use_span(span: &mut impl opentelemetry::trace::Span, ok: bool) {
    for i in 0..4 {
        span.set_attribute(KeyValue::new("set", i));
        let attributes = vec![KeyValue::new("a", i), KeyValue::new("b", i)];
        span.add_event_with_timestamp("event", SystemTime::UNIX_EPOCH, attributes);
    }
    span.add_link(SpanContext::empty_context(), vec![KeyValue::new("l", 1)]);
    span.add_link(SpanContext::empty_context(), vec![]);
    span.set_status(Status::error("failed"));
    span.set_status(Status::Unset);
    if ok {
        span.set_status(Status::Ok);
    }
    span.update_name("renamed");
    span.end_with_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(5));
}

#[test]
fn host_spans_come_out_as_the_sdks_do() {
    let mut compared = 0;
    for sampler in samplers() {
        let (provider, host, captured) = both(sampler.clone());
        let tracer = provider.tracer("wasmlens");
        // Ids on either side of the ratio sampler's half.
        for (n, trace) in [1u128, u128::MAX - 1, 1 << 126, 3 << 126]
            .into_iter()
            .enumerate()
        {
            for (parent_name, parent) in parents(&provider, trace) {
                let case = format!("{sampler:?} under {parent_name} (trace {trace:x})");
                captured.take();
                let (span_id, trace_id) = (SpanId::from(11), TraceId::from(trace));
                // One more than the limit, from the start.
                let at_start = || (0..5).map(|i| KeyValue::new("at", i)).collect::<Vec<_>>();
                let mut sdk = start_with_ids(trace_id, span_id, || {
                    tracer
                        .span_builder("request")
                        .with_kind(SpanKind::Server)
                        .with_attributes(at_start())
                        .start_with_context(&tracer, &parent)
                });
                let start = SpanStart::new("request", SpanKind::Server);
                // Half the time with the id given, which beats the generator's preset (12);
                // the other half with the preset.
                let (start, preset) = match n % 2 {
                    0 => (start.with_span_id(span_id), SpanId::from(12)),
                    _ => (start, span_id),
                };
                let mut ours =
                    start_with_ids(trace_id, preset, || host.start(&parent, start, at_start));
                assert_eq!(sdk.span_context(), ours.span_context(), "{case}");
                assert_eq!(sdk.is_recording(), ours.is_recording(), "{case}");
                let recording = ours.is_recording();
                use_span(&mut sdk, n >= 2);
                use_span(&mut ours, n >= 2);
                let mut spans = captured.take();
                if let [sdk_data, ours_data] = &mut spans[..] {
                    // The one thing that cannot be alike: when each started.
                    ours_data.start_time = sdk_data.start_time;
                    assert_eq!(sdk_data, ours_data, "{case}");
                    compared += 1;
                } else {
                    assert!(spans.is_empty() && !recording, "{case}: {spans:?}");
                }
            }
        }
    }
    // Every sampler records some of these, the always-off ones under sampled parents.
    assert!(compared >= 40, "only {compared} spans compared");
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

/// A processor that shares the spans it is given, and keeps them.
#[derive(Debug, Default, Clone)]
struct Sharing(Arc<Mutex<Vec<Arc<SpanData>>>>);

impl SpanProcessor for Sharing {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, span: SpanData) {
        crate::fan_out::SharesSpans::on_end_shared(self, Arc::new(span));
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl crate::fan_out::SharesSpans for Sharing {
    fn on_end_shared(&self, span: Arc<SpanData>) {
        self.0.lock().unwrap().push(span);
    }
}

#[test]
fn processors_that_share_spans_get_one_arc_and_the_others_a_copy_of_it() {
    let (copying, first, second) = (Captured::default(), Sharing::default(), Sharing::default());
    let mut fan_out = FanOut::default();
    fan_out.push(opentelemetry_sdk::trace::SimpleSpanProcessor::new(
        copying.clone(),
    ));
    fan_out.push_sharing(first.clone());
    fan_out.push_sharing(second.clone());
    let shared = SharedProcessors::new(fan_out, &Resource::builder_empty().build());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(shared.clone())
        .build();
    let scope = InstrumentationScope::builder("wasmlens").build();
    let host = HostTracer::new(scope, Sampler::AlwaysOn, LIMITS, Some(shared));

    let start = SpanStart::new("host", SpanKind::Internal);
    drop(host.start(&Context::new(), start, Vec::new));
    drop(provider.tracer("guest").start("guest"));

    let copies = copying.take();
    let (first, second) = (first.0.lock().unwrap(), second.0.lock().unwrap());
    let names: Vec<_> = copies.iter().map(|span| span.name.as_ref()).collect();
    assert_eq!(names, ["host", "guest"]);
    for (i, copy) in copies.iter().enumerate() {
        assert!(
            Arc::ptr_eq(&first[i], &second[i]),
            "{} is shared",
            copy.name
        );
        assert_eq!(*first[i], *copy);
    }
}
