//! A loaded wasi:http proxy component and one invocation of it.

use crate::outbound::{OutboundHooks, OutboundPolicy};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanId, TraceContextExt as _};
use std::path::Path;
use wasmlens_engine::{
    ComponentTelemetry, GuestEnv, GuestFailure, GuestState, HasGuestState, Limits, Runtime,
    component_names, load_exporting, record_failure,
};
use wasmlens_telemetry::names::{attr, trigger};
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
pub(crate) struct Invocation {
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
    pub(crate) limits: Limits,
    pub(crate) outbound: OutboundPolicy,
}

impl ProxyComponent {
    /// Loads the component at `path`, refusing one without `wasi:http/incoming-handler`.
    /// The whole wasi:cli world is linked too, so that guests made by componentize-py or
    /// componentize-js, which import it, instantiate.
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        id: &str,
        env: GuestEnv,
        limits: Limits,
        outbound: OutboundPolicy,
    ) -> anyhow::Result<Self> {
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
            trigger::HTTP,
            "wasi:http/incoming-handler.handle",
        );
        Ok(ProxyComponent {
            pre,
            telemetry,
            env,
            limits,
            outbound,
        })
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        self.pre.engine()
    }

    /// Instantiates the component and calls its handler for one request, each in its own
    /// span under the request's. Returns why the guest failed, if it did.
    pub(crate) async fn invoke(
        &self,
        telemetry: &Telemetry,
        instruments: &Instruments,
        invocation: Invocation,
    ) -> Option<GuestFailure> {
        let Invocation {
            mut store,
            request,
            response,
            parent,
            span_id,
        } = invocation;
        let parent = &parent;
        let (instantiation, coldstart) = self.telemetry.start_instantiation(telemetry, parent);
        let proxy = self
            .pre
            .instantiate_async(&mut store)
            .with_context(instantiation.clone())
            .await;
        let proxy = match proxy {
            Ok(proxy) => {
                instantiation.span().end();
                proxy
            }
            Err(err) => {
                let failure = GuestFailure::classify(&err, true);
                record_failure(&instantiation, &failure);
                instantiation.span().end();
                self.report(instruments, &failure, &err, &instantiation);
                return Some(failure);
            }
        };
        let invocation =
            self.telemetry
                .start_invocation(telemetry, parent, coldstart, Some(span_id));
        let result = proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, response)
            .with_context(invocation.clone())
            .await;
        let failure = result.err().map(|err| {
            let failure = GuestFailure::classify(&err, false);
            record_failure(&invocation, &failure);
            self.report(instruments, &failure, &err, &invocation);
            failure
        });
        if failure.is_none() {
            self.telemetry.count_invocation(instruments, true);
        }
        invocation.span().end();
        failure
    }

    fn report(
        &self,
        instruments: &Instruments,
        failure: &GuestFailure,
        err: &wasmtime::Error,
        cx: &Context,
    ) {
        self.telemetry.count_invocation(instruments, false);
        let _attached = cx.clone().attach();
        tracing::warn!(
            { attr::COMPONENT_ID } = &*self.telemetry.id,
            { attr::ERROR_TYPE } = failure.kind.as_str(),
            "request failed: {failure}"
        );
        tracing::debug!("{err:?}");
    }
}
