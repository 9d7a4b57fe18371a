//! The one store-data type: what one instance holds, capability by capability, and the
//! host's own accounting of it. Each capability reaches its part through its accessor
//! trait (`WasiView`, `WasiHttpView`, `KeyValueView`...); the resource table is shared by
//! all of them.

use crate::observe::ActiveInstance;
use wasmlens_config::{ConfigCtxView, ConfigState, ConfigView};
use wasmlens_engine::MemoryLimiter;
use wasmlens_keyvalue::{KeyValueCtxView, KeyValueState, KeyValueView};
use wasmlens_logging::{LoggingCtxView, LoggingState, LoggingView};
use wasmlens_otel::{OtelCtxView, OtelState, OtelView};
use wasmlens_outbound_http::OutboundHttpState;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) outbound_http: OutboundHttpState,
    pub(crate) keyvalue: KeyValueState,
    pub(crate) config: ConfigState,
    pub(crate) logging: LoggingState,
    pub(crate) otel: OtelState,
    /// The instance's memory, against its limit and in its component's gauges.
    pub(crate) memory: MemoryLimiter,
    /// Set once the instance exists; dropped with the store, however the guest ended.
    pub(crate) active: Option<ActiveInstance>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.outbound_http.view(&mut self.table)
    }
}

impl KeyValueView for HostState {
    fn keyvalue(&mut self) -> KeyValueCtxView<'_> {
        KeyValueCtxView {
            state: &self.keyvalue,
            table: &mut self.table,
        }
    }
}

impl ConfigView for HostState {
    fn config(&mut self) -> ConfigCtxView<'_> {
        ConfigCtxView(&self.config)
    }
}

impl LoggingView for HostState {
    fn logging(&mut self) -> LoggingCtxView<'_> {
        LoggingCtxView(&self.logging)
    }
}

impl OtelView for HostState {
    fn otel(&mut self) -> OtelCtxView<'_> {
        OtelCtxView(&mut self.otel)
    }
}
