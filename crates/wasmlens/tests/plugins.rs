//! The host plugins as a user meets them: a guest that counts in a key-value store (in
//! memory, in a file across restarts, on a real Redis shared by two hosts, and with Redis
//! gone and back), reads its configuration and logs at every level; each call arriving at
//! an OTLP receiver as the contract says.

use std::time::Duration;
use wasmlens_test_support::{
    OtlpReceiver, RedisServer, SpanRecord, Transport, Wasmlens, guest, http_get, run_to_end,
    workload_dir,
};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

fn plugins_guest() -> String {
    guest("http-plugins").to_str().unwrap().to_owned()
}

/// The `PluginOperation` spans for `operation`.
fn operations<'a>(spans: &'a [SpanRecord], operation: &str) -> Vec<&'a SpanRecord> {
    spans
        .iter()
        .filter(|s| s.name == "PluginOperation" && s.attr("operation") == Some(operation))
        .collect()
}

#[tokio::test]
async fn a_memory_counter_lives_as_long_as_the_host_and_each_call_is_a_span_of_its_invocation() {
    let receiver = OtlpReceiver::start().await;
    let server = Wasmlens::serve(
        BIN,
        &[&plugins_guest()],
        &receiver.exporter_env(Transport::Grpc),
    )
    .await;
    for expected in ["1\n", "2\n", "3\n"] {
        assert_eq!(http_get(&server.url("/count"), &[]).await.2, expected);
    }
    // The batch interface, and a store the component was not given.
    let (status, _, body) = http_get(&server.url("/kv/batch"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "a=1\nb=2\nzz=none\n"));
    let (status, _, body) = http_get(&server.url("/kv/open/elsewhere"), &[]).await;
    assert_eq!((status, body.as_str()), (500, "error: no-such-store\n"));
    let (_, stderr) = server.terminate().await;
    assert!(
        stderr.contains("its default store \"\" is in memory"),
        "the startup says where the data is: {stderr}"
    );

    receiver
        .wait_until("the increments and the refused open", WAIT, |r| {
            let spans = r.spans();
            operations(&spans, "increment").len() == 3
                && operations(&spans, "open")
                    .iter()
                    .any(|s| s.attr("success") == Some("false"))
        })
        .await;
    let spans = receiver.spans();
    let invocations: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.name == "ComponentInvocation")
        .collect();
    for increment in operations(&spans, "increment") {
        assert_eq!(increment.kind, 3, "a client span");
        let parent = invocations
            .iter()
            .find(|i| i.span_id == increment.parent_span_id)
            .expect("a child of its ComponentInvocation");
        assert_eq!(parent.trace_id, increment.trace_id);
        for (key, value) in [
            ("plugin_type", "keyvalue"),
            ("plugin_backend", "memory"),
            ("keyvalue_store", ""),
            ("component_id", "http-plugins"),
            ("success", "true"),
        ] {
            assert_eq!(increment.attr(key), Some(value), "{key}");
        }
        assert_eq!(
            increment.attr("db.system.name"),
            None,
            "memory is no database"
        );
    }
    let refused = operations(&spans, "open")
        .into_iter()
        .find(|s| s.attr("success") == Some("false"))
        .unwrap();
    assert_eq!(refused.status_code, 2);
    let event = &refused.events[0];
    assert_eq!(event.name, "plugin failed");
    assert_eq!(
        event.attributes.get("error.type").map(String::as_str),
        Some("PluginOperationFailure")
    );

    let binds: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == "PluginBind").collect();
    let mut bound: Vec<_> = binds.iter().map(|s| s.attr("interface").unwrap()).collect();
    bound.sort();
    assert_eq!(
        bound,
        [
            "wasi:config@0.2.0-rc.1",
            "wasi:keyvalue@0.2.0-draft",
            "wasi:logging@0.1.0-draft"
        ]
    );
    let start = spans.iter().find(|s| s.name == "WorkloadStart").unwrap();
    for bind in binds {
        assert_eq!(
            bind.parent_span_id, start.span_id,
            "bound as the workload starts"
        );
        assert_eq!(bind.attr("workload_id"), Some("http-plugins"));
    }

    receiver
        .wait_until("plugin.operations", WAIT, |r| {
            r.metrics().iter().any(|m| {
                m.name == "plugin.operations"
                    && m.attributes.get("operation").map(String::as_str) == Some("increment")
                    && m.attributes.get("status").map(String::as_str) == Some("success")
                    && m.value == 3.0
            })
        })
        .await;
}

