//! The semantic conventions' SDK self-observability counters for one signal, bound once.

use crate::config::{Protocol, Signal};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundCounter, Meter};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, OTEL_COMPONENT_NAME, OTEL_COMPONENT_TYPE,
};
use opentelemetry_semantic_conventions::metric::{
    OTEL_SDK_EXPORTER_LOG_EXPORTED, OTEL_SDK_EXPORTER_SPAN_EXPORTED,
    OTEL_SDK_PROCESSOR_LOG_PROCESSED, OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
};

/// `error.type` of an export that ran out of time.
pub(crate) const TIMEOUT: &str = "timeout";
/// `error.type` of an export that failed otherwise (refused, unreachable, rejected).
pub(crate) const FAILED: &str = "export_failed";
/// `error.type` of an item the full batch queue turned away, as the conventions say.
pub(crate) const QUEUE_FULL: &str = "queue_full";

pub(super) struct Counters {
    /// Items the batch queue turned away.
    pub queue_full: BoundCounter<u64>,
    /// Items handed to the exporter.
    processed: BoundCounter<u64>,
    exported: BoundCounter<u64>,
    timed_out: BoundCounter<u64>,
    failed: BoundCounter<u64>,
}

impl Counters {
    pub fn new(signal: Signal, protocol: Protocol, meter: &Meter) -> Self {
        let exporter_type = exporter_type(signal, protocol);
        let (processed_name, exported_name, unit, processor_type) = match signal {
            Signal::Logs => (
                OTEL_SDK_PROCESSOR_LOG_PROCESSED,
                OTEL_SDK_EXPORTER_LOG_EXPORTED,
                "{log_record}",
                "batching_log_processor",
            ),
            Signal::Traces | Signal::Metrics => (
                OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
                OTEL_SDK_EXPORTER_SPAN_EXPORTED,
                "{span}",
                "batching_span_processor",
            ),
        };
        let processed = meter.u64_counter(processed_name).with_unit(unit).build();
        let exported = meter.u64_counter(exported_name).with_unit(unit).build();
        // One processor and one exporter per signal: instance 0.
        let processor = [
            KeyValue::new(OTEL_COMPONENT_TYPE, processor_type),
            KeyValue::new(OTEL_COMPONENT_NAME, format!("{processor_type}/0")),
        ];
        let exporter = [
            KeyValue::new(OTEL_COMPONENT_TYPE, exporter_type),
            KeyValue::new(OTEL_COMPONENT_NAME, format!("{exporter_type}/0")),
        ];
        let with_error = |attributes: &[KeyValue; 2], error: &'static str| {
            let mut attributes = attributes.to_vec();
            attributes.push(KeyValue::new(ERROR_TYPE, error));
            attributes
        };
        Counters {
            queue_full: processed.bind(&with_error(&processor, QUEUE_FULL)),
            processed: processed.bind(&processor),
            exported: exported.bind(&exporter),
            timed_out: exported.bind(&with_error(&exporter, TIMEOUT)),
            failed: exported.bind(&with_error(&exporter, FAILED)),
        }
    }

    /// An export of `count` items ended: `ok`, or failed, `timed_out` or otherwise.
    pub fn exported(&self, count: u64, ok: bool, timed_out: bool) {
        if count == 0 {
            return;
        }
        self.processed.add(count);
        match (ok, timed_out) {
            (true, _) => self.exported.add(count),
            (false, true) => self.timed_out.add(count),
            (false, false) => self.failed.add(count),
        }
    }
}

/// The conventions' `otel.component.type` of a signal's OTLP exporter.
pub(crate) fn exporter_type(signal: Signal, protocol: Protocol) -> &'static str {
    match (signal, protocol) {
        (Signal::Traces, Protocol::Grpc) => "otlp_grpc_span_exporter",
        (Signal::Traces, Protocol::HttpProtobuf) => "otlp_http_span_exporter",
        (Signal::Traces, Protocol::HttpJson) => "otlp_http_json_span_exporter",
        (Signal::Logs, Protocol::Grpc) => "otlp_grpc_log_exporter",
        (Signal::Logs, Protocol::HttpProtobuf) => "otlp_http_log_exporter",
        (Signal::Logs, Protocol::HttpJson) => "otlp_http_json_log_exporter",
        (Signal::Metrics, Protocol::Grpc) => "otlp_grpc_metric_exporter",
        (Signal::Metrics, Protocol::HttpProtobuf) => "otlp_http_metric_exporter",
        (Signal::Metrics, Protocol::HttpJson) => "otlp_http_json_metric_exporter",
    }
}
