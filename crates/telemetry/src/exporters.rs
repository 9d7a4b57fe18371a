//! The exporters a pipeline sends through: OTLP over gRPC or HTTP to the endpoint the
//! configuration resolved, and the batch settings of the processors in front of them.

use crate::config::{OtlpEndpoint, Protocol, Signal};
use crate::export_health::{HttpCause, ReportingClient};
use crate::tls::TlsMaterial;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _, WithTonicConfig as _};
use std::time::Duration;

/// The batch processors' queue size where `OTEL_BSP_MAX_QUEUE_SIZE` /
/// `OTEL_BLRP_MAX_QUEUE_SIZE` do not say otherwise. The specification's default (2048)
/// overflows, and drops spans, as soon as a server passes about 700 requests/s at three
/// spans each. This queue holds a few seconds of a busy server's telemetry (tens of MB at
/// most), and the processor exports as soon as a batch is full, so it adds no latency.
/// Batches stay at the specification's 512: the exporter turns a batch into protobuf in
/// one go, and a request served meanwhile has one core fewer, so larger batches show in
/// the tail latency (p99 6.2 ms with batches of 2048, 4.9 ms with 512, at 29k requests/s
/// on two cores).
pub(crate) const BATCH_QUEUE_SIZE: usize = 65_536;