#[tokio::test]
async fn a_file_store_named_in_a_manifest_survives_a_restart() {
    let dir = workload_dir(
        "file-store",
        r#"
[workload]
name = "counter"

[[component]]
id = "counter"
source = "components/http-plugins.wasm"
route = "/"

[component.keyvalue]
"" = "counts.redb"
"#,
    );
    let manifest = dir.join("wasmlens.toml");
    let manifest = manifest.to_str().unwrap();
    let server = Wasmlens::up(BIN, &[manifest], &[]).await;
    assert_eq!(http_get(&server.url("/count"), &[]).await.2, "1\n");
    assert_eq!(
        http_get(&server.url("/kv/set/greeting=hello"), &[]).await.2,
        "set\n"
    );
    let (_, stderr) = server.terminate().await;
    assert!(stderr.contains("key-value store \"\" is file"), "{stderr}");
    assert!(
        dir.join("counts.redb").is_file(),
        "relative to the manifest"
    );

    let server = Wasmlens::up(BIN, &[manifest], &[]).await;
    assert_eq!(http_get(&server.url("/count"), &[]).await.2, "2\n");
    assert_eq!(
        http_get(&server.url("/kv/get/greeting"), &[]).await.2,
        "hello\n"
    );
    let (_, _, keys) = http_get(&server.url("/kv/keys"), &[]).await;
    assert_eq!(keys, "count\ngreeting\n");
    server.terminate().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn two_hosts_share_a_redis_counter_and_ride_out_redis_stalling_and_going_away() {
    let mut redis = RedisServer::start();
    let receiver = OtlpReceiver::start().await;
    let env = receiver.exporter_env(Transport::Grpc);
    let store = format!("{}/0", redis.url());
    let args = ["--keyvalue", &store, &plugins_guest()];
    let a = Wasmlens::serve(BIN, &args, &env).await;
    let b = Wasmlens::serve(BIN, &args, &env).await;

    // Both hosts at once: every increment is atomic across them.
    let count = |server: &Wasmlens| {
        let url = server.url("/count");
        async move {
            let mut seen = Vec::new();
            for _ in 0..20 {
                let (status, _, body) = http_get(&url, &[]).await;
                assert_eq!(status, 200, "{body}");
                seen.push(body.trim().parse::<u64>().unwrap());
            }
            seen
        }
    };
    let (from_a, from_b) = tokio::join!(count(&a), count(&b));
    let mut all: Vec<u64> = from_a.into_iter().chain(from_b).collect();
    all.sort();
    assert_eq!(
        all,
        (1..=40).collect::<Vec<_>>(),
        "no increment lost or doubled"
    );

    // Redis stops answering: after the plugin's timeout the guest gets the interface's
    // error, and once Redis answers again so does the plugin.
    redis.pause();
    let (status, _, body) = http_get(&a.url("/count"), &[]).await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("error: other: Redis did not answer within"),
        "{body}"
    );
    redis.resume();
    counted_again(&a.url("/count")).await;

    // Redis goes away: the guest gets the interface's error, the host goes on serving.
    redis.kill();
    let (status, _, body) = http_get(&a.url("/count"), &[]).await;
    assert_eq!(status, 500);
    assert!(body.starts_with("error: other: "), "{body}");
    assert_eq!(
        http_get(&a.url("/"), &[]).await.2,
        "ok\n",
        "other requests are unaffected"
    );

    // Redis comes back (empty): the plugin reconnects.
    redis.restart();
    assert_eq!(counted_again(&b.url("/count")).await, "1\n");
    a.terminate().await;
    b.terminate().await;

    receiver
        .wait_until("a failed INCRBY", WAIT, |r| {
            let spans = r.spans();
            operations(&spans, "increment")
                .iter()
                .any(|s| s.attr("success") == Some("false"))
        })
        .await;
    let spans = receiver.spans();
    let increments = operations(&spans, "increment");
    let port = redis.port().to_string();
    for span in &increments {
        for (key, value) in [
            ("plugin_backend", "redis"),
            ("db.system.name", "redis"),
            ("db.operation.name", "INCRBY"),
            ("db.namespace", "0"),
            ("server.address", "127.0.0.1"),
            ("server.port", port.as_str()),
        ] {
            assert_eq!(span.attr(key), Some(value), "{key}");
        }
    }
    let failed = increments
        .iter()
        .find(|s| s.attr("success") == Some("false"))
        .unwrap();
    assert_eq!(failed.status_code, 2);
    assert_eq!(
        failed.events[0]
            .attributes
            .get("error.type")
            .map(String::as_str),
        Some("PluginOperationFailure")
    );
}

