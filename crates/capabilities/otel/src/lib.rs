//! The guest telemetry plugin: wasi:otel@0.2.0-rc.2 (tracing, metrics, logs). A guest's
//! spans keep their ids, times, attributes, events, links and scope, nest under the
//! `ComponentInvocation` the context function returns, and go out in the host's batches
//! with the host's resource; its log records and metrics go out through the host's log
//! and metric pipelines with `component_id`. Both names of the context function are
//! linked: `outer-span-context` (the rc.2 tag) and `current-span-context` (its later
//! rename). A guest cannot make the host allocate without bound: each invocation may end
//! at most [`MAX_SPANS`] spans and emit [`MAX_RECORDS`] records and metric points, each
//! with at most [`convert::MAX_ITEMS`] attributes (events, links) and texts of at most
//! [`convert::MAX_TEXT`] bytes; a component may use [`MAX_SCOPES`] scopes and
//! [`MAX_METRICS`] metrics, and replay at most [`MAX_HISTOGRAM_VALUES`] measurements of
//! histograms an invocation. What is over is dropped and counted in
//! `guest.telemetry.dropped`; texts are cut. Each call is counted in `plugin.operations`.

mod convert;
mod histogram;
mod logs;
mod metrics;
mod tracing;

use bindings::wasi::otel::types;
use opentelemetry::InstrumentationScope;
use opentelemetry::KeyValue;
use opentelemetry::metrics::BoundCounter;
use std::sync::{Arc, Mutex, PoisonError};
use wasmlens_engine::{Capability, ComponentContext, InstanceContext, Plugin};
use wasmlens_telemetry::Telemetry;
use wasmlens_telemetry::names::{attr, plugin_type, signal};
use wasmlens_telemetry::plugin::PluginTelemetry;
use wasmtime::component::{HasData, Linker};

pub use convert::MAX_ITEMS;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:otel/imports",
        require_store_data_send: true,
        with: {
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
        },
    });
}

/// The WIT package this plugin serves.
pub const PACKAGE: &str = "wasi:otel@0.2.0-rc.2";
/// Spans one invocation may end.
pub const MAX_SPANS: u32 = 1024;
/// Log records one invocation may emit, and metric data points it may export.
pub const MAX_RECORDS: u32 = 1024;
/// Instrumentation scopes one component may use, and metrics it may export, over its
/// life: each is kept (and a metric exported) for as long as the workload runs.
pub const MAX_SCOPES: usize = 16;
pub const MAX_METRICS: usize = 256;
/// Values one invocation may replay from its histograms' points (see [`histogram`]): a
/// histogram of more measurements than that, in one invocation, is dropped.
pub const MAX_HISTOGRAM_VALUES: u64 = 1 << 18;

/// The capability. It needs no configuration: a component that imports wasi:otel has
/// its telemetry exported wherever the host's goes.
#[derive(Debug, Default)]
pub struct Otel;

/// A component's guest telemetry: where it goes, and the scopes it has used.
pub struct OtelGrant {
    component_id: Arc<str>,
    telemetry: Arc<Telemetry>,
    scopes: Mutex<Vec<GuestScope>>,
    metrics: metrics::GuestMetrics,
    /// Its calls, in `plugin.operations` (no span each: the guest's telemetry is its own).
    calls: PluginTelemetry,
    dropped_spans: BoundCounter<u64>,
    dropped_records: BoundCounter<u64>,
    dropped_points: BoundCounter<u64>,
}

/// The calls wasi:otel has, as `plugin.operations` names them.
const ON_START: &str = "on-start";
const ON_END: &str = "on-end";
const ON_EMIT: &str = "on-emit";
const EXPORT: &str = "export";
const SPAN_CONTEXT: &str = "outer-span-context";

/// A guest's instrumentation scope, with the host's tracer, logger and meter for it.
struct GuestScope {
    name: String,
    version: Option<String>,
    handles: ScopeHandles,
}

/// The host's tracer, logger and meter for one guest scope (each a shared handle).
#[derive(Clone)]
struct ScopeHandles {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    logger: Option<opentelemetry_sdk::logs::SdkLogger>,
    meter: opentelemetry::metrics::Meter,
}

