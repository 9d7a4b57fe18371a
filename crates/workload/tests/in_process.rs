//! A second front end, in the test process: it builds a telemetry pipeline pointed at the
//! test's OTLP receiver (installing nothing global), runs workloads through the same calls
//! the `wasmlens` binary makes, and finds their telemetry on the wire.

use std::sync::Arc;
use std::time::Duration;
use wasmlens_telemetry::names::shutdown_reason;
use wasmlens_telemetry::{Telemetry, TelemetryConfig};
use wasmlens_test_support::{OtlpReceiver, Transport, guest, http_get};
use wasmlens_workload::{
    ComponentSpec, Grants, Limits, PoolMemory, ServeOptions, Trigger, Workload, WorkloadSpec,
};

const WAIT: Duration = Duration::from_secs(10);

/// A pipeline exporting to `receiver`, configured through a lookup rather than the
/// process's environment.
fn telemetry_for(receiver: &OtlpReceiver) -> Arc<Telemetry> {
    let env = receiver.exporter_env(Transport::HttpProtobuf);
    let config = TelemetryConfig::from_lookup(|name| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    });
    Arc::new(Telemetry::build(config).expect("a pipeline"))
}

async fn flush(telemetry: Arc<Telemetry>) {
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
}

/// A workload `id` of one test guest, granted nothing, served on a free port.
fn workload(id: &str, guest_name: &str, trigger: Trigger) -> WorkloadSpec {
    let component = ComponentSpec {
        id: guest_name.to_owned(),
        source: guest(guest_name),
        trigger,
        limits: Limits::default(),
        grants: Grants::default(),
    };
    WorkloadSpec {
        id: id.to_owned(),
        name: id.to_owned(),
        manifest: None,
        components: vec![component],
        server: ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServeOptions::default()
        },
        pool_memory: PoolMemory::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_loaded_started_and_stopped_in_process_is_traced() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = telemetry_for(&receiver);
    let route = "/".to_owned();
    let spec = workload("hello-in-process", "http-hello", Trigger::Http { route });
    let parent = opentelemetry::Context::new();
    let workload = Workload::load(telemetry.clone(), spec, parent)
        .await
        .unwrap();
    let addr = workload.local_addr().expect("a server");
    let running = workload.start();

    let (status, _, body) = http_get(&format!("http://{addr}/"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello"));

    running.stop_handle().stop(shutdown_reason::SIGTERM);
    let ended = running.wait().await;
    assert_eq!(ended.exit_code, 0);
    flush(telemetry).await;

    let request = receiver.wait_for_span("HttpRequest", WAIT).await;
    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    assert_eq!(invocation.parent_span_id, request.span_id);
    assert_eq!(invocation.attributes["component_id"], "http-hello");
    let stop = receiver.wait_for_span("WorkloadStop", WAIT).await;
    assert_eq!(stop.attributes["shutdown_reason"], "SIGTERM");
    assert_eq!(stop.attributes["workload_id"], "hello-in-process");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_runs_in_process_and_ends_with_its_exit_code() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = telemetry_for(&receiver);
    let args = vec!["exit".to_owned(), "7".to_owned()];
    let spec = workload("exit-in-process", "command", Trigger::Cli { args });
    let parent = opentelemetry::Context::new();
    let workload = Workload::load(telemetry.clone(), spec, parent)
        .await
        .unwrap();
    assert_eq!(workload.local_addr(), None);
    let ended = workload.start().wait().await;
    assert_eq!(ended.exit_code, 7);
    assert!(ended.failure.is_none());
    flush(telemetry).await;

    let invocation = receiver.wait_for_span("ComponentInvocation", WAIT).await;
    assert_eq!(
        invocation.kind, 2,
        "a command's invocation is the entry span"
    );
    assert_eq!(invocation.attributes["function_name"], "wasi:cli/run.run");
    let stop = receiver.wait_for_span("WorkloadStop", WAIT).await;
    assert_eq!(stop.attributes["shutdown_reason"], "completed");
}
