//! Histograms made from generated measurements, as a guest's SDK aggregates them, are
//! replayed, and the values aggregated again the same way: the same buckets, count,
//! minimum, maximum and sum.

use super::*;
use proptest::prelude::*;

fn f64_number(x: f64) -> wit::MetricNumber {
    wit::MetricNumber::F64(x)
}

fn min_max(values: &[f64]) -> (Option<f64>, Option<f64>) {
    let min = values.iter().copied().reduce(f64::min);
    let max = values.iter().copied().reduce(f64::max);
    (min, max)
}

/// The bucket of `value` among `bounds`, as OpenTelemetry's SDKs find it.
fn explicit_bucket(bounds: &[f64], value: f64) -> usize {
    bounds.partition_point(|b| *b < value)
}

/// `values` as an SDK's explicit-bucket histogram point.
fn explicit_point(bounds: &[f64], values: &[f64], with_min_max: bool) -> wit::HistogramDataPoint {
    let mut counts = vec![0; bounds.len() + 1];
    for v in values {
        counts[explicit_bucket(bounds, *v)] += 1;
    }
    let (min, max) = min_max(values);
    wit::HistogramDataPoint {
        attributes: Vec::new(),
        count: values.len() as u64,
        bounds: bounds.to_vec(),
        bucket_counts: counts,
        min: min.filter(|_| with_min_max).map(f64_number),
        max: max.filter(|_| with_min_max).map(f64_number),
        sum: f64_number(values.iter().sum()),
        exemplars: Vec::new(),
    }
}

/// The bucket of `value` at `scale`, by this module's edges: `(sign, index)`.
fn exponential_slot(scale: i8, zero_threshold: f64, value: f64) -> Slot {
    let magnitude = value.abs();
    if magnitude <= zero_threshold {
        return (0, 0);
    }
    let mut k = (magnitude.log2() * f64::from(scale).exp2()).ceil() as i32 - 1;
    while edge(scale, k) >= magnitude {
        k -= 1;
    }
    while edge(scale, k + 1) < magnitude {
        k += 1;
    }
    (if value > 0.0 { 1 } else { -1 }, k)
}

/// The buckets an SDK keeps on each side (the SDKs' default).
const SDK_MAX_SIZE: i32 = 160;

/// The scale an SDK ends at for `values`, starting at `scale`: lowered until each side's
/// buckets span at most [`SDK_MAX_SIZE`].
fn fitting_scale(mut scale: i8, values: &[f64]) -> i8 {
    loop {
        let fits = [1, -1].iter().all(|sign| {
            let indexes = values
                .iter()
                .map(|v| exponential_slot(scale, 0.0, *v))
                .filter(|(s, _)| s == sign)
                .map(|(_, k)| k);
            let (low, high) = indexes.fold((i32::MAX, i32::MIN), |(l, h), k| (l.min(k), h.max(k)));
            low > high || high - low < SDK_MAX_SIZE
        });
        if fits {
            return scale;
        }
        scale -= 1;
    }
}

/// `values` as an SDK's exponential histogram point, starting at `scale`.
fn exponential_point(scale: i8, values: &[f64]) -> wit::ExponentialHistogramDataPoint {
    let scale = fitting_scale(scale, values);
    let mut slots: BTreeMap<Slot, u64> = BTreeMap::new();
    for v in values {
        *slots.entry(exponential_slot(scale, 0.0, *v)).or_default() += 1;
    }
    let side = |sign: i8| {
        let indexes: Vec<i32> = slots
            .keys()
            .filter(|(s, _)| *s == sign)
            .map(|(_, k)| *k)
            .collect();
        let Some(&offset) = indexes.first() else {
            return wit::ExponentialBucket {
                offset: 0,
                counts: Vec::new(),
            };
        };
        let last = *indexes.last().unwrap();
        let counts = (offset..=last).map(|k| slots.get(&(sign, k)).copied().unwrap_or(0));
        wit::ExponentialBucket {
            offset,
            counts: counts.collect(),
        }
    };
    let (min, max) = min_max(values);
    wit::ExponentialHistogramDataPoint {
        attributes: Vec::new(),
        count: values.len() as u64,
        min: min.map(f64_number),
        max: max.map(f64_number),
        sum: f64_number(values.iter().sum()),
        scale,
        zero_count: slots.get(&(0, 0)).copied().unwrap_or(0),
        positive_bucket: side(1),
        negative_bucket: side(-1),
        zero_threshold: 0.0,
        exemplars: Vec::new(),
    }
}

/// The replayed values, one by one.
fn replayed(summary: &Summary) -> Vec<f64> {
    let values = summary.replay().expect("a valid point replays");
    values
        .into_iter()
        .flat_map(|(v, n)| std::iter::repeat_n(v, n as usize))
        .collect()
}

