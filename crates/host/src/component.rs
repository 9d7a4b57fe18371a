//! A loaded component, and the one way to call into it: [`HostComponent::invoke`] makes
//! a fresh instance and calls it, with the whole protocol of its telemetry, so that no
//! trigger can apply half of it.

use crate::host::Shared;
use crate::observe::{ComponentTelemetry, Invocation, Outcome};
use crate::plugins::BoundPlugins;
use crate::state::HostState;
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use std::sync::Arc;
use wasmlens_engine::{
    Capability, FailureKind, GuestFailure, InstanceContext, Limits, MemoryLimiter, limited_store,
};
use wasmlens_outbound_http::OutboundGrant;
use wasmlens_telemetry::ids;
use wasmlens_wasi::WasiGrant;
use wasmtime::Store;
use wasmtime::component::{InstancePre, ResourceTable};

/// What a trigger calls: the world a component must export, and how its typed instance
/// is made. The HTTP trigger's is the wasi:http proxy, the command trigger's wasi:cli's
/// command.
pub trait World: Send + Sync + 'static {
    /// The interface the component must export, matched without its version
    /// (`wasi:http/incoming-handler`).
    const EXPORT: &'static str;
    /// The export an invocation calls (`function_name`).
    const FUNCTION_NAME: &'static str;
    /// What triggers an invocation (`faas.trigger`).
    const TRIGGER: &'static str;
    /// The component pre-instantiated, with its exports looked up.
    type Pre: Send + Sync + 'static;
    /// One instance's typed exports.
    type Instance: Send + 'static;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Instance>> + Send;
}

/// What a call into a guest returned, and whether it counts as a success (`outcome`).
pub trait CallOutcome {
    fn is_ok(&self) -> bool;
}

impl CallOutcome for () {
    fn is_ok(&self) -> bool {
        true
    }
}

/// Where an invocation's spans sit in its trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// The invocation is the entry (a command run): `ComponentInvocation` under the
    /// parent, and the instance made inside it.
    InstanceInsideInvocation,
    /// Inside a request's span: the instance is made, then invoked, side by side under
    /// the parent.
    InstanceBeforeInvocation,
}

/// A component compiled and pre-instantiated once, with what it is granted.
pub struct HostComponent<W: World> {
    pub(crate) pre: W::Pre,
    /// Keeps the engine ticking, and reaches the capabilities.
    pub(crate) shared: Arc<Shared>,
    pub(crate) telemetry: ComponentTelemetry,
    pub(crate) limits: Limits,
    pub(crate) wasi: WasiGrant,
    pub(crate) outbound_http: OutboundGrant,
    pub(crate) plugins: BoundPlugins,
}

impl<W: World> HostComponent<W> {
    /// Its id in the workload (`component_id`).
    pub fn id(&self) -> &Arc<str> {
        self.telemetry.id()
    }

    /// Makes a fresh instance under `parent` and calls `call` on it, with everything the
    /// contract records around that: `ComponentInstantiation` and `ComponentInvocation`
    /// (nested as `nesting` says), their metrics, the resource summary, the warnings, and
    /// the failure classified and reported. The guest's `TRACEPARENT` names its
    /// invocation. An error `call` returns (a trap, a limit) is the guest's failure.
    pub async fn invoke<R: CallOutcome>(
        &self,
        parent: &Context,
        nesting: Nesting,
        call: impl AsyncFnOnce(&mut Store<HostState>, W::Instance) -> wasmtime::Result<R>,
    ) -> Result<R, GuestFailure> {
        let telemetry = &self.telemetry;
        let coldstart = telemetry.take_coldstart();
        let stopping = &self.shared.stopping;
        match nesting {
            Nesting::InstanceInsideInvocation => {
                let invocation = telemetry.start_invocation(parent, coldstart, None, stopping);
                let span = invocation.cx.span().span_context().clone();
                match self.instantiate(&invocation.cx, coldstart, &span).await {
                    Ok((store, instance)) => self.call(invocation, store, instance, call).await,
                    Err((failure, mut store)) => {
                        let outcome = Outcome::NotInstantiated(&failure);
                        telemetry.end_invocation(invocation, store.as_mut(), outcome);
                        Err(failure)
                    }
                }
            }
            Nesting::InstanceBeforeInvocation => {
                // The guest's TRACEPARENT names its ComponentInvocation span, which starts
                // only after instantiation: its id is drawn now and given to the span then.
                let span_id = ids::new_span_id();
                let span = parent.span();
                let request = span.span_context();
                let invocation_span = SpanContext::new(
                    request.trace_id(),
                    span_id,
                    request.trace_flags(),
                    false,
                    request.trace_state().clone(),
                );
                match self.instantiate(parent, coldstart, &invocation_span).await {
                    Ok((store, instance)) => {
                        let invocation =
                            telemetry.start_invocation(parent, coldstart, Some(span_id), stopping);
                        self.call(invocation, store, instance, call).await
                    }
                    Err((failure, _)) => {
                        telemetry.count_invocation(false);
                        Err(failure)
                    }
                }
            }
        }
    }

