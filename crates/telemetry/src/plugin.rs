//! What every host plugin records, the same way: a `PluginBind` span when it is bound to
//! a component, and for each call a `PluginOperation` client span under the invocation
//! that made it, a count in `plugin.operations` and, when the call fails, a
//! `plugin failed` event (`PluginOperationFailure`). A plugin binds one
//! [`PluginTelemetry`] per component (and backend) when the component is loaded, so that
//! a call neither builds nor looks up an attribute set.

use crate::events::{self, Failed};
use crate::names::{attr, error_type, plugin_status, span};
use crate::{SpanStart, Telemetry};
use opentelemetry::metrics::BoundCounter;
use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use std::sync::Arc;

/// One plugin's telemetry for one component.
pub struct PluginTelemetry {
    telemetry: Arc<Telemetry>,
    plugin_type: &'static str,
    component_id: Arc<str>,
    /// What every `PluginOperation` span of it carries: the plugin, the component, the
    /// backend.
    span_attrs: Vec<KeyValue>,
    operations: Box<[BoundOperation]>,
}

/// `plugin.operations` for one operation, bound to its attribute sets.
struct BoundOperation {
    name: &'static str,
    success: BoundCounter<u64>,
    error: BoundCounter<u64>,
}

impl PluginTelemetry {
    /// Binds `plugin_type`'s telemetry for `component_id`: `operations` are the names of
    /// every call it can make (the interface's function names); `backend` the attributes
    /// that describe what serves them (`plugin_backend`, the database conventions).
    pub fn new(
        telemetry: &Arc<Telemetry>,
        plugin_type: &'static str,
        component_id: &Arc<str>,
        operations: &[&'static str],
        backend: Vec<KeyValue>,
    ) -> Self {
        let counter = &telemetry.instruments().plugin_operations;
        let bind = |operation: &'static str, status: &'static str| {
            counter.bind(&[
                KeyValue::new(attr::PLUGIN_TYPE, plugin_type),
                KeyValue::new(attr::OPERATION, operation),
                KeyValue::new(attr::STATUS, status),
            ])
        };
        let operations = operations
            .iter()
            .map(|&name| BoundOperation {
                name,
                success: bind(name, plugin_status::SUCCESS),
                error: bind(name, plugin_status::ERROR),
            })
            .collect();
        let mut span_attrs = vec![
            KeyValue::new(attr::PLUGIN_TYPE, plugin_type),
            KeyValue::new(
                attr::COMPONENT_ID,
                Value::from(StringValue::from(component_id.clone())),
            ),
        ];
        span_attrs.extend(backend);
        PluginTelemetry {
            telemetry: telemetry.clone(),
            plugin_type,
            component_id: component_id.clone(),
            span_attrs,
            operations,
        }
    }

    /// Counts a call to `operation` that has no span of its own (its telemetry is a log
    /// record, say).
    pub fn count(&self, operation: &'static str, succeeded: bool) {
        let bound = self.operation(operation);
        match succeeded {
            true => bound.success.add(1),
            false => bound.error.add(1),
        }
    }

    fn operation(&self, operation: &'static str) -> &BoundOperation {
        let bound = self.operations.iter().find(|o| o.name == operation);
        debug_assert!(bound.is_some(), "{operation} was not bound");
        bound.unwrap_or(&self.operations[0])
    }

    /// A call to `operation` begins, under the current context (the invocation's, while
    /// a guest runs). `db_operation` is what a database backend is asked to do
    /// (`db.operation.name`, e.g. `INCRBY`).
    pub fn start(
        &self,
        operation: &'static str,
        db_operation: Option<&'static str>,
    ) -> PluginCall<'_> {
        let bound = self.operation(operation);
        // A plugin call passes no trace context on: where spans go nowhere, it has none.
        let cx = self.telemetry.traces_enabled().then(|| {
            let parent = Context::current();
            let start = SpanStart::new(span::PLUGIN_OPERATION, SpanKind::Client);
            let span = self.telemetry.host_tracer().start(&parent, start, || {
                let mut attrs = Vec::with_capacity(self.span_attrs.len() + 3);
                attrs.extend_from_slice(&self.span_attrs);
                attrs.push(KeyValue::new(attr::OPERATION, operation));
                if let Some(db_operation) = db_operation {
                    attrs.push(KeyValue::new(attr::DB_OPERATION_NAME, db_operation));
                }
                attrs
            });
            parent.with_span(span)
        });
        PluginCall {
            plugin: self,
            operation: bound,
            cx,
            ended: false,
        }
    }
}

