//! wasi:otel as a guest uses it: its spans, log records and metrics arrive at an OTLP
//! receiver with their own ids, times, attributes and scope, nested under the invocation
//! that made them and carrying the host's resource; a guest that sends too much is capped,
//! and what is dropped is counted. Guests built against either name of the context
//! function work.

use std::time::Duration;
use wasmlens_test_support::{
    HistogramData, OtlpReceiver, SpanRecord, Transport, Wasmlens, guest, http_get,
};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);
/// The span id the test guest gives its own span.
const GUEST_SPAN: &str = "00f067aa0ba902b7";

async fn serve(guest_name: &str, receiver: &OtlpReceiver) -> Wasmlens {
    let component = guest(guest_name);
    let env = receiver.exporter_env(Transport::Grpc);
    Wasmlens::serve(BIN, &[component.to_str().unwrap()], &env).await
}

fn invocation_of<'a>(spans: &'a [SpanRecord], guest_span: &SpanRecord) -> &'a SpanRecord {
    spans
        .iter()
        .find(|s| s.name == "ComponentInvocation" && s.span_id == guest_span.parent_span_id)
        .expect("the guest's span is a child of its ComponentInvocation")
}

#[tokio::test]
async fn a_guests_span_keeps_what_it_recorded_and_nests_under_its_invocation() {
    let receiver = OtlpReceiver::start().await;
    let server = serve("http-otel", &receiver).await;
    let (_, _, context) = http_get(&server.url("/context"), &[]).await;
    assert_eq!(http_get(&server.url("/"), &[]).await.2, "traced\n");
    server.terminate().await;

    let guest_span = receiver.wait_for_span("guest-work", WAIT).await;
    let spans = receiver.spans();
    let invocation = invocation_of(&spans, &guest_span);
    assert_eq!(guest_span.trace_id, invocation.trace_id);
    assert_eq!(guest_span.span_id, GUEST_SPAN, "the guest's own id");
    assert_eq!(guest_span.kind, 1);
    assert_eq!(guest_span.status_code, 1, "ok, as the guest said");
    assert_eq!(guest_span.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(guest_span.end_time_unix_nano, 1_700_000_000_250_000_000);
    assert_eq!(guest_span.attr("guest.answer"), Some("42"));
    assert_eq!(guest_span.attr("guest.word"), Some("hello"));
    assert_eq!(guest_span.attr("component_id"), Some("http-otel"));
    assert_eq!(guest_span.events[0].name, "guest-event");
    assert_eq!(guest_span.events[0].attributes["n"], "1");
    assert_eq!(guest_span.scope, ("guest-scope".into(), "1.2.3".into()));
    assert_eq!(
        guest_span.resource, invocation.resource,
        "the host's resource"
    );

    // The context function answers the invocation the guest runs in.
    let (trace, span) = context.trim().split_once('-').unwrap();
    let asked = spans
        .iter()
        .find(|s| s.name == "ComponentInvocation" && s.span_id == span)
        .expect("the context is a ComponentInvocation's");
    assert_eq!(asked.trace_id, trace);
}

#[tokio::test]
async fn a_guests_log_records_and_metrics_go_through_the_hosts_pipelines() {
    let receiver = OtlpReceiver::start().await;
    let server = serve("http-otel", &receiver).await;
    for _ in 0..2 {
        assert_eq!(http_get(&server.url("/"), &[]).await.2, "traced\n");
    }
    server.terminate().await;

    receiver
        .wait_until("the guest's records and metrics", WAIT, |r| {
            r.logs()
                .iter()
                .filter(|l| l.body == "guest says hi")
                .count()
                == 2
                && r.metrics()
                    .iter()
                    .any(|m| m.name == "guest.requests" && m.value == 2.0)
                && r.metrics()
                    .iter()
                    .any(|m| m.name == "guest.latency" && m.value == 8.0)
        })
        .await;
    let record = receiver
        .logs()
        .into_iter()
        .find(|l| l.body == "guest says hi")
        .unwrap();
    assert_eq!(
        (record.severity_number, record.severity_text.as_str()),
        (13, "WARN")
    );
    assert_eq!(record.span_id, GUEST_SPAN, "the ids the guest gave");
    assert_eq!(record.scope, "guest-scope");
    assert_eq!(record.attributes["guest.attr"], "7");
    assert_eq!(record.attributes["event.name"], "guest.event");
    assert_eq!(record.attributes["component_id"], "http-otel");

    let metrics = receiver.metrics();
    let requests = metrics
        .iter()
        .rfind(|m| m.name == "guest.requests")
        .unwrap();
    assert_eq!(
        (requests.kind, requests.unit.as_str()),
        ("sum", "{request}")
    );
    assert_eq!(requests.scope, "guest-scope");
    assert_eq!(requests.attributes["path"], "/");
    assert_eq!(requests.attributes["component_id"], "http-otel");
    let temperature = metrics
        .iter()
        .find(|m| m.name == "guest.temperature")
        .unwrap();
    assert_eq!((temperature.kind, temperature.value), ("gauge", 21.5));
    // Each instance exported the same cumulative histogram, all new to it (it lives for
    // one request): the host's holds both, bucket by bucket.
    let latency = metrics.iter().rfind(|m| m.name == "guest.latency").unwrap();
    assert_eq!(
        (latency.kind, latency.unit.as_str(), latency.value),
        ("histogram", "ms", 8.0)
    );
    assert_eq!(latency.scope, "guest-scope");
    assert_eq!(latency.attributes["component_id"], "http-otel");
    assert_eq!(latency.bounds, [1.0, 5.0, 10.0]);
    assert_eq!(
        latency.histogram,
        Some(HistogramData {
            bucket_counts: vec![2, 4, 0, 2],
            sum: Some(35.0),
            min: Some(0.5),
            max: Some(12.0),
        })
    );
}

#[tokio::test]
async fn a_guest_that_sends_too_much_is_capped_and_the_rest_counted() {
    let receiver = OtlpReceiver::start().await;
    let server = serve("http-otel", &receiver).await;
    assert_eq!(http_get(&server.url("/many"), &[]).await.2, "many\n");
    server.terminate().await;

    // 2000 spans and 2000 records sent; an invocation may end 1024 and emit 1024.
    let dropped = |r: &OtlpReceiver, signal: &str| {
        r.metrics()
            .iter()
            .filter(|m| m.name == "guest.telemetry.dropped")
            .filter(|m| m.attributes.get("signal").map(String::as_str) == Some(signal))
            .map(|m| m.value)
            .fold(0.0, f64::max)
    };
    receiver
        .wait_until("what was dropped, counted", WAIT, |r| {
            dropped(r, "traces") == 976.0 && dropped(r, "logs") == 976.0
        })
        .await;
    let spans = receiver.spans();
    assert_eq!(
        spans.iter().filter(|s| s.name == "guest-work").count(),
        1024
    );
    let records = receiver.logs();
    assert_eq!(
        records.iter().filter(|l| l.body == "guest says hi").count(),
        1024
    );
}

#[tokio::test]
async fn a_guest_built_against_the_renamed_context_function_works_too() {
    let receiver = OtlpReceiver::start().await;
    let server = serve("http-otel-current", &receiver).await;
    let (status, _, context) = http_get(&server.url("/context"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(http_get(&server.url("/"), &[]).await.2, "traced\n");
    server.terminate().await;
    let guest_span = receiver.wait_for_span("guest-work", WAIT).await;
    let spans = receiver.spans();
    let invocation = invocation_of(&spans, &guest_span);
    assert_eq!(invocation.attr("component_id"), Some("http-otel-current"));
    assert_eq!(context.trim().len(), 32 + 1 + 16, "{context}");
}
