//! The key-value plugin: wasi:keyvalue@0.2.0-draft (`store`, `atomics`, `batch`) on named
//! stores, each held in memory, in a file, or on a Redis server. Every call is a
//! `PluginOperation` client span under the invocation that made it, with its backend
//! (and, on Redis, the database client conventions), never a key's value; a backend's
//! failure reaches the guest as the interface's `error::other`, never as a trap.
//!
//! A store is opened once per process and shared: a memory store by every component that
//! names it (the default store `""` included), a file or Redis store by every component
//! that names the same file or URL.

mod backend;
mod config;
mod host;
mod opened;

pub use backend::REDIS_OPERATION_TIMEOUT;
pub use config::{KeyValueConfig, RedisTarget, StoreBackend, parse_store_flag};

use backend::{Backend, Operation};
use opentelemetry::{KeyValue as Attribute, StringValue, Value};
use std::collections::HashMap;
use std::sync::Arc;
use wasmlens_engine::{Capability, ComponentContext, InstanceContext, Plugin};
use wasmlens_telemetry::names::{attr, plugin_type};
use wasmlens_telemetry::plugin::PluginTelemetry;
use wasmtime::component::{HasData, Linker, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasmlens:keyvalue/bindings",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => crate::host::KeyValueError,
        },
    });
}

/// The WIT package this plugin serves.
pub const PACKAGE: &str = "wasi:keyvalue@0.2.0-draft";

/// The capability. The stores it opens are the process's (see [`opened`]): a component's
/// grant holds them, and they close when no grant does.
#[derive(Debug, Default)]
pub struct KeyValue;

/// A component's stores, by the name its guest opens.
pub struct KeyValueGrant {
    stores: HashMap<String, Arc<OpenStore>>,
    /// What an `open` of a store the component was not given is recorded on.
    unknown_store: PluginTelemetry,
}

/// A store as one component uses it: its backend, and its telemetry for that component.
pub(crate) struct OpenStore {
    backend: Backend,
    telemetry: PluginTelemetry,
}

/// wasi:keyvalue's `bucket`: a store the guest opened.
pub struct Bucket(Arc<OpenStore>);

/// What one instance holds: its component's stores (none if it does not import
/// wasi:keyvalue).
#[derive(Default)]
pub struct KeyValueState {
    grant: Option<Arc<KeyValueGrant>>,
}

/// How the plugin reaches its state in a store: the host's store type implements it.
pub trait KeyValueView: Send {
    fn keyvalue(&mut self) -> KeyValueCtxView<'_>;
}

/// The plugin's part of one instance's store, and the resource table it shares.
pub struct KeyValueCtxView<'a> {
    pub state: &'a KeyValueState,
    pub table: &'a mut ResourceTable,
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueCtxView<'a>;
}

impl<T: KeyValueView + 'static> Capability<T> for KeyValue {
    const PLUGIN: Option<Plugin> = Some(Plugin {
        plugin_type: plugin_type::KEYVALUE,
        package: PACKAGE,
    });
    type Config = KeyValueConfig;
    type Bound = Arc<KeyValueGrant>;
    type InstanceState = KeyValueState;

    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()> {
        use bindings::wasi::keyvalue::{atomics, batch, store};
        store::add_to_linker::<T, HasKeyValue>(linker, T::keyvalue)?;
        atomics::add_to_linker::<T, HasKeyValue>(linker, T::keyvalue)?;
        batch::add_to_linker::<T, HasKeyValue>(linker, T::keyvalue)?;
        Ok(())
    }

    /// A file store's folder must exist (the file itself is created if need be).
    fn check(&self, config: &KeyValueConfig) -> anyhow::Result<()> {
        for (name, spec) in &config.stores {
            if let StoreBackend::File(path) = spec
                && let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty())
                && !folder.is_dir()
            {
                anyhow::bail!(
                    "key-value store {name:?} ({spec}): {}: no such directory",
                    folder.display()
                );
            }
        }
        Ok(())
    }

    async fn bind(
        &self,
        config: &KeyValueConfig,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<Arc<KeyValueGrant>> {
        let id = component.id;
        let defaulted = config.stores.is_empty();
        let mut stores = config.stores.clone();
        if defaulted {
            tracing::info!(
                "component {id:?} imports wasi:keyvalue and has no store configured: its default store \"\" is in memory, shared by the workload and lost when it exits (--keyvalue or [component.keyvalue] chooses another)"
            );
            stores.insert(String::new(), StoreBackend::Memory);
        }
        let operations = Operation::ALL.map(Operation::name);
        let mut grant = KeyValueGrant {
            stores: HashMap::with_capacity(stores.len()),
            unknown_store: PluginTelemetry::new(
                component.telemetry,
                plugin_type::KEYVALUE,
                id,
                &operations,
                Vec::new(),
            ),
        };
        for (name, spec) in stores {
            let backend = opened::open(component.workload_id, &name, &spec)
                .await
                .map_err(|err| anyhow::anyhow!("key-value store {name:?} ({spec}): {err:#}"))?;
            if defaulted {
                // Said above.
            } else if spec == StoreBackend::Memory {
                tracing::info!(
                    "component {id:?}: key-value store {name:?} is in memory: shared by the workload, lost when it exits"
                );
            } else {
                tracing::info!("component {id:?}: key-value store {name:?} is {spec}");
            }
            let telemetry = PluginTelemetry::new(
                component.telemetry,
                plugin_type::KEYVALUE,
                id,
                &operations,
                backend_attributes(&name, &spec),
            );
            let store = OpenStore { backend, telemetry };
            grant.stores.insert(name, Arc::new(store));
        }
        Ok(Arc::new(grant))
    }

    fn instance_state(
        &self,
        grant: &Arc<KeyValueGrant>,
        _: &InstanceContext<'_>,
    ) -> anyhow::Result<KeyValueState> {
        Ok(KeyValueState {
            grant: Some(grant.clone()),
        })
    }
}

/// What every `PluginOperation` on a store carries besides the plugin and component: the
/// store, its backend, and for Redis the database client conventions.
/// Shared text: each span's copy of these attributes costs a reference count, not a copy.
fn shared(text: impl Into<Arc<str>>) -> Value {
    Value::from(StringValue::from(text.into()))
}

fn backend_attributes(name: &str, spec: &StoreBackend) -> Vec<Attribute> {
    let mut attrs = vec![
        Attribute::new(attr::KEYVALUE_STORE, shared(name)),
        Attribute::new(attr::PLUGIN_BACKEND, spec.kind()),
    ];
    if let StoreBackend::Redis(target) = spec {
        attrs.extend([
            Attribute::new(attr::DB_SYSTEM_NAME, "redis"),
            Attribute::new(attr::DB_NAMESPACE, shared(target.db.to_string())),
            Attribute::new(attr::SERVER_ADDRESS, shared(target.host.as_str())),
            Attribute::new(attr::SERVER_PORT, i64::from(target.port)),
        ]);
    }
    attrs
}