/// What `url` answers once it answers 200 again, asked until then (paced: a call may fail
/// at once while the plugin reconnects).
async fn counted_again(url: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, body) = http_get(url, &[]).await;
        if status == 200 {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconnection: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_redis_that_cannot_be_reached_refuses_the_workload() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let receiver = OtlpReceiver::start().await;
    let store = format!("redis://127.0.0.1:{closed}");
    let guest = plugins_guest();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--keyvalue",
        &store,
        &guest,
    ];
    let finished = run_to_end(BIN, &args, &receiver.exporter_env(Transport::Grpc)).await;
    assert_eq!(finished.code, Some(1), "{}", finished.stderr);
    assert!(
        finished.stderr.contains(&format!(
            "cannot reach Redis at redis://127.0.0.1:{closed}/0"
        )),
        "{}",
        finished.stderr
    );
    let bind = receiver.wait_for_span("PluginBind", WAIT).await;
    assert_eq!(bind.status_code, 2);
    assert_eq!(
        bind.events[0]
            .attributes
            .get("error.type")
            .map(String::as_str),
        Some("PluginBindFailure")
    );
    let start = receiver.wait_for_span("WorkloadStart", WAIT).await;
    let failed = start
        .events
        .iter()
        .find(|e| e.name == "workload failed")
        .unwrap();
    assert_eq!(
        failed.attributes.get("error.type").map(String::as_str),
        Some("PluginBindFailure")
    );

    // The same from a manifest, which names the component in its error.
    let dir = workload_dir(
        "unreachable-redis",
        &format!(
            "[workload]\nname = \"w\"\n\n[[component]]\nid = \"counter\"\nsource = \"components/http-plugins.wasm\"\nroute = \"/\"\n\n[component.keyvalue]\n\"\" = \"{store}\"\n"
        ),
    );
    let manifest = dir.join("wasmlens.toml");
    let args = ["up", "--listen", "127.0.0.1:0", manifest.to_str().unwrap()];
    let finished = run_to_end(BIN, &args, &receiver.exporter_env(Transport::Grpc)).await;
    assert_eq!(finished.code, Some(1));
    assert!(
        finished
            .stderr
            .contains("component \"counter\": the keyvalue plugin:"),
        "{}",
        finished.stderr
    );
    receiver
        .wait_until("the manifest's workload failed", WAIT, |r| {
            r.spans().iter().any(|s| {
                s.name == "WorkloadStart"
                    && s.attr("workload_id") == Some("w")
                    && s.events.iter().any(|e| {
                        e.attributes.get("error.type").map(String::as_str)
                            == Some("PluginBindFailure")
                    })
            })
        })
        .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn configuration_given_is_read_a_missing_key_is_none_and_no_value_is_recorded() {
    let receiver = OtlpReceiver::start().await;
    let secret = "s3cr3t-v4lue";
    let greeting = format!("greeting={secret}");
    let args = [
        "--config",
        &greeting,
        "--config",
        "mode=a=b",
        &plugins_guest(),
    ];
    let server = Wasmlens::serve(BIN, &args, &receiver.exporter_env(Transport::Grpc)).await;
    let (_, _, body) = http_get(&server.url("/config/greeting"), &[]).await;
    assert_eq!(body, format!("{secret}\n"));
    let (status, _, body) = http_get(&server.url("/config/absent"), &[]).await;
    assert_eq!((status, body.as_str()), (404, "none\n"));
    assert_eq!(
        http_get(&server.url("/config-all"), &[]).await.2,
        format!("greeting={secret}\nmode=a=b\n")
    );
    server.terminate().await;
    let spans = receiver.wait_for_spans("PluginOperation", 3, WAIT).await;
    for span in &spans {
        assert_eq!(span.attr("plugin_type"), Some("config"));
        assert_eq!(span.attr("success"), Some("true"));
    }
    receiver.wait_for_span("WorkloadStop", WAIT).await;
    let everything = format!(
        "{:?}{:?}{:?}",
        receiver.spans(),
        receiver.logs(),
        receiver.metrics()
    );
    assert!(
        !everything.contains(secret),
        "a configuration value was recorded"
    );
}

