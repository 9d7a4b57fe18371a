//! The span processor in front of an OTLP exporter and the built-in view. The SDK hands
//! each of its processors a span of its own, so with the view and an exporter every
//! ended span was copied once (its attributes, its strings) and the copy dropped later
//! on another thread. Here a span is put behind an `Arc` once: the view records it and
//! the export queue holds the same one, and wasmlens's exporter encodes it from there (the
//! SDK's gRPC and HTTP/JSON exporters take spans of their own: a span the view still holds
//! is copied for them at export).
//!
//! The queue batches as the SDK's `BatchSpanProcessor` does, with the same settings
//! (`OTEL_BSP_*`, see [`BatchSettings`]): everything queued is exported, in batches of at
//! most `max_export_batch_size`, as soon as a batch's worth is waiting, when
//! `scheduled_delay` has passed since the last export, on a flush, and at shutdown, which
//! exports what is queued before it shuts the exporter down. The queue admits at most its
//! size ([`SignalHealth::admit`]), counting what it turns away; after the shutdown it takes
//! nothing. The view records every span, queued or not.

use crate::export_health::SignalHealth;
use crate::exporters::TraceExporter;
use crate::fan_out::SharesSpans;
use crate::recorder::Recorder;
use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as _, SpanProcessor};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a flush waits for its export, as the SDK's batch processor waits.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The SDK's defaults for the variables.
const DEFAULT_DELAY: Duration = Duration::from_millis(5_000);
const DEFAULT_BATCH: usize = 512;

/// When batches go, from `OTEL_BSP_SCHEDULE_DELAY` (ms) and
/// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: a value that is not a whole number is ignored, as the
/// SDK ignores it (the configuration has warned of it). A batch is at most the queue (its
/// size is [`crate::exporters::queue_size`], which [`SignalHealth`] enforces) and at least
/// one span; the delay is at least a millisecond (the SDK's worker spins at 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchSettings {
    pub scheduled_delay: Duration,
    pub max_export_batch_size: usize,
}

impl BatchSettings {
    pub fn from_env(queue: usize) -> Self {
        Self::from_lookup(|name| std::env::var(name).ok(), queue)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, queue: usize) -> Self {
        let batch = get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or(DEFAULT_BATCH);
        let delay = get("OTEL_BSP_SCHEDULE_DELAY")
            .and_then(|value| value.parse::<u64>().ok())
            .map_or(DEFAULT_DELAY, Duration::from_millis);
        BatchSettings {
            scheduled_delay: delay.max(Duration::from_millis(1)),
            max_export_batch_size: batch.min(queue).max(1),
        }
    }
}

/// See the module's documentation.
pub(crate) struct SharedBatchProcessor {
    shared: Arc<Shared>,
    view: Option<Arc<Recorder>>,
    health: Arc<SignalHealth>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the worker: a batch's worth is queued, or a flush or the shutdown is asked.
    wake: Condvar,
    settings: BatchSettings,
}

#[derive(Debug, Default)]
struct State {
    queue: Vec<Arc<SpanData>>,
    /// Flushes waiting for the next export's result.
    flushes: Vec<SyncSender<OTelSdkResult>>,
    /// The shutdown, once asked: it waits until the worker is done.
    shutdown: Option<SyncSender<OTelSdkResult>>,
    /// Set by the shutdown (or by dropping the processor): nothing more is queued.
    closed: bool,
    /// A resource the provider set, for the worker to hand its exporter.
    resource: Option<Resource>,
}

impl std::fmt::Debug for SharedBatchProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBatchProcessor")
            .field("settings", &self.shared.settings)
            .field("view", &self.view.is_some())
            .finish_non_exhaustive()
    }
}

