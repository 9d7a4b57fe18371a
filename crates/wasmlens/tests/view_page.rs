//! The view's page in a real browser: Debian's chromium, headless, driven by Playwright
//! (tests/browser/look.py; scripts/setup.sh installs both). The page is loaded after a few
//! good and failing requests, as a person would open it, and what each screen shows is
//! judged here.

use serde_json::Value;
use std::time::Duration;
use wasmlens_test_support::{Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_page_shows_plots_traces_a_failed_trace_logs_and_the_workload() {
    let misbehave = guest("http-misbehave");
    let args = ["--fuel", "5000000", misbehave.to_str().unwrap()];
    let mut server = Wasmlens::serve(BIN, &args, &[]).await;
    let line = server.wait_for_stderr("telemetry view: ", WAIT).await;
    let view = line.split("telemetry view: ").nth(1).unwrap();
    let view = view
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/');
    for path in ["/ok", "/ok", "/loop", "/ok", "/ok"] {
        http_get(&server.url(path), &[]).await;
    }
    // The failure's own line names its trace's page.
    let line = server.wait_for_stderr("(trace: ", WAIT).await;
    let failed = line
        .rsplit("/traces/")
        .next()
        .unwrap()
        .trim_end_matches(')');

    let output = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/look.py"
        ))
        .args(["--url", view, "--failed-trace", failed])
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "look.py (scripts/setup.sh installs playwright and chromium): {stderr}"
    );
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("look.py's report: {err}: {stderr}"));

    assert_eq!(seen["errors"], Value::Array(vec![]), "the page's console");
    assert_eq!(
        seen["requests_elsewhere"],
        Value::Array(vec![]),
        "everything comes from the view itself"
    );
    let plots = seen["plots"].as_array().unwrap();
    for title in [
        "requests/s",
        "latency (ms)",
        "error rate",
        "fuel per invocation",
    ] {
        let plot = plots.iter().find(|p| p["title"] == title);
        let points = plot.and_then(|p| p["points"].as_u64()).unwrap_or(0);
        assert!(points > 0, "{title} has data: {plots:#?}");
    }
    let traces = seen["traces"].as_array().unwrap();
    assert!(traces.len() >= 5, "{traces:#?}");
    let failed_rows: Vec<_> = traces.iter().filter(|t| t["failed"] == true).collect();
    assert_eq!(failed_rows.len(), 1, "{traces:#?}");
    assert_eq!(failed_rows[0]["href"], format!("/traces/{failed}"));

    let trace = &seen["failed_trace"];
    let spans = trace["spans"].as_array().unwrap();
    let names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    for name in [
        "HttpRequest",
        "ComponentInstantiation",
        "ComponentInvocation",
    ] {
        assert!(names.contains(&name), "{name} in the waterfall: {names:?}");
    }
    let failure = trace["failure"].as_str().unwrap_or_default();
    assert!(failure.contains("FuelExhausted"), "{trace:#}");
    let details = trace["details"].as_str().unwrap();
    assert!(
        details.contains("error.type") && details.contains("FuelExhausted"),
        "{details}"
    );
    let logs = trace["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.as_str().unwrap().contains("ran out of fuel")),
        "{logs:#?}"
    );
    let live = seen["logs"].as_array().unwrap();
    assert!(live.len() >= 5, "{live:#?}");
    let workload = seen["workload"][0].as_str().unwrap();
    assert!(
        workload.contains("http-misbehave") && workload.contains("running"),
        "{workload}"
    );
    assert!(workload.contains("5.0M"), "the fuel limit: {workload}");
    server.terminate().await;
}
