//! The connection a request came on, and the attribute values its requests share.

use http::HeaderValue;
use opentelemetry::StringValue;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// The connection a request came on. The attribute values that stay the same for its
/// requests (the client's address; the `Host` and `User-Agent` a client sends every
/// time) are made for the first request that is traced, not for each. They are shared
/// (`Arc<str>`): an owned string's value would be copied into a new allocation for each
/// request's span.
pub(crate) struct Connection {
    peer: SocketAddr,
    local: SocketAddr,
    client_address: OnceLock<StringValue>,
    local_address: OnceLock<StringValue>,
    host: Remembered<(StringValue, u16)>,
    user_agent: Remembered<StringValue>,
}

impl Connection {
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        Connection {
            peer,
            local,
            client_address: OnceLock::new(),
            local_address: OnceLock::new(),
            host: Remembered::default(),
            user_agent: Remembered::default(),
        }
    }

    pub(crate) fn client_address(&self) -> StringValue {
        self.client_address
            .get_or_init(|| shared(self.peer.ip().to_string()))
            .clone()
    }

    /// `server.address` and `server.port`: from the `Host` header, else the address
    /// the connection was accepted on.
    pub(crate) fn server_address(&self, host: Option<&HeaderValue>) -> (StringValue, u16) {
        let local_port = self.local.port();
        let named = host.and_then(|host| {
            self.host.get(host, |host| {
                let authority = host.to_str().ok()?.parse::<http::uri::Authority>().ok()?;
                let port = authority.port_u16().unwrap_or(local_port);
                // An IPv6 address without its URI brackets, as the conventions have it.
                let host = authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                Some((shared(host), port))
            })
        });
        named.unwrap_or_else(|| {
            let address = self
                .local_address
                .get_or_init(|| shared(self.local.ip().to_string()));
            (address.clone(), local_port)
        })
    }

    pub(crate) fn user_agent(&self, agent: &HeaderValue) -> Option<StringValue> {
        self.user_agent
            .get(agent, |agent| Some(shared(agent.to_str().ok()?)))
    }
}

/// An attribute value its clones share (a reference count), without copying it.
pub(crate) fn shared(text: impl Into<std::sync::Arc<str>>) -> StringValue {
    StringValue::from(text.into())
}

/// What a header's value became the first time a request on the connection sent it,
/// reused while later requests send the same bytes.
struct Remembered<T>(OnceLock<Option<(HeaderValue, T)>>);

impl<T> Default for Remembered<T> {
    fn default() -> Self {
        Remembered(OnceLock::new())
    }
}

impl<T: Clone> Remembered<T> {
    fn get(&self, header: &HeaderValue, make: impl Fn(&HeaderValue) -> Option<T>) -> Option<T> {
        let first = self.0.get_or_init(|| {
            // A copy: the header's bytes share hyper's read buffer, which would be kept.
            let own = HeaderValue::from_bytes(header.as_bytes()).ok()?;
            Some((own, make(header)?))
        });
        match first {
            Some((seen, value)) if seen == header => Some(value.clone()),
            _ => make(header),
        }
    }
}
