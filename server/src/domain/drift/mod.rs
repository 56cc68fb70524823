//! Drift between two samples of one signal, computed the way the reference
//! implementations do (the conformance fixture under `tests/fixtures/drift`
//! checks each against them):
//!
//! - **KS**: the two-sample statistic `sup |F_ref − F_cur|` and its p-value
//!   from Smirnov's distribution at the effective size (scipy's
//!   `ks_2samp(method="asymp")`).
//! - **Wasserstein**: the first Wasserstein distance divided by the
//!   reference's (population) standard deviation, at least 0.001
//!   (Evidently's `wasserstein_distance_norm`).
//! - **PSI**, **Jensen–Shannon** (distance, natural log) and **Hellinger**
//!   over bins: 10 fixed bins on [0, 1] for signals in the unit interval
//!   (the last bin closed), otherwise bins between the reference's deciles
//!   (linear interpolation, repeated edges merged, outer bins open). Bins
//!   empty in both samples are left out. PSI replaces an empty bin's share
//!   by Evidently's epsilon (0.0001, or the side's smallest share / 10⁶
//!   when that is at most 0.0001); JS and Hellinger need none.
//!
//! A sample is a list of [`Cell`]s: single values with their counts (exact,
//! from the rows) or value ranges with counts (from the rollups' bins).
//! From ranges, KS and Wasserstein carry an error bound (see
//! [`Comparison::ks`] and [`Comparison::wasserstein`]).

mod kolmogorov;
pub mod monitor;
mod ranking;

pub use kolmogorov::kstwo_sf;
pub use ranking::{ndcg, DEFAULT_NDCG_THRESHOLD};

use super::vocabulary::vocabulary;

vocabulary!(
    /// A drift statistic.
    Method {
        Psi => "psi",
        Ks => "ks",
        Wasserstein => "wasserstein",
        JensenShannon => "jensen_shannon",
        Hellinger => "hellinger",
    }
);

vocabulary!(
    /// A signal a monitor watches (`Shap` names a feature beside it).
    SignalKind {
        ViolationProbability => "violation_probability",
        ConfidenceScore => "confidence_score",
        RiskScore => "risk_score",
        InferenceTime => "inference_time",
        Shap => "shap",
    }
);

vocabulary!(
    /// A model quality measure observed through feedback, which a monitor
    /// may watch instead of a drift statistic.
    Quality {
        /// TP / (TP + FP) at the monitor's decision threshold.
        Precision => "precision",
        /// TP / (TP + FN).
        Recall => "recall",
        /// 2TP / (2TP + FP + FN).
        F1 => "f1",
        /// Expected calibration error over ten equal-width bins.
        CalibrationError => "calibration_error",
    }
);

impl Quality {
    /// Which side of its thresholds the measure is bad on.
    pub fn direction(self) -> monitor::Direction {
        match self {
            Quality::CalibrationError => monitor::Direction::Above,
            _ => monitor::Direction::Below,
        }
    }
}

vocabulary!(
    /// What a monitor compares its current window with.
    ReferenceKind {
        /// A fixed time window.
        Fixed => "fixed",
        /// The span right before the current window.
        Rolling => "rolling",
        /// Another model version's predictions in the current window.
        Version => "version",
    }
);

vocabulary!(
    /// Where a monitor's thresholds come from.
    ThresholdKind {
        Fixed => "fixed",
        Sigma => "sigma",
    }
);

/// Where a signal's values lie, which decides its bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// In [0, 1]: 10 fixed bins.
    Unit,
    /// Anywhere: bins between the reference's deciles.
    Open,
}

/// How many fixed bins a unit-interval signal has, and how many quantile
/// bins at most an open one.
pub const BINS: usize = 10;

/// Evidently's floor on the normalising standard deviation.
const MIN_NORM: f64 = 0.001;

/// Values in `[lower, upper)` (or exactly `lower` when equal) observed
/// `count` times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
}

impl Cell {
    pub fn point(value: f64, count: u64) -> Self {
        Self {
            lower: value,
            upper: value,
            count,
        }
    }
}

