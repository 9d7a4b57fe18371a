//! Builds the tracer, meter and logger providers from a [`TelemetryConfig`], with the
//! contract's instruments on the meter, and shuts everything down with a final flush.
//! Nothing here is global: a process may build several pipelines (a test does), and
//! only a front end installs the `tracing` subscriber (see [`Telemetry::install_subscriber`]).

use crate::config::{
    Exporter, HistogramAggregation, RootSampler, SamplerChoice, Signal, TelemetryConfig,
};
use crate::console::{ConsoleLogExporter, ConsoleMetricExporter, ConsoleSpanExporter};
use crate::export_health::{Admitted, HttpCause, SignalHealth, Watched};
use crate::exporters::{
    BATCH_QUEUE_SIZE, log_batch_config, log_exporter, metric_exporter, otlp, queue_size,
    trace_exporter, user_set,
};
use crate::fan_out::FanOut;
use crate::host_spans::{HostTracer, SharedProcessors};
use crate::instruments::Instruments;
use crate::recorder::{
    Recorder, RecordingLogProcessor, RecordingMetricExporter, RecordingSpanProcessor,
};
use crate::shared_batch::{BatchSettings, SharedBatchProcessor};
use crate::shared_collection::{
    FinalCollection, ViewAndExporter, export_interval, shares_collection,
};
use crate::tls::TlsMaterial;
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SimpleSpanProcessor};
use std::sync::Arc;

/// Instrumentation scope of everything wasmlens records.
const SCOPE: &str = "wasmlens";

/// The running telemetry pipeline and the contract's instruments. Cheap to share by
/// reference; [`Telemetry::shutdown`] flushes everything recorded so far (a pipeline
/// dropped without it may not export the metrics it collects last).
pub struct Telemetry {
    config: TelemetryConfig,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logger_provider: Option<SdkLoggerProvider>,
    /// Starts the host's own spans (see [`crate::host_spans`]).
    host_tracer: HostTracer,
    meter: opentelemetry::metrics::Meter,
    logger: Option<SdkLogger>,
    propagator: TextMapCompositePropagator,
    prometheus_addr: Option<std::net::SocketAddr>,
    instruments: Instruments,
    /// What became of each signal exported over OTLP.
    export_health: Vec<Arc<SignalHealth>>,
    /// Recent traces and log records for the built-in view, when it is on.
    recorder: Option<Arc<Recorder>>,
    /// Sends the metrics collected at a flush or the shutdown to the exporter that shares
    /// the view's collection, whatever its interval says.
    final_collection: FinalCollection,
}

impl Telemetry {
    /// Builds the pipeline and the instruments. Must be called inside a Tokio runtime
    /// (the gRPC exporters and the Prometheus endpoint need one). Problems in the
    /// configuration are reported on stderr, once each.
    pub fn build(mut config: TelemetryConfig) -> anyhow::Result<Self> {
        for problem in &config.problems {
            eprintln!("wasmlens: {problem}");
        }
        // Every TLS client (the HTTP exporters' included) uses ring; none is built
        // without a provider. A provider installed before is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut setup = ExportSetup {
            tls: load_tls(&config)?,
            meter: None,
            health: Vec::new(),
            final_collection: FinalCollection::default(),
        };
        let resource =
            crate::resource::build(|name| std::env::var(name).ok(), &config.resource_attributes);
        let recorder = config
            .recording
            .map(|budget| Arc::new(Recorder::new(budget, &resource)));
        // Metrics first: the other signals' exports are counted on the meter.
        let (meter_provider, prometheus_addr) =
            build_meter_provider(&mut config, resource.clone(), &mut setup, recorder.as_ref())?;
        let meter = opentelemetry::metrics::MeterProvider::meter(&meter_provider, SCOPE);
        setup.meter = Some(meter.clone());
        let (tracer_provider, host_tracer) =
            build_tracer_provider(&mut config, resource.clone(), &mut setup, recorder.as_ref());
        let logger_provider = (!config.logs.is_empty() || recorder.is_some())
            .then(|| build_logger_provider(&mut config, resource, &mut setup, recorder.as_ref()));

