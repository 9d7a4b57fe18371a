//! What the configuration makes of the variables a user sets.

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
fn a_grpc_endpoint_without_a_scheme_uses_tls_unless_insecure() {
    let url = |c: &TelemetryConfig, signal| c.otlp_endpoint(signal).unwrap().url.clone();
    let grpc = ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    let c = config(&[grpc, ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]);
    assert_eq!(url(&c, Signal::Traces), "https://collector:4317");
    assert!(c.problems.is_empty(), "{:?}", c.problems);

    let c = config(&[
        grpc,
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "TRUE"),
        ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "false"),
    ]);
    assert_eq!(url(&c, Signal::Traces), "https://collector:4317");
    assert_eq!(url(&c, Signal::Metrics), "http://collector:4317");
    assert_eq!(url(&c, Signal::Logs), "http://collector:4317");

    // A scheme says it all: _INSECURE does not change it.
    let c = config(&[
        grpc,
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ]);
    assert_eq!(url(&c, Signal::Traces), "https://collector:4317");

    let c = config(&[
        grpc,
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "yes"),
    ]);
    assert_eq!(url(&c, Signal::Traces), "https://collector:4317");
    assert_eq!(
        c.problems,
        vec![
            "ignoring OTEL_EXPORTER_OTLP_INSECURE=\"yes\": expected true or false; using false"
                .to_owned()
        ]
    );
}

#[test]
fn an_http_endpoint_without_a_scheme_is_refused() {
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
    assert_eq!(
        c.otlp_endpoint(Signal::Traces).unwrap().url,
        "http://localhost:4318/v1/traces"
    );
    assert!(
        c.problems[0].contains("expected a URL such as http://collector:4318"),
        "{:?}",
        c.problems
    );
}

#[test]
fn a_tls_endpoint_is_used_with_its_certificate_files() {
    let c = config(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector.example:4318",
        ),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
        ("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "/etc/logs-ca.pem"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", " "),
    ]);
    assert_eq!(c.traces, vec![Exporter::Otlp(Protocol::HttpProtobuf)]);
    let traces = c.otlp_endpoint(Signal::Traces).unwrap();
    assert_eq!(traces.url, "https://collector.example:4318/v1/traces");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let ca = |signal: Signal| c.tls[signal as usize].ca.clone().unwrap();
    assert_eq!(
        ca(Signal::Traces).variable,
        "OTEL_EXPORTER_OTLP_CERTIFICATE"
    );
    assert_eq!(
        ca(Signal::Logs).path,
        std::path::Path::new("/etc/logs-ca.pem")
    );
    assert_eq!(c.tls[0].client_key, None, "blank is unset");
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

#[test]
fn each_exporter_once_and_blank_endpoints_are_unset() {
    let c = config(&[("OTEL_TRACES_EXPORTER", "otlp,console,otlp")]);
    assert_eq!(
        c.traces,
        vec![Exporter::Otlp(Protocol::HttpProtobuf), Exporter::Console]
    );
    let c = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "  ")]);
    assert!(c.traces.is_empty(), "{:?}", c.traces);
}

/// Every variable the configuration reads.
const VARIABLES: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
    "OTEL_SEMCONV_STABILITY_OPT_IN",
    "WASMLENS_CONSOLE_FORMAT",
    "WASMLENS_OTLP_SPAN_ENCODER",
];

/// Values a user might set, right or wrong, and anything at all.
fn a_value() -> impl proptest::strategy::Strategy<Value = Option<String>> {
    use proptest::prelude::*;
    let plausible = prop_oneof![
        Just("otlp".to_owned()),
        Just("console,otlp".to_owned()),
        Just("prometheus".to_owned()),
        Just("none".to_owned()),
        Just("grpc".to_owned()),
        Just("http/json".to_owned()),
        Just("http://localhost:4318".to_owned()),
        Just("collector:4317".to_owned()),
        Just("https://collector:4317".to_owned()),
        Just("parentbased_traceidratio".to_owned()),
        Just("true".to_owned()),
        "[a-z0-9_/:.,=-]{0,24}",
        "-?[0-9]{1,25}(\\.[0-9]{0,5})?",
        any::<String>(),
    ];
    proptest::option::of(plausible)
}

proptest::proptest! {
    /// Whatever the environment holds, reading it gives a configuration (never a panic),
    /// and every value it cannot use is reported naming its variable.
    #[test]
    fn any_environment_reads_and_every_refusal_names_its_variable(
        values in proptest::collection::vec(a_value(), VARIABLES.len())
    ) {
        let env: std::collections::HashMap<&str, String> = VARIABLES
            .iter()
            .zip(values)
            .filter_map(|(name, value)| Some((*name, value?)))
            .collect();
        let config = TelemetryConfig::from_lookup(|name| env.get(name).cloned());
        for problem in &config.problems {
            proptest::prop_assert!(
                VARIABLES.iter().any(|name| problem.contains(name)),
                "{problem}"
            );
        }
        if config.disabled {
            proptest::prop_assert!(config.traces.is_empty() && config.metrics.is_empty());
        }
    }
}
