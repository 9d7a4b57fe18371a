//! What a user meets at the command line: addresses as they type them, and what wasmlens
//! says about the telemetry it was asked for.

use wasmlens_test_support::{Finished, Wasmlens, guest, http_get, run_to_end};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");

fn hello() -> String {
    guest("http-hello").to_str().unwrap().to_owned()
}

#[tokio::test]
async fn listen_takes_a_host_name() {
    let server = Wasmlens::serve(BIN, &["--listen", "localhost:0", &hello()], &[]).await;
    assert!(server.addr().ip().is_loopback(), "{}", server.addr());
    let (status, _, body) = http_get(&server.url("/"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    server.terminate().await;

    let args = ["serve", "--listen", "no-such-host.invalid:80", &hello()];
    let Finished { code, stderr, .. } = run_to_end(BIN, &args, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("no-such-host.invalid:80") && stderr.contains("HOST:PORT"),
        "{stderr}"
    );
}

/// The line that says where telemetry goes, of a server started with `env`, and all of
/// stderr.
async fn telemetry_line(env: &[(&str, String)]) -> (String, String) {
    let mut server = Wasmlens::serve(BIN, &[&hello()], env).await;
    let line = server
        .wait_for_stderr("telemetry: ", std::time::Duration::from_secs(10))
        .await;
    let (_, stderr) = server.terminate().await;
    (line, stderr)
}

#[tokio::test]
async fn the_startup_line_names_where_telemetry_really_goes() {
    let (line, stderr) =
        telemetry_line(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector 4318".to_owned())]).await;
    assert!(
        line.contains("traces -> otlp http/protobuf http://localhost:4318/v1/traces")
            && !line.contains("collector 4318"),
        "{line}"
    );
    assert_eq!(
        stderr
            .matches("OTEL_EXPORTER_OTLP_ENDPOINT=\"collector 4318\"")
            .count(),
        1,
        "{stderr}"
    );

    // A TLS endpoint is used as given, over either transport.
    for (protocol, url) in [
        ("grpc", "https://collector.example:4317"),
        ("http/protobuf", "https://collector.example:4317/v1/traces"),
    ] {
        let (line, stderr) = telemetry_line(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4317".to_owned(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        ])
        .await;
        assert!(
            line.contains(&format!("traces -> otlp {protocol} {url}")),
            "{line}"
        );
        assert!(!stderr.contains("localhost"), "{stderr}");
    }
}

#[tokio::test]
async fn a_sampler_ratio_out_of_range_is_reported() {
    let (_, stderr) = telemetry_line(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio".to_owned()),
        ("OTEL_TRACES_SAMPLER_ARG", "2".to_owned()),
    ])
    .await;
    assert_eq!(
        stderr.matches("OTEL_TRACES_SAMPLER_ARG=\"2\"").count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn the_access_log_has_a_line_per_request_when_it_is_turned_on() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let hello = hello();
    for flags in [vec!["--access-log", &hello], vec![&hello[..]]] {
        let on = flags.len() == 2;
        let mut server = Wasmlens::serve(BIN, &flags, &[]).await;
        let url = server.url("/greet?secret=1");
        let (status, _, _) = http_get(&url, &[("traceparent", &traceparent)]).await;
        assert_eq!(status, 200);
        if on {
            let wait = std::time::Duration::from_secs(10);
            let line = server.wait_for_stderr("GET /greet", wait).await;
            assert!(
                line.contains("GET /greet 200 ")
                    && line.contains(&format!("trace {TRACE}"))
                    && !line.contains("secret"),
                "{line}"
            );
            server.terminate().await;
        } else {
            let (_, stderr) = server.terminate().await;
            assert!(!stderr.contains("GET /greet"), "off by default: {stderr}");
        }
    }
}

#[tokio::test]
async fn a_component_that_cannot_start_is_refused_before_serving() {
    let broken = guest("http-start-trap");
    let args = ["serve", "--listen", "127.0.0.1:0", broken.to_str().unwrap()];
    let Finished { code, stderr, .. } = run_to_end(BIN, &args, &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the component could not be instantiated") && !stderr.contains("serving"),
        "{stderr}"
    );
}

/// `wasmlens run command.wasm` with every signal on the console: stdout and stderr.
async fn run_on_console(format: &str) -> (String, String) {
    let command = guest("command");
    let env = [
        ("OTEL_TRACES_EXPORTER", "console".to_owned()),
        ("OTEL_METRICS_EXPORTER", "console".to_owned()),
        ("OTEL_LOGS_EXPORTER", "console".to_owned()),
        ("WASMLENS_CONSOLE_FORMAT", format.to_owned()),
    ];
    let ran = run_to_end(BIN, &["run", command.to_str().unwrap()], &env).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    (ran.stdout, ran.stderr)
}

#[tokio::test]
async fn console_telemetry_is_a_tree_on_stderr_and_leaves_stdout_to_the_guest() {
    let (stdout, stderr) = run_on_console("text").await;
    assert_eq!(stdout, "hello from a wasmlens guest\n", "the guest's alone");
    let lines: Vec<&str> = stderr.lines().collect();
    let invocation = lines
        .iter()
        .position(|l| l.starts_with("  ComponentInvocation (server) command "))
        .unwrap_or_else(|| panic!("the entry span, one level in: {stderr}"));
    assert!(lines[invocation - 1].starts_with("trace "), "{stderr}");
    assert!(
        lines[invocation + 1].starts_with("    ComponentInstantiation command ")
            && lines[invocation + 1].ends_with(" ms"),
        "its child, one level further: {stderr}"
    );
    assert!(
        stderr.contains("log INFO guest: hello from a wasmlens guest [component command] [trace "),
        "{stderr}"
    );
    assert!(stderr.contains("metric component.invocations{"), "{stderr}");
}

#[tokio::test]
async fn console_telemetry_in_json_is_otlp_a_request_a_line() {
    let (stdout, stderr) = run_on_console("json").await;
    assert_eq!(stdout, "hello from a wasmlens guest\n");
    let requests: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let spans: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.get("resourceSpans"))
        .flat_map(|r| r[0]["scopeSpans"][0]["spans"].as_array().unwrap())
        .map(|span| span["name"].as_str().unwrap())
        .collect();
    assert!(spans.contains(&"ComponentInvocation"), "{stderr}");
    assert!(
        requests.iter().any(|r| r.get("resourceLogs").is_some()),
        "{stderr}"
    );
    assert!(
        requests.iter().any(|r| r.get("resourceMetrics").is_some()),
        "{stderr}"
    );
}
