//! The recorder's place in the pipeline: a span processor where no OTLP exporter shares
//! its spans (see `crate::shared_batch`), a log processor beside the exporters', seeing
//! the same records, and a metric exporter on a reader that collects every second, its own
//! or one it shares with the OTLP exporter (see `crate::shared_collection`).

use super::Recorder;
use super::view::LogView;
use crate::fan_out::SharesSpans;
use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct RecordingSpanProcessor(pub Arc<Recorder>);

impl std::fmt::Debug for RecordingSpanProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingSpanProcessor")
    }
}

impl SpanProcessor for RecordingSpanProcessor {
    fn on_start(&self, _: &mut Span, _: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.record_span(Arc::new(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl SharesSpans for RecordingSpanProcessor {
    fn on_end_shared(&self, span: Arc<SpanData>) {
        self.0.record_span(span);
    }
}

#[derive(Clone)]
pub(crate) struct RecordingLogProcessor(pub Arc<Recorder>);

impl std::fmt::Debug for RecordingLogProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingLogProcessor")
    }
}

impl LogProcessor for RecordingLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.0.logs().add(LogView::new(record, scope));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    /// Nothing to release (without it the SDK warns at every shutdown that the default
    /// was used).
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Takes what the view's periodic reader collects.
pub(crate) struct RecordingMetricExporter(pub Arc<Recorder>);

impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for RecordingMetricExporter {
    async fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> OTelSdkResult {
        self.0.metrics().ingest(metrics);
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }

    /// Cumulative: an up-down counter then arrives as its level, and the store works out
    /// what each interval added to the rest.
    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        opentelemetry_sdk::metrics::Temporality::Cumulative
    }
}
