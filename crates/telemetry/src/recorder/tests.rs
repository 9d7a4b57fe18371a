//! The recorder fed by a real tracer and logger, as the pipeline feeds it.

use super::*;
use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::Arc;

struct Fed {
    recorder: Arc<Recorder>,
    tracer: opentelemetry_sdk::trace::SdkTracer,
    logger: opentelemetry_sdk::logs::SdkLogger,
}

fn fed(budget: usize) -> Fed {
    let recorder = Arc::new(Recorder::new(
        budget,
        &opentelemetry_sdk::Resource::builder().build(),
    ));
    let tracer = SdkTracerProvider::builder()
        .with_span_processor(RecordingSpanProcessor(recorder.clone()))
        .build()
        .tracer("wasmlens");
    let logger = SdkLoggerProvider::builder()
        .with_log_processor(RecordingLogProcessor(recorder.clone()))
        .build()
        .logger("wasmlens");
    Fed {
        recorder,
        tracer,
        logger,
    }
}

impl Fed {
    /// A request's trace: an `HttpRequest` entry span with an invocation under it, failed
    /// or not, and a log record in it. Returns its id.
    fn request(&self, route: &str, failed: bool) -> TraceId {
        let entry = self
            .tracer
            .span_builder("HttpRequest")
            .with_attributes([
                KeyValue::new("http.route", route.to_owned()),
                KeyValue::new("http.response.status_code", if failed { 500 } else { 200 }),
            ])
            .start(&self.tracer);
        let id = entry.span_context().trace_id();
        let cx = opentelemetry::Context::current_with_span(entry);
        let mut invocation = self
            .tracer
            .span_builder("ComponentInvocation")
            .with_attributes([KeyValue::new("component_id", "shop")])
            .start_with_context(&self.tracer, &cx);
        let mut record = self.logger.create_log_record();
        record.set_body("handling request".into());
        record.set_severity_number(Severity::Info);
        record.add_attribute("component_id", "shop");
        record.set_trace_context(id, invocation.span_context().span_id(), None);
        self.logger.emit(record);
        if failed {
            invocation.set_status(Status::error("trap"));
            invocation.set_attribute(KeyValue::new("error.type", "Trap"));
        }
        invocation.end();
        cx.span().end();
        id
    }
}

#[test]
fn traces_are_listed_newest_first_and_filtered() {
    let fed = fed(DEFAULT_MEMORY);
    let ok = fed.request("/", false);
    let failed = fed.request("/api", true);
    let all = fed.recorder.trace_list(&TraceFilter::default(), 10);
    let ids: Vec<&str> = all.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, [failed.to_string(), ok.to_string()]);
    assert_eq!(all[0].components, ["shop"]);
    assert_eq!(all[0].error_type.as_deref(), Some("Trap"));

    let errors = TraceFilter {
        errors_only: true,
        ..TraceFilter::default()
    };
    assert_eq!(fed.recorder.trace_list(&errors, 10).len(), 1);
    let by_route = TraceFilter {
        route: Some("/".to_owned()),
        ..TraceFilter::default()
    };
    assert_eq!(
        fed.recorder.trace_list(&by_route, 10)[0].trace_id,
        ok.to_string()
    );
    let by_status = TraceFilter {
        status: Some(500),
        ..TraceFilter::default()
    };
    assert_eq!(
        fed.recorder.trace_list(&by_status, 10)[0].trace_id,
        failed.to_string()
    );
    let elsewhere = TraceFilter {
        component: Some("cart".to_owned()),
        ..TraceFilter::default()
    };
    assert!(fed.recorder.trace_list(&elsewhere, 10).is_empty());

    let trace = fed.recorder.trace(failed).unwrap();
    assert_eq!(trace.spans.len(), 2);
    assert_eq!(trace.logs.len(), 1, "its log record");
    assert_eq!(trace.logs[0].body, "handling request");
    let json = fed.recorder.trace_otlp_json(failed).unwrap();
    assert!(
        json.contains("resourceSpans") && json.contains(&failed.to_string()),
        "{json}"
    );
}

#[test]
fn within_its_bound_failed_traces_outlive_ordinary_ones() {
    // Room for a few dozen traces.
    let fed = fed(64 << 10);
    let failed = fed.request("/", true);
    for _ in 0..500 {
        fed.request("/", false);
    }
    let memory = fed.recorder.memory();
    assert!(
        memory.trace_bytes <= memory.budget_bytes / 4 * 3,
        "{memory:?}"
    );
    assert!(memory.traces < 500, "some were dropped: {memory:?}");
    assert!(
        fed.recorder.trace(failed).is_some(),
        "the failed trace is kept"
    );
    // Far faster than the store renews (traces/tests.rs): most were not kept, and counted.
    assert!(memory.traces_not_kept > 400, "{memory:?}");
    assert!(memory.log_bytes <= memory.budget_bytes / 4, "{memory:?}");
}

