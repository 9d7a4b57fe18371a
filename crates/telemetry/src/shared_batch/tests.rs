//! The processor with the SDK's tracer in front and a real OTLP receiver behind, on
//! loopback: what arrives, in how many requests, and what the view holds.

use super::*;
use crate::config::{Protocol, Signal};
use crate::export_health::{HttpCause, ReportingClient};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use wasmlens_test_support::OtlpReceiver;

const WAIT: Duration = Duration::from_secs(20);
const NEVER: Duration = Duration::from_secs(3600);

/// A receiver on loopback, served by a runtime of its own: the processor's thread and
/// the blocking HTTP client stay outside any runtime, as in the host.
struct Collector {
    runtime: tokio::runtime::Runtime,
    receiver: OtlpReceiver,
}

impl Collector {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let receiver = runtime.block_on(OtlpReceiver::start());
        Collector { runtime, receiver }
    }

    fn exporter(&self) -> TraceExporter {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ReportingClient {
            inner: crate::tls::http_client(None, WAIT).unwrap(),
            cause: HttpCause::default(),
        };
        let endpoint = format!("{}/v1/traces", self.receiver.http_endpoint());
        let exporter =
            crate::otlp::HttpSpanExporter::new(Arc::new(client), &endpoint, WAIT).unwrap();
        TraceExporter::Own(exporter)
    }

    /// A processor exporting here, with room for 1,000 spans and no view.
    fn processor(&self, delay: Duration, batch: usize) -> SharedBatchProcessor {
        SharedBatchProcessor::new(self.exporter(), health(1000), None, settings(delay, batch))
    }

    fn wait_for_spans(&self, count: usize) -> Vec<wasmlens_test_support::SpanRecord> {
        self.runtime
            .block_on(self.receiver.wait_for_spans("work", count, WAIT))
    }

    fn requests(&self) -> usize {
        self.receiver.request_headers().len()
    }
}

fn health(capacity: usize) -> Arc<SignalHealth> {
    Arc::new(SignalHealth::new(
        Signal::Traces,
        Protocol::HttpProtobuf,
        "http://127.0.0.1/v1/traces".to_owned(),
        capacity,
        HttpCause::default(),
        None,
    ))
}

fn settings(scheduled_delay: Duration, max_export_batch_size: usize) -> BatchSettings {
    BatchSettings {
        scheduled_delay,
        max_export_batch_size,
    }
}

/// A provider whose only processor is `processor`, as the pipeline builds it.
fn provider(processor: SharedBatchProcessor) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_service_name("shared-batch-test")
                .build(),
        )
        .with_span_processor(processor)
        .build()
}

/// Ends `count` spans named `work`, each a trace of its own; returns the trace ids.
fn end_spans(provider: &SdkTracerProvider, count: usize) -> Vec<opentelemetry::trace::TraceId> {
    let tracer = provider.tracer("test");
    (0..count)
        .map(|i| {
            let mut span = tracer.start("work");
            span.set_attribute(KeyValue::new("i", i as i64));
            let id = span.span_context().trace_id();
            span.end();
            id
        })
        .collect()
}

#[test]
fn settings_are_read_from_the_variables_as_the_sdk_reads_them() {
    let read_with_queue = |pairs: &[(&str, &str)], queue: usize| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        BatchSettings::from_lookup(get, queue)
    };
    let read = |pairs: &[(&str, &str)]| read_with_queue(pairs, crate::exporters::BATCH_QUEUE_SIZE);
    let defaults = BatchSettings {
        scheduled_delay: Duration::from_millis(5000),
        max_export_batch_size: 512,
    };
    assert_eq!(read(&[]), defaults);
    assert_eq!(
        read(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
        ]),
        BatchSettings {
            scheduled_delay: Duration::from_millis(250),
            max_export_batch_size: 64,
        }
    );
    // Not whole numbers: ignored, as the SDK ignores them.
    assert_eq!(
        read(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1"),
        ]),
        defaults
    );
    // A batch is at most the queue (wasmlens's default queue is larger than the SDK's) and
    // at least one span; the delay at least a millisecond.
    let small_queue = read_with_queue(&[], 100);
    assert_eq!(small_queue.max_export_batch_size, 100);
    let large_batch = read(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096")]);
    assert_eq!(large_batch.max_export_batch_size, 4096);
    let zeros = read(&[
        ("OTEL_BSP_SCHEDULE_DELAY", "0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"),
    ]);
    assert_eq!(zeros.max_export_batch_size, 1);
    assert_eq!(zeros.scheduled_delay, Duration::from_millis(1));
    let no_queue = read_with_queue(&[], 0);
    assert_eq!(no_queue.max_export_batch_size, 1);
}

#[test]
fn a_full_batch_goes_at_once_without_waiting_for_the_delay() {
    let collector = Collector::start();
    let provider = provider(collector.processor(NEVER, 3));
    end_spans(&provider, 3);
    let spans = collector.wait_for_spans(3);
    // The provider set its resource before the first export.
    assert_eq!(
        spans[0].resource.get("service.name").map(String::as_str),
        Some("shared-batch-test")
    );
    provider.shutdown().unwrap();
}

