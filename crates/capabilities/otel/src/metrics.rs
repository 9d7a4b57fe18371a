//! wasi:otel's metrics: what a guest exports is recorded on host instruments of the same
//! name, unit and scope, with `component_id`, so that it goes out through the host's
//! metric pipeline (OTLP, Prometheus) with the host's resource. Sums and gauges come
//! through: a delta sum is added as it is, a cumulative one as its change since the
//! instance last exported it (an instance lives for one invocation, so its first export
//! is all new); values are recorded as doubles. Histograms (explicit and exponential)
//! are replayed onto a host histogram with the guest's buckets (see [`crate::histogram`]);
//! a point the host cannot take (its buckets do not add up, it changed its buckets, it
//! has more values than an invocation may replay) is dropped and counted, with one
//! warning per component.

use crate::bindings::wasi::otel::{metrics as wit, types};
use crate::histogram::{Invalid, Layout, Summary};
use crate::{EXPORT, OtelCtxView, OtelGrant, OtelState, convert};
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter};
use opentelemetry::{KeyValue, StringValue, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use wasmlens_telemetry::names::attr;

/// A component's instruments for its guest's metrics, by scope and name.
#[derive(Default)]
pub struct GuestMetrics {
    instruments: Mutex<HashMap<(String, String), Instrument>>,
    warned_histograms: AtomicBool,
}

#[derive(Clone)]
enum Instrument {
    Counter(Counter<f64>),
    UpDownCounter(UpDownCounter<f64>),
    Gauge(Gauge<f64>),
    /// With the buckets it was made with.
    Histogram(Histogram<f64>, HostBuckets),
}

/// The buckets of a guest's histogram on the host: its explicit bounds, or the edges of
/// its exponential buckets the first time it was exported (later values beyond them fall
/// in the outermost buckets: count, sum, minimum and maximum stay exact).
#[derive(Clone)]
enum HostBuckets {
    Explicit(Arc<[f64]>),
    Exponential,
}

impl HostBuckets {
    /// Whether `layout`'s points keep their buckets on this histogram.
    fn take(&self, layout: &Layout) -> bool {
        match (self, layout) {
            (HostBuckets::Explicit(host), Layout::Explicit(own)) => **host == **own,
            (HostBuckets::Exponential, Layout::Exponential { .. }) => true,
            _ => false,
        }
    }
}

/// What kind of instrument a metric's data needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    UpDownCounter,
    Gauge,
    Histogram,
}

/// What an instance exported last of each cumulative sum and histogram, to add only
/// the change.
#[derive(Default)]
pub struct LastCumulative {
    sums: HashMap<String, f64>,
    histograms: HashMap<String, Summary>,
}

/// One data point to record: its attributes, its value, and whether the value is a
/// cumulative sum's.
struct Point {
    attributes: Vec<types::KeyValue>,
    value: f64,
    cumulative: bool,
}

fn number(value: wit::MetricNumber) -> f64 {
    match value {
        wit::MetricNumber::F64(x) => x,
        wit::MetricNumber::S64(x) => x as f64,
        wit::MetricNumber::U64(x) => x as f64,
    }
}

/// What to add to a sum's instrument (nothing for a gauge's): a delta as it is; for a
/// cumulative value, its change since `last`, except that a counter that went down was
/// reset, and counts from zero again.
fn change(kind: Kind, cumulative: bool, last: Option<f64>, value: f64) -> f64 {
    match (cumulative, last) {
        (false, _) | (true, None) => value,
        (true, Some(last)) if kind == Kind::Counter && value < last => value,
        (true, Some(last)) => value - last,
    }
}

/// One histogram point: its attributes, and what it holds (or why the host cannot take
/// it).
struct HistogramPoint {
    attributes: Vec<types::KeyValue>,
    summary: Result<Summary, Invalid>,
}

/// A metric's data, as the host records it.
enum Data {
    /// A sum's or gauge's: the instrument it needs and its points.
    Numbers(Kind, Vec<Point>),
    Histograms {
        points: Vec<HistogramPoint>,
        cumulative: bool,
    },
}

