//! Metric time series: what the meter provider collects every second for the view (a
//! reader beside the exporters', on the same instruments), kept at a few resolutions
//! for the last hour, within a size.
//!
//! The reader asks for cumulative data, so an up-down counter arrives as its level; the
//! store turns counters and histograms into what each interval added, and keeps each
//! stream (a metric and one set of attributes) in fixed rings allocated when the stream
//! first appears. A stream that does not fit the bound is not kept, and counted.

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the view's reader collects.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The resolutions kept: seconds per point, and how many points (5 minutes by the
/// second, an hour by 10 seconds and by the minute).
pub const RESOLUTIONS: [(u64, usize); 3] = [(1, 300), (10, 360), (60, 60)];

/// One stream: a metric and one set of its attributes (sorted by key).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct StreamKey {
    pub metric: String,
    pub attributes: Vec<(String, String)>,
}

impl StreamKey {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a stream's points hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A counter: each point is what the interval added.
    Total,
    /// A gauge or an up-down counter: each point is the last value seen in it.
    Level,
    /// A histogram: each point is what the interval added to each bucket (`bounds` are
    /// the upper bounds; empty for an exponential histogram, of which only the count
    /// and sum are kept).
    Histogram { bounds: Vec<f64> },
}

/// One point: the interval's total or level (`value`), or its histogram.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    /// The point's start, in seconds since the epoch; 0 while empty.
    pub at: u64,
    pub value: f64,
    pub count: u64,
    pub buckets: Vec<u64>,
}

struct Ring {
    resolution: u64,
    slots: Vec<Slot>,
}

impl Ring {
    fn slot(&self, at: u64) -> Option<&Slot> {
        let slot = &self.slots[(at / self.resolution) as usize % self.slots.len()];
        (slot.at == at).then_some(slot)
    }

    fn slot_mut(&mut self, second: u64, buckets: usize) -> &mut Slot {
        let at = second - second % self.resolution;
        let len = self.slots.len();
        let slot = &mut self.slots[(at / self.resolution) as usize % len];
        if slot.at != at {
            slot.at = at;
            slot.value = 0.0;
            slot.count = 0;
            slot.buckets.clear();
            slot.buckets.resize(buckets, 0);
        }
        slot
    }
}

/// The cumulative values last seen, to tell what an interval added.
#[derive(Default)]
struct Previous {
    start: Option<SystemTime>,
    value: f64,
    count: u64,
    buckets: Vec<u64>,
}

pub struct Stream {
    pub unit: String,
    pub shape: Shape,
    previous: Previous,
    rings: Vec<Ring>,
}

impl Stream {
    fn new(unit: &str, shape: Shape) -> Self {
        // A histogram's slots get their buckets when first written.
        let rings = RESOLUTIONS
            .iter()
            .map(|&(resolution, points)| Ring {
                resolution,
                slots: vec![Slot::default(); points],
            })
            .collect();
        Stream {
            unit: unit.to_owned(),
            shape,
            previous: Previous::default(),
            rings,
        }
    }

    /// What a stream of `shape` takes, roughly.
    fn bytes(key: &StreamKey, shape: &Shape) -> usize {
        let buckets = match shape {
            Shape::Histogram { bounds } => bounds.len() + 1,
            _ => 0,
        };
        let points: usize = RESOLUTIONS.iter().map(|(_, n)| n).sum();
        let attributes: usize = key
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum();
        256 + key.metric.len() + attributes + points * (std::mem::size_of::<Slot>() + buckets * 8)
    }

    /// Its point at `resolution` (an index into [`RESOLUTIONS`]) starting at `at`.
    pub fn point(&self, resolution: usize, at: u64) -> Option<&Slot> {
        self.rings[resolution].slot(at)
    }

