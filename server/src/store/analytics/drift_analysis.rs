//! The samples the drift engine compares: one model's predictions in a
//! reference and a current window (each optionally one model version), per
//! signal, as value counts. On PostgreSQL probability, confidence, risk
//! score and inference time come from the rollups' bins (constant in the
//! data size; see `domain::drift` for the bounds that implies); the SHAP
//! values of a feature are read from the rows, grouped by value, as every
//! signal is on SQLite. Everything in one transaction.

use entity::prediction::Column;
use sea_orm::QueryResult;

use super::shap::{entry_value, importance_in, write_feature_rows, ShapImportance};
use super::sql::Sql;
use super::{filtered_predictions, get_count, get_float, rollups};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::drift::{Cell, Scale};
use crate::domain::explanation::MAX_FEATURES;
use crate::error::ApiResult;
use crate::store::filter::invalid;
use crate::store::predictions::PredictionFilter;
use crate::store::thresholds::DriftThresholds;
use crate::store::TimeRange;
use rollups::distribution::RolledSignal;

/// Past this many distinct values in one sample, a scan is refused (the
/// answer would cost that much memory): narrow the windows.
pub const MAX_DISTINCT_VALUES: usize = 200_000;

/// What is compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    ViolationProbability,
    ConfidenceScore,
    RiskScore,
    InferenceTime,
    /// The SHAP values of one feature.
    Shap(String),
}

impl Signal {
    pub fn scale(&self) -> Scale {
        match self {
            Self::ViolationProbability | Self::ConfidenceScore | Self::RiskScore => Scale::Unit,
            Self::InferenceTime | Self::Shap(_) => Scale::Open,
        }
    }
}

/// Which predictions of the model form a sample.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub window: TimeRange,
    pub model_version: Option<String>,
}

pub struct DriftRequest {
    pub model_id: String,
    pub reference: Sample,
    pub current: Sample,
    pub signals: Vec<Signal>,
    /// Read the features' attributions (all of them) in both samples.
    pub attribution: bool,
}

/// A signal's two samples.
pub struct SignalSamples {
    pub signal: Signal,
    pub reference: Vec<Cell>,
    pub current: Vec<Cell>,
}

pub struct Attribution {
    pub reference: ShapImportance,
    pub current: ShapImportance,
}

pub struct DriftSamples {
    pub signals: Vec<SignalSamples>,
    pub attribution: Option<Attribution>,
    /// The tenant's drift thresholds, read in the same transaction.
    pub thresholds: DriftThresholds,
}

/// Reads what `request` compares, in one analytics transaction.
pub async fn samples(scoped: &Scoped, request: &DriftRequest) -> ApiResult<DriftSamples> {
    let txn = scoped.begin_analytics().await?;
    let samples = samples_in(&txn, request).await?;
    txn.commit().await?;
    Ok(samples)
}

fn filter(model_id: &str, sample: &Sample) -> PredictionFilter {
    PredictionFilter {
        model_ids: Some(vec![model_id.to_owned()]),
        model_versions: sample.model_version.clone().map(|v| vec![v]),
        predicted_at: Some(sample.window),
        ..Default::default()
    }
}

/// One sample of one signal of the model, in the caller's transaction.
pub async fn sample(
    txn: &ScopedTxn,
    model_id: &str,
    sample: &Sample,
    signal: &Signal,
) -> ApiResult<Vec<Cell>> {
    read(txn, &filter(model_id, sample), signal).await
}

/// [`samples`] in the caller's transaction.
pub async fn samples_in(txn: &ScopedTxn, request: &DriftRequest) -> ApiResult<DriftSamples> {
    let filters = [&request.reference, &request.current].map(|s| filter(&request.model_id, s));
    let mut signals = Vec::with_capacity(request.signals.len());
    for signal in &request.signals {
        let reference = read(txn, &filters[0], signal).await?;
        let current = read(txn, &filters[1], signal).await?;
        signals.push(SignalSamples {
            signal: signal.clone(),
            reference,
            current,
        });
    }
    let attribution = if request.attribution {
        Some(Attribution {
            reference: importance_in(txn, &filters[0], MAX_FEATURES).await?,
            current: importance_in(txn, &filters[1], MAX_FEATURES).await?,
        })
    } else {
        None
    };
    let thresholds = crate::store::thresholds::for_tenant(txn).await?;
    Ok(DriftSamples {
        signals,
        attribution,
        thresholds,
    })
}

/// One sample of one signal: from the rollups where they keep it, else
/// from the rows.
async fn read(txn: &ScopedTxn, filter: &PredictionFilter, signal: &Signal) -> ApiResult<Vec<Cell>> {
    if let Some(scope) = rollups::Scope::for_filter(txn, filter, rollups::Kept::Hours)? {
        match signal {
            Signal::ViolationProbability => {
                return rollups::distribution::unit_bins(txn, &scope, RolledSignal::Probability)
                    .await
            }
            Signal::ConfidenceScore => {
                return rollups::distribution::unit_bins(txn, &scope, RolledSignal::Confidence)
                    .await
            }
            Signal::RiskScore => {
                return rollups::distribution::unit_bins(txn, &scope, RolledSignal::Risk).await
            }
            Signal::InferenceTime => {
                return rollups::distribution::latency_buckets(txn, &scope).await
            }
            Signal::Shap(_) => {}
        }
    }
    scan(txn, filter, signal).await
}

/// The sample's distinct values with their counts, ascending.
async fn scan(txn: &ScopedTxn, filter: &PredictionFilter, signal: &Signal) -> ApiResult<Vec<Cell>> {
    let mut select = filtered_predictions(txn, filter)?;
    let mut sql = Sql::new(txn.backend());
    match signal {
        Signal::Shap(feature) => {
            select.column(Column::ShapValues);
            let value = entry_value(&sql);
            sql.push("SELECT ")
                .float(value)
                .push(" AS v, COUNT(*) AS n ");
            write_feature_rows(&mut sql, &select);
            sql.push(" AND e.key = ").bind(feature.clone());
        }
        _ => {
            let column = match signal {
                Signal::ViolationProbability => "violation_probability",
                Signal::ConfidenceScore => "confidence_score",
                Signal::RiskScore => {
                    select.column(Column::RiskScore);
                    "risk_score"
                }
                _ => "inference_time_ms",
            };
            let value = format!("f.{column}");
            // Risk scores have no CHECK: one outside [0, 1] is left out, as
            // the rollups leave it out.
            let kept = if *signal == Signal::RiskScore {
                format!("{value} BETWEEN 0 AND 1")
            } else {
                format!("{value} IS NOT NULL")
            };
            sql.push("SELECT ")
                .float(&value)
                .push(" AS v, COUNT(*) AS n FROM ")
                .subquery(&select)
                .push(&format!(" f WHERE {kept}"));
        }
    }
    sql.push(&format!(
        " GROUP BY 1 ORDER BY 1 LIMIT {}",
        MAX_DISTINCT_VALUES + 1
    ));
    let rows = sql.fetch(txn).await?;
    if rows.len() > MAX_DISTINCT_VALUES {
        return Err(invalid(
            "reference",
            format!(
                "a sample has more than {MAX_DISTINCT_VALUES} distinct values of the signal; narrow the windows"
            ),
        ));
    }
    rows.iter().map(cell).collect()
}

fn cell(row: &QueryResult) -> ApiResult<Cell> {
    Ok(Cell::point(
        get_float(row, "v")?.unwrap_or_default(),
        get_count(row, "n")?,
    ))
}
