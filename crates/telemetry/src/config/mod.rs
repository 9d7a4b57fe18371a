//! What the standard `OTEL_*` variables ask for, read once at startup.
//!
//! The variables that pick *what* to build are interpreted here (exporters, protocols,
//! endpoints, the sampler, propagators, the kill switch), so that a configuration read through any
//! lookup (a test's, or a container's environment) builds the same pipeline as the
//! process's. Those the SDK and the OTLP exporter read themselves (headers, compression,
//! batch sizes) are left to them, so wasmlens follows the specification
//! exactly as the SDK implements it; where the SDK would silently ignore a malformed
//! value, it is checked here so that the user hears about it. Every problem is reported
//! once, naming the variable and its value, and the default is used.

mod reader;
#[cfg(test)]
mod tests;

pub use crate::console::ConsoleFormat;
use reader::Reader;
use std::fmt;

/// Where a signal's data goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exporter {
    /// OTLP to a collector or backend.
    Otlp(Protocol),
    /// Human-readable records on stdout, for development.
    Console,
    /// A Prometheus scrape endpoint serving `/metrics` (metrics only).
    Prometheus,
}

/// How histograms aggregate (`OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistogramAggregation {
    /// Each histogram's own bucket boundaries, chosen for what it measures.
    ExplicitBuckets,
    /// Base-2 exponential buckets, which fit any range without configuration.
    Base2Exponential,
}

/// Who encodes and sends spans over OTLP HTTP/protobuf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpanEncoder {
    /// wasmlens's own path (`crate::otlp`): the same bytes, a fraction of the cost.
    #[default]
    Wasmlens,
    /// The OpenTelemetry SDK's exporter: for comparison, or should the own path ever
    /// disagree with a collector.
    Sdk,
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl Protocol {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            "http/json" => Some(Self::HttpJson),
            _ => None,
        }
    }

    pub(crate) fn as_otlp(self) -> opentelemetry_otlp::Protocol {
        match self {
            Self::Grpc => opentelemetry_otlp::Protocol::Grpc,
            Self::HttpProtobuf => opentelemetry_otlp::Protocol::HttpBinary,
            Self::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
        })
    }
}

/// One of the three signals, with the names of its variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn name(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
        }
    }

    pub(crate) fn exporter_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_TRACES_EXPORTER",
            Self::Metrics => "OTEL_METRICS_EXPORTER",
            Self::Logs => "OTEL_LOGS_EXPORTER",
        }
    }

    pub(crate) fn endpoint_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            Self::Logs => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        }
    }

    pub(crate) fn protocol_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            Self::Logs => "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        }
    }

    /// Where the signal goes over OTLP when no variable says.
    pub(crate) fn default_endpoint(self, protocol: Protocol) -> String {
        match protocol {
            Protocol::Grpc => "http://localhost:4317".to_owned(),
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                format!("http://localhost:4318{}", self.http_path())
            }
        }
    }

    pub(crate) fn timeout_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            Self::Logs => "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        }
    }

    /// The path the specification appends to the general endpoint for OTLP/HTTP.
    pub(crate) fn http_path(self) -> &'static str {
        match self {
            Self::Traces => "/v1/traces",
            Self::Metrics => "/v1/metrics",
            Self::Logs => "/v1/logs",
        }
    }
}

/// Which propagators `OTEL_PROPAGATORS` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Propagators {
    pub tracecontext: bool,
    pub baggage: bool,
}

/// Which spans are sampled (`OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    /// This share of traces, by trace id.
    TraceIdRatio(f64),
    /// As the parent says; a root span as the inner choice says.
    ParentBased(RootSampler),
}

/// How a [`SamplerChoice::ParentBased`] sampler samples root spans.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RootSampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
}

/// Where a signal's OTLP exporter sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpEndpoint {
    pub url: String,
    /// The variable that named it; `None` for the default.
    pub variable: Option<&'static str>,
}

/// The general endpoint variable, which every signal falls back to.
pub(crate) const GENERAL_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Everything wasmlens decided from the environment.
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// `OTEL_SDK_DISABLED=true`: no exporter, no propagation, nothing recorded.
    pub disabled: bool,
    pub traces: Vec<Exporter>,
    pub metrics: Vec<Exporter>,
    pub logs: Vec<Exporter>,
    pub propagators: Propagators,
    pub sampler: SamplerChoice,
    /// `OTEL_SEMCONV_STABILITY_OPT_IN` contains `http/dup`: emit the old HTTP keys too.
    pub http_dup_semconv: bool,
    pub histogram_aggregation: HistogramAggregation,
    /// How `console` exporters write (`WASMLENS_CONSOLE_FORMAT`: `text` or `json`).
    pub console_format: ConsoleFormat,
    /// Who encodes spans sent over OTLP HTTP/protobuf (`WASMLENS_OTLP_SPAN_ENCODER`).
    pub span_encoder: SpanEncoder,
    /// Where the Prometheus exporter listens: `OTEL_EXPORTER_PROMETHEUS_HOST` and
    /// `_PORT` (default `localhost:9464`), or `--metrics-listen`.
    pub prometheus_listen: String,
    /// Each signal's OTLP endpoint (traces, metrics, logs), where it is exported over OTLP.
    pub otlp_endpoints: [Option<OtlpEndpoint>; 3],
    /// Each signal's certificate files, for an `https://` endpoint.
    pub tls: [crate::tls::TlsFiles; 3],
    /// Problems found while reading, one line each, to be reported once.
    pub problems: Vec<String>,
    /// Keep recent traces and log records in memory for the built-in view, within this
    /// many bytes (see [`TelemetryConfig::with_recording`]).
    pub recording: Option<usize>,
    /// Resource attributes the front end knows and the environment cannot say (the
    /// containerd shim's `container.id`, say); `OTEL_RESOURCE_ATTRIBUTES` still wins.
    pub resource_attributes: Vec<opentelemetry::KeyValue>,
}

