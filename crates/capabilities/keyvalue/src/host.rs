//! wasi:keyvalue's calls, on the stores a component was given.

use crate::backend::{BackendError, Operation};
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::{Bucket, KeyValueCtxView, OpenStore};
use std::sync::Arc;
use wasmtime::component::Resource;

/// What a call can end with besides its value: the interface's error for the guest, or
/// a trap (a bucket handle that is not one).
pub enum KeyValueError {
    NoSuchStore,
    Other(String),
    Trap(wasmtime::Error),
}

impl From<wasmtime::component::ResourceTableError> for KeyValueError {
    fn from(err: wasmtime::component::ResourceTableError) -> Self {
        KeyValueError::Trap(err.into())
    }
}

impl KeyValueCtxView<'_> {
    fn store(&self, bucket: &Resource<Bucket>) -> Result<Arc<OpenStore>, KeyValueError> {
        Ok(self.table.get(bucket)?.0.clone())
    }
}

/// Ends a call's telemetry as `result` says, and gives the guest its answer.
fn finish<R>(
    call: wasmlens_telemetry::plugin::PluginCall<'_>,
    result: Result<R, BackendError>,
) -> Result<R, KeyValueError> {
    match result {
        Ok(value) => {
            call.succeeded();
            Ok(value)
        }
        Err(BackendError(message)) => {
            call.failed(&message);
            Err(KeyValueError::Other(message))
        }
    }
}

impl OpenStore {
    fn start(&self, operation: Operation) -> wasmlens_telemetry::plugin::PluginCall<'_> {
        let db_operation = self.backend.db_operation(operation);
        self.telemetry.start(operation.name(), db_operation)
    }
}

impl store::Host for KeyValueCtxView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KeyValueError> {
        let Some(grant) = &self.state.grant else {
            return Err(KeyValueError::NoSuchStore);
        };
        match grant.stores.get(&identifier) {
            Some(store) => {
                store.start(Operation::Open).succeeded();
                Ok(self.table.push(Bucket(store.clone()))?)
            }
            None => {
                let call = grant.unknown_store.start(Operation::Open.name(), None);
                // Not the name itself: it is the guest's text, of any length.
                call.failed("the component was given no store of that name");
                Err(KeyValueError::NoSuchStore)
            }
        }
    }

    fn convert_error(&mut self, err: KeyValueError) -> wasmtime::Result<store::Error> {
        match err {
            KeyValueError::NoSuchStore => Ok(store::Error::NoSuchStore),
            KeyValueError::Other(message) => Ok(store::Error::Other(message)),
            KeyValueError::Trap(trap) => Err(trap),
        }
    }
}

impl store::HostBucket for KeyValueCtxView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::Get);
        finish(call, store.backend.get(key).await)
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::Set);
        finish(call, store.backend.set(key, value).await)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::Delete);
        finish(call, store.backend.delete(key).await)
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<bool, KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::Exists);
        finish(call, store.backend.exists(key).await)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::ListKeys);
        let (keys, cursor) = finish(call, store.backend.list_keys(cursor).await)?;
        Ok(store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueCtxView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::Increment);
        finish(call, store.backend.increment(key, delta).await)
    }
}

impl batch::Host for KeyValueCtxView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::GetMany);
        finish(call, store.backend.get_many(keys).await)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::SetMany);
        finish(call, store.backend.set_many(key_values).await)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), KeyValueError> {
        let store = self.store(&bucket)?;
        let call = store.start(Operation::DeleteMany);
        finish(call, store.backend.delete_many(keys).await)
    }
}
