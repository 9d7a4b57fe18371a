//! An OTLP receiver serving gRPC and HTTP (protobuf or JSON, gzip or not) on loopback,
//! decoding with opentelemetry-proto, and keeping everything it receives so tests can
//! wait for it.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How telemetry arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// A received span, flattened for assertions.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub name: String,
    /// The OTLP kind: 1 internal, 2 server, 3 client.
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// Start and end, in nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: BTreeMap<String, String>,
    /// The OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// The status's description (an error's reason).
    pub status_message: String,
    pub events: Vec<EventRecord>,
    pub resource: BTreeMap<String, String>,
    /// The instrumentation scope's name and version (`wasmlens` and its version for the
    /// host's own).
    pub scope: (String, String),
    pub transport: Transport,
}

/// An event of a received span.
#[derive(Clone, Debug)]
pub struct EventRecord {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl SpanRecord {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// One data point of a received metric.
#[derive(Clone, Debug)]
pub struct MetricPoint {
    pub name: String,
    pub unit: String,
    /// `sum`, `gauge`, `histogram` or `exponential_histogram`.
    pub kind: &'static str,
    pub attributes: BTreeMap<String, String>,
    /// The sum's or gauge's value, or the histogram's count.
    pub value: f64,
    /// An explicit-bucket histogram's boundaries.
    pub bounds: Vec<f64>,
    /// An explicit-bucket histogram's buckets, sum, minimum and maximum.
    pub histogram: Option<HistogramData>,
    /// The instrumentation scope's name.
    pub scope: String,
}

/// What an explicit-bucket histogram point holds besides its count and bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramData {
    pub bucket_counts: Vec<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A received log record.
#[derive(Clone, Debug)]
pub struct LogRecord {
    pub body: String,
    pub event_name: String,
    pub severity_number: i32,
    pub severity_text: String,
    pub trace_id: String,
    pub span_id: String,
    pub attributes: BTreeMap<String, String>,
    /// The instrumentation scope's name.
    pub scope: String,
}

/// A scope's name and version, empty where absent.
fn scope_of(
    scope: &Option<opentelemetry_proto::tonic::common::v1::InstrumentationScope>,
) -> (String, String) {
    scope
        .as_ref()
        .map(|s| (s.name.clone(), s.version.clone()))
        .unwrap_or_default()
}

#[derive(Default)]
struct Received {
    spans: Mutex<Vec<SpanRecord>>,
    metrics: Mutex<Vec<MetricPoint>>,
    logs: Mutex<Vec<LogRecord>>,
    /// Headers (gRPC metadata) of every export request, as received.
    headers: Mutex<Vec<http::HeaderMap>>,
    /// How many of the next HTTP trace exports to refuse, with what status and
    /// `Retry-After`; and how many were refused.
    refusing: Mutex<Option<(usize, u16, Option<&'static str>)>>,
    refused: std::sync::atomic::AtomicUsize,
    changed: Notify,
}

/// The receiver; dropping it stops its servers.
pub struct OtlpReceiver {
    received: Arc<Received>,
    grpc: SocketAddr,
    http: SocketAddr,
    /// `http`, or `https` for a receiver that speaks TLS.
    scheme: &'static str,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl OtlpReceiver {
    /// Starts gRPC and HTTP servers on free loopback ports.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0", "127.0.0.1:0").await
    }

    /// Starts gRPC and HTTP servers on the given addresses.
    pub async fn start_on(grpc: &str, http: &str) -> Self {
        Self::start_with(grpc, http, None).await
    }

    /// Starts gRPC and HTTP servers on free loopback ports that speak only TLS, with the
    /// server certificate of `certificates`, and, if `client_auth`, accept only clients
    /// that present a certificate its CA signed (mutual TLS). Endpoints are `https://`.
    pub async fn start_tls(certificates: &crate::TestCertificates, client_auth: bool) -> Self {
        let tls = crate::tls::ServerTls::new(certificates, client_auth);
        Self::start_with("127.0.0.1:0", "127.0.0.1:0", Some(tls)).await
    }

