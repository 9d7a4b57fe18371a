//! docs/telemetry.md against what a real OTLP receiver gets: every span and metric it lists
//! arrives with its kind and unit, and nothing arrives (span, metric or attribute) that it
//! does not list. Guests that succeed, trap, call out and are denied run under `serve`, and a
//! command runs under `run`, so that every documented name has a reason to appear.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;
use wasmlens_test_support::{OtlpReceiver, Transport, Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

struct Documented {
    /// span name -> (allowed OTLP kinds, attribute keys)
    spans: BTreeMap<String, (BTreeSet<i32>, BTreeSet<String>)>,
    /// metric name -> (OTLP data kind, unit, attribute keys)
    metrics: BTreeMap<String, (&'static str, String, BTreeSet<String>)>,
}

/// The backticked words of a table cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn read_docs() -> Documented {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/telemetry.md");
    let text = std::fs::read_to_string(path).expect("docs/telemetry.md");
    let mut section = "";
    let mut docs = Documented {
        spans: BTreeMap::new(),
        metrics: BTreeMap::new(),
    };
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading.trim();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let name = ticked(cells[1]).remove(0);
        match section {
            "Spans" => {
                let kinds = cells[2]
                    .split(',')
                    .map(|k| match k.trim() {
                        "internal" => 1,
                        "server" => 2,
                        "client" => 3,
                        other => panic!("unknown span kind {other:?} for {name}"),
                    })
                    .collect();
                docs.spans
                    .insert(name, (kinds, ticked(cells[3]).into_iter().collect()));
            }
            "Metrics" => {
                let kind = match cells[2] {
                    "histogram" => "histogram",
                    "counter" | "up-down counter" => "sum",
                    "gauge" => "gauge",
                    other => panic!("unknown instrument {other:?} for {name}"),
                };
                let unit = ticked(cells[3]).remove(0);
                docs.metrics
                    .insert(name, (kind, unit, ticked(cells[4]).into_iter().collect()));
            }
            _ => {}
        }
    }
    assert!(
        !docs.spans.is_empty() && !docs.metrics.is_empty(),
        "tables found in {path}"
    );
    docs
}

#[tokio::test]
async fn what_arrives_is_what_the_docs_say() {
    let docs = read_docs();
    let receiver = OtlpReceiver::start().await;
    let env = receiver.exporter_env(Transport::Grpc);
    let mut dup_env = env.clone();
    dup_env.push(("OTEL_SEMCONV_STABILITY_OPT_IN", "http/dup".to_owned()));

    let echo = Wasmlens::serve(BIN, &[guest("http-misbehave").to_str().unwrap()], &dup_env).await;
    let target = echo.url("/headers");
    let allow = echo.addr().to_string();
    let caller = Wasmlens::serve_fetching(BIN, &target, &["--allow-outbound", &allow], &env).await;
    let denied = Wasmlens::serve_fetching(BIN, &target, &[], &env).await;

    assert_eq!(
        http_get(&echo.url("/ok"), &[("user-agent", "contract/1")])
            .await
            .0,
        200
    );
    assert_eq!(http_get(&echo.url("/trap"), &[]).await.0, 500);
    assert_eq!(http_get(&caller.url("/"), &[]).await.0, 200);
    assert_eq!(http_get(&denied.url("/"), &[]).await.0, 502);
    let ran = tokio::process::Command::new(BIN)
        .args(["run", guest("command").to_str().unwrap(), "exit", "3"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert_eq!(ran.code(), Some(3));
    for server in [echo, caller, denied] {
        server.terminate().await;
    }

    receiver
        .wait_until("every documented span and metric", WAIT, |r| {
            let spans: BTreeSet<String> = r.spans().into_iter().map(|s| s.name).collect();
            let metrics: BTreeSet<String> = r.metrics().into_iter().map(|m| m.name).collect();
            docs.spans.keys().all(|n| spans.contains(n))
                && docs.metrics.keys().all(|n| metrics.contains(n))
        })
        .await;

    for span in receiver.spans() {
        let Some((kinds, attributes)) = docs.spans.get(&span.name) else {
            panic!(
                "span {:?} arrived but docs/telemetry.md does not list it",
                span.name
            );
        };
        assert!(
            kinds.contains(&span.kind),
            "{} arrived with kind {}",
            span.name,
            span.kind
        );
        for key in span.attributes.keys() {
            assert!(
                attributes.contains(key),
                "{} carries {key:?}, which docs/telemetry.md does not list",
                span.name
            );
        }
    }
    let server_invocation = receiver
        .spans()
        .into_iter()
        .any(|s| s.name == "ComponentInvocation" && s.kind == 2);
    assert!(server_invocation, "run's invocation is a server span");
    for point in receiver.metrics() {
        let Some((kind, unit, attributes)) = docs.metrics.get(&point.name) else {
            panic!(
                "metric {:?} arrived but docs/telemetry.md does not list it",
                point.name
            );
        };
        assert_eq!(
            (point.kind, point.unit.as_str()),
            (*kind, unit.as_str()),
            "{}",
            point.name
        );
        for key in point.attributes.keys() {
            assert!(
                attributes.contains(key),
                "{} carries {key:?}, which docs/telemetry.md does not list",
                point.name
            );
        }
    }
    let guest_line = receiver
        .logs()
        .into_iter()
        .find(|l| l.body == "handling request")
        .expect("a guest line");
    let keys: BTreeSet<&str> = guest_line.attributes.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["component_id", "log.iostream"]));
}
