//! One HTTP request: its `HttpRequest` span, the guest's answer, and the host's own
//! answers (404, 413, 431, 500) when the guest cannot or may not give one.

use crate::answer::{HostAnswer, head_size};
use crate::body::{ObservedBody, RequestEnd, ResponseBody};
use crate::connection::{Connection, shared};
use crate::metrics::HttpMetrics;
use crate::proxy::ProxyComponent;
use crate::slots::Slots;
use http::{Request, Response, Version, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, StringValue};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use wasmlens_host::Nesting;
use wasmlens_telemetry::names::{attr, span, url_scheme};
use wasmlens_telemetry::{KnownMethod, SpanStart, Telemetry, propagation};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// Limits on what a client may send.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// The request line and headers together, counted as sent.
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    /// Whether each request gets a line in the access log.
    pub access_log: bool,
}

/// A component and the path prefix it serves: `/api` serves `/api` and `/api/...`.
pub struct Route {
    pub prefix: String,
    pub component: ProxyComponent,
}

/// A route with what its requests share, built once.
struct Routed {
    prefix: String,
    component: ProxyComponent,
    /// `http.route`: `/api/*`, or `/*` for `/`.
    route_attr: KeyValue,
}

impl Routed {
    fn serves(&self, path: &str) -> bool {
        self.prefix == "/"
            || path
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Serves requests with the workload's components; shared by every connection.
pub struct Handler {
    /// Longest prefix first, so the most specific route wins.
    routes: Vec<Routed>,
    telemetry: Arc<Telemetry>,
    metrics: Arc<HttpMetrics>,
    limits: RequestLimits,
    slots: Slots,
    /// Held by every running guest task; shutdown waits until all clones are gone.
    pub(crate) drain: mpsc::Sender<()>,
    /// Whether a line is logged for each request (`--access-log`).
    access_log: bool,
}

impl Handler {
    pub(crate) fn new(
        routes: Vec<Route>,
        telemetry: Arc<Telemetry>,
        limits: RequestLimits,
        slots: Slots,
        drain: mpsc::Sender<()>,
    ) -> Self {
        let mut routes: Vec<Routed> = routes
            .into_iter()
            .map(|Route { prefix, component }| {
                // `/api/` and `/api` are the same route.
                let prefix = match prefix.trim_end_matches('/') {
                    "" => "/".to_owned(),
                    trimmed => trimmed.to_owned(),
                };
                let template = wasmlens_telemetry::names::http_route(&prefix);
                // Shared, not copied: cloning it per request costs a reference count.
                let template = shared(template);
                Routed {
                    route_attr: KeyValue::new(attr::HTTP_ROUTE, template),
                    prefix,
                    component,
                }
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let metrics = HttpMetrics::new(
            telemetry.clone(),
            routes.iter().map(|r| r.route_attr.clone()),
        );
        Handler {
            routes,
            metrics: Arc::new(metrics),
            slots,
            telemetry,
            limits,
            drain,
            access_log: limits.access_log,
        }
    }

    pub(crate) async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        connection: &Connection,
    ) -> Response<ObservedBody> {
        let started = Instant::now();
        let telemetry = &self.telemetry;
        let method = KnownMethod::of(request.method());
        let active = self.metrics.request_started(method);
        let access_path = self.access_log.then(|| request.uri().path().to_owned());
        let parent = telemetry
            .propagator()
            .extract(&propagation::TraceHeaders::new(request.headers()));
        let route = self
            .routes
            .iter()
            .position(|r| r.serves(request.uri().path()));
        let tracer = telemetry.host_tracer();
        let start = SpanStart::new(span::HTTP_REQUEST, SpanKind::Server);
        let span = tracer.start(&parent, start, || {
            let route = route.map(|i| &self.routes[i].route_attr);
            self.request_attributes(&request, method, route, connection)
        });
        let cx = parent.with_span(span);

        let (response, answered_error, failure) = match self
            .clone()
            .respond(request, route, cx.clone())
            .with_context(cx.clone())
            .await
        {
            Ok(response) => (response, None, None),
            Err(answer) => (
                answer.response(),
                answer.error_type(),
                answer.into_failure(),
            ),
        };

        let status = response.status();
        let error_type: Option<StringValue> = match (&failure, answered_error) {
            (Some(failure), _) => Some(failure.kind.as_str().into()),
            (None, Some(error_type)) => Some(error_type.into()),
            (None, None) if status.is_server_error() => Some(status.as_str().to_owned().into()),
            (None, None) => None,
        };
        let span = cx.span();
        if span.is_recording() {
            span.set_attribute(KeyValue::new(
                attr::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
            if telemetry.config().http_dup_semconv {
                span.set_attribute(KeyValue::new(
                    attr::old_http::STATUS_CODE,
                    i64::from(status.as_u16()),
                ));
            }
            if let Some(error_type) = &error_type {
                span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.clone()));
            }
            if status.is_server_error() {
                let message = match (&failure, &error_type) {
                    (Some(failure), _) => failure.to_string(),
                    (None, Some(error_type)) => error_type.to_string(),
                    (None, None) => String::new(),
                };
                span.set_status(Status::error(message));
            }
        }
        let start = SpanStart::new(span::HTTP_RESPONSE, SpanKind::Internal);
        // Room for the two attributes `RequestEnd::finish` sets.
        let response_span = tracer.start(&cx, start, || Vec::with_capacity(2));
        let end = RequestEnd {
            response: cx.with_span(response_span),
            request: cx,
            started,
            status: status.as_u16(),
            route,
            error_type,
            active,
            access_path,
        };
        response.map(|body| ObservedBody::new(body, end))
    }

    /// Runs the guest in a task of its own (it may go on streaming the body after it
    /// has set the response) and waits for the response it sets.
    async fn respond(
        self: Arc<Self>,
        request: Request<Incoming>,
        route: Option<usize>,
        cx: Context,
    ) -> Result<Response<ResponseBody>, HostAnswer> {
        // hyper bounds what it buffers of a head, but not to the byte: this is the limit.
        let max_header = self.limits.max_header_bytes;
        if head_size(&request) > max_header {
            return Err(HostAnswer::HeadersTooLarge { limit: max_header });
        }
        let route = route.ok_or(HostAnswer::NoRoute)?;
        let max_body = self.limits.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body) {
            return Err(HostAnswer::BodyTooLarge { limit: max_body });
        }
        let permit = self.slots.take().await.map_err(HostAnswer::Shed)?;

        let request = request.map(|body| {
            http_body_util::Limited::new(body, usize::try_from(max_body).unwrap_or(usize::MAX))
                .map_err(move |err| match err.downcast::<hyper::Error>() {
                    Ok(err) => wasmtime_wasi_http::Error::Hyper(*err),
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_body)),
                })
        });
        let (sender, receiver) = oneshot::channel();
        let drain = self.drain.clone();
        let this = self.clone();
        let parent = cx.clone();
        // Boxed: the guest's future is large (its instantiation and its call), and a task
        // moves its future between its stages; a box is moved for the price of a pointer.
        let guest = tokio::spawn(Box::pin(
            async move {
                let _permit = permit;
                let _drain = drain;
                let component = &this.routes[route].component;
                let nesting = Nesting::InstanceBeforeInvocation;
                let handled = component.invoke(&parent, nesting, async |store, proxy| {
                    let http = &mut store.data_mut().http();
                    let request = http.new_incoming_request(Scheme::Http, request)?;
                    let response = http.new_response_outparam(sender)?;
                    let handler = proxy.wasi_http_incoming_handler();
                    handler.call_handle(store, request, response).await
                });
                handled.await.err()
            }
            .with_context(cx),
        ));

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => {
                tracing::warn!("the guest answered with an error: {code:?}");
                Err(HostAnswer::NoAnswer)
            }
            // The guest dropped the response without setting it: it failed, or returned
            // without answering.
            Err(_) => match guest.await {
                Ok(Some(failure)) => Err(HostAnswer::GuestFailed(failure)),
                Ok(None) => {
                    tracing::warn!("the guest returned without setting a response");
                    Err(HostAnswer::NoAnswer)
                }
                Err(join) => {
                    tracing::error!("the guest task failed: {join}");
                    Err(HostAnswer::NoAnswer)
                }
            },
        }
    }

    fn request_attributes(
        &self,
        request: &Request<Incoming>,
        method: KnownMethod,
        route: Option<&KeyValue>,
        connection: &Connection,
    ) -> Vec<KeyValue> {
        let path = request.uri().path();
        let headers = request.headers();
        let (server_address, server_port) = connection.server_address(headers.get(header::HOST));
        let mut attrs = Vec::with_capacity(13);
        attrs.extend([
            KeyValue::new(attr::HTTP_REQUEST_METHOD, method.name()),
            KeyValue::new(attr::URL_PATH, path.to_owned()),
            KeyValue::new(attr::URL_SCHEME, url_scheme::HTTP),
            KeyValue::new(attr::SERVER_ADDRESS, server_address.clone()),
            KeyValue::new(attr::SERVER_PORT, i64::from(server_port)),
            KeyValue::new(
                attr::NETWORK_PROTOCOL_VERSION,
                protocol_version(request.version()),
            ),
            KeyValue::new(attr::CLIENT_ADDRESS, connection.client_address()),
        ]);
        attrs.extend(route.cloned());
        if let Some(agent) = headers
            .get(header::USER_AGENT)
            .and_then(|agent| connection.user_agent(agent))
        {
            attrs.push(KeyValue::new(attr::USER_AGENT_ORIGINAL, agent));
        }
        if self.telemetry.config().http_dup_semconv {
            attrs.push(KeyValue::new(attr::old_http::METHOD, method.name()));
            attrs.push(KeyValue::new(attr::old_http::HOST, server_address));
            // The old key carried the query string; it is left out here as everywhere.
            attrs.push(KeyValue::new(attr::old_http::TARGET, path.to_owned()));
        }
        attrs
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