    async fn start_with(grpc: &str, http: &str, tls: Option<crate::tls::ServerTls>) -> Self {
        let received = Arc::new(Received::default());
        let grpc_listener = TcpListener::bind(grpc).await.expect("bind gRPC receiver");
        let http_listener = TcpListener::bind(http).await.expect("bind HTTP receiver");
        let grpc = grpc_listener.local_addr().unwrap();
        let http = http_listener.local_addr().unwrap();
        let service = Service(received.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let grpc_tls = tls.as_ref().map(crate::tls::ServerTls::grpc);
        let http_tls = tls.as_ref().map(crate::tls::ServerTls::acceptor);
        let grpc_task = tokio::spawn(async move {
            let mut server = tonic::transport::Server::builder();
            if let Some(tls) = grpc_tls {
                server = server.tls_config(tls).expect("the test server's TLS");
            }
            server
                .add_service(
                    TraceServiceServer::new(service.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(
                    MetricsServiceServer::new(service.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(
                    LogsServiceServer::new(service)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc_listener))
                .await
                .expect("gRPC receiver");
        });
        let http_received = received.clone();
        let http_task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = http_listener.accept().await else {
                    continue;
                };
                let received = http_received.clone();
                let http_tls = http_tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let received = received.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(handle_http(&received, request).await)
                        }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match http_tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(acceptor) => {
                            // A client that fails the handshake is simply not served.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let io = TokioIo::new(stream);
                                let _ = builder.serve_connection(io, service).await;
                            }
                        }
                    }
                });
            }
        });
        OtlpReceiver {
            received,
            grpc,
            http,
            scheme,
            tasks: vec![grpc_task, http_task],
        }
    }

    /// The endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT` with `grpc`.
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.grpc)
    }

    /// The endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT` with `http/protobuf` or `http/json`.
    pub fn http_endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.http)
    }

    /// The variables that point a wasmlens at this receiver over `transport`, with short
    /// batch delays so that tests need not wait for the defaults.
    pub fn exporter_env(&self, transport: Transport) -> Vec<(&'static str, String)> {
        let (endpoint, protocol) = match transport {
            Transport::Grpc => (self.grpc_endpoint(), "grpc"),
            Transport::HttpProtobuf => (self.http_endpoint(), "http/protobuf"),
            Transport::HttpJson => (self.http_endpoint(), "http/json"),
        };
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100".to_owned()),
        ]
    }

    pub fn spans(&self) -> Vec<SpanRecord> {
        self.received.spans.lock().unwrap().clone()
    }

    pub fn metrics(&self) -> Vec<MetricPoint> {
        self.received.metrics.lock().unwrap().clone()
    }

    pub fn logs(&self) -> Vec<LogRecord> {
        self.received.logs.lock().unwrap().clone()
    }

    /// Takes everything received so far, leaving the receiver empty: for a receiver that
    /// runs for long and counts rather than keeps.
    pub fn take(&self) -> (Vec<SpanRecord>, Vec<MetricPoint>, Vec<LogRecord>) {
        self.received.headers.lock().unwrap().clear();
        (
            std::mem::take(&mut *self.received.spans.lock().unwrap()),
            std::mem::take(&mut *self.received.metrics.lock().unwrap()),
            std::mem::take(&mut *self.received.logs.lock().unwrap()),
        )
    }

    /// Refuses the next `count` HTTP trace exports with `status` (and a `Retry-After`
    /// header, if given), as a collector that is overloaded or restarting does. They are
    /// not recorded: an exporter must send them again.
    pub fn refuse_trace_exports(
        &self,
        count: usize,
        status: u16,
        retry_after: Option<&'static str>,
    ) {
        *self.received.refusing.lock().unwrap() = Some((count, status, retry_after));
    }

    /// How many HTTP trace exports were refused so far.
    pub fn refused_trace_exports(&self) -> usize {
        self.received
            .refused
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The headers (or gRPC metadata) of every export request so far.
    pub fn request_headers(&self) -> Vec<http::HeaderMap> {
        self.received.headers.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received, or panics after `timeout` with
    /// `what` and everything received so far.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&OtlpReceiver) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.received.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\nspans: {:#?}\nmetrics: {:?}\nlogs: {:#?}",
                    self.spans()
                        .iter()
                        .map(|s| (&s.name, &s.span_id, &s.parent_span_id))
                        .collect::<Vec<_>>(),
                    self.metrics().iter().map(|m| &m.name).collect::<Vec<_>>(),
                    self.logs().iter().map(|l| &l.body).collect::<Vec<_>>(),
                );
            }
        }
    }

    /// Waits for at least `count` spans named `name`, and returns them all.
    pub async fn wait_for_spans(
        &self,
        name: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<SpanRecord> {
        let matching = |r: &OtlpReceiver| {
            r.spans()
                .into_iter()
                .filter(|s| s.name == name)
                .collect::<Vec<_>>()
        };
        self.wait_until(&format!("{count} {name} spans"), timeout, |r| {
            matching(r).len() >= count
        })
        .await;
        matching(self)
    }

    /// Waits for the first span named `name` and returns it.
    pub async fn wait_for_span(&self, name: &str, timeout: Duration) -> SpanRecord {
        self.wait_for_spans(name, 1, timeout).await.remove(0)
    }
}

