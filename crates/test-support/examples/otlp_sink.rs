//! An OTLP receiver that counts what it receives, for `scripts/soak.py`: it serves gRPC and
//! HTTP on the addresses given, and prints one JSON line a second with the totals so far
//! and the latest value of every `otel.sdk.*` series the sender reports about itself, and a
//! last line when it is terminated (SIGTERM).
//!
//!     cargo run --release -p wasmlens-test-support --example otlp_sink -- GRPC_ADDR HTTP_ADDR

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmlens_test_support::OtlpReceiver;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(grpc), Some(http)) = (args.next(), args.next()) else {
        eprintln!("usage: otlp_sink GRPC_ADDR HTTP_ADDR");
        std::process::exit(2);
    };
    let receiver = OtlpReceiver::start_on(&grpc, &http).await;
    let (mut spans, mut logs, mut points) = (0usize, 0usize, 0usize);
    let mut sdk = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = terminate.recv() => true,
        };
        let (new_spans, new_points, new_logs) = receiver.take();
        spans += new_spans.len();
        logs += new_logs.len();
        points += new_points.len();
        for point in new_points
            .into_iter()
            .filter(|p| p.name.starts_with("otel.sdk."))
        {
            let labels: Vec<String> = point
                .attributes
                .iter()
                .filter(|(key, _)| key.as_str() != "otel.component.name")
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            sdk.insert(
                format!("{}{{{}}}", point.name, labels.join(",")),
                point.value,
            );
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let line = serde_json::json!({
            "t": now.as_secs_f64(),
            "spans": spans,
            "logs": logs,
            "metric_points": points,
            "sdk": sdk,
        });
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return; // the reader is gone
        }
        if last {
            return;
        }
    }
}