/// One call into a plugin, under way. Dropped without an end (the guest was stopped
/// while it waited), it counts as failed and its span ends without `success`.
pub struct PluginCall<'a> {
    plugin: &'a PluginTelemetry,
    operation: &'a BoundOperation,
    cx: Option<Context>,
    ended: bool,
}

impl PluginCall<'_> {
    /// The call returned what the guest asked for.
    pub fn succeeded(mut self) {
        self.ended = true;
        self.operation.success.add(1);
        if let Some(cx) = &self.cx {
            cx.span().set_attribute(KeyValue::new(attr::SUCCESS, true));
        }
    }

    /// The call failed; the guest gets the interface's error, which `message` describes.
    pub fn failed(mut self, message: &str) {
        self.ended = true;
        self.operation.error.add(1);
        let plugin = self.plugin;
        let cx = match &self.cx {
            Some(cx) => {
                cx.span().set_attribute(KeyValue::new(attr::SUCCESS, false));
                cx.clone()
            }
            None => Context::current(),
        };
        let what = Failed::Plugin {
            plugin_type: plugin.plugin_type,
            component_id: &plugin.component_id,
        };
        let message = format!("{} failed: {message}", self.operation.name);
        let error = error_type::PLUGIN_OPERATION_FAILURE;
        events::failed(&plugin.telemetry, &cx, what, error, &message);
    }
}

impl Drop for PluginCall<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.operation.error.add(1);
        }
        if let Some(cx) = &self.cx {
            cx.span().end();
        }
    }
}

/// What a plugin is bound as, in its `PluginBind` span.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub plugin_type: &'static str,
    /// The WIT package it serves, e.g. `wasi:keyvalue@0.2.0-draft`.
    pub interface: &'static str,
    pub workload_id: &'a str,
    pub component_id: &'a str,
}

/// Binds a plugin to a component, in a `PluginBind` span under `parent`: `bind` opens
/// or reaches its backend. A failure is reported (`PluginBindFailure`) and returned.
pub async fn bind<B>(
    telemetry: &Telemetry,
    parent: &Context,
    binding: Binding<'_>,
    bind: impl Future<Output = anyhow::Result<B>>,
) -> anyhow::Result<B> {
    let Binding {
        plugin_type,
        interface,
        workload_id,
        component_id,
    } = binding;
    let start = SpanStart::new(span::PLUGIN_BIND, SpanKind::Internal);
    let span = telemetry.host_tracer().start(parent, start, || {
        vec![
            KeyValue::new(attr::PLUGIN_TYPE, plugin_type),
            KeyValue::new(attr::INTERFACE, interface),
            KeyValue::new(attr::WORKLOAD_ID, workload_id.to_owned()),
            KeyValue::new(attr::COMPONENT_ID, component_id.to_owned()),
        ]
    });
    let cx = parent.with_span(span);
    // What the plugin logs while it binds belongs to its PluginBind.
    let bound = opentelemetry::context::FutureExt::with_context(bind, cx.clone()).await;
    if let Err(err) = &bound {
        let what = Failed::Plugin {
            plugin_type,
            component_id,
        };
        let message = format!("{err:#}");
        events::failed(
            telemetry,
            &cx,
            what,
            error_type::PLUGIN_BIND_FAILURE,
            &message,
        );
    }
    cx.span().end();
    bound
}