#[derive(Clone)]
struct Service(Arc<Received>);

impl Service {
    fn traces(&self, request: ExportTraceServiceRequest, transport: Transport) {
        let mut spans = self.0.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                let scope_name = scope_of(&scope.scope);
                for span in scope.spans {
                    spans.push(SpanRecord {
                        name: span.name,
                        kind: span.kind,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        start_time_unix_nano: span.start_time_unix_nano,
                        end_time_unix_nano: span.end_time_unix_nano,
                        attributes: attributes(&span.attributes),
                        status_code: span.status.as_ref().map_or(0, |s| s.code),
                        status_message: span.status.map(|s| s.message).unwrap_or_default(),
                        events: span
                            .events
                            .iter()
                            .map(|e| EventRecord {
                                name: e.name.clone(),
                                attributes: attributes(&e.attributes),
                            })
                            .collect(),
                        resource: resource.clone(),
                        scope: scope_name.clone(),
                        transport,
                    });
                }
            }
        }
        drop(spans);
        self.0.changed.notify_waiters();
    }

    fn metrics(&self, request: ExportMetricsServiceRequest) {
        let mut points = self.0.metrics.lock().unwrap();
        for resource_metrics in request.resource_metrics {
            for scope in resource_metrics.scope_metrics {
                let (scope_name, _) = scope_of(&scope.scope);
                for m in scope.metrics {
                    let point = |kind, attrs: &[KeyValue], value| MetricPoint {
                        name: m.name.clone(),
                        unit: m.unit.clone(),
                        kind,
                        attributes: attributes(attrs),
                        value,
                        bounds: Vec::new(),
                        histogram: None,
                        scope: scope_name.clone(),
                    };
                    let number = |v: &Option<
                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value,
                    >| {
                        match v {
                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(d)) => *d,
                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i)) => *i as f64,
                        None => f64::NAN,
                    }
                    };
                    match &m.data {
                        Some(metric::Data::Sum(sum)) => points.extend(
                            sum.data_points
                                .iter()
                                .map(|p| point("sum", &p.attributes, number(&p.value))),
                        ),
                        Some(metric::Data::Gauge(gauge)) => points.extend(
                            gauge
                                .data_points
                                .iter()
                                .map(|p| point("gauge", &p.attributes, number(&p.value))),
                        ),
                        Some(metric::Data::Histogram(h)) => {
                            points.extend(h.data_points.iter().map(|p| MetricPoint {
                                bounds: p.explicit_bounds.clone(),
                                histogram: Some(HistogramData {
                                    bucket_counts: p.bucket_counts.clone(),
                                    sum: p.sum,
                                    min: p.min,
                                    max: p.max,
                                }),
                                ..point("histogram", &p.attributes, p.count as f64)
                            }))
                        }
                        Some(metric::Data::ExponentialHistogram(h)) => {
                            points.extend(h.data_points.iter().map(|p| {
                                point("exponential_histogram", &p.attributes, p.count as f64)
                            }))
                        }
                        _ => {}
                    }
                }
            }
        }
        drop(points);
        self.0.changed.notify_waiters();
    }

    fn logs(&self, request: ExportLogsServiceRequest) {
        let mut logs = self.0.logs.lock().unwrap();
        for resource_logs in request.resource_logs {
            for scope in resource_logs.scope_logs {
                let (scope_name, _) = scope_of(&scope.scope);
                for record in scope.log_records {
                    logs.push(LogRecord {
                        body: record.body.as_ref().map(display).unwrap_or_default(),
                        event_name: record.event_name,
                        severity_number: record.severity_number,
                        severity_text: record.severity_text,
                        trace_id: hex(&record.trace_id),
                        span_id: hex(&record.span_id),
                        attributes: attributes(&record.attributes),
                        scope: scope_name.clone(),
                    });
                }
            }
        }
        drop(logs);
        self.0.changed.notify_waiters();
    }
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .headers
            .lock()
            .unwrap()
            .push(request.metadata().clone().into_headers());
        self.traces(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.logs(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

async fn handle_http(
    received: &Arc<Received>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let respond = |status: u16, body: &'static str| {
        hyper::Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    received
        .headers
        .lock()
        .unwrap()
        .push(request.headers().clone());
    let json = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let gzip = request
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v == "gzip");
    let path = request.uri().path().to_owned();
    if path == "/v1/traces" {
        let mut refusing = received.refusing.lock().unwrap();
        if let Some((count, status, retry_after)) = refusing.as_mut()
            && *count > 0
        {
            *count -= 1;
            received
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut response = hyper::Response::builder().status(*status);
            if let Some(after) = retry_after {
                response = response.header(http::header::RETRY_AFTER, *after);
            }
            return response.body(Full::new(Bytes::new())).unwrap();
        }
    }
    let Ok(body) = request.into_body().collect().await else {
        return respond(400, "unreadable body");
    };
    let mut body = body.to_bytes().to_vec();
    if gzip {
        let mut inflated = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut inflated)
            .is_err()
        {
            return respond(400, "bad gzip");
        }
        body = inflated;
    }
    let service = Service(received.clone());
    let transport = if json {
        Transport::HttpJson
    } else {
        Transport::HttpProtobuf
    };
    fn decode<M: prost::Message + Default + serde::de::DeserializeOwned>(
        body: &[u8],
        json: bool,
    ) -> Option<M> {
        if json {
            serde_json::from_slice(body).ok()
        } else {
            M::decode(body).ok()
        }
    }
    let ok = match path.as_str() {
        "/v1/traces" => decode(&body, json).map(|r| service.traces(r, transport)),
        "/v1/metrics" => decode(&body, json).map(|r| service.metrics(r)),
        "/v1/logs" => decode(&body, json).map(|r| service.logs(r)),
        _ => return respond(404, "unknown path"),
    };
    match ok {
        Some(()) => {
            let content_type = if json {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            let body = if json {
                Bytes::from_static(b"{}")
            } else {
                Bytes::new()
            };
            hyper::Response::builder()
                .header("content-type", content_type)
                .body(Full::new(body))
                .unwrap()
        }
        None => respond(400, "undecodable OTLP request"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(display).unwrap_or_default(),
            )
        })
        .collect()
}

fn display(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// So that a test can hold the receiver across awaits without thinking about it.
const _: fn() = || {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<OtlpReceiver>();
};
