//! Builds the tracer, meter and logger providers from a [`TelemetryConfig`], installs
//! the `tracing` subscriber, and shuts everything down with a final flush.

use crate::config::{Exporter, HistogramAggregation, Protocol, Signal, TelemetryConfig};
use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Instrumentation scope of everything wasmlens records.
const SCOPE: &str = "wasmlens";

/// The running telemetry pipeline. Cheap to share by reference; [`Telemetry::shutdown`]
/// flushes everything recorded so far.
pub struct Telemetry {
    config: TelemetryConfig,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logger_provider: Option<SdkLoggerProvider>,
    tracer: SdkTracer,
    meter: opentelemetry::metrics::Meter,
    logger: Option<SdkLogger>,
    propagator: TextMapCompositePropagator,
    prometheus_addr: Option<std::net::SocketAddr>,
}

/// How `tracing` events reach stderr when `RUST_LOG` is not set.
pub struct InitOptions {
    /// An `EnvFilter` directive, e.g. `info` for a server and `warn` for a CLI run.
    pub default_log_filter: &'static str,
}

/// Targets whose events would loop back into the exporters that produced them.
fn is_exporter_internal(target: &str) -> bool {
    ["opentelemetry", "tonic", "h2", "hyper", "reqwest", "tower"]
        .iter()
        .any(|prefix| target.starts_with(prefix))
}

