//! Metrics as an operator reads them: the Prometheus scrape endpoint, histogram buckets and
//! their exponential form, the per-component resource gauges, and instance accounting that
//! comes back to zero however guests end.

use std::time::Duration;
use wasmlens_test_support::{
    Finished, MetricPoint, OtlpReceiver, Transport, Wasmlens, guest, http_get, http_request,
    run_to_end, workload_dir,
};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

/// The scrape URL the startup line announces.
fn scrape_url(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("prometheus http://"))
        .unwrap_or_else(|| panic!("no prometheus endpoint announced:\n{stderr}"));
    let url = line.split("prometheus ").nth(1).unwrap();
    url.split([';', ' ']).next().unwrap().to_owned()
}

#[tokio::test]
async fn prometheus_scrapes_the_same_metrics() {
    let server = Wasmlens::serve(
        BIN,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--fuel",
            "1_000_000",
            guest("http-misbehave").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let url = scrape_url(&server.stderr());
    assert!(url.ends_with("/metrics"), "{url}");
    assert_eq!(http_get(&server.url("/ok"), &[]).await.0, 200);
    assert_eq!(http_get(&server.url("/trap"), &[]).await.0, 500);

    let (status, headers, body) = http_get(&url, &[]).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    for series in [
        "http_server_request_duration_seconds_bucket{",
        "http_requests_total{",
        "component_invocations_total{",
        "wasmtime_instances_created_total{",
        "wasmtime_fuel_consumed_total{",
        "wasmtime_memory_peak_bytes{",
        "components_active",
        "workloads_active",
        "host_memory_used_bytes",
    ] {
        assert!(body.contains(series), "{series} in:\n{body}");
    }
    assert!(
        body.lines()
            .any(|l| l.starts_with("component_invocations_total{")
                && l.contains("outcome=\"error\"")
                && l.ends_with(" 1")),
        "the trap counted as an error:\n{body}"
    );
    assert!(
        body.contains("\nsystem_cpu_logical_cpus{") && !body.contains("system_cpu_logical_count"),
        "{body}"
    );
    promtool_finds_nothing(&body).await;
    let base = url.trim_end_matches("/metrics");
    assert_eq!(http_get(&format!("{base}/other"), &[]).await.0, 404);
    server.terminate().await;
}

/// Prometheus's own lint (Debian's `prometheus` package, which scripts/setup.sh
/// installs) has nothing to say about a scrape.
async fn promtool_finds_nothing(scrape: &str) {
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh installs it)");
    let mut stdin = promtool.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, scrape.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = promtool.wait_with_output().await.unwrap();
    let said = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

#[tokio::test]
async fn prometheus_from_the_environment_and_a_clear_error_when_the_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let env = [
        ("OTEL_METRICS_EXPORTER", "prometheus".to_owned()),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1".to_owned()),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", port.clone()),
    ];
    let hello = guest("http-hello");
    let args = ["serve", "--listen", "127.0.0.1:0", hello.to_str().unwrap()];
    let Finished { code, stderr, .. } = run_to_end(BIN, &args, &env).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot serve Prometheus metrics on 127.0.0.1:{port}"
        )),
        "{stderr}"
    );

    drop(taken);
    let server = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &env).await;
    let url = scrape_url(&server.stderr());
    assert_eq!(url, format!("http://127.0.0.1:{port}/metrics"));
    assert_eq!(http_get(&server.url("/"), &[]).await.0, 200);
    let (status, _, body) = http_get(&url, &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("http_requests_total{"), "{body}");
    server.terminate().await;
}

/// `wasmlens up` of `manifest`, in a folder of its own (`test` names it), exporting to a
/// receiver of its own.
async fn up_traced(
    test: &str,
    transport: Transport,
    manifest: &str,
) -> (OtlpReceiver, Wasmlens, std::path::PathBuf) {
    let receiver = OtlpReceiver::start().await;
    let env = receiver.exporter_env(transport);
    let dir = workload_dir(test, manifest);
    let server = Wasmlens::up(BIN, &[dir.join("wasmlens.toml").to_str().unwrap()], &env).await;
    (receiver, server, dir)
}

/// Stops the workload and removes its folder; returns every metric point received once
/// `metric`, flushed at shutdown, has arrived.
async fn stop_for_metrics(
    server: Wasmlens,
    dir: std::path::PathBuf,
    receiver: &OtlpReceiver,
    metric: &str,
) -> Vec<MetricPoint> {
    server.terminate().await;
    std::fs::remove_dir_all(&dir).unwrap();
    receiver
        .wait_until("the final metrics", WAIT, |r| {
            r.metrics().iter().any(|m| m.name == metric)
        })
        .await;
    receiver.metrics()
}

