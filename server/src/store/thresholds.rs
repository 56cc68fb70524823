//! A tenant's drift alert thresholds, and the alert level a score falls in.

use chrono::{DateTime, Utc};
use entity::drift_threshold::Entity;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

use super::filter::invalid;
use super::tenant_rows;
use crate::db::ScopedTxn;
use crate::domain::drift::Method;
use crate::domain::AlertLevel;
use crate::error::ApiResult;

/// The scores at which a measurement is a `warning` (at or above) and a
/// `critical` drift (above).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    pub warning: f64,
    pub critical: f64,
}

impl Band {
    /// The alert level of `score`: `info` below the warning threshold,
    /// `warning` from it up to and including the critical one, `critical` above.
    pub fn level(&self, score: f64) -> AlertLevel {
        if score > self.critical {
            AlertLevel::Critical
        } else if score >= self.warning {
            AlertLevel::Warning
        } else {
            AlertLevel::Info
        }
    }

    fn check(self, name: &str) -> ApiResult<Self> {
        let ok = self.warning.is_finite()
            && self.critical.is_finite()
            && 0.0 <= self.warning
            && self.warning <= self.critical
            && self.critical < 10_000.0;
        if ok {
            Ok(self)
        } else {
            Err(invalid(
                name,
                format!("`{name}`: need 0 ≤ warning ≤ critical < 10000"),
            ))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftThresholds {
    pub psi: Band,
    pub ks: Band,
    pub wasserstein: Band,
    pub jensen_shannon: Band,
    pub hellinger: Band,
    /// When the tenant last set them; `None` while it uses the defaults.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for DriftThresholds {
    /// The conventions: PSI < 0.1 no drift, 0.1–0.25 moderate, > 0.25
    /// significant; KS, Wasserstein, Jensen–Shannon and Hellinger 0.1 / 0.2
    /// (0.1 is Evidently's drift threshold for the last three).
    fn default() -> Self {
        Self {
            psi: Band {
                warning: 0.1,
                critical: 0.25,
            },
            ks: Band {
                warning: 0.1,
                critical: 0.2,
            },
            wasserstein: Band {
                warning: 0.1,
                critical: 0.2,
            },
            jensen_shannon: Band {
                warning: 0.1,
                critical: 0.2,
            },
            hellinger: Band {
                warning: 0.1,
                critical: 0.2,
            },
            updated_at: None,
        }
    }
}

impl DriftThresholds {
    /// The band of `method`'s statistic.
    pub fn band(&self, method: Method) -> Band {
        match method {
            Method::Psi => self.psi,
            Method::Ks => self.ks,
            Method::Wasserstein => self.wasserstein,
            Method::JensenShannon => self.jensen_shannon,
            Method::Hellinger => self.hellinger,
        }
    }

    /// These thresholds with `method`'s band replaced by `band`, checked
    /// (0 ≤ warning ≤ critical < 10000).
    pub fn with(mut self, method: Method, band: Band) -> ApiResult<Self> {
        // Named as the API's input field.
        let field = match method {
            Method::Psi => "psi",
            Method::Ks => "ks",
            Method::Wasserstein => "wasserstein",
            Method::JensenShannon => "jensenShannon",
            Method::Hellinger => "hellinger",
        };
        let band = band.check(field)?;
        *match method {
            Method::Psi => &mut self.psi,
            Method::Ks => &mut self.ks,
            Method::Wasserstein => &mut self.wasserstein,
            Method::JensenShannon => &mut self.jensen_shannon,
            Method::Hellinger => &mut self.hellinger,
        } = band;
        Ok(self)
    }
}

fn float(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

pub(crate) fn decimal(value: f64) -> Decimal {
    Decimal::from_f64(value).unwrap_or_default().round_dp(6)
}

/// The transaction's tenant's thresholds (the defaults if it set none).
pub async fn for_tenant(txn: &ScopedTxn) -> ApiResult<DriftThresholds> {
    let row = tenant_rows::<Entity>(txn).one(txn.conn()).await?;
    Ok(
        row.map_or_else(DriftThresholds::default, |row| DriftThresholds {
            psi: Band {
                warning: float(row.psi_warning),
                critical: float(row.psi_critical),
            },
            ks: Band {
                warning: float(row.ks_warning),
                critical: float(row.ks_critical),
            },
            wasserstein: Band {
                warning: float(row.wasserstein_warning),
                critical: float(row.wasserstein_critical),
            },
            jensen_shannon: Band {
                warning: float(row.jensen_shannon_warning),
                critical: float(row.jensen_shannon_critical),
            },
            hellinger: Band {
                warning: float(row.hellinger_warning),
                critical: float(row.hellinger_critical),
            },
            updated_at: Some(row.updated_at),
        }),
    )
}

/// The caller's thresholds, in a transaction of their own.
pub async fn get(scoped: &crate::db::Scoped) -> ApiResult<DriftThresholds> {
    let txn = scoped.begin().await?;
    let thresholds = for_tenant(&txn).await?;
    txn.commit().await?;
    Ok(thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Vocabulary;

    #[test]
    fn psi_bands_follow_the_convention() {
        let psi = DriftThresholds::default().psi;
        assert_eq!(psi.level(0.05), AlertLevel::Info);
        assert_eq!(psi.level(0.1), AlertLevel::Warning);
        assert_eq!(psi.level(0.25), AlertLevel::Warning);
        assert_eq!(psi.level(0.2501), AlertLevel::Critical);
    }

    #[test]
    fn inverted_or_negative_bands_are_refused() {
        let ok = Band {
            warning: 0.1,
            critical: 0.2,
        };
        let inverted = Band {
            warning: 0.3,
            critical: 0.2,
        };
        let base = DriftThresholds::default();
        for method in Method::ALL.iter().copied() {
            assert_eq!(base.with(method, ok).unwrap().band(method), ok);
            assert!(base.with(method, inverted).is_err());
            let negative = Band {
                warning: -1.0,
                critical: 0.2,
            };
            assert!(base.with(method, negative).is_err());
        }
    }
}
