//! A guest's histogram, replayed. wasi:otel hands the host pre-aggregated histograms,
//! and the SDK takes only single measurements (its aggregated data cannot be made
//! outside it). So a histogram point becomes values that, recorded on a host histogram
//! with the same buckets, give back its count, bucket counts, minimum, maximum and sum:
//! one value per measurement, each inside its bucket. The guest's histograms then go
//! through every reader the host has (OTLP, Prometheus, the view) and follow the host's
//! histogram aggregation setting, as its sums and gauges do.

use crate::bindings::wasi::otel::metrics as wit;
use std::collections::BTreeMap;

/// Buckets one histogram point may have (each sign's, for an exponential one).
pub const MAX_BUCKETS: usize = 320;
/// The scales an exponential histogram may have (those of the OpenTelemetry data model).
const SCALES: std::ops::RangeInclusive<i8> = -10..=20;

/// How a histogram's buckets are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// Upper bounds: bucket `i` holds `(bounds[i - 1], bounds[i]]`, the last one all
    /// above the last bound.
    Explicit(Vec<f64>),
    /// Base-2 exponential: bucket `k` holds `(base^k, base^(k+1)]` (or its negation),
    /// `base = 2^(2^-scale)`; the zero bucket `[-zero_threshold, zero_threshold]`.
    Exponential { scale: i8, zero_threshold: f64 },
}

/// A bucket: in an explicit layout `(0, index)`; in an exponential one the sign of its
/// values (`0` for the zero bucket) and its index.
pub type Slot = (i8, i32);

/// One histogram point, as the guest sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub layout: Layout,
    /// The buckets that have values, and how many.
    pub buckets: BTreeMap<Slot, u64>,
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Why a guest's histogram point cannot be taken.
pub type Invalid = &'static str;

fn number(value: wit::MetricNumber) -> f64 {
    match value {
        wit::MetricNumber::F64(x) => x,
        wit::MetricNumber::S64(x) => x as f64,
        wit::MetricNumber::U64(x) => x as f64,
    }
}

