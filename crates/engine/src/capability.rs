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
    /// What a component is granted, as the flags or the manifest say.
    type Config;
    /// The grant, checked: what each instance of the component is built from.
    type Bound: Send + Sync + 'static;
    /// What one instance holds in its store.
    type InstanceState: Send + 'static;

    /// Adds the capability's interfaces to a component's linker, once per component.
    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()>;

    /// Checks what a component is granted, once, when the component is loaded: an error
    /// refuses the workload before anything runs.
    fn bind(
        &self,
        config: &Self::Config,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<Self::Bound>;

    /// Builds what one new instance holds in its store.
    fn instance_state(
        &self,
        bound: &Self::Bound,
        instance: &InstanceContext<'_>,
    ) -> anyhow::Result<Self::InstanceState>;

    /// The workload has stopped: let go of what the capability holds (connections,
    /// buffers not yet written).
    fn shutdown(&self) {}
}

/// The component a capability is bound to.
pub struct ComponentContext<'a> {
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