impl Telemetry {
    /// Builds the pipeline and installs the global `tracing` subscriber. Must be called
    /// inside a Tokio runtime (the gRPC exporters need one). Problems in the
    /// configuration are reported on stderr, once each.
    pub fn init(config: TelemetryConfig, options: InitOptions) -> anyhow::Result<Self> {
        for problem in &config.problems {
            eprintln!("wasmlens: {problem}");
        }
        let resource = crate::resource::build(|name| std::env::var(name).ok());

        let logger_provider = (!config.logs.is_empty())
            .then(|| build_logger_provider(&config.logs, resource.clone()));

        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|err| {
            if std::env::var_os("RUST_LOG").is_some() {
                eprintln!(
                    "wasmlens: ignoring RUST_LOG: {err}; using {}",
                    options.default_log_filter
                );
            }
            EnvFilter::new(options.default_log_filter)
        });
        let stderr = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter);
        let otel_logs = logger_provider.as_ref().map(|provider| {
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(provider)
                .with_filter(
                    tracing_subscriber::filter::filter_fn(|meta| {
                        !is_exporter_internal(meta.target())
                            && meta.target() != crate::events::TARGET
                            && *meta.level() <= tracing::Level::INFO
                        // Said up front too: without the hint the subscriber's maximum
                        // level is TRACE, and every `log::trace!` in wasmtime (several a
                        // request) goes through the `log` bridge only to be dropped here.
                    })
                    .with_max_level_hint(tracing::level_filters::LevelFilter::INFO),
                )
        });
        tracing_subscriber::registry()
            .with(stderr)
            .with(otel_logs)
            .try_init()?;

        let mut tracer_builder = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_id_generator(crate::ids::PresetIdGenerator::default());
        if config.traces.is_empty() {
            // Spans that go nowhere are not recorded, unless a caller sampled the trace:
            // then they are, so that the sampled flag passes on unchanged and the services
            // downstream keep the trace whole.
            let root_off = opentelemetry_sdk::trace::Sampler::AlwaysOff;
            let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(root_off));
            tracer_builder = tracer_builder.with_sampler(sampler);
        }
        for exporter in &config.traces {
            tracer_builder = match exporter {
                Exporter::Otlp(protocol) => tracer_builder.with_span_processor(
                    BatchSpanProcessor::builder(otlp(Signal::Traces, *protocol, span_exporter))
                        .with_batch_config(span_batch_config())
                        .build(),
                ),
                Exporter::Console => tracer_builder
                    .with_simple_exporter(opentelemetry_stdout::SpanExporter::default()),
                // The configuration offers Prometheus for metrics only.
                Exporter::Prometheus => tracer_builder,
            };
        }
        let tracer_provider = tracer_builder.build();

        let mut meter_builder = SdkMeterProvider::builder().with_resource(resource);
        if config.histogram_aggregation == HistogramAggregation::Base2Exponential {
            meter_builder = meter_builder.with_view(|instrument: &Instrument| {
                (instrument.kind() == InstrumentKind::Histogram).then(|| {
                    Stream::builder()
                        .with_aggregation(Aggregation::Base2ExponentialHistogram {
                            max_size: 160,
                            max_scale: 20,
                            record_min_max: true,
                        })
                        .build()
                        .expect("a valid exponential histogram stream")
                })
            });
        }
        let mut prometheus_addr = None;
        for exporter in &config.metrics {
            meter_builder = match exporter {
                Exporter::Otlp(protocol) => meter_builder.with_reader(
                    PeriodicReader::builder(otlp(Signal::Metrics, *protocol, metric_exporter))
                        .build(),
                ),
                Exporter::Console => meter_builder.with_reader(
                    PeriodicReader::builder(opentelemetry_stdout::MetricExporter::default())
                        .build(),
                ),
                Exporter::Prometheus => {
                    let addr = &config.prometheus_listen;
                    let listener = crate::prometheus::bind(addr).map_err(|err| {
                        anyhow::anyhow!("cannot serve Prometheus metrics on {addr}: {err}")
                    })?;
                    let registry = prometheus::Registry::new();
                    let reader = opentelemetry_prometheus::exporter()
                        .with_registry(registry.clone())
                        .build()?;
                    prometheus_addr = Some(crate::prometheus::serve(listener, registry));
                    meter_builder.with_reader(reader)
                }
            };
        }
        let meter_provider = meter_builder.build();
        let meter = opentelemetry::metrics::MeterProvider::meter(&meter_provider, SCOPE);
        #[cfg(target_os = "linux")]
        if !config.metrics.is_empty() {
            crate::host_metrics::register(&meter);
        }

        let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
        if config.propagators.tracecontext {
            propagators.push(Box::new(TraceContextPropagator::new()));
        }
        if config.propagators.baggage {
            propagators.push(Box::new(BaggagePropagator::new()));
        }

        let telemetry = Telemetry {
            tracer: tracer_provider.tracer(SCOPE),
            meter,
            prometheus_addr,
            logger: logger_provider.as_ref().map(|p| p.logger(SCOPE)),
            propagator: TextMapCompositePropagator::new(propagators),
            tracer_provider,
            meter_provider,
            logger_provider,
            config,
        };
        tracing::info!("telemetry: {}", telemetry.describe());
        Ok(telemetry)
    }

    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    pub fn meter(&self) -> &opentelemetry::metrics::Meter {
        &self.meter
    }

    /// The logger for records that do not come from `tracing` (a guest's output);
    /// `None` when logs go nowhere.
    pub fn logger(&self) -> Option<&SdkLogger> {
        self.logger.as_ref()
    }

    pub fn propagator(&self) -> &TextMapCompositePropagator {
        &self.propagator
    }

    /// Whether metrics are exported anywhere.
    pub fn metrics_enabled(&self) -> bool {
        !self.config.metrics.is_empty()
    }

    /// Whether spans are exported anywhere: when not, callers skip building attributes.
    pub fn traces_enabled(&self) -> bool {
        !self.config.traces.is_empty()
    }

    /// One line: where each signal goes.
    pub fn describe(&self) -> String {
        if self.config.disabled {
            return "disabled by OTEL_SDK_DISABLED".to_owned();
        }
        let routes = Signal::ALL
            .map(|signal| {
                let targets: Vec<String> = self
                    .config
                    .exporters(signal)
                    .iter()
                    .map(|exporter| match exporter {
                        Exporter::Console => "console (stdout)".to_owned(),
                        Exporter::Prometheus => match self.prometheus_addr {
                            Some(addr) => format!("prometheus http://{addr}/metrics"),
                            None => "prometheus".to_owned(),
                        },
                        Exporter::Otlp(protocol) => {
                            format!("otlp {protocol} {}", endpoint(signal, *protocol))
                        }
                    })
                    .collect();
                let targets = if targets.is_empty() {
                    "none".to_owned()
                } else {
                    targets.join(" + ")
                };
                format!("{} -> {targets}", signal.name())
            })
            .join("; ");
        let batched = [Signal::Traces, Signal::Logs].iter().any(|signal| {
            self.config
                .exporters(*signal)
                .iter()
                .any(|e| matches!(e, Exporter::Otlp(_)))
        });
        if batched {
            let queue = |var| {
                if user_set(var) {
                    "as set".to_owned()
                } else {
                    BATCH_QUEUE_SIZE.to_string()
                }
            };
            format!(
                "{routes} (batch queues: spans {}, logs {}; see OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BLRP_MAX_QUEUE_SIZE)",
                queue("OTEL_BSP_MAX_QUEUE_SIZE"),
                queue("OTEL_BLRP_MAX_QUEUE_SIZE")
            )
        } else {
            routes
        }
    }

    /// Flushes and shuts down every provider, logs last so that records about the
    /// shutdown itself are kept. Blocks until the exporters are done (each bounded by
    /// its export timeout): call it from a blocking context.
    pub fn shutdown(&self) {
        let results = [
            ("traces", self.tracer_provider.shutdown()),
            ("metrics", self.meter_provider.shutdown()),
            (
                "logs",
                self.logger_provider
                    .as_ref()
                    .map_or(Ok(()), |p| p.shutdown()),
            ),
        ];
        for (signal, result) in results {
            if let Err(err) = result {
                eprintln!("wasmlens: flushing {signal} failed: {err}");
            }
        }
    }
}

/// The batch processors' queue size where `OTEL_BSP_MAX_QUEUE_SIZE` /
/// `OTEL_BLRP_MAX_QUEUE_SIZE` do not say otherwise. The specification's default (2048)
/// overflows, and drops spans, as soon as a server passes about 700 requests/s at three
/// spans each. This queue holds a few seconds of a busy server's telemetry (tens of MB at
/// most), and the processor exports as soon as a batch is full, so it adds no latency.
/// Batches stay at the specification's 512: the exporter turns a batch into protobuf in
/// one go, and a request served meanwhile has one core fewer, so larger batches show in
/// the tail latency (p99 6.2 ms with batches of 2048, 4.9 ms with 512, at 29k requests/s
/// on two cores).
pub const BATCH_QUEUE_SIZE: usize = 65_536;

