//! `wasmlens up` as a user runs it: a manifest in a folder of its own, several
//! components routed by path, each with its own grants and limits.

use std::time::Duration;
use wasmlens_test_support::{
    OtlpReceiver, Transport, Wasmlens, guest, http_get, run_to_end, workload_dir,
};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn each_path_goes_to_its_component_with_its_own_grants_and_limits() {
    let dir = workload_dir(
        "routes",
        r#"
[workload]
name = "shop"

[[component]]
id = "greeter"
source = "components/http-hello.wasm"
route = "/hello"

[[component]]
id = "site"
source = "components/http-misbehave.wasm"
route = "/"
timeout = "300ms"
env = { GREETING = "hi" }
"#,
    );
    let receiver = OtlpReceiver::start().await;
    let manifest = dir.join("wasmlens.toml");
    let server = Wasmlens::up(
        BIN,
        &[manifest.to_str().unwrap()],
        &receiver.exporter_env(Transport::Grpc),
    )
    .await;

    assert_eq!(http_get(&server.url("/hello"), &[]).await.2, "hello");
    assert_eq!(http_get(&server.url("/hello/deeper"), &[]).await.2, "hello");
    assert_eq!(
        http_get(&server.url("/hellothere"), &[]).await.2,
        "ok\n",
        "a prefix is whole segments"
    );
    let (_, _, env) = http_get(&server.url("/env"), &[]).await;
    assert!(env.lines().any(|l| l == "GREETING=hi"), "{env}");
    assert_eq!(
        http_get(&server.url("/loop"), &[]).await.0,
        500,
        "site's own timeout"
    );

    let spans = receiver.wait_for_spans("HttpRequest", 5, WAIT).await;
    let routes: Vec<_> = spans.iter().filter_map(|s| s.attr("http.route")).collect();
    assert_eq!(
        routes.iter().filter(|r| **r == "/hello/*").count(),
        2,
        "{routes:?}"
    );
    assert_eq!(
        routes.iter().filter(|r| **r == "/*").count(),
        3,
        "{routes:?}"
    );
    let invocations = receiver
        .wait_for_spans("ComponentInvocation", 5, WAIT)
        .await;
    let ids: Vec<_> = invocations
        .iter()
        .filter_map(|s| s.attr("component_id"))
        .collect();
    assert_eq!(
        ids.iter().filter(|id| **id == "greeter").count(),
        2,
        "{ids:?}"
    );
    server.terminate().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_path_no_component_serves_gets_404() {
    let dir = workload_dir(
        "404",
        "[workload]\nname = \"w\"\n[[component]]\nid = \"a\"\nsource = \"components/http-hello.wasm\"\nroute = \"/a\"\n",
    );
    let manifest = dir.join("wasmlens.toml");
    let server = Wasmlens::up(BIN, &[manifest.to_str().unwrap()], &[]).await;
    assert_eq!(http_get(&server.url("/a"), &[]).await.0, 200);
    let (status, _, body) = http_get(&server.url("/b"), &[]).await;
    assert_eq!(status, 404);
    assert_eq!(body, "404 Not Found: no route serves this path\n");
    server.terminate().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn propagate_to_in_the_manifest_decides_who_gets_the_context() {
    let echo = Wasmlens::serve(BIN, &[guest("http-misbehave").to_str().unwrap()], &[]).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (propagate_to, expect_context) in [("", true), ("propagate_to = [\"none\"]", false)] {
        let manifest = format!(
            "[workload]\nname = \"w\"\n[[component]]\nid = \"fetch\"\nsource = \"components/http-fetch.wasm\"\n\
             route = \"/\"\nenv = {{ FETCH_URL = \"{}\" }}\nallowed_outbound_hosts = [\"{}\"]\n{propagate_to}\n",
            echo.url("/headers"),
            echo.addr(),
        );
        let dir = workload_dir(if expect_context { "propagate" } else { "none" }, &manifest);
        let path = dir.join("wasmlens.toml");
        let server = Wasmlens::up(BIN, &[path.to_str().unwrap()], &[]).await;
        let (status, _, echoed) = http_get(&server.url("/"), &[("traceparent", traceparent)]).await;
        assert_eq!(status, 200, "{echoed}");
        assert_eq!(
            echoed.contains("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            expect_context,
            "{echoed}"
        );
        server.terminate().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Runs `wasmlens up MANIFEST`, which is expected to refuse it: its exit code and stderr.
async fn refused(manifest: &std::path::Path) -> (Option<i32>, String) {
    let ran = run_to_end(BIN, &["up", manifest.to_str().unwrap()], &[]).await;
    (ran.code, ran.stderr)
}

#[tokio::test]
async fn a_bad_manifest_is_refused_with_file_line_and_column() {
    let dir = workload_dir(
        "bad",
        "[workload]\nname = \"w\"\n[[component]]\nid = \"a\"\nsource = \"components/http-hello.wasm\"\nrout = \"/\"\n",
    );
    let manifest = dir.join("wasmlens.toml");
    let (code, stderr) = refused(&manifest).await;
    assert_eq!(code, Some(1));
    let expected = format!(
        "{}:6:1: unknown field `rout`, expected one of",
        manifest.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    std::fs::write(&manifest, "[workload]\nname = \"w\"\n[[component]]\nid = \"a\"\nsource = \"nope.wasm\"\nroute = \"/\"\n")
        .unwrap();
    let (code, stderr) = refused(&manifest).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("component \"a\": cannot read") && stderr.contains("nope.wasm"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_component_on_the_wrong_trigger_is_told_how_to_fix_the_manifest() {
    let command_with_route = "[workload]\nname = \"w\"\n[[component]]\nid = \"c\"\nsource = \"components/command.wasm\"\nroute = \"/\"\n";
    let dir = workload_dir("wrong-trigger", command_with_route);
    let manifest = dir.join("wasmlens.toml");
    let (code, stderr) = refused(&manifest).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("component \"c\": ")
            && stderr.contains("does not export wasi:http/incoming-handler")
            && stderr.contains("drop its `route`")
            && !stderr.contains("wasmlens run"),
        "{stderr}"
    );

    let proxy_without_route = "[workload]\nname = \"w\"\n[[component]]\nid = \"h\"\nsource = \"components/http-hello.wasm\"\n";
    std::fs::write(&manifest, proxy_without_route).unwrap();
    let (code, stderr) = refused(&manifest).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("does not export wasi:cli/run")
            && stderr.contains("give it a `route`")
            && !stderr.contains("wasmlens serve"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs `wasmlens up MANIFEST` to its end, exporting to `receiver`: exit code and stderr.
async fn up_to_the_end(
    manifest: &std::path::Path,
    receiver: &OtlpReceiver,
) -> (Option<i32>, String) {
    let env = receiver.exporter_env(Transport::Grpc);
    let ran = run_to_end(BIN, &["up", manifest.to_str().unwrap()], &env).await;
    (ran.code, ran.stderr)
}

/// A workload that started, ran and stopped.
const CLEAN_LIFECYCLE: [&str; 4] = [
    "pending->starting",
    "starting->running",
    "running->stopping",
    "stopping->stopped",
];

/// The states a workload went through, in order.
fn transitions(receiver: &OtlpReceiver) -> Vec<String> {
    receiver
        .spans()
        .iter()
        .filter(|s| s.name == "WorkloadStateChange")
        .map(|s| {
            format!(
                "{}->{}",
                s.attr("previous_state").unwrap(),
                s.attr("new_state").unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_workload_of_commands_runs_them_once_and_stops() {
    let manifest = "[workload]\nname = \"jobs\"\n\
        [[component]]\nid = \"ok\"\nsource = \"components/command.wasm\"\n\
        [[component]]\nid = \"three\"\nsource = \"components/command.wasm\"\nargs = [\"exit\", \"3\"]\n";
    let dir = workload_dir("jobs", manifest);
    let receiver = OtlpReceiver::start().await;
    let (code, stderr) = up_to_the_end(&dir.join("wasmlens.toml"), &receiver).await;
    assert_eq!(code, Some(3), "the first non-zero exit code: {stderr}");
    for said in [
        "command \"ok\" exited with code 0",
        "command \"three\" exited with code 3",
    ] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    receiver.wait_for_spans("WorkloadStop", 1, WAIT).await;
    let invocations = receiver
        .wait_for_spans("ComponentInvocation", 2, WAIT)
        .await;
    let mut ids: Vec<_> = invocations
        .iter()
        .filter_map(|s| s.attr("component_id"))
        .collect();
    ids.sort();
    assert_eq!(ids, ["ok", "three"]);
    assert_eq!(transitions(&receiver), CLEAN_LIFECYCLE);
    let stop = receiver.wait_for_span("WorkloadStop", WAIT).await;
    assert_eq!(stop.attr("shutdown_reason"), Some("completed"));
    let start = receiver.wait_for_span("WorkloadStart", WAIT).await;
    assert_eq!(start.attr("trigger_type"), Some("cli"));
    assert_eq!(start.attr("workload_id"), Some("jobs"));

    // A command that traps fails its workload.
    let manifest = "[workload]\nname = \"jobs\"\n\
        [[component]]\nid = \"bad\"\nsource = \"components/command.wasm\"\nargs = [\"trap\"]\n";
    std::fs::write(dir.join("wasmlens.toml"), manifest).unwrap();
    let receiver = OtlpReceiver::start().await;
    let (code, stderr) = up_to_the_end(&dir.join("wasmlens.toml"), &receiver).await;
    assert_eq!(code, Some(134), "{stderr}");
    assert!(stderr.contains("the component trapped"), "{stderr}");
    let stop = receiver.wait_for_span("WorkloadStop", WAIT).await;
    assert_eq!(
        (stop.attr("shutdown_reason"), stop.status_code),
        (Some("failed"), 2)
    );
    assert_eq!(
        transitions(&receiver),
        [&CLEAN_LIFECYCLE[..3], &["stopping->failed"]].concat()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sigterm_stops_a_serving_workload_with_its_reason() {
    let receiver = OtlpReceiver::start().await;
    let server = Wasmlens::serve(
        BIN,
        &[guest("http-hello").to_str().unwrap()],
        &receiver.exporter_env(Transport::Grpc),
    )
    .await;
    server.terminate().await;
    let stop = receiver.wait_for_span("WorkloadStop", WAIT).await;
    assert_eq!(stop.attr("shutdown_reason"), Some("SIGTERM"));
    assert!(stop.attr("shutdown_duration_ms").is_some());
    let start = receiver.wait_for_span("WorkloadStart", WAIT).await;
    assert_eq!(
        (start.attr("workload_id"), start.attr("trigger_type")),
        (Some("http-hello"), Some("http"))
    );
    assert_eq!(transitions(&receiver), CLEAN_LIFECYCLE);
    receiver
        .wait_until("workloads.active back to 0", WAIT, |r| {
            r.metrics()
                .iter()
                .rev()
                .find(|m| m.name == "workloads.active")
                .is_some_and(|m| m.value == 0.0)
        })
        .await;
}

#[tokio::test]
async fn the_first_non_zero_exit_code_wins_and_a_later_failure_still_fails_the_workload() {
    let manifest = "[workload]\nname = \"jobs\"\n\
        [[component]]\nid = \"three\"\nsource = \"components/command.wasm\"\nargs = [\"exit\", \"3\"]\n\
        [[component]]\nid = \"bad\"\nsource = \"components/command.wasm\"\nargs = [\"trap\"]\n";
    let dir = workload_dir("first-code", manifest);
    let receiver = OtlpReceiver::start().await;
    let (code, stderr) = up_to_the_end(&dir.join("wasmlens.toml"), &receiver).await;
    assert_eq!(code, Some(3), "{stderr}");
    let stop = receiver.wait_for_span("WorkloadStop", WAIT).await;
    assert_eq!(
        (stop.attr("shutdown_reason"), stop.status_code),
        (Some("failed"), 2)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
