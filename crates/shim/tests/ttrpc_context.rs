//! The trace context containerd sends in a task request's ttrpc metadata (containerd 1.7
//! and 2.x do, when their tracing is on; 1.6 sends none) parents the request's span. The
//! span goes over the wire to a real receiver.

use containerd_shim::protos::ttrpc::r#async::TtrpcContext;
use containerd_shim::protos::ttrpc::{self, Code};
use opentelemetry::trace::TraceContextExt as _;
use std::collections::HashMap;
use std::time::Duration;
use wasmlens_telemetry::{Telemetry, TelemetryConfig};
use wasmlens_test_support::{OtlpReceiver, Transport};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

fn context(metadata: &[(&str, &str)]) -> TtrpcContext {
    TtrpcContext {
        mh: Default::default(),
        metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
            .collect::<HashMap<_, _>>(),
        timeout_nano: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_span_continues_the_context_in_the_metadata() {
    let receiver = OtlpReceiver::start().await;
    let env: HashMap<_, _> = receiver.exporter_env(Transport::Grpc).into_iter().collect();
    let telemetry =
        Telemetry::build(TelemetryConfig::from_lookup(|name| env.get(name).cloned())).unwrap();

    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let with_parent = context(&[("traceparent", &traceparent)]);
    let result: ttrpc::Result<bool> =
        wasmlens_shim::traced(&telemetry, &with_parent, "Create", "c1", |cx| async move {
            // What the call hands on (to the workload) is the span's own context.
            Ok(cx.span().span_context().trace_id().to_string() == TRACE_ID)
        })
        .await;
    assert!(result.unwrap(), "the call gets the span of its own trace");

    // A malformed traceparent starts a trace of its own; a failed call is an error span.
    let malformed = context(&[("traceparent", "00-not-a-trace-01")]);
    let failed: ttrpc::Result<()> =
        wasmlens_shim::traced(&telemetry, &malformed, "Kill", "c1", |_| async {
            Err(ttrpc::Error::RpcStatus(ttrpc::get_status(
                Code::NOT_FOUND,
                "gone",
            )))
        })
        .await;
    assert!(failed.is_err());
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();

    let create = receiver
        .wait_for_span("TaskCreate", Duration::from_secs(10))
        .await;
    assert_eq!(create.trace_id, TRACE_ID);
    assert_eq!(create.parent_span_id, PARENT_ID);
    assert_eq!(create.kind, 2);
    assert_eq!(create.attr("container.id"), Some("c1"));
    let kill = receiver
        .wait_for_span("TaskKill", Duration::from_secs(10))
        .await;
    assert_ne!(kill.trace_id, TRACE_ID);
    assert_eq!(kill.parent_span_id, "");
    assert_eq!(kill.status_code, 2);
}
