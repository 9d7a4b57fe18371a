//! A collector that is away, then back: requests are served all along; the spans that could
//! not be exported are said in a few lines and counted, the same number everywhere; and
//! export resumes when the collector returns.

use std::time::Duration;
use wasmlens_test_support::{OtlpReceiver, Transport, Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

/// A loopback address nothing listens on (yet).
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The number before `after` in `line` ("12 spans lost meanwhile" -> 12).
fn count_before(line: &str, after: &str) -> u64 {
    let head = &line[..line
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in {line:?}"))];
    let word = head.split_whitespace().last().unwrap();
    word.parse()
        .unwrap_or_else(|_| panic!("a count before {after:?} in {line:?}"))
}

#[tokio::test]
async fn export_resumes_when_the_collector_returns_and_what_was_lost_is_counted() {
    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        let (grpc, http) = (free_address(), free_address());
        let (endpoint, protocol) = match transport {
            Transport::Grpc => (format!("http://{grpc}"), "grpc"),
            _ => (format!("http://{http}"), "http/protobuf"),
        };
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100".to_owned()),
        ];
        let hello = guest("http-hello");
        let mut server = Wasmlens::serve(BIN, &[hello.to_str().unwrap()], &env).await;

        // Away: every request is served, and one line says why nothing is exported.
        for _ in 0..10 {
            assert_eq!(http_get(&server.url("/"), &[]).await.0, 200);
        }
        let failing = server.wait_for_stderr("cannot export traces", WAIT).await;
        assert!(
            failing.contains(&format!("cannot export traces to {endpoint}"))
                && failing.contains("Connection refused"),
            "{failing}"
        );

        // Back: requests' spans arrive again, and a line says what was lost meanwhile.
        let receiver = OtlpReceiver::start_on(&grpc, &http).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while receiver.spans().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}",
                server.stderr()
            );
            assert_eq!(http_get(&server.url("/"), &[]).await.0, 200);
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                receiver.wait_until("any span", WAIT, |r| !r.spans().is_empty()),
            )
            .await;
        }
        let resumed = server.wait_for_stderr("exporting traces to", WAIT).await;
        let lost = count_before(&resumed, "spans lost meanwhile");
        // At least each request's HttpRequest span was lost while it was away.
        assert!(lost >= 10, "{resumed}");

        let (status, stderr) = server.terminate().await;
        assert!(status.success(), "{stderr}");
        let said = stderr
            .lines()
            .filter(|l| l.contains("cannot export traces"));
        assert_eq!(said.count(), 1, "{stderr}");
        assert!(!stderr.contains("ExportError"), "{stderr}");
        let summary = stderr
            .lines()
            .find(|l| l.contains("were not exported"))
            .unwrap_or_else(|| panic!("no summary at shutdown: {stderr}"));
        assert_eq!(count_before(summary, "spans"), lost, "{stderr}");

        // The same count in the conventions' metric, once the collector has the last export.
        let failed = |r: &OtlpReceiver| {
            r.metrics()
                .into_iter()
                .filter(|m| m.name == "otel.sdk.exporter.span.exported")
                .filter(|m| {
                    m.attributes.get("error.type").map(String::as_str) == Some("export_failed")
                })
                .map(|m| m.value as u64)
                .max()
        };
        receiver
            .wait_until("the count of spans lost", WAIT, |r| failed(r) == Some(lost))
            .await;
        let exported = receiver
            .metrics()
            .into_iter()
            .find(|m| {
                m.name == "otel.sdk.exporter.span.exported"
                    && !m.attributes.contains_key("error.type")
            })
            .expect("spans exported counted");
        assert_eq!(
            exported
                .attributes
                .get("otel.component.type")
                .map(String::as_str),
            Some(match transport {
                Transport::Grpc => "otlp_grpc_span_exporter",
                _ => "otlp_http_span_exporter",
            })
        );
    }
}

/// A collector that throttles (429, 503 with Retry-After) or whose proxy fails (502) gets
/// the batch again, as opentelemetry-otlp's exporters retry: every span arrives, once.
#[tokio::test]
async fn a_refused_export_is_sent_again_and_arrives_once() {
    for (status, retry_after) in [(503, Some("0")), (429, Some("1")), (502, None)] {
        let receiver = OtlpReceiver::start().await;
        receiver.refuse_trace_exports(2, status, retry_after);
        let mut env = receiver.exporter_env(Transport::HttpProtobuf);
        env.push(("OTEL_METRICS_EXPORTER", "none".to_owned()));
        env.push(("OTEL_LOGS_EXPORTER", "none".to_owned()));
        let hello = guest("http-hello");
        let server = Wasmlens::serve(BIN, &[hello.to_str().unwrap()], &env).await;
        for _ in 0..5 {
            assert_eq!(http_get(&server.url("/"), &[]).await.0, 200);
        }
        let (exit, stderr) = server.terminate().await;
        assert!(exit.success(), "{stderr}");
        let spans = receiver.wait_for_spans("HttpRequest", 5, WAIT).await;
        let traces: std::collections::BTreeSet<_> = spans.iter().map(|s| &s.trace_id).collect();
        assert_eq!((spans.len(), traces.len()), (5, 5), "{status}: each once");
        assert_eq!(receiver.refused_trace_exports(), 2, "{status}");
        assert!(
            !stderr.contains("cannot export traces"),
            "{status}: {stderr}"
        );
    }
}
