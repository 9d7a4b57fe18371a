//! The spans, metrics and events around instantiating and invoking one component.
//! Everything that does not change per invocation (the attribute sets above all) is
//! built once, when the component is loaded. Only [`crate::HostComponent::invoke`] calls
//! these, in the one order the contract describes.

use crate::state::HostState;
use opentelemetry::metrics::{BoundCounter, BoundGauge, BoundHistogram, BoundUpDownCounter};
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use wasmlens_engine::{FailureKind, GuestFailure, Limits};
use wasmlens_telemetry::names::{attr, outcome, span};
use wasmlens_telemetry::{ComponentGauges, SpanStart, Telemetry, events};
use wasmtime::Store;

/// A limit counts as approached at this share of it.
const WARNING_SHARE: f64 = 0.8;

/// What telemetry knows of one loaded component.
pub(crate) struct ComponentTelemetry {
    id: Arc<str>,
    telemetry: Arc<Telemetry>,
    gauges: Arc<ComponentGauges>,
    limits: Limits,
    instantiation_span_attrs: Vec<KeyValue>,
    invocation_span_attrs: Vec<KeyValue>,
    metrics: BoundMetrics,
    /// Whether the next instance is the process's first of this component.
    cold: AtomicBool,
}

/// The component's metrics, bound to its attribute sets once: a measurement is then a
/// direct write, with no hashing or lookup of the attributes.
struct BoundMetrics {
    invocations_ok: BoundCounter<u64>,
    invocations_error: BoundCounter<u64>,
    invocation_duration: BoundHistogram<f64>,
    execution_duration: BoundHistogram<f64>,
    instantiation_cold: BoundHistogram<f64>,
    instantiation_warm: BoundHistogram<f64>,
    wasmtime_instantiation: BoundHistogram<f64>,
    instances_created: BoundCounter<u64>,
    instances_active: BoundUpDownCounter<i64>,
    fuel_consumed: Option<BoundCounter<u64>>,
    fuel_remaining: Option<BoundGauge<u64>>,
}

/// How a component is invoked: the `faas.trigger` of its invocations and the export
/// they call (`function_name`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Invoked {
    pub trigger: &'static str,
    pub function_name: &'static str,
}

/// An instantiation under way: its span and clock.
pub(crate) struct Instantiation {
    pub cx: Context,
    started: Instant,
}

/// How an invocation ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome<'a> {
    /// The call returned; `ok` says whether that counts as a success (`outcome`).
    Returned { ok: bool },
    /// The guest failed during the call.
    Failed(&'a GuestFailure),
    /// Its instance could not be made (the instantiation's span reports why).
    NotInstantiated(&'a GuestFailure),
}

/// What one invocation used of its limits.
struct ResourcesUsed {
    /// Fuel consumed and remaining, where the engine meters it.
    fuel: Option<(u64, u64)>,
    /// The instance's peak linear memory, in bytes.
    memory_peak: u64,
}

/// An invocation under way: its span and clock. One that is dropped before it ends (its
/// workload stopped it) ends then, saying why.
pub(crate) struct Invocation<'a> {
    component: &'a ComponentTelemetry,
    pub cx: Context,
    started: Instant,
    /// Why the workload is stopping, once it is.
    stopping: &'a OnceLock<&'static str>,
    ended: bool,
}

impl Drop for Invocation<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.component.end_abandoned(self);
        }
    }
}

/// Holds one place in `wasmtime.instances.active` for as long as its instance's store
/// lives: the store owns it, so it is given back however the guest ends (a return, a
/// trap, a timeout, or a panic unwinding the task).
pub(crate) struct ActiveInstance(BoundUpDownCounter<i64>);

