use super::*;
use std::sync::Arc;

/// The lines the closure's code logs, one string each.
fn lines_of(run: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(lock(&buffer.0).clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn health(capacity: usize) -> SignalHealth {
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
    let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "test");
    SignalHealth::new(
        Signal::Traces,
        Protocol::HttpProtobuf,
        "http://collector:4318/v1/traces".to_owned(),
        capacity,
        HttpCause::default(),
        Some(&meter),
    )
}

fn refused() -> OTelSdkResult {
    Err(OTelSdkError::InternalFailure(
        "connection refused".to_owned(),
    ))
}

use opentelemetry_sdk::error::OTelSdkResult;

#[test]
fn a_failing_collector_is_said_once_then_once_a_minute_then_its_return() {
    let health = health(1000);
    let start = Instant::now();
    let at = |secs| start + Duration::from_secs(secs);
    let lines = lines_of(|| {
        for second in 0..30 {
            assert!(health.admit());
            health.exported_at(1, &refused(), at(second));
        }
        // A minute after the first line, what was lost since.
        assert!(health.admit());
        health.exported_at(1, &refused(), at(61));
        assert!(health.admit());
        health.exported_at(1, &refused(), at(70));
        assert!(health.admit());
        health.exported_at(1, &Ok(()), at(200));
        assert!(health.admit());
        health.exported_at(1, &Ok(()), at(300));
    });
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains("ERROR")
            && lines[0].contains(
                "cannot export traces to http://collector:4318/v1/traces: connection refused"
            ),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("WARN")
            && lines[1].contains("30 spans lost (31 in all): export to http://collector:4318/v1/traces has failed for 1m 1s: connection refused"),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains("INFO")
            && lines[2].contains("exporting traces to http://collector:4318/v1/traces again after 3m 20s; 32 spans lost meanwhile"),
        "{lines:#?}"
    );
    assert_eq!(health.lost(), 32);
    assert_eq!(health.pending.load(Ordering::Relaxed), 0);
}

#[test]
fn a_new_reason_is_said_at_once() {
    let health = health(10);
    let now = Instant::now();
    let lines = lines_of(|| {
        health.exported_at(0, &refused(), now);
        health.exported_at(0, &refused(), now);
        *lock(&health.http_cause) = Some("invalid peer certificate: UnknownIssuer".to_owned());
        health.exported_at(0, &refused(), now);
        health.exported_at(0, &Err(OTelSdkError::Timeout(Duration::from_secs(10))), now);
    });
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[1].ends_with("invalid peer certificate: UnknownIssuer"),
        "{lines:#?}"
    );
    assert!(lines[2].contains("timed out"), "{lines:#?}");
}

#[test]
fn a_full_queue_turns_items_away_and_says_so() {
    let health = health(2);
    let now = Instant::now();
    let lines = lines_of(|| {
        assert!(health.admit());
        assert!(health.admit());
        assert!(!health.admit());
        assert!(!health.admit());
        health.exported_at(2, &Ok(()), now);
        assert!(health.admit());
    });
    assert_eq!(health.lost(), 2);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("WARN")
            && lines[0].contains(
                "2 spans lost (2 in all): the queue (2 spans) was full; see OTEL_BSP_MAX_QUEUE_SIZE"
            ),
        "{lines:#?}"
    );
}

#[test]
fn long_causes_are_cut_to_their_first_line() {
    let long = format!("HTTP export failed. Status Code: 502\n{}", "x".repeat(10));
    assert_eq!(first_line(&long), "HTTP export failed. Status Code: 502");
    let wide = "y".repeat(1000);
    assert_eq!(first_line(&wide).chars().count(), 301);
}

#[test]
fn timeouts_are_told_from_other_failures() {
    assert!(is_timeout(
        "error sending request for url (http://127.0.0.1:1/v1/traces): operation timed out"
    ));
    assert!(is_timeout(
        "TonicTracesClient export failed with gRPC code: Cancelled: Timeout expired"
    ));
    assert!(!is_timeout(
        "tcp connect error: Connection refused (os error 111)"
    ));
}
