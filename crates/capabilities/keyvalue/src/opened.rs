//! The stores open in the process: each opened once and shared by every workload and
//! component that names it (a memory store by its name, a file by its path, Redis by its
//! URL), for as long as one of them holds it; then it is closed (a memory store's data is
//! gone).

use crate::backend::{Backend, FileStore, MemoryStore, RedisStore};
use crate::config::StoreBackend;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use tokio::sync::Mutex;

#[derive(Default)]
struct Opened {
    memory: HashMap<String, Weak<MemoryStore>>,
    files: HashMap<PathBuf, Weak<FileStore>>,
    redis: HashMap<String, Weak<RedisStore>>,
}

/// Held while a store is looked up or opened, so that two bindings of one file or URL
/// open it once.
static OPENED: LazyLock<Mutex<Opened>> = LazyLock::new(Mutex::default);

/// The backend `spec` names for the store `name`: the one already open, else opened now.
pub(crate) async fn open(name: &str, spec: &StoreBackend) -> anyhow::Result<Backend> {
    let mut opened = OPENED.lock().await;
    Ok(match spec {
        StoreBackend::Memory => {
            let store = shared(&mut opened.memory, name.to_owned(), || Ok(Arc::default()))?;
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
fn shared<T>(
    map: &mut HashMap<String, Weak<T>>,
    key: String,
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
