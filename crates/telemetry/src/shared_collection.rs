//! One collection of the metrics for the built-in view and an OTLP exporter. With a
//! reader each, the SDK aggregates every measurement twice, and hashes its attributes
//! twice where they are not bound. Here one periodic reader collects at the view's pace
//! (every [`crate::recorder::INTERVAL`]); the view takes every collection and the
//! exporter every collection that is due by `OTEL_METRIC_EXPORT_INTERVAL`, and every
//! collection once a flush or the shutdown has asked for one ([`FinalCollection`]).
//!
//! Only with cumulative temporality, the exporter's default: reading a delta aggregation
//! resets it, so the view's reads would take what the exporter has to send. And only
//! where the exporter's interval is at least the view's; a shorter one keeps a reader of
//! its own ([`shares_collection`]).

use crate::recorder::{INTERVAL, RecordingMetricExporter};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the SDK's periodic reader waits between exports where
/// `OTEL_METRIC_EXPORT_INTERVAL` does not say (the configuration has warned of a value
/// that is not a whole number of milliseconds, which the SDK ignores too).
pub(crate) fn export_interval() -> Duration {
    std::env::var(opentelemetry_sdk::metrics::OTEL_METRIC_EXPORT_INTERVAL)
        .ok()
        .and_then(|value| value.parse().ok())
        .map_or(
            opentelemetry_sdk::metrics::OTEL_METRIC_EXPORT_INTERVAL_DEFAULT,
            Duration::from_millis,
        )
}

/// Whether an exporter with this temporality, sent every `interval`, can share the
/// view's collection.
pub(crate) fn shares_collection(temporality: Temporality, interval: Duration) -> bool {
    temporality == Temporality::Cumulative && interval >= INTERVAL
}

/// Asks for collections to go to the exporter whatever its interval says: while a flush
/// runs (flushes may overlap, and one may outlive its caller's wait), and from the
/// shutdown on, so that what the provider collects then is exported.
#[derive(Clone, Debug, Default)]
pub(crate) struct FinalCollection(Arc<AtomicUsize>);

/// Counts as a flush under way until dropped.
pub(crate) struct Flushing(FinalCollection);

impl Drop for Flushing {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl FinalCollection {
    /// For the length of a flush: hold what it returns until the flush is over.
    pub(crate) fn flushing(&self) -> Flushing {
        self.0.fetch_add(1, Ordering::AcqRel);
        Flushing(self.clone())
    }

    /// For good: set before the provider's shutdown, never undone (a count no
    /// `Flushing` gives back).
    pub(crate) fn shutting_down(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

/// When the exporter's next collection is due.
#[derive(Debug)]
struct Schedule {
    interval: Duration,
    next: Instant,
}

impl Schedule {
    fn new(interval: Duration, now: Instant) -> Self {
        Schedule {
            interval,
            next: now + interval,
        }
    }

    /// Whether a collection made at `now` is the exporter's. The collections come a
    /// view's interval apart, give or take, so one within half of it before the time is
    /// taken: an exporter interval of a minute is sixty collections, not sixty-one.
    fn due(&mut self, now: Instant) -> bool {
        if now + INTERVAL / 2 < self.next {
            return false;
        }
        self.next += self.interval;
        if self.next <= now {
            // Collections stopped for longer than the interval (a slow export): count
            // again from this one.
            self.next = now + self.interval;
        }
        true
    }
}

/// The exporter of the one periodic reader: records every collection in the view and
/// passes on the exporter's.
pub(crate) struct ViewAndExporter<E> {
    view: RecordingMetricExporter,
    exporter: E,
    schedule: Mutex<Schedule>,
    final_collection: FinalCollection,
}

impl<E: PushMetricExporter> ViewAndExporter<E> {
    pub(crate) fn new(
        view: RecordingMetricExporter,
        exporter: E,
        interval: Duration,
        final_collection: FinalCollection,
    ) -> Self {
        ViewAndExporter {
            view,
            exporter,
            schedule: Mutex::new(Schedule::new(interval, Instant::now())),
            final_collection,
        }
    }

    fn exporter_due(&self) -> bool {
        // Asked at every collection, a flush's too: one that falls within half a view
        // interval of the due time is then the periodic export as well.
        let due = self
            .schedule
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .due(Instant::now());
        due || self.final_collection.is_set()
    }
}

impl<E: PushMetricExporter> PushMetricExporter for ViewAndExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        // The view's export only records, and cannot fail.
        let _ = self.view.export(metrics).await;
        if self.exporter_due() {
            self.exporter.export(metrics).await
        } else {
            Ok(())
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collections a view's interval apart, the first one `offset` after the start.
    fn exports(interval: Duration, offset: Duration, collections: u32) -> Vec<u32> {
        let start = Instant::now();
        let mut schedule = Schedule::new(interval, start);
        (1..=collections)
            .filter(|n| schedule.due(start + offset + INTERVAL * (n - 1)))
            .collect()
    }

    #[test]
    fn the_exporter_takes_one_collection_an_interval() {
        let minute = Duration::from_secs(60);
        // Collections at 1 s, 2 s, ...: the 60th, 120th and 180th are the exporter's.
        assert_eq!(exports(minute, INTERVAL, 180), [60, 120, 180]);
        // A little early or late, as a reader's thread wakes: the same ones.
        let early = INTERVAL - Duration::from_millis(3);
        assert_eq!(exports(minute, early, 181), [60, 120, 180]);
        let late = INTERVAL + Duration::from_millis(300);
        assert_eq!(exports(minute, late, 181), [60, 120, 180]);
        // Its own interval equal to the view's: every collection.
        assert_eq!(exports(INTERVAL, INTERVAL, 5), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_late_collection_restarts_the_count() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut schedule = Schedule::new(interval, start);
        assert!(!schedule.due(start + Duration::from_secs(5)));
        // A stall of 30 s: exported once, and the next one ten seconds later.
        assert!(schedule.due(start + Duration::from_secs(35)));
        assert!(!schedule.due(start + Duration::from_secs(36)));
        assert!(schedule.due(start + Duration::from_secs(45)));
    }

    #[test]
    fn overlapping_flushes_and_the_shutdown_each_keep_the_final_collection() {
        let collection = FinalCollection::default();
        assert!(!collection.is_set());
        let (first, second) = (collection.flushing(), collection.flushing());
        drop(first);
        assert!(collection.is_set(), "the second flush is not over");
        drop(second);
        assert!(!collection.is_set());
        // A flush that outlives its caller's wait ends after the shutdown began.
        let late = collection.flushing();
        collection.shutting_down();
        drop(late);
        assert!(collection.is_set(), "for good");
    }

    #[test]
    fn only_cumulative_exporters_at_the_views_pace_or_slower_share() {
        assert!(shares_collection(Temporality::Cumulative, INTERVAL));
        assert!(shares_collection(
            Temporality::Cumulative,
            Duration::from_secs(60)
        ));
        assert!(!shares_collection(
            Temporality::Delta,
            Duration::from_secs(60)
        ));
        assert!(!shares_collection(
            Temporality::LowMemory,
            Duration::from_secs(60)
        ));
        assert!(!shares_collection(
            Temporality::Cumulative,
            Duration::from_millis(500)
        ));
    }
}
