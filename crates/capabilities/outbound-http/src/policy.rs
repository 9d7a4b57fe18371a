//! Which hosts a guest's outgoing wasi:http requests may reach (`--allow-outbound`),
//! and which of them get the trace context (`--propagate-to`).

use std::fmt;
use std::sync::Arc;

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

/// Why an outgoing request was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The host and port are not on the list.
    NotAllowed,
    /// The URL names a user (`user@host`).
    UserInAuthority,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denied::NotAllowed => {
                "not an allowed outbound host (--allow-outbound, or allowed_outbound_hosts in a manifest)"
            }
            Denied::UserInAuthority => "its URL names a user (user@host), which is never sent",
        })
    }
}

/// Where a guest's outgoing requests may go, and which of them carry trace context.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    allowed: Arc<[HostPattern]>,
    /// `None`: every allowed host. A traceparent can leak to third parties, so this can
    /// be narrowed, down to no host at all.
    propagate_to: Option<Arc<[HostPattern]>>,
}

impl OutboundPolicy {
    /// The hosts a guest may call.
    pub fn allowed(&self) -> &[HostPattern] {
        &self.allowed
    }

    /// The hosts that get the trace context; `None`: every allowed host.
    pub fn propagated_to(&self) -> Option<&[HostPattern]> {
        self.propagate_to.as_deref()
    }

    /// `allowed` empty denies every outgoing request; `propagate_to` `None` propagates to
    /// every allowed host.
    pub fn new(allowed: Vec<HostPattern>, propagate_to: Option<Vec<HostPattern>>) -> Self {
        OutboundPolicy {
            allowed: allowed.into(),
            propagate_to: propagate_to.map(Into::into),
        }
    }

    /// Whether a request to this URI may go out.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        self.check(uri).is_ok()
    }

    /// Whether a request to this URI may go out, and if not, why.
    pub fn check(&self, uri: &http::Uri) -> Result<(), Denied> {
        // `user@host`: what the connection would go to is not what the list was asked
        // about, and credentials do not belong in a URL.
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(Denied::UserInAuthority);
        }
        match destination(uri) {
            Some((host, port)) if matches_any(&self.allowed, &host, port) => Ok(()),
            _ => Err(Denied::NotAllowed),
        }
    }

    /// Whether a request to this URI carries the trace context.
    pub fn propagates_to(&self, uri: &http::Uri) -> bool {
        let patterns = self.propagate_to.as_deref().unwrap_or(&self.allowed);
        destination(uri).is_some_and(|(host, port)| matches_any(patterns, &host, port))
    }
}

pub(crate) fn destination(uri: &http::Uri) -> Option<(String, u16)> {
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let default_port = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        443
    } else {
        80
    };
    Some((host, uri.port_u16().unwrap_or(default_port)))
}

fn matches_any(patterns: &[HostPattern], host: &str, port: u16) -> bool {
    patterns.iter().any(|pattern| pattern.matches(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(patterns: &[&str]) -> Vec<HostPattern> {
        patterns
            .iter()
            .map(|p| HostPattern::parse(p).unwrap())
            .collect()
    }

    fn policy(allowed: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(patterns(allowed), None)
    }

    #[test]
    fn context_goes_to_allowed_hosts_unless_narrowed() {
        let uri = |u: &str| u.parse::<http::Uri>().unwrap();
        let everywhere = policy(&["a.internal", "api.example.com"]);
        assert!(everywhere.propagates_to(&uri("http://a.internal/")));
        assert!(everywhere.propagates_to(&uri("https://api.example.com/")));
        assert!(!everywhere.propagates_to(&uri("http://elsewhere/")));

        let narrowed = OutboundPolicy::new(
            patterns(&["a.internal", "api.example.com"]),
            Some(patterns(&["a.internal"])),
        );
        assert!(narrowed.propagates_to(&uri("http://a.internal/")));
        assert!(
            !narrowed.propagates_to(&uri("https://api.example.com/")),
            "a third party gets no traceparent"
        );

        let nowhere = OutboundPolicy::new(patterns(&["*"]), Some(Vec::new()));
        assert!(
            nowhere.allows(&uri("http://a.internal/"))
                && !nowhere.propagates_to(&uri("http://a.internal/"))
        );
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
    fn a_user_in_the_authority_is_denied() {
        let p = policy(&["*"]);
        let check = |uri: &str| p.check(&uri.parse().unwrap());
        assert_eq!(
            check("http://user@a.internal/"),
            Err(Denied::UserInAuthority)
        );
        assert_eq!(
            check("http://a.internal:80@b.internal/"),
            Err(Denied::UserInAuthority)
        );
        assert_eq!(check("http://a.internal/"), Ok(()));
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
