//! `wasmlens serve` as a user runs it: the real binary, real HTTP, and its telemetry
//! received over the wire by the in-process OTLP receiver.

use std::time::Duration;
use wasmlens_test_support::{
    MetricPoint, OtlpReceiver, SpanRecord, Transport, Wasmlens, guest, http_get, run_to_end,
};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// `wasmlens serve` of a test guest, exporting to a receiver of its own.
async fn serve_traced(guest_name: &str, transport: Transport) -> (OtlpReceiver, Wasmlens) {
    let receiver = OtlpReceiver::start().await;
    let env = receiver.exporter_env(transport);
    let server = Wasmlens::serve(BIN, &[guest(guest_name).to_str().unwrap()], &env).await;
    (receiver, server)
}

fn one_of<'a>(spans: &[&'a SpanRecord]) -> &'a SpanRecord {
    assert_eq!(spans.len(), 1, "exactly one in {spans:#?}");
    spans[0]
}

fn one<'a>(spans: &'a [SpanRecord], name: &str) -> &'a SpanRecord {
    let matching: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(matching.len(), 1, "exactly one {name} in {spans:#?}");
    matching[0]
}

async fn request_spans_arrive_over(transport: Transport) {
    let (receiver, server) = serve_traced("http-hello", transport).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (status, _, body) = http_get(
        &server.url("/greet?secret=1"),
        &[
            ("traceparent", &traceparent),
            ("user-agent", "tests/1"),
            ("authorization", "Bearer secret-token"),
            ("cookie", "session=secret"),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "hello"));

    receiver.wait_for_spans("HttpRequest", 1, WAIT).await;
    receiver
        .wait_for_spans("ComponentInvocation", 1, WAIT)
        .await;
    let spans = receiver.spans();
    let request = one(&spans, "HttpRequest");
    let invocation = one(&spans, "ComponentInvocation");
    // One instance was made as the workload started, to find a component that cannot
    // start; it took the cold start, and the request's instance is the second.
    let (instantiation, at_start): (Vec<&SpanRecord>, Vec<&SpanRecord>) = spans
        .iter()
        .filter(|s| s.name == "ComponentInstantiation")
        .partition(|s| s.parent_span_id == request.span_id);
    let (instantiation, at_start) = (one_of(&instantiation), one_of(&at_start));
    assert_eq!(
        at_start.parent_span_id,
        one(&spans, "WorkloadStart").span_id
    );
    assert_eq!(at_start.attr("is_coldstart"), Some("true"));
    assert!(spans.iter().all(|s| s.transport == transport));

    assert_eq!(request.kind, 2, "HttpRequest is a server span");
    assert_eq!(
        request.trace_id, CALLER_TRACE,
        "continues the caller's trace"
    );
    assert_eq!(
        request.parent_span_id, CALLER_SPAN,
        "parented by the caller's span"
    );
    for child in [instantiation, invocation] {
        assert_eq!(child.trace_id, CALLER_TRACE);
        assert_eq!(
            child.parent_span_id, request.span_id,
            "{} inside HttpRequest",
            child.name
        );
        assert_eq!(child.kind, 1);
        assert_eq!(child.attr("component_id"), Some("http-hello"));
    }
    for (key, value) in [
        ("http.request.method", "GET"),
        ("http.route", "/*"),
        ("url.path", "/greet"),
        ("url.scheme", "http"),
        ("server.address", "127.0.0.1"),
        ("network.protocol.version", "1.1"),
        ("client.address", "127.0.0.1"),
        ("user_agent.original", "tests/1"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(request.attr(key), Some(value), "{key} of {request:#?}");
    }
    assert_eq!(
        request.attr("server.port"),
        Some(server.addr().port().to_string().as_str())
    );
    assert!(
        request.attributes.values().all(|v| !v.contains("secret")),
        "neither the query string nor a header other than the user agent is recorded: {request:#?}"
    );
    assert_eq!(instantiation.attr("is_coldstart"), Some("false"));
    assert_eq!(
        instantiation.attr("wasmtime.component.name"),
        Some("http-hello.wasm")
    );
    assert_eq!(
        invocation.attr("function_name"),
        Some("wasi:http/incoming-handler.handle")
    );
    assert_eq!(invocation.attr("faas.trigger"), Some("http"));
    assert_eq!(
        request.resource.get("service.name").map(String::as_str),
        Some("wasmlens")
    );
    for key in [
        "service.version",
        "service.instance.id",
        "host.name",
        "process.pid",
        "os.type",
        "telemetry.sdk.name",
    ] {
        assert!(
            request.resource.contains_key(key),
            "resource has {key}: {:?}",
            request.resource
        );
    }
    assert_eq!(
        request
            .resource
            .get("deployment.environment.name")
            .map(String::as_str),
        Some("development")
    );

    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "exits 0 after SIGTERM: {stderr}");
    receiver
        .wait_until("the request metrics", WAIT, |r| {
            let metrics = r.metrics();
            let has = |name: &str| metrics.iter().any(|m| m.name == name);
            has("http.server.request.duration") && has("component.invocations")
        })
        .await;
    let metrics = receiver.metrics();
    let duration = metrics
        .iter()
        .find(|m| m.name == "http.server.request.duration")
        .unwrap();
    assert_eq!(
        (duration.kind, duration.unit.as_str(), duration.value),
        ("histogram", "s", 1.0)
    );
    assert_eq!(
        duration
            .attributes
            .get("http.response.status_code")
            .map(String::as_str),
        Some("200")
    );
    assert_eq!(
        duration.attributes.get("http.route").map(String::as_str),
        Some("/*")
    );
    // Both outcomes' series exist from the start; the error one stays at zero.
    let outcome = |m: &&MetricPoint, outcome: &str| {
        m.name == "component.invocations"
            && m.attributes.get("outcome").map(String::as_str) == Some(outcome)
    };
    let errors = metrics.iter().rev().find(|m| outcome(m, "error")).unwrap();
    assert_eq!(errors.value, 0.0);
    let invocations = metrics.iter().rev().find(|m| outcome(m, "ok")).unwrap();
    assert_eq!(
        (
            invocations.kind,
            invocations.unit.as_str(),
            invocations.value
        ),
        ("sum", "{invocation}", 1.0)
    );
    assert_eq!(
        invocations.attributes.get("outcome").map(String::as_str),
        Some("ok")
    );
}

