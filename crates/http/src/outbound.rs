//! Which hosts a guest's outgoing wasi:http requests may reach (`--allow-outbound`).

use std::fmt;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// One allowed destination: `HOST[:PORT]`, where HOST may be `*` (any host) or
/// `*.example.com` (any subdomain), and PORT may be `*`. Without a port, any port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let (host, port) = match trimmed.rsplit_once(':') {
            _ if trimmed.ends_with(']') => (trimmed, None),
            Some((host, "*")) => (host, None),
            Some((host, port)) => {
                let port = port.parse().map_err(|_| {
                    format!("{text:?}: {port:?} is not a port; expected HOST[:PORT]")
                })?;
                (host, Some(port))
            }
            None => (trimmed, None),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "{text:?}: expected HOST[:PORT], e.g. api.example.com:443 or *"
            ));
        }
        Ok(HostPattern { host, port })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = match self.host.strip_prefix("*.") {
            _ if self.host == "*" => true,
            Some(domain) => {
                host.len() > domain.len() + 1
                    && host.ends_with(domain)
                    && host[..host.len() - domain.len()].ends_with('.')
            }
            None => self.host == host,
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// The destinations a guest may reach; empty denies every outgoing request.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    allowed: std::sync::Arc<[HostPattern]>,
}

impl OutboundPolicy {
    pub fn new(allowed: Vec<HostPattern>) -> Self {
        OutboundPolicy {
            allowed: allowed.into(),
        }
    }

    /// Whether a request to this URI may go out.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
                443
            } else {
                80
            });
        self.allowed
            .iter()
            .any(|pattern| pattern.matches(&host, port))
    }
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        if self.allows(request.uri()) {
            return wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        }
        tracing::debug!(uri = %request.uri().host().unwrap_or(""), "outgoing request denied");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(
            patterns
                .iter()
                .map(|p| HostPattern::parse(p).unwrap())
                .collect(),
        )
    }

    fn allows(policy: &OutboundPolicy, uri: &str) -> bool {
        policy.allows(&uri.parse().unwrap())
    }

    #[test]
    fn nothing_allowed_by_default() {
        assert!(!allows(&policy(&[]), "http://127.0.0.1:8080/"));
    }

    #[test]
    fn host_and_port_matching() {
        let p = policy(&["127.0.0.1:8081", "api.example.com", "*.internal:443"]);
        assert!(allows(&p, "http://127.0.0.1:8081/x"));
        assert!(!allows(&p, "http://127.0.0.1:8082/x"));
        assert!(allows(&p, "http://API.example.com/"));
        assert!(allows(&p, "https://api.example.com:8443/"));
        assert!(allows(&p, "https://db.internal/"));
        assert!(!allows(&p, "http://db.internal/"));
        assert!(!allows(&p, "https://internal/"));
        assert!(!allows(&p, "https://evilinternal/"));
    }

    #[test]
    fn ipv6_in_brackets() {
        assert!(allows(&policy(&["[::1]:8080"]), "http://[::1]:8080/"));
        assert!(allows(&policy(&["[::1]"]), "http://[::1]:9/"));
    }

    #[test]
    fn wildcards() {
        assert!(allows(&policy(&["*"]), "http://anything:1234/"));
        assert!(allows(&policy(&["*:8080"]), "http://a:8080/"));
        assert!(!allows(&policy(&["*:8080"]), "http://a:8081/"));
        assert!(allows(&policy(&["localhost:*"]), "http://localhost:9/"));
    }

    #[test]
    fn bad_patterns_say_what_is_expected() {
        assert!(
            HostPattern::parse("host:http")
                .unwrap_err()
                .contains("not a port")
        );
        assert!(HostPattern::parse("").unwrap_err().contains("HOST[:PORT]"));
        assert!(HostPattern::parse("http://x/").is_err());
    }
}
