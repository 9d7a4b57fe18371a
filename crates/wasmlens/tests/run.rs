//! `wasmlens run` as a user runs it: the real binary, the guest's stdio and exit code,
//! and its telemetry received over the wire.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use wasmlens_test_support::{OtlpReceiver, guest};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str], env: &[(&str, String)], stdin: &str) -> Ran {
    let mut child = tokio::process::Command::new(BIN)
        .arg("run")
        .args(args)
        .env_clear()
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wasmlens");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("wasmlens run ends")
        .unwrap();
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn command() -> String {
    guest("command").to_str().unwrap().to_owned()
}

#[tokio::test]
async fn stdio_arguments_and_exit_codes_pass_through() {
    let ran = run(&[&command()], &[], "").await;
    assert_eq!(ran.code, Some(0));
    assert_eq!(ran.stdout, "hello from a wasmlens guest\n");
    assert_eq!(ran.stderr, "a line on stderr\n");

    let ran = run(&[&command(), "exit", "42"], &[], "").await;
    assert_eq!(ran.code, Some(42), "codes other than 0 and 1 survive");

    let ran = run(&[&command(), "fail"], &[], "").await;
    assert_eq!(ran.code, Some(1));

    let ran = run(&[&command(), "args", "--flag", "two words"], &[], "").await;
    assert_eq!(
        ran.stdout, "--flag\ntwo words\n",
        "everything after APP.wasm is the guest's"
    );

    let ran = run(&[&command(), "cat"], &[], "line one\nline two\n").await;
    assert_eq!(ran.stdout, "line one\nline two\n");
}

#[tokio::test]
async fn the_guest_sees_only_the_variables_it_is_given() {
    let env = [
        ("FROM_HOST", "host value".to_owned()),
        ("SECRET", "do not leak".to_owned()),
    ];
    let ran = run(
        &[
            "--env",
            "GREETING=hi",
            "--env",
            "FROM_HOST",
            &command(),
            "env",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(ran.code, Some(0));
    let granted: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| !l.starts_with("TRACEPARENT="))
        .collect();
    assert_eq!(granted, ["GREETING=hi", "FROM_HOST=host value"]);
}

/// A granted `TRACEPARENT` or `TRACESTATE` gives way to the host's trace context whole:
/// the guest sees its own invocation's `TRACEPARENT`, and no trace state that would not go
/// with it.
#[tokio::test]
async fn a_granted_trace_context_gives_way_to_the_hosts() {
    let ran = run(
        &[
            "--env",
            "TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "--env",
            "TRACESTATE=granted=1",
            "--env",
            "GREETING=hi",
            &command(),
            "env",
        ],
        &[],
        "",
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let traceparents: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("TRACEPARENT="))
        .collect();
    assert_eq!(traceparents.len(), 1, "{lines:?}");
    assert!(!traceparents[0].contains("0af7651916cd43dd"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("TRACESTATE=")),
        "{lines:?}"
    );
    assert!(lines.contains(&"GREETING=hi"), "{lines:?}");
}

#[tokio::test]
async fn failures_and_limits_end_with_a_one_line_reason() {
    let cases: [(&[&str], &str); 4] = [
        (&["trap"], "the component trapped"),
        (&["--timeout", "300ms", "loop"], "ran past its timeout"),
        (
            &["--max-memory", "1MiB", "grow"],
            "exceeded its memory limit",
        ),
        (&["--fuel", "1_000_000", "loop"], "ran out of fuel"),
    ];
    for (args, reason) in cases {
        let (flags, guest_args) = args.split_at(args.len() - 1);
        let mut all: Vec<&str> = flags.to_vec();
        let path = command();
        all.push(&path);
        all.extend(guest_args);
        let ran = run(&all, &[], "").await;
        assert_eq!(ran.code, Some(134), "{args:?}: {}", ran.stderr);
        let last = ran.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("wasmlens: ") && last.contains(reason),
            "{args:?}: {:?}",
            ran.stderr
        );
    }
}

