//! TLS to collectors, against a receiver that speaks only TLS with certificates made at
//! test time: over gRPC and HTTP, with a CA named by `OTEL_EXPORTER_OTLP_CERTIFICATE`, and
//! with mutual TLS; an untrusted collector gets nothing and serving goes on; a certificate
//! that cannot be read refuses the start.

use std::time::Duration;
use wasmlens_test_support::{
    OtlpReceiver, TestCertificates, Transport, Wasmlens, guest, http_get, run_to_end,
};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

/// Serves the hello guest exporting to `receiver` over `transport` with `extra`
/// variables, answers one request, and stops: what it wrote on stderr.
async fn one_request(
    receiver: &OtlpReceiver,
    transport: Transport,
    extra: &[(&str, String)],
) -> String {
    let mut env = receiver.exporter_env(transport);
    env.extend(extra.iter().cloned());
    let hello = guest("http-hello");
    let server = Wasmlens::serve(BIN, &[hello.to_str().unwrap()], &env).await;
    assert_eq!(
        http_get(&server.url("/"), &[]).await.2,
        "hello",
        "serving goes on"
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    stderr
}

#[tokio::test]
async fn telemetry_reaches_a_tls_collector_over_grpc_and_http_with_its_ca() {
    let certificates = TestCertificates::generate("ca");
    let ca = [(
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        certificates.file("ca.pem"),
    )];
    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        let receiver = OtlpReceiver::start_tls(&certificates, false).await;
        assert!(receiver.grpc_endpoint().starts_with("https://"));
        one_request(&receiver, transport, &ca).await;
        receiver.wait_for_span("HttpRequest", WAIT).await;
    }
}

#[tokio::test]
async fn a_grpc_endpoint_without_a_scheme_is_tls_unless_insecure() {
    let without_scheme = |receiver: &OtlpReceiver| {
        let endpoint = receiver.grpc_endpoint();
        endpoint.split_once("://").unwrap().1.to_owned()
    };
    let certificates = TestCertificates::generate("schemeless");
    let tls = OtlpReceiver::start_tls(&certificates, false).await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", without_scheme(&tls)),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            certificates.file("ca.pem"),
        ),
    ];
    one_request(&tls, Transport::Grpc, &env).await;
    tls.wait_for_span("HttpRequest", WAIT).await;

    let plain = OtlpReceiver::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", without_scheme(&plain)),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true".to_owned()),
    ];
    one_request(&plain, Transport::Grpc, &env).await;
    plain.wait_for_span("HttpRequest", WAIT).await;
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate_over_grpc_and_http() {
    let certificates = TestCertificates::generate("mutual");
    let env = [
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            certificates.file("ca.pem"),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            certificates.file("client.pem"),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            certificates.file("client-key.pem"),
        ),
    ];
    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        let receiver = OtlpReceiver::start_tls(&certificates, true).await;
        one_request(&receiver, transport, &env).await;
        receiver.wait_for_span("HttpRequest", WAIT).await;
    }
    // The per-signal form wins over the general one.
    let receiver = OtlpReceiver::start_tls(&certificates, true).await;
    let mut per_signal: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    per_signal[0] = (
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        certificates.file("ca.pem"),
    );
    per_signal.push((
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "/nonexistent/ca.pem".to_owned(),
    ));
    per_signal.push(("OTEL_METRICS_EXPORTER", "none".to_owned()));
    per_signal.push(("OTEL_LOGS_EXPORTER", "none".to_owned()));
    one_request(&receiver, Transport::Grpc, &per_signal).await;
    receiver.wait_for_span("HttpRequest", WAIT).await;
}

#[tokio::test]
async fn an_untrusted_collector_gets_nothing_and_serving_goes_on() {
    let certificates = TestCertificates::generate("untrusted");
    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        // No CA named: the test CA is not among the system's roots.
        let receiver = OtlpReceiver::start_tls(&certificates, false).await;
        let stderr = one_request(&receiver, transport, &[]).await;
        // The process has exited, so it has tried to export everything it had.
        assert!(
            receiver.spans().is_empty(),
            "spans reached an untrusted collector"
        );
        // One line says why, naming the endpoint; the SDK's line per batch is not shown.
        let endpoint = match transport {
            Transport::Grpc => receiver.grpc_endpoint(),
            _ => receiver.http_endpoint(),
        };
        let said: Vec<&str> = stderr
            .lines()
            .filter(|line| line.contains("cannot export traces"))
            .collect();
        assert_eq!(said.len(), 1, "{stderr}");
        assert!(
            said[0].contains(&format!("cannot export traces to {endpoint}"))
                && said[0].contains("UnknownIssuer"),
            "{stderr}"
        );
        assert!(!stderr.contains("ExportError"), "{stderr}");
    }
    // A collector that asks for a client certificate, and none is given.
    let receiver = OtlpReceiver::start_tls(&certificates, true).await;
    let ca = [(
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        certificates.file("ca.pem"),
    )];
    one_request(&receiver, Transport::HttpProtobuf, &ca).await;
    assert!(receiver.spans().is_empty());
}

#[tokio::test]
async fn a_certificate_that_cannot_be_read_refuses_the_start() {
    let certificates = TestCertificates::generate("unreadable");
    let receiver = OtlpReceiver::start_tls(&certificates, false).await;
    let hello = guest("http-hello");
    let args = ["serve", "--listen", "127.0.0.1:0", hello.to_str().unwrap()];
    let mut env = receiver.exporter_env(Transport::Grpc);
    env.push((
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "/nonexistent/ca.pem".to_owned(),
    ));
    let finished = run_to_end(BIN, &args, &env).await;
    assert_eq!(finished.code, Some(1));
    assert!(
        finished
            .stderr
            .contains("OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent/ca.pem: cannot be read"),
        "{}",
        finished.stderr
    );
    let mut env = receiver.exporter_env(Transport::Grpc);
    let not_pem = certificates.file("client-key.pem");
    env.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", not_pem.clone()));
    let finished = run_to_end(BIN, &args, &env).await;
    assert_eq!(finished.code, Some(1));
    assert!(
        finished
            .stderr
            .contains(&format!("{not_pem}: no PEM certificate")),
        "{}",
        finished.stderr
    );
}
