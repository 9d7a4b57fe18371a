//! The key-value plugin: wasi:keyvalue@0.2.0-draft (`store`, `atomics`, `batch`) on named
//! stores, each held in memory, in a file, or on a Redis server. Every call is a
//! `PluginOperation` client span under the invocation that made it, with its backend
//! (and, on Redis, the database client conventions), never a key's value; a backend's
//! failure reaches the guest as the interface's `error::other`, never as a trap.
//!
//! A store is opened once per process and shared: a memory store by every component that
//! names it, a file or Redis store by every component that names the same file or URL.

mod backend;
mod config;
mod host;

pub use backend::REDIS_OPERATION_TIMEOUT;
pub use config::{KeyValueConfig, RedisTarget, StoreBackend, parse_store_flag};

use backend::{Backend, FileStore, MemoryStore, Operation, RedisStore};
use opentelemetry::KeyValue as Attribute;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
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

/// The capability, with the stores it has opened for the process.
#[derive(Default)]
pub struct KeyValue {
    opened: Mutex<Opened>,
}

/// Stores opened so far: memory stores by name, file stores by path, Redis by URL.
#[derive(Default)]
struct Opened {
    memory: HashMap<String, Arc<MemoryStore>>,
    files: HashMap<PathBuf, Arc<FileStore>>,
    redis: HashMap<String, RedisStore>,
}

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
            let backend = self
                .open(&name, &spec)
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

    /// Closes the files and the connections to Redis.
    fn shutdown(&self) {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        *opened = Opened::default();
    }
}

impl KeyValue {
    /// The backend `spec` names for the store `name`, opened once for the process.
    async fn open(&self, name: &str, spec: &StoreBackend) -> anyhow::Result<Backend> {
        match spec {
            StoreBackend::Memory => {
                let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
                let store = opened.memory.entry(name.to_owned()).or_default();
                Ok(Backend::Memory(store.clone()))
            }
            StoreBackend::File(path) => {
                let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
                // The same file under another name, or through another path, is one store.
                let key = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                if let Some(store) = opened.files.get(&key) {
                    return Ok(Backend::File(store.clone()));
                }
                let store = Arc::new(FileStore::open(path)?);
                opened.files.insert(key, store.clone());
                Ok(Backend::File(store))
            }
            StoreBackend::Redis(target) => {
                let known = {
                    let opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
                    opened.redis.get(&target.url).cloned()
                };
                if let Some(store) = known {
                    return Ok(Backend::Redis(store));
                }
                let store = RedisStore::connect(target).await?;
                let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
                opened.redis.insert(target.url.clone(), store.clone());
                Ok(Backend::Redis(store))
            }
        }
    }
}

/// What every `PluginOperation` on a store carries besides the plugin and component: the
/// store, its backend, and for Redis the database client conventions.
fn backend_attributes(name: &str, spec: &StoreBackend) -> Vec<Attribute> {
    let mut attrs = vec![
        Attribute::new(attr::KEYVALUE_STORE, name.to_owned()),
        Attribute::new(attr::PLUGIN_BACKEND, spec.kind()),
    ];
    if let StoreBackend::Redis(target) = spec {
        attrs.extend([
            Attribute::new(attr::DB_SYSTEM_NAME, "redis"),
            Attribute::new(attr::DB_NAMESPACE, target.db.to_string()),
            Attribute::new(attr::SERVER_ADDRESS, target.host.clone()),
            Attribute::new(attr::SERVER_PORT, i64::from(target.port)),
        ]);
    }
    attrs
}
