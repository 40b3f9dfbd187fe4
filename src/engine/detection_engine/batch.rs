//! Batch anomaly scoring: a whole series in one pass, with exactly the answers one
//! `observe` call per value would give on the same state.
//!
//! - z-score: running mean and sum of squared deviations over the window (a Welford update
//!   that adds the new value and removes the oldest), recomputed from the window every
//!   `window_size` values so rounding cannot drift. O(1) per value. When the running z-score
//!   lies within a rounding-error bound of the threshold, or the spread is too small for the
//!   running figures to be trusted, that value is scored directly over its window, so each
//!   decision is the one the per-value path makes.
//! - MAD: a sorted copy of the window (binary search, one shift per value) gives the median
//!   in O(1) and the MAD by selecting from the deviations on either side of it in
//!   O(log window). The shift makes it O(window) per value in the worst case.
//! - EWMA: the per-value recurrence itself, which is already O(1).
//!
//! Non-finite values are refused (the whole call, before anything is recorded), with the
//! position of the first one.

use super::{
    check_threshold, check_window_size, zscore_exact, AnomalyDetector, AnomalyMethod, Series,
    FLAT_WINDOW_MAX_Z, MAD_SCALE,
};
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::pyfmt;

/// The settings a series is scored with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalySettings {
    pub window_size: usize,
    pub threshold: f64,
    pub method: AnomalyMethod,
}

impl AnomalySettings {
    pub fn new(window_size: usize, threshold: f64, method: AnomalyMethod) -> EngineResult<Self> {
        check_window_size(window_size)?;
        check_threshold(threshold)?;
        Ok(AnomalySettings {
            window_size,
            threshold,
            method,
        })
    }
}

/// The outcome of scoring one series: how many values were scored and the positions (in the
/// series, ascending) of the anomalous ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesScore {
    pub count: usize,
    pub indices: Vec<usize>,
}

impl SeriesScore {
    /// One byte per value: 1 where anomalous, else 0.
    pub fn flags(&self) -> Vec<u8> {
        let mut flags = vec![0u8; self.count];
        for &i in &self.indices {
            flags[i] = 1;
        }
        flags
    }
}

/// Refuses a series holding NaN or an infinity, naming the first one as `label[index]`.
fn check_finite(values: &[f64], label: &dyn Fn(usize) -> String) -> EngineResult<()> {
    // A branch-free sweep first: the common all-finite case costs one pass with no early exit.
    if values.iter().fold(true, |ok, x| ok & x.is_finite()) {
        return Ok(());
    }
    let index = values.iter().position(|x| !x.is_finite()).unwrap_or(0);
    Err(EngineError::invalid(format!(
        "{} is {}; values must be finite numbers",
        label(index),
        pyfmt::float_repr(values[index])
    )))
}

/// Scores `values` as a new detector with `settings` would, fed one value at a time under
/// one metric name. Nothing is stored.
pub fn detect_series(values: &[f64], settings: AnomalySettings) -> EngineResult<SeriesScore> {
    check_finite(values, &|i| format!("values[{i}]"))?;
    let mut series = Series::new("".into(), 0);
    Ok(feed(&mut series, settings, values))
}

impl AnomalyDetector {
    pub fn settings(&self) -> AnomalySettings {
        AnomalySettings {
            window_size: self.window_size,
            threshold: self.threshold,
            method: self.method,
        }
    }

    /// Feeds each `(name, series)` in turn, as one `observe` call per value in that order
    /// would, and returns each series' score. A non-finite value anywhere, or a name that
    /// is too long, refuses the whole call before anything is recorded.
    pub fn observe_series(&mut self, batch: &[(&str, &[f64])]) -> EngineResult<Vec<SeriesScore>> {
        for (k, (name, values)) in batch.iter().enumerate() {
            Self::check_name(name)?;
            check_finite(values, &|i| format!("series[{k}][{i}]"))?;
        }
        let settings = self.settings();
        let mut scores = Vec::with_capacity(batch.len());
        for (name, values) in batch {
            if values.is_empty() {
                // Zero `observe` calls would not create the metric either.
                scores.push(SeriesScore::default());
                continue;
            }
            let index = match self.index.get(*name) {
                Some(&i) => i,
                None => self.insert(name),
            };
            self.tick += values.len() as u64;
            let series = &mut self.series[index];
            series.last_used = self.tick;
            scores.push(feed(series, settings, values));
        }
        Ok(scores)
    }