    fn record(&mut self, second: u64, start: Option<SystemTime>, seen: Seen<'_>) {
        // A new start time, or a total that went down, is a reset: all of it is new.
        let reset = start != self.previous.start;
        match seen {
            Seen::Level(value) => {
                for ring in &mut self.rings {
                    ring.slot_mut(second, 0).value = value;
                }
            }
            Seen::Total(total) => {
                let added = if reset || total < self.previous.value {
                    total
                } else {
                    total - self.previous.value
                };
                self.previous.value = total;
                for ring in &mut self.rings {
                    ring.slot_mut(second, 0).value += added;
                }
            }
            Seen::Histogram {
                count,
                sum,
                buckets,
            } => {
                let reset = reset || count < self.previous.count;
                let previous = &mut self.previous;
                let (added_count, added_sum) = if reset {
                    (count, sum)
                } else {
                    (count - previous.count, sum - previous.value)
                };
                let width = buckets.len();
                previous.buckets.resize(width, 0);
                for ring in &mut self.rings {
                    let slot = ring.slot_mut(second, width);
                    slot.count += added_count;
                    slot.value += added_sum;
                    for ((into, &now), &before) in
                        slot.buckets.iter_mut().zip(buckets).zip(&previous.buckets)
                    {
                        *into += if reset {
                            now
                        } else {
                            now.saturating_sub(before)
                        };
                    }
                }
                previous.count = count;
                previous.value = sum;
                previous.buckets.copy_from_slice(buckets);
            }
        }
        self.previous.start = start;
    }
}

/// One data point as collected (cumulative).
enum Seen<'a> {
    Level(f64),
    Total(f64),
    Histogram {
        count: u64,
        sum: f64,
        buckets: &'a [u64],
    },
}

pub(super) struct MetricStore {
    streams: HashMap<StreamKey, Stream>,
    bytes: usize,
    budget: usize,
    /// Streams not kept for want of room.
    refused: u64,
    /// When the last collection was taken, in seconds since the epoch.
    latest: u64,
}

impl MetricStore {
    pub fn new(budget: usize) -> Self {
        MetricStore {
            streams: HashMap::new(),
            bytes: 0,
            budget,
            refused: 0,
            latest: 0,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn refused(&self) -> u64 {
        self.refused
    }

    pub fn latest(&self) -> u64 {
        self.latest
    }

    pub fn streams(&self) -> impl Iterator<Item = (&StreamKey, &Stream)> {
        self.streams.iter()
    }

    /// Takes one collection.
    pub fn ingest(&mut self, metrics: &ResourceMetrics) {
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                match metric.data() {
                    AggregatedMetrics::F64(data) => self.ingest_data(metric, data, |v| *v),
                    AggregatedMetrics::U64(data) => self.ingest_data(metric, data, |v| *v as f64),
                    AggregatedMetrics::I64(data) => self.ingest_data(metric, data, |v| *v as f64),
                }
            }
        }
    }

