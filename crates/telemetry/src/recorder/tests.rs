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
    let mut last = failed;
    for _ in 0..500 {
        last = fed.request("/", false);
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
    assert!(fed.recorder.trace(last).is_some(), "the newest is kept");
    assert!(memory.log_bytes <= memory.budget_bytes / 4, "{memory:?}");
}
