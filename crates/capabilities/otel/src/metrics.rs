//! wasi:otel's metrics: what a guest exports is recorded on host instruments of the same
//! name, unit and scope, with `component_id`, so that it goes out through the host's
//! metric pipeline (OTLP, Prometheus) with the host's resource. Sums and gauges come
//! through: a delta sum is added as it is, a cumulative one as its change since the
//! instance last exported it (an instance lives for one invocation, so its first export
//! is all new); values are recorded as doubles. The SDK cannot take pre-aggregated
//! histograms, so a guest's histogram points are dropped and counted, with one warning
//! per component.

use crate::bindings::wasi::otel::{metrics as wit, types};
use crate::{EXPORT, OtelCtxView, OtelGrant, OtelState, convert};
use opentelemetry::metrics::{Counter, Gauge, Meter, UpDownCounter};
use opentelemetry::{KeyValue, StringValue, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
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
}

/// What kind of instrument a metric's data needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    UpDownCounter,
    Gauge,
}

/// What an instance exported last of each cumulative sum, to add only the change.
pub type LastCumulative = HashMap<String, f64>;

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

/// The instrument a metric needs and its points, or `None` for a histogram.
fn points(data: wit::MetricData) -> Result<(Kind, Vec<Point>), u64> {
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
    match data {
        D::F64Sum(s) | D::U64Sum(s) | D::S64Sum(s) => Ok(sum(s)),
        D::F64Gauge(g) | D::U64Gauge(g) | D::S64Gauge(g) => Ok(gauge(g)),
        D::F64Histogram(h) | D::U64Histogram(h) | D::S64Histogram(h) => {
            Err(h.data_points.len() as u64)
        }
        D::F64ExponentialHistogram(h)
        | D::U64ExponentialHistogram(h)
        | D::S64ExponentialHistogram(h) => Err(h.data_points.len() as u64),
    }
}

impl GuestMetrics {
    /// The instrument for `metric` of `scope`, made the first time; `None` once the
    /// component has [`crate::MAX_METRICS`] and this is another.
    fn instrument(
        &self,
        meter: &Meter,
        scope: &str,
        metric: &Named,
        kind: Kind,
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
        data,
    } = metric;
    let metric = Named {
        name,
        unit,
        description,
    };
    let (kind, points) = match points(data) {
        Ok(found) => found,
        Err(histogram_points) => {
            grant.dropped_points.add(histogram_points);
            if !grant
                .metrics
                .warned_histograms
                .swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "component {:?} exported histogram {:?} through wasi:otel: the host cannot take pre-aggregated histograms yet, so guest histograms are dropped (counted in guest.telemetry.dropped)",
                    grant.component_id,
                    metric.name
                );
            }
            return;
        }
    };
    let room = crate::MAX_RECORDS.saturating_sub(state.points) as usize;
    if points.len() > room {
        grant.dropped_points.add((points.len() - room) as u64);
    }
    if room == 0 || points.is_empty() {
        return;
    }
    let Some(instrument) = grant.metrics.instrument(meter, scope, &metric, kind) else {
        grant.dropped_points.add(points.len().min(room) as u64);
        return;
    };
    let id = Value::from(StringValue::from(grant.component_id.clone()));
    for point in points.into_iter().take(room) {
        state.points += 1;
        let (mut attributes, _) = convert::attributes(point.attributes);
        attributes.push(KeyValue::new(attr::COMPONENT_ID, id.clone()));
        let last = point.cumulative.then(|| {
            let key = series_key(scope, &metric.name, &attributes);
            state.last_cumulative.insert(key, point.value)
        });
        let change = change(kind, point.cumulative, last.flatten(), point.value);
        match &instrument {
            Instrument::Counter(counter) if change >= 0.0 => counter.add(change, &attributes),
            Instrument::Counter(_) => grant.dropped_points.add(1),
            Instrument::UpDownCounter(counter) => counter.add(change, &attributes),
            Instrument::Gauge(gauge) => gauge.record(point.value, &attributes),
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