    /// Makes one instance under `parent` and drops it, so that a component that cannot
    /// be instantiated (its start function traps, say) is found when its workload starts
    /// rather than on every request. It takes the process's cold start of the component.
    pub async fn try_instantiate(&self, parent: &Context) -> Result<(), GuestFailure> {
        let coldstart = self.telemetry.take_coldstart();
        let no_invocation = SpanContext::empty_context();
        match self.instantiate(parent, coldstart, &no_invocation).await {
            Ok(_) => Ok(()),
            Err((failure, _)) => Err(failure),
        }
    }

    /// A new instance in its own store, under `parent`, for the invocation `invocation`.
    /// A failure comes with the store, if there was one.
    async fn instantiate(
        &self,
        parent: &Context,
        coldstart: bool,
        invocation: &SpanContext,
    ) -> Result<(Store<HostState>, W::Instance), (GuestFailure, Option<Store<HostState>>)> {
        let telemetry = &self.telemetry;
        let store = self.new_store(invocation);
        let instantiation = telemetry.start_instantiation(parent, coldstart);
        let mut store = match store {
            Ok(store) => store,
            Err(err) => {
                let failure = GuestFailure {
                    kind: FailureKind::InstantiationFailure,
                    message: format!("cannot prepare the instance: {err:#}"),
                };
                telemetry.instantiation_failed(instantiation, coldstart, &failure);
                return Err((failure, None));
            }
        };
        let instance = W::instantiate(&self.pre, &mut store)
            .with_context(instantiation.cx.clone())
            .await;
        match instance {
            Ok(instance) => {
                telemetry.instantiated(instantiation, coldstart, &mut store);
                Ok((store, instance))
            }
            Err(err) => {
                tracing::debug!("instantiation failed: {err:?}");
                let failure = GuestFailure::classify(&err, true);
                telemetry.instantiation_failed(instantiation, coldstart, &failure);
                Err((failure, Some(store)))
            }
        }
    }

    async fn call<R: CallOutcome>(
        &self,
        invocation: Invocation<'_>,
        mut store: Store<HostState>,
        instance: W::Instance,
        call: impl AsyncFnOnce(&mut Store<HostState>, W::Instance) -> wasmtime::Result<R>,
    ) -> Result<R, GuestFailure> {
        let returned = call(&mut store, instance)
            .with_context(invocation.cx.clone())
            .await;
        let returned = returned.map_err(|err| {
            tracing::debug!("guest failure: {err:?}");
            GuestFailure::classify(&err, false)
        });
        let outcome = match &returned {
            Ok(returned) => Outcome::Returned {
                ok: returned.is_ok(),
            },
            Err(failure) => Outcome::Failed(failure),
        };
        self.telemetry
            .end_invocation(invocation, Some(&mut store), outcome);
        returned
    }

    /// A store holding what each capability gives one instance, with the limits applied.
    fn new_store(&self, invocation: &SpanContext) -> anyhow::Result<Store<HostState>> {
        let capabilities = &self.shared.capabilities;
        let instance = InstanceContext { invocation };
        let plugins = capabilities
            .plugins
            .instance_states(&self.plugins, &instance)?;
        let state = HostState {
            table: ResourceTable::new(),
            wasi: Capability::<HostState>::instance_state(
                &capabilities.wasi,
                &self.wasi,
                &instance,
            )?,
            outbound_http: Capability::<HostState>::instance_state(
                &capabilities.outbound_http,
                &self.outbound_http,
                &instance,
            )?,
            keyvalue: plugins.keyvalue,
            config: plugins.config,
            logging: plugins.logging,
            otel: plugins.otel,
            memory: MemoryLimiter::new(self.limits.max_memory, self.telemetry.gauges()),
            active: None,
        };
        let engine = self.shared.runtime.engine();
        limited_store(engine, state, &self.limits, |state| &mut state.memory)
    }
}
