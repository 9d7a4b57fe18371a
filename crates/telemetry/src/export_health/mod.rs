//! What becomes of telemetry that cannot be exported. A collector that is away for minutes
//! must cost the host neither memory nor requests, and the operator must learn what was
//! lost, in a few lines rather than one per batch:
//!
//! - each batch queue admits at most its size, whatever the collector does, and counts
//!   what it turns away (the SDK's queue would drop the same items, but count them only in
//!   a line at shutdown);
//! - every span and log record that does not reach the collector is counted in the
//!   semantic conventions' SDK metrics: `otel.sdk.processor.{span,log}.processed` with
//!   `error.type=queue_full`, and `otel.sdk.exporter.{span,log}.exported` with the export's
//!   `error.type`;
//! - one ERROR line when a signal's export starts failing, and when the reason changes,
//!   naming the endpoint and the whole cause (an untrusted certificate, a refused
//!   connection); a WARN line at most once a minute while items are lost, with how many;
//!   one INFO line when export resumes, with what was lost while it failed.

mod counters;
mod wrappers;

use crate::config::{Protocol, Signal};
use counters::Counters;
use opentelemetry_sdk::error::OTelSdkError;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub(crate) use wrappers::{Admitted, ReportingClient, Watched};

/// Why the last HTTP request of an exporter failed, as its HTTP client saw it (the
/// exporter's own error says only "network error"); shared by the client and the signal's
/// [`SignalHealth`].
pub(crate) type HttpCause = Arc<Mutex<Option<String>>>;

/// The `tracing` target of the lines.
pub const TARGET: &str = "wasmlens::export";

/// The least time between two WARN lines about one signal.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// One signal's export, seen from both ends of its batch queue.
pub(crate) struct SignalHealth {
    signal: Signal,
    /// Where the signal goes, as the startup line shows it.
    endpoint: String,
    /// Items in the queue or being exported, and how many the queue holds.
    pending: AtomicUsize,
    capacity: usize,
    /// Items that did not reach the collector: turned away by the queue or in a failed
    /// export. Metric points are never counted: each export carries the totals.
    lost: AtomicU64,
    http_cause: HttpCause,
    state: Mutex<State>,
    /// The conventions' counters, for spans and log records.
    counters: Option<Counters>,
}

/// What has been said about a signal's export.
#[derive(Debug, Default)]
struct State {
    /// Since when, and why, exports fail; `lost` when they started.
    failing: Option<Failing>,
    last_warned: Option<Instant>,
    /// `lost` when it was last reported.
    reported: u64,
}

#[derive(Debug)]
struct Failing {
    since: Instant,
    cause: String,
    lost_before: u64,
}

