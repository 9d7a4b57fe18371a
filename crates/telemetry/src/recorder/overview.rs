//! The overview's plots, derived from the metric streams when asked: per route, requests
//! per second, error rate and latency percentiles; per component, invocations, instances,
//! instantiation time, fuel and memory against their limits.

use super::metrics::{MetricStore, RESOLUTIONS, Shape, Slot, Stream, StreamKey};
use super::workload::WorkloadView;
use crate::names::{attr, metric};
use serde::Serialize;
use std::collections::BTreeMap;

/// The plots over the last points at one resolution. Every series has a value (or null,
/// where nothing was measured) for each of `times`.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub resolution_s: u64,
    /// Each point's start, in seconds since the epoch, oldest first.
    pub times: Vec<u64>,
    pub routes: Vec<RouteSeries>,
    pub components: Vec<ComponentSeries>,
}

#[derive(Debug, Default, Serialize)]
pub struct RouteSeries {
    pub route: String,
    /// The component that serves it, where a workload says so.
    pub component: Option<String>,
    pub requests_per_s: Vec<f64>,
    /// Answers with a 5xx status or an `error.type`, as a share of all.
    pub error_rate: Vec<Option<f64>>,
    pub p50_ms: Vec<Option<f64>>,
    pub p95_ms: Vec<Option<f64>>,
    pub p99_ms: Vec<Option<f64>>,
}

#[derive(Debug, Default, Serialize)]
pub struct ComponentSeries {
    pub component: String,
    pub invocations_per_s: Vec<f64>,
    pub instances_active: Vec<Option<f64>>,
    /// Mean instantiation time of the point's instances.
    pub instantiation_ms: Vec<Option<f64>>,
    pub fuel_per_invocation: Vec<Option<f64>>,
    pub fuel_limit: Option<u64>,
    /// The most linear memory one instance has held.
    pub memory_peak_bytes: Vec<Option<f64>>,
    pub memory_limit_bytes: Option<u64>,
}

/// The overview at `resolution` (an index into [`RESOLUTIONS`]).
pub(super) fn overview(
    store: &MetricStore,
    workloads: &[WorkloadView],
    resolution: usize,
) -> Overview {
    let (step, points) = RESOLUTIONS[resolution];
    let last = store.latest() - store.latest() % step;
    let times: Vec<u64> = (0..points as u64)
        .rev()
        .filter_map(|back| last.checked_sub(back * step))
        .collect();
    let plot = Plot {
        store,
        resolution,
        times: &times,
        step,
    };
    let components_of = workloads
        .iter()
        .flat_map(|w| &w.components)
        .collect::<Vec<_>>();
    let mut routes: BTreeMap<String, RouteSeries> = BTreeMap::new();
    for (key, _) in plot.streams(metric::HTTP_SERVER_REQUEST_DURATION) {
        let route = key.get(attr::HTTP_ROUTE).unwrap_or("(no route)").to_owned();
        routes.entry(route.clone()).or_insert_with(|| {
            let component = components_of
                .iter()
                .find(|c| c.route.as_deref().map(crate::names::http_route) == Some(route.clone()))
                .map(|c| c.id.clone());
            plot.route(&route, component)
        });
    }
    let mut components: BTreeMap<String, ComponentSeries> = BTreeMap::new();
    for (key, _) in plot.streams(metric::COMPONENT_INVOCATIONS) {
        if let Some(id) = key.get(attr::COMPONENT_ID) {
            let described = components_of.iter().find(|c| c.id == id);
            components
                .entry(id.to_owned())
                .or_insert_with(|| plot.component(id, described.map(|c| c.limits.fuel)));
        }
    }
    Overview {
        resolution_s: step,
        times,
        routes: routes.into_values().collect(),
        components: components.into_values().collect(),
    }
}

struct Plot<'a> {
    store: &'a MetricStore,
    resolution: usize,
    times: &'a [u64],
    step: u64,
}

