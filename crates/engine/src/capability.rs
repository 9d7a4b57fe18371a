//! The seam every host capability plugs into.
//!
//! A capability is one self-contained unit of what the host offers its guests (WASI,
//! outgoing HTTP, and later key-value, configuration, logging, guest telemetry): what it
//! links into a component's linker, what a component is granted (its configuration,
//! checked once when the component is loaded), what it adds to each instance, and what it
//! does when the workload stops. It never owns the store's type: it reaches its state in
//! a store through an accessor trait of its own, which the host's store type implements
//! (as wasmtime-wasi's `WasiView` and wasmtime-wasi-http's `WasiHttpView` do). The host
//! composes the capabilities; a trigger only asks the host for an instance.

use opentelemetry::trace::SpanContext;
use std::path::Path;
use std::sync::Arc;
use wasmlens_telemetry::Telemetry;
use wasmtime::component::Linker;

/// A host capability, for stores whose data is `T`.
pub trait Capability<T>: Send + Sync + 'static {
    /// A plugin's WIT package and `plugin_type`: the host binds a plugin only to the
    /// components that import one of the package's interfaces, when they are loaded, in a
    /// `PluginBind` span. `None` for what every component is bound to (WASI, outgoing
    /// HTTP), whose grants are checked before anything is compiled.
    const PLUGIN: Option<Plugin> = None;

    /// What a component is granted, as the flags or the manifest say.
    type Config: Default;
    /// The grant, checked: what each instance of the component is built from.
    type Bound: Send + Sync + 'static;
    /// What one instance holds in its store.
    type InstanceState: Send + 'static;

    /// Adds the capability's interfaces to a component's linker, once per component.
    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()>;

    /// What can be checked of a plugin's configuration before anything is compiled (that a
    /// store's folder exists, say), opening and reaching nothing: an error refuses the
    /// workload at once. A plugin is bound only after its component is compiled, when its
    /// imports are known; this finds a mistake without waiting for that.
    fn check(&self, config: &Self::Config) -> anyhow::Result<()> {
        let _ = config;
        Ok(())
    }

    /// Checks what a component is granted, and opens or reaches what serves it (a
    /// plugin's backend), once, when the component is loaded: an error refuses the
    /// workload before anything runs.
    fn bind(
        &self,
        config: &Self::Config,
        component: &ComponentContext<'_>,
    ) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send;

    /// Builds what one new instance holds in its store. A plugin's instance state has a
    /// `Default`: what an instance of a component that does not import it holds.
    fn instance_state(
        &self,
        bound: &Self::Bound,
        instance: &InstanceContext<'_>,
    ) -> anyhow::Result<Self::InstanceState>;

    /// The workload has stopped: let go of what the capability holds (connections,
    /// buffers not yet written).
    fn shutdown(&self) {}
}

/// A host plugin, as telemetry names it.
#[derive(Clone, Copy, Debug)]
pub struct Plugin {
    /// `plugin_type`: `keyvalue`, `config`, `logging`, `otel`.
    pub plugin_type: &'static str,
    /// The WIT package whose interfaces it links, e.g. `wasi:keyvalue@0.2.0-draft`.
    pub package: &'static str,
}

impl Plugin {
    /// Whether `import` (an interface name such as `wasi:keyvalue/store@0.2.0-draft`) is
    /// one of the package's interfaces.
    pub fn provides(&self, import: &str) -> bool {
        let (namespace_and_name, version) = match self.package.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (self.package, None),
        };
        let Some((package, rest)) = import.split_once('/') else {
            return false;
        };
        let import_version = rest.split_once('@').map(|(_, version)| version);
        package == namespace_and_name && import_version == version
    }
}

/// The component a capability is bound to.
pub struct ComponentContext<'a> {
    /// The workload it belongs to (`workload_id`).
    pub workload_id: &'a str,
    /// Its id in the workload (`component_id`).
    pub id: &'a Arc<str>,
    /// Where it was loaded from.
    pub source: &'a Path,
    pub telemetry: &'a Arc<Telemetry>,
}

/// The instance a capability builds state for.
pub struct InstanceContext<'a> {
    /// The span of the invocation the instance is made for (`ComponentInvocation`):
    /// what the guest's own work continues. Not valid when nothing is traced.
    pub invocation: &'a SpanContext,
}

#[cfg(test)]
mod tests {
    use super::Plugin;

    #[test]
    fn a_plugin_provides_the_interfaces_of_its_package_at_its_version() {
        let keyvalue = Plugin {
            plugin_type: "keyvalue",
            package: "wasi:keyvalue@0.2.0-draft",
        };
        assert!(keyvalue.provides("wasi:keyvalue/store@0.2.0-draft"));
        assert!(keyvalue.provides("wasi:keyvalue/atomics@0.2.0-draft"));
        assert!(!keyvalue.provides("wasi:keyvalue/store@0.2.0-draft2"));
        assert!(!keyvalue.provides("wasi:keyvalue/store"));
        assert!(!keyvalue.provides("wasi:config/store@0.2.0-draft"));
        assert!(!keyvalue.provides("wasi:keyvalue"));
    }
}