/// One cell of the merged grid: its range and both samples' counts.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Joint {
    lower: f64,
    upper: f64,
    reference: u64,
    current: u64,
}

/// A bin of the binned methods, with both samples' counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bin {
    /// The smallest value the bin takes (the smallest value observed in
    /// either sample for an open first bin).
    pub lower: f64,
    /// The bin's end (the largest value observed for an open last bin).
    pub upper: f64,
    pub reference: u64,
    pub current: u64,
}

/// A statistic, and how far from the value over the exact samples it can
/// be (0 when computed from them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub error_bound: f64,
}

/// The two samples of a signal, on one grid.
#[derive(Clone, Debug)]
pub struct Comparison {
    cells: Vec<Joint>,
    reference: u64,
    current: u64,
    scale: Scale,
}

impl Comparison {
    /// Both samples (cells in any order; equal ranges are merged). Ranges
    /// of the two must come from one grid (or be single values).
    pub fn new(reference: &[Cell], current: &[Cell], scale: Scale) -> Self {
        let mut cells: Vec<Joint> = reference
            .iter()
            .map(|c| (c, true))
            .chain(current.iter().map(|c| (c, false)))
            .filter(|(c, _)| c.count > 0)
            .map(|(c, is_ref)| Joint {
                lower: c.lower,
                upper: c.upper,
                reference: if is_ref { c.count } else { 0 },
                current: if is_ref { 0 } else { c.count },
            })
            .collect();
        cells.sort_by(|a, b| {
            a.lower
                .total_cmp(&b.lower)
                .then(a.upper.total_cmp(&b.upper))
        });
        let mut merged: Vec<Joint> = Vec::with_capacity(cells.len());
        for c in cells {
            match merged.last_mut() {
                Some(last) if last.lower == c.lower && last.upper == c.upper => {
                    last.reference += c.reference;
                    last.current += c.current;
                }
                _ => merged.push(c),
            }
        }
        let reference = merged.iter().map(|c| c.reference).sum();
        let current = merged.iter().map(|c| c.current).sum();
        Self {
            cells: merged,
            reference,
            current,
            scale,
        }
    }

    pub fn reference_count(&self) -> u64 {
        self.reference
    }

    pub fn current_count(&self) -> u64 {
        self.current
    }

    /// Both samples hold something: only then are statistics defined.
    pub fn comparable(&self) -> bool {
        self.reference > 0 && self.current > 0
    }

    /// Whether every cell is a single value (the statistics are exact).
    pub fn exact(&self) -> bool {
        self.cells.iter().all(Joint::is_point)
    }

    fn shares(&self, c: &Joint) -> (f64, f64) {
        (
            c.reference as f64 / self.reference as f64,
            c.current as f64 / self.current as f64,
        )
    }

    /// The KS statistic. From ranges, the CDFs are known only at their
    /// ends: the value is the largest difference there, and the bound
    /// how much larger it can be inside a range (at most the range's
    /// larger share).
    pub fn ks(&self) -> Estimate {
        let (mut gap, mut lower, mut upper) = (0.0f64, 0.0f64, 0.0f64);
        for c in &self.cells {
            let (p, q) = self.shares(c);
            let end = gap + p - q;
            if !c.is_point() {
                upper = upper.max((gap + p).abs()).max((gap - q).abs());
            }
            gap = end;
            lower = lower.max(end.abs());
            upper = upper.max(end.abs());
        }
        Estimate {
            value: lower.min(1.0),
            error_bound: (upper.min(1.0) - lower.min(1.0)).max(0.0),
        }
    }

    /// The effective sample size of the KS p-value, `round(n·m/(n+m))`
    /// (half to even, as numpy rounds).
    fn effective_size(&self) -> u64 {
        let (n, m) = (self.reference as f64, self.current as f64);
        (n * m / (n + m)).round_ties_even().max(1.0) as u64
    }

    /// The p-value of KS statistic `d`.
    pub fn ks_p_value(&self, d: f64) -> f64 {
        kstwo_sf(self.effective_size(), d)
    }