/// A meter whose collections the recorder takes, as the pipeline's view reader does; each
/// `collect` is one collection (the interval is far away).
struct Metered {
    recorder: Arc<Recorder>,
    provider: opentelemetry_sdk::metrics::SdkMeterProvider,
}

fn metered(budget: usize) -> Metered {
    let recorder = Arc::new(Recorder::new(
        budget,
        &opentelemetry_sdk::Resource::builder().build(),
    ));
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(RecordingMetricExporter(
        recorder.clone(),
    ))
    .with_interval(std::time::Duration::from_secs(3600))
    .build();
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .build();
    Metered { recorder, provider }
}

impl Metered {
    fn collect(&self) {
        self.provider.force_flush().unwrap();
    }
}

#[test]
fn the_overview_turns_cumulative_collections_into_rates_errors_and_percentiles() {
    use crate::names::{attr, metric};
    use opentelemetry::metrics::MeterProvider as _;
    let metered = metered(64 << 20);
    let meter = metered.provider.meter("wasmlens");
    let instruments = crate::instruments::Instruments::new(&meter, true);
    let request = |status: i64, seconds: f64| {
        let attrs = [
            KeyValue::new(attr::HTTP_ROUTE, "/api"),
            KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, status),
        ];
        instruments
            .http_server_request_duration
            .record(seconds, &attrs);
    };
    // 90 fast good requests and 10 slow failures, in one collection.
    (0..90).for_each(|_| request(200, 0.002));
    (0..10).for_each(|_| request(500, 0.8));
    let invoked = [KeyValue::new(attr::COMPONENT_ID, "api")];
    instruments.component_invocations.add(100, &invoked);
    let fueled = [KeyValue::new(attr::WASMTIME_COMPONENT_ID, "api")];
    instruments.fuel_consumed.add(5_000, &fueled);
    metered.collect();
    // A second collection with nothing new adds nothing to its point.
    metered.collect();

    let overview = metered.recorder.overview(0);
    assert_eq!(overview.resolution_s, 1);
    let route = &overview.routes[0];
    assert_eq!(route.route, "/api");
    let last = overview.times.len() - 1;
    let point = (0..=last)
        .rev()
        .find(|&i| route.requests_per_s[i] > 0.0)
        .expect("a point with the requests");
    assert_eq!(route.requests_per_s[..=point].iter().sum::<f64>(), 100.0);
    assert_eq!(route.error_rate[point], Some(0.1));
    let p50 = route.p50_ms[point].unwrap();
    let p99 = route.p99_ms[point].unwrap();
    assert!(p50 > 0.0 && p50 <= 5.0, "p50 {p50} ms in the 2 ms bucket");
    assert!(
        (500.0..=1000.0).contains(&p99),
        "p99 {p99} ms among the slow ones"
    );
    let component = &overview.components[0];
    assert_eq!(component.component, "api");
    assert_eq!(component.fuel_per_invocation[point], Some(50.0));

    let series = metered
        .recorder
        .metric_series(Some(metric::COMPONENT_INVOCATIONS), 2);
    let total: f64 = series[0].points.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 100.0, "by the minute too: {series:?}");
}

#[test]
fn metric_streams_beyond_the_bound_are_refused_and_counted() {
    use opentelemetry::metrics::MeterProvider as _;
    // An eighth of 1 MiB holds a few counter streams, not a hundred.
    let metered = metered(1 << 20);
    let counter = metered.provider.meter("test").u64_counter("many").build();
    for i in 0..100 {
        counter.add(1, &[KeyValue::new("i", i)]);
    }
    metered.collect();
    let memory = metered.recorder.memory();
    assert!(
        memory.metric_streams > 0 && memory.metric_streams < 100,
        "{memory:?}"
    );
    assert_eq!(
        memory.metric_streams as u64 + memory.metric_streams_refused,
        100
    );
    assert!(memory.metric_bytes <= (1 << 20) / 8, "{memory:?}");
}

#[test]
fn quantiles_interpolate_within_their_bucket() {
    let bounds = [1.0, 2.0, 4.0];
    // 10 in (0,1], 10 in (1,2], none in (2,4], 1 above 4.
    let buckets = [10, 10, 0, 1];
    assert_eq!(overview::quantile(&bounds, &buckets, 21, 0.0), Some(0.0));
    assert_eq!(
        overview::quantile(&bounds, &buckets, 21, 10.5 / 21.0),
        Some(1.05)
    );
    assert_eq!(overview::quantile(&bounds, &buckets, 21, 1.0), Some(4.0));
    assert_eq!(overview::quantile(&bounds, &buckets, 0, 0.5), None);
}
