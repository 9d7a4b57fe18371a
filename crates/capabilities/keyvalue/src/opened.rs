//! The stores open in the process: each opened once and shared by every component that
//! names it, for as long as one of them holds it; then it is closed (a memory store's data
//! is gone). A file (by its path) or a Redis (by its URL) is shared across workloads, as it
//! is across hosts; a memory store (by its name) only within its workload, so that two
//! workloads never see each other's data unless they name the same file or server.

use crate::backend::{Backend, FileStore, MemoryStore, RedisStore};
use crate::config::StoreBackend;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use tokio::sync::Mutex;

#[derive(Default)]
struct Opened {
    /// By workload and store name.
    memory: HashMap<(String, String), Weak<MemoryStore>>,
    files: HashMap<PathBuf, Weak<FileStore>>,
    redis: HashMap<String, Weak<RedisStore>>,
}

/// Held while a store is looked up or opened, so that two bindings of one file or URL
/// open it once.
static OPENED: LazyLock<Mutex<Opened>> = LazyLock::new(Mutex::default);

/// The backend `spec` names for the store `name` of a component of `workload`: the one
/// already open, else opened now.
pub(crate) async fn open(
    workload: &str,
    name: &str,
    spec: &StoreBackend,
) -> anyhow::Result<Backend> {
    let mut opened = OPENED.lock().await;
    Ok(match spec {
        StoreBackend::Memory => {
            let key = (workload.to_owned(), name.to_owned());
            let store = shared(&mut opened.memory, key, || Ok(Arc::default()))?;
            Backend::Memory(store)
        }
        StoreBackend::File(path) => {
            // The same file through another path (relative, a link) is the same store.
            let key = canonical(path);
            if let Some(store) = opened.files.get(&key).and_then(Weak::upgrade) {
                return Ok(Backend::File(store));
            }
            let store = Arc::new(FileStore::open(path).await?);
            opened.files.insert(key, Arc::downgrade(&store));
            Backend::File(store)
        }
        StoreBackend::Redis(target) => {
            if let Some(store) = opened.redis.get(&target.url).and_then(Weak::upgrade) {
                return Ok(Backend::Redis(store));
            }
            let store = Arc::new(RedisStore::connect(target).await?);
            opened
                .redis
                .insert(target.url.clone(), Arc::downgrade(&store));
            Backend::Redis(store)
        }
    })
}

/// The live entry for `key`, or a new one from `make`.
fn shared<K: std::hash::Hash + Eq, T>(
    map: &mut HashMap<K, Weak<T>>,
    key: K,
    make: impl FnOnce() -> anyhow::Result<Arc<T>>,
) -> anyhow::Result<Arc<T>> {
    if let Some(live) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(live);
    }
    let made = make()?;
    map.insert(key, Arc::downgrade(&made));
    Ok(made)
}

/// `path` with its folder resolved (links, `..`), where the folder exists.
fn canonical(path: &Path) -> PathBuf {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(folder), path.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_memory_store_is_shared_within_its_workload_only() {
        let memory = |backend: Backend| match backend {
            Backend::Memory(store) => store,
            _ => unreachable!("a memory store"),
        };
        let a = memory(open("shop", "", &StoreBackend::Memory).await.unwrap());
        let same = memory(open("shop", "", &StoreBackend::Memory).await.unwrap());
        let other = memory(open("bank", "", &StoreBackend::Memory).await.unwrap());
        assert!(Arc::ptr_eq(&a, &same), "one workload's components share it");
        assert!(!Arc::ptr_eq(&a, &other), "another workload has its own");
    }
}
