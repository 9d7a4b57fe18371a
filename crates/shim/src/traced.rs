//! A span for each call containerd makes into the task service (`TaskCreate`, ...), in
//! the trace containerd sends along in the ttrpc request's metadata, if it sends one.

use containerd_shim::TtrpcResult;
use containerd_shim::protos::ttrpc::r#async::TtrpcContext;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as key;
use std::collections::HashMap;
use wasmlens_telemetry::{SpanStart, Telemetry};

/// `rpc.system` of the task service.
pub const RPC_SYSTEM: &str = "ttrpc";
/// `rpc.service`: containerd's task API, version 2.
pub const RPC_SERVICE: &str = "containerd.task.v2.Task";

/// The request's metadata as a carrier: ttrpc keys are lower case, a key may repeat (the
/// first value counts).
struct Metadata<'a>(&'a HashMap<String, Vec<String>>);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .or_else(|| {
                let lower = key.to_ascii_lowercase();
                self.0
                    .iter()
                    .find(|(k, _)| k.to_ascii_lowercase() == lower)
                    .map(|(_, v)| v)
            })
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Runs `call` (a task method, `Create`) inside its `TaskCreate` server span, parented
/// by the context in `ctx`'s metadata; the span's status is an error when the call is.
/// `call` gets the span's context, to hand on to what it starts.
pub async fn traced<T, F>(
    telemetry: &Telemetry,
    ctx: &TtrpcContext,
    method: &'static str,
    container_id: &str,
    call: impl FnOnce(Context) -> F,
) -> TtrpcResult<T>
where
    F: Future<Output = TtrpcResult<T>>,
{
    let parent = telemetry.propagator().extract(&Metadata(&ctx.metadata));
    let start = SpanStart::new(format!("Task{method}"), SpanKind::Server);
    let span = telemetry.host_tracer().start(&parent, start, || {
        vec![
            // The contract's keys, as runwasi's shims send them (semconv has since moved
            // to `rpc.system.name` and a fully qualified `rpc.method`).
            #[allow(deprecated)]
            KeyValue::new(key::RPC_SYSTEM, RPC_SYSTEM),
            #[allow(deprecated)]
            KeyValue::new(key::RPC_SERVICE, RPC_SERVICE),
            KeyValue::new(key::RPC_METHOD, method),
            KeyValue::new(
                opentelemetry_semantic_conventions::resource::CONTAINER_ID,
                container_id.to_owned(),
            ),
        ]
    });
    let cx = parent.with_span(span);
    let result = call(cx.clone()).await;
    let span = cx.span();
    if let Err(err) = &result {
        span.set_status(Status::error(err.to_string()));
    }
    span.end();
    result
}