impl Summary {
    /// An explicit-bucket point: its bounds increasing and finite, a count per bucket
    /// (one more than the bounds) adding up to its count.
    pub fn explicit(point: &wit::HistogramDataPoint) -> Result<Self, Invalid> {
        let bounds = &point.bounds;
        if bounds.len() >= MAX_BUCKETS {
            return Err("more buckets than the host takes");
        }
        if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("bounds that are not finite and increasing");
        }
        if point.bucket_counts.len() != bounds.len() + 1 {
            return Err("a bucket count per bound, and one above them, is required");
        }
        let buckets = point.bucket_counts.iter().enumerate();
        let buckets = buckets
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| ((0, i as i32), *n));
        let (min, max) = (point.min.map(number), point.max.map(number));
        let layout = Layout::Explicit(bounds.clone());
        let sum = number(point.sum);
        Summary::checked(layout, buckets.collect(), point.count, sum, min, max)
    }

    /// An exponential point: a scale of the data model, a finite zero threshold.
    pub fn exponential(point: &wit::ExponentialHistogramDataPoint) -> Result<Self, Invalid> {
        if !SCALES.contains(&point.scale) {
            return Err("a scale outside -10..=20");
        }
        if !(point.zero_threshold.is_finite() && point.zero_threshold >= 0.0) {
            return Err("a zero threshold that is not a finite, non-negative number");
        }
        let (positive, negative) = (&point.positive_bucket, &point.negative_bucket);
        if positive.counts.len() > MAX_BUCKETS || negative.counts.len() > MAX_BUCKETS {
            return Err("more buckets than the host takes");
        }
        let mut buckets = BTreeMap::new();
        for (sign, side) in [(1, positive), (-1, negative)] {
            for (i, n) in side.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                let index = side
                    .offset
                    .checked_add(i as i32)
                    .ok_or("a bucket index out of range")?;
                buckets.insert((sign, index), *n);
            }
        }
        if point.zero_count > 0 {
            buckets.insert((0, 0), point.zero_count);
        }
        let layout = Layout::Exponential {
            scale: point.scale,
            zero_threshold: point.zero_threshold,
        };
        let sum = number(point.sum);
        let (min, max) = (point.min.map(number), point.max.map(number));
        Summary::checked(layout, buckets, point.count, sum, min, max)
    }

    fn checked(
        layout: Layout,
        buckets: BTreeMap<Slot, u64>,
        count: u64,
        sum: f64,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Result<Self, Invalid> {
        let counted = buckets
            .values()
            .try_fold(0u64, |total, n| total.checked_add(*n));
        if counted != Some(count) {
            return Err("bucket counts that do not add up to its count");
        }
        if !sum.is_finite() || [min, max].into_iter().flatten().any(|x| !x.is_finite()) {
            return Err("a sum, minimum or maximum that is not finite");
        }
        Ok(Summary {
            layout,
            buckets,
            count,
            sum,
            min,
            max,
        })
    }

    /// What a cumulative point adds to `last`, the same series' previous point: the
    /// change of each bucket, count and sum; a minimum (maximum) only where it moved,
    /// since the one before is all that is known of the earlier ones. A point that
    /// cannot follow `last` (fewer values in a bucket, other bounds) restarted: all of
    /// it is new.
    pub fn since(&self, last: &Summary) -> Summary {
        let Some(last_buckets) = last.buckets_as(&self.layout) else {
            return self.clone();
        };
        let mut buckets = self.buckets.clone();
        for (slot, before) in last_buckets {
            match buckets.get_mut(&slot) {
                Some(now) if *now >= before => *now -= before,
                _ => return self.clone(),
            }
        }
        buckets.retain(|_, n| *n > 0);
        let min = match (self.min, last.min) {
            (Some(now), Some(before)) if now < before => Some(now),
            (now, None) => now,
            _ => None,
        };
        let max = match (self.max, last.max) {
            (Some(now), Some(before)) if now > before => Some(now),
            (now, None) => now,
            _ => None,
        };
        Summary {
            layout: self.layout.clone(),
            count: buckets.values().sum(),
            buckets,
            sum: self.sum - last.sum,
            min,
            max,
        }
    }

    /// This point's buckets in `layout`: the same, or an exponential one merged down to
    /// `layout`'s coarser scale; `None` if they cannot be.
    fn buckets_as(&self, layout: &Layout) -> Option<BTreeMap<Slot, u64>> {
        match (&self.layout, layout) {
            (a, b) if a == b => Some(self.buckets.clone()),
            (
                Layout::Exponential {
                    scale: from,
                    zero_threshold: a,
                },
                Layout::Exponential {
                    scale: to,
                    zero_threshold: b,
                },
            ) if from > to && a == b => {
                let shift = (from - to) as u32;
                let mut merged = BTreeMap::new();
                for (&(sign, index), n) in &self.buckets {
                    // Bucket k at scale s lies within bucket floor(k / 2^d) at s - d.
                    *merged.entry((sign, index >> shift)).or_default() += n;
                }
                Some(merged)
            }
            _ => None,
        }
    }

    /// The values to record, each with how many times: one per measurement, each in
    /// its bucket; the minimum and the maximum once each; the rest placed so that all
    /// add up to the sum (as closely as the buckets allow).
    pub fn replay(&self) -> Result<Vec<(f64, u64)>, Invalid> {
        if self.count == 0 {
            return Ok(Vec::new());
        }
        let mut groups: Vec<Group> = self
            .buckets
            .iter()
            .map(|(&slot, &count)| {
                let (lo, hi) = range(&self.layout, slot);
                Group {
                    lo,
                    hi,
                    count,
                    value: 0.0,
                }
            })
            .collect();
        groups.sort_by(|a, b| a.lo.total_cmp(&b.lo));
        let mut fixed = Vec::new();
        if let Some(min) = self.min {
            let first = groups
                .iter_mut()
                .find(|g| g.count > 0)
                .ok_or("a minimum without values")?;
            if !(first.lo <= min && min <= first.hi) {
                return Err("a minimum outside its lowest bucket");
            }
            first.count -= 1;
            fixed.push((min, 1));
        }
        if let Some(max) = self.max
            && let Some(last) = groups.iter_mut().rev().find(|g| g.count > 0)
        {
            if !(last.lo <= max && max <= last.hi) {
                return Err("a maximum outside its highest bucket");
            }
            last.count -= 1;
            fixed.push((max, 1));
        }
        let (floor, ceiling) = (
            self.min.unwrap_or(f64::NEG_INFINITY),
            self.max.unwrap_or(f64::INFINITY),
        );
        for group in &mut groups {
            group.lo = group.lo.max(floor);
            group.hi = group.hi.min(ceiling);
            if group.count > 0 && group.lo > group.hi {
                return Err("values outside its minimum and maximum");
            }
        }
        groups.retain(|g| g.count > 0);
        let rest = self.sum - fixed.iter().map(|(v, _)| v).sum::<f64>();
        place(&mut groups, rest);
        // Ranges wider than a double reaches (hostile bounds, an index far out) put values
        // at infinity, which the SDK does not record.
        if groups.iter().any(|g| !g.value.is_finite()) {
            return Err("buckets beyond the range of a double");
        }
        fixed.extend(groups.iter().map(|g| (g.value, g.count)));
        Ok(fixed)
    }

    /// The bounds of a host histogram that keeps this point's buckets apart: its own,
    /// or the edges of the exponential buckets from its lowest to its highest. A host
    /// bucket holds its upper bound; a negative exponential bucket (and the zero bucket)
    /// its lowest value, so their edges are taken one step below.
    pub fn host_bounds(&self) -> Vec<f64> {
        match &self.layout {
            Layout::Explicit(bounds) => bounds.clone(),
            Layout::Exponential {
                scale,
                zero_threshold,
            } => {
                let mut edges = Vec::new();
                let side = |sign: i8| {
                    let mut indexes = self.buckets.keys().filter(|(s, _)| *s == sign);
                    let first = indexes.next().map(|(_, k)| *k);
                    first.map(|first| (first, indexes.next_back().map_or(first, |(_, k)| *k)))
                };
                if let Some((low, high)) = side(1) {
                    edges.extend((low..=high.saturating_add(1)).map(|k| edge(*scale, k)));
                }
                if let Some((low, high)) = side(-1) {
                    let edges_below = (low..=high.saturating_add(1)).map(|k| -edge(*scale, k));
                    edges.extend(edges_below.map(f64::next_down));
                }
                if self.buckets.contains_key(&(0, 0)) {
                    edges.extend([(-zero_threshold).next_down(), *zero_threshold]);
                }
                edges.retain(|e| e.is_finite());
                edges.sort_by(f64::total_cmp);
                edges.dedup();
                edges
            }
        }
    }
}

