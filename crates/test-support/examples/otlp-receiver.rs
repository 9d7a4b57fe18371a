//! A standalone OTLP receiver for trying wasmlens by hand and for benchmarks: serves gRPC
//! and HTTP on loopback, and on Ctrl-C (or after `--for SECONDS`) prints how many spans,
//! metric points and log records it got, and the span tree of each trace (with `--tree`).
//!
//!     cargo run -p wasmlens-test-support --example otlp-receiver -- [--grpc 4317] [--http 4318] [--tree]

use std::collections::BTreeMap;
use std::time::Duration;
use wasmlens_test_support::OtlpReceiver;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let grpc = value("--grpc").map(|p| format!("127.0.0.1:{p}"));
    let http = value("--http").map(|p| format!("127.0.0.1:{p}"));
    let receiver = OtlpReceiver::start_on(
        grpc.as_deref().unwrap_or("127.0.0.1:4317"),
        http.as_deref().unwrap_or("127.0.0.1:4318"),
    )
    .await;
    eprintln!(
        "OTLP receiver: gRPC {} HTTP {}",
        receiver.grpc_endpoint(),
        receiver.http_endpoint()
    );
    match value("--for").and_then(|s| s.parse().ok()) {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    let spans = receiver.spans();
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for span in &spans {
        *by_name.entry(&span.name).or_default() += 1;
    }
    println!("spans: {} {by_name:?}", spans.len());
    println!("metric points: {}", receiver.metrics().len());
    println!("log records: {}", receiver.logs().len());
    if args.iter().any(|a| a == "--tree") {
        for span in &spans {
            println!(
                "trace {} span {} parent {:16} kind {} {} {:?}",
                span.trace_id,
                span.span_id,
                span.parent_span_id,
                span.kind,
                span.name,
                span.attributes
            );
        }
    }
}
