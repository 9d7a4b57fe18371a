//! The built-in telemetry view, as a user gets it: `wasmlens serve` with no exporter
//! configured, its view on, and its JSON API answering over HTTP with the traces and log
//! records of the requests just served.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::Value;
use std::time::Duration;
use wasmlens_test_support::{OtlpReceiver, Transport, Wasmlens, guest, http_get, workload_dir};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

/// The view's base URL, from the line that announces it.
async fn view_url(server: &mut Wasmlens) -> String {
    let line = server.wait_for_stderr("telemetry view: ", WAIT).await;
    let url = line.split("telemetry view: ").nth(1).unwrap();
    let url = url.split_whitespace().next().unwrap();
    url.trim_end_matches('/').to_owned()
}

async fn get_json(url: &str) -> Value {
    let (status, _, body) = http_get(url, &[]).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("{url}: {err}: {body}"))
}

/// Asks `url` until `done` holds for its answer, or panics after [`WAIT`].
async fn wait_for_json(url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = get_json(url).await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never got there: {value:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_view_lists_the_requests_traces_and_logs_with_no_exporter() {
    let misbehave = guest("http-misbehave");
    let mut server = Wasmlens::serve(BIN, &[misbehave.to_str().unwrap()], &[]).await;
    let view = view_url(&mut server).await;
    for path in ["/ok", "/ok", "/trap", "/ok"] {
        http_get(&server.url(path), &[]).await;
    }

    let traces_url = format!("{view}/api/traces?route=/*");
    let traces = wait_for_json(&traces_url, |v| v.as_array().unwrap().len() >= 4).await;
    let traces = traces.as_array().unwrap();
    assert!(
        traces
            .windows(2)
            .all(|w| w[0]["start_unix_nano"].as_u64() >= w[1]["start_unix_nano"].as_u64()),
        "newest first: {traces:#?}"
    );
    assert!(traces.iter().all(|t| t["name"] == "HttpRequest"));

    let failed = get_json(&format!("{view}/api/traces?errors=true")).await;
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let summary = &failed[0];
    assert_eq!(summary["status_code"], 500);
    assert_eq!(summary["components"][0], "http-misbehave");
    let id = summary["trace_id"].as_str().unwrap();

    // Its page's data: the spans, the failure, and the log records of that request.
    let trace = get_json(&format!("{view}/api/traces/{id}")).await;
    let spans = trace["spans"].as_array().unwrap();
    let invocation = spans
        .iter()
        .find(|s| s["name"] == "ComponentInvocation")
        .unwrap_or_else(|| panic!("{trace:#}"));
    assert_eq!(invocation["status"], "error", "{invocation:#}");
    assert!(
        invocation["attributes"]["error.type"].is_string(),
        "{invocation:#}"
    );
    let logs = trace["logs"].as_array().unwrap();
    assert!(
        logs.iter().all(|l| l["trace_id"] == id) && !logs.is_empty(),
        "the guest's lines and the failure, in the trace: {logs:#?}"
    );

    // The console's line for the failure links to it.
    let link = format!("(trace: {view}/traces/{id})");
    let line = server.wait_for_stderr(&link, WAIT).await;
    assert!(line.contains("failed (ComponentTrap)"), "{line}");

    // The same trace as OTLP/JSON, for another tool.
    let (status, headers, body) = http_get(&format!("{view}/api/traces/{id}/otlp.json"), &[]).await;
    assert_eq!(status, 200);
    assert!(
        headers[http::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let otlp: ExportTraceServiceRequest = serde_json::from_str(&body).unwrap();
    let exported: usize = otlp
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert_eq!(exported, spans.len());

    let logs = get_json(&format!("{view}/api/logs?component=http-misbehave")).await;
    assert!(
        logs.as_array().unwrap().len() >= 4,
        "a line for each request: {logs:#}"
    );
    let memory = get_json(&format!("{view}/api/memory")).await;
    assert_eq!(memory["budget_bytes"], 64 << 20);

    // Bad input names the input.
    let (status, _, body) = http_get(&format!("{view}/api/traces?limit=many"), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "limit=\"many\": expected a whole number\n")
    );
    let (status, _, body) = http_get(&format!("{view}/api/traces/xyz"), &[]).await;
    assert_eq!(status, 400, "{body}");
    let unknown = "0af7651916cd43dd8448eb211c80319c";
    let (status, _, _) = http_get(&format!("{view}/api/traces/{unknown}"), &[]).await;
    assert_eq!(status, 404);

    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn a_full_view_keeps_every_failed_trace_and_counts_the_ordinary_ones_it_does_not_keep() {
    let misbehave = guest("http-misbehave");
    // Room for a few dozen traces, far fewer than come within its renewal's ten seconds.
    let args = ["--ui-memory", "256KiB", misbehave.to_str().unwrap()];
    let mut server = Wasmlens::serve(BIN, &args, &[]).await;
    let view = view_url(&mut server).await;
    for _ in 0..400 {
        http_get(&server.url("/ok"), &[]).await;
    }
    http_get(&server.url("/trap"), &[]).await;

    let failed_url = format!("{view}/api/traces?errors=true");
    let failed = wait_for_json(&failed_url, |v| v.as_array().unwrap().len() == 1).await;
    assert_eq!(failed[0]["status_code"], 500, "{failed:#}");
    let memory = get_json(&format!("{view}/api/memory")).await;
    let budget = memory["budget_bytes"].as_u64().unwrap();
    assert_eq!(budget, 256 << 10);
    assert!(
        memory["trace_bytes"].as_u64().unwrap() <= budget / 8 * 5,
        "{memory:#}"
    );
    // About 50 kept and 350 not, unless the requests took far longer than ten seconds.
    let kept = memory["traces"].as_u64().unwrap();
    let not_kept = memory["traces_not_kept"].as_u64().unwrap();
    assert!(kept < 200 && not_kept > 200, "{memory:#}");

    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn the_overview_plots_each_route_and_component_against_its_limits() {
    let misbehave = guest("http-misbehave");
    let args = ["--fuel", "5000000", "--max-memory", "8MiB"];
    let args = [&args[..], &[misbehave.to_str().unwrap()]].concat();
    let mut server = Wasmlens::serve(BIN, &args, &[]).await;
    let view = view_url(&mut server).await;
    for path in ["/ok", "/ok", "/ok", "/loop"] {
        http_get(&server.url(path), &[]).await;
    }

    // Collected within a second or two of the requests.
    let overview = wait_for_json(&format!("{view}/api/overview"), |v| {
        let requests = &v["routes"][0]["requests_per_s"];
        let total: f64 = requests
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .sum();
        total >= 4.0
    })
    .await;
    let route = &overview["routes"][0];
    assert_eq!(route["route"], "/*");
    assert_eq!(route["component"], "http-misbehave");
    let some = |series: &Value| {
        series
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .any(|v| v > 0.0)
    };
    assert!(
        some(&route["error_rate"]),
        "the loop ran out of fuel: {route:#}"
    );
    assert!(some(&route["p99_ms"]), "{route:#}");
    let component = &overview["components"][0];
    assert_eq!(component["component"], "http-misbehave");
    assert_eq!(component["fuel_limit"], 5_000_000);
    assert_eq!(component["memory_limit_bytes"], 8 << 20);
    assert!(some(&component["fuel_per_invocation"]), "{component:#}");
    assert!(some(&component["memory_peak_bytes"]), "{component:#}");
    assert!(some(&component["instantiation_ms"]), "{component:#}");
    let times = overview["times"].as_array().unwrap();
    assert_eq!(times.len(), 300, "five minutes by the second");
    let hour = get_json(&format!("{view}/api/overview?resolution=1m")).await;
    assert_eq!(hour["resolution_s"], 60);
    let (status, _, body) = http_get(&format!("{view}/api/overview?resolution=2s"), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "resolution=\"2s\": expected one of 1s, 10s, 1m\n")
    );

    // The raw streams behind it.
    let fuel = get_json(&format!("{view}/api/metrics?name=wasmtime.fuel.consumed")).await;
    assert_eq!(fuel[0]["shape"], "total", "{fuel:#}");
    assert_eq!(
        fuel[0]["attributes"]["wasmtime.component.id"],
        "http-misbehave"
    );

    // The workload: its component, route, limits, grants and state.
    let workloads = get_json(&format!("{view}/api/workloads")).await;
    let workload = &workloads[0];
    assert_eq!(workload["state"], "running", "{workload:#}");
    let component = &workload["components"][0];
    assert_eq!(component["route"], "/");
    assert_eq!(component["limits"]["fuel"], 5_000_000);
    assert_eq!(component["grants"][0], "outgoing HTTP: none");
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn a_guests_own_spans_and_log_records_land_in_its_trace() {
    let otel = guest("http-otel");
    let mut server = Wasmlens::serve(BIN, &[otel.to_str().unwrap()], &[]).await;
    let view = view_url(&mut server).await;
    http_get(&server.url("/"), &[]).await;

    let list = wait_for_json(&format!("{view}/api/traces?route=/*"), |v| {
        v.as_array().is_some_and(|list| !list.is_empty())
    })
    .await;
    let id = list[0]["trace_id"].as_str().unwrap().to_owned();
    let trace = wait_for_json(&format!("{view}/api/traces/{id}"), |t| {
        t["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "guest-work")
    })
    .await;
    let spans = trace["spans"].as_array().unwrap();
    let guest_span = spans.iter().find(|s| s["name"] == "guest-work").unwrap();
    assert_ne!(
        guest_span["scope"], "wasmlens",
        "the guest's own scope: {guest_span:#}"
    );
    let parent = spans
        .iter()
        .find(|s| s["span_id"] == guest_span["parent_span_id"])
        .unwrap_or_else(|| panic!("its parent is in the trace: {trace:#}"));
    assert_eq!(parent["name"], "ComponentInvocation");
    let logs = trace["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["body"] == "guest says hi" && l["severity_number"] == 13),
        "{logs:#?}"
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
}

/// `wasmlens up` of two HTTP components, exporting over OTLP too: the view keeps the same
/// traces the collector gets, and plots each route with the component that serves it.
#[tokio::test]
async fn with_an_exporter_and_several_components_the_view_shows_what_the_collector_gets() {
    let receiver = OtlpReceiver::start().await;
    let env = receiver.exporter_env(Transport::Grpc);
    let dir = workload_dir(
        "view",
        r#"
[workload]
name = "pair"

[[component]]
id = "hello"
source = "components/http-hello.wasm"
route = "/hello"

[[component]]
id = "bad"
source = "components/http-misbehave.wasm"
route = "/bad"
fuel = 5_000_000
"#,
    );
    let manifest = dir.join("wasmlens.toml");
    let mut server = Wasmlens::up(BIN, &[manifest.to_str().unwrap()], &env).await;
    let view = view_url(&mut server).await;
    for path in ["/hello", "/hello", "/bad/loop"] {
        http_get(&server.url(path), &[]).await;
    }

    let exported = receiver.wait_for_spans("HttpRequest", 3, WAIT).await;
    let failed = exported
        .iter()
        .find(|s| s.status_code == 2)
        .expect("the loop failed");
    let listed = wait_for_json(&format!("{view}/api/traces?errors=true"), |v| {
        v.as_array().is_some_and(|list| !list.is_empty())
    })
    .await;
    assert_eq!(
        listed[0]["trace_id"],
        failed.trace_id.as_str(),
        "the same trace in both"
    );
    assert_eq!(listed[0]["components"][0], "bad");

    let overview = wait_for_json(&format!("{view}/api/overview"), |v| {
        v["routes"]
            .as_array()
            .is_some_and(|routes| routes.len() == 2)
    })
    .await;
    let route = |name: &str| {
        let routes = overview["routes"].as_array().unwrap();
        routes
            .iter()
            .find(|r| r["route"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(route("/hello/*")["component"], "hello", "{overview:#}");
    assert_eq!(route("/bad/*")["component"], "bad", "{overview:#}");
    let workloads = get_json(&format!("{view}/api/workloads")).await;
    let components: Vec<_> = workloads[0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].clone(), c["route"].clone()))
        .collect();
    assert_eq!(components.len(), 2, "{workloads:#}");
    assert_eq!(workloads[0]["name"], "pair");
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_view_is_off_with_ui_listen_none_or_the_sdk_disabled() {
    let hello = guest("http-hello");
    let args = ["--ui-listen", "none", hello.to_str().unwrap()];
    let server = Wasmlens::serve(BIN, &args, &[]).await;
    let (_, stderr) = server.terminate().await;
    assert!(!stderr.contains("telemetry view"), "{stderr}");

    let disabled = [("OTEL_SDK_DISABLED", "true".to_owned())];
    let server = Wasmlens::serve(BIN, &[hello.to_str().unwrap()], &disabled).await;
    let (_, stderr) = server.terminate().await;
    assert!(!stderr.contains("telemetry view"), "{stderr}");
}

#[tokio::test]
async fn an_address_for_the_view_that_cannot_be_bound_refuses_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let hello = guest("http-hello");
    let finished = wasmlens_test_support::run_to_end(
        BIN,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ui-listen",
            &address,
            hello.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_ne!(finished.code, Some(0));
    assert!(
        finished
            .stderr
            .contains(&format!("cannot serve the telemetry view on {address}")),
        "{}",
        finished.stderr
    );
}
