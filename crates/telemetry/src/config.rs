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

pub use crate::console::ConsoleFormat;
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

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl Protocol {
    fn parse(value: &str) -> Option<Self> {
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

    fn exporter_var(self) -> &'static str {
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

    fn protocol_var(self) -> &'static str {
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

    fn timeout_var(self) -> &'static str {
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
const GENERAL_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

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
    /// Where the Prometheus exporter listens: `OTEL_EXPORTER_PROMETHEUS_HOST` and
    /// `_PORT` (default `localhost:9464`), or `--metrics-listen`.
    pub prometheus_listen: String,
    /// Each signal's OTLP endpoint (traces, metrics, logs), where it is exported over OTLP.
    pub otlp_endpoints: [Option<OtlpEndpoint>; 3],
    /// Problems found while reading, one line each, to be reported once.
    pub problems: Vec<String>,
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
            prometheus_listen,
            otlp_endpoints,
            problems: reader.problems,
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

    pub fn exporters(&self, signal: Signal) -> &[Exporter] {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn problem(&mut self, name: &str, value: &str, expected: &str, default: &str) {
        self.report(format!(
            "ignoring {name}={value:?}: expected {expected}; using {default}"
        ));
    }

    /// Records a problem unless it is already recorded: a variable shared by the three
    /// signals (`OTEL_EXPORTER_OTLP_PROTOCOL`) is read three times but reported once.
    fn report(&mut self, problem: String) {
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    fn bool(&mut self, name: &str, default: bool) -> bool {
        let Some(value) = self.get(name) else {
            return default;
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                self.problem(name, &value, "true or false", &default.to_string());
                default
            }
        }
    }

    fn check_integer(&mut self, name: &str) {
        if let Some(value) = self.get(name)
            && value.trim().parse::<u64>().is_err()
        {
            self.problem(name, &value, "a whole number", "the default");
        }
    }

    fn port(&mut self, name: &str, default: u16) -> u16 {
        let Some(value) = self.get(name) else {
            return default;
        };
        value.trim().parse().unwrap_or_else(|_| {
            self.problem(name, &value, "a port number", &default.to_string());
            default
        })
    }

    fn histogram_aggregation(&mut self) -> HistogramAggregation {
        const NAME: &str = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION";
        match self.get(NAME) {
            None => HistogramAggregation::ExplicitBuckets,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "explicit_bucket_histogram" => HistogramAggregation::ExplicitBuckets,
                "base2_exponential_bucket_histogram" => HistogramAggregation::Base2Exponential,
                _ => {
                    self.problem(
                        NAME,
                        &value,
                        "explicit_bucket_histogram or base2_exponential_bucket_histogram",
                        "explicit_bucket_histogram",
                    );
                    HistogramAggregation::ExplicitBuckets
                }
            },
        }
    }

    fn console_format(&mut self) -> ConsoleFormat {
        const NAME: &str = "WASMLENS_CONSOLE_FORMAT";
        match self.get(NAME) {
            None => ConsoleFormat::Text,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "text" => ConsoleFormat::Text,
                "json" => ConsoleFormat::Json,
                _ => {
                    self.problem(NAME, &value, "text or json", "text");
                    ConsoleFormat::Text
                }
            },
        }
    }

    fn protocol(&mut self, signal: Signal) -> Protocol {
        const DEFAULT: Protocol = Protocol::HttpProtobuf;
        for name in [signal.protocol_var(), "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let Some(value) = self.get(name) {
                match Protocol::parse(&value) {
                    Some(protocol) => return protocol,
                    None => {
                        let default = DEFAULT.to_string();
                        self.problem(name, &value, "grpc, http/protobuf or http/json", &default);
                        return DEFAULT;
                    }
                }
            }
        }
        DEFAULT
    }

    /// With no `OTEL_*_EXPORTER`, a signal is exported over OTLP only if an endpoint is
    /// configured: a host that nobody pointed anywhere exports nothing and connects to
    /// nothing.
    fn exporters(&mut self, signal: Signal, any_endpoint: bool) -> Vec<Exporter> {
        let name = signal.exporter_var();
        let protocol = self.protocol(signal);
        let implicit = || {
            if any_endpoint || (self.lookup)(signal.endpoint_var()).is_some_and(|v| !v.is_empty()) {
                vec![Exporter::Otlp(protocol)]
            } else {
                Vec::new()
            }
        };
        let Some(value) = self.get(name) else {
            return implicit();
        };
        let mut exporters = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.to_ascii_lowercase().as_str() {
                "none" => return Vec::new(),
                "otlp" => exporters.push(Exporter::Otlp(protocol)),
                "console" | "logging" => exporters.push(Exporter::Console),
                "prometheus" if signal == Signal::Metrics => exporters.push(Exporter::Prometheus),
                _ => {
                    let expected = match signal {
                        Signal::Metrics => "otlp, prometheus, console or none",
                        _ => "otlp, console or none",
                    };
                    self.problem(name, &value, expected, "the default");
                    return implicit();
                }
            }
        }
        exporters.dedup();
        exporters
    }

    /// The endpoint a signal is exported to, unless it is one wasmlens cannot send to:
    /// then the problem is reported and the signal is not exported over OTLP. A value that
    /// is not a URL is reported, and the default endpoint used, as the specification asks.
    fn usable_endpoint(&mut self, signal: Signal, protocol: Protocol) -> Option<OtlpEndpoint> {
        let endpoint = self.otlp_endpoint(signal, protocol);
        let Some(variable) = endpoint.variable else {
            return Some(endpoint);
        };
        let value = self.get(variable).unwrap_or_default();
        let scheme = endpoint
            .url
            .parse::<http::Uri>()
            .ok()
            .filter(|uri| uri.host().is_some())
            .and_then(|uri| uri.scheme_str().map(str::to_ascii_lowercase));
        match scheme.as_deref() {
            Some("http") => Some(endpoint),
            // Until wasmlens speaks TLS, telemetry meant for a TLS endpoint goes nowhere,
            // rather than in clear text anywhere else.
            Some("https") => {
                self.report(format!(
                    "not exporting to {variable}={value:?}: wasmlens cannot send telemetry over TLS (https) yet"
                ));
                None
            }
            _ => {
                let expected = "a URL such as http://collector:4318";
                self.problem(
                    variable,
                    &value,
                    expected,
                    "the default endpoint on localhost",
                );
                Some(OtlpEndpoint {
                    url: signal.default_endpoint(protocol),
                    variable: None,
                })
            }
        }
    }

    /// `OTEL_TRACES_SAMPLER` and its argument, as the specification defines them.
    fn sampler(&mut self) -> SamplerChoice {
        const NAME: &str = "OTEL_TRACES_SAMPLER";
        const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
        let default = SamplerChoice::ParentBased(RootSampler::AlwaysOn);
        let Some(value) = self.get(NAME) else {
            return default;
        };
        let mut ratio = || -> f64 {
            let Some(arg) = self.get(ARG) else {
                return 1.0;
            };
            match arg.trim().parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => ratio,
                _ => {
                    self.problem(ARG, &arg, "a ratio from 0 to 1", "1");
                    1.0
                }
            }
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "always_on" => SamplerChoice::AlwaysOn,
            "always_off" => SamplerChoice::AlwaysOff,
            "traceidratio" => SamplerChoice::TraceIdRatio(ratio()),
            "parentbased_always_on" => SamplerChoice::ParentBased(RootSampler::AlwaysOn),
            "parentbased_always_off" => SamplerChoice::ParentBased(RootSampler::AlwaysOff),
            "parentbased_traceidratio" => {
                SamplerChoice::ParentBased(RootSampler::TraceIdRatio(ratio()))
            }
            _ => {
                let expected = "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio";
                self.problem(NAME, &value, expected, "parentbased_always_on");
                default
            }
        }
    }

    /// As the specification (and opentelemetry-otlp) resolves it: the signal's own
    /// variable as given; else the general one, with `/v1/<signal>` appended for HTTP;
    /// else the default.
    fn otlp_endpoint(&self, signal: Signal, protocol: Protocol) -> OtlpEndpoint {
        if let Some(url) = self.get(signal.endpoint_var()) {
            return OtlpEndpoint {
                url: url.trim().to_owned(),
                variable: Some(signal.endpoint_var()),
            };
        }
        let Some(base) = self.get(GENERAL_ENDPOINT_VAR) else {
            return OtlpEndpoint {
                url: signal.default_endpoint(protocol),
                variable: None,
            };
        };
        let base = base.trim();
        let url = match protocol {
            Protocol::Grpc => base.to_owned(),
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                format!("{}{}", base.trim_end_matches('/'), signal.http_path())
            }
        };
        OtlpEndpoint {
            url,
            variable: Some(GENERAL_ENDPOINT_VAR),
        }
    }

    fn propagators(&mut self) -> Propagators {
        let default = Propagators {
            tracecontext: true,
            baggage: true,
        };
        let Some(value) = self.get("OTEL_PROPAGATORS") else {
            return default;
        };
        let mut chosen = Propagators {
            tracecontext: false,
            baggage: false,
        };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "tracecontext" => chosen.tracecontext = true,
                "baggage" => chosen.baggage = true,
                "none" => return Propagators { tracecontext: false, baggage: false },
                other => self.report(format!(
                    "ignoring {other:?} in OTEL_PROPAGATORS={value:?}: wasmlens supports tracecontext, baggage and none"
                )),
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> TelemetryConfig {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_configured_exports_nothing() {
        let c = config(&[]);
        assert!(c.traces.is_empty() && c.metrics.is_empty() && c.logs.is_empty());
        assert!(c.problems.is_empty());
        assert_eq!(
            c.propagators,
            Propagators {
                tracecontext: true,
                baggage: true
            }
        );
    }

    #[test]
    fn an_endpoint_turns_otlp_on_with_the_spec_default_protocol() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
        assert_eq!(c.traces, vec![Exporter::Otlp(Protocol::HttpProtobuf)]);
        assert_eq!(c.logs, vec![Exporter::Otlp(Protocol::HttpProtobuf)]);
    }

    #[test]
    fn endpoints_resolve_as_the_specification_says() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:9999/custom",
            ),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ]);
        let url = |signal| c.otlp_endpoint(signal).map(|e| e.url.as_str());
        assert_eq!(url(Signal::Traces), Some("http://collector:4318/v1/traces"));
        assert_eq!(url(Signal::Metrics), Some("http://collector:4318/"));
        assert_eq!(url(Signal::Logs), Some("http://logs:9999/custom"));
        let c = config(&[("OTEL_TRACES_EXPORTER", "otlp")]);
        assert_eq!(
            c.otlp_endpoint(Signal::Traces),
            Some(&OtlpEndpoint {
                url: "http://localhost:4318/v1/traces".to_owned(),
                variable: None
            })
        );
        assert_eq!(c.otlp_endpoint(Signal::Metrics), None);
    }

    #[test]
    fn an_endpoint_that_is_not_a_url_is_reported_and_the_default_used() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector 4318")]);
        let url = c.otlp_endpoint(Signal::Traces).map(|e| e.url.as_str());
        assert_eq!(url, Some("http://localhost:4318/v1/traces"));
        let all = c.problems.join("\n");
        assert_eq!(
            all.matches("OTEL_EXPORTER_OTLP_ENDPOINT=\"collector 4318\"")
                .count(),
            1,
            "{all}"
        );
    }

    #[test]
    fn a_tls_endpoint_is_refused_rather_than_sent_to_in_clear_text() {
        let c = config(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4318",
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:4318/v1/logs",
            ),
        ]);
        assert!(c.traces.is_empty() && c.metrics.is_empty());
        assert_eq!(c.logs, vec![Exporter::Otlp(Protocol::HttpProtobuf)]);
        assert_eq!(c.otlp_endpoint(Signal::Traces), None);
        assert_eq!(c.problems.len(), 1, "said once: {:?}", c.problems);
        assert!(c.problems[0].contains("TLS"), "{:?}", c.problems);
    }

    #[test]
    fn samplers_and_their_ratios() {
        let sampler = |vars: &[(&str, &str)]| {
            let c = config(vars);
            (c.sampler, c.problems)
        };
        assert_eq!(
            sampler(&[]).0,
            SamplerChoice::ParentBased(RootSampler::AlwaysOn)
        );
        let ratio = [
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ];
        assert_eq!(
            sampler(&ratio),
            (
                SamplerChoice::ParentBased(RootSampler::TraceIdRatio(0.25)),
                vec![]
            )
        );
        for bad in ["2", "-0.5", "half"] {
            let (choice, problems) = sampler(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", bad),
            ]);
            assert_eq!(choice, SamplerChoice::TraceIdRatio(1.0));
            assert!(
                problems.len() == 1
                    && problems[0].contains(&format!("OTEL_TRACES_SAMPLER_ARG={bad:?}")),
                "{problems:?}"
            );
        }
        let (choice, problems) = sampler(&[("OTEL_TRACES_SAMPLER", "sometimes")]);
        assert_eq!(choice, SamplerChoice::ParentBased(RootSampler::AlwaysOn));
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn a_signal_endpoint_turns_on_only_that_signal() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://x:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ]);
        assert_eq!(c.traces, vec![Exporter::Otlp(Protocol::Grpc)]);
        assert!(c.metrics.is_empty());
    }

    #[test]
    fn explicit_exporters_and_lists() {
        let c = config(&[
            ("OTEL_TRACES_EXPORTER", "otlp,console"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "console"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        assert_eq!(
            c.traces,
            vec![Exporter::Otlp(Protocol::HttpJson), Exporter::Console]
        );
        assert!(c.metrics.is_empty());
        assert_eq!(c.logs, vec![Exporter::Console]);
    }

    #[test]
    fn bad_values_are_reported_once_each_with_name_and_value() {
        let c = config(&[
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_SDK_DISABLED", "maybe"),
            ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
            ("OTEL_PROPAGATORS", "b3,tracecontext"),
        ]);
        let all = c.problems.join("\n");
        for needle in [
            "OTEL_TRACES_EXPORTER=\"zipkin\"",
            "OTEL_EXPORTER_OTLP_PROTOCOL=\"carrier-pigeon\"",
            "OTEL_SDK_DISABLED=\"maybe\"",
            "OTEL_BSP_SCHEDULE_DELAY=\"5s\"",
            "\"b3\"",
        ] {
            assert_eq!(all.matches(needle).count(), 1, "{needle} in:\n{all}");
        }
        assert!(!c.disabled);
        assert_eq!(
            c.propagators,
            Propagators {
                tracecontext: true,
                baggage: false
            }
        );
    }

    #[test]
    fn sdk_disabled_turns_everything_off() {
        let c = config(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"),
        ]);
        assert!(c.disabled && c.traces.is_empty() && c.metrics.is_empty() && c.logs.is_empty());
        assert!(!c.propagators.tracecontext);
    }

    #[test]
    fn propagators_none_and_semconv_dup() {
        let c = config(&[
            ("OTEL_PROPAGATORS", "none"),
            ("OTEL_SEMCONV_STABILITY_OPT_IN", "database, http/dup"),
        ]);
        assert_eq!(
            c.propagators,
            Propagators {
                tracecontext: false,
                baggage: false
            }
        );
        assert!(c.http_dup_semconv);
    }
}