/// What one instance holds: its component's grant (none if it does not import
/// wasi:otel), and what its invocation has recorded so far, against the caps.
#[derive(Default)]
pub struct OtelState {
    grant: Option<Arc<OtelGrant>>,
    spans: u32,
    records: u32,
    points: u32,
    /// Values replayed from its histograms' points.
    histogram_values: u64,
    /// What the instance last exported of each cumulative sum and histogram.
    last_cumulative: metrics::LastCumulative,
}

/// How the plugin reaches its state in a store: the host's store type implements it.
pub trait OtelView: Send {
    fn otel(&mut self) -> OtelCtxView<'_>;
}

/// The plugin's part of one instance's store.
pub struct OtelCtxView<'a>(pub &'a mut OtelState);

struct HasOtel;

impl HasData for HasOtel {
    type Data<'a> = OtelCtxView<'a>;
}

impl<T: OtelView + 'static> Capability<T> for Otel {
    const PLUGIN: Option<Plugin> = Some(Plugin {
        plugin_type: plugin_type::OTEL,
        package: PACKAGE,
    });
    type Config = ();
    type Bound = Arc<OtelGrant>;
    type InstanceState = OtelState;

    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()> {
        use bindings::wasi::otel;
        otel::types::add_to_linker::<T, HasOtel>(linker, T::otel)?;
        otel::tracing::add_to_linker::<T, HasOtel>(linker, T::otel)?;
        otel::metrics::add_to_linker::<T, HasOtel>(linker, T::otel)?;
        otel::logs::add_to_linker::<T, HasOtel>(linker, T::otel)?;
        tracing::link_renamed_context_function(linker)?;
        Ok(())
    }

    async fn bind(
        &self,
        _: &(),
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<Arc<OtelGrant>> {
        let telemetry = component.telemetry;
        let dropped = &telemetry.instruments().guest_telemetry_dropped;
        let bind = |signal: &'static str| {
            dropped.bind(&[
                KeyValue::new(attr::COMPONENT_ID, component.id.to_string()),
                KeyValue::new(attr::SIGNAL, signal),
            ])
        };
        let calls = PluginTelemetry::new(
            telemetry,
            plugin_type::OTEL,
            component.id,
            &[ON_START, ON_END, ON_EMIT, EXPORT, SPAN_CONTEXT],
            Vec::new(),
        );
        Ok(Arc::new(OtelGrant {
            calls,
            component_id: component.id.clone(),
            telemetry: telemetry.clone(),
            scopes: Mutex::default(),
            metrics: metrics::GuestMetrics::default(),
            dropped_spans: bind(signal::TRACES),
            dropped_records: bind(signal::LOGS),
            dropped_points: bind(signal::METRICS),
        }))
    }

    fn instance_state(
        &self,
        grant: &Arc<OtelGrant>,
        _: &InstanceContext<'_>,
    ) -> anyhow::Result<OtelState> {
        Ok(OtelState {
            grant: Some(grant.clone()),
            ..OtelState::default()
        })
    }
}

impl OtelGrant {
    /// The host's tracer, logger and meter for a guest's scope, made the first time the
    /// guest uses it; `None` once the component has used [`MAX_SCOPES`] scopes and this is
    /// another (what it carries is dropped).
    fn scope(&self, scope: &types::InstrumentationScope) -> Option<ScopeHandles> {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let known = scopes
            .iter()
            .find(|s| s.name == scope.name && s.version == scope.version);
        if let Some(known) = known {
            return Some(known.handles.clone());
        }
        if scopes.len() >= MAX_SCOPES {
            return None;
        }
        let (name, version) = (scope.name.clone(), scope.version.clone());
        let sdk_scope: InstrumentationScope = convert::scope(scope.clone());
        let handles = ScopeHandles {
            tracer: self.telemetry.tracer_for(sdk_scope.clone()),
            logger: self.telemetry.logger_for(sdk_scope.clone()),
            meter: self.telemetry.meter_for(sdk_scope),
        };
        scopes.push(GuestScope {
            name,
            version,
            handles: handles.clone(),
        });
        Some(handles)
    }
}
