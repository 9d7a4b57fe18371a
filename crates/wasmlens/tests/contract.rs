//! docs/telemetry.md against what a real OTLP receiver gets: every span, event and metric it
//! lists arrives with its kind and unit, and nothing arrives (span, event, metric or
//! attribute) that it does not list. Guests that succeed, trap, call out and are denied run
//! under `serve`; a workload under `up` has components that loop into their timeout, run out
//! of fuel, grow past their memory limit, cannot be instantiated, come near their limits, and
//! a command; guests use the key-value, configuration, logging and wasi:otel plugins, and
//! one's Redis cannot be reached; commands run under `run`; and a bad manifest is refused, so that
//! every documented name has a reason to appear.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;
use wasmlens_test_support::{OtlpReceiver, Transport, Wasmlens, guest, http_get, workload_dir};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

struct Documented {
    /// span name -> (allowed OTLP kinds, attribute keys)
    spans: BTreeMap<String, (BTreeSet<i32>, BTreeSet<String>)>,
    /// metric name -> (OTLP data kind, unit, attribute keys)
    metrics: BTreeMap<String, (&'static str, String, BTreeSet<String>)>,
    /// event name -> (log severity text, attribute keys)
    events: BTreeMap<String, (String, BTreeSet<String>)>,
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
        events: BTreeMap::new(),
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
            "Events" => {
                docs.events.insert(
                    name,
                    (
                        cells[2].to_ascii_uppercase(),
                        ticked(cells[3]).into_iter().collect(),
                    ),
                );
            }
            _ => {}
        }
    }
    assert!(
        !docs.spans.is_empty() && !docs.metrics.is_empty() && !docs.events.is_empty(),
        "tables found in {path}"
    );
    docs
}

/// A workload whose components fail in every way a guest can, or come near their limits.
/// `tight`'s budgets sit just above what an `/ok` request of http-misbehave takes (480 fuel,
/// one 64 KiB page), so that it uses more than 80 % of each.
const MANIFEST: &str = r#"
[workload]
id = "contract-1"
name = "contract"

[[component]]
id = "limits"
source = "components/http-misbehave.wasm"
route = "/limits"
fuel = 5_000_000
max_memory = "1MiB"

[[component]]
id = "slow"
source = "components/http-misbehave.wasm"
route = "/slow"
timeout = "100ms"

[[component]]
id = "tight"
source = "components/http-misbehave.wasm"
route = "/tight"
fuel = 560
max_memory = "72KiB"

[[component]]
id = "job"
source = "components/command.wasm"
args = ["exit", "0"]
"#;

