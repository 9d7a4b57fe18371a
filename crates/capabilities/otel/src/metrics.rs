//! wasi:otel's metrics: what a guest exports is recorded on host instruments of the same
//! name, unit and scope, with `component_id`, so that it goes out through the host's
//! metric pipeline (OTLP, Prometheus) with the host's resource. Sums and gauges come
//! through exactly: a delta sum is added as it is, a cumulative one as its change since
//! the instance last exported it (an instance lives for one invocation, so its first
//! export is all new). The SDK cannot take pre-aggregated histograms, so a guest's
//! histogram points are dropped and counted, with one warning per component.

use crate::bindings::wasi::otel::metrics as wit;
use crate::{OtelCtxView, OtelGrant, convert};
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
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    UpDownCounter,
    Gauge,
}

/// What an instance exported last of each cumulative series, to add only the change.
pub type LastCumulative = HashMap<String, f64>;

fn number(value: wit::MetricNumber) -> f64 {
    match value {
        wit::MetricNumber::F64(x) => x,
        wit::MetricNumber::S64(x) => x as f64,
        wit::MetricNumber::U64(x) => x as f64,
    }
}

impl GuestMetrics {
    fn instrument(
        &self,
        meter: &Meter,
        scope: &str,
        metric: &wit::Metric,
        kind: Kind,
    ) -> Instrument {
        let mut instruments = self
            .instruments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (scope.to_owned(), metric.name.clone());
        let known = instruments.get(&key).filter(|i| {
            matches!(
                (i, kind),
                (Instrument::Counter(_), Kind::Counter)
                    | (Instrument::UpDownCounter(_), Kind::UpDownCounter)
                    | (Instrument::Gauge(_), Kind::Gauge)
            )
        });
        if let Some(instrument) = known {
            return instrument.clone();
        }
        let (name, unit, description) = (
            metric.name.clone(),
            metric.unit.clone(),
            metric.description.clone(),
        );
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
        instrument
    }
}

impl OtelGrant {
    fn attributes(&self, list: Vec<crate::bindings::wasi::otel::types::KeyValue>) -> Vec<KeyValue> {
        let (mut attributes, _) = convert::attributes(list);
        let id = Value::from(StringValue::from(self.component_id.clone()));
        attributes.push(KeyValue::new(attr::COMPONENT_ID, id));
        attributes
    }
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
        for scope_metrics in metrics.scope_metrics {
            let scope_name = scope_metrics.scope.name.clone();
            let meter = grant
                .telemetry
                .meter_for(convert::scope(scope_metrics.scope));
            for metric in scope_metrics.metrics {
                let (kind, points) = match &metric.data {
                    wit::MetricData::F64Sum(sum)
                    | wit::MetricData::U64Sum(sum)
                    | wit::MetricData::S64Sum(sum) => {
                        let kind = if sum.is_monotonic {
                            Kind::Counter
                        } else {
                            Kind::UpDownCounter
                        };
                        let cumulative = sum.temporality == wit::Temporality::Cumulative;
                        let points = sum
                            .data_points
                            .iter()
                            .map(|p| (p.attributes.clone(), number(p.value), cumulative));
                        (kind, points.collect::<Vec<_>>())
                    }
                    wit::MetricData::F64Gauge(gauge)
                    | wit::MetricData::U64Gauge(gauge)
                    | wit::MetricData::S64Gauge(gauge) => {
                        let points = gauge
                            .data_points
                            .iter()
                            .map(|p| (p.attributes.clone(), number(p.value), false));
                        (Kind::Gauge, points.collect())
                    }
                    histogram => {
                        let count = histogram_points(histogram);
                        grant.dropped_points.add(count);
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
                        continue;
                    }
                };
                let instrument = grant.metrics.instrument(&meter, &scope_name, &metric, kind);
                for (attributes, value, cumulative) in points {
                    if state.points >= crate::MAX_RECORDS {
                        grant.dropped_points.add(1);
                        continue;
                    }
                    state.points += 1;
                    let attributes = grant.attributes(attributes);
                    let change = if cumulative {
                        let key = series_key(&scope_name, &metric.name, &attributes);
                        let last = state.last_cumulative.insert(key, value).unwrap_or(0.0);
                        if value >= last { value - last } else { value }
                    } else {
                        value
                    };
                    match &instrument {
                        Instrument::Counter(counter) if change >= 0.0 => {
                            counter.add(change, &attributes)
                        }
                        Instrument::Counter(_) => grant.dropped_points.add(1),
                        Instrument::UpDownCounter(counter) => counter.add(change, &attributes),
                        Instrument::Gauge(gauge) => gauge.record(value, &attributes),
                    }
                }
            }
        }
        Ok(())
    }
}

fn histogram_points(data: &wit::MetricData) -> u64 {
    let points = match data {
        wit::MetricData::F64Histogram(h)
        | wit::MetricData::U64Histogram(h)
        | wit::MetricData::S64Histogram(h) => h.data_points.len(),
        wit::MetricData::F64ExponentialHistogram(h)
        | wit::MetricData::U64ExponentialHistogram(h)
        | wit::MetricData::S64ExponentialHistogram(h) => h.data_points.len(),
        _ => 0,
    };
    points as u64
}
