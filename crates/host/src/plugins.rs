//! The host plugins (key-value, configuration, logging, guest telemetry): bound to a component when it is
//! loaded, and only if it imports them, each in a `PluginBind` span.

use crate::host::Grants;
use crate::state::HostState;
use opentelemetry::Context;
use std::fmt;
use std::sync::Arc;
use wasmlens_config::{Config, ConfigGrant, ConfigState};
use wasmlens_engine::{Capability, ComponentContext, InstanceContext};
use wasmlens_keyvalue::{KeyValue, KeyValueGrant, KeyValueState};
use wasmlens_logging::{Logging, LoggingGrant, LoggingState};
use wasmlens_otel::{Otel, OtelGrant, OtelState};
use wasmlens_telemetry::plugin::{self, Binding};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// Every plugin the host offers. A new one adds: a field here, in [`Grants`],
/// [`BoundPlugins`] and [`PluginStates`], its state's accessor trait on [`HostState`], and
/// a line in each function below.
#[derive(Default)]
pub(crate) struct Plugins {
    keyvalue: KeyValue,
    config: Config,
    logging: Logging,
    otel: Otel,
}

/// The plugins bound to one component: those it imports.
#[derive(Default)]
pub(crate) struct BoundPlugins {
    keyvalue: Option<Arc<KeyValueGrant>>,
    config: Option<Arc<ConfigGrant>>,
    logging: Option<Arc<LoggingGrant>>,
    otel: Option<Arc<OtelGrant>>,
}

/// What each plugin gives one instance.
pub(crate) struct PluginStates {
    pub keyvalue: KeyValueState,
    pub config: ConfigState,
    pub logging: LoggingState,
    pub otel: OtelState,
}

/// A plugin could not be bound: the workload is refused (`PluginBindFailure`).
#[derive(Debug)]
pub struct PluginBindFailed {
    pub plugin_type: &'static str,
    pub error: anyhow::Error,
}

impl fmt::Display for PluginBindFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} plugin: {:#}", self.plugin_type, self.error)
    }
}

impl std::error::Error for PluginBindFailed {}

impl Plugins {
    pub fn link(&self, linker: &mut Linker<HostState>) -> anyhow::Result<()> {
        Capability::<HostState>::link(&self.keyvalue, linker)?;
        Capability::<HostState>::link(&self.config, linker)?;
        Capability::<HostState>::link(&self.logging, linker)?;
        Capability::<HostState>::link(&self.otel, linker)?;
        Ok(())
    }

    /// Checks what can be checked of the plugins' configuration before anything is
    /// compiled.
    pub fn check(&self, grants: &Grants) -> anyhow::Result<()> {
        Capability::<HostState>::check(&self.keyvalue, &grants.keyvalue)?;
        Capability::<HostState>::check(&self.config, &grants.config)?;
        Ok(())
    }

    /// Binds to `compiled` every plugin it imports, under `parent`.
    pub async fn bind(
        &self,
        engine: &Engine,
        compiled: &Component,
        grants: &Grants,
        component: &ComponentContext<'_>,
        parent: &Context,
    ) -> Result<BoundPlugins, PluginBindFailed> {
        let imports: Vec<String> = compiled
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let bind = Binder {
            imports: &imports,
            component,
            parent,
        };
        Ok(BoundPlugins {
            keyvalue: bind.plugin(&self.keyvalue, &grants.keyvalue).await?,
            config: bind.plugin(&self.config, &grants.config).await?,
            logging: bind.plugin(&self.logging, &()).await?,
            otel: bind.plugin(&self.otel, &()).await?,
        })
    }

    pub fn instance_states(
        &self,
        bound: &BoundPlugins,
        instance: &InstanceContext<'_>,
    ) -> anyhow::Result<PluginStates> {
        Ok(PluginStates {
            keyvalue: instance_state(&self.keyvalue, &bound.keyvalue, instance)?,
            config: instance_state(&self.config, &bound.config, instance)?,
            logging: instance_state(&self.logging, &bound.logging, instance)?,
            otel: instance_state(&self.otel, &bound.otel, instance)?,
        })
    }

    pub fn shutdown(&self) {
        Capability::<HostState>::shutdown(&self.keyvalue);
        Capability::<HostState>::shutdown(&self.config);
        Capability::<HostState>::shutdown(&self.logging);
        Capability::<HostState>::shutdown(&self.otel);
    }
}

/// What binding a component's plugins needs.
struct Binder<'a> {
    imports: &'a [String],
    component: &'a ComponentContext<'a>,
    parent: &'a Context,
}

impl Binder<'_> {
    /// Binds `capability` with `config` if the component imports it; if it does not, it
    /// gets nothing, with a warning if it was configured for it.
    async fn plugin<C>(
        &self,
        capability: &C,
        config: &C::Config,
    ) -> Result<Option<C::Bound>, PluginBindFailed>
    where
        C: Capability<HostState>,
        C::Config: PartialEq,
    {
        let plugin = C::PLUGIN.expect("plugins declare what they are");
        let component = self.component;
        let id = component.id;
        if !self.imports.iter().any(|import| plugin.provides(import)) {
            if *config != C::Config::default() {
                tracing::warn!(
                    "component {id:?} does not import {}: its {} configuration is not used",
                    plugin.package,
                    plugin.plugin_type
                );
            }
            return Ok(None);
        }
        let binding = Binding {
            plugin_type: plugin.plugin_type,
            interface: plugin.package,
            workload_id: component.workload_id,
            component_id: id,
        };
        let bound = capability.bind(config, component);
        plugin::bind(component.telemetry, self.parent, binding, bound)
            .await
            .map(Some)
            .map_err(|error| PluginBindFailed {
                plugin_type: plugin.plugin_type,
                error,
            })
    }
}

/// An instance's state of a plugin: what the plugin builds if it is bound to the
/// component, else its default.
fn instance_state<C: Capability<HostState>>(
    capability: &C,
    bound: &Option<C::Bound>,
    instance: &InstanceContext<'_>,
) -> anyhow::Result<C::InstanceState>
where
    C::InstanceState: Default,
{
    match bound {
        Some(bound) => capability.instance_state(bound, instance),
        None => Ok(C::InstanceState::default()),
    }
}