    /// One value for each of many metrics: `observe` for each pair in order. A non-finite
    /// value or a name that is too long refuses the whole call before anything is recorded.
    pub fn observe_many(&mut self, items: &[(&str, f64)]) -> EngineResult<Vec<bool>> {
        for (k, (name, value)) in items.iter().enumerate() {
            Self::check_name(name)?;
            if !value.is_finite() {
                return Err(EngineError::invalid(format!(
                    "the value for {name:?} (item {k}) is {}; values must be finite numbers",
                    pyfmt::float_repr(*value)
                )));
            }
        }
        Ok(items
            .iter()
            .map(|(name, value)| self.observe(name, *value))
            .collect())
    }
}

impl Series {
    fn new(name: Box<str>, tick: u64) -> Self {
        Series {
            name,
            values: Default::default(),
            run: 0,
            ewma_mean: 0.0,
            ewma_var: 0.0,
            seen: 0,
            last_used: tick,
            created: tick,
        }
    }
}

/// Scores `values` against `series` and leaves `series` as the per-value path would.
fn feed(series: &mut Series, settings: AnomalySettings, values: &[f64]) -> SeriesScore {
    let w = settings.window_size;
    let t = settings.threshold;
    let mut indices = Vec::new();
    {
        let old = series.values.make_contiguous();
        // The window never holds more than `window_size` values; keep only those.
        let old = &old[old.len().saturating_sub(w)..];
        let joined = Joined { old, new: values };
        match settings.method {
            AnomalyMethod::ZScore => zscore_run(joined, series.run, w, t, &mut indices),
            AnomalyMethod::Mad => mad_run(joined, series.run, w, t, &mut indices),
            AnomalyMethod::Ewma => ewma_run(series, w, t, values, &mut indices),
        }
    }
    series.seen += values.len() as u64;
    // The new window: the newest `w` of old ++ values.
    if values.len() >= w {
        series.values.clear();
        series.values.extend(&values[values.len() - w..]);
    } else {
        let excess = (series.values.len() + values.len()).saturating_sub(w);
        series.values.drain(..excess);
        series.values.extend(values);
    }
    // How many of the newest values equal the newest one, as the per-value path counts it.
    series.run = match series.values.back() {
        Some(&last) => series
            .values
            .iter()
            .rev()
            .take_while(|&&x| x == last)
            .count(),
        None => 0,
    };
    SeriesScore {
        count: values.len(),
        indices,
    }
}

/// The metric's earlier window followed by the new values, indexed as one sequence.
#[derive(Clone, Copy)]
struct Joined<'a> {
    old: &'a [f64],
    new: &'a [f64],
}

impl<'a> Joined<'a> {
    #[inline]
    fn get(&self, i: usize) -> f64 {
        match i.checked_sub(self.old.len()) {
            None => self.old[i],
            Some(j) => self.new[j],
        }
    }

    /// Positions `start..end` as two slices, in order.
    fn range(&self, start: usize, end: usize) -> (&'a [f64], &'a [f64]) {
        let o = self.old.len();
        (
            &self.old[start.min(o)..end.min(o)],
            &self.new[start.saturating_sub(o)..end.saturating_sub(o)],
        )
    }
}

/// Mean, sum of squared deviations (two-pass, as `zscore_exact` computes them) and the sum
/// of magnitudes (for the rounding bound of the mean).
fn moments(older: &[f64], newer: &[f64]) -> (f64, f64, f64) {
    let n = older.len() + newer.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let (sum, magnitude) = older
        .iter()
        .chain(newer)
        .fold((0.0, 0.0), |(sum, mag), x| (sum + x, mag + x.abs()));
    let mean = sum / n as f64;
    let m2 = older
        .iter()
        .chain(newer)
        .fold(0.0, |acc, x| acc + (x - mean) * (x - mean));
    (mean, m2, magnitude)
}

