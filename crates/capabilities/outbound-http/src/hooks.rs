//! The telemetry of a guest's outgoing requests: an `OutgoingHttpRequest` client span
//! each, `http.client.request.duration`, and the trace context injected where the policy
//! allows.

use crate::policy::{OutboundPolicy, destination};
use opentelemetry::propagation::{Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use wasmlens_telemetry::names::{attr, error_type, span};
use wasmlens_telemetry::{HeaderInjector, KnownMethod, SpanStart, Telemetry};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// The wasi:http hooks of one instance: the policy, and the telemetry of each outgoing
/// request (an `OutgoingHttpRequest` client span, `http.client.request.duration`, and
/// the trace context injected where the policy allows).
pub struct OutboundHooks {
    policy: OutboundPolicy,
    telemetry: Arc<Telemetry>,
}

impl OutboundHooks {
    pub(crate) fn new(policy: OutboundPolicy, telemetry: Arc<Telemetry>) -> Self {
        OutboundHooks { policy, telemetry }
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
        let method = KnownMethod::of(request.method()).name();
        let (host, port) = destination(&uri).unwrap_or_default();
        let duration_attrs = vec![
            KeyValue::new(attr::HTTP_REQUEST_METHOD, method),
            KeyValue::new(attr::SERVER_ADDRESS, host.clone()),
            KeyValue::new(attr::SERVER_PORT, i64::from(port)),
        ];
        let parent = Context::current();
        let start = SpanStart::new(span::OUTGOING_HTTP_REQUEST, SpanKind::Client);
        let span = self.telemetry.host_tracer().start(&parent, start, || {
            let mut attrs = duration_attrs.clone();
            attrs.push(KeyValue::new(
                attr::URL_FULL,
                url_without_query(&uri, &host),
            ));
            attrs
        });
        let cx = parent.with_span(span);
        let client_span = cx.span().span_context().clone();
        let telemetry = self.telemetry.clone();
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
            telemetry
                .instruments()
                .http_client_request_duration
                .record(started.elapsed().as_secs_f64(), &duration_attrs);
            span.end();
        };

        if let Err(denied) = self.policy.check(&uri) {
            tracing::warn!("outgoing request to {host}:{port} denied: {denied}");
            finish(None, Some(error_type::HTTP_REQUEST_DENIED.to_owned()));
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
}
