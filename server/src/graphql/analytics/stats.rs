//! Grouped prediction statistics.

use async_graphql::{ComplexObject, Enum, SimpleObject};
use chrono::{DateTime, Utc};

use super::measures::PredictionMeasures;
use crate::graphql::common::vocab_opt;
use crate::graphql::predictions::{RemediationStatus, RiskLevel};

/// What `predictionStats` groups by (besides the bucket).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::store::analytics::stats::StatsDimension")]
pub enum PredictionGroupBy {
    Model,
    ModelVersion,
    RiskLevel,
    Resource,
    RemediationStatus,
}

/// The key of a statistics group: the bucket start when bucketed and the
/// value of each grouped dimension (null for dimensions not grouped by).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PredictionStatsKey {
    pub bucket_start: Option<DateTime<Utc>>,
    pub model_id: Option<String>,
    pub model_version: Option<String>,
    pub resource_id: Option<String>,
    #[graphql(skip)]
    pub(super) risk_level: Option<String>,
    #[graphql(skip)]
    pub(super) remediation_status: Option<String>,
}

#[ComplexObject]
impl PredictionStatsKey {
    async fn risk_level(&self) -> async_graphql::Result<Option<RiskLevel>> {
        vocab_opt(self.risk_level.as_deref())
    }

    /// Null also for predictions without a remediation status.
    async fn remediation_status(&self) -> async_graphql::Result<Option<RemediationStatus>> {
        vocab_opt(self.remediation_status.as_deref())
    }
}

#[derive(SimpleObject)]
pub struct PredictionStatsGroup {
    pub key: PredictionStatsKey,
    pub measures: PredictionMeasures,
}

/// Grouped prediction statistics. When bucketed, every series has a group
/// for every bucket of the window (zero counts where it had no predictions);
/// the first and last bucket may extend beyond the window.
#[derive(SimpleObject)]
pub struct PredictionStats {
    /// Ordered by the grouped dimensions (in `groupBy` order), then by bucket.
    pub groups: Vec<PredictionStatsGroup>,
}