const EPS: f64 = f64::EPSILON;

/// Where `x` goes in a sorted window (before any equal values). Small windows count with a
/// branch-free sweep, which beats a binary search's mispredicted branches.
#[inline]
fn sorted_position(sorted: &[f64], x: f64) -> usize {
    if sorted.len() <= 64 {
        sorted
            .iter()
            .map(|v| usize::from(v.total_cmp(&x).is_lt()))
            .sum()
    } else {
        sorted.partition_point(|v| v.total_cmp(&x).is_lt())
    }
}

/// The running figures of the z-score path, with bounds on their rounding errors.
struct Running {
    n: usize,
    inv_n: f64,
    mean: f64,
    m2: f64,
    /// Sum of |x| over the window (a bound for the direct computation's rounding).
    magnitude: f64,
    /// Bound on |computed mean - true mean|.
    mean_err: f64,
    /// Bound on |computed m2 - true m2|.
    m2_err: f64,
}

impl Running {
    fn exact(older: &[f64], newer: &[f64]) -> Self {
        let n = older.len() + newer.len();
        let (mean, m2, magnitude) = moments(older, newer);
        // Summation error of the mean; m2 gets the two-pass error plus the mean's, squared.
        let mean_err = EPS * magnitude;
        Running {
            n,
            inv_n: 1.0 / n.max(1) as f64,
            mean,
            m2,
            magnitude,
            mean_err,
            m2_err: EPS * (n as f64 + 2.0) * m2 + n as f64 * mean_err * mean_err,
        }
    }

    /// Adds `x` to a window that is not full.
    #[inline]
    fn add(&mut self, x: f64) {
        self.n += 1;
        self.inv_n = 1.0 / self.n as f64;
        let d = x - self.mean;
        let new_mean = self.mean + d / self.n as f64;
        let e = x - new_mean;
        let mean_err = self.mean_err + EPS * (new_mean.abs() + d.abs());
        self.m2 += d * e;
        self.m2_err += d.abs() * mean_err
            + e.abs() * self.mean_err
            + EPS * (3.0 * (d * e).abs() + self.m2.abs());
        self.magnitude += x.abs();
        self.mean = new_mean;
        self.mean_err = mean_err;
    }

    /// Replaces the oldest value `y` with `x` in a full window.
    #[inline]
    fn replace(&mut self, y: f64, x: f64) {
        let diff = x - y;
        let new_mean = self.mean + diff * self.inv_n;
        let (a, b) = (x - new_mean, y - self.mean);
        let mean_err = self.mean_err + EPS * (new_mean.abs() + diff.abs());
        self.m2 += diff * (a + b);
        self.m2_err += diff.abs() * (self.mean_err + mean_err + 3.0 * EPS * (a.abs() + b.abs()))
            + EPS * self.m2.abs();
        // Only a bound: rounding here is covered by the factor 2 where it is used.
        self.magnitude += x.abs() - y.abs();
        self.mean = new_mean;
        self.mean_err = mean_err;
    }

    /// `Some(z > t)` when the running figures decide it beyond their rounding error and the
    /// direct computation's, else None. Compares `d^2 * n` with `t^2 * m2` (no division or
    /// square root), with absolute error bounds on both sides.
    #[inline]
    fn decide(&self, x: f64, t: f64) -> Option<bool> {
        let n = self.n as f64;
        let t2 = t * t;
        // The direct computation's mean is off by up to eps * sum|x|.
        let direct_mean_err = 2.0 * EPS * self.magnitude;
        let spread_err =
            self.m2_err + n * direct_mean_err * direct_mean_err + EPS * (n + 2.0) * self.m2;
        // Untrusted spread (including m2 <= 0 and NaN, where the direct path may find 0).
        if !(self.m2 > 4.0 * spread_err && self.m2.is_finite()) {
            return None;
        }
        let d = (x - self.mean).abs();
        let d_err = self.mean_err + direct_mean_err + EPS * d;
        let lhs = d * d * n;
        let rhs = t2 * self.m2;
        let band =
            2.0 * d * d_err * n + n * d_err * d_err + t2 * spread_err + 8.0 * EPS * (lhs + rhs);
        // A NaN or infinity fails this comparison and goes to the direct path.
        ((lhs - rhs).abs() > 4.0 * band).then_some(lhs > rhs)
    }
}

