//! One HTTP request: its `HttpRequest` span, the guest's answer, and the host's own
//! answers (413, 500) when the guest cannot give one.

use crate::body::{ActiveRequest, ObservedBody, RequestEnd, ResponseBody, full};
use crate::outbound::OutboundHooks;
use crate::proxy::{ProxyComponent, ProxyState, Request as GuestRequest};
use http::{Method, Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc, oneshot};
use wasmlens_engine::{GuestFailure, GuestOutput, GuestState, Passthrough, new_store};
use wasmlens_telemetry::names::{attr, span};
use wasmlens_telemetry::{GuestLogEmitter, GuestStream, Instruments, Telemetry};
use wasmlens_telemetry::{ids, propagation};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// Limits on what a client may send.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    pub max_body_bytes: u64,
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
    guest_logs: Option<GuestLogEmitter>,
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
    instruments: Arc<Instruments>,
    limits: RequestLimits,
    permits: Arc<Semaphore>,
    /// Held by every running guest task; shutdown waits until all clones are gone.
    pub(crate) drain: mpsc::Sender<()>,
}

impl Handler {
    pub(crate) fn new(
        routes: Vec<Route>,
        telemetry: Arc<Telemetry>,
        instruments: Arc<Instruments>,
        limits: RequestLimits,
        max_concurrent_requests: usize,
        drain: mpsc::Sender<()>,
    ) -> Self {
        let mut routes: Vec<Routed> = routes
            .into_iter()
            .map(|Route { prefix, component }| {
                let template = format!("{}/*", prefix.trim_end_matches('/'));
                let guest_logs = telemetry.logger().map(|logger| {
                    GuestLogEmitter::new(logger.clone(), component.telemetry.id.clone())
                });
                // Shared, not copied: cloning it per request costs a reference count.
                let template = opentelemetry::StringValue::from(Arc::<str>::from(template));
                Routed {
                    route_attr: KeyValue::new(attr::HTTP_ROUTE, template),
                    prefix,
                    component,
                    guest_logs,
                }
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Handler {
            routes,
            permits: Arc::new(Semaphore::new(max_concurrent_requests)),
            telemetry,
            instruments,
            limits,
            drain,
        }
    }

    pub(crate) async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Response<ObservedBody> {
        let started = Instant::now();
        let telemetry = &self.telemetry;
        let method = method_name(request.method());
        let active = ActiveRequest::new(self.instruments.clone(), method);
        let parent = telemetry
            .propagator()
            .extract(&propagation::TraceHeaders::new(request.headers()));
        let route = self
            .routes
            .iter()
            .position(|r| r.serves(request.uri().path()));
        let route_attr = route.map(|i| self.routes[i].route_attr.clone());
        let tracer = telemetry.tracer();
        let mut builder = tracer
            .span_builder(span::HTTP_REQUEST)
            .with_kind(SpanKind::Server);
        if telemetry.traces_enabled() {
            builder = builder.with_attributes(self.request_attributes(
                &request,
                method,
                &route_attr,
                peer,
                local,
            ));
        }
        let cx = parent.with_span(builder.start_with_context(tracer, &parent));

        let (response, failure) = match self
            .clone()
            .respond(request, route, cx.clone())
            .with_context(cx.clone())
            .await
        {
            Ok(response) => (response, None),
            Err((status, failure)) => {
                let reason = failure
                    .as_ref()
                    .map_or("internal error", |f| f.kind.describe());
                let body = full(format!(
                    "{} {}: {reason}\n",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ));
                let mut response = Response::new(body);
                *response.status_mut() = status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain"),
                );
                (response, failure)
            }
        };

        let status = response.status();
        let error_type: Option<opentelemetry::StringValue> = match &failure {
            Some(failure) => Some(failure.kind.as_str().into()),
            None if status.is_server_error() => Some(status.as_str().to_owned().into()),
            None => None,
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
                span.set_status(Status::error(
                    failure.as_ref().map_or_else(String::new, |f| f.to_string()),
                ));
            }
        }
        let response_span = tracer
            .span_builder(span::HTTP_RESPONSE)
            .with_kind(SpanKind::Internal)
            .start_with_context(tracer, &cx);
        let end = RequestEnd {
            response: cx.with_span(response_span),
            request: cx,
            started,
            method,
            status: i64::from(status.as_u16()),
            route: route_attr,
            error_type,
            active,
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
    ) -> Result<Response<ResponseBody>, (StatusCode, Option<GuestFailure>)> {
        let Some(route) = route else {
            return Err((StatusCode::NOT_FOUND, None));
        };
        let max_body = self.limits.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body) {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, None));
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, None))?;

        let routed = &self.routes[route];
        let component = &routed.component;
        let stdout = GuestOutput::new(
            GuestStream::Stdout,
            Passthrough::Lines,
            routed.guest_logs.clone(),
        );
        let stderr = GuestOutput::new(
            GuestStream::Stderr,
            Passthrough::Lines,
            routed.guest_logs.clone(),
        );
        let internal = |err: anyhow::Error| {
            tracing::error!("cannot prepare the guest: {err:#}");
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        };
        // The guest's TRACEPARENT names its ComponentInvocation span, which starts only
        // after instantiation: its id is drawn now and given to the span then.
        let invocation_id = ids::new_span_id();
        let host_env = match self.telemetry.config().propagators.tracecontext {
            true => {
                let request_span = cx.span();
                let request = request_span.span_context();
                let invocation = SpanContext::new(
                    request.trace_id(),
                    invocation_id,
                    request.trace_flags(),
                    false,
                    request.trace_state().clone(),
                );
                propagation::guest_env(&invocation)
            }
            false => Vec::new(),
        };
        let wasi = component
            .env
            .wasi_ctx(&host_env, stdout, stderr)
            .map_err(internal)?;
        let limits = component.limits();
        let state = ProxyState::new(
            GuestState::new(wasi, limits, component.telemetry.gauges()),
            OutboundHooks::new(
                component.outbound.clone(),
                self.telemetry.clone(),
                self.instruments.clone(),
            ),
        );
        let mut store = new_store(component.engine(), state, limits).map_err(internal)?;

        let request = request.map(|body| {
            http_body_util::Limited::new(body, usize::try_from(max_body).unwrap_or(usize::MAX))
                .map_err(move |err| match err.downcast::<hyper::Error>() {
                    Ok(err) => wasmtime_wasi_http::Error::Hyper(*err),
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_body)),
                })
        });
        let (sender, receiver) = oneshot::channel();
        let wasm_error = |err: wasmtime::Error| internal(anyhow::anyhow!("{err:#}"));
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(wasm_error)?;
        let response = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(wasm_error)?;

        let invocation = GuestRequest {
            store,
            request,
            response,
            parent: cx.clone(),
            span_id: invocation_id,
        };
        let drain = self.drain.clone();
        let this = self.clone();
        let guest = tokio::spawn(
            async move {
                let _permit = permit;
                let _drain = drain;
                this.routes[route].component.invoke(invocation).await
            }
            .with_context(cx),
        );

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => {
                tracing::warn!("the guest answered with an error: {code:?}");
                Err((StatusCode::INTERNAL_SERVER_ERROR, None))
            }
            // The guest dropped the response without setting it: it failed, or returned
            // without answering.
            Err(_) => match guest.await {
                Ok(Some(failure)) => Err((StatusCode::INTERNAL_SERVER_ERROR, Some(failure))),
                Ok(None) => {
                    tracing::warn!("the guest returned without setting a response");
                    Err((StatusCode::INTERNAL_SERVER_ERROR, None))
                }
                Err(join) => {
                    tracing::error!("the guest task failed: {join}");
                    Err((StatusCode::INTERNAL_SERVER_ERROR, None))
                }
            },
        }
    }

    fn request_attributes(
        &self,
        request: &Request<Incoming>,
        method: &'static str,
        route: &Option<KeyValue>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Vec<KeyValue> {
        let uri = request.uri();
        let authority = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok()?.parse::<http::uri::Authority>().ok());
        let (server_address, server_port) = match &authority {
            Some(authority) => (
                authority.host().to_owned(),
                authority.port_u16().unwrap_or(local.port()),
            ),
            None => (local.ip().to_string(), local.port()),
        };
        let mut attrs = vec![
            KeyValue::new(attr::HTTP_REQUEST_METHOD, method),
            KeyValue::new(attr::URL_PATH, uri.path().to_owned()),
            KeyValue::new(attr::URL_SCHEME, "http"),
            KeyValue::new(attr::SERVER_ADDRESS, server_address.clone()),
            KeyValue::new(attr::SERVER_PORT, i64::from(server_port)),
            KeyValue::new(
                attr::NETWORK_PROTOCOL_VERSION,
                protocol_version(request.version()),
            ),
            KeyValue::new(attr::CLIENT_ADDRESS, peer.ip().to_string()),
        ];
        attrs.extend(route.clone());
        if let Some(agent) = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attrs.push(KeyValue::new(attr::USER_AGENT_ORIGINAL, agent.to_owned()));
        }
        if self.telemetry.config().http_dup_semconv {
            attrs.push(KeyValue::new(attr::old_http::METHOD, method));
            attrs.push(KeyValue::new(attr::old_http::HOST, server_address));
            // The old key carried the query string; it is left out here as everywhere.
            attrs.push(KeyValue::new(attr::old_http::TARGET, uri.path().to_owned()));
        }
        attrs
    }
}

/// The method as the conventions want it: one of the known methods, else `_OTHER`, so
/// that a client cannot blow up the cardinality of the metrics.
pub(crate) fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
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