/// The data of a metric, as the host records it.
fn data(data: wit::MetricData) -> Data {
    use wit::MetricData as D;
    let sum = |sum: wit::Sum| {
        let kind = if sum.is_monotonic {
            Kind::Counter
        } else {
            Kind::UpDownCounter
        };
        let cumulative = sum.temporality == wit::Temporality::Cumulative;
        let points = sum.data_points.into_iter().map(|p| Point {
            attributes: p.attributes,
            value: number(p.value),
            cumulative,
        });
        (kind, points.collect())
    };
    let gauge = |gauge: wit::Gauge| {
        let points = gauge.data_points.into_iter().map(|p| Point {
            attributes: p.attributes,
            value: number(p.value),
            cumulative: false,
        });
        (Kind::Gauge, points.collect())
    };
    let cumulative = |temporality| temporality == wit::Temporality::Cumulative;
    match data {
        D::F64Sum(s) | D::U64Sum(s) | D::S64Sum(s) => {
            let (kind, points) = sum(s);
            Data::Numbers(kind, points)
        }
        D::F64Gauge(g) | D::U64Gauge(g) | D::S64Gauge(g) => {
            let (kind, points) = gauge(g);
            Data::Numbers(kind, points)
        }
        D::F64Histogram(h) | D::U64Histogram(h) | D::S64Histogram(h) => {
            histograms(cumulative(h.temporality), h.data_points, |p| {
                (Summary::explicit(&p), p.attributes)
            })
        }
        D::F64ExponentialHistogram(h)
        | D::U64ExponentialHistogram(h)
        | D::S64ExponentialHistogram(h) => {
            histograms(cumulative(h.temporality), h.data_points, |p| {
                (Summary::exponential(&p), p.attributes)
            })
        }
    }
}

/// A histogram's points, each as `read` makes it: its summary and its attributes.
fn histograms<P>(
    cumulative: bool,
    points: Vec<P>,
    read: impl Fn(P) -> (Result<Summary, Invalid>, Vec<types::KeyValue>),
) -> Data {
    let points = points.into_iter().map(|point| {
        let (summary, attributes) = read(point);
        HistogramPoint {
            attributes,
            summary,
        }
    });
    Data::Histograms {
        points: points.collect(),
        cumulative,
    }
}

impl GuestMetrics {
    /// The instrument for `metric` of `scope`, made the first time (a histogram with the
    /// buckets of `histogram`, its first point); `None` once the component has
    /// [`crate::MAX_METRICS`] and this is another.
    fn instrument(
        &self,
        meter: &Meter,
        scope: &str,
        metric: &Named,
        kind: Kind,
        histogram: Option<&Summary>,
    ) -> Option<Instrument> {
        let mut instruments = self
            .instruments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (scope.to_owned(), metric.name.clone());
        if let Some(known) = instruments.get(&key).filter(|i| i.kind() == kind) {
            return Some(known.clone());
        }
        if instruments.len() >= crate::MAX_METRICS {
            return None;
        }
        let name = convert::text(metric.name.clone());
        let (unit, description) = (metric.unit.clone(), metric.description.clone());
        let instrument = match kind {
            Kind::Counter => Instrument::Counter(
                meter
                    .f64_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .build(),
            ),
            Kind::UpDownCounter => Instrument::UpDownCounter(
                meter
                    .f64_up_down_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .build(),
            ),
            Kind::Gauge => Instrument::Gauge(
                meter
                    .f64_gauge(name)
                    .with_unit(unit)
                    .with_description(description)
                    .build(),
            ),
            Kind::Histogram => {
                let first = histogram?;
                let bounds = first.host_bounds();
                let buckets = match first.layout {
                    Layout::Explicit(_) => HostBuckets::Explicit(bounds.clone().into()),
                    Layout::Exponential { .. } => HostBuckets::Exponential,
                };
                let histogram = meter
                    .f64_histogram(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_boundaries(bounds)
                    .build();
                Instrument::Histogram(histogram, buckets)
            }
        };
        instruments.insert(key, instrument.clone());
        Some(instrument)
    }
}

impl Instrument {
    fn kind(&self) -> Kind {
        match self {
            Instrument::Counter(_) => Kind::Counter,
            Instrument::UpDownCounter(_) => Kind::UpDownCounter,
            Instrument::Gauge(_) => Kind::Gauge,
            Instrument::Histogram(..) => Kind::Histogram,
        }
    }
}

/// A metric's name, unit and description.
struct Named {
    name: String,
    unit: String,
    description: String,
}

/// The identity of one series of a metric: its scope, name and attributes.
fn series_key(scope: &str, name: &str, attributes: &[KeyValue]) -> String {
    let mut key = format!("{scope}\u{0}{name}");
    for kv in attributes {
        key.push('\u{0}');
        key.push_str(kv.key.as_str());
        key.push('=');
        key.push_str(&kv.value.as_str());
    }
    key
}

impl wit::Host for OtelCtxView<'_> {
    fn export(&mut self, metrics: wit::ResourceMetrics) -> Result<(), wit::Error> {
        let state = &mut *self.0;
        let Some(grant) = state.grant.clone() else {
            return Ok(());
        };
        grant.calls.count(EXPORT, true);
        for scope_metrics in metrics.scope_metrics {
            let scope = &scope_metrics.scope;
            let Some(handles) = grant.scope(scope) else {
                let points = scope_metrics
                    .metrics
                    .into_iter()
                    .map(|m| point_count(&m.data));
                grant.dropped_points.add(points.sum());
                continue;
            };
            for metric in scope_metrics.metrics {
                record(&grant, state, &handles.meter, &scope.name, metric);
            }
        }
        Ok(())
    }
}

