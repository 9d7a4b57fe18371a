//! The outgoing HTTP capability: wasi:http's `outgoing-handler` for guests, limited to
//! the hosts a component is allowed to reach, with an `OutgoingHttpRequest` client span
//! for each request and the trace context sent only where the component allows. By
//! default a guest may reach no host. It reaches its state in a store through
//! wasmtime-wasi-http's `WasiHttpView` (and needs WASI's streams linked beside it).

mod hooks;
mod policy;

pub use hooks::OutboundHooks;
pub use policy::{Denied, HostPattern, OutboundPolicy};

use std::sync::Arc;
use wasmlens_engine::{Capability, ComponentContext, InstanceContext};
use wasmlens_telemetry::Telemetry;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The capability. It holds nothing itself: everything is per component.
#[derive(Debug, Default)]
pub struct OutboundHttp;

/// A component's policy, with the telemetry its requests are traced on.
pub struct OutboundGrant {
    policy: OutboundPolicy,
    telemetry: Arc<Telemetry>,
}

/// What one instance holds: wasi:http's context, and the hooks that apply the policy
/// and trace each request.
pub struct OutboundHttpState {
    ctx: WasiHttpCtx,
    hooks: OutboundHooks,
}

impl OutboundHttpState {
    /// The view wasmtime-wasi-http works through, sharing the store's resource table.
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            ctx: &mut self.ctx,
            table,
            hooks: &mut self.hooks,
        }
    }
}

impl<T: WasiHttpView + 'static> Capability<T> for OutboundHttp {
    type Config = OutboundPolicy;
    type Bound = OutboundGrant;
    type InstanceState = OutboundHttpState;

    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        Ok(())
    }

    async fn bind(
        &self,
        policy: &OutboundPolicy,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<OutboundGrant> {
        Ok(OutboundGrant {
            policy: policy.clone(),
            telemetry: component.telemetry.clone(),
        })
    }

    fn instance_state(
        &self,
        grant: &OutboundGrant,
        _: &InstanceContext<'_>,
    ) -> anyhow::Result<OutboundHttpState> {
        Ok(OutboundHttpState {
            ctx: WasiHttpCtx::new(),
            hooks: OutboundHooks::new(grant.policy.clone(), grant.telemetry.clone()),
        })
    }
}
