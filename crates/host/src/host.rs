//! The host: one engine, the capabilities composed and linked once, and the telemetry
//! every component is observed with. It binds a component's grants, then loads it.

use crate::component::{HostComponent, World};
use crate::observe::{ComponentTelemetry, Invoked};
use crate::plugins::Plugins;
use crate::state::HostState;
use opentelemetry::Context;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use wasmlens_config::ConfigValues;
use wasmlens_engine::{
    Capability, ComponentContext, Limits, Runtime, RuntimeOptions, component_names, load_exporting,
};
use wasmlens_keyvalue::KeyValueConfig;
use wasmlens_outbound_http::{OutboundGrant, OutboundHttp, OutboundPolicy};
use wasmlens_telemetry::Telemetry;
use wasmlens_wasi::{Wasi, WasiConfig, WasiGrant};
use wasmtime::component::Linker;

/// What every component is given. A new one adds: a field here and in [`Grants`], its
/// state to [`HostState`] with its accessor trait, and one line in each of [`Host::new`]
/// (link), [`Host::bind`], `HostComponent::new_store` and [`Host::shutdown`]. Plugins,
/// given only to the components that import them, are in [`Plugins`].
pub(crate) struct Capabilities {
    pub wasi: Wasi,
    pub outbound_http: OutboundHttp,
    pub plugins: Plugins,
}

/// What a component is granted, capability by capability. By default nothing (and a
/// component that imports key-value gets a memory store).
#[derive(Clone, Debug, Default)]
pub struct Grants {
    pub wasi: WasiConfig,
    pub outbound_http: OutboundPolicy,
    /// Its key-value stores (`--keyvalue`, `[component.keyvalue]`).
    pub keyvalue: KeyValueConfig,
    /// Its configuration values (`--config`, `[component.config]`).
    pub config: ConfigValues,
}

/// What the host's components share.
pub(crate) struct Shared {
    pub runtime: Runtime,
    pub telemetry: Arc<Telemetry>,
    /// The workload's id (`workload_id`).
    workload_id: String,
    pub capabilities: Capabilities,
    /// Every capability's interfaces, linked once for all components.
    linker: Linker<HostState>,
    /// Why the workload is stopping, once it is: what an invocation dropped from then on
    /// says as it ends.
    pub stopping: OnceLock<&'static str>,
}

/// The host of one workload's components.
pub struct Host {
    shared: Arc<Shared>,
}

/// A component whose grants were checked, ready to be loaded.
pub struct BoundComponent {
    id: Arc<str>,
    source: PathBuf,
    limits: Limits,
    wasi: WasiGrant,
    outbound_http: OutboundGrant,
    /// The plugins' configuration, bound once the component's imports are known.
    plugins: Grants,
}

impl Host {
    /// An engine set up as `options` say, with every capability linked, for the workload
    /// `workload_id`.
    pub fn new(
        telemetry: Arc<Telemetry>,
        workload_id: &str,
        options: &RuntimeOptions,
    ) -> anyhow::Result<Self> {
        let runtime = Runtime::new(options)?;
        let capabilities = Capabilities {
            wasi: Wasi,
            outbound_http: OutboundHttp,
            plugins: Plugins::default(),
        };
        let mut linker = Linker::new(runtime.engine());
        // WASI first: wasi:http's types use its streams.
        Capability::<HostState>::link(&capabilities.wasi, &mut linker)?;
        Capability::<HostState>::link(&capabilities.outbound_http, &mut linker)?;
        capabilities.plugins.link(&mut linker)?;
        let shared = Shared {
            runtime,
            telemetry,
            workload_id: workload_id.to_owned(),
            capabilities,
            linker,
            stopping: OnceLock::new(),
        };
        Ok(Host {
            shared: Arc::new(shared),
        })
    }

    fn component_context<'a>(&'a self, id: &'a Arc<str>, source: &'a Path) -> ComponentContext<'a> {
        ComponentContext {
            workload_id: &self.shared.workload_id,
            id,
            source,
            telemetry: &self.shared.telemetry,
        }
    }

    /// Checks what the component `id` from `source` is granted, capability by capability
    /// (a directory that cannot be opened, a key-value store's missing folder, say). It
    /// compiles nothing, so a workload checks all its components before it compiles any.
    pub async fn bind(
        &self,
        id: &str,
        source: &Path,
        limits: Limits,
        grants: &Grants,
    ) -> anyhow::Result<BoundComponent> {
        let id: Arc<str> = id.into();
        let capabilities = &self.shared.capabilities;
        let component = self.component_context(&id, source);
        capabilities.plugins.check(grants)?;
        let wasi = Capability::<HostState>::bind(&capabilities.wasi, &grants.wasi, &component);
        let outbound_http = Capability::<HostState>::bind(
            &capabilities.outbound_http,
            &grants.outbound_http,
            &component,
        );
        Ok(BoundComponent {
            wasi: wasi.await?,
            outbound_http: outbound_http.await?,
            plugins: grants.clone(),
            source: source.to_owned(),
            limits,
            id,
        })
    }

    /// Compiles the component (or takes it from the cache), binds to it the plugins it
    /// imports (in `PluginBind` spans under `parent`; a failure is a
    /// [`crate::PluginBindFailed`]), and pre-instantiates it for `W`. A component that
    /// does not export `W::EXPORT` is refused with what it does export and `hint`, which
    /// says what to do instead.
    pub async fn load<W: World>(
        &self,
        component: BoundComponent,
        hint: &str,
        parent: &Context,
    ) -> anyhow::Result<HostComponent<W>> {
        let shared = &self.shared;
        let BoundComponent {
            id,
            source,
            limits,
            wasi,
            outbound_http,
            plugins: plugins_config,
        } = component;
        let engine = shared.runtime.engine();
        let compiled = load_exporting(engine, &source, W::EXPORT, hint)?;
        let context = self.component_context(&id, &source);
        let plugins = &shared.capabilities.plugins;
        let plugins = plugins.bind(engine, &compiled, &plugins_config, &context, parent);
        let plugins = plugins.await?;
        let pre = shared
            .linker
            .instantiate_pre(&compiled)
            .and_then(W::pre)
            .map_err(|err| {
                anyhow::anyhow!("{} cannot be instantiated: {err:#}", source.display())
            })?;
        let (_, name) = component_names(&source);
        let invoked = Invoked {
            trigger: W::TRIGGER,
            function_name: W::FUNCTION_NAME,
        };
        let telemetry = ComponentTelemetry::new(
            id,
            &name,
            invoked,
            shared.runtime.meters_fuel(),
            shared.telemetry.clone(),
            limits,
        );
        Ok(HostComponent {
            pre,
            shared: shared.clone(),
            telemetry,
            limits,
            wasi,
            outbound_http,
            plugins,
        })
    }

    /// The workload is stopping for `reason` (`SIGINT`, say): an invocation that is
    /// dropped from now on, before it ends, ends saying so. The first reason counts.
    pub fn stopping(&self, reason: &'static str) {
        let _ = self.shared.stopping.set(reason);
    }

    /// The workload has stopped: each capability lets go of what it holds.
    pub fn shutdown(&self) {
        let capabilities = &self.shared.capabilities;
        Capability::<HostState>::shutdown(&capabilities.wasi);
        Capability::<HostState>::shutdown(&capabilities.outbound_http);
        capabilities.plugins.shutdown();
    }
}