fn point_count(data: &wit::MetricData) -> u64 {
    use wit::MetricData as D;
    let points = match data {
        D::F64Sum(s) | D::U64Sum(s) | D::S64Sum(s) => s.data_points.len(),
        D::F64Gauge(g) | D::U64Gauge(g) | D::S64Gauge(g) => g.data_points.len(),
        D::F64Histogram(h) | D::U64Histogram(h) | D::S64Histogram(h) => h.data_points.len(),
        D::F64ExponentialHistogram(h)
        | D::U64ExponentialHistogram(h)
        | D::S64ExponentialHistogram(h) => h.data_points.len(),
    };
    points as u64
}

/// Records one metric's points on its host instrument, within the invocation's cap.
fn record(
    grant: &OtelGrant,
    state: &mut OtelState,
    meter: &Meter,
    scope: &str,
    metric: wit::Metric,
) {
    let wit::Metric {
        name,
        description,
        unit,
        data: metric_data,
    } = metric;
    let metric = Named {
        name,
        unit,
        description,
    };
    let target = Target {
        grant,
        meter,
        scope,
        metric: &metric,
    };
    match data(metric_data) {
        Data::Numbers(kind, points) => record_numbers(&target, state, kind, points),
        Data::Histograms { points, cumulative } => {
            for point in points {
                record_histogram(&target, state, point, cumulative);
            }
        }
    }
}

/// Where a metric's points go: the component's grant, the scope's meter, the metric.
struct Target<'a> {
    grant: &'a OtelGrant,
    meter: &'a Meter,
    scope: &'a str,
    metric: &'a Named,
}

impl Target<'_> {
    /// A point's attributes as the host records them: the guest's and `component_id`.
    fn attributes(&self, guest: Vec<types::KeyValue>) -> Vec<KeyValue> {
        let (mut attributes, _) = convert::attributes(guest);
        let id = Value::from(StringValue::from(self.grant.component_id.clone()));
        attributes.push(KeyValue::new(attr::COMPONENT_ID, id));
        attributes
    }

    fn series_key(&self, attributes: &[KeyValue]) -> String {
        series_key(self.scope, &self.metric.name, attributes)
    }

    /// Drops a point the host cannot take, saying why once per component.
    fn refuse(&self, why: &str) {
        self.grant.dropped_points.add(1);
        if !(self.grant.metrics.warned_histograms).swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "component {:?} exported histogram {:?} through wasi:otel with {why}: the point is dropped (counted in guest.telemetry.dropped; this is said once)",
                self.grant.component_id,
                self.metric.name
            );
        }
    }
}

