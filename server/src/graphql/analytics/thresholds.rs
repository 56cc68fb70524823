//! The tenant's drift alert thresholds.

use async_graphql::{Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::drift::Method;
use crate::graphql::drift::AlertLevel;
use crate::store::filter::invalid;
use crate::store::thresholds::{Band, DriftThresholds as DataThresholds};

/// Which score a threshold band applies to.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum ThresholdScore {
    Psi,
    Ks,
    Wasserstein,
    JensenShannon,
    Hellinger,
}

/// Scores at or above `warning` are a `WARNING` drift, above `critical` a `CRITICAL` one.
#[derive(SimpleObject, Clone, Copy)]
pub struct ThresholdBand {
    pub warning: f64,
    pub critical: f64,
}

impl From<Band> for ThresholdBand {
    fn from(b: Band) -> Self {
        Self {
            warning: b.warning,
            critical: b.critical,
        }
    }
}

/// The tenant's drift alert thresholds. Defaults (the conventions): PSI
/// 0.1 / 0.25 (< 0.1 no drift, 0.1–0.25 moderate, > 0.25 significant); KS,
/// Wasserstein, Jensen–Shannon and Hellinger 0.1 / 0.2.
pub struct DriftThresholds(pub(super) DataThresholds);

impl From<DataThresholds> for DriftThresholds {
    fn from(thresholds: DataThresholds) -> Self {
        Self(thresholds)
    }
}

#[Object]
impl DriftThresholds {
    async fn psi(&self) -> ThresholdBand {
        self.0.psi.into()
    }

    async fn ks(&self) -> ThresholdBand {
        self.0.ks.into()
    }

    async fn wasserstein(&self) -> ThresholdBand {
        self.0.wasserstein.into()
    }

    /// For the Jensen–Shannon distance `driftAnalysis` and monitors compute.
    async fn jensen_shannon(&self) -> ThresholdBand {
        self.0.jensen_shannon.into()
    }

    /// For the Hellinger distance `driftAnalysis` and monitors compute.
    async fn hellinger(&self) -> ThresholdBand {
        self.0.hellinger.into()
    }

    /// Whether the tenant set its own thresholds (false: the defaults apply).
    async fn custom(&self) -> bool {
        self.0.updated_at.is_some()
    }

    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.updated_at
    }

    /// The alert level `value` of `score` falls in.
    async fn level_of(
        &self,
        score: ThresholdScore,
        value: f64,
    ) -> async_graphql::Result<AlertLevel> {
        if !value.is_finite() {
            return Err(invalid("value", "`value` must be a finite number".into()).into());
        }
        Ok(band(&self.0, score).level(value).into())
    }
}

pub(super) fn band(thresholds: &DataThresholds, score: ThresholdScore) -> Band {
    thresholds.band(score.into())
}

impl From<ThresholdScore> for Method {
    fn from(score: ThresholdScore) -> Self {
        match score {
            ThresholdScore::Psi => Method::Psi,
            ThresholdScore::Ks => Method::Ks,
            ThresholdScore::Wasserstein => Method::Wasserstein,
            ThresholdScore::JensenShannon => Method::JensenShannon,
            ThresholdScore::Hellinger => Method::Hellinger,
        }
    }
}
