//! What holds a store's data: memory, a file, or Redis, behind one set of calls.

mod file;
mod memory;
mod redis;

pub use self::redis::OPERATION_TIMEOUT as REDIS_OPERATION_TIMEOUT;
pub(crate) use self::redis::RedisStore;
pub(crate) use file::FileStore;
pub(crate) use memory::MemoryStore;

use std::sync::Arc;

/// The most keys one `list-keys` call answers from a memory or file store.
pub(crate) const PAGE: usize = 1000;

/// Why a backend failed a call: what the guest gets as `error::other`.
#[derive(Debug)]
pub struct BackendError(pub String);

/// A counter's value as `increment` keeps it: decimal digits, as Redis's `INCRBY` does, so
/// that a guest reads the same bytes whatever the backend.
pub(crate) fn parse_counter(value: &[u8]) -> Result<u64, BackendError> {
    if value.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| BackendError("the value is not a decimal counter".into()))
}

/// A store's backend.
#[derive(Clone)]
pub(crate) enum Backend {
    Memory(Arc<MemoryStore>),
    File(Arc<FileStore>),
    Redis(Arc<RedisStore>),
}

/// The calls of wasi:keyvalue, as telemetry names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Open,
    Get,
    Set,
    Delete,
    Exists,
    ListKeys,
    Increment,
    GetMany,
    SetMany,
    DeleteMany,
}

impl Operation {
    pub const ALL: [Operation; 10] = [
        Operation::Open,
        Operation::Get,
        Operation::Set,
        Operation::Delete,
        Operation::Exists,
        Operation::ListKeys,
        Operation::Increment,
        Operation::GetMany,
        Operation::SetMany,
        Operation::DeleteMany,
    ];

    /// `operation`: the interface's function name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Open => "open",
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Delete => "delete",
            Operation::Exists => "exists",
            Operation::ListKeys => "list-keys",
            Operation::Increment => "increment",
            Operation::GetMany => "get-many",
            Operation::SetMany => "set-many",
            Operation::DeleteMany => "delete-many",
        }
    }

    /// `db.operation.name` on Redis: the command the call sends, if it sends one.
    pub fn redis_command(self) -> Option<&'static str> {
        Some(match self {
            Operation::Open => return None,
            Operation::Get => "GET",
            Operation::Set => "SET",
            Operation::Delete | Operation::DeleteMany => "DEL",
            Operation::Exists => "EXISTS",
            Operation::ListKeys => "SCAN",
            Operation::Increment => "INCRBY",
            Operation::GetMany => "MGET",
            Operation::SetMany => "MSET",
        })
    }
}