/// Whether the user gave a usable value for this variable (else wasmlens's default holds).
fn user_set(name: &str) -> bool {
    std::env::var(name)
        .ok()
        .is_some_and(|v| v.trim().parse::<u64>().is_ok())
}

fn span_batch_config() -> opentelemetry_sdk::trace::BatchConfig {
    let mut builder = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if !user_set("OTEL_BSP_MAX_QUEUE_SIZE") {
        builder = builder.with_max_queue_size(BATCH_QUEUE_SIZE);
    }
    builder.build()
}

fn log_batch_config() -> opentelemetry_sdk::logs::BatchConfig {
    let mut builder = opentelemetry_sdk::logs::BatchConfigBuilder::default();
    if !user_set("OTEL_BLRP_MAX_QUEUE_SIZE") {
        builder = builder.with_max_queue_size(BATCH_QUEUE_SIZE);
    }
    builder.build()
}

fn build_logger_provider(exporters: &[Exporter], resource: Resource) -> SdkLoggerProvider {
    let mut builder = SdkLoggerProvider::builder().with_resource(resource);
    for exporter in exporters {
        builder = match exporter {
            Exporter::Otlp(protocol) => builder.with_log_processor(
                BatchLogProcessor::builder(otlp(Signal::Logs, *protocol, log_exporter))
                    .with_batch_config(log_batch_config())
                    .build(),
            ),
            Exporter::Console => {
                builder.with_simple_exporter(opentelemetry_stdout::LogExporter::default())
            }
            Exporter::Prometheus => builder,
        };
    }
    builder.build()
}

/// The endpoint a signal's OTLP exporter sends to, resolved as the specification says
/// (and as opentelemetry-otlp does): the signal's own variable as given; else the general
/// one, with `/v1/<signal>` appended for HTTP; else the default.
pub(crate) fn endpoint(signal: Signal, protocol: Protocol) -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(endpoint) = var(signal.endpoint_var()) {
        return endpoint;
    }
    let base = var("OTEL_EXPORTER_OTLP_ENDPOINT");
    match protocol {
        Protocol::Grpc => base.unwrap_or_else(|| "http://localhost:4317".to_owned()),
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let base = base.unwrap_or_else(|| "http://localhost:4318".to_owned());
            format!("{}{}", base.trim_end_matches('/'), signal.http_path())
        }
    }
}

/// What the OTLP exporter builders have in common, so one function can build any of them.
enum Transport {
    Grpc,
    Http(opentelemetry_otlp::Protocol),
}

/// Builds a signal's OTLP exporter. The exporter reads endpoint, headers, timeout and
/// compression from the environment itself; if it refuses them (a malformed endpoint),
/// the problem is reported and the exporter is built for the default endpoint instead.
fn otlp<E>(
    signal: Signal,
    protocol: Protocol,
    build: impl Fn(Transport, Option<String>) -> Result<E, opentelemetry_otlp::ExporterBuildError>,
) -> E {
    let transport = || match protocol {
        Protocol::Grpc => Transport::Grpc,
        other => Transport::Http(other.as_otlp()),
    };
    build(transport(), None).unwrap_or_else(|err| {
        let fallback = match protocol {
            Protocol::Grpc => "http://localhost:4317".to_owned(),
            _ => format!("http://localhost:4318{}", signal.http_path()),
        };
        eprintln!(
            "wasmlens: {} exporter: {err}; using {fallback}",
            signal.name()
        );
        build(transport(), Some(fallback.clone()))
            .unwrap_or_else(|err| panic!("the default OTLP endpoint {fallback} was refused: {err}"))
    })
}

macro_rules! otlp_exporter_fn {
    ($name:ident, $exporter:ty) => {
        fn $name(
            transport: Transport,
            endpoint: Option<String>,
        ) -> Result<$exporter, opentelemetry_otlp::ExporterBuildError> {
            let builder = <$exporter>::builder();
            match transport {
                Transport::Grpc => {
                    let mut b = builder
                        .with_tonic()
                        .with_protocol(opentelemetry_otlp::Protocol::Grpc);
                    if let Some(endpoint) = endpoint {
                        b = b.with_endpoint(endpoint);
                    }
                    b.build()
                }
                Transport::Http(protocol) => {
                    let mut b = builder.with_http().with_protocol(protocol);
                    if let Some(endpoint) = endpoint {
                        b = b.with_endpoint(endpoint);
                    }
                    b.build()
                }
            }
        }
    };
}
otlp_exporter_fn!(span_exporter, opentelemetry_otlp::SpanExporter);
otlp_exporter_fn!(metric_exporter, opentelemetry_otlp::MetricExporter);
otlp_exporter_fn!(log_exporter, opentelemetry_otlp::LogExporter);