impl SharedBatchProcessor {
    /// A processor exporting through `exporter`, reporting to `health`, with `view`
    /// recording the same spans if there is one.
    pub fn new(
        exporter: TraceExporter,
        health: Arc<SignalHealth>,
        view: Option<Arc<Recorder>>,
        settings: BatchSettings,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
            settings,
        });
        let worker = {
            let shared = shared.clone();
            let health = health.clone();
            std::thread::Builder::new()
                .name("wasmlens-span-export".to_owned())
                .spawn(move || export_until_shutdown(&shared, exporter, &health))
                .expect("the span export thread starts")
        };
        SharedBatchProcessor {
            shared,
            view,
            health,
            worker: Mutex::new(Some(worker)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    /// Asks the worker for one more export (a flush) or its last one (the shutdown),
    /// and waits `timeout` for its result.
    fn ask(&self, shutdown: bool, timeout: Duration) -> OTelSdkResult {
        let (answer, result) = sync_channel(1);
        {
            let mut state = self.state();
            if state.closed {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            match shutdown {
                true => {
                    state.closed = true;
                    state.shutdown = Some(answer);
                }
                false => state.flushes.push(answer),
            }
        }
        self.shared.wake.notify_one();
        match result.recv_timeout(timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
            Err(err) => Err(OTelSdkError::InternalFailure(err.to_string())),
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SpanProcessor for SharedBatchProcessor {
    fn on_start(&self, _: &mut Span, _: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.on_end_shared(Arc::new(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(false, FLUSH_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.ask(true, timeout)?;
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            let _ = worker.join();
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.state().resource = Some(resource.clone());
        self.shared.wake.notify_one();
    }
}

impl SharesSpans for SharedBatchProcessor {
    fn on_end_shared(&self, span: Arc<SpanData>) {
        if let Some(view) = &self.view {
            view.record_span(span.clone());
        }
        let mut state = self.state();
        // After the shutdown a span is dropped, as the SDK's processor drops it.
        if state.closed || !self.health.admit() {
            return;
        }
        state.queue.push(span);
        let batch_ready = state.queue.len() == self.shared.settings.max_export_batch_size;
        drop(state);
        if batch_ready {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for SharedBatchProcessor {
    /// Lets the worker export what is queued and end. (The provider shuts its processors
    /// down before it drops them: this is for one dropped without that.)
    fn drop(&mut self) {
        self.state().closed = true;
        self.shared.wake.notify_one();
    }
}

/// The worker: waits for a batch's worth, the delay, a flush or the shutdown, then
/// exports everything queued.
fn export_until_shutdown(shared: &Shared, mut exporter: TraceExporter, health: &SignalHealth) {
    // Exporting must not make telemetry of its own (the HTTP client's spans, say).
    let _suppressed = Context::enter_telemetry_suppressed_scope();
    let settings = shared.settings;
    let mut deadline = Instant::now() + settings.scheduled_delay;
    loop {
        let mut state = shared.state();
        let export_now = loop {
            let asked = state.closed || !state.flushes.is_empty();
            if asked || state.queue.len() >= settings.max_export_batch_size {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                if !state.queue.is_empty() {
                    break true;
                }
                // Nothing to export: the timer starts again, as the SDK's does.
                deadline = now + settings.scheduled_delay;
            }
            if state.resource.is_some() {
                break false;
            }
            state = shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        let resource = state.resource.take();
        let (spans, flushes, shutdown, closed) = match export_now {
            true => (
                std::mem::take(&mut state.queue),
                std::mem::take(&mut state.flushes),
                state.shutdown.take(),
                state.closed,
            ),
            false => Default::default(),
        };
        drop(state);
        if let Some(resource) = resource {
            exporter.set_resource(&resource);
        }
        if !export_now {
            continue;
        }

        let result = export(&exporter, health, spans, settings.max_export_batch_size);
        deadline = Instant::now() + settings.scheduled_delay;
        for flush in flushes {
            let _ = flush.send(same(&result));
        }
        if closed {
            // As the SDK's processor, the shutdown succeeds once the worker is done: a
            // failed export has been counted and said by the export's health.
            let _ = exporter.shutdown();
            if let Some(shutdown) = shutdown {
                let _ = shutdown.send(Ok(()));
            }
            return;
        }
    }
}

/// Exports `spans` in batches of at most `batch` and counts each; the last one's result.
fn export(
    exporter: &TraceExporter,
    health: &SignalHealth,
    mut spans: Vec<Arc<SpanData>>,
    batch: usize,
) -> OTelSdkResult {
    let mut result = Ok(());
    while !spans.is_empty() {
        let rest = spans.split_off(batch.min(spans.len()));
        let count = spans.len();
        result = futures_executor::block_on(exporter.export_shared(spans));
        health.exported(count, &result);
        spans = rest;
    }
    result
}

/// A result again, for each flush that waited for it (the SDK's error is not `Clone`).
fn same(result: &OTelSdkResult) -> OTelSdkResult {
    match result {
        Ok(()) => Ok(()),
        Err(OTelSdkError::AlreadyShutdown) => Err(OTelSdkError::AlreadyShutdown),
        Err(OTelSdkError::Timeout(after)) => Err(OTelSdkError::Timeout(*after)),
        Err(other) => Err(OTelSdkError::InternalFailure(other.to_string())),
    }
}

#[cfg(test)]
mod tests;