        let metrics_enabled = !config.metrics.is_empty() || recorder.is_some();
        // The machine's own metrics go to exporters; the view shows the workload's.
        #[cfg(target_os = "linux")]
        if !config.metrics.is_empty() {
            crate::host_metrics::register(&meter);
        }
        let instruments = Instruments::new(&meter, metrics_enabled);

        let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
        if config.propagators.tracecontext {
            propagators.push(Box::new(TraceContextPropagator::new()));
        }
        if config.propagators.baggage {
            propagators.push(Box::new(BaggagePropagator::new()));
        }

        Ok(Telemetry {
            host_tracer,
            meter,
            prometheus_addr,
            logger: logger_provider.as_ref().map(|p| p.logger(SCOPE)),
            propagator: TextMapCompositePropagator::new(propagators),
            tracer_provider,
            meter_provider,
            logger_provider,
            instruments,
            export_health: setup.health,
            final_collection: setup.final_collection,
            recorder,
            config,
        })
    }

    /// [`Telemetry::build`], then [`Telemetry::install_subscriber`]: what a front end
    /// does at startup.
    pub fn init(config: TelemetryConfig, default_log_filter: &str) -> anyhow::Result<Self> {
        let telemetry = Self::build(config)?;
        telemetry.install_subscriber(default_log_filter)?;
        Ok(telemetry)
    }

    /// The contract's metric instruments, on this pipeline's meter.
    pub fn instruments(&self) -> &Instruments {
        &self.instruments
    }

    pub(crate) fn logger_provider(&self) -> Option<&SdkLoggerProvider> {
        self.logger_provider.as_ref()
    }

    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    /// The tracer for the host's own spans: a request's, an instance's, a plugin call's.
    pub fn host_tracer(&self) -> &HostTracer {
        &self.host_tracer
    }

    pub fn meter(&self) -> &opentelemetry::metrics::Meter {
        &self.meter
    }

    /// A tracer for spans of another instrumentation scope (a guest's, through
    /// wasi:otel), exported in the same batches as the host's own.
    pub fn tracer_for(&self, scope: opentelemetry::InstrumentationScope) -> SdkTracer {
        opentelemetry::trace::TracerProvider::tracer_with_scope(&self.tracer_provider, scope)
    }

    /// A meter of another instrumentation scope (a guest's).
    pub fn meter_for(
        &self,
        scope: opentelemetry::InstrumentationScope,
    ) -> opentelemetry::metrics::Meter {
        opentelemetry::metrics::MeterProvider::meter_with_scope(&self.meter_provider, scope)
    }

    /// A logger of another instrumentation scope (a guest's); `None` when logs go
    /// nowhere.
    pub fn logger_for(&self, scope: opentelemetry::InstrumentationScope) -> Option<SdkLogger> {
        let provider = self.logger_provider.as_ref()?;
        Some(opentelemetry::logs::LoggerProvider::logger_with_scope(
            provider, scope,
        ))
    }

    /// The logger for records that do not come from `tracing` (a guest's output);
    /// `None` when logs go nowhere.
    pub fn logger(&self) -> Option<&SdkLogger> {
        self.logger.as_ref()
    }

    pub fn propagator(&self) -> &TextMapCompositePropagator {
        &self.propagator
    }

    /// Whether metrics are exported or recorded anywhere.
    pub fn metrics_enabled(&self) -> bool {
        !self.config.metrics.is_empty() || self.recorder.is_some()
    }

    /// Whether spans are exported or recorded anywhere. (The host's spans build their
    /// attributes only when they record: see [`HostTracer::start`].)
    pub fn traces_enabled(&self) -> bool {
        !self.config.traces.is_empty() || self.recorder.is_some()
    }

    /// Recent traces and log records for the built-in view, if it is on.
    pub fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.recorder.as_ref()
    }

    /// One line: where each signal goes.
    pub fn describe(&self) -> String {
        if self.config.disabled {
            return "disabled by OTEL_SDK_DISABLED".to_owned();
        }
        let routes = Signal::ALL
            .map(|signal| {
                let mut targets: Vec<String> = self
                    .config
                    .exporters(signal)
                    .iter()
                    .map(|exporter| match exporter {
                        Exporter::Console => "console (stderr)".to_owned(),
                        Exporter::Prometheus => match self.prometheus_addr {
                            Some(addr) => format!("prometheus http://{addr}/metrics"),
                            None => "prometheus".to_owned(),
                        },
                        Exporter::Otlp(protocol) => {
                            let url = self.config.otlp_endpoint(signal).map(|e| e.url.as_str());
                            format!("otlp {protocol} {}", url.unwrap_or("?"))
                        }
                    })
                    .collect();
                if self.recorder.is_some() {
                    targets.push("the view (in memory)".to_owned());
                }
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

    /// Exports everything recorded so far, and waits for it (each signal bounded by its
    /// export timeout): call it from a blocking context.
    pub fn flush(&self) {
        let _ = self.tracer_provider.force_flush();
        {
            let _flushing = self.final_collection.flushing();
            let _ = self.meter_provider.force_flush();
        }
        if let Some(provider) = &self.logger_provider {
            let _ = provider.force_flush();
        }
    }

    /// Flushes and shuts down every provider, logs last so that records about the
    /// shutdown itself are kept. Blocks until the exporters are done (each bounded by
    /// its export timeout): call it from a blocking context.
    pub fn shutdown(&self) {
        let traces = self.tracer_provider.shutdown();
        // Only now: while the spans were flushed, the view's collections went on, each
        // to the exporter only when due.
        self.final_collection.shutting_down();
        let results = [
            (Signal::Traces, traces),
            (Signal::Metrics, self.meter_provider.shutdown()),
            (
                Signal::Logs,
                self.logger_provider
                    .as_ref()
                    .map_or(Ok(()), |p| p.shutdown()),
            ),
        ];
        for (signal, result) in results {
            // A failing export has said why already.
            let said = self.export_health.iter().any(|h| h.is_failing(signal));
            if let Err(err) = result
                && !said
            {
                eprintln!("wasmlens: flushing {} failed: {err}", signal.name());
            }
        }
        if let Some(lost) = crate::export_health::lost_summary(&self.export_health) {
            eprintln!("wasmlens: {lost}");
        }
    }
}

/// Each signal's TLS material, read from its files, for a signal exported over OTLP to an
/// `https://` endpoint: a file that cannot be read or parsed refuses the start.
type Tls = [Option<TlsMaterial>; 3];

/// What the OTLP exporters are built with besides their endpoints, and what they report to.
struct ExportSetup {
    tls: Tls,
    /// Where exports are counted; `None` while the meter provider is being built.
    meter: Option<opentelemetry::metrics::Meter>,
    health: Vec<Arc<SignalHealth>>,
    /// Set before a flush or the shutdown, for an exporter that shares the view's
    /// collection of metrics.
    final_collection: FinalCollection,
}

impl ExportSetup {
    /// A signal's OTLP exporter, and the [`SignalHealth`] its exports report to.
    fn otlp<E>(
        &mut self,
        config: &mut TelemetryConfig,
        signal: Signal,
        protocol: crate::config::Protocol,
        build: impl Fn(
            crate::exporters::Transport,
            String,
        ) -> Result<E, opentelemetry_otlp::ExporterBuildError>,
    ) -> (E, Arc<SignalHealth>) {
        let endpoint = otlp_endpoint(config, signal);
        let http_cause = HttpCause::default();
        let tls = self.tls[signal as usize].as_ref();
        let exporter = otlp(signal, protocol, endpoint, tls, &http_cause, build);
        let health = Arc::new(SignalHealth::new(
            signal,
            protocol,
            endpoint.url.clone(),
            queue_size(signal),
            http_cause,
            self.meter.as_ref(),
        ));
        self.health.push(health.clone());
        (exporter, health)
    }
}

fn load_tls(config: &TelemetryConfig) -> anyhow::Result<Tls> {
    let mut tls: Tls = [None, None, None];
    for signal in Signal::ALL {
        let https = config
            .otlp_endpoint(signal)
            .is_some_and(|endpoint| endpoint.url.to_ascii_lowercase().starts_with("https://"));
        let files = &config.tls[signal as usize];
        if https {
            tls[signal as usize] = Some(TlsMaterial::load(files)?);
        } else if !files.is_empty() && config.otlp_endpoint(signal).is_some() {
            // Named but unused: say so, rather than let a user believe it is in effect.
            eprintln!(
                "wasmlens: the {} endpoint is not https://: its certificate variables are not used",
                signal.name()
            );
        }
    }
    Ok(tls)
}

fn build_tracer_provider(
    config: &mut TelemetryConfig,
    resource: Resource,
    setup: &mut ExportSetup,
    recorder: Option<&Arc<Recorder>>,
) -> (SdkTracerProvider, HostTracer) {
    let console = config.console_format;
    // From `OTEL_SPAN_*`, by the SDK's own reading, for its tracers and the host's alike.
    // (It reads `OTEL_TRACES_SAMPLER` too, and may warn of it as the provider does; the
    // sampler it would make is not used.)
    let limits = opentelemetry_sdk::trace::Config::default().span_limits;
    // The one resource: the processors shared with the host's tracer get it here (see
    // `SharedProcessors::new`), not from the provider.
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_limits(limits)
        .with_id_generator(crate::ids::PresetIdGenerator::default());
    let sampler = match config.traces.is_empty() && recorder.is_none() {
        // Spans that go nowhere are not recorded, unless a caller sampled the trace:
        // then they are, so that the sampled flag passes on unchanged and the services
        // downstream keep the trace whole.
        true => SamplerChoice::ParentBased(RootSampler::AlwaysOff),
        false => config.sampler,
    };
    let sampler = sdk_sampler(sampler);
    builder = builder.with_sampler(sampler.clone());
    // The console's processors take copies of spans, the others share them (see
    // `crate::fan_out`). The view shares its spans with the first OTLP exporter's queue,
    // or has a processor of its own.
    let mut processors = FanOut::default();
    let mut shared = Vec::new();
    let mut view = recorder.cloned();
    for exporter in config.traces.clone() {
        match exporter {
            Exporter::Otlp(protocol) => {
                let encoder = config.span_encoder;
                let (exporter, health) = setup.otlp(config, Signal::Traces, protocol, |t, e| {
                    trace_exporter(encoder, t, e)
                });
                shared.push(SharedBatchProcessor::new(
                    exporter,
                    health,
                    view.take(),
                    BatchSettings::from_env(queue_size(Signal::Traces)),
                ));
            }
            Exporter::Console => {
                processors.push(SimpleSpanProcessor::new(ConsoleSpanExporter::new(console)));
            }
            // The configuration offers Prometheus for metrics only.
            Exporter::Prometheus => {}
        }
    }
    for processor in shared {
        processors.push_sharing(processor);
    }
    if let Some(recorder) = view {
        processors.push_sharing(RecordingSpanProcessor(recorder));
    }
    let processors = if processors.is_empty() {
        None
    } else {
        let shared = SharedProcessors::new(processors, &resource);
        builder = builder.with_span_processor(shared.clone());
        Some(shared)
    };
    let scope = InstrumentationScope::builder(SCOPE).build();
    let host = HostTracer::new(scope, sampler, limits, processors);
    (builder.build(), host)
}

fn sdk_sampler(choice: SamplerChoice) -> Sampler {
    let root = |root: RootSampler| match root {
        RootSampler::AlwaysOn => Sampler::AlwaysOn,
        RootSampler::AlwaysOff => Sampler::AlwaysOff,
        RootSampler::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
    };
    match choice {
        SamplerChoice::AlwaysOn => Sampler::AlwaysOn,
        SamplerChoice::AlwaysOff => Sampler::AlwaysOff,
        SamplerChoice::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
        SamplerChoice::ParentBased(inner) => Sampler::ParentBased(Box::new(root(inner))),
    }
}

/// The meter provider, and the address of its Prometheus endpoint if it has one.
fn build_meter_provider(
    config: &mut TelemetryConfig,
    resource: Resource,
    setup: &mut ExportSetup,
    recorder: Option<&Arc<Recorder>>,
) -> anyhow::Result<(SdkMeterProvider, Option<std::net::SocketAddr>)> {
    let console = config.console_format;
    let mut builder = SdkMeterProvider::builder().with_resource(resource);
    // The view's reader, unless the OTLP exporter shares its collection.
    let mut view_reader = recorder.map(|recorder| RecordingMetricExporter(recorder.clone()));
    if config.histogram_aggregation == HistogramAggregation::Base2Exponential {
        builder = builder.with_view(|instrument: &Instrument| {
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
    for exporter in config.metrics.clone() {
        builder = match exporter {
            Exporter::Otlp(protocol) => {
                let (inner, health) =
                    setup.otlp(config, Signal::Metrics, protocol, metric_exporter);
                let exporter = Watched { inner, health };
                let interval = export_interval();
                match view_reader.take() {
                    Some(view) if shares_collection(exporter.temporality(), interval) => {
                        let shared = ViewAndExporter::new(
                            view,
                            exporter,
                            interval,
                            setup.final_collection.clone(),
                        );
                        builder.with_reader(
                            PeriodicReader::builder(shared)
                                .with_interval(crate::recorder::INTERVAL)
                                .build(),
                        )
                    }
                    view => {
                        view_reader = view;
                        builder.with_reader(PeriodicReader::builder(exporter).build())
                    }
                }
            }
            Exporter::Console => builder
                .with_reader(PeriodicReader::builder(ConsoleMetricExporter::new(console)).build()),
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
                builder.with_reader(reader)
            }
        };
    }
    if let Some(exporter) = view_reader {
        let reader = PeriodicReader::builder(exporter)
            .with_interval(crate::recorder::INTERVAL)
            .build();
        builder = builder.with_reader(reader);
    }
    Ok((builder.build(), prometheus_addr))
}

fn build_logger_provider(
    config: &mut TelemetryConfig,
    resource: Resource,
    setup: &mut ExportSetup,
    recorder: Option<&Arc<Recorder>>,
) -> SdkLoggerProvider {
    let console = config.console_format;
    let mut builder = SdkLoggerProvider::builder().with_resource(resource);
    if let Some(recorder) = recorder {
        builder = builder.with_log_processor(RecordingLogProcessor(recorder.clone()));
    }
    for exporter in config.logs.clone() {
        builder = match exporter {
            Exporter::Otlp(protocol) => {
                let (exporter, health) = setup.otlp(config, Signal::Logs, protocol, log_exporter);
                let exporter = Watched {
                    inner: exporter,
                    health: health.clone(),
                };
                let inner = BatchLogProcessor::builder(exporter)
                    .with_batch_config(log_batch_config())
                    .build();
                builder.with_log_processor(Admitted { inner, health })
            }
            Exporter::Console => builder.with_simple_exporter(ConsoleLogExporter::new(console)),
            Exporter::Prometheus => builder,
        };
    }
    builder.build()
}

/// The endpoint the configuration resolved for a signal it exports over OTLP.
fn otlp_endpoint(config: &mut TelemetryConfig, signal: Signal) -> &mut crate::config::OtlpEndpoint {
    config.otlp_endpoints[signal as usize]
        .as_mut()
        .expect("a signal exported over OTLP has an endpoint")
}
