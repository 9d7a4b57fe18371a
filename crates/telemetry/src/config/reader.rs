//! Reads the variables, one value at a time, and notes each problem once.

use super::{
    ConsoleFormat, Exporter, GENERAL_ENDPOINT_VAR, HistogramAggregation, OtlpEndpoint, Propagators,
    Protocol, RootSampler, SamplerChoice, Signal, SpanEncoder,
};

pub(super) struct Reader<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub problems: Vec<String>,
}

impl Reader<'_> {
    pub(super) fn get(&self, name: &str) -> Option<String> {
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

    pub(super) fn bool(&mut self, name: &str, default: bool) -> bool {
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

    pub(super) fn check_integer(&mut self, name: &str) {
        if let Some(value) = self.get(name)
            && value.trim().parse::<u64>().is_err()
        {
            self.problem(name, &value, "a whole number", "the default");
        }
    }

    pub(super) fn port(&mut self, name: &str, default: u16) -> u16 {
        let Some(value) = self.get(name) else {
            return default;
        };
        value.trim().parse().unwrap_or_else(|_| {
            self.problem(name, &value, "a port number", &default.to_string());
            default
        })
    }

    /// A variable whose value is one of `choices` (case aside); the first is the default.
    fn choice<T: Copy>(&mut self, name: &str, choices: &[(&str, T)]) -> T {
        let (default_name, default) = choices[0];
        let Some(value) = self.get(name) else {
            return default;
        };
        let wanted = value.trim().to_ascii_lowercase();
        if let Some((_, chosen)) = choices.iter().find(|(text, _)| *text == wanted) {
            return *chosen;
        }
        let names: Vec<&str> = choices.iter().map(|(text, _)| *text).collect();
        self.problem(name, &value, &names.join(" or "), default_name);
        default
    }

    pub(super) fn histogram_aggregation(&mut self) -> HistogramAggregation {
        self.choice(
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            &[
                (
                    "explicit_bucket_histogram",
                    HistogramAggregation::ExplicitBuckets,
                ),
                (
                    "base2_exponential_bucket_histogram",
                    HistogramAggregation::Base2Exponential,
                ),
            ],
        )
    }

    pub(super) fn console_format(&mut self) -> ConsoleFormat {
        self.choice(
            "WASMLENS_CONSOLE_FORMAT",
            &[("text", ConsoleFormat::Text), ("json", ConsoleFormat::Json)],
        )
    }

    pub(super) fn span_encoder(&mut self) -> SpanEncoder {
        self.choice(
            "WASMLENS_OTLP_SPAN_ENCODER",
            &[
                ("wasmlens", SpanEncoder::Wasmlens),
                ("sdk", SpanEncoder::Sdk),
            ],
        )
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
    pub(super) fn exporters(&mut self, signal: Signal, any_endpoint: bool) -> Vec<Exporter> {
        let name = signal.exporter_var();
        let protocol = self.protocol(signal);
        let endpoint = any_endpoint || self.get(signal.endpoint_var()).is_some();
        let implicit = || match endpoint {
            true => vec![Exporter::Otlp(protocol)],
            false => Vec::new(),
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
        let mut unique = Vec::with_capacity(exporters.len());
        for exporter in exporters {
            if !unique.contains(&exporter) {
                unique.push(exporter);
            }
        }
        unique
    }

    /// The endpoint a signal is exported to, unless it is one wasmlens cannot send to:
    /// then the problem is reported and the signal is not exported over OTLP. A value that
    /// is not a URL is reported, and the default endpoint used, as the specification asks.
    pub(super) fn usable_endpoint(
        &mut self,
        signal: Signal,
        protocol: Protocol,
    ) -> Option<OtlpEndpoint> {
        let mut endpoint = self.otlp_endpoint(signal, protocol);
        let Some(variable) = endpoint.variable else {
            return Some(endpoint);
        };
        let value = self.get(variable).unwrap_or_default();
        if protocol == Protocol::Grpc && !endpoint.url.contains("://") {
            // `collector:4317`: TLS unless `_INSECURE` says otherwise, as the
            // specification has it for gRPC (only).
            let scheme = if self.insecure(signal) {
                "http"
            } else {
                "https"
            };
            endpoint.url = format!("{scheme}://{}", endpoint.url);
        }
        let scheme = endpoint
            .url
            .parse::<http::Uri>()
            .ok()
            .filter(|uri| uri.host().is_some())
            .and_then(|uri| uri.scheme_str().map(str::to_ascii_lowercase));
        match scheme.as_deref() {
            Some("http" | "https") => Some(endpoint),
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

    /// Whether a signal's scheme-less gRPC endpoint is spoken to without TLS:
    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_INSECURE`, else `OTEL_EXPORTER_OTLP_INSECURE`.
    fn insecure(&mut self, signal: Signal) -> bool {
        let own = format!(
            "OTEL_EXPORTER_OTLP_{}_INSECURE",
            signal.name().to_ascii_uppercase()
        );
        match self.get(&own) {
            Some(_) => self.bool(&own, false),
            None => self.bool("OTEL_EXPORTER_OTLP_INSECURE", false),
        }
    }

    /// `OTEL_TRACES_SAMPLER` and its argument, as the specification defines them.
    pub(super) fn sampler(&mut self) -> SamplerChoice {
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

    pub(super) fn propagators(&mut self) -> Propagators {
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
