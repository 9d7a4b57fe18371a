//! A store in a file: an embedded database (redb) whose every write is committed durably
//! before the guest's call returns, so the data survives a restart or a crash. Its calls
//! block on the disk, so they run on the runtime's blocking threads.

use super::{BackendError, parse_counter};
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use std::path::Path;
use std::sync::Arc;

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("wasi-keyvalue");

pub struct FileStore {
    db: Arc<Database>,
}

impl From<redb::Error> for BackendError {
    fn from(err: redb::Error) -> Self {
        BackendError(format!("the store's file: {err}"))
    }
}

/// Converts each of redb's error types on the way to [`BackendError`].
macro_rules! redb_err {
    ($result:expr) => {
        $result.map_err(|err| BackendError::from(redb::Error::from(err)))
    };
}

impl FileStore {
    /// Opens the database at `path`, creating it (and its table) if need be. It may read
    /// (and after a crash, repair) the whole file: it runs on a blocking thread.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path)).await?
    }

    fn open_blocking(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            anyhow::bail!("{}: no such directory", parent.display());
        }
        let db = Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::anyhow!(
                "{} is already open in another process (a file store belongs to one host: share state across hosts with redis://)",
                path.display()
            ),
            err => anyhow::anyhow!("{}: {err}", path.display()),
        })?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.commit()?;
        Ok(FileStore { db: Arc::new(db) })
    }

    /// Runs `f` on a blocking thread: redb's calls wait on the disk.
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<R, BackendError> + Send + 'static,
    ) -> Result<R, BackendError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|err| BackendError(format!("the store's file: {err}")))?
    }

    /// Reads with `f` on the table in a read transaction.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&str, &[u8]>) -> Result<R, redb::StorageError>
        + Send
        + 'static,
    ) -> Result<R, BackendError> {
        self.blocking(move |db| {
            let txn = redb_err!(db.begin_read())?;
            let table = redb_err!(txn.open_table(ENTRIES))?;
            redb_err!(f(&table))
        })
        .await
    }

    /// Changes the table with `f` in a write transaction, committed before it returns.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<R, BackendError> + Send + 'static,
    ) -> Result<R, BackendError> {
        self.blocking(move |db| {
            let txn = redb_err!(db.begin_write())?;
            let result = {
                let mut table = redb_err!(txn.open_table(ENTRIES))?;
                f(&mut table)?
            };
            redb_err!(txn.commit())?;
            Ok(result)
        })
        .await
    }

    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, BackendError> {
        self.read(move |table| Ok(table.get(key.as_str())?.map(|v| v.value().to_vec())))
            .await
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), BackendError> {
        self.write(move |table| {
            redb_err!(table.insert(key.as_str(), value.as_slice()))?;
            Ok(())
        })
        .await
    }

    pub async fn delete(&self, key: String) -> Result<(), BackendError> {
        self.write(move |table| {
            redb_err!(table.remove(key.as_str()))?;
            Ok(())
        })
        .await
    }

    pub async fn exists(&self, key: String) -> Result<bool, BackendError> {
        self.read(move |table| Ok(table.get(key.as_str())?.is_some()))
            .await
    }

    /// Up to `count` keys in order from the `start`th, and whether there are more.
    pub async fn keys(
        &self,
        start: usize,
        count: usize,
    ) -> Result<(Vec<String>, bool), BackendError> {
        self.read(move |table| {
            let mut keys = Vec::new();
            for entry in table.iter()?.skip(start).take(count + 1) {
                keys.push(entry?.0.value().to_owned());
            }
            let more = keys.len() > count;
            keys.truncate(count);
            Ok((keys, more))
        })
        .await
    }

    pub async fn increment(&self, key: String, delta: u64) -> Result<u64, BackendError> {
        self.write(move |table| {
            let current = match redb_err!(table.get(key.as_str()))? {
                Some(value) => parse_counter(value.value())?,
                None => 0,
            };
            let value = current
                .checked_add(delta)
                .ok_or_else(|| BackendError("the counter would overflow a u64".into()))?;
            redb_err!(table.insert(key.as_str(), value.to_string().as_bytes()))?;
            Ok(value)
        })
        .await
    }

    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, BackendError> {
        self.read(move |table| {
            let mut found = Vec::with_capacity(keys.len());
            for key in keys {
                let value = table.get(key.as_str())?.map(|v| v.value().to_vec());
                found.push(value.map(|value| (key, value)));
            }
            Ok(found)
        })
        .await
    }

    /// Sets all the pairs in one transaction: all or none.
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        self.write(move |table| {
            for (key, value) in &pairs {
                redb_err!(table.insert(key.as_str(), value.as_slice()))?;
            }
            Ok(())
        })
        .await
    }

    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), BackendError> {
        self.write(move |table| {
            for key in &keys {
                redb_err!(table.remove(key.as_str()))?;
            }
            Ok(())
        })
        .await
    }
}