impl std::fmt::Debug for SignalHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalHealth")
            .field("signal", &self.signal)
            .field("endpoint", &self.endpoint)
            .field("pending", &self.pending)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl SignalHealth {
    /// A signal exported to `endpoint` through a batch queue of `capacity` items, counted
    /// on `meter` (none for metrics: a failed metric export loses nothing, as the next one
    /// carries the totals).
    pub fn new(
        signal: Signal,
        protocol: Protocol,
        endpoint: String,
        capacity: usize,
        http_cause: HttpCause,
        meter: Option<&opentelemetry::metrics::Meter>,
    ) -> Self {
        SignalHealth {
            signal,
            endpoint,
            pending: AtomicUsize::new(0),
            capacity,
            lost: AtomicU64::new(0),
            http_cause,
            state: Mutex::default(),
            counters: meter.map(|meter| Counters::new(signal, protocol, meter)),
        }
    }

    /// How many items did not reach the collector, since the start.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Whether this is `signal`'s, and its last export failed.
    pub fn is_failing(&self, signal: Signal) -> bool {
        self.signal == signal && lock(&self.state).failing.is_some()
    }

    /// Whether the queue has room for one more item; if not, the item is counted as lost.
    /// On the request path: a few atomic operations, no lock.
    pub(crate) fn admit(&self) -> bool {
        if self.pending.fetch_add(1, Ordering::Relaxed) < self.capacity {
            return true;
        }
        self.pending.fetch_sub(1, Ordering::Relaxed);
        self.lost.fetch_add(1, Ordering::Relaxed);
        if let Some(counters) = &self.counters {
            counters.queue_full.add(1);
        }
        false
    }

    /// Records how an export of `count` items ended, and says what needs saying.
    pub(crate) fn exported(&self, count: usize, result: &opentelemetry_sdk::error::OTelSdkResult) {
        self.exported_at(count, result, Instant::now());
    }

    fn exported_at(
        &self,
        count: usize,
        result: &opentelemetry_sdk::error::OTelSdkResult,
        now: Instant,
    ) {
        self.pending.fetch_sub(count, Ordering::Relaxed);
        let lost_before = self.lost.load(Ordering::Relaxed);
        if result.is_err() {
            self.lost.fetch_add(count as u64, Ordering::Relaxed);
        }
        let cause = result.as_ref().err().map(|err| {
            lock(&self.http_cause).take().unwrap_or_else(|| match err {
                OTelSdkError::InternalFailure(reason) => first_line(reason),
                other => other.to_string(),
            })
        });
        if let Some(counters) = &self.counters {
            let timed_out = matches!(result, Err(OTelSdkError::Timeout(_)))
                || cause.as_deref().is_some_and(is_timeout);
            counters.exported(count as u64, result.is_ok(), timed_out);
        }
        self.report(cause, lost_before, now);
    }

    /// The lines about an export that just ended, failed with `cause` or not, at `now`.
    fn report(&self, cause: Option<String>, lost_before: u64, now: Instant) {
        let mut state = lock(&self.state);
        let lost = self.lost.load(Ordering::Relaxed);
        let (signal, endpoint) = (self.signal.name(), &self.endpoint);
        match (cause, state.failing.take()) {
            (Some(cause), failing) => {
                let said = failing.as_ref().is_some_and(|f| f.cause == cause);
                if !said {
                    tracing::error!(target: TARGET, "cannot export {signal} to {endpoint}: {cause}");
                    state.last_warned = Some(now);
                    state.reported = lost;
                }
                state.failing = Some(Failing {
                    since: failing.as_ref().map_or(now, |f| f.since),
                    lost_before: failing.map_or(lost_before, |f| f.lost_before),
                    cause,
                });
            }
            (None, Some(failing)) => {
                let away = whole_seconds(now - failing.since);
                let lost_meanwhile = lost - failing.lost_before;
                let meanwhile = match self.signal {
                    // Nothing is lost: this export carries the totals.
                    Signal::Metrics => String::new(),
                    _ => format!("; {lost_meanwhile} {} lost meanwhile", self.signal.items()),
                };
                tracing::info!(
                    target: TARGET,
                    "exporting {signal} to {endpoint} again after {away}{meanwhile}"
                );
                state.last_warned = Some(now);
                state.reported = lost;
            }
            (None, None) => {}
        }
        let due = state
            .last_warned
            .is_none_or(|last| now.duration_since(last) >= WARN_EVERY);
        if lost > state.reported && due {
            let items = self.signal.items();
            let new = lost - state.reported;
            let why = match &state.failing {
                Some(failing) => format!(
                    "export to {endpoint} has failed for {}: {}",
                    whole_seconds(now - failing.since),
                    failing.cause
                ),
                None => format!(
                    "the queue ({} {items}) was full; see {}",
                    self.capacity,
                    self.signal.queue_size_var()
                ),
            };
            tracing::warn!(target: TARGET, "{new} {items} lost ({lost} in all): {why}");
            state.last_warned = Some(now);
            state.reported = lost;
        }
    }
}

impl Signal {
    /// What a signal's exports carry, for lines about them.
    fn items(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metric points",
            Signal::Logs => "log records",
        }
    }

    /// The variable that sets the size of a signal's batch queue.
    pub(crate) fn queue_size_var(self) -> &'static str {
        match self {
            Signal::Logs => "OTEL_BLRP_MAX_QUEUE_SIZE",
            _ => "OTEL_BSP_MAX_QUEUE_SIZE",
        }
    }
}

/// Whether an event is the SDK's own line about a failed export, said better here: once
/// per reason rather than once per batch, with the endpoint and the whole cause.
pub(crate) fn is_sdk_export_error(event: &tracing::Metadata<'_>) -> bool {
    event.target().starts_with("opentelemetry")
        && matches!(
            event.name(),
            "BatchSpanProcessor.ExportError"
                | "PeriodicReader.ExportError"
                | "BatchLogProcessor.ExportError"
        )
}

/// What was lost in all, for the line at shutdown: `None` if nothing.
pub(crate) fn lost_summary(healths: &[std::sync::Arc<SignalHealth>]) -> Option<String> {
    let parts: Vec<String> = healths
        .iter()
        .filter(|health| health.lost() > 0)
        .map(|health| format!("{} {}", health.lost(), health.signal.items()))
        .collect();
    (!parts.is_empty()).then(|| format!("{} were not exported", parts.join(" and ")))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn whole_seconds(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(duration.as_secs()))
}

/// An error's first line, cut to a length a log line can take (an HTTP error carries the
/// response body).
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Whether a failed export's cause says it ran out of time: the HTTP client's own timeout,
/// or gRPC's deadline.
fn is_timeout(cause: &str) -> bool {
    let cause = cause.to_ascii_lowercase();
    ["timed out", "timeout expired", "deadline"]
        .iter()
        .any(|said| cause.contains(said))
}

/// An error and its sources, the innermost last, each said once.
fn reason(err: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = inner.source();
    }
    reason
}

#[cfg(test)]
mod tests;
