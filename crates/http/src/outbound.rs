//! Which hosts a guest's outgoing wasi:http requests may reach (`--allow-outbound`).

use opentelemetry::propagation::{Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use wasmlens_telemetry::names::{attr, span};
use wasmlens_telemetry::{HeaderInjector, Instruments, Telemetry};
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

/// Where a guest's outgoing requests may go, and which of them carry trace context.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    allowed: Arc<[HostPattern]>,
    /// `None`: every allowed host. A traceparent can leak to third parties, so this can
    /// be narrowed, down to no host at all.
    propagate_to: Option<Arc<[HostPattern]>>,
}

impl OutboundPolicy {
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
        destination(uri).is_some_and(|(host, port)| matches_any(&self.allowed, &host, port))
    }

    /// Whether a request to this URI carries the trace context.
    pub fn propagates_to(&self, uri: &http::Uri) -> bool {
        let patterns = self.propagate_to.as_deref().unwrap_or(&self.allowed);
        destination(uri).is_some_and(|(host, port)| matches_any(patterns, &host, port))
    }
}

fn destination(uri: &http::Uri) -> Option<(String, u16)> {
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

/// The wasi:http hooks of one instance: the policy, and the telemetry of each outgoing
/// request (an `OutgoingHttpRequest` client span, `http.client.request.duration`, and
/// the trace context injected where the policy allows).
pub struct OutboundHooks {
    policy: OutboundPolicy,
    telemetry: Arc<Telemetry>,
    instruments: Arc<Instruments>,
}

impl OutboundHooks {
    pub fn new(
        policy: OutboundPolicy,
        telemetry: Arc<Telemetry>,
        instruments: Arc<Instruments>,
    ) -> Self {
        OutboundHooks {
            policy,
            telemetry,
            instruments,
        }
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

impl WasiHttpHooks for OutboundHooks {
    /// Called inside the guest's call, where its invocation's context is current: the
    /// client span is that invocation's child.
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let started = Instant::now();
        let uri = request.uri().clone();
        let method = crate::metrics::KnownMethod::of(request.method()).name();
        let (host, port) = destination(&uri).unwrap_or_default();
        let duration_attrs = vec![
            KeyValue::new(attr::HTTP_REQUEST_METHOD, method),
            KeyValue::new(attr::SERVER_ADDRESS, host.clone()),
            KeyValue::new(attr::SERVER_PORT, i64::from(port)),
        ];
        let parent = Context::current();
        let tracer = self.telemetry.tracer();
        let mut builder = tracer
            .span_builder(span::OUTGOING_HTTP_REQUEST)
            .with_kind(SpanKind::Client);
        if self.telemetry.traces_enabled() {
            let mut attrs = duration_attrs.clone();
            attrs.push(KeyValue::new(
                attr::URL_FULL,
                url_without_query(&uri, &host),
            ));
            builder = builder.with_attributes(attrs);
        }
        let cx = parent.with_span(builder.start_with_context(tracer, &parent));
        let client_span = cx.span().span_context().clone();
        let instruments = self.instruments.clone();
        // Ends the span and records the duration, once: when the response headers arrive,
        // or when the request fails or is denied.
        let finish = move |status: Option<u16>, error: Option<String>| {
            let mut duration_attrs = duration_attrs;
            let span = cx.span();
            if let Some(status) = status {
                let status = KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, i64::from(status));
                span.set_attribute(status.clone());
                duration_attrs.push(status);
            }
            if let Some(error) = error {
                span.set_status(Status::error(error.clone()));
                let error = KeyValue::new(attr::ERROR_TYPE, error);
                span.set_attribute(error.clone());
                duration_attrs.push(error);
            }
            instruments
                .http_client_request_duration
                .record(started.elapsed().as_secs_f64(), &duration_attrs);
            span.end();
        };

        if !self.policy.allows(&uri) {
            tracing::warn!("outgoing request to {host}:{port} denied: not in --allow-outbound");
            finish(None, Some("HTTP-request-denied".to_owned()));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        if self.policy.propagates_to(&uri) {
            // The client span's traceparent, and the baggage the guest's request came with.
            let carried = parent.with_remote_span_context(client_span);
            let headers = &mut NonEmpty(HeaderInjector(request.headers_mut()));
            self.telemetry
                .propagator()
                .inject_context(&carried, headers);
        }
        let sent = wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        Box::new(async move {
            let result = Pin::from(sent).await;
            match &result {
                Ok((response, _)) => {
                    let status = response.status();
                    let error = status.is_server_error().then(|| status.as_str().to_owned());
                    finish(Some(status.as_u16()), error);
                }
                Err(err) => finish(None, Some(error_type(err))),
            }
            result
        })
    }
}
/// Leaves out empty values: the propagator writes an empty `tracestate`, which the W3C
/// specification asks senders not to.
struct NonEmpty<'a>(HeaderInjector<'a>);

impl Injector for NonEmpty<'_> {
    fn set(&mut self, key: &str, value: String) {
        if !value.is_empty() {
            self.0.set(key, value);
        }
    }
}

/// `url.full` without the query string (it may hold secrets) or any userinfo.
fn url_without_query(uri: &http::Uri, host: &str) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{host}{port}{}", uri.path())
}

/// A low-cardinality class for a failed request: the error's variant name.
fn error_type(err: &wasmtime_wasi_http::Error) -> String {
    let debug = format!("{err:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("_OTHER")
        .to_owned()
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

    #[test]
    fn url_full_drops_query_and_userinfo() {
        let uri: http::Uri = "http://user:pw@svc.internal:8080/a/b?token=1"
            .parse()
            .unwrap();
        assert_eq!(
            url_without_query(&uri, "svc.internal"),
            "http://svc.internal:8080/a/b"
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