#[tokio::test]
async fn components_that_cannot_run_are_refused_clearly() {
    let ran = run(&[guest("http-hello").to_str().unwrap()], &[], "").await;
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains("does not export wasi:cli/run"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("wasmlens serve"), "{}", ran.stderr);

    let ran = run(&["no-such-file.wasm"], &[], "").await;
    assert!(
        ran.stderr.contains("cannot read no-such-file.wasm"),
        "{}",
        ran.stderr
    );

    let dir = std::env::temp_dir().join(format!("wasmlens-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let ran = run(&[core.to_str().unwrap()], &[], "").await;
    assert!(
        ran.stderr
            .contains("is a core WebAssembly module, not a component"),
        "{}",
        ran.stderr
    );

    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, [0x9f, 0x92, 0x96, 0x00, 0xff, 0xfe]).unwrap();
    let ran = run(&[garbage.to_str().unwrap()], &[], "").await;
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains("garbage.wasm is not WebAssembly") && !ran.stderr.contains("utf-8"),
        "{}",
        ran.stderr
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_run_is_traced_and_its_output_logged_before_exit() {
    let receiver = OtlpReceiver::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint()),
        ("OTEL_SERVICE_NAME", "batch-job".to_owned()),
    ];
    let ran = run(&[&command(), "exit", "3"], &env, "").await;
    assert_eq!(ran.code, Some(3));
    // Everything is flushed before the process exits: no waiting on export intervals.
    let invocation = receiver
        .spans()
        .into_iter()
        .find(|s| s.name == "ComponentInvocation")
        .expect("flushed");
    let instantiation = receiver.wait_for_span("ComponentInstantiation", WAIT).await;
    assert_eq!(
        invocation.kind, 2,
        "a run's invocation is the root, kind server"
    );
    assert!(invocation.parent_span_id.is_empty());
    assert_eq!(instantiation.parent_span_id, invocation.span_id);
    assert_eq!(invocation.attr("function_name"), Some("wasi:cli/run.run"));
    assert_eq!(
        invocation.resource.get("service.name").map(String::as_str),
        Some("batch-job")
    );
    let logs = receiver.logs();
    let greeting = logs
        .iter()
        .find(|l| l.body == "hello from a wasmlens guest")
        .expect("stdout line logged");
    assert_eq!(greeting.trace_id, invocation.trace_id);
    assert!(
        receiver
            .metrics()
            .iter()
            .any(|m| m.name == "component.invocations" && m.attributes["outcome"] == "error")
    );
}

#[tokio::test]
async fn the_guest_sees_only_the_directories_it_is_given() {
    let root = std::env::temp_dir().join(format!("wasmlens-dir-{}", std::process::id()));
    let granted = root.join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::write(granted.join("hello.txt"), "granted content\n").unwrap();
    std::fs::write(root.join("secret.txt"), "not for the guest\n").unwrap();
    let dir = format!("{}::/data", granted.display());

    let ran = run(&["--dir", &dir, &command(), "read", "hello.txt"], &[], "").await;
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (Some(0), "granted content\n"),
        "{}",
        ran.stderr
    );

    let ran = run(
        &["--dir", &dir, &command(), "read", "../secret.txt"],
        &[],
        "",
    )
    .await;
    assert_eq!(ran.code, Some(1), "no way out of the granted directory");
    assert!(!ran.stdout.contains("not for the guest"));

    let ran = run(&[&command(), "read", "hello.txt"], &[], "").await;
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        ran.stderr, "no preopened directory\n",
        "no directory unless granted"
    );

    // A grant that cannot be given refuses the run before the guest starts.
    let receiver = OtlpReceiver::start().await;
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint())];
    let missing = format!("{}::/data", root.join("missing").display());
    let ran = run(&["--dir", &missing, &command(), "read", "x"], &env, "").await;
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains("--dir") && ran.stderr.contains("missing"),
        "{}",
        ran.stderr
    );
    let spans = receiver.spans();
    assert!(
        !spans.iter().any(|s| s.name == "ComponentInvocation"),
        "no guest ran: {spans:#?}"
    );
    let refused = spans
        .iter()
        .flat_map(|s| &s.events)
        .find(|e| e.name == "workload failed")
        .unwrap_or_else(|| panic!("a workload failed event in {spans:#?}"));
    assert_eq!(refused.attributes["error.type"], "ValidationError");
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn a_run_continues_the_trace_it_was_started_in_and_hands_it_on() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let carriers = [
        ("TRACEPARENT", traceparent.clone()),
        (
            "TRACECONTEXT",
            format!(r#"{{"traceparent":"{traceparent}"}}"#),
        ),
        ("TRACECONTEXT", traceparent.clone()),
    ];
    for (name, value) in carriers {
        let receiver = OtlpReceiver::start().await;
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint()),
            (name, value.clone()),
        ];
        let ran = run(&[&command(), "env"], &env, "").await;
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
        assert_eq!(invocation.trace_id, TRACE, "{name}={value}");
        assert_eq!(invocation.parent_span_id, PARENT, "{name}={value}");
        assert_eq!(
            invocation.kind, 2,
            "the entry into the process is a server span"
        );
        let own = format!("TRACEPARENT=00-{TRACE}-{}-01", invocation.span_id);
        assert!(
            ran.stdout.lines().any(|l| l == own),
            "the guest sees {own}: {}",
            ran.stdout
        );
        assert!(
            !ran.stdout.contains("TRACECONTEXT"),
            "the host's variables stay the host's"
        );
    }
}

#[tokio::test]
async fn propagation_off_means_no_traceparent_in_or_out() {
    let env = [
        ("OTEL_PROPAGATORS", "none".to_owned()),
        (
            "TRACEPARENT",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        ),
    ];
    let ran = run(&[&command(), "env"], &env, "").await;
    assert_eq!((ran.code, ran.stdout.as_str()), (Some(0), ""));
}
