//! The spans and metrics around instantiating and invoking one component, shared by
//! `run` and `serve`. Everything that does not change per invocation is built once,
//! when the component is loaded.

use crate::failure::GuestFailure;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmlens_telemetry::names::{attr, outcome, span};
use wasmlens_telemetry::{Instruments, Telemetry};

/// What telemetry knows of one loaded component.
pub struct ComponentTelemetry {
    pub id: Arc<str>,
    trigger: &'static str,
    function_name: &'static str,
    instantiation_attrs: Vec<KeyValue>,
    invocation_attrs: Vec<KeyValue>,
    invocations_ok: [KeyValue; 3],
    invocations_error: [KeyValue; 3],
    /// Whether the next instance is the process's first of this component.
    cold: AtomicBool,
}

impl ComponentTelemetry {
    /// `id` names the component in its workload; `name` is its file name; `trigger` is
    /// the `faas.trigger` of its invocations; `function_name` the export they call.
    pub fn new(id: &str, name: &str, trigger: &'static str, function_name: &'static str) -> Self {
        let id: Arc<str> = id.into();
        let id_value = || opentelemetry::Value::from(opentelemetry::StringValue::from(id.clone()));
        let counted = |result: &'static str| {
            [
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::FAAS_TRIGGER, trigger),
                KeyValue::new(attr::OUTCOME, result),
            ]
        };
        ComponentTelemetry {
            instantiation_attrs: vec![
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::WASMTIME_COMPONENT_ID, id_value()),
                KeyValue::new(attr::WASMTIME_COMPONENT_NAME, name.to_owned()),
            ],
            invocation_attrs: vec![
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::FUNCTION_NAME, function_name),
                KeyValue::new(attr::FAAS_TRIGGER, trigger),
            ],
            invocations_ok: counted(outcome::OK),
            invocations_error: counted(outcome::ERROR),
            cold: AtomicBool::new(true),
            trigger,
            function_name,
            id,
        }
    }

    pub fn trigger(&self) -> &'static str {
        self.trigger
    }

    pub fn function_name(&self) -> &'static str {
        self.function_name
    }

    /// Starts `ComponentInstantiation` under `parent`. Returns the context holding it and
    /// whether this is a cold start.
    pub fn start_instantiation(&self, telemetry: &Telemetry, parent: &Context) -> (Context, bool) {
        let coldstart = self.cold.swap(false, Ordering::Relaxed);
        let tracer = telemetry.tracer();
        let mut builder = tracer
            .span_builder(span::COMPONENT_INSTANTIATION)
            .with_kind(SpanKind::Internal);
        if telemetry.traces_enabled() {
            let mut attrs = self.instantiation_attrs.clone();
            attrs.push(KeyValue::new(attr::IS_COLDSTART, coldstart));
            attrs.push(KeyValue::new(attr::FAAS_COLDSTART, coldstart));
            builder = builder.with_attributes(attrs);
        }
        (
            parent.with_span(builder.start_with_context(tracer, parent)),
            coldstart,
        )
    }

    /// Starts `ComponentInvocation` under `parent`: kind server when it is the entry into
    /// this process (a CLI run, maybe continuing a remote trace), internal inside a request.
    /// `span_id`, if given, is the id the span gets (see `wasmlens_telemetry::ids`).
    pub fn start_invocation(
        &self,
        telemetry: &Telemetry,
        parent: &Context,
        coldstart: bool,
        span_id: Option<SpanId>,
    ) -> Context {
        let tracer = telemetry.tracer();
        // The entry into this process (no local parent) is a server span, as HttpRequest is.
        let span = parent.span();
        let local_parent = parent.has_active_span() && !span.span_context().is_remote();
        let kind = if local_parent {
            SpanKind::Internal
        } else {
            SpanKind::Server
        };
        let mut builder = tracer
            .span_builder(span::COMPONENT_INVOCATION)
            .with_kind(kind);
        if telemetry.traces_enabled() {
            let mut attrs = self.invocation_attrs.clone();
            attrs.push(KeyValue::new(attr::FAAS_COLDSTART, coldstart));
            builder = builder.with_attributes(attrs);
        }
        let start = || builder.start_with_context(tracer, parent);
        let span = match span_id {
            Some(id) => wasmlens_telemetry::ids::start_with_span_id(id, start),
            None => start(),
        };
        let cx = parent.with_span(span);
        if telemetry.traces_enabled() {
            let span = cx.span();
            let invocation_id = span.span_context().span_id().to_string();
            span.set_attribute(KeyValue::new(attr::FAAS_INVOCATION_ID, invocation_id));
        }
        cx
    }

    /// Counts one invocation by its outcome.
    pub fn count_invocation(&self, instruments: &Instruments, ok: bool) {
        let attrs = if ok {
            &self.invocations_ok
        } else {
            &self.invocations_error
        };
        instruments.component_invocations.add(1, attrs);
    }
}

/// Marks the span in `cx` as failed with the failure's kind and message.
pub fn record_failure(cx: &Context, failure: &GuestFailure) {
    let span = cx.span();
    if span.is_recording() {
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, failure.kind.as_str()));
        span.set_status(Status::error(failure.to_string()));
    }
}
