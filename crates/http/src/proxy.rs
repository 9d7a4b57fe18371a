//! A loaded wasi:http proxy component and one invocation of it.

use crate::outbound::{OutboundHooks, OutboundPolicy};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanId;
use std::path::Path;
use std::sync::Arc;
use wasmlens_engine::{
    ComponentTelemetry, GuestEnv, GuestFailure, GuestState, HasGuestState, Invoked, Limits,
    Runtime, component_names, load_exporting,
};
use wasmlens_telemetry::names::trigger;
use wasmlens_telemetry::{Instruments, Telemetry};
use wasmtime::Store;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Store data of one proxy instance.
pub struct ProxyState {
    guest: GuestState,
    http: WasiHttpCtx,
    outbound: OutboundHooks,
}

impl ProxyState {
    pub fn new(guest: GuestState, outbound: OutboundHooks) -> Self {
        ProxyState {
            guest,
            http: WasiHttpCtx::new(),
            outbound,
        }
    }
}

impl WasiView for ProxyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.guest.ctx()
    }
}

impl WasiHttpView for ProxyState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.guest.table,
            hooks: &mut self.outbound,
        }
    }
}

impl HasGuestState for ProxyState {
    fn guest_state(&mut self) -> &mut GuestState {
        &mut self.guest
    }
}

/// One request's guest call: its store, the request and response resources, the
/// `HttpRequest` context, and the id its `ComponentInvocation` span is to have (the
/// guest's `TRACEPARENT` names it).
pub(crate) struct Request {
    pub store: Store<ProxyState>,
    pub request: Resource<HostIncomingRequest>,
    pub response: Resource<HostResponseOutparam>,
    pub parent: Context,
    pub span_id: SpanId,
}

/// A proxy component compiled and pre-instantiated once, with what it is granted.
pub struct ProxyComponent {
    pre: ProxyPre<ProxyState>,
    pub(crate) telemetry: ComponentTelemetry,
    pub(crate) env: GuestEnv,
    pub(crate) outbound: OutboundPolicy,
}

/// Where a proxy component is loaded from and what it is granted.
pub struct ProxySpec<'a> {
    pub path: &'a Path,
    /// Its id in the workload (`component_id`).
    pub id: &'a str,
    pub env: GuestEnv,
    pub limits: Limits,
    pub outbound: OutboundPolicy,
}

impl ProxyComponent {
    /// Loads the component at `path`, refusing one without `wasi:http/incoming-handler`.
    /// The whole wasi:cli world is linked too, so that guests made by componentize-py or
    /// componentize-js, which import it, instantiate.
    pub fn load(
        runtime: &Runtime,
        spec: ProxySpec<'_>,
        telemetry: Arc<Telemetry>,
        instruments: &Instruments,
    ) -> anyhow::Result<Self> {
        let ProxySpec {
            path,
            id,
            env,
            limits,
            outbound,
        } = spec;
        let engine = runtime.engine();
        let component = load_exporting(
            engine,
            path,
            "wasi:http/incoming-handler",
            "`wasmlens serve` serves wasi:http proxies; run a wasi:cli command with `wasmlens run`",
        )?;
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProxyPre::new)
            .map_err(|err| anyhow::anyhow!("{} cannot be served: {err:#}", path.display()))?;
        let (_, name) = component_names(path);
        let telemetry = ComponentTelemetry::new(
            id,
            &name,
            Invoked {
                trigger: trigger::HTTP,
                function_name: "wasi:http/incoming-handler.handle",
            },
            runtime,
            telemetry,
            instruments,
            limits,
        );
        Ok(ProxyComponent {
            pre,
            telemetry,
            env,
            outbound,
        })
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        self.pre.engine()
    }

    pub fn limits(&self) -> &Limits {
        self.telemetry.limits()
    }

    /// Instantiates the component and calls its handler for one request, each in its own
    /// span under the request's. Returns why the guest failed, if it did.
    pub(crate) async fn invoke(&self, request: Request) -> Option<GuestFailure> {
        let Request {
            mut store,
            request,
            response,
            parent,
            span_id,
        } = request;
        let instantiation = self.telemetry.start_instantiation(&parent);
        let coldstart = instantiation.coldstart;
        let proxy = self
            .pre
            .instantiate_async(&mut store)
            .with_context(instantiation.cx.clone())
            .await;
        let proxy = match self
            .telemetry
            .end_instantiation(instantiation, &mut store, proxy)
        {
            Ok(proxy) => proxy,
            Err(failure) => {
                self.telemetry.count_invocation(false);
                return Some(failure);
            }
        };
        let invocation = self
            .telemetry
            .start_invocation(&parent, coldstart, Some(span_id));
        let result = proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, response)
            .with_context(invocation.cx.clone())
            .await;
        let failure = result.err().map(|err| {
            tracing::debug!("guest failure: {err:?}");
            GuestFailure::classify(&err, false)
        });
        self.telemetry
            .end_invocation(invocation, &mut store, failure.as_ref(), failure.is_none());
        failure
    }
}
