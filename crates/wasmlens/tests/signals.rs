//! Ctrl-C and SIGTERM, as a user sends them: a run that is stopped still reports what it
//! did, and a second signal quits at once.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use wasmlens_test_support::{OtlpReceiver, Transport, Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// `wasmlens run command.wasm cat`, stopped by `sent` while the guest waits for stdin:
/// its exit code, and the span of its invocation.
async fn interrupted_run(
    sent: rustix::process::Signal,
) -> (Option<i32>, wasmlens_test_support::SpanRecord) {
    let receiver = OtlpReceiver::start().await;
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", guest("command").to_str().unwrap(), "cat"])
        .env_clear()
        .envs(receiver.exporter_env(Transport::HttpProtobuf))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The guest echoes a line once it runs; then it waits for more.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ready\n").await.unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let echoed = tokio::time::timeout(WAIT, stdout.next_line()).await;
    assert_eq!(echoed.unwrap().unwrap().as_deref(), Some("ready"));

    signal(child.id().unwrap(), sent);
    let status = tokio::time::timeout(WAIT, child.wait()).await.unwrap();
    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    receiver.wait_for_span("WorkloadStop", WAIT).await;
    drop(stdin);
    (status.unwrap().code(), invocation)
}

#[tokio::test]
async fn a_run_stopped_by_ctrl_c_or_sigterm_flushes_its_span_and_exits_as_a_shell_expects() {
    use rustix::process::Signal;
    for (sent, code, name) in [(Signal::INT, 130, "SIGINT"), (Signal::TERM, 143, "SIGTERM")] {
        let (exit, invocation) = interrupted_run(sent).await;
        assert_eq!(exit, Some(code), "{name}");
        assert_eq!(invocation.status_code, 2, "{name}: status ERROR");
        assert!(
            invocation.status_message.contains(name),
            "{name}: {invocation:#?}"
        );
        assert!(
            !invocation.attributes.contains_key("error.type"),
            "stopped, not failed: {invocation:#?}"
        );
    }
}

#[tokio::test]
async fn a_second_signal_quits_at_once() {
    let misbehave = guest("http-misbehave");
    let flags = ["--shutdown-timeout", "5m", misbehave.to_str().unwrap()];
    let mut server = Wasmlens::serve(BIN, &flags, &[]).await;
    // A request that never ends keeps the first signal's drain waiting.
    let url = server.url("/loop");
    let stuck = tokio::spawn(async move { http_get(&url, &[]).await });
    server
        .wait_for_stderr("guest warning on stderr", WAIT)
        .await;
    let pid = server.pid();
    signal(pid, rustix::process::Signal::INT);
    server.wait_for_stderr("waiting up to", WAIT).await;
    signal(pid, rustix::process::Signal::INT);
    let status = tokio::time::timeout(WAIT, server.wait()).await.unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        server.stderr().contains("received again"),
        "{}",
        server.stderr()
    );
    stuck.abort();
}