    /// The reference's population standard deviation (ranges at their
    /// middle), and its bound.
    fn reference_std(&self) -> (f64, f64) {
        let n = self.reference as f64;
        let mean = self
            .cells
            .iter()
            .map(|c| c.reference as f64 * mid(c))
            .sum::<f64>()
            / n;
        let var = self
            .cells
            .iter()
            .map(|c| c.reference as f64 * (mid(c) - mean).powi(2))
            .sum::<f64>()
            / n;
        // Moving each value by at most its half width moves the standard
        // deviation (a norm) by at most the root mean square of the moves.
        let moved = (self
            .cells
            .iter()
            .map(|c| c.reference as f64 * half(c).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        (var.max(0.0).sqrt(), moved)
    }

    /// The Wasserstein distance normalised by the reference's standard
    /// deviation (at least 0.001). From ranges, values are placed at their
    /// middle; moving each by at most half its range moves the distance by
    /// at most the mean half width of each sample, and the deviation by at
    /// most its root mean square: the bound is the worst ratio within both.
    pub fn wasserstein(&self) -> Estimate {
        let mut distance = 0.0;
        let mut gap = 0.0f64;
        let mut previous: Option<f64> = None;
        let (mut moved_ref, mut moved_cur) = (0.0, 0.0);
        let mut points: Vec<(f64, f64, f64)> = self
            .cells
            .iter()
            .map(|c| {
                let (p, q) = self.shares(c);
                moved_ref += p * half(c);
                moved_cur += q * half(c);
                (mid(c), p, q)
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (x, p, q) in points {
            if let Some(prev) = previous {
                distance += gap.abs() * (x - prev);
            }
            gap += p - q;
            previous = Some(x);
        }
        let (std, std_moved) = self.reference_std();
        let norm = std.max(MIN_NORM);
        let value = distance / norm;
        let moved = moved_ref + moved_cur;
        if moved == 0.0 {
            return Estimate {
                value,
                error_bound: 0.0,
            };
        }
        let smallest_norm = (std - std_moved).max(MIN_NORM);
        let largest_norm = (std + std_moved).max(MIN_NORM);
        let high = (distance + moved) / smallest_norm;
        let low = (distance - moved).max(0.0) / largest_norm;
        Estimate {
            value,
            error_bound: (high - value).max(value - low),
        }
    }

    /// The bins of the binned methods, with counts; empty ones left out.
    pub fn bins(&self) -> Vec<Bin> {
        let edges = match self.scale {
            Scale::Unit => (1..BINS).map(|i| i as f64 / BINS as f64).collect(),
            Scale::Open => self.reference_deciles(),
        };
        let first = self.cells.first().map_or(0.0, |c| c.lower);
        let last = self
            .cells
            .iter()
            .map(|c| c.upper)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut bins: Vec<Bin> = (0..=edges.len())
            .map(|i| Bin {
                lower: match (self.scale, i) {
                    (Scale::Unit, 0) => 0.0,
                    (Scale::Open, 0) => first,
                    _ => edges[i - 1],
                },
                upper: match (self.scale, i == edges.len()) {
                    (Scale::Unit, true) => 1.0,
                    (Scale::Open, true) => last,
                    _ => edges[i],
                },
                reference: 0,
                current: 0,
            })
            .collect();
        for c in &self.cells {
            let i = match self.scale {
                // Guarded against a value a hair below its edge in binary
                // (the values are decimals).
                Scale::Unit => {
                    ((c.lower * BINS as f64 + 1e-9).floor().max(0.0) as usize).min(BINS - 1)
                }
                Scale::Open => edges.partition_point(|e| *e <= c.lower),
            };
            bins[i].reference += c.reference;
            bins[i].current += c.current;
        }
        bins.retain(|b| b.reference + b.current > 0);
        bins
    }

    /// The reference's deciles 10 %…90 % (numpy's linear interpolation),
    /// distinct. From ranges, the range holding a decile gives its lower
    /// end, so that every bin is a union of ranges.
    fn reference_deciles(&self) -> Vec<f64> {
        let n = self.reference;
        let mut edges: Vec<f64> = Vec::with_capacity(BINS - 1);
        if n == 0 {
            return edges;
        }
        let held: Vec<&Joint> = self.cells.iter().filter(|c| c.reference > 0).collect();
        // The value of 0-based rank `r` among the sorted reference values.
        let at = |r: u64| -> (f64, bool) {
            let mut seen = 0;
            for c in &held {
                seen += c.reference;
                if r < seen {
                    return (c.lower, c.lower == c.upper);
                }
            }
            let last = held.last().expect("a reference value");
            (last.lower, true)
        };
        for i in 1..BINS {
            let h = (n - 1) as f64 * i as f64 / BINS as f64;
            let below = h.floor();
            let (a, a_point) = at(below as u64);
            let edge = if !a_point {
                a
            } else {
                let (b, _) = at((below as u64 + 1).min(n - 1));
                a + (h - below) * (b - a)
            };
            if edges.last().is_none_or(|last| *last < edge) {
                edges.push(edge);
            }
        }
        edges
    }

    /// `method`'s statistic (binned methods over [`Comparison::bins`]).
    pub fn statistic(&self, method: Method) -> Estimate {
        let exact = |value| Estimate {
            value,
            error_bound: 0.0,
        };
        match method {
            Method::Psi => exact(self.psi(&self.bins())),
            Method::JensenShannon => exact(self.jensen_shannon(&self.bins())),
            Method::Hellinger => exact(self.hellinger(&self.bins())),
            Method::Ks => self.ks(),
            Method::Wasserstein => self.wasserstein(),
        }
    }

    /// PSI over [`Comparison::bins`].
    pub fn psi(&self, bins: &[Bin]) -> f64 {
        let (mut p, mut q) = self.bin_shares(bins);
        fill_zeros(&mut p);
        fill_zeros(&mut q);
        p.iter().zip(&q).map(|(p, q)| (p - q) * (p / q).ln()).sum()
    }

    /// The Jensen–Shannon distance (natural log) over the bins, as
    /// `scipy.spatial.distance.jensenshannon`.
    pub fn jensen_shannon(&self, bins: &[Bin]) -> f64 {
        let (p, q) = self.bin_shares(bins);
        let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
        let mut total = 0.0;
        for (p, q) in p.iter().zip(&q) {
            let (p, q) = (p / sp, q / sq);
            let m = (p + q) / 2.0;
            total += rel_entr(p, m) + rel_entr(q, m);
        }
        (total / 2.0).max(0.0).sqrt()
    }

    /// The Hellinger distance over the bins, `√(1 − Σ√(p·q))` (Evidently).
    pub fn hellinger(&self, bins: &[Bin]) -> f64 {
        let (p, q) = self.bin_shares(bins);
        let affinity: f64 = p.iter().zip(&q).map(|(p, q)| (p * q).sqrt()).sum();
        (1.0 - affinity.clamp(0.0, 1.0)).sqrt()
    }

    fn bin_shares(&self, bins: &[Bin]) -> (Vec<f64>, Vec<f64>) {
        bins.iter()
            .map(|b| {
                (
                    b.reference as f64 / self.reference as f64,
                    b.current as f64 / self.current as f64,
                )
            })
            .unzip()
    }
}

impl Joint {
    fn is_point(&self) -> bool {
        self.lower == self.upper
    }
}

fn mid(c: &Joint) -> f64 {
    (c.lower + c.upper) / 2.0
}

fn half(c: &Joint) -> f64 {
    (c.upper - c.lower) / 2.0
}

/// `x·ln(x/y)`, 0 when `x` is 0 (scipy's `rel_entr`).
fn rel_entr(x: f64, y: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * (x / y).ln()
    }
}

/// Evidently's `feel_zeroes`: empty shares become 0.0001, or the smallest
/// share / 10⁶ when that is at most 0.0001.
fn fill_zeros(shares: &mut [f64]) {
    let smallest = shares
        .iter()
        .copied()
        .filter(|s| *s != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let epsilon = if smallest <= 0.0001 {
        smallest / 1e6
    } else {
        0.0001
    };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = epsilon;
    }
}

#[cfg(test)]
mod tests;
