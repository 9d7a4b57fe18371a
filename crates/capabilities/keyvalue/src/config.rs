//! What a component's key-value stores are: names mapped to backends, as `--keyvalue
//! [NAME=]BACKEND` and a manifest's `[component.keyvalue]` table give them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A component's stores, by the name a guest opens (`""` is the default store). Empty:
/// none configured (a component that imports wasi:keyvalue then gets a memory store).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValueConfig {
    pub stores: BTreeMap<String, StoreBackend>,
}

/// What holds a store's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// In the process, shared by every instance of the workload, lost on exit.
    Memory,
    /// An embedded database in this file (redb), which survives restarts.
    File(PathBuf),
    /// A Redis server, which several hosts can share.
    Redis(RedisTarget),
}

/// A Redis server and database, from a `redis://HOST:PORT[/DB]` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// The URL as given (it may hold a password: never shown or recorded).
    pub url: String,
    pub host: String,
    pub port: u16,
    pub db: i64,
}

/// Without the URL, which may hold a password.
impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for StoreBackend {
    /// How a startup line names it, without any password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreBackend::Memory => f.write_str("memory"),
            StoreBackend::File(path) => write!(f, "file {}", path.display()),
            StoreBackend::Redis(target) => {
                write!(f, "redis://{}:{}/{}", target.host, target.port, target.db)
            }
        }
    }
}

impl StoreBackend {
    /// Reads a backend: `memory`, `redis://HOST:PORT[/DB]`, or a file path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "a key-value store needs a backend: memory, a file path, or redis://HOST:PORT[/DB]"
                    .into(),
            );
        }
        if text == "memory" {
            return Ok(StoreBackend::Memory);
        }
        if text.starts_with("rediss://") {
            return Err(format!(
                "{text:?}: Redis over TLS (rediss://) is not supported yet"
            ));
        }
        if text.starts_with("redis://") {
            return parse_redis(text).map(StoreBackend::Redis);
        }
        if text.contains("://") {
            return Err(format!(
                "{text:?}: unknown key-value backend (memory, a file path, or redis://HOST:PORT[/DB])"
            ));
        }
        Ok(StoreBackend::File(PathBuf::from(text)))
    }

    /// `plugin_backend`: `memory`, `file`, `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreBackend::Memory => "memory",
            StoreBackend::File(_) => "file",
            StoreBackend::Redis(_) => "redis",
        }
    }
}

fn parse_redis(url: &str) -> Result<RedisTarget, String> {
    use redis::IntoConnectionInfo as _;
    // After the last `@`: a password may hold one.
    let shown = url
        .rsplit_once('@')
        .map_or(url.to_owned(), |(_, rest)| format!("redis://…@{rest}"));
    let info = url
        .into_connection_info()
        .map_err(|err| format!("{shown:?} is not a Redis URL (redis://HOST:PORT[/DB]): {err}"))?;
    let (host, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        other => {
            return Err(format!(
                "{shown:?}: only TCP Redis servers are supported, not {other}"
            ));
        }
    };
    Ok(RedisTarget {
        url: url.to_owned(),
        host,
        port,
        db: info.redis_settings().db(),
    })
}

/// Reads one `--keyvalue [NAME=]BACKEND` value. The text before a `=` is a store name
/// unless it looks like a path or URL (has a `/` or `:`): `cache=redis://h:6379`,
/// `./data/kv.redb`, `memory`.
pub fn parse_store_flag(text: &str) -> Result<(String, StoreBackend), String> {
    let (name, backend) = match text.split_once('=') {
        Some((name, backend)) if !name.contains(['/', ':']) => (name.trim(), backend),
        _ => ("", text),
    };
    Ok((name.to_owned(), StoreBackend::parse(backend)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_a_store_or_give_the_default_one() {
        assert_eq!(
            parse_store_flag("memory").unwrap(),
            ("".into(), StoreBackend::Memory)
        );
        assert_eq!(
            parse_store_flag("cache=memory").unwrap(),
            ("cache".into(), StoreBackend::Memory)
        );
        assert_eq!(
            parse_store_flag("./kv=1.redb").unwrap(),
            ("".into(), StoreBackend::File("./kv=1.redb".into()))
        );
        let (name, backend) = parse_store_flag("shared=redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(name, "shared");
        let StoreBackend::Redis(target) = backend else {
            panic!("not redis: {backend:?}")
        };
        assert_eq!(
            (target.host.as_str(), target.port, target.db),
            ("127.0.0.1", 6380, 2)
        );
    }

    #[test]
    fn bad_backends_are_refused_with_what_is_wrong() {
        assert!(
            StoreBackend::parse("")
                .unwrap_err()
                .contains("needs a backend")
        );
        assert!(
            StoreBackend::parse("nats://x")
                .unwrap_err()
                .contains("unknown key-value backend")
        );
        assert!(
            StoreBackend::parse("rediss://x:1")
                .unwrap_err()
                .contains("TLS")
        );
        let err = StoreBackend::parse("redis://:p4ss@w0rd@host:notaport").unwrap_err();
        assert!(!err.contains("p4ss") && !err.contains("w0rd"), "{err}");
        let backend = StoreBackend::parse("redis://:hunter2@127.0.0.1:6379").unwrap();
        assert!(!format!("{backend:?}").contains("hunter2"));
    }

    #[test]
    fn a_redis_backend_is_shown_without_its_password() {
        let backend = StoreBackend::parse("redis://:hunter2@127.0.0.1:6379/1").unwrap();
        assert_eq!(backend.to_string(), "redis://127.0.0.1:6379/1");
    }
}