/// The value the user gave this variable, if the SDK takes it (else wasmlens's default
/// holds).
fn user_value(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

pub(crate) fn user_set(name: &str) -> bool {
    user_value(name).is_some()
}

/// How many items a signal's batch queue holds.
pub(crate) fn queue_size(signal: Signal) -> usize {
    user_value(signal.queue_size_var()).unwrap_or(BATCH_QUEUE_SIZE)
}

pub(crate) fn log_batch_config() -> opentelemetry_sdk::logs::BatchConfig {
    let mut builder = opentelemetry_sdk::logs::BatchConfigBuilder::default();
    if !user_set("OTEL_BLRP_MAX_QUEUE_SIZE") {
        builder = builder.with_max_queue_size(BATCH_QUEUE_SIZE);
    }
    builder.build()
}

/// What the OTLP exporter builders have in common, so one function can build any of them:
/// the transport, with its TLS settings for an `https://` endpoint.
pub(crate) enum Transport {
    Grpc(Option<ClientTlsConfig>),
    Http(opentelemetry_otlp::Protocol, Option<ReportingClient>),
}

/// The exporter timeout (`OTEL_EXPORTER_OTLP[_SIGNAL]_TIMEOUT`, in milliseconds; 10 s by
/// default), for an HTTP client wasmlens builds itself.
fn timeout(signal: Signal) -> Duration {
    let own = format!(
        "OTEL_EXPORTER_OTLP_{}_TIMEOUT",
        signal.name().to_ascii_uppercase()
    );
    [own.as_str(), "OTEL_EXPORTER_OTLP_TIMEOUT"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// Builds a signal's OTLP exporter for `endpoint` (headers, timeout and compression the
/// exporter reads from the environment itself). If the exporter refuses the endpoint,
/// the problem is reported, naming the variable, and the default endpoint is used
/// instead: `endpoint` is updated, so that what wasmlens says matches what it does.
pub(crate) fn otlp<E>(
    signal: Signal,
    protocol: Protocol,
    endpoint: &mut OtlpEndpoint,
    tls: Option<&TlsMaterial>,
    http_cause: &HttpCause,
    build: impl Fn(Transport, String) -> Result<E, opentelemetry_otlp::ExporterBuildError>,
) -> E {
    let shown = endpoint_shown(endpoint);
    let transport = |tls: Option<&TlsMaterial>| match protocol {
        Protocol::Grpc => Transport::Grpc(tls.map(TlsMaterial::grpc)),
        other => {
            let client = match crate::tls::http_client(tls, timeout(signal)) {
                Ok(inner) => Some(ReportingClient {
                    inner,
                    cause: http_cause.clone(),
                }),
                Err(err) => {
                    eprintln!("wasmlens: cannot set up the HTTP client for {shown}: {err:#}");
                    None
                }
            };
            Transport::Http(other.as_otlp(), client)
        }
    };
    build(transport(tls), endpoint.url.clone()).unwrap_or_else(|err| {
        let fallback = signal.default_endpoint(protocol);
        let source = endpoint.variable.map_or_else(
            || "the default endpoint".to_owned(),
            |var| format!("{var}={:?}", endpoint.url),
        );
        eprintln!(
            "wasmlens: ignoring {source}: {err}; {} go to {fallback}",
            signal.name()
        );
        *endpoint = OtlpEndpoint {
            url: fallback.clone(),
            variable: None,
        };
        build(transport(None), fallback.clone())
            .unwrap_or_else(|err| panic!("the default OTLP endpoint {fallback} was refused: {err}"))
    })
}

fn endpoint_shown(endpoint: &OtlpEndpoint) -> String {
    match endpoint.variable {
        Some(variable) => format!("{variable}={}", endpoint.url),
        None => endpoint.url.clone(),
    }
}

macro_rules! otlp_exporter_fn {
    ($name:ident, $exporter:ty) => {
        pub(crate) fn $name(
            transport: Transport,
            endpoint: String,
        ) -> Result<$exporter, opentelemetry_otlp::ExporterBuildError> {
            let builder = <$exporter>::builder();
            match transport {
                Transport::Grpc(tls) => {
                    let builder = builder
                        .with_tonic()
                        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                        .with_endpoint(endpoint);
                    match tls {
                        Some(tls) => builder.with_tls_config(tls).build(),
                        None => builder.build(),
                    }
                }
                Transport::Http(protocol, client) => {
                    let builder = builder
                        .with_http()
                        .with_protocol(protocol)
                        .with_endpoint(endpoint);
                    match client {
                        Some(client) => builder.with_http_client(client).build(),
                        None => builder.build(),
                    }
                }
            }
        }
    };
}
otlp_exporter_fn!(span_exporter, opentelemetry_otlp::SpanExporter);

/// The trace exporter: wasmlens's own over HTTP/protobuf (see [`crate::otlp`]), the
/// SDK's over gRPC and HTTP/JSON.
#[derive(Debug)]
pub(crate) enum TraceExporter {
    Own(crate::otlp::HttpSpanExporter),
    Sdk(opentelemetry_otlp::SpanExporter),
}

pub(crate) fn trace_exporter(
    encoder: crate::config::SpanEncoder,
    transport: Transport,
    endpoint: String,
) -> Result<TraceExporter, opentelemetry_otlp::ExporterBuildError> {
    match transport {
        Transport::Http(opentelemetry_otlp::Protocol::HttpBinary, Some(client))
            if encoder == crate::config::SpanEncoder::Wasmlens =>
        {
            let client = std::sync::Arc::new(client);
            let timeout = timeout(Signal::Traces);
            crate::otlp::HttpSpanExporter::new(client, &endpoint, timeout).map(TraceExporter::Own)
        }
        other => span_exporter(other, endpoint).map(TraceExporter::Sdk),
    }
}

impl TraceExporter {
    /// Exports spans the view may share (see [`crate::shared_batch`]): wasmlens's
    /// exporter encodes them where they are; the SDK's take spans of their own, copies of
    /// those the view still holds.
    pub(crate) async fn export_shared(
        &self,
        batch: Vec<std::sync::Arc<opentelemetry_sdk::trace::SpanData>>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        use opentelemetry_sdk::trace::SpanExporter as _;
        match self {
            TraceExporter::Own(exporter) => exporter.export_spans(&batch).await,
            TraceExporter::Sdk(exporter) => {
                let owned = batch.into_iter().map(std::sync::Arc::unwrap_or_clone);
                exporter.export(owned.collect()).await
            }
        }
    }
}

impl opentelemetry_sdk::trace::SpanExporter for TraceExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            TraceExporter::Own(exporter) => exporter.export(batch).await,
            TraceExporter::Sdk(exporter) => exporter.export(batch).await,
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            TraceExporter::Own(exporter) => exporter.shutdown_with_timeout(timeout),
            TraceExporter::Sdk(exporter) => exporter.shutdown_with_timeout(timeout),
        }
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            TraceExporter::Own(exporter) => exporter.force_flush(),
            TraceExporter::Sdk(exporter) => exporter.force_flush(),
        }
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        match self {
            TraceExporter::Own(exporter) => exporter.set_resource(resource),
            TraceExporter::Sdk(exporter) => exporter.set_resource(resource),
        }
    }
}
otlp_exporter_fn!(metric_exporter, opentelemetry_otlp::MetricExporter);
otlp_exporter_fn!(log_exporter, opentelemetry_otlp::LogExporter);