fn assert_sum_close(replayed: &[f64], sum: f64, original: &[f64]) {
    let got: f64 = replayed.iter().sum();
    let scale: f64 = original.iter().map(|v| v.abs()).sum::<f64>() + sum.abs() + 1.0;
    assert!(
        (got - sum).abs() <= 1e-9 * scale,
        "sum {got} instead of {sum}"
    );
}

fn bounds() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::btree_set(-2000i32..2000, 0..12)
        .prop_map(|set| set.into_iter().map(|b| f64::from(b) / 4.0).collect())
}

fn measurements() -> impl Strategy<Value = Vec<f64>> {
    let value = prop_oneof![
        -600.0..600.0f64,
        (-600i32..600).prop_map(|b| f64::from(b) / 4.0), // on bounds
        0.0..1e-3f64,
    ];
    prop::collection::vec(value, 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn an_explicit_histogram_is_replayed_into_the_same_buckets(
        bounds in bounds(),
        values in measurements(),
        with_min_max in prop::bool::weighted(0.8),
    ) {
        let point = explicit_point(&bounds, &values, with_min_max);
        let summary = Summary::explicit(&point).unwrap();
        let replayed = replayed(&summary);
        let again = explicit_point(&bounds, &replayed, with_min_max);
        prop_assert_eq!(&again.bucket_counts, &point.bucket_counts);
        prop_assert_eq!(again.count, point.count);
        if with_min_max {
            prop_assert_eq!(min_max(&replayed), min_max(&values));
        }
        assert_sum_close(&replayed, values.iter().sum(), &values);
        prop_assert_eq!(summary.host_bounds(), bounds);
    }

    #[test]
    fn an_exponential_histogram_is_replayed_into_the_same_buckets(
        scale in -3i8..=8,
        values in prop::collection::vec(
            prop_oneof![
                -1e6..1e6f64,
                1e-6..1e-2f64,
                Just(0.0),
                // Powers of two are bucket edges at every scale from 0 up: a negative
                // bucket holds its lowest one, a positive bucket its highest.
                (-20i32..20).prop_map(|e| -(2f64).powi(e)),
                (-20i32..20).prop_map(|e| (2f64).powi(e)),
            ],
            0..60),
    ) {
        let point = exponential_point(scale, &values);
        let scale = point.scale;
        let summary = Summary::exponential(&point).unwrap();
        let replayed = replayed(&summary);
        let again = Summary::exponential(&exponential_point(scale, &replayed)).unwrap();
        prop_assert_eq!(&again.buckets, &summary.buckets);
        prop_assert_eq!(min_max(&replayed), min_max(&values));
        assert_sum_close(&replayed, values.iter().sum(), &values);
        // On the host's explicit bounds, each exponential bucket is a bucket of its own.
        let host = summary.host_bounds();
        let mut by_host_bucket: BTreeMap<usize, BTreeMap<Slot, u64>> = BTreeMap::new();
        for v in &replayed {
            let slot = exponential_slot(scale, 0.0, *v);
            *by_host_bucket.entry(explicit_bucket(&host, *v)).or_default().entry(slot).or_default() += 1;
        }
        for slots in by_host_bucket.values() {
            prop_assert_eq!(slots.len(), 1, "host buckets {:?}: {:?}", host, by_host_bucket);
        }
    }

    #[test]
    fn a_cumulative_histogram_adds_what_it_gained(
        bounds in bounds(),
        before in measurements(),
        after in measurements(),
    ) {
        let all: Vec<f64> = before.iter().chain(&after).copied().collect();
        let first = Summary::explicit(&explicit_point(&bounds, &before, true)).unwrap();
        let second = Summary::explicit(&explicit_point(&bounds, &all, true)).unwrap();
        let change = second.since(&first);
        let gained = Summary::explicit(&explicit_point(&bounds, &after, true)).unwrap();
        prop_assert_eq!(&change.buckets, &gained.buckets);
        prop_assert_eq!(change.count, after.len() as u64);
        let replayed = replayed(&change);
        prop_assert_eq!(replayed.len(), after.len());
        assert_sum_close(&replayed, after.iter().sum(), &all);
        // A new extreme is known; one that stayed is not (it was among the earlier).
        let (min_before, max_before) = min_max(&before);
        let (min_after, max_after) = min_max(&after);
        let lower = matches!((min_after, min_before), (Some(a), Some(b)) if a < b);
        prop_assert_eq!(change.min, if lower || before.is_empty() { min_after } else { None });
        let higher = matches!((max_after, max_before), (Some(a), Some(b)) if a > b);
        prop_assert_eq!(change.max, if higher || before.is_empty() { max_after } else { None });
        if let (Some(min), Some(max)) = (change.min, change.max) {
            prop_assert_eq!(min_max(&replayed), (Some(min), Some(max)));
        }
    }

    #[test]
    fn a_cumulative_exponential_histogram_that_rescaled_adds_what_it_gained(
        scale in 0i8..=6,
        down in 1i8..=3,
        before in prop::collection::vec(1e-3..1e3f64, 0..40),
        after in prop::collection::vec(1e-3..1e3f64, 0..40),
    ) {
        let all: Vec<f64> = before.iter().chain(&after).copied().collect();
        let first = exponential_point(scale, &before);
        let second = exponential_point(first.scale - down, &all);
        let gained = exponential_point(second.scale, &after);
        prop_assume!(gained.scale == second.scale);
        let [first, second, gained] =
            [first, second, gained].map(|p| Summary::exponential(&p).unwrap());
        prop_assert_eq!(second.since(&first).buckets, gained.buckets);
    }
}

#[test]
fn a_histogram_that_restarted_is_all_new() {
    let bounds = [1.0, 10.0];
    let first = Summary::explicit(&explicit_point(&bounds, &[5.0, 5.0, 50.0], true)).unwrap();
    let second = Summary::explicit(&explicit_point(&bounds, &[0.5], true)).unwrap();
    assert_eq!(second.since(&first), second);
    let other_bounds = Summary::explicit(&explicit_point(&[2.0], &[5.0, 5.0, 50.0, 9.0], true));
    assert_eq!(
        other_bounds.clone().unwrap().since(&first),
        other_bounds.unwrap()
    );
}

#[test]
fn points_that_cannot_be_are_refused_saying_why() {
    let good = explicit_point(&[1.0, 2.0], &[0.5, 1.5, 3.0], true);
    let refused = |change: &dyn Fn(&mut wit::HistogramDataPoint)| {
        let mut point = good.clone();
        change(&mut point);
        Summary::explicit(&point)
            .and_then(|s| s.replay())
            .unwrap_err()
    };
    assert!(refused(&|p| p.bounds = vec![2.0, 1.0]).contains("increasing"));
    assert!(refused(&|p| p.bounds = vec![1.0, f64::NAN]).contains("finite"));
    assert!(refused(&|p| p.bucket_counts.push(0)).contains("bucket count per bound"));
    assert!(refused(&|p| p.count = 4).contains("add up"));
    assert!(refused(&|p| p.sum = f64_number(f64::INFINITY)).contains("not finite"));
    assert!(refused(&|p| p.min = Some(f64_number(1.5))).contains("minimum outside"));
    assert!(refused(&|p| p.max = Some(f64_number(1.5))).contains("maximum outside"));
    assert!(refused(&|p| p.bounds = (0..400).map(f64::from).collect()).contains("more buckets"));
    let mut exponential = exponential_point(3, &[1.0, 2.0]);
    exponential.scale = 21;
    assert!(
        Summary::exponential(&exponential)
            .unwrap_err()
            .contains("scale")
    );
    // A bucket past what a double holds (2^1100), with no minimum or maximum to say
    // where its values are: they would be infinite, which the SDK drops.
    let far = wit::ExponentialHistogramDataPoint {
        count: 1,
        min: None,
        max: None,
        positive_bucket: wit::ExponentialBucket {
            offset: 1100,
            counts: vec![1],
        },
        ..exponential_point(0, &[])
    };
    let far = Summary::exponential(&far).unwrap();
    assert!(far.replay().unwrap_err().contains("range of a double"));
    // Bounds as far apart as doubles go: the values between them are still finite.
    let wide = explicit_point(&[-1e308, 1e308], &[-5e307, 0.0, 7e307], false);
    let replayed = replayed(&Summary::explicit(&wide).unwrap());
    assert!(replayed.iter().all(|v| v.is_finite()), "{replayed:?}");
}

#[test]
fn a_histogram_without_minimum_and_maximum_keeps_its_sum_in_its_open_buckets() {
    // Everything below 0 and above 10: the open-ended buckets absorb the sum.
    let values = [-1000.0, -3.0, 20.0, 5000.0, 7.0];
    let summary = Summary::explicit(&explicit_point(&[0.0, 10.0], &values, false)).unwrap();
    let replayed = replayed(&summary);
    assert_eq!(
        explicit_point(&[0.0, 10.0], &replayed, false).bucket_counts,
        vec![2, 1, 2]
    );
    assert_sum_close(&replayed, values.iter().sum(), &values);
}