impl Plot<'_> {
    fn streams<'s>(&'s self, name: &'s str) -> impl Iterator<Item = (&'s StreamKey, &'s Stream)> {
        self.store
            .streams()
            .filter(move |(key, _)| key.metric == name)
    }

    /// The streams of metric `name` whose `key` attribute is `value`.
    fn matching<'s>(
        &'s self,
        name: &'s str,
        key: &'s str,
        value: &'s str,
    ) -> impl Iterator<Item = (&'s StreamKey, &'s Stream)> {
        self.streams(name)
            .filter(move |(stream, _)| stream.get(key) == Some(value))
    }

    /// Each point's slots across `streams`.
    fn each_point<'s, T>(
        &self,
        streams: &[(&'s StreamKey, &'s Stream)],
        mut f: impl FnMut(&mut dyn Iterator<Item = (&'s StreamKey, &'s Slot)>) -> T,
    ) -> Vec<T> {
        self.times
            .iter()
            .map(|&at| {
                let mut slots = streams
                    .iter()
                    .filter_map(|(key, stream)| Some((*key, stream.point(self.resolution, at)?)));
                f(&mut slots)
            })
            .collect()
    }

    fn route(&self, route: &str, component: Option<String>) -> RouteSeries {
        let streams: Vec<_> = self
            .matching(
                metric::HTTP_SERVER_REQUEST_DURATION,
                attr::HTTP_ROUTE,
                route,
            )
            .collect();
        let step = self.step as f64;
        let mut series = RouteSeries {
            route: route.to_owned(),
            component,
            ..RouteSeries::default()
        };
        let bounds = streams.iter().find_map(|(_, s)| match &s.shape {
            Shape::Histogram { bounds } if !bounds.is_empty() => Some(bounds.clone()),
            _ => None,
        });
        for (count, errors, buckets) in self.each_point(&streams, |slots| {
            let (mut count, mut errors, mut buckets) = (0u64, 0u64, Vec::<u64>::new());
            for (key, slot) in slots {
                count += slot.count;
                if failed(key) {
                    errors += slot.count;
                }
                buckets.resize(buckets.len().max(slot.buckets.len()), 0);
                buckets
                    .iter_mut()
                    .zip(&slot.buckets)
                    .for_each(|(b, n)| *b += n);
            }
            (count, errors, buckets)
        }) {
            series.requests_per_s.push(count as f64 / step);
            let rate = (count > 0).then(|| errors as f64 / count as f64);
            series.error_rate.push(rate);
            let quantile = |q| {
                let bounds = bounds.as_deref()?;
                quantile(bounds, &buckets, count, q).map(|seconds| seconds * 1000.0)
            };
            series.p50_ms.push(quantile(0.5));
            series.p95_ms.push(quantile(0.95));
            series.p99_ms.push(quantile(0.99));
        }
        series
    }

    fn component(&self, id: &str, fuel_limit: Option<Option<u64>>) -> ComponentSeries {
        let step = self.step as f64;
        let invocations: Vec<_> = self
            .matching(metric::COMPONENT_INVOCATIONS, attr::COMPONENT_ID, id)
            .collect();
        let invocations = self.each_point(&invocations, |slots| slots.map(|(_, s)| s.value).sum());
        let by_id = |name| {
            self.matching(name, attr::WASMTIME_COMPONENT_ID, id)
                .collect::<Vec<_>>()
        };
        let level = |name| {
            self.each_point(&by_id(name), |slots| {
                slots.map(|(_, s)| s.value).reduce(f64::max)
            })
        };
        let fuel = self.each_point(&by_id(metric::FUEL_CONSUMED), |slots| {
            slots.map(|(_, s)| s.value).reduce(|a, b| a + b)
        });
        let instantiations: Vec<_> = self
            .matching(
                metric::COMPONENT_INSTANTIATION_DURATION,
                attr::COMPONENT_ID,
                id,
            )
            .collect();
        let instantiation_ms = self.each_point(&instantiations, |slots| {
            let (count, seconds) = slots.fold((0, 0.0), |(c, s), (_, slot)| {
                (c + slot.count, s + slot.value)
            });
            (count > 0).then(|| seconds * 1000.0 / count as f64)
        });
        let memory_limit = by_id(metric::MEMORY_LIMIT)
            .iter()
            .filter_map(|(_, s)| {
                self.times
                    .iter()
                    .rev()
                    .find_map(|&at| s.point(self.resolution, at))
            })
            .map(|slot| slot.value as u64)
            .max();
        ComponentSeries {
            component: id.to_owned(),
            fuel_per_invocation: fuel
                .iter()
                .zip(&invocations)
                .map(|(fuel, &n)| fuel.filter(|_| n > 0.0).map(|f| f / n))
                .collect(),
            invocations_per_s: invocations.iter().map(|n| n / step).collect(),
            instances_active: level(metric::INSTANCES_ACTIVE),
            instantiation_ms,
            fuel_limit: fuel_limit.flatten(),
            memory_peak_bytes: level(metric::MEMORY_PEAK),
            memory_limit_bytes: memory_limit,
        }
    }
}

/// Whether a request stream counts as failed: a 5xx status or an `error.type`.
fn failed(key: &StreamKey) -> bool {
    key.get(attr::ERROR_TYPE).is_some()
        || key
            .get(attr::HTTP_RESPONSE_STATUS_CODE)
            .and_then(|s| s.parse::<u16>().ok())
            .is_some_and(|status| status >= 500)
}

/// The `q` quantile of a histogram with upper `bounds`, by linear interpolation within
/// the bucket it falls in (the last, unbounded, bucket answers its lower bound).
pub(crate) fn quantile(bounds: &[f64], buckets: &[u64], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut below = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 && (below + n) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let Some(&upper) = bounds.get(i) else {
                return Some(lower);
            };
            let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * within);
        }
        below += n;
    }
    bounds.last().copied()
}
