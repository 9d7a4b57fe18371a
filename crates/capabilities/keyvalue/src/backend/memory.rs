//! A store in the process's memory: shared by every instance that opens it, lost on exit.

use super::{BackendError, parse_counter};
use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

#[derive(Default)]
pub struct MemoryStore {
    entries: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.read().get(key).cloned()
    }

    pub fn set(&self, key: String, value: Vec<u8>) -> Result<(), BackendError> {
        self.write().insert(key, value);
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.write().remove(key);
        Ok(())
    }

    pub fn exists(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    /// Up to `count` keys in order from the `start`th, and whether there are more.
    pub fn keys(&self, start: usize, count: usize) -> (Vec<String>, bool) {
        let entries = self.read();
        let mut keys = entries
            .keys()
            .skip(start)
            .take(count + 1)
            .cloned()
            .collect::<Vec<_>>();
        let more = keys.len() > count;
        keys.truncate(count);
        (keys, more)
    }

    pub fn increment(&self, key: String, delta: u64) -> Result<u64, BackendError> {
        let mut entries = self.write();
        let entry = entries.entry(key).or_default();
        let value = parse_counter(entry)?
            .checked_add(delta)
            .ok_or_else(|| BackendError("the counter would overflow a u64".into()))?;
        *entry = value.to_string().into_bytes();
        Ok(value)
    }

    pub fn get_many(&self, keys: Vec<String>) -> Vec<Option<(String, Vec<u8>)>> {
        let entries = self.read();
        keys.into_iter()
            .map(|key| entries.get(&key).cloned().map(|value| (key, value)))
            .collect()
    }

    pub fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        self.write().extend(pairs);
        Ok(())
    }

    pub fn delete_many(&self, keys: &[String]) -> Result<(), BackendError> {
        let mut entries = self.write();
        for key in keys {
            entries.remove(key);
        }
        Ok(())
    }
}
