//! Drift summaries: scores, alert counts and trends per drift type.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use super::thresholds::DriftThresholds;
use crate::graphql::common::vocab;
use crate::graphql::drift::{AlertLevel, DriftType};
use crate::store::analytics::drift as drift_data;
use crate::store::thresholds::Band;

/// Latest, largest and average of a score, with the alert level of the
/// latest and largest value under the tenant's thresholds (when banded).
#[derive(SimpleObject)]
pub struct ScoreSummary {
    /// The latest metric's value (null if the latest metric has none).
    pub latest: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub latest_level: Option<AlertLevel>,
    pub max_level: Option<AlertLevel>,
}

impl ScoreSummary {
    fn new(s: drift_data::ScoreSummary, band: Option<Band>) -> Self {
        let level = |value: Option<f64>| Some(AlertLevel::from(band?.level(value?)));
        Self {
            latest: s.latest,
            max: s.max,
            avg: s.avg,
            latest_level: level(s.latest),
            max_level: level(s.max),
        }
    }
}

/// Metrics with an alert triggered, by level.
#[derive(SimpleObject)]
pub struct AlertCounts {
    pub total: u64,
    pub info: u64,
    pub warning: u64,
    pub critical: u64,
}

#[derive(SimpleObject)]
pub struct DriftTrendPoint {
    pub bucket_start: DateTime<Utc>,
    pub metric_count: u64,
    pub avg_drift_score: Option<f64>,
    pub max_drift_score: Option<f64>,
    pub max_psi: Option<f64>,
    pub max_ks: Option<f64>,
    pub max_wasserstein: Option<f64>,
    /// Metrics in the bucket with an alert triggered.
    pub alerts: u64,
}

#[derive(SimpleObject)]
pub struct DriftTypeSummary {
    pub drift_type: DriftType,
    pub metric_count: u64,
    pub latest_metric_id: Option<String>,
    pub latest_measured_at: Option<DateTime<Utc>>,
    pub drift_score: ScoreSummary,
    pub psi: ScoreSummary,
    pub ks: ScoreSummary,
    pub wasserstein: ScoreSummary,
    pub alerts: AlertCounts,
    /// One point per bucket of the window when `bucket` is given (zero where
    /// nothing was measured), else empty.
    pub trend: Vec<DriftTrendPoint>,
}

#[derive(SimpleObject)]
pub struct DriftSummary {
    pub thresholds: DriftThresholds,
    /// One entry per drift type measured in the window.
    pub types: Vec<DriftTypeSummary>,
}

impl DriftSummary {
    pub(super) fn new(summary: drift_data::DriftSummary) -> async_graphql::Result<Self> {
        let t = summary.thresholds;
        let mut types = Vec::with_capacity(summary.types.len());
        for s in summary.types {
            types.push(DriftTypeSummary {
                drift_type: vocab(&s.drift_type)?,
                metric_count: s.metrics,
                latest_metric_id: s.latest_metric_id,
                latest_measured_at: s.latest_measured_at,
                drift_score: ScoreSummary::new(s.drift_score, None),
                psi: ScoreSummary::new(s.psi, Some(t.psi)),
                ks: ScoreSummary::new(s.ks, Some(t.ks)),
                wasserstein: ScoreSummary::new(s.wasserstein, Some(t.wasserstein)),
                alerts: AlertCounts {
                    total: s.alerts.total,
                    info: s.alerts.info,
                    warning: s.alerts.warning,
                    critical: s.alerts.critical,
                },
                trend: s
                    .trend
                    .into_iter()
                    .map(|p| DriftTrendPoint {
                        bucket_start: p.bucket_start.unwrap_or_default(),
                        metric_count: p.metrics,
                        avg_drift_score: p.avg_drift_score,
                        max_drift_score: p.max_drift_score,
                        max_psi: p.max_psi,
                        max_ks: p.max_ks,
                        max_wasserstein: p.max_wasserstein,
                        alerts: p.alerts,
                    })
                    .collect(),
            });
        }
        Ok(Self {
            thresholds: DriftThresholds(t),
            types,
        })
    }
}