/// The values of one bucket: their range (closed), how many, and where they are put.
struct Group {
    lo: f64,
    hi: f64,
    count: u64,
    value: f64,
}

/// The closed range of the values `slot` holds in `layout`.
fn range(layout: &Layout, (sign, index): Slot) -> (f64, f64) {
    match layout {
        Layout::Explicit(bounds) => {
            let i = index as usize;
            let lo = match i {
                0 => f64::NEG_INFINITY,
                _ => bounds[i - 1].next_up(),
            };
            (lo, bounds.get(i).copied().unwrap_or(f64::INFINITY))
        }
        Layout::Exponential {
            scale,
            zero_threshold,
        } => {
            let (low, high) = (edge(*scale, index), edge(*scale, index.saturating_add(1)));
            match sign {
                0 => (-zero_threshold, *zero_threshold),
                1 => (low.next_up(), high),
                _ => (-high, (-low).next_down()),
            }
        }
    }
}

/// The lower edge of exponential bucket `index` at `scale`: `2^(index / 2^scale)`.
fn edge(scale: i8, index: i32) -> f64 {
    (f64::from(index) * (-f64::from(scale)).exp2()).exp2()
}

/// Puts each group's values at one point of its range so that all add up to `total`:
/// each starts in the middle of its range (at its finite end if it has one, or at the
/// mean if it has none), then the groups are moved, one after another, as far as they
/// need and may.
fn place(groups: &mut [Group], total: f64) {
    let n: u64 = groups.iter().map(|g| g.count).sum();
    for g in groups.iter_mut() {
        g.value = match (g.lo.is_finite(), g.hi.is_finite()) {
            (true, true) => g.lo / 2.0 + g.hi / 2.0,
            (false, true) => g.hi,
            (true, false) => g.lo,
            (false, false) => total / n as f64,
        }
        .clamp(g.lo, g.hi);
    }
    let mut left = total - groups.iter().map(|g| g.value * g.count as f64).sum::<f64>();
    for g in groups.iter_mut() {
        if left == 0.0 {
            break;
        }
        let count = g.count as f64;
        let step = match left > 0.0 {
            true => (left / count).min(g.hi - g.value),
            false => (left / count).max(g.lo - g.value),
        };
        let moved = (g.value + step).clamp(g.lo, g.hi);
        left -= (moved - g.value) * count;
        g.value = moved;
    }
}

#[cfg(test)]
mod tests;
