//! The contract's events. Each is added to the span it concerns and also exported as a
//! log record (with that span's trace and span id, and the event's name and attributes),
//! and is written to stderr by the local log (target `wasmlens::event`), except a
//! workload's failure, which the host reports as its error.

use crate::Telemetry;
use crate::names::{attr, event};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, Value};

/// The `tracing` target of the stderr copy, which the log bridge leaves out (the record
/// is exported directly, with its typed attributes).
pub const TARGET: &str = "wasmlens::event";

fn emit(
    telemetry: &Telemetry,
    cx: &Context,
    severity: Severity,
    name: &'static str,
    attrs: Vec<KeyValue>,
    message: String,
) {
    let span = cx.span();
    if let Some(logger) = telemetry.logger() {
        let mut record = logger.create_log_record();
        record.set_event_name(name);
        record.set_severity_number(severity);
        record.set_severity_text(severity.name());
        record.set_target(TARGET);
        record.set_body(AnyValue::from(message.clone()));
        let context = span.span_context();
        if context.is_valid() {
            record.set_trace_context(
                context.trace_id(),
                context.span_id(),
                Some(context.trace_flags()),
            );
        }
        for kv in &attrs {
            record.add_attribute(kv.key.clone(), any_value(&kv.value));
        }
        logger.emit(record);
    }
    match severity {
        // The caller reports a workload's failure itself, as the error it returns.
        _ if name == event::WORKLOAD_FAILED => {}
        // A person reading the console gets the failure's trace in the view.
        Severity::Error => match trace_link(telemetry, &span) {
            Some(link) => tracing::error!(target: TARGET, "{message} (trace: {link})"),
            None => tracing::error!(target: TARGET, "{message}"),
        },
        Severity::Warn => tracing::warn!(target: TARGET, "{message}"),
        _ => tracing::info!(target: TARGET, "{message}"),
    }
    if span.is_recording() {
        span.add_event(name, attrs);
    }
}

/// Where the view shows the trace of `span`, if the view is served and records it.
fn trace_link(telemetry: &Telemetry, span: &opentelemetry::trace::SpanRef<'_>) -> Option<String> {
    let context = span.span_context();
    if !context.is_sampled() {
        return None;
    }
    telemetry.recorder()?.trace_link(context.trace_id())
}

fn any_value(value: &Value) -> AnyValue {
    match value {
        Value::Bool(b) => AnyValue::Boolean(*b),
        Value::I64(i) => AnyValue::Int(*i),
        Value::F64(f) => AnyValue::Double(*f),
        other => AnyValue::String(other.as_str().into_owned().into()),
    }
}

/// What failed: a component or a workload, by its id.
#[derive(Clone, Copy, Debug)]
pub enum Failed<'a> {
    /// A guest: on its `ComponentInvocation` or `ComponentInstantiation`.
    Component(&'a str),
    /// A workload that could not start, or stopped on a failure: on its `WorkloadStart`
    /// or `WorkloadStop`.
    Workload(&'a str),
    /// A host plugin of a component: on its `PluginBind` or `PluginOperation`.
    Plugin {
        plugin_type: &'static str,
        component_id: &'a str,
    },
}

/// Something failed, for the reason `error_type` names. The span's status becomes ERROR.
pub fn failed(
    telemetry: &Telemetry,
    cx: &Context,
    what: Failed<'_>,
    error_type: &'static str,
    message: &str,
) {
    cx.span().set_status(Status::error(message.to_owned()));
    let mut attrs = vec![
        KeyValue::new(attr::ERROR_TYPE, error_type),
        KeyValue::new(attr::ERROR_MESSAGE, message.to_owned()),
    ];
    let (name, text) = match what {
        Failed::Component(id) => {
            attrs.push(KeyValue::new(attr::COMPONENT_ID, id.to_owned()));
            let text = format!("component {id:?} failed ({error_type}): {message}");
            (event::COMPONENT_FAILED, text)
        }
        Failed::Workload(id) => {
            attrs.push(KeyValue::new(attr::WORKLOAD_ID, id.to_owned()));
            let text = format!("workload {id:?} failed ({error_type}): {message}");
            (event::WORKLOAD_FAILED, text)
        }
        Failed::Plugin {
            plugin_type,
            component_id,
        } => {
            attrs.push(KeyValue::new(attr::PLUGIN_TYPE, plugin_type));
            attrs.push(KeyValue::new(attr::COMPONENT_ID, component_id.to_owned()));
            let text = format!(
                "{plugin_type} plugin of component {component_id:?} failed ({error_type}): {message}"
            );
            (event::PLUGIN_FAILED, text)
        }
    };
    emit(telemetry, cx, Severity::Error, name, attrs, text);
}

/// A limit an invocation came near.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// `max_memory`: `used` is the instance's peak, in bytes.
    Memory,
    /// `fuel`: `used` is what the invocation consumed.
    Fuel,
}

/// An invocation used at least 80 % of a limit without passing it.
pub fn approaching_limit(
    telemetry: &Telemetry,
    cx: &Context,
    component_id: &str,
    limit: Limit,
    used: u64,
    allowed: u64,
) {
    let utilization = used as f64 * 100.0 / allowed.max(1) as f64;
    let (name, used_key, allowed_key, what) = match limit {
        Limit::Memory => (
            event::APPROACHING_MEMORY_LIMIT,
            attr::CURRENT_MEMORY,
            attr::MEMORY_LIMIT,
            "memory limit",
        ),
        Limit::Fuel => (
            event::APPROACHING_FUEL_BUDGET,
            attr::FUEL_CONSUMED,
            attr::FUEL_LIMIT,
            "fuel budget",
        ),
    };
    let attrs = vec![
        KeyValue::new(attr::COMPONENT_ID, component_id.to_owned()),
        KeyValue::new(used_key, used as i64),
        KeyValue::new(allowed_key, allowed as i64),
        KeyValue::new(attr::UTILIZATION_PCT, utilization),
    ];
    let text = format!(
        "component {component_id:?} approaching its {what}: {used} of {allowed} ({utilization:.0} %)"
    );
    emit(telemetry, cx, Severity::Warn, name, attrs, text);
}

/// A workload moved from one state to another.
pub fn workload_state_transition(
    telemetry: &Telemetry,
    cx: &Context,
    workload_id: &str,
    previous: &'static str,
    new: &'static str,
) {
    let attrs = vec![
        KeyValue::new(attr::WORKLOAD_ID, workload_id.to_owned()),
        KeyValue::new(attr::PREVIOUS_STATE, previous),
        KeyValue::new(attr::NEW_STATE, new),
    ];
    let text = format!("workload {workload_id:?}: {previous} -> {new}");
    emit(
        telemetry,
        cx,
        Severity::Info,
        event::WORKLOAD_STATE_TRANSITION,
        attrs,
        text,
    );
}