#[tokio::test]
async fn request_spans_and_metrics_arrive_over_grpc() {
    request_spans_arrive_over(Transport::Grpc).await;
}

#[tokio::test]
async fn request_spans_and_metrics_arrive_over_http_protobuf() {
    request_spans_arrive_over(Transport::HttpProtobuf).await;
}

#[tokio::test]
async fn request_spans_and_metrics_arrive_over_http_json() {
    request_spans_arrive_over(Transport::HttpJson).await;
}

/// The requests of one keep-alive connection each get their own `server.address`,
/// `server.port` and `user_agent.original`, whatever the requests before them sent.
#[tokio::test]
async fn each_request_on_a_connection_is_described_by_its_own_headers() {
    let (receiver, server) = serve_traced("http-hello", Transport::HttpProtobuf).await;
    let port = server.addr().port().to_string();
    struct Sent<'a> {
        path: &'a str,
        host: &'a str,
        user_agent: Option<&'a str>,
        /// `server.address`, `server.port` and `user_agent.original` on its span.
        described: (&'a str, &'a str, Option<&'a str>),
    }
    let requests = [
        Sent {
            path: "/1",
            host: "a.example:8080",
            user_agent: Some("one"),
            described: ("a.example", "8080", Some("one")),
        },
        Sent {
            path: "/2",
            host: "a.example:8080",
            user_agent: Some("one"),
            described: ("a.example", "8080", Some("one")),
        },
        Sent {
            path: "/3",
            host: "b.example",
            user_agent: Some("two"),
            described: ("b.example", &port, Some("two")),
        },
        Sent {
            path: "/4",
            host: "[::1]:9",
            // Not text: not recorded.
            user_agent: Some("caf\u{e9}"),
            described: ("::1", "9", None),
        },
        Sent {
            path: "/5",
            host: "a.example:8080",
            user_agent: None,
            described: ("a.example", "8080", None),
        },
    ];
    let mut connection =
        wasmlens_test_support::HttpConnection::open(&server.addr().to_string()).await;
    for sent in &requests {
        let mut headers = vec![("host", sent.host)];
        headers.extend(sent.user_agent.map(|agent| ("user-agent", agent)));
        let status = connection.request("GET", sent.path, &headers).await.0;
        assert_eq!(status, 200, "{}", sent.path);
    }
    receiver
        .wait_for_spans("HttpRequest", requests.len(), WAIT)
        .await;
    let spans = receiver.spans();
    for Sent {
        path,
        described: (address, port, agent),
        ..
    } in requests
    {
        let span = spans
            .iter()
            .find(|s| s.name == "HttpRequest" && s.attr("url.path") == Some(path))
            .unwrap_or_else(|| panic!("HttpRequest {path} in {spans:#?}"));
        assert_eq!(span.attr("server.address"), Some(address), "{path}");
        assert_eq!(span.attr("server.port"), Some(port), "{path}");
        assert_eq!(span.attr("user_agent.original"), agent, "{path}");
        assert_eq!(span.attr("client.address"), Some("127.0.0.1"), "{path}");
    }
    server.terminate().await;
}

