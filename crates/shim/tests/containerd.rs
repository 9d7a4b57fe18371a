//! containerd-shim-wasmlens-v1 under a real containerd (Debian's 1.6.20, a private one
//! under a temp dir), driven with `ctr` as a user would: images imported from tars built
//! here, command and HTTP components run, killed and deleted, limits from the container,
//! and the spans over the wire with their parents.

use std::process::Output;
use std::time::Duration;
use wasmlens_test_support::{
    Containerd, ImageLayout, OtlpReceiver, SpanRecord, Transport, cannot_run_containerd, guest,
    http_get, oci_image_tar,
};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasmlens-v1");
const COMMAND_IMAGE: &str = "docker.io/wasmlens/command:test";
const HTTP_IMAGE: &str = "docker.io/wasmlens/misbehave:test";
const WAIT: Duration = Duration::from_secs(30);

/// A receiver, and a private containerd whose shims export to it, with the test images
/// imported; `None` (after saying why) where this machine cannot run containerd at all.
async fn start(name: &str) -> Option<(OtlpReceiver, Containerd)> {
    let receiver = OtlpReceiver::start().await;
    let env = receiver.exporter_env(Transport::Grpc);
    Some((receiver, start_with(name, env)?))
}

/// A private containerd with `env`, with the test images imported.
fn start_with(name: &str, mut env: Vec<(&'static str, String)>) -> Option<Containerd> {
    if let Some(why) = cannot_run_containerd() {
        eprintln!("skipping: {why}");
        return None;
    }
    env.push(("OTEL_METRIC_EXPORT_INTERVAL", "500".to_owned()));
    let containerd = Containerd::start(name, &env);
    for (image, component) in [(COMMAND_IMAGE, "command"), (HTTP_IMAGE, "http-misbehave")] {
        let wasm = std::fs::read(guest(component)).unwrap();
        containerd.import(&oci_image_tar(image, &wasm, ImageLayout::Plain));
    }
    Some(containerd)
}

/// Waits until the task `id` has stopped, then deletes it and its container.
async fn wait_stopped_and_delete(containerd: &Containerd, id: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let stopped = |listing: String| {
        listing
            .lines()
            .any(|line| line.split_whitespace().next() == Some(id) && line.contains("STOPPED"))
    };
    while !stopped(containerd.ctr_ok(&["task", "ls"])) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    containerd.ctr_ok(&["task", "delete", id]);
    containerd.ctr_ok(&["container", "delete", id]);
}

/// `ctr run --rm` of `image` with the shim, `flags` before the image, `args` after the id.
fn run(containerd: &Containerd, id: &str, image: &str, flags: &[&str], args: &[&str]) -> Output {
    let mut all = vec![
        "run",
        "--rm",
        "--platform",
        "wasip1/wasm",
        "--runtime",
        SHIM,
    ];
    all.extend_from_slice(flags);
    all.extend_from_slice(&[image, id]);
    all.extend_from_slice(args);
    containerd.ctr(&all)
}

/// Starts the HTTP image as task `id`, detached, on a free loopback port in the network
/// `network` chooses (`--net-host`, or `--with-ns` a pod's), with `flags`; its port.
fn serve_detached(containerd: &Containerd, id: &str, network: &[&str], flags: &[&str]) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("WASMLENS_LISTEN=127.0.0.1:{port}");
    let mut args = vec!["run", "-d", "--platform", "wasip1/wasm", "--runtime", SHIM];
    args.extend_from_slice(network);
    args.extend_from_slice(&["--env", &listen]);
    args.extend_from_slice(flags);
    args.extend_from_slice(&[HTTP_IMAGE, id]);
    containerd.ctr_ok(&args);
    port
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The shim's spans as docs/telemetry.md lists them: names and attribute keys.
fn documented_task_spans() -> (Vec<String>, Vec<String>) {
    let docs = include_str!("../../../docs/telemetry.md");
    let section = docs
        .split("## Spans of the containerd shim")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/telemetry.md has the shim's spans");
    let row = section
        .lines()
        .find(|line| line.starts_with("| `Task"))
        .expect("a table row of Task spans");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let cells: Vec<&str> = row.split('|').collect();
    (ticked(cells[1]), ticked(cells[3]))
}

fn spans_named<'a>(spans: &'a [SpanRecord], name: &str, container: &str) -> Vec<&'a SpanRecord> {
    spans
        .iter()
        .filter(|s| s.name == name && s.attr("container.id") == Some(container))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn command_output_arguments_environment_and_exit_codes() {
    let Some((receiver, containerd)) = start("shim-command").await else {
        return;
    };
    let out = run(
        &containerd,
        "args",
        COMMAND_IMAGE,
        &[],
        &["/app.wasm", "args", "a", "b c"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a\nb c\n");

    let out = run(
        &containerd,
        "env",
        COMMAND_IMAGE,
        &["--env", "GREETING=hi"],
        &["/app.wasm", "env"],
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("GREETING=hi\n") && stdout.contains("FROM_IMAGE=1\n"),
        "{stdout}"
    );

    // Codes other than 0 and 1 reach `ctr`; stdout and stderr each reach their own.
    let out = run(
        &containerd,
        "exit",
        COMMAND_IMAGE,
        &[],
        &["/app.wasm", "exit", "7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hello from a wasmlens guest"));
    assert!(text(&out.stderr).contains("a line on stderr"));

    // A trapping guest fails its task (134, as an abort), and the next one runs.
    // As Kubernetes' CRI would annotate it.
    let cri = [
        "--annotation",
        "io.kubernetes.cri.sandbox-name=web-7f9c",
        "--annotation",
        "io.kubernetes.cri.sandbox-namespace=shop",
        "--annotation",
        "io.kubernetes.cri.container-name=worker",
    ];
    let out = run(
        &containerd,
        "trap",
        COMMAND_IMAGE,
        &cri,
        &["/app.wasm", "trap"],
    );
    assert_eq!(out.status.code(), Some(134));
    let out = run(
        &containerd,
        "after",
        COMMAND_IMAGE,
        &[],
        &["/app.wasm", "args", "fine"],
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), "fine\n")
    );

    // Compiled once per image: five tasks of one image left one compiled component.
    let cached = std::fs::read_dir(containerd.dir().join("cache"))
        .unwrap()
        .count();
    assert_eq!(cached, 1, "the compile cache should hold one entry");

    // Every task method containerd called is a server span with the rpc attributes,
    // and the command's invocation continues its TaskCreate.
    receiver
        .wait_until("the spans of the trapping task", WAIT, |r| {
            !spans_named(&r.spans(), "TaskDelete", "trap").is_empty()
        })
        .await;
    let spans = receiver.spans();
    for method in ["Create", "Start", "Wait", "Delete"] {
        let found = spans_named(&spans, &format!("Task{method}"), "trap");
        let span = found
            .first()
            .unwrap_or_else(|| panic!("no Task{method} span"));
        assert_eq!(span.kind, 2, "Task{method} is a server span");
        assert_eq!(span.attr("rpc.system"), Some("ttrpc"));
        assert_eq!(span.attr("rpc.service"), Some("containerd.task.v2.Task"));
        assert_eq!(span.attr("rpc.method"), Some(method));
        assert_eq!(
            span.resource.get("container.id").map(String::as_str),
            Some("trap")
        );
        let resource = |key: &str| span.resource.get(key).map(String::as_str);
        assert_eq!(resource("container.runtime"), Some("wasmlens"));
        assert_eq!(resource("k8s.pod.name"), Some("web-7f9c"));
        assert_eq!(resource("k8s.namespace.name"), Some("shop"));
        assert_eq!(resource("k8s.container.name"), Some("worker"));
    }
    // Nothing arrives from the shim that docs/telemetry.md does not list.
    let (names, keys) = documented_task_spans();
    for span in spans.iter().filter(|s| s.name.starts_with("Task")) {
        assert!(
            names.contains(&span.name),
            "{} is not documented",
            span.name
        );
        for key in span.attributes.keys() {
            assert!(
                keys.contains(key),
                "{}'s {key} is not documented",
                span.name
            );
        }
    }
    let create = spans_named(&spans, "TaskCreate", "trap")[0];
    let invocation = spans
        .iter()
        .find(|s| s.name == "ComponentInvocation" && s.trace_id == create.trace_id)
        .expect("the trapping invocation, in TaskCreate's trace");
    assert_eq!(invocation.parent_span_id, create.span_id);
    assert_eq!(invocation.status_code, 2);
    assert!(
        invocation
            .events
            .iter()
            .any(|e| e.attributes.get("error.type").map(String::as_str) == Some("ComponentTrap"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_context_in_the_container_environment_is_continued() {
    let Some((receiver, containerd)) = start("shim-context").await else {
        return;
    };
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("TRACEPARENT=00-{trace_id}-00f067aa0ba902b7-01");
    let out = run(
        &containerd,
        "ctx",
        COMMAND_IMAGE,
        &["--env", &traceparent],
        &["/app.wasm", "args", "x"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    assert_eq!(invocation.trace_id, trace_id);
    assert_eq!(invocation.parent_span_id, "00f067aa0ba902b7");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_come_from_the_container() {
    let Some((receiver, containerd)) = start("shim-limits").await else {
        return;
    };
    // The container's memory limit bounds the guest's memory.
    let out = run(
        &containerd,
        "grow",
        COMMAND_IMAGE,
        &["--memory-limit", "4194304"],
        &["/app.wasm", "grow"],
    );
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    // The fuel annotation bounds an invocation's work.
    let fuel = ["--annotation", "wasmlens.io/fuel=1000000"];
    let out = run(
        &containerd,
        "loop",
        COMMAND_IMAGE,
        &fuel,
        &["/app.wasm", "loop"],
    );
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    // A bad annotation refuses the task, naming it.
    let bad = ["--annotation", "wasmlens.io/timeout=soon"];
    let out = run(
        &containerd,
        "bad",
        COMMAND_IMAGE,
        &bad,
        &["/app.wasm", "args"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("wasmlens.io/timeout"),
        "{}",
        text(&out.stderr)
    );

    receiver
        .wait_until("both failures", WAIT, |r| {
            let types: Vec<String> = r
                .spans()
                .iter()
                .flat_map(|s| s.events.iter())
                .filter_map(|e| e.attributes.get("error.type").cloned())
                .collect();
            types.iter().any(|t| t == "MemoryLimitExceeded")
                && types.iter().any(|t| t == "FuelExhausted")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_component_is_served_drained_on_sigterm_and_deleted() {
    let Some((receiver, containerd)) = start("shim-http").await else {
        return;
    };
    let timeout = ["--annotation", "wasmlens.io/timeout=2s"];
    let port = serve_detached(&containerd, "web", &["--net-host"], &timeout);
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the component was not served:\n{}",
            containerd.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, body) = http_get(&url("/hello"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert!(containerd.ctr_ok(&["task", "ls"]).contains("RUNNING"));

    // A request in flight when SIGTERM comes is answered (here: when its 2 s run out),
    // then the task ends.
    let in_flight = tokio::spawn(http_get(Box::leak(url("/loop").into_boxed_str()), &[]));
    receiver.wait_for_span("ComponentInstantiation", WAIT).await;
    containerd.ctr_ok(&["task", "kill", "--signal", "SIGTERM", "web"]);
    let (status, _, _) = in_flight.await.unwrap();
    assert_eq!(status, 500, "the in-flight request is answered, not cut");
    wait_stopped_and_delete(&containerd, "web").await;

    // The request's spans were flushed before the task exited; Kill is traced.
    let spans = receiver.spans();
    assert!(
        spans
            .iter()
            .any(|s| s.name == "HttpRequest" && s.attr("url.path") == Some("/loop"))
    );
    assert!(!spans_named(&spans, "TaskKill", "web").is_empty());
    receiver
        .wait_until("the workload's stop", WAIT, |r| {
            r.spans().iter().any(|s| s.name == "WorkloadStop")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_stops_at_once() {
    let Some((receiver, containerd)) = start("shim-kill").await else {
        return;
    };
    let run = [
        "run",
        "--rm",
        "--platform",
        "wasip1/wasm",
        "--runtime",
        SHIM,
    ];
    let args = [COMMAND_IMAGE, "spin", "/app.wasm", "loop"];
    let mut ctr = containerd
        .ctr_command(&[&run[..], &args[..]].concat())
        .spawn()
        .unwrap();
    receiver.wait_for_span("TaskStart", WAIT).await;
    containerd.ctr_ok(&["task", "kill", "--signal", "SIGKILL", "spin"]);
    // A guest that never yields is stopped all the same, as killed by SIGKILL.
    let status = tokio::task::spawn_blocking(move || ctr.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(137));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasm_oci_artifact_runs_from_its_layer() {
    let Some((receiver, containerd)) = start("shim-artifact").await else {
        return;
    };
    let wasm = std::fs::read(guest("command")).unwrap();
    let image = "docker.io/wasmlens/artifact:test";
    containerd.import_packed(&oci_image_tar(image, &wasm, ImageLayout::Artifact));
    // The image names no entrypoint: the layer is the program, the arguments follow it.
    let (status, stdout) = containerd
        .run_through_api(
            SHIM,
            image,
            "artifact",
            &["/artifact.wasm", "args", "from a layer"],
        )
        .await;
    assert_eq!((status, stdout.as_str()), (0, "from a layer\n"));
    let (status, _) = containerd
        .run_through_api(
            SHIM,
            image,
            "artifact-exit",
            &["/artifact.wasm", "exit", "3"],
        )
        .await;
    assert_eq!(status, 3);
    receiver
        .wait_until("the artifact's invocation", WAIT, |r| {
            r.spans().iter().any(|s| {
                s.name == "ComponentInvocation"
                    && s.resource.get("container.id").map(String::as_str) == Some("artifact")
            })
        })
        .await;
}

/// A pod's network namespace, as CNI makes one (here with `ip netns`), deleted on drop.
struct NetworkNamespace(String);

impl NetworkNamespace {
    fn new(name: &str) -> Self {
        let name = format!("{name}-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = std::process::Command::new("ip")
                .args(args)
                .status()
                .expect("ip (iproute2)");
            assert!(status.success(), "ip {args:?} failed");
        };
        ip(&["netns", "add", &name]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        NetworkNamespace(name)
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }

    /// GETs `url` from inside the namespace; `None` if nothing answered.
    fn get(&self, url: &str) -> Option<String> {
        let script = format!(
            "import urllib.request; print(urllib.request.urlopen({url:?}, timeout=2).read().decode(), end='')"
        );
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", &self.0, "python3", "-c", &script])
            .output()
            .unwrap();
        output.status.success().then(|| text(&output.stdout))
    }
}

impl Drop for NetworkNamespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_component_is_served_in_the_pods_network_namespace() {
    // Its collector would be out of reach from the pod's network: nothing is exported.
    let off = vec![("OTEL_SDK_DISABLED", "true".to_owned())];
    let Some(containerd) = start_with("shim-netns", off) else {
        return;
    };
    let pod = NetworkNamespace::new("wasmlens-pod");
    let network = format!("network:{}", pod.path());
    // Where nothing says WASMLENS_LISTEN: the default, 0.0.0.0:8080, in the pod.
    let host_port_free = std::net::TcpListener::bind("127.0.0.1:8080").is_ok();
    containerd.ctr_ok(&[
        "run",
        "-d",
        "--with-ns",
        &network,
        "--platform",
        "wasip1/wasm",
        "--runtime",
        SHIM,
        HTTP_IMAGE,
        "pod-web",
    ]);
    let url = "http://127.0.0.1:8080/inside";
    let deadline = std::time::Instant::now() + WAIT;
    let answer = loop {
        if let Some(answer) = pod.get(url) {
            break answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not served in the pod:\n{}",
            containerd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer, "ok\n");
    // ...and not on the host's network (where nothing else holds that port).
    if host_port_free {
        assert!(std::net::TcpStream::connect(("127.0.0.1", 8080)).is_err());
    }
    containerd.ctr_ok(&["task", "kill", "pod-web"]);
    wait_stopped_and_delete(&containerd, "pod-web").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_killed_or_deleted_before_they_start() {
    let Some((_receiver, containerd)) = start("shim-unstarted").await else {
        return;
    };
    // Made through containerd's API, which gives no root filesystem: an artifact.
    let wasm = std::fs::read(guest("command")).unwrap();
    let image = "docker.io/wasmlens/artifact:test";
    containerd.import_packed(&oci_image_tar(image, &wasm, ImageLayout::Artifact));
    let api = containerd.api().await;
    let args = ["/artifact.wasm", "args", "never"];
    // Killed before it starts: it ends as killed by the signal, and is deleted.
    api.create(SHIM, image, "killed", &args).await;
    api.kill("killed", 9).await;
    assert_eq!(api.wait("killed").await, 137);
    assert_eq!(api.delete("killed").await, 137);
    // Deleted before it starts: whoever waits for it is answered. (Once the wait has
    // reached the shim, which says so at containerd's debug level: a wait containerd is
    // still forwarding as the task goes finds containerd's connection to it closed.)
    api.create(SHIM, image, "dropped", &args).await;
    let waiting = {
        let api = containerd.api().await;
        tokio::spawn(async move { api.wait("dropped").await })
    };
    containerd
        .log_line("task dropped: waiting for it to exit", WAIT)
        .await;
    assert_eq!(api.delete("dropped").await, 0);
    let status = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the wait is answered")
        .unwrap();
    assert_eq!(status, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pods_sandbox_runs_until_it_is_killed() {
    let Some((_receiver, containerd)) = start("shim-sandbox").await else {
        return;
    };
    containerd.ctr_ok(&[
        "run",
        "-d",
        "--platform",
        "wasip1/wasm",
        "--runtime",
        SHIM,
        "--annotation",
        "io.kubernetes.cri.container-type=sandbox",
        COMMAND_IMAGE,
        "pause",
    ]);
    assert!(containerd.ctr_ok(&["task", "ls"]).contains("RUNNING"));
    containerd.ctr_ok(&["task", "kill", "pause"]);
    wait_stopped_and_delete(&containerd, "pause").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shim_that_dies_is_cleaned_up_after() {
    let Some((_receiver, containerd)) = start("shim-dies").await else {
        return;
    };
    serve_detached(&containerd, "doomed", &["--net-host"], &[]);
    let listing = containerd.ctr_ok(&["task", "ls"]);
    let pid: i32 = listing
        .lines()
        .find(|line| line.starts_with("doomed"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|pid| pid.parse().ok())
        .expect("the task's pid");
    let shim = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::kill_process(shim, rustix::process::Signal::KILL).unwrap();
    // containerd runs the shim's `delete`, which unmounts the root filesystem, and
    // forgets the task; the container can be deleted.
    let deadline = tokio::time::Instant::now() + WAIT;
    while containerd.ctr_ok(&["task", "ls"]).contains("doomed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead task was not cleaned up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    containerd.ctr_ok(&["container", "delete", "doomed"]);
    let bundle_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|line| line.contains("/doomed/rootfs"))
        .count();
    assert_eq!(bundle_mounts, 0, "the root filesystem was unmounted");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_cannot_make_the_shim_read_a_host_file() {
    let Some((_receiver, containerd)) = start("shim-symlink").await else {
        return;
    };
    // A component on the host, which the image's /app.wasm links to.
    const HOST_FILE: &str = "/tmp/wasmlens-shim-test-host-file.wasm";
    std::fs::copy(guest("command"), HOST_FILE).unwrap();
    let image = "docker.io/wasmlens/link:test";
    let tar = oci_image_tar(image, &[], ImageLayout::PlainLinkingTo(HOST_FILE));
    containerd.import(&tar);
    let out = run(
        &containerd,
        "link",
        image,
        &[],
        &["/app.wasm", "args", "escaped"],
    );
    let _ = std::fs::remove_file(HOST_FILE);
    assert!(
        !out.status.success(),
        "the host's file ran: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("/app.wasm: no such file in the container's root filesystem"),
        "{}",
        text(&out.stderr)
    );
}
