//! A store on a Redis server, which several hosts can share: `increment` is Redis's
//! `INCRBY`, atomic across them. A call that Redis does not answer within
//! [`OPERATION_TIMEOUT`] fails with the interface's error; the connection manager
//! reconnects in the background, so calls succeed again once Redis is back.

use super::BackendError;
use crate::config::RedisTarget;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// The longest a guest waits for one key-value call on Redis.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest one attempt to connect takes.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How many keys a `list-keys` call returns at most before it gives a cursor.
const SCAN_COUNT: usize = 1000;

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
}

impl RedisStore {
    /// Connects to `target`: a server that cannot be reached now refuses the binding.
    pub async fn connect(target: &RedisTarget) -> anyhow::Result<Self> {
        let shown = format!("redis://{}:{}/{}", target.host, target.port, target.db);
        let client = redis::Client::open(target.url.as_str())
            .map_err(|err| anyhow::anyhow!("{shown}: {err}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            // Longer than a call waits: a reply that comes late is read and dropped, rather
            // than the connection torn down for it.
            .set_response_timeout(Some(OPERATION_TIMEOUT * 4))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connecting = ConnectionManager::new_with_config(client, config);
        let connection = tokio::time::timeout(CONNECT_TIMEOUT * 4, connecting)
            .await
            .map_err(|_| anyhow::anyhow!("cannot reach Redis at {shown}: timed out"))?
            .map_err(|err| anyhow::anyhow!("cannot reach Redis at {shown}: {err}"))?;
        Ok(RedisStore { connection })
    }

    /// Sends `cmd`, waiting at most [`OPERATION_TIMEOUT`] for the answer.
    async fn query<R: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<R, BackendError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(OPERATION_TIMEOUT, cmd.query_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(BackendError(format!("Redis: {err}"))),
            Err(_) => Err(BackendError(format!(
                "Redis did not answer within {OPERATION_TIMEOUT:?}"
            ))),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), BackendError> {
        self.query(redis::cmd("SET").arg(key).arg(value)).await
    }

    pub async fn delete(&self, keys: &[String]) -> Result<(), BackendError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.query::<i64>(redis::cmd("DEL").arg(keys)).await?;
        Ok(())
    }

    pub async fn exists(&self, key: &str) -> Result<bool, BackendError> {
        self.query(redis::cmd("EXISTS").arg(key)).await
    }

    /// One page of keys from `cursor` (`SCAN`), and the cursor of the next, if any.
    pub async fn keys(&self, cursor: u64) -> Result<(Vec<String>, Option<u64>), BackendError> {
        let cmd = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .clone();
        let (next, keys): (u64, Vec<String>) = self.query(&cmd).await?;
        Ok((keys, (next != 0).then_some(next)))
    }

    pub async fn increment(&self, key: &str, delta: u64) -> Result<u64, BackendError> {
        let delta = i64::try_from(delta)
            .map_err(|_| BackendError(format!("Redis cannot add {delta}: over i64::MAX")))?;
        let value: i64 = self.query(redis::cmd("INCRBY").arg(key).arg(delta)).await?;
        // Redis has applied it by now: a guest that sees this error should not retry blindly.
        u64::try_from(value).map_err(|_| BackendError("the counter is below zero".into()))
    }

    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self.query(redis::cmd("MGET").arg(&keys)).await?;
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(key, value)| value.map(|value| (key, value)))
            .collect())
    }

    /// Sets all the pairs at once (`MSET`).
    pub async fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), BackendError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("MSET");
        for (key, value) in pairs {
            cmd.arg(key).arg(value.as_slice());
        }
        self.query(&cmd).await
    }
}
