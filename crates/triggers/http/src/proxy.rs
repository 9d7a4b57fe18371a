//! The wasi:http proxy world: a component that exports `wasi:http/incoming-handler`.

use wasmlens_host::{HostComponent, HostState, World};
use wasmlens_telemetry::names::{function, trigger};
use wasmtime::Store;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

pub struct HttpProxy;

impl World for HttpProxy {
    const EXPORT: &'static str = "wasi:http/incoming-handler";
    const FUNCTION_NAME: &'static str = function::HTTP_HANDLE;
    const TRIGGER: &'static str = trigger::HTTP;
    type Pre = ProxyPre<HostState>;
    type Instance = Proxy;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        ProxyPre::new(pre)
    }

    async fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Instance> {
        pre.instantiate_async(store).await
    }
}

/// A proxy component, loaded.
pub type ProxyComponent = HostComponent<HttpProxy>;