#[tokio::test]
async fn every_logging_level_becomes_a_record_on_its_invocations_trace() {
    let receiver = OtlpReceiver::start().await;
    let server = Wasmlens::serve(
        BIN,
        &[&plugins_guest()],
        &receiver.exporter_env(Transport::HttpProtobuf),
    )
    .await;
    assert_eq!(http_get(&server.url("/log"), &[]).await.2, "logged\n");
    server.terminate().await;
    let levels = [
        ("trace", 1, "TRACE"),
        ("debug", 5, "DEBUG"),
        ("info", 9, "INFO"),
        ("warn", 13, "WARN"),
        ("error", 17, "ERROR"),
        ("critical", 21, "FATAL"),
    ];
    receiver
        .wait_until("six wasi:logging records", WAIT, |r| {
            r.logs()
                .iter()
                .filter(|l| l.body.ends_with(" message"))
                .count()
                == 6
        })
        .await;
    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    let logs = receiver.logs();
    for (level, number, text) in levels {
        let body = format!("{level} message");
        let record = logs.iter().find(|l| l.body == body).unwrap();
        assert_eq!(
            (record.severity_number, record.severity_text.as_str()),
            (number, text),
            "{level}"
        );
        assert_eq!(record.trace_id, invocation.trace_id, "{level}");
        assert_eq!(record.span_id, invocation.span_id, "{level}");
        assert_eq!(record.attributes["log_context"], "levels");
        assert_eq!(record.attributes["component_id"], "http-plugins");
    }
}

#[tokio::test]
async fn a_plugin_configured_for_a_component_that_does_not_import_it_is_not_bound() {
    let receiver = OtlpReceiver::start().await;
    let hello = guest("http-hello");
    let args = ["--keyvalue", "memory", hello.to_str().unwrap()];
    let server = Wasmlens::serve(BIN, &args, &receiver.exporter_env(Transport::Grpc)).await;
    assert_eq!(http_get(&server.url("/"), &[]).await.2, "hello");
    let (_, stderr) = server.terminate().await;
    assert!(
        stderr.contains(
            "does not import wasi:keyvalue@0.2.0-draft: its keyvalue configuration is not used"
        ),
        "{stderr}"
    );
    // Everything is flushed by the time the process has exited.
    receiver.wait_for_span("WorkloadStop", WAIT).await;
    let binds = receiver
        .spans()
        .into_iter()
        .filter(|s| s.name == "PluginBind");
    assert_eq!(
        binds.count(),
        0,
        "nothing is bound to a component that imports nothing"
    );
}

#[tokio::test]
async fn a_plugin_given_twice_the_same_name_is_refused() {
    let guest = plugins_guest();
    let args = [
        "serve",
        "--keyvalue",
        "memory",
        "--keyvalue",
        "=memory",
        &guest,
    ];
    let finished = run_to_end(BIN, &args, &[]).await;
    assert_eq!(finished.code, Some(1));
    assert!(
        finished
            .stderr
            .contains("--keyvalue names the store \"\" twice"),
        "{}",
        finished.stderr
    );
}

#[tokio::test]
async fn a_file_store_in_a_missing_folder_is_refused_before_anything_runs() {
    let guest = plugins_guest();
    let args = [
        "serve",
        "--keyvalue",
        "/nonexistent-wasmlens/kv.redb",
        &guest,
    ];
    let finished = run_to_end(BIN, &args, &[]).await;
    assert_eq!(finished.code, Some(1));
    assert!(
        finished
            .stderr
            .contains("key-value store \"\" (file /nonexistent-wasmlens/kv.redb): /nonexistent-wasmlens: no such directory"),
        "{}",
        finished.stderr
    );
}