fn last<'a>(points: &'a [MetricPoint], name: &str, component: &str) -> &'a MetricPoint {
    points
        .iter()
        .rev()
        .find(|p| {
            p.name == name
                && p.attributes
                    .get("wasmtime.component.id")
                    .map(String::as_str)
                    == Some(component)
        })
        .unwrap_or_else(|| panic!("{name} for {component}"))
}

#[tokio::test]
async fn resource_gauges_and_instances_come_back_to_zero() {
    let (receiver, mut server, dir) = up_traced(
        "gauges",
        Transport::HttpProtobuf,
        r#"
[workload]
name = "gauges"

[[component]]
id = "bounded"
source = "components/http-misbehave.wasm"
route = "/b"
fuel = 10_000_000
max_memory = "2MiB"
timeout = "200ms"
"#,
    )
    .await;
    // A client that gives up on a slow request once the guest has it: hyper drops the
    // request's future.
    let mut quitter = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut quitter, b"GET /b/loop HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    server
        .wait_for_stderr("guest warning on stderr", WAIT)
        .await;
    drop(quitter);
    // Its guest loops on until its fuel runs out; the requests below come after, so that
    // the last fuel left is the last request's.
    server.wait_for_stderr("FuelExhausted", WAIT).await;
    for path in ["/b/ok", "/b/trap", "/b/grow", "/b/loop", "/b/ok"] {
        let expected = if path.ends_with("ok") { 200 } else { 500 };
        assert_eq!(http_get(&server.url(path), &[]).await.0, expected, "{path}");
    }
    let points = stop_for_metrics(server, dir, &receiver, "wasmtime.memory.peak").await;
    // One as the workload started, one for each request.
    let created = last(&points, "wasmtime.instances.created", "bounded");
    assert_eq!(created.value, 7.0);
    let active_requests = points
        .iter()
        .rev()
        .find(|p| p.name == "http.server.active_requests")
        .unwrap();
    assert_eq!(active_requests.value, 0.0, "the abandoned request left too");
    let active = last(&points, "wasmtime.instances.active", "bounded");
    assert_eq!(
        active.value, 0.0,
        "a trap, a memory bomb and a timeout leak nothing"
    );
    assert_eq!(last(&points, "wasmtime.memory.usage", "bounded").value, 0.0);
    assert_eq!(
        last(&points, "wasmtime.memory.limit", "bounded").value,
        2.0 * 1024.0 * 1024.0
    );
    let peak = last(&points, "wasmtime.memory.peak", "bounded").value;
    assert!(
        peak > 1024.0 * 1024.0 && peak <= 2.0 * 1024.0 * 1024.0,
        "the memory bomb's peak, within the limit: {peak}"
    );
    let consumed = last(&points, "wasmtime.fuel.consumed", "bounded").value;
    assert!(
        consumed >= 10_000_000.0,
        "the loop spent its whole budget: {consumed}"
    );
    let remaining = last(&points, "wasmtime.fuel.remaining", "bounded").value;
    assert!(remaining > 0.0 && remaining < 10_000_000.0, "{remaining}");

    // Buckets fit the measure: instantiation from 1 µs, requests from 50 µs.
    let bounds = |name: &str| {
        points
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .bounds
            .clone()
    };
    assert_eq!(bounds("component.instantiation.duration")[0], 0.000001);
    assert_eq!(bounds("http.server.request.duration")[0], 0.00005);
}

#[tokio::test]
async fn histograms_turn_exponential_when_asked() {
    let receiver = OtlpReceiver::start().await;
    let mut env = receiver.exporter_env(Transport::Grpc);
    env.push((
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        "base2_exponential_bucket_histogram".to_owned(),
    ));
    let server = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &env).await;
    assert_eq!(http_get(&server.url("/"), &[]).await.0, 200);
    server.terminate().await;
    receiver
        .wait_until("the request's duration", WAIT, |r| {
            r.metrics()
                .iter()
                .any(|m| m.name == "http.server.request.duration")
        })
        .await;
    for point in receiver.metrics() {
        if point.name.ends_with(".duration") {
            assert_eq!(point.kind, "exponential_histogram", "{}", point.name);
        }
    }
}

