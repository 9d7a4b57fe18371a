//! The SDK's processors, exporters and HTTP client, each wrapped to tell a signal's
//! [`SignalHealth`] what became of its items.

use super::{HttpCause, SignalHealth, lock, reason};
use bytes::Bytes;
use opentelemetry::InstrumentationScope;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use std::sync::Arc;
use std::time::Duration;

/// A batch processor whose queue admits at most its size: beyond it, items are counted
/// as lost before they reach the SDK's queue (which would drop them uncounted).
#[derive(Debug)]
pub(crate) struct Admitted<P> {
    pub inner: P,
    pub health: Arc<SignalHealth>,
}

impl<P: LogProcessor> LogProcessor for Admitted<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if self.health.admit() {
            self.inner.emit(record, scope);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// An exporter that reports how each export ended.
#[derive(Debug)]
pub(crate) struct Watched<E> {
    pub inner: E,
    pub health: Arc<SignalHealth>,
}

impl<E: LogExporter> LogExporter for Watched<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let count = batch.iter().count();
        let result = self.inner.export(batch).await;
        self.health.exported(count, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Watched<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.health.exported(0, &result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The HTTP exporters' client, keeping the whole reason a request failed (the exporter
/// keeps only "network error").
#[derive(Debug)]
pub(crate) struct ReportingClient {
    pub inner: reqwest::blocking::Client,
    pub cause: HttpCause,
}

#[async_trait::async_trait]
impl HttpClient for ReportingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let sent = self.inner.send_bytes(request).await;
        let cause = sent.as_ref().err().map(|err| reason(err.as_ref()));
        *lock(&self.cause) = cause;
        sent
    }
}