    fn ingest_data<T: Copy>(
        &mut self,
        metric: &opentelemetry_sdk::metrics::data::Metric,
        data: &MetricData<T>,
        float: impl Fn(&T) -> f64,
    ) {
        let (name, unit) = (metric.name(), metric.unit());
        match data {
            MetricData::Gauge(gauge) => {
                let second = seconds(gauge.time());
                for point in gauge.data_points() {
                    let seen = Seen::Level(float(&point.value()));
                    self.record(
                        name,
                        unit,
                        point.attributes(),
                        Shape::Level,
                        second,
                        None,
                        seen,
                    );
                }
            }
            MetricData::Sum(sum) => {
                let second = seconds(sum.time());
                let shape = if sum.is_monotonic() {
                    Shape::Total
                } else {
                    Shape::Level
                };
                for point in sum.data_points() {
                    let value = float(&point.value());
                    let seen = match shape {
                        Shape::Total => Seen::Total(value),
                        _ => Seen::Level(value),
                    };
                    let start = Some(sum.start_time());
                    self.record(
                        name,
                        unit,
                        point.attributes(),
                        shape.clone(),
                        second,
                        start,
                        seen,
                    );
                }
            }
            MetricData::Histogram(histogram) => {
                let second = seconds(histogram.time());
                let start = Some(histogram.start_time());
                let mut buckets = Vec::new();
                for point in histogram.data_points() {
                    let shape = Shape::Histogram {
                        bounds: point.bounds().collect(),
                    };
                    buckets.clear();
                    buckets.extend(point.bucket_counts());
                    let seen = Seen::Histogram {
                        count: point.count(),
                        sum: float(&point.sum()),
                        buckets: &buckets,
                    };
                    self.record(name, unit, point.attributes(), shape, second, start, seen);
                }
            }
            MetricData::ExponentialHistogram(histogram) => {
                let second = seconds(histogram.time());
                let start = Some(histogram.start_time());
                for point in histogram.data_points() {
                    let shape = Shape::Histogram { bounds: Vec::new() };
                    let seen = Seen::Histogram {
                        count: point.count() as u64,
                        sum: float(&point.sum()),
                        buckets: &[],
                    };
                    self.record(name, unit, point.attributes(), shape, second, start, seen);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record<'a>(
        &mut self,
        metric: &str,
        unit: &str,
        attributes: impl Iterator<Item = &'a KeyValue>,
        shape: Shape,
        second: u64,
        start: Option<SystemTime>,
        seen: Seen<'_>,
    ) {
        self.latest = self.latest.max(second);
        let mut attributes: Vec<(String, String)> = attributes
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        attributes.sort();
        let key = StreamKey {
            metric: metric.to_owned(),
            attributes,
        };
        if !self.streams.contains_key(&key) {
            let bytes = Stream::bytes(&key, &shape);
            if self.bytes + bytes > self.budget {
                self.refused += 1;
                return;
            }
            self.bytes += bytes;
            self.streams.insert(key.clone(), Stream::new(unit, shape));
        }
        if let Some(stream) = self.streams.get_mut(&key) {
            stream.record(second, start, seen);
        }
    }
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// One stream's points, as `/api/metrics` lists them.
#[derive(Debug, serde::Serialize)]
pub struct MetricSeries {
    pub name: String,
    pub unit: String,
    /// `total` (what each point added), `level` (its last value) or `histogram`.
    pub shape: &'static str,
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Each point's start (seconds since the epoch) and value: for a histogram, the
    /// number of measurements (their sum is in `sums`).
    pub points: Vec<(u64, f64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sums: Vec<f64>,
}

impl MetricStore {
    /// The streams of metric `name` (every stream without one), at `resolution`.
    pub fn series(&self, name: Option<&str>, resolution: usize) -> Vec<MetricSeries> {
        let mut list: Vec<MetricSeries> = self
            .streams
            .iter()
            .filter(|(key, _)| name.is_none_or(|name| key.metric == name))
            .map(|(key, stream)| {
                let mut slots: Vec<&Slot> = stream.rings[resolution]
                    .slots
                    .iter()
                    .filter(|slot| slot.at != 0)
                    .collect();
                slots.sort_by_key(|slot| slot.at);
                let histogram = matches!(stream.shape, Shape::Histogram { .. });
                MetricSeries {
                    name: key.metric.clone(),
                    unit: stream.unit.clone(),
                    shape: match stream.shape {
                        Shape::Total => "total",
                        Shape::Level => "level",
                        Shape::Histogram { .. } => "histogram",
                    },
                    attributes: key.attributes.iter().cloned().collect(),
                    points: slots
                        .iter()
                        .map(|s| (s.at, if histogram { s.count as f64 } else { s.value }))
                        .collect(),
                    sums: match histogram {
                        true => slots.iter().map(|s| s.value).collect(),
                        false => Vec::new(),
                    },
                }
            })
            .collect();
        list.sort_by(|a, b| (&a.name, &a.attributes).cmp(&(&b.name, &b.attributes)));
        list
    }
}