/// Pooled memory is reset in place between instances rather than handed back to the
/// kernel: each instance still finds it as new, whatever the one before wrote or grew.
#[tokio::test]
async fn every_instance_finds_its_memory_as_new() {
    let server = Wasmlens::serve(
        BIN,
        &[
            // One slot, so every request reuses the previous one's memory.
            "--max-concurrent-requests",
            "1",
            "--max-memory",
            "4MiB",
            guest("http-misbehave").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    for round in 0..3 {
        for path in ["/scribble", "/scribble", "/ok", "/grow", "/scribble"] {
            let (status, _, body) = http_get(&server.url(path), &[]).await;
            let expected = match path {
                "/scribble" => (200, "clean\n"),
                "/ok" => (200, "ok\n"),
                _ => (500, body.as_str()),
            };
            assert_eq!((status, body.as_str()), expected, "{path} in round {round}");
        }
    }
    server.terminate().await;
}

/// The same for a memory laid out as toolchains lay out C and Python guests (257 pages, a
/// heap that grows at every request), in both bounds-check modes: with explicit checks a
/// slot keeps the memory an instance grew accessible for the next, which must still find
/// it zeroed, and trap when it reads past its own size into it.
#[tokio::test]
async fn a_large_growing_memory_is_new_to_every_instance_in_both_bounds_check_modes() {
    for mode in ["guard-pages", "explicit"] {
        let guest = guest("http-large-memory");
        let args = [
            "--max-concurrent-requests",
            "1",
            "--bounds-checks",
            mode,
            guest.to_str().unwrap(),
        ];
        let server = Wasmlens::serve(BIN, &args, &[]).await;
        for round in 0..3 {
            for path in ["/scribble", "/grow", "/beyond", "/scribble", "/beyond"] {
                let (status, _, body) = http_get(&server.url(path), &[]).await;
                let expected = match path {
                    "/scribble" => (200, "clean\n"),
                    "/beyond" => (500, body.as_str()),
                    _ => (200, "ok\n"),
                };
                assert_eq!(
                    (status, body.as_str()),
                    expected,
                    "{mode}: {path} in round {round}"
                );
            }
        }
        server.terminate().await;
    }
}

#[tokio::test]
async fn misbehaving_guests_get_500_while_everyone_else_is_served() {
    let receiver = OtlpReceiver::start().await;
    let misbehave = guest("http-misbehave");
    let args = [
        "--timeout",
        "2s",
        "--max-memory",
        "8MiB",
        misbehave.to_str().unwrap(),
    ];
    let server = Wasmlens::serve(BIN, &args, &receiver.exporter_env(Transport::HttpProtobuf)).await;

    let bad = ["/trap", "/loop", "/grow", "/loop", "/loop"]
        .map(|path| tokio::spawn(http_get_owned(server.url(path))));
    let good: Vec<_> = (0..40)
        .map(|_| tokio::spawn(http_get_owned(server.url("/ok"))))
        .collect();
    for request in good {
        let (status, body) = request.await.unwrap();
        assert_eq!(
            (status, body.as_str()),
            (200, "ok\n"),
            "good requests are served while others loop"
        );
    }
    for request in bad {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 500, "{body}");
    }

    let spans = receiver.wait_for_spans("HttpRequest", 45, WAIT).await;
    let errors: Vec<_> = spans.iter().filter_map(|s| s.attr("error.type")).collect();
    for kind in ["ComponentTrap", "Timeout", "MemoryLimitExceeded"] {
        assert!(errors.contains(&kind), "{kind} in {errors:?}");
    }
    assert!(
        spans
            .iter()
            .filter(|s| s.attr("error.type").is_some())
            .all(|s| s.status_code == 2)
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}: {stderr}");
}

async fn http_get_owned(url: String) -> (u16, String) {
    let (status, _, body) = http_get(&url, &[]).await;
    (status, body)
}

#[tokio::test]
async fn guest_output_becomes_log_records_in_the_invocations_trace() {
    let (receiver, server) = serve_traced("http-misbehave", Transport::Grpc).await;
    assert_eq!(http_get(&server.url("/ok"), &[]).await.0, 200);
    receiver
        .wait_until("both guest lines", WAIT, |r| {
            let logs = r.logs();
            logs.iter().any(|l| l.body == "handling request")
                && logs.iter().any(|l| l.body == "guest warning on stderr")
        })
        .await;
    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    let logs = receiver.logs();
    let stdout = logs.iter().find(|l| l.body == "handling request").unwrap();
    let stderr = logs
        .iter()
        .find(|l| l.body == "guest warning on stderr")
        .unwrap();
    assert_eq!(
        (stdout.severity_number, stderr.severity_number),
        (9, 13),
        "INFO and WARN"
    );
    for line in [stdout, stderr] {
        assert_eq!(line.trace_id, invocation.trace_id);
        assert_eq!(
            line.span_id, invocation.span_id,
            "correlated with the invocation"
        );
        assert_eq!(
            line.attributes.get("component_id").map(String::as_str),
            Some("http-misbehave")
        );
    }
    assert_eq!(
        stdout.attributes.get("log.iostream").map(String::as_str),
        Some("stdout")
    );
    server.terminate().await;
}

#[tokio::test]
async fn sigterm_right_after_a_burst_loses_no_span() {
    const BURST: usize = 300;
    let receiver = OtlpReceiver::start().await;
    let mut env = receiver.exporter_env(Transport::Grpc);
    // A long delay, so that spans are still queued when SIGTERM comes: only the
    // shutdown flush can deliver them.
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned()));
    let server = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &env).await;
    let requests: Vec<_> = (0..BURST)
        .map(|_| tokio::spawn(http_get_owned(server.url("/"))))
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().0, 200);
    }
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    let spans = receiver.wait_for_spans("HttpRequest", BURST, WAIT).await;
    assert_eq!(
        spans.len(),
        BURST,
        "every completed request's span is exported"
    );
    assert_eq!(
        receiver
            .spans()
            .iter()
            .filter(|s| s.name == "ComponentInvocation")
            .count(),
        BURST
    );
}

