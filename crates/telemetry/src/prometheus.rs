//! The Prometheus scrape endpoint: `GET /metrics` in the Prometheus text format, from
//! the SDK's metrics through opentelemetry-prometheus.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus::{Encoder as _, Registry, TextEncoder};
use std::net::SocketAddr;

/// Binds the scrape endpoint's listener; the caller reports a failure naming the address.
pub(crate) fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Serves scrapes until the process ends.
pub(crate) fn serve(listener: tokio::net::TcpListener, registry: Registry) -> SocketAddr {
    crate::local_http::serve(listener, move |request| scrape(&registry, request))
}

/// Names Prometheus's own lint refuses (`promtool check metrics`: only histograms and
/// summaries may end in `_count`), and what they are exposed as instead. Only the
/// Prometheus name changes: OTLP carries the OpenTelemetry name.
const RENAMED: &[(&str, &str)] = &[("system_cpu_logical_count", "system_cpu_logical_cpus")];

fn scrape(registry: &Registry, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &'static str, body: Vec<u8>| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"metrics are at /metrics\n".to_vec(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", Vec::new());
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    let mut families = registry.gather();
    for family in &mut families {
        if let Some((_, exposed)) = RENAMED.iter().find(|(name, _)| family.name() == *name) {
            family.set_name((*exposed).to_owned());
        }
    }
    match encoder.encode(&families, &mut body) {
        Ok(()) => reply(StatusCode::OK, prometheus::TEXT_FORMAT, body),
        Err(err) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("cannot encode metrics: {err}\n").into_bytes(),
        ),
    }
}