impl TelemetryConfig {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`; empty values count as unset, as the
    /// specification asks.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut reader = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let disabled = reader.bool("OTEL_SDK_DISABLED", false);
        let any_endpoint = reader.get(GENERAL_ENDPOINT_VAR).is_some();

        let mut signals = Signal::ALL.map(|signal| reader.exporters(signal, any_endpoint));
        if disabled {
            signals = [Vec::new(), Vec::new(), Vec::new()];
        }
        let otlp_endpoints = Signal::ALL.map(|signal| {
            let exporters = &mut signals[signal as usize];
            let protocol = exporters.iter().find_map(|e| match e {
                Exporter::Otlp(protocol) => Some(*protocol),
                _ => None,
            })?;
            let endpoint = reader.usable_endpoint(signal, protocol);
            if endpoint.is_none() {
                exporters.retain(|e| !matches!(e, Exporter::Otlp(_)));
            }
            endpoint
        });
        let [traces, metrics, logs] = signals;

        let propagators = reader.propagators();
        let sampler = reader.sampler();
        let http_dup_semconv = reader
            .get("OTEL_SEMCONV_STABILITY_OPT_IN")
            .is_some_and(|v| v.split(',').any(|item| item.trim() == "http/dup"));

        let histogram_aggregation = reader.histogram_aggregation();
        let console_format = reader.console_format();
        let span_encoder = reader.span_encoder();
        let prometheus_listen = format!(
            "{}:{}",
            reader
                .get("OTEL_EXPORTER_PROMETHEUS_HOST")
                .unwrap_or_else(|| "localhost".to_owned()),
            reader.port("OTEL_EXPORTER_PROMETHEUS_PORT", 9464)
        );

        // Values the SDK reads itself but drops silently when malformed.
        for name in [
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "OTEL_BSP_SCHEDULE_DELAY",
            "OTEL_BSP_EXPORT_TIMEOUT",
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            "OTEL_BLRP_SCHEDULE_DELAY",
            "OTEL_BLRP_EXPORT_TIMEOUT",
            "OTEL_BLRP_MAX_QUEUE_SIZE",
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
            "OTEL_METRIC_EXPORT_INTERVAL",
            "OTEL_METRIC_EXPORT_TIMEOUT",
        ]
        .into_iter()
        .chain(Signal::ALL.map(Signal::timeout_var))
        {
            reader.check_integer(name);
        }

        TelemetryConfig {
            disabled,
            traces,
            metrics,
            logs,
            propagators: if disabled {
                Propagators {
                    tracecontext: false,
                    baggage: false,
                }
            } else {
                propagators
            },
            sampler,
            http_dup_semconv,
            histogram_aggregation,
            console_format,
            span_encoder,
            prometheus_listen,
            otlp_endpoints,
            tls: Signal::ALL.map(|signal| crate::tls::TlsFiles::read(signal, &lookup)),
            problems: reader.problems,
            recording: None,
            resource_attributes: Vec::new(),
        }
    }

    /// Where `signal` goes over OTLP, if it does.
    pub fn otlp_endpoint(&self, signal: Signal) -> Option<&OtlpEndpoint> {
        self.otlp_endpoints[signal as usize].as_ref()
    }

    /// `--metrics-listen ADDR`: serve Prometheus metrics at ADDR, beside whatever else the
    /// environment asks for (unless the SDK is disabled).
    pub fn with_metrics_listen(mut self, addr: &str) -> Self {
        if !self.disabled {
            self.prometheus_listen = addr.to_owned();
            if !self.metrics.contains(&Exporter::Prometheus) {
                self.metrics.push(Exporter::Prometheus);
            }
        }
        self
    }

    /// Also keeps recent traces and log records in memory, within `bytes`, for the
    /// built-in view (unless the SDK is disabled): spans are then recorded whether or not
    /// an exporter is configured.
    pub fn with_recording(mut self, bytes: usize) -> Self {
        if !self.disabled {
            self.recording = Some(bytes);
        }
        self
    }

    /// Adds `attributes` to the resource every signal carries.
    pub fn with_resource_attributes(
        mut self,
        attributes: impl IntoIterator<Item = opentelemetry::KeyValue>,
    ) -> Self {
        self.resource_attributes.extend(attributes);
        self
    }

    pub fn exporters(&self, signal: Signal) -> &[Exporter] {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }
}