#[tokio::test]
async fn oversized_requests_are_refused_before_the_guest() {
    let server = Wasmlens::serve(
        BIN,
        &[
            "--max-request-header-size",
            "16KiB",
            "--max-request-body-size",
            "1KiB",
            guest("http-hello").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let big = "x".repeat(20 * 1024);
    assert_eq!(http_get(&server.url("/"), &[("x-big", &big)]).await.0, 431);
    let (status, _, body) = http_get(&server.url("/"), &[("content-length", "5000")]).await;
    assert_eq!(status, 413);
    assert_eq!(
        body,
        "413 Payload Too Large: the body is larger than 1024 bytes\n"
    );
    assert_eq!(
        http_get(&server.url("/"), &[]).await.0,
        200,
        "and the server is still up"
    );
}

#[tokio::test]
async fn a_bad_otel_variable_is_reported_once_and_the_default_used() {
    let env = [
        ("OTEL_TRACES_EXPORTER", "zipkin".to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "smoke".to_owned()),
    ];
    let server = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &env).await;
    assert_eq!(http_get(&server.url("/"), &[]).await.0, 200);
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(
        stderr.matches("OTEL_TRACES_EXPORTER=\"zipkin\"").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("OTEL_EXPORTER_OTLP_PROTOCOL=\"smoke\"")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "traces -> the view (in memory); metrics -> the view (in memory); logs -> the view (in memory)"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_c_guest_through_wasi_libc_and_the_preview1_adapter_serves() {
    let (receiver, server) = serve_traced("c-http-hello", Transport::HttpProtobuf).await;
    let (status, _, body) = http_get(&server.url("/"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    assert_eq!(invocation.attr("component_id"), Some("c-http-hello"));
    let response = receiver.wait_for_span("HttpResponse", WAIT).await;
    assert_eq!(response.attr("http.response.body.size"), Some("5"));
    server.terminate().await;
}

#[tokio::test]
async fn a_component_that_is_not_a_proxy_is_refused() {
    let command = guest("command");
    let ran = run_to_end(BIN, &["serve", command.to_str().unwrap()], &[]).await;
    assert_ne!(ran.code, Some(0));
    let stderr = ran.stderr;
    assert!(
        stderr.contains("does not export wasi:http/incoming-handler"),
        "{stderr}"
    );
    assert!(
        stderr.contains("it exports wasi:cli/run@0.2.12"),
        "{stderr}"
    );
}

#[tokio::test]
async fn exporter_headers_compression_and_per_signal_endpoints_are_honoured() {
    let receiver = OtlpReceiver::start().await;
    let elsewhere = OtlpReceiver::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", elsewhere.http_endpoint()),
        // A per-signal endpoint is used as given: no /v1/traces appended.
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{}/v1/traces", receiver.http_endpoint()),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("{}/v1/metrics", receiver.http_endpoint()),
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-api-key=s3cret,x-team=platform%20ops".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ("OTEL_LOGS_EXPORTER", "none".to_owned()),
    ];
    let server = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &env).await;
    assert_eq!(http_get(&server.url("/"), &[]).await.0, 200);
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    receiver.wait_for_spans("HttpRequest", 1, WAIT).await;
    receiver
        .wait_until("metrics", WAIT, |r| !r.metrics().is_empty())
        .await;
    assert!(
        elsewhere.spans().is_empty()
            && elsewhere.metrics().is_empty()
            && elsewhere.logs().is_empty()
    );
    // Spans go through wasmlens's own exporter, metrics through the SDK's: their requests
    // carry the same headers.
    let headers = receiver.request_headers();
    assert!(headers.len() >= 2, "{headers:?}");
    for export in &headers {
        assert_eq!(export.get("x-api-key").unwrap(), "s3cret");
        assert_eq!(
            export.get("x-team").unwrap(),
            "platform ops",
            "values are URL-decoded"
        );
        assert_eq!(export.get("content-encoding").unwrap(), "gzip");
        assert_eq!(
            export.get("content-type").unwrap(),
            "application/x-protobuf"
        );
        assert_eq!(
            export.get("user-agent"),
            headers[0].get("user-agent"),
            "{headers:?}"
        );
    }
    let agent = headers[0].get("user-agent").unwrap().to_str().unwrap();
    assert!(agent.starts_with("OTel-OTLP-Exporter-Rust/"), "{agent}");
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_finishes_and_is_exported() {
    let receiver = OtlpReceiver::start().await;
    let misbehave = guest("http-misbehave");
    let args = ["--timeout", "1500ms", misbehave.to_str().unwrap()];
    let mut server = Wasmlens::serve(BIN, &args, &receiver.exporter_env(Transport::Grpc)).await;
    let slow = tokio::spawn(http_get_owned(server.url("/loop")));
    // The guest is running once its first line reaches stderr.
    server
        .wait_for_stderr("guest warning on stderr", WAIT)
        .await;
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    let (code, body) = slow.await.unwrap();
    assert_eq!(code, 500, "the in-flight request got its answer: {body}");
    let spans = receiver.wait_for_spans("HttpRequest", 1, WAIT).await;
    assert_eq!(spans[0].attr("error.type"), Some("Timeout"));
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
}

#[tokio::test]
async fn the_guest_sees_the_traceparent_of_its_own_invocation() {
    let receiver = OtlpReceiver::start().await;
    let misbehave = guest("http-misbehave");
    let server = Wasmlens::serve(
        BIN,
        &[misbehave.to_str().unwrap()],
        &receiver.exporter_env(Transport::Grpc),
    )
    .await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (status, _, body) = http_get(
        &server.url("/env"),
        &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
    )
    .await;
    assert_eq!(status, 200);
    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    assert_eq!(invocation.trace_id, CALLER_TRACE);
    let own = format!("TRACEPARENT=00-{CALLER_TRACE}-{}-01", invocation.span_id);
    assert!(body.lines().any(|l| l == own), "{own} in {body}");
    assert!(body.lines().any(|l| l == "TRACESTATE=vendor=1"), "{body}");
    server.terminate().await;
}

#[tokio::test]
async fn malformed_trace_headers_start_a_new_trace_and_never_fail_the_request() {
    let (receiver, server) = serve_traced("http-hello", Transport::Grpc).await;
    let oversized = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01{}", "0".repeat(4096));
    let cases = [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        oversized.as_str(),
    ];
    for traceparent in cases {
        let (status, _, _) = http_get(&server.url("/"), &[("traceparent", traceparent)]).await;
        assert_eq!(status, 200, "{traceparent}");
    }
    // Two traceparents are ambiguous: neither is continued.
    let valid = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let other = "00-11111111111111111111111111111111-2222222222222222-01";
    let headers = [("traceparent", valid.as_str()), ("traceparent", other)];
    assert_eq!(http_get(&server.url("/"), &headers).await.0, 200);
    let spans = receiver
        .wait_for_spans("HttpRequest", cases.len() + 1, WAIT)
        .await;
    for span in &spans {
        assert!(span.parent_span_id.is_empty(), "a new trace: {span:#?}");
        assert_ne!(span.trace_id, CALLER_TRACE);
        assert_ne!(span.trace_id, "11111111111111111111111111111111");
    }
    server.terminate().await;
}

#[tokio::test]
async fn with_propagators_none_the_callers_trace_is_not_continued() {
    let receiver = OtlpReceiver::start().await;
    let mut env = receiver.exporter_env(Transport::Grpc);
    env.push(("OTEL_PROPAGATORS", "none".to_owned()));
    let misbehave = guest("http-misbehave");
    let server = Wasmlens::serve(BIN, &[misbehave.to_str().unwrap()], &env).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (_, _, body) = http_get(&server.url("/env"), &[("traceparent", &traceparent)]).await;
    assert!(!body.contains("TRACEPARENT"), "{body}");
    let request = receiver.wait_for_span("HttpRequest", WAIT).await;
    assert_ne!(request.trace_id, CALLER_TRACE);
    server.terminate().await;
}

/// Starts B (the echoing guest) and A (the fetching guest, pointed at B's `/headers`).
async fn chain(receiver: &OtlpReceiver, a_flags: &[&str]) -> (Wasmlens, Wasmlens) {
    let env = receiver.exporter_env(Transport::Grpc);
    let misbehave = guest("http-misbehave");
    let b = Wasmlens::serve(BIN, &[misbehave.to_str().unwrap()], &env).await;
    let allow = b.addr().to_string();
    let mut flags = vec!["--allow-outbound", &allow];
    flags.extend(a_flags);
    let a = Wasmlens::serve_fetching(BIN, &b.url("/headers"), &flags, &env).await;
    (a, b)
}

#[tokio::test]
async fn one_trace_flows_from_the_client_through_a_into_b() {
    let receiver = OtlpReceiver::start().await;
    let (a, b) = chain(&receiver, &[]).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (status, _, echoed) = http_get(
        &a.url("/?token=secret"),
        &[("traceparent", &traceparent), ("baggage", "tenant=acme")],
    )
    .await;
    assert_eq!(status, 200, "{echoed}");
    assert!(
        echoed.lines().any(|l| l == "baggage: tenant=acme"),
        "baggage arrives at B: {echoed}"
    );
    assert!(
        !echoed.contains("tracestate"),
        "no empty tracestate: {echoed}"
    );

    receiver.wait_for_spans("HttpRequest", 2, WAIT).await;
    let outgoing = receiver.wait_for_span("OutgoingHttpRequest", WAIT).await;
    // The workloads' own lifecycle spans (and the instance each makes as it starts) are
    // traces of their own; every request's is the caller's.
    let all = receiver.spans();
    let lifecycles: Vec<&str> = all
        .iter()
        .filter(|s| s.name.starts_with("Workload"))
        .map(|s| s.trace_id.as_str())
        .collect();
    let spans: Vec<SpanRecord> = all
        .iter()
        .filter(|s| !lifecycles.contains(&s.trace_id.as_str()))
        .cloned()
        .collect();
    assert!(
        spans.iter().all(|s| s.trace_id == CALLER_TRACE),
        "one trace: {spans:#?}"
    );
    let port = |s: &&SpanRecord| s.attr("server.port").map(str::to_owned);
    let requests: Vec<_> = spans.iter().filter(|s| s.name == "HttpRequest").collect();
    let a_request = requests
        .iter()
        .find(|s| port(s) == Some(a.addr().port().to_string()))
        .unwrap();
    let b_request = requests
        .iter()
        .find(|s| port(s) == Some(b.addr().port().to_string()))
        .unwrap();
    let a_invocation = spans
        .iter()
        .find(|s| s.name == "ComponentInvocation" && s.attr("component_id") == Some("http-fetch"))
        .unwrap();
    assert_eq!(a_request.parent_span_id, CALLER_SPAN);
    assert_eq!(a_invocation.parent_span_id, a_request.span_id);
    assert_eq!(outgoing.parent_span_id, a_invocation.span_id);
    assert_eq!(
        b_request.parent_span_id, outgoing.span_id,
        "B continues A's outgoing span"
    );
    let echoed_parent = format!("traceparent: 00-{CALLER_TRACE}-{}-01", outgoing.span_id);
    assert!(echoed.lines().any(|l| l == echoed_parent), "{echoed}");

    assert_eq!(outgoing.kind, 3, "a client span");
    assert_eq!(outgoing.attr("http.request.method"), Some("GET"));
    assert_eq!(
        outgoing.attr("url.full"),
        Some(b.url("/headers").as_str()),
        "no query string"
    );
    assert_eq!(outgoing.attr("server.address"), Some("127.0.0.1"));
    assert_eq!(outgoing.attr("http.response.status_code"), Some("200"));

    a.terminate().await;
    b.terminate().await;
    receiver
        .wait_until("http.client.request.duration", WAIT, |r| {
            r.metrics()
                .iter()
                .any(|m| m.name == "http.client.request.duration")
        })
        .await;
}

#[tokio::test]
async fn propagate_to_none_keeps_the_trace_from_b() {
    let receiver = OtlpReceiver::start().await;
    let (a, b) = chain(&receiver, &["--propagate-to", "none"]).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (status, _, echoed) = http_get(
        &a.url("/"),
        &[("traceparent", &traceparent), ("baggage", "tenant=acme")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !echoed.contains("traceparent") && !echoed.contains("baggage"),
        "{echoed}"
    );
    let requests = receiver.wait_for_spans("HttpRequest", 2, WAIT).await;
    let b_port = b.addr().port().to_string();
    let b_request = requests
        .iter()
        .find(|s| s.attr("server.port") == Some(b_port.as_str()))
        .unwrap();
    assert_ne!(b_request.trace_id, CALLER_TRACE, "B starts its own trace");
    assert!(b_request.parent_span_id.is_empty());
    a.terminate().await;
    b.terminate().await;
}

#[tokio::test]
async fn a_denied_outgoing_request_gets_a_client_span_with_the_error() {
    let receiver = OtlpReceiver::start().await;
    let env = receiver.exporter_env(Transport::Grpc);
    let a = Wasmlens::serve_fetching(BIN, "http://127.0.0.1:9/x?secret=1", &[], &env).await;
    let (status, _, body) = http_get(&a.url("/"), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (502, "fetch failed: error-code 015\n"),
        "the guest's own answer"
    );
    let outgoing = receiver.wait_for_span("OutgoingHttpRequest", WAIT).await;
    assert_eq!(outgoing.attr("error.type"), Some("HTTP-request-denied"));
    assert_eq!(outgoing.status_code, 2);
    assert_eq!(outgoing.attr("url.full"), Some("http://127.0.0.1:9/x"));
    let request = receiver.wait_for_span("HttpRequest", WAIT).await;
    assert_eq!(request.attr("http.response.status_code"), Some("502"));
    a.terminate().await;
}