/// Whether this machine has a disk procfs reports (some containers have none), so that
/// the `system.disk.*` metrics can be expected.
fn has_disk() -> bool {
    std::fs::read_to_string("/proc/diskstats").is_ok_and(|text| {
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .any(|name| !["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)))
    })
}

/// Every attribute key that arrived on `name` is one docs/telemetry.md lists for it.
fn assert_listed(name: &str, arrived: &BTreeMap<String, String>, listed: &BTreeSet<String>) {
    for key in arrived.keys() {
        assert!(
            listed.contains(key),
            "{name} carries {key:?}, which docs/telemetry.md does not list"
        );
    }
}

async fn run(args: &[&str], env: &[(&str, String)]) -> Option<i32> {
    tokio::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap()
        .code()
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
    let dir = workload_dir("contract", MANIFEST);
    let manifest = dir.join("wasmlens.toml");
    let workload = Wasmlens::up(BIN, &[manifest.to_str().unwrap()], &env).await;
    let plugins = guest("http-plugins");
    let plugins = plugins.to_str().unwrap();
    let plugged = Wasmlens::serve(BIN, &["--config", "k=v", plugins], &env).await;
    let otel = guest("http-otel");
    let traced = Wasmlens::serve(BIN, &[otel.to_str().unwrap()], &env).await;

    assert_eq!(
        http_get(&echo.url("/ok"), &[("user-agent", "contract/1")])
            .await
            .0,
        200
    );
    assert_eq!(http_get(&echo.url("/trap"), &[]).await.0, 500);
    assert_eq!(http_get(&caller.url("/"), &[]).await.0, 200);
    assert_eq!(http_get(&denied.url("/"), &[]).await.0, 502);
    for path in ["/limits/loop", "/limits/grow", "/slow/loop"] {
        assert_eq!(http_get(&workload.url(path), &[]).await.0, 500, "{path}");
    }
    assert_eq!(http_get(&workload.url("/tight/ok"), &[]).await.0, 200);
    assert_eq!(http_get(&workload.url("/nowhere"), &[]).await.0, 404);
    for (path, status) in [
        ("/count", 200),
        ("/kv/open/x", 500),
        ("/config/k", 200),
        ("/log", 200),
    ] {
        assert_eq!(http_get(&plugged.url(path), &[]).await.0, status, "{path}");
    }
    assert_eq!(http_get(&traced.url("/"), &[]).await.0, 200);
    // A store that cannot be reached refuses the workload (nothing listens on port 1).
    let unreachable = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--keyvalue",
        "redis://127.0.0.1:1",
        plugins,
    ];
    assert_eq!(run(&unreachable, &env).await, Some(1));
    let command = guest("command");
    let command = command.to_str().unwrap();
    assert_eq!(run(&["run", command, "exit", "3"], &env).await, Some(3));
    assert_eq!(
        run(&["run", "--fuel", "100", command], &env).await,
        Some(134)
    );
    // A component that cannot be instantiated is refused as its workload starts.
    let broken = guest("http-start-trap");
    let broken = ["serve", "--listen", "127.0.0.1:0", broken.to_str().unwrap()];
    assert_eq!(run(&broken, &env).await, Some(1));
    std::fs::write(dir.join("bad.toml"), "[workload]\nname = 1\n").unwrap();
    let bad = dir.join("bad.toml");
    assert_eq!(run(&["up", bad.to_str().unwrap()], &env).await, Some(1));
    for server in [echo, caller, denied, workload, plugged, traced] {
        server.terminate().await;
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let disk = has_disk();
    let expected_metrics: Vec<&String> = docs
        .metrics
        .keys()
        .filter(|name| disk || !name.starts_with("system.disk."))
        .collect();
    receiver
        .wait_until("every documented span, event and metric", WAIT, |r| {
            let spans = r.spans();
            let names: BTreeSet<&str> = spans.iter().map(|s| s.name.as_str()).collect();
            let events: BTreeSet<&str> = spans
                .iter()
                .flat_map(|s| s.events.iter().map(|e| e.name.as_str()))
                .collect();
            let metrics: BTreeSet<String> = r.metrics().into_iter().map(|m| m.name).collect();
            let missing: Vec<&str> = (docs.spans.keys().filter(|n| !names.contains(n.as_str())))
                .chain(docs.events.keys().filter(|n| !events.contains(n.as_str())))
                .chain(
                    expected_metrics
                        .iter()
                        .copied()
                        .filter(|n| !metrics.contains(*n)),
                )
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                eprintln!("still missing: {missing:?}");
            }
            missing.is_empty()
        })
        .await;

    let spans = receiver.spans();
    // A guest's own telemetry (wasi:otel) is in its own scopes, with its own names.
    let host_scope = |scope: &str| scope == "wasmlens";
    for span in spans.iter().filter(|s| host_scope(&s.scope.0)) {
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
        assert_listed(&span.name, &span.attributes, attributes);
        for event in &span.events {
            let Some((_, attributes)) = docs.events.get(&event.name) else {
                panic!(
                    "event {:?} arrived on {} but docs/telemetry.md does not list it",
                    event.name, span.name
                );
            };
            let keys: BTreeSet<String> = event.attributes.keys().cloned().collect();
            assert_eq!(
                &keys, attributes,
                "the attributes of event {:?}",
                event.name
            );
        }
    }
    let server_invocation = spans
        .iter()
        .any(|s| s.name == "ComponentInvocation" && s.kind == 2);
    assert!(server_invocation, "run's invocation is a server span");

    // Every failure kind is an error event, and its span's status is ERROR.
    let failures: BTreeSet<&str> = spans
        .iter()
        .flat_map(|s| s.events.iter().map(move |e| (s, e)))
        .filter(|(_, e)| e.name.ends_with("failed"))
        .map(|(s, e)| {
            assert_eq!(
                s.status_code, 2,
                "{} with {:?} has status ERROR",
                s.name, e.name
            );
            e.attributes["error.type"].as_str()
        })
        .collect();
    for kind in [
        "ComponentTrap",
        "FuelExhausted",
        "Timeout",
        "MemoryLimitExceeded",
        "InstantiationFailure",
        "ValidationError",
        "PluginBindFailure",
        "PluginOperationFailure",
    ] {
        assert!(
            failures.contains(kind),
            "an error event with error.type {kind}: {failures:?}"
        );
    }
    let refused: Vec<&str> = spans
        .iter()
        .filter(|s| s.name == "WorkloadStateChange")
        .filter_map(|s| s.attr("new_state"))
        .collect();
    for state in ["starting", "running", "stopping", "stopped", "failed"] {
        assert!(
            refused.contains(&state),
            "a transition to {state}: {refused:?}"
        );
    }

    for point in receiver
        .metrics()
        .into_iter()
        .filter(|p| host_scope(&p.scope))
    {
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
        assert_listed(&point.name, &point.attributes, attributes);
    }

    let logs = receiver.logs();
    let guest_line = logs
        .iter()
        .find(|l| l.body == "handling request")
        .expect("a guest line");
    let keys: BTreeSet<&str> = guest_line.attributes.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["component_id", "log.iostream"]));
    let logged = logs
        .iter()
        .find(|l| l.body == "critical message")
        .expect("a wasi:logging record");
    let keys: BTreeSet<&str> = logged.attributes.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["component_id", "log_context"]));
    assert_eq!(logged.severity_text, "FATAL");
    // Every event is a log record too, with its name, level and attributes.
    for (name, (level, attributes)) in &docs.events {
        let record = logs
            .iter()
            .find(|l| &l.event_name == name)
            .unwrap_or_else(|| panic!("a log record for event {name:?}"));
        assert_eq!(&record.severity_text, level, "{name}");
        let keys: BTreeSet<String> = record.attributes.keys().cloned().collect();
        assert_eq!(&keys, attributes, "the log record of event {name:?}");
    }
}