impl Backend {
    /// `db.operation.name` for `operation` on this backend: only a database client's.
    pub fn db_operation(&self, operation: Operation) -> Option<&'static str> {
        match self {
            Backend::Redis(_) => operation.redis_command(),
            Backend::Memory(_) | Backend::File(_) => None,
        }
    }

    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, BackendError> {
        match self {
            Backend::Memory(store) => Ok(store.get(&key)),
            Backend::File(store) => store.get(key).await,
            Backend::Redis(store) => store.get(&key).await,
        }
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), BackendError> {
        match self {
            Backend::Memory(store) => store.set(key, value),
            Backend::File(store) => store.set(key, value).await,
            Backend::Redis(store) => store.set(&key, &value).await,
        }
    }

    pub async fn delete(&self, key: String) -> Result<(), BackendError> {
        match self {
            Backend::Memory(store) => store.delete(&key),
            Backend::File(store) => store.delete(key).await,
            Backend::Redis(store) => store.delete(std::slice::from_ref(&key)).await,
        }
    }

    pub async fn exists(&self, key: String) -> Result<bool, BackendError> {
        match self {
            Backend::Memory(store) => Ok(store.exists(&key)),
            Backend::File(store) => store.exists(key).await,
            Backend::Redis(store) => store.exists(&key).await,
        }
    }

    /// A page of keys from `cursor` on, and where the next page starts, if there is one.
    /// On memory and file stores the keys come in order, [`PAGE`] at a time, and the
    /// cursor counts the keys before the page; on Redis it is `SCAN`'s.
    pub async fn list_keys(
        &self,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), BackendError> {
        let start = cursor.unwrap_or(0);
        let skip = usize::try_from(start).unwrap_or(usize::MAX);
        let page = |(keys, more): (Vec<String>, bool)| {
            let next = more.then(|| start + keys.len() as u64);
            (keys, next)
        };
        match self {
            Backend::Memory(store) => Ok(page(store.keys(skip, PAGE))),
            Backend::File(store) => store.keys(skip, PAGE).await.map(page),
            Backend::Redis(store) => store.keys(start).await,
        }
    }

    pub async fn increment(&self, key: String, delta: u64) -> Result<u64, BackendError> {
        match self {
            Backend::Memory(store) => store.increment(key, delta),
            Backend::File(store) => store.increment(key, delta).await,
            Backend::Redis(store) => store.increment(&key, delta).await,
        }
    }

    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, BackendError> {
        match self {
            Backend::Memory(store) => Ok(store.get_many(keys)),
            Backend::File(store) => store.get_many(keys).await,
            Backend::Redis(store) => store.get_many(keys).await,
        }
    }

    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        match self {
            Backend::Memory(store) => store.set_many(pairs),
            Backend::File(store) => store.set_many(pairs).await,
            Backend::Redis(store) => store.set_many(&pairs).await,
        }
    }

    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), BackendError> {
        match self {
            Backend::Memory(store) => store.delete_many(&keys),
            Backend::File(store) => store.delete_many(keys).await,
            Backend::Redis(store) => store.delete(&keys).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wasmlens-kv-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("store.redb")
    }

    #[tokio::test]
    async fn a_file_store_keeps_its_data_when_it_is_opened_again() {
        let path = temp_file("reopen");
        {
            let store = Backend::File(Arc::new(FileStore::open(&path).await.unwrap()));
            assert_eq!(store.increment("n".into(), 2).await.unwrap(), 2);
            store.set("k".into(), b"v".to_vec()).await.unwrap();
            store
                .set_many(vec![("a".into(), b"1".to_vec())])
                .await
                .unwrap();
        }
        let store = Backend::File(Arc::new(FileStore::open(&path).await.unwrap()));
        assert_eq!(store.increment("n".into(), 1).await.unwrap(), 3);
        assert_eq!(store.get("n".into()).await.unwrap(), Some(b"3".to_vec()));
        let (keys, cursor) = store.list_keys(None).await.unwrap();
        assert_eq!(
            (keys, cursor),
            (vec!["a".into(), "k".into(), "n".into()], None)
        );
        let (keys, _) = store.list_keys(Some(2)).await.unwrap();
        assert_eq!(keys, vec!["n".to_owned()], "a cursor skips that many keys");
        let many: Vec<_> = (0..PAGE + 5)
            .map(|i| (format!("k{i:05}"), vec![]))
            .collect();
        store.set_many(many).await.unwrap();
        let (first, next) = store.list_keys(None).await.unwrap();
        assert_eq!((first.len(), next), (PAGE, Some(PAGE as u64)));
        let (rest, next) = store.list_keys(next).await.unwrap();
        assert_eq!((rest.len(), next), (8, None), "5 more, and a, k, n");
        store
            .delete_many(vec!["a".into(), "k".into()])
            .await
            .unwrap();
        assert!(!store.exists("k".into()).await.unwrap());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_file_store_is_refused_where_its_folder_is_missing() {
        let err = FileStore::open(std::path::Path::new("/nonexistent-dir/x.redb"))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("no such directory"), "{err}");
    }

    #[tokio::test]
    async fn counters_are_decimal_text_and_a_value_that_is_not_one_is_an_error() {
        let store = Backend::Memory(Arc::default());
        assert_eq!(store.increment("c".into(), 5).await.unwrap(), 5);
        assert_eq!(store.get("c".into()).await.unwrap(), Some(b"5".to_vec()));
        store.set("word".into(), b"abc".to_vec()).await.unwrap();
        let err = store.increment("word".into(), 1).await.unwrap_err();
        assert!(err.0.contains("not a decimal counter"), "{}", err.0);
        store
            .set("max".into(), u64::MAX.to_string().into_bytes())
            .await
            .unwrap();
        assert!(
            store
                .increment("max".into(), 1)
                .await
                .unwrap_err()
                .0
                .contains("overflow")
        );
    }
}
