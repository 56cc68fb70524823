//! The measures of a set of predictions: counts, spreads, latency, risk mix,
//! and what a selection reads of them.

use async_graphql::{Lookahead, SimpleObject};

use crate::store::analytics::{self as store};

/// Average, smallest and largest value; null when there are no values.
#[derive(SimpleObject, Clone, Copy)]
pub struct Spread {
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl From<store::Spread> for Spread {
    fn from(s: store::Spread) -> Self {
        Self {
            avg: s.avg,
            min: s.min,
            max: s.max,
        }
    }
}

/// A latency distribution in milliseconds. Percentiles are continuous
/// (linear interpolation between ranks, as PostgreSQL's `percentile_cont`).
#[derive(SimpleObject, Clone, Copy)]
pub struct LatencyStats {
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// True when the percentiles are estimated rather than exact: model
    /// performance on PostgreSQL over more than 5000 predictions of a model
    /// reads them from hourly histograms, within 1 % of the exact value.
    pub percentiles_estimated: bool,
}

impl From<store::Latency> for LatencyStats {
    fn from(l: store::Latency) -> Self {
        Self {
            avg: l.spread.avg,
            min: l.spread.min,
            max: l.spread.max,
            p50: l.p50,
            p95: l.p95,
            p99: l.p99,
            percentiles_estimated: l.estimated,
        }
    }
}

/// Predictions per risk level.
#[derive(SimpleObject, Clone, Copy)]
pub struct RiskDistribution {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl From<store::RiskCounts> for RiskDistribution {
    fn from(r: store::RiskCounts) -> Self {
        Self {
            critical: r.critical,
            high: r.high,
            medium: r.medium,
            low: r.low,
        }
    }
}

/// Measures of a set of predictions.
#[derive(SimpleObject, Clone, Copy)]
pub struct PredictionMeasures {
    pub count: u64,
    pub violation_probability: Spread,
    pub confidence_score: Spread,
    pub inference_time_ms: LatencyStats,
    pub risk_distribution: RiskDistribution,
    /// Predictions at risk level `high` or `critical`.
    pub high_or_critical_count: u64,
}

impl From<store::PredictionMeasures> for PredictionMeasures {
    fn from(m: store::PredictionMeasures) -> Self {
        Self {
            count: m.count,
            violation_probability: m.violation_probability.into(),
            confidence_score: m.confidence_score.into(),
            inference_time_ms: m.inference_time_ms.into(),
            risk_distribution: m.risk.into(),
            high_or_critical_count: m.risk.high_or_critical(),
        }
    }
}

/// Whether the selection under a `LatencyStats` field reads a percentile.
pub(super) fn reads_percentile(latency: Lookahead<'_>) -> bool {
    ["p50", "p95", "p99"]
        .into_iter()
        .any(|p| latency.field(p).exists())
}

/// The measures the selection under a `PredictionMeasures` field reads.
pub(super) fn measures_read(measures: Lookahead<'_>) -> store::MeasureColumns {
    let latency = measures.field("inferenceTimeMs");
    let mut spreads = store::Spreads::NONE;
    let columns = [
        measures.field("violationProbability"),
        measures.field("confidenceScore"),
        measures.field("inferenceTimeMs"),
    ];
    for (c, column) in columns.iter().enumerate() {
        for (s, stat) in store::SPREAD_STATS.iter().enumerate() {
            spreads = spreads.with(c, s, column.field(stat).exists());
        }
    }
    store::MeasureColumns {
        spreads,
        risk: measures.field("riskDistribution").exists()
            || measures.field("highOrCriticalCount").exists(),
        percentiles: store::Percentiles::when(reads_percentile(latency)),
    }
}