impl Drop for ActiveInstance {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

impl ComponentTelemetry {
    /// `id` names the component in its workload; `name` is its file name; `invoked` says
    /// how it is called; `meters_fuel`, whether the engine counts fuel. Its metrics are
    /// bound to their attribute sets here.
    pub fn new(
        id: Arc<str>,
        name: &str,
        invoked: Invoked,
        meters_fuel: bool,
        telemetry: Arc<Telemetry>,
        limits: Limits,
    ) -> Self {
        let Invoked {
            trigger,
            function_name,
        } = invoked;
        let instruments = telemetry.instruments();
        // Shared, not copied: cloning these attributes costs a reference count.
        let id_value = || Value::from(StringValue::from(id.clone()));
        let name_value = Value::from(StringValue::from(Arc::<str>::from(name)));
        let counted = |result: &'static str| {
            instruments.component_invocations.bind(&[
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::FAAS_TRIGGER, trigger),
                KeyValue::new(attr::OUTCOME, result),
            ])
        };
        let instantiation = |cold: bool| {
            instruments.component_instantiation_duration.bind(&[
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::IS_COLDSTART, cold),
            ])
        };
        let wasmtime_id = [KeyValue::new(attr::WASMTIME_COMPONENT_ID, id_value())];
        let metrics = BoundMetrics {
            invocations_ok: counted(outcome::OK),
            invocations_error: counted(outcome::ERROR),
            invocation_duration: instruments.component_invocation_duration.bind(&[
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::FAAS_TRIGGER, trigger),
            ]),
            execution_duration: instruments.execution_duration.bind(&[
                KeyValue::new(attr::WASMTIME_COMPONENT_ID, id_value()),
                KeyValue::new(attr::OPERATION, function_name),
            ]),
            instantiation_cold: instantiation(true),
            instantiation_warm: instantiation(false),
            wasmtime_instantiation: instruments.instantiation_duration.bind(&[
                KeyValue::new(attr::WASMTIME_COMPONENT_ID, id_value()),
                KeyValue::new(attr::WASMTIME_COMPONENT_NAME, name_value.clone()),
            ]),
            instances_created: instruments.instances_created.bind(&wasmtime_id),
            instances_active: instruments.instances_active.bind(&wasmtime_id),
            // A bound series is exported from the start (at zero): fuel only where it is
            // metered, the remaining fuel only where there is a budget.
            fuel_consumed: meters_fuel.then(|| instruments.fuel_consumed.bind(&wasmtime_id)),
            fuel_remaining: limits
                .fuel
                .map(|_| instruments.fuel_remaining.bind(&wasmtime_id)),
        };
        let gauges = instruments.register_component(&id, limits.max_memory.map(|m| m as u64));
        let cold = AtomicBool::new(true);
        ComponentTelemetry {
            instantiation_span_attrs: vec![
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::WASMTIME_COMPONENT_ID, id_value()),
                KeyValue::new(attr::WASMTIME_COMPONENT_NAME, name_value.clone()),
            ],
            invocation_span_attrs: vec![
                KeyValue::new(attr::COMPONENT_ID, id_value()),
                KeyValue::new(attr::FUNCTION_NAME, function_name),
                KeyValue::new(attr::FAAS_TRIGGER, trigger),
            ],
            metrics,
            cold,
            telemetry,
            gauges,
            limits,
            id,
        }
    }

    /// Its id in the workload (`component_id`).
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The gauges this component's instances count their memory towards.
    pub fn gauges(&self) -> Arc<ComponentGauges> {
        self.gauges.clone()
    }

    /// Whether the next instance is the process's first of this component; the
    /// instances after it are not.
    pub fn take_coldstart(&self) -> bool {
        self.cold.swap(false, Ordering::Relaxed)
    }

    /// Starts `ComponentInstantiation` under `parent`.
    pub fn start_instantiation(&self, parent: &Context, coldstart: bool) -> Instantiation {
        let start = SpanStart::new(span::COMPONENT_INSTANTIATION, SpanKind::Internal);
        let span = self.telemetry.host_tracer().start(parent, start, || {
            let mut attrs = Vec::with_capacity(self.instantiation_span_attrs.len() + 2);
            attrs.extend_from_slice(&self.instantiation_span_attrs);
            attrs.push(KeyValue::new(attr::IS_COLDSTART, coldstart));
            attrs.push(KeyValue::new(attr::FAAS_COLDSTART, coldstart));
            attrs
        });
        Instantiation {
            cx: parent.with_span(span),
            started: Instant::now(),
        }
    }

    /// Ends `ComponentInstantiation`: the instance in `store` exists. It counts as
    /// created, and as active until its store is dropped.
    pub fn instantiated(
        &self,
        instantiation: Instantiation,
        coldstart: bool,
        store: &mut Store<HostState>,
    ) {
        self.record_instantiation(&instantiation, coldstart);
        let metrics = &self.metrics;
        metrics.instances_created.add(1);
        metrics.instances_active.add(1);
        store.data_mut().active = Some(ActiveInstance(metrics.instances_active.clone()));
        instantiation.cx.span().end();
    }

    /// Ends `ComponentInstantiation` with the failure, reported on its span.
    pub fn instantiation_failed(
        &self,
        instantiation: Instantiation,
        coldstart: bool,
        failure: &GuestFailure,
    ) {
        self.record_instantiation(&instantiation, coldstart);
        self.report_failure(&instantiation.cx, failure);
        instantiation.cx.span().end();
    }

    fn record_instantiation(&self, instantiation: &Instantiation, coldstart: bool) {
        let elapsed = instantiation.started.elapsed().as_secs_f64();
        let metrics = &self.metrics;
        metrics.wasmtime_instantiation.record(elapsed);
        match coldstart {
            true => metrics.instantiation_cold.record(elapsed),
            false => metrics.instantiation_warm.record(elapsed),
        }
    }

    /// Starts `ComponentInvocation` under `parent`: kind server when it is the entry into
    /// this process (a CLI run, maybe continuing a remote trace), internal inside a request.
    /// `span_id`, if given, is the id the span gets (see `wasmlens_telemetry::ids`).
    /// `stopping` says why, if the invocation is dropped before it ends.
    pub fn start_invocation<'a>(
        &'a self,
        parent: &Context,
        coldstart: bool,
        span_id: Option<SpanId>,
        stopping: &'a OnceLock<&'static str>,
    ) -> Invocation<'a> {
        // The entry into this process (no local parent) is a server span, as HttpRequest is.
        let span = parent.span();
        let local_parent = parent.has_active_span() && !span.span_context().is_remote();
        let kind = if local_parent {
            SpanKind::Internal
        } else {
            SpanKind::Server
        };
        // `faas.invocation_id` is the span's id, drawn here so that the span starts with
        // all its attributes.
        let span_id = span_id.unwrap_or_else(wasmlens_telemetry::ids::new_span_id);
        let start = SpanStart::new(span::COMPONENT_INVOCATION, kind).with_span_id(span_id);
        let span = self.telemetry.host_tracer().start(parent, start, || {
            // With room for the four `end_invocation` may set (fuel, peak memory,
            // duration, error type), which would otherwise reallocate them.
            let mut attrs = Vec::with_capacity(self.invocation_span_attrs.len() + 2 + 4);
            attrs.extend_from_slice(&self.invocation_span_attrs);
            attrs.push(KeyValue::new(attr::FAAS_COLDSTART, coldstart));
            let invocation_id = wasmlens_telemetry::ids::span_id_hex(span_id);
            attrs.push(KeyValue::new(attr::FAAS_INVOCATION_ID, invocation_id));
            attrs
        });
        let cx = parent.with_span(span);
        Invocation {
            component: self,
            cx,
            started: Instant::now(),
            stopping,
            ended: false,
        }
    }

    /// Ends `ComponentInvocation` with its resource summary (fuel, peak memory,
    /// duration), the 80 % warnings, and the failure if there was one; counts it as ok
    /// or not and records its duration and fuel. Without a `store` (its instance could
    /// not be made) there is no resource summary.
    pub fn end_invocation(
        &self,
        mut invocation: Invocation<'_>,
        store: Option<&mut Store<HostState>>,
        outcome: Outcome<'_>,
    ) {
        invocation.ended = true;
        let seconds = invocation.started.elapsed().as_secs_f64();
        let cx = &invocation.cx;
        let failure = match outcome {
            Outcome::Returned { .. } => None,
            Outcome::Failed(failure) | Outcome::NotInstantiated(failure) => Some(failure),
        };
        let used = store.map(|store| self.resources_used(store));
        if let Some(used) = &used {
            self.record_resources(cx, used, failure);
        }
        let span = cx.span();
        if span.is_recording() {
            if let Some(used) = &used {
                if let Some((consumed, _)) = used.fuel {
                    span.set_attribute(KeyValue::new(attr::FUEL_CONSUMED, consumed as i64));
                }
                let peak = used.memory_peak as i64;
                span.set_attribute(KeyValue::new(attr::MEMORY_PEAK_BYTES, peak));
            }
            span.set_attribute(KeyValue::new(attr::DURATION_MS, seconds * 1000.0));
        }
        match outcome {
            Outcome::Returned { ok } => self.count_invocation(ok),
            Outcome::Failed(failure) => {
                self.report_failure(cx, failure);
                self.count_invocation(false);
            }
            // The instantiation's span carries the event; the invocation's says so too.
            Outcome::NotInstantiated(failure) => {
                mark_failed(cx, failure);
                self.count_invocation(false);
            }
        }
        self.metrics.invocation_duration.record(seconds);
        self.metrics.execution_duration.record(seconds);
        span.end();
    }

    /// Ends an invocation dropped before it ended, because its workload stopped while it
    /// ran (a command interrupted by SIGINT, say): status ERROR, saying so, and counted
    /// as an invocation that did not succeed. It is not a failure of the guest: no
    /// `error.type`, no `component failed` event.
    fn end_abandoned(&self, invocation: &Invocation<'_>) {
        let seconds = invocation.started.elapsed().as_secs_f64();
        let span = invocation.cx.span();
        if span.is_recording() {
            let why = match invocation.stopping.get() {
                Some(reason) => format!("stopped by {reason} before it ended"),
                None => "abandoned before it ended".to_owned(),
            };
            span.set_attribute(KeyValue::new(attr::DURATION_MS, seconds * 1000.0));
            span.set_status(Status::error(why));
        }
        self.count_invocation(false);
        self.metrics.invocation_duration.record(seconds);
        self.metrics.execution_duration.record(seconds);
        span.end();
    }

    /// What the invocation in `store` used: fuel (consumed, remaining), where the engine
    /// meters it, and its instance's peak memory.
    fn resources_used(&self, store: &mut Store<HostState>) -> ResourcesUsed {
        // Fuel: what the store was given (the budget, or all there is) minus what is left.
        let fuel = store.get_fuel().ok().map(|remaining| {
            let given = self.limits.fuel.unwrap_or(u64::MAX);
            (given.saturating_sub(remaining), remaining)
        });
        ResourcesUsed {
            fuel,
            memory_peak: store.data().memory.peak() as u64,
        }
    }

    /// Records the fuel metrics, and warns of a limit the invocation came near without
    /// failing on it.
    fn record_resources(&self, cx: &Context, used: &ResourcesUsed, failure: Option<&GuestFailure>) {
        let failed_on = |kind: FailureKind| failure.is_some_and(|f| f.kind == kind);
        let near = |used: u64, limit: u64| used as f64 >= limit as f64 * WARNING_SHARE;
        if let Some((consumed, remaining)) = used.fuel {
            if let Some(counter) = &self.metrics.fuel_consumed {
                counter.add(consumed);
            }
            if let Some(budget) = self.limits.fuel {
                if let Some(gauge) = &self.metrics.fuel_remaining {
                    gauge.record(remaining);
                }
                if near(consumed, budget) && !failed_on(FailureKind::FuelExhausted) {
                    let fuel = events::Limit::Fuel;
                    events::approaching_limit(
                        &self.telemetry,
                        cx,
                        &self.id,
                        fuel,
                        consumed,
                        budget,
                    );
                }
            }
        }
        let peak = used.memory_peak;
        if let Some(limit) = self.limits.max_memory.map(|m| m as u64)
            && near(peak, limit)
            && !failed_on(FailureKind::MemoryLimitExceeded)
        {
            let memory = events::Limit::Memory;
            events::approaching_limit(&self.telemetry, cx, &self.id, memory, peak, limit);
        }
    }

    /// Counts one invocation by its outcome.
    pub fn count_invocation(&self, ok: bool) {
        match ok {
            true => self.metrics.invocations_ok.add(1),
            false => self.metrics.invocations_error.add(1),
        }
    }

    /// Marks the span in `cx` as failed (`error.type`, status ERROR) and emits the error
    /// event, which is also a log record.
    fn report_failure(&self, cx: &Context, failure: &GuestFailure) {
        mark_failed(cx, failure);
        events::failed(
            &self.telemetry,
            cx,
            events::Failed::Component(&self.id),
            failure.kind.as_str(),
            &failure.to_string(),
        );
    }
}

impl Drop for ComponentTelemetry {
    fn drop(&mut self) {
        self.gauges.unloaded();
    }
}

/// Sets `error.type` and status ERROR on the span in `cx`, without an event (for a span
/// whose child already carries it).
pub(crate) fn mark_failed(cx: &Context, failure: &GuestFailure) {
    let span = cx.span();
    if span.is_recording() {
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, failure.kind.as_str()));
        span.set_status(Status::error(failure.to_string()));
    }
}