/// Records a sum's or a gauge's points.
fn record_numbers(target: &Target<'_>, state: &mut OtelState, kind: Kind, points: Vec<Point>) {
    let grant = target.grant;
    let room = crate::MAX_RECORDS.saturating_sub(state.points) as usize;
    if points.len() > room {
        grant.dropped_points.add((points.len() - room) as u64);
    }
    if room == 0 || points.is_empty() {
        return;
    }
    let instrument =
        (grant.metrics).instrument(target.meter, target.scope, target.metric, kind, None);
    let Some(instrument) = instrument else {
        grant.dropped_points.add(points.len().min(room) as u64);
        return;
    };
    for point in points.into_iter().take(room) {
        state.points += 1;
        let attributes = target.attributes(point.attributes);
        let last = point.cumulative.then(|| {
            let key = target.series_key(&attributes);
            state.last_cumulative.sums.insert(key, point.value)
        });
        let change = change(kind, point.cumulative, last.flatten(), point.value);
        match &instrument {
            Instrument::Counter(counter) if change >= 0.0 => counter.add(change, &attributes),
            Instrument::Counter(_) => grant.dropped_points.add(1),
            Instrument::UpDownCounter(counter) => counter.add(change, &attributes),
            Instrument::Gauge(gauge) => gauge.record(point.value, &attributes),
            Instrument::Histogram(..) => grant.dropped_points.add(1),
        }
    }
}

/// Replays a histogram point (a cumulative one's change since the instance last
/// exported it) onto its host histogram.
fn record_histogram(
    target: &Target<'_>,
    state: &mut OtelState,
    point: HistogramPoint,
    cumulative: bool,
) {
    if state.points >= crate::MAX_RECORDS {
        target.grant.dropped_points.add(1);
        return;
    }
    let summary = match point.summary {
        Ok(summary) => summary,
        Err(why) => return target.refuse(why),
    };
    let attributes = target.attributes(point.attributes);
    let change = match cumulative {
        true => {
            let key = target.series_key(&attributes);
            match state
                .last_cumulative
                .histograms
                .insert(key, summary.clone())
            {
                Some(last) => summary.since(&last),
                None => summary,
            }
        }
        false => summary,
    };
    if change.count > crate::MAX_HISTOGRAM_VALUES - state.histogram_values {
        return target.refuse("more values than an invocation may replay");
    }
    let values = match change.replay() {
        Ok(values) => values,
        Err(why) => return target.refuse(why),
    };
    // Nothing new (a cumulative point that did not move): nothing to record, and no
    // instrument made with an empty point's buckets.
    if change.count == 0 {
        return;
    }
    let instrument = (target.grant.metrics).instrument(
        target.meter,
        target.scope,
        target.metric,
        Kind::Histogram,
        Some(&change),
    );
    let Some(Instrument::Histogram(histogram, buckets)) = instrument else {
        target.grant.dropped_points.add(1);
        return;
    };
    if !buckets.take(&change.layout) {
        return target.refuse("other buckets than it first had");
    }
    state.points += 1;
    state.histogram_values += change.count;
    let bound = histogram.bind(&attributes);
    for (value, times) in values {
        for _ in 0..times {
            bound.record(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_sums_add_their_change_and_counters_that_went_down_were_reset() {
        assert_eq!(
            change(Kind::Counter, false, None, 3.0),
            3.0,
            "a delta as it is"
        );
        assert_eq!(
            change(Kind::Counter, true, None, 5.0),
            5.0,
            "a first export is all new"
        );
        assert_eq!(change(Kind::Counter, true, Some(5.0), 8.0), 3.0);
        assert_eq!(change(Kind::Counter, true, Some(5.0), 2.0), 2.0, "reset");
        assert_eq!(
            change(Kind::UpDownCounter, true, Some(5.0), 3.0),
            -2.0,
            "went down"
        );
        assert_eq!(change(Kind::UpDownCounter, true, Some(5.0), 9.0), 4.0);
    }
}