#[test]
fn fewer_than_a_batch_go_when_the_delay_has_passed() {
    let collector = Collector::start();
    let delay = Duration::from_millis(50);
    let provider = provider(collector.processor(delay, 512));
    end_spans(&provider, 2);
    collector.wait_for_spans(2);
    provider.shutdown().unwrap();
}

#[test]
fn a_flush_exports_everything_queued_in_batches_of_at_most_the_batch_size() {
    let collector = Collector::start();
    let provider = provider(collector.processor(NEVER, 1));
    end_spans(&provider, 5);
    provider.force_flush().unwrap();
    // Flushed: all there when the flush returns, one request each (none is empty).
    let spans = collector.receiver.spans();
    assert_eq!(spans.len(), 5, "{spans:#?}");
    assert_eq!(collector.requests(), 5);
    provider.shutdown().unwrap();
}

#[test]
fn shutdown_exports_what_is_queued_and_then_takes_nothing_more() {
    let collector = Collector::start();
    let provider = provider(collector.processor(NEVER, 512));
    end_spans(&provider, 3);
    provider.shutdown().unwrap();
    assert_eq!(collector.receiver.spans().len(), 3);

    // A processor shut down drops spans, and says so to a flush or a second shutdown.
    let processor = collector.processor(NEVER, 512);
    processor.shutdown_with_timeout(WAIT).unwrap();
    assert!(matches!(
        processor.force_flush(),
        Err(OTelSdkError::AlreadyShutdown)
    ));
    assert!(matches!(
        processor.shutdown_with_timeout(WAIT),
        Err(OTelSdkError::AlreadyShutdown)
    ));
    let (capture, kept) = provider_with_capture();
    capture.tracer("test").start("work").end();
    processor.on_end(kept.lock().unwrap().pop().unwrap());
    drop(processor);
    assert_eq!(collector.receiver.spans().len(), 3);
}

#[test]
fn a_processor_dropped_without_a_shutdown_still_exports_its_queue() {
    let collector = Collector::start();
    let processor = collector.processor(NEVER, 512);
    let (capture, kept) = provider_with_capture();
    capture.tracer("test").start("work").end();
    let span = kept.lock().unwrap().pop().unwrap();
    processor.on_end(span);
    drop(processor);
    collector.wait_for_spans(1);
}

/// A provider that keeps its ended spans, to hand them to a processor by hand.
fn provider_with_capture() -> (SdkTracerProvider, Arc<Mutex<Vec<SpanData>>>) {
    #[derive(Debug)]
    struct Keep(Arc<Mutex<Vec<SpanData>>>);
    impl SpanProcessor for Keep {
        fn on_start(&self, _: &mut Span, _: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }
    let kept = Arc::new(Mutex::new(Vec::new()));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Keep(kept.clone()))
        .build();
    (provider, kept)
}

#[test]
fn the_view_holds_the_very_spans_the_exporter_sends() {
    let collector = Collector::start();
    let resource = Resource::builder_empty().build();
    let view = Arc::new(Recorder::new(1 << 20, &resource));
    let processor = SharedBatchProcessor::new(
        collector.exporter(),
        health(1000),
        Some(view.clone()),
        settings(NEVER, 512),
    );
    let provider = provider(processor);
    let ids = end_spans(&provider, 1);
    // One span, held by the view and by the export queue, and by this lookup: no copy.
    let recorded = view.recorded_spans(ids[0]).unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(Arc::strong_count(&recorded[0]), 3);
    provider.force_flush().unwrap();
    assert_eq!(collector.receiver.spans().len(), 1);
    // Exported: the queue let go of it, the view keeps it.
    assert_eq!(Arc::strong_count(&recorded[0]), 2);
    provider.shutdown().unwrap();
}

#[test]
fn a_full_queue_turns_spans_away_and_counts_them_but_the_view_keeps_them() {
    let collector = Collector::start();
    let resource = Resource::builder_empty().build();
    let view = Arc::new(Recorder::new(1 << 20, &resource));
    let health = health(2);
    let processor = SharedBatchProcessor::new(
        collector.exporter(),
        health.clone(),
        Some(view.clone()),
        settings(NEVER, 512),
    );
    let provider = provider(processor);
    let ids = end_spans(&provider, 3);
    assert_eq!(health.lost(), 1);
    for id in &ids {
        assert_eq!(view.recorded_spans(*id).map(|spans| spans.len()), Some(1));
    }
    provider.force_flush().unwrap();
    assert_eq!(collector.receiver.spans().len(), 2);
    // Exported, they make room again.
    end_spans(&provider, 2);
    provider.force_flush().unwrap();
    assert_eq!(collector.receiver.spans().len(), 4);
    assert_eq!(health.lost(), 1);
    provider.shutdown().unwrap();
}

#[test]
fn spans_of_a_trace_with_a_parent_keep_their_parent() {
    let collector = Collector::start();
    let provider = provider(collector.processor(NEVER, 512));
    let tracer = provider.tracer("test");
    let parent = tracer.start("work");
    let cx = opentelemetry::Context::current_with_span(parent);
    tracer.start_with_context("work", &cx).end();
    cx.span().end();
    provider.force_flush().unwrap();
    let spans = collector.receiver.spans();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].parent_span_id, spans[1].span_id);
    provider.shutdown().unwrap();
}