/// Every answer is counted once in the series of its method, status, route and error,
/// whether that series is among the ones the server binds (up to 16 a route) or not:
/// 9 methods times 2 outcomes make 18.
#[tokio::test]
async fn http_metrics_count_each_answer_in_its_own_series() {
    let (receiver, server, dir) = up_traced(
        "http-series",
        Transport::Grpc,
        r#"
[workload]
name = "http-series"

[[component]]
id = "m"
source = "components/http-misbehave.wasm"
route = "/m"
"#,
    )
    .await;
    let methods = [
        "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "HEAD", "PURGE",
    ];
    for _ in 0..2 {
        for method in methods {
            for (path, expected) in [("/m/ok", 200), ("/m/trap", 500), ("/elsewhere", 404)] {
                let (status, _, _) = http_request(method, &server.url(path), &[]).await;
                assert_eq!(status, expected, "{method} {path}");
            }
        }
    }
    let points = stop_for_metrics(server, dir, &receiver, "http.requests").await;
    // Cumulative: the last point of each series holds its total.
    let series = |name: &str| {
        let mut last = std::collections::BTreeMap::new();
        for point in points.iter().filter(|p| p.name == name) {
            last.insert(point.attributes.clone(), point.value);
        }
        last
    };
    let requests = series("http.requests");
    let durations = series("http.server.request.duration");
    assert_eq!(requests.len(), 27, "{requests:#?}");
    assert_eq!(durations.len(), 27, "{durations:#?}");
    for method in methods {
        let named = if method == "PURGE" { "_OTHER" } else { method };
        for (status, route, error) in [
            ("200", Some("/m/*"), None),
            ("500", Some("/m/*"), Some("ComponentTrap")),
            ("404", None, None),
        ] {
            let mut attrs: std::collections::BTreeMap<String, String> = [
                ("http.request.method", named),
                ("http.response.status_code", status),
            ]
            .into_iter()
            .chain(route.map(|r| ("http.route", r)))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            assert_eq!(requests.get(&attrs), Some(&2.0), "http.requests {attrs:?}");
            attrs.insert("url.scheme".into(), "http".into());
            if let Some(error) = error {
                attrs.insert("error.type".into(), error.into());
            }
            assert_eq!(durations.get(&attrs), Some(&2.0), "duration {attrs:?}");
        }
    }
    let active = series("http.server.active_requests");
    assert_eq!(active.len(), methods.len(), "{active:#?}");
    assert!(active.values().all(|v| *v == 0.0), "{active:#?}");
}

/// The SDK's periodic metric readers running in process `pid`: one thread each (Linux
/// shows its name, "OpenTelemetry.Metrics.PeriodicReader", cut to 15 bytes).
fn metric_readers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter(|task| {
            let comm = task.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|name| name.starts_with("OpenTelemetry.M"))
        })
        .count()
}

fn ok_invocations(receiver: &OtlpReceiver) -> f64 {
    receiver
        .metrics()
        .iter()
        .rev()
        .find(|m| {
            m.name == "component.invocations"
                && m.attributes.get("outcome").map(String::as_str) == Some("ok")
        })
        .map_or(0.0, |m| m.value)
}

/// With the view on (the default), the OTLP exporter shares the view's collection (one
/// reader, so one aggregation of each measurement): it is still sent every
/// `OTEL_METRIC_EXPORT_INTERVAL`, while the server runs, and what was recorded last at
/// shutdown.
#[tokio::test]
async fn metrics_shared_with_the_view_are_exported_at_their_interval_and_at_shutdown() {
    let receiver = OtlpReceiver::start().await;
    let mut env = receiver.exporter_env(Transport::HttpProtobuf);
    env.push(("OTEL_METRIC_EXPORT_INTERVAL", "2000".to_owned()));
    let hello = guest("http-hello");
    let server = Wasmlens::serve(BIN, &[hello.to_str().unwrap()], &env).await;
    assert_eq!(metric_readers(server.pid()), 1, "one reader for both");
    for _ in 0..3 {
        http_get(&server.url("/"), &[]).await;
    }
    // Before any shutdown: the periodic export.
    receiver
        .wait_until("an export every two seconds", WAIT, |r| {
            ok_invocations(r) == 3.0
        })
        .await;
    http_get(&server.url("/"), &[]).await;
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    receiver
        .wait_until("the final collection", WAIT, |r| ok_invocations(r) == 4.0)
        .await;
}

/// Delta temporality cannot share the view's (cumulative) collection: it keeps a reader
/// of its own, and its points still arrive.
#[tokio::test]
async fn delta_metrics_keep_a_reader_of_their_own() {
    let receiver = OtlpReceiver::start().await;
    let mut env = receiver.exporter_env(Transport::HttpProtobuf);
    env.push((
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        "delta".to_owned(),
    ));
    let hello = guest("http-hello");
    let server = Wasmlens::serve(BIN, &[hello.to_str().unwrap()], &env).await;
    assert_eq!(
        metric_readers(server.pid()),
        2,
        "the view's and the exporter's"
    );
    for _ in 0..2 {
        http_get(&server.url("/"), &[]).await;
    }
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    receiver
        .wait_until("the final collection", WAIT, |r| ok_invocations(r) == 2.0)
        .await;
}