#[cfg(test)]
thread_local! {
    /// How many z-scores were computed directly (tests check that it stays rare).
    static DIRECT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn zscore_run(j: Joined<'_>, mut run: usize, w: usize, t: f64, out: &mut Vec<usize>) {
    let o = j.old.len();
    let half = w / 2;
    let (a, b) = j.range(o.saturating_sub(w), o);
    let mut stats = Running::exact(a, b);
    // Values since the running figures were last recomputed.
    let mut since = 0usize;
    // NaN never equals a value, so an empty window is never flat.
    let mut last = if stats.n > 0 { j.get(o - 1) } else { f64::NAN };
    for (i, &x) in j.new.iter().enumerate() {
        let end = o + i;
        let n = stats.n;
        if n >= half {
            let flat = run >= n && last == x;
            let hit = if flat && t >= FLAT_WINDOW_MAX_Z {
                false
            } else {
                match stats.decide(x, t) {
                    Some(hit) => hit,
                    None => {
                        #[cfg(test)]
                        DIRECT.with(|c| c.set(c.get() + 1));
                        let (a, b) = j.range(end.saturating_sub(w), end);
                        zscore_exact(a, b, x, t)
                    }
                }
            };
            if hit {
                out.push(i);
            }
        }
        run = if last == x { run + 1 } else { 1 };
        last = x;
        if n < w {
            stats.add(x);
        } else {
            stats.replace(j.get(end - w), x);
        }
        run = run.min(stats.n);
        since += 1;
        if since >= w {
            let (a, b) = j.range(end + 1 - stats.n, end + 1);
            stats = Running::exact(a, b);
            since = 0;
        }
    }
}

fn mad_run(j: Joined<'_>, mut run: usize, w: usize, t: f64, out: &mut Vec<usize>) {
    let o = j.old.len();
    let half = w / 2;
    let (a, b) = j.range(o.saturating_sub(w), o);
    let mut sorted: Vec<f64> = Vec::with_capacity(w);
    sorted.extend(a.iter().chain(b));
    sorted.sort_unstable_by(f64::total_cmp);
    let mut last = if sorted.is_empty() {
        f64::NAN
    } else {
        j.get(o - 1)
    };
    for (i, &x) in j.new.iter().enumerate() {
        let end = o + i;
        let n = sorted.len();
        let flat = run >= n && last == x;
        if !flat && n >= half {
            let (median, mad) = median_and_mad(&sorted);
            if mad != 0.0 && (MAD_SCALE * (x - median) / mad).abs() > t {
                out.push(i);
            }
        }
        run = if last == x { run + 1 } else { 1 };
        last = x;
        let at = sorted_position(&sorted, x);
        if n < w {
            sorted.insert(at, x);
        } else {
            // Replace the oldest value with x: one shift of the values between them.
            let y = j.get(end - w);
            let gone = sorted_position(&sorted, y);
            if gone < at {
                sorted.copy_within(gone + 1..at, gone);
                sorted[at - 1] = x;
            } else {
                sorted.copy_within(at..gone, at + 1);
                sorted[at] = x;
            }
        }
        run = run.min(sorted.len());
    }
}

/// Median and MAD of a sorted, non-empty window, computed as `median_in_place` would
/// (the same order statistics, the same averaging).
fn median_and_mad(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    let s = n / 2;
    let median = if n % 2 == 1 {
        sorted[s]
    } else {
        (sorted[s - 1] + sorted[s]) / 2.0
    };
    let mad = if n % 2 == 1 {
        kth_deviation(sorted, s, median, s)
    } else {
        (kth_deviation(sorted, s, median, s - 1) + kth_deviation(sorted, s, median, s)) / 2.0
    };
    (median, mad)
}

/// The `k`-th smallest (from 0) of `|x - m|` over sorted `a`, where `a[..s] <= m <= a[s..]`.
/// Going outwards from `s`, the deviations on each side never decrease (rounded subtraction
/// is monotonic), so this selects from two sorted sequences by binary search.
fn kth_deviation(a: &[f64], s: usize, m: f64, k: usize) -> f64 {
    let left = |i: usize| (a[s - 1 - i] - m).abs();
    let right = |i: usize| (a[s + i] - m).abs();
    let (l, r) = (s, a.len() - s);
    // i: how many of the k + 1 smallest come from the left side.
    let mut lo = (k + 1).saturating_sub(r);
    let mut hi = (k + 1).min(l);
    while lo < hi {
        let i = (lo + hi) / 2;
        let j = k + 1 - i;
        if j > 0 && left(i) < right(j - 1) {
            lo = i + 1;
        } else {
            hi = i;
        }
    }
    let j = k + 1 - lo;
    let from_left = if lo > 0 {
        left(lo - 1)
    } else {
        f64::NEG_INFINITY
    };
    let from_right = if j > 0 {
        right(j - 1)
    } else {
        f64::NEG_INFINITY
    };
    from_left.max(from_right)
}

fn ewma_run(series: &mut Series, w: usize, t: f64, values: &[f64], out: &mut Vec<usize>) {
    let half = w / 2;
    let alpha = 2.0 / (w as f64 + 1.0);
    let mut mean = series.ewma_mean;
    let mut var = series.ewma_var;
    for (i, (&x, seen)) in values.iter().zip(series.seen..).enumerate() {
        let std = var.sqrt();
        if seen as usize >= half && std > 0.0 && ((x - mean) / std).abs() > t {
            out.push(i);
        }
        if seen == 0 {
            mean = x;
        } else {
            let diff = x - mean;
            let step = alpha * diff;
            mean += step;
            var = (1.0 - alpha) * (var + diff * step);
        }
    }
    series.ewma_mean = mean;
    series.ewma_var = var;
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::test_rng::TestRng as Rng;

    trait Series {
        fn series(&mut self, n: usize, offset: f64, scale: f64) -> Vec<f64>;
    }

    impl Series for Rng {
        /// Roughly normal (sum of uniforms), with occasional outliers and repeats.
        fn series(&mut self, n: usize, offset: f64, scale: f64) -> Vec<f64> {
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let g = (0..4).map(|_| self.unit()).sum::<f64>() - 2.0;
                let r = self.unit();
                let x = if r < 0.02 {
                    offset + scale * 8.0 * g.signum()
                } else if r < 0.05 {
                    *out.last().unwrap_or(&offset)
                } else {
                    offset + scale * g
                };
                out.push(x);
            }
            out
        }
    }

    fn one_by_one(values: &[f64], s: AnomalySettings) -> Vec<usize> {
        let mut d = AnomalyDetector::new(s.window_size, s.threshold, s.method, 10).unwrap();
        (0..values.len())
            .filter(|&i| d.observe("m", values[i]))
            .collect()
    }

    const METHODS: [AnomalyMethod; 3] = [
        AnomalyMethod::ZScore,
        AnomalyMethod::Mad,
        AnomalyMethod::Ewma,
    ];

    #[test]
    fn batch_matches_one_by_one_on_random_data() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut total_hits = 0;
        for &(offset, scale) in &[
            (0.0, 1.0),
            (1e6, 1.0),
            (1e9, 1e-3),
            (-5e12, 10.0),
            (0.0, 1e-300),
        ] {
            let values = rng.series(4000, offset, scale);
            for method in METHODS {
                for &w in &[2, 3, 4, 7, 20, 101] {
                    for &t in &[0.5, 1.0, 2.5, 3.0] {
                        let s = AnomalySettings::new(w, t, method).unwrap();
                        let expected = one_by_one(&values, s);
                        let got = detect_series(&values, s).unwrap();
                        assert_eq!(got.count, values.len());
                        assert_eq!(
                            got.indices, expected,
                            "{method:?} w={w} t={t} offset={offset} scale={scale}"
                        );
                        total_hits += expected.len();
                    }
                }
            }
        }
        assert!(
            total_hits > 10_000,
            "the data must produce anomalies: {total_hits}"
        );
    }

    #[test]
    fn running_zscore_rarely_falls_back_to_the_direct_computation() {
        let mut rng = Rng(5);
        for &(offset, scale) in &[(0.0, 1.0), (1e6, 1.0), (-3e8, 0.01)] {
            let values = rng.series(100_000, offset, scale);
            for &w in &[5, 20, 1000] {
                DIRECT.with(|c| c.set(0));
                let s = AnomalySettings::new(w, 3.0, AnomalyMethod::ZScore).unwrap();
                let got = detect_series(&values, s).unwrap();
                let direct = DIRECT.with(|c| c.get());
                // Repeats of the previous value (3% of the data) can leave a flat window.
                assert!(
                    direct < values.len() / 50,
                    "w={w} offset={offset}: {direct}"
                );
                assert!(!got.indices.is_empty());
            }
        }
    }

    #[test]
    fn running_figures_stay_within_their_error_bounds() {
        let mut rng = Rng(11);
        for &(offset, scale) in &[(0.0, 1.0), (1e6, 1.0), (1e12, 1e-2), (-7.0, 1e-9)] {
            let values = rng.series(3000, offset, scale);
            let w = 50;
            let mut stats = Running::exact(&[], &[]);
            // Never recomputed: the bounds must hold over a long drift too.
            for (i, &x) in values.iter().enumerate() {
                if stats.n < w {
                    stats.add(x);
                } else {
                    stats.replace(values[i - w], x);
                }
                let exact = Running::exact(&values[(i + 1).saturating_sub(w)..=i], &[]);
                assert!(
                    (stats.mean - exact.mean).abs() <= stats.mean_err + exact.mean_err,
                    "mean at {i}, offset {offset}"
                );
                assert!(
                    (stats.m2 - exact.m2).abs() <= stats.m2_err + exact.m2_err,
                    "m2 at {i}, offset {offset}: {} vs {} (bound {})",
                    stats.m2,
                    exact.m2,
                    stats.m2_err
                );
            }
        }
    }

    #[test]
    fn flat_stretches_signed_zeros_and_steps_match() {
        let mut values = vec![0.1; 50];
        values.extend([0.2, 0.1, -0.0, 0.0, 0.0, 0.0, 1e300, -1e300, 5.0]);
        values.extend(vec![3.3; 30]);
        values.extend([3.3 + 1e-12, 3.3, 7.0]);
        values.extend((0..40).map(|i| (i % 3) as f64));
        for method in METHODS {
            for &w in &[2, 5, 20] {
                for &t in &[0.5, 1.5, 3.0] {
                    let s = AnomalySettings::new(w, t, method).unwrap();
                    assert_eq!(
                        detect_series(&values, s).unwrap().indices,
                        one_by_one(&values, s),
                        "{method:?} w={w} t={t}"
                    );
                }
            }
        }
    }

    #[test]
    fn observe_series_continues_a_metric_like_observe() {
        let mut rng = Rng(42);
        let values = rng.series(3000, 100.0, 2.0);
        for method in METHODS {
            let mut step = AnomalyDetector::new(20, 2.0, method, 10).unwrap();
            let mut batch = step.clone();
            let expected: Vec<bool> = values.iter().map(|&x| step.observe("m", x)).collect();
            // Mixed: single values, then chunks of several sizes, including empty ones.
            let mut got = Vec::new();
            for &x in &values[..7] {
                got.push(batch.observe("m", x));
            }
            let mut at = 7;
            for size in [0, 1, 5, 19, 20, 21, 333, 2000].iter().cycle() {
                if at >= values.len() {
                    break;
                }
                let chunk = &values[at..(at + size).min(values.len())];
                let score = batch.observe_series(&[("m", chunk)]).unwrap().remove(0);
                let flags = score.flags();
                got.extend(flags.iter().map(|&f| f == 1));
                at += chunk.len();
            }
            assert_eq!(got, expected, "{method:?}");
            let (a, b) = (&step.series()[0], &batch.series()[0]);
            assert_eq!(a.1, b.1);
            assert_eq!(step.series[0].run, batch.series[0].run);
            assert_eq!(step.series[0].seen, batch.series[0].seen);
            assert_eq!(
                step.series[0].ewma_mean.to_bits(),
                batch.series[0].ewma_mean.to_bits()
            );
        }
    }

    #[test]
    fn non_finite_values_are_refused_with_their_position() {
        let s = AnomalySettings::new(5, 3.0, AnomalyMethod::ZScore).unwrap();
        let err = detect_series(&[1.0, 2.0, f64::NAN, f64::INFINITY], s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "values[2] is nan; values must be finite numbers"
        );
        let mut d = AnomalyDetector::default();
        let ok = [1.0, 2.0];
        let bad = [1.0, f64::NEG_INFINITY];
        let err = d.observe_series(&[("a", &ok), ("b", &bad)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "series[1][1] is -inf; values must be finite numbers"
        );
        assert!(d.is_empty(), "nothing recorded");
        let err = d.observe_many(&[("a", 1.0), ("b", f64::NAN)]).unwrap_err();
        assert!(err.to_string().contains("\"b\" (item 1) is nan"), "{err}");
        assert!(d.is_empty());
    }

    #[test]
    fn empty_and_short_series() {
        for method in METHODS {
            let s = AnomalySettings::new(100, 0.1, method).unwrap();
            assert_eq!(detect_series(&[], s).unwrap(), SeriesScore::default());
            // Shorter than half the window: all warm-up.
            let score = detect_series(&[1.0, 100.0, -50.0, 1e9], s).unwrap();
            assert_eq!((score.count, score.indices.len()), (4, 0));
        }
        let mut d = AnomalyDetector::default();
        d.observe_series(&[("never", &[])]).unwrap();
        assert!(d.is_empty(), "an empty series creates no metric");
    }

    #[test]
    fn observe_many_is_observe_in_order() {
        let mut a = AnomalyDetector::new(4, 1.0, AnomalyMethod::ZScore, 10).unwrap();
        let mut b = a.clone();
        let items: Vec<(&str, f64)> = (0..40)
            .map(|i| (if i % 2 == 0 { "x" } else { "y" }, ((i * 7) % 5) as f64))
            .collect();
        let expected: Vec<bool> = items.iter().map(|(n, v)| a.observe(n, *v)).collect();
        assert_eq!(b.observe_many(&items).unwrap(), expected);
        assert!(expected.iter().any(|&x| x));
        assert_eq!(a.series(), b.series());
    }

    #[test]
    fn settings_are_checked() {
        assert!(AnomalySettings::new(1, 3.0, AnomalyMethod::Mad).is_err());
        assert!(AnomalySettings::new(10_001, 3.0, AnomalyMethod::Mad).is_err());
        assert!(AnomalySettings::new(10, 0.0, AnomalyMethod::Mad).is_err());
        assert!(AnomalySettings::new(10, f64::NAN, AnomalyMethod::Mad).is_err());
    }

    #[test]
    fn kth_deviation_matches_sorting() {
        let mut rng = Rng(7);
        for n in 1..40 {
            let mut a: Vec<f64> = (0..n).map(|_| (rng.unit() * 10.0).floor()).collect();
            a.sort_unstable_by(f64::total_cmp);
            let mut scratch = a.clone();
            let median = super::super::median_in_place(&mut scratch);
            for x in scratch.iter_mut() {
                *x = (*x - median).abs();
            }
            let expected = super::super::median_in_place(&mut scratch);
            assert_eq!(median_and_mad(&a), (median, expected), "{a:?}");
        }
    }
}
