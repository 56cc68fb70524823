//! Recording predictions (idempotent batches) and their remediation progress.

use chrono::{DateTime, Utc};
use entity::{prediction, StringList};
use serde_json::Value as Json;

use super::bulk::{Loaded, PredictionLoad};
use super::shape::{self, FeatureValue};
use super::validate::check_batch_size;
use super::{
    commit, locked_row, not_found, save_changes, DecimalSpec, Fingerprint, Idempotent, Items,
    NewRow, Writer,
};
use crate::domain::{RemediationStatus, RiskLevel, Vocabulary};
use crate::error::ApiResult;
use crate::identity::can;

/// The default cap on predictions per `recordPredictions` call.
pub const DEFAULT_MAX_BATCH: usize = 1_000;

/// The longest recommendation, and the most a prediction carries.
const MAX_RECOMMENDATION_CHARS: usize = 4_000;
const MAX_RECOMMENDATIONS: usize = 100;

/// One prediction as a service reports it. Vocabularies arrive as domain
/// enums.
#[derive(Clone, Debug)]
pub struct PredictionInput {
    pub prediction_id: String,
    pub resource_id: String,
    pub model_id: String,
    /// The model version that predicted; the model's registered version when absent.
    pub model_version: Option<String>,
    pub violation_probability: f64,
    pub time_to_violation_hours: Option<f64>,
    pub confidence_score: f64,
    pub confidence_interval_lower: Option<f64>,
    pub confidence_interval_upper: Option<f64>,
    pub risk_level: RiskLevel,
    pub risk_score: Option<f64>,
    pub impact_factors: Option<Json>,
    pub uncertainty_sources: Option<Json>,
    pub recommendations: Option<Vec<String>>,
    pub features_used: Option<Json>,
    pub shap_values: Option<Vec<FeatureValue>>,
    pub shap_base_value: Option<f64>,
    pub attention_weights: Option<Json>,
    pub inference_time_ms: f64,
    /// When the prediction was made; the time of recording when absent.
    pub prediction_timestamp: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub remediation_status: Option<RemediationStatus>,
    pub remediation_id: Option<uuid::Uuid>,
}

impl Idempotent for prediction::Entity {
    fn key_column() -> prediction::Column {
        prediction::Column::PredictionId
    }

    /// Everything the client reports. The remediation fields are left out:
    /// `updateRemediation` moves them on, and a late retry of the original
    /// batch must still be recognised as the same write.
    fn fingerprint(row: &prediction::Model) -> Fingerprint {
        Fingerprint::new()
            .text("resourceId", &row.resource_id)
            .text("modelId", &row.model_id)
            .text("modelVersion", &row.model_version)
            .decimal("violationProbability", &row.violation_probability, 4)
            .opt_decimal(
                "timeToViolationHours",
                row.time_to_violation_hours.as_ref(),
                2,
            )
            .decimal("confidenceScore", &row.confidence_score, 4)
            .opt_decimal(
                "confidenceIntervalLower",
                row.confidence_interval_lower.as_ref(),
                4,
            )
            .opt_decimal(
                "confidenceIntervalUpper",
                row.confidence_interval_upper.as_ref(),
                4,
            )
            .text("riskLevel", &row.risk_level)
            .opt_decimal("riskScore", row.risk_score.as_ref(), 4)
            .json("impactFactors", row.impact_factors.as_ref())
            .json("uncertaintySources", row.uncertainty_sources.as_ref())
            .value(
                "recommendations",
                row.recommendations
                    .as_ref()
                    .map_or(Json::Null, |list| list.0.clone().into()),
            )
            .json("featuresUsed", row.features_used.as_ref())
            .json("shapValues", row.shap_values.as_ref())
            .json("attentionWeights", row.attention_weights.as_ref())
            .decimal("inferenceTimeMs", &row.inference_time_ms, 2)
            .time("predictionTimestamp", row.prediction_timestamp)
            .time("expiresAt", row.expires_at)
    }
}

/// Records a batch of predictions in one transaction, all or nothing,
/// through the bulk engine ([`PredictionLoad`]) that `/ingest` uses too.
///
/// Refused as a whole, with every problem listed: more than `max_batch`
/// items or any invalid value (`BAD_USER_INPUT`); a model the tenant does
/// not have (`NOT_FOUND`); a prediction id already recorded with different
/// content (`CONFLICT`). Ids recorded before with the same content are a
/// retry: nothing is written twice and the stored rows are returned, so a
/// retried batch answers exactly as the first attempt did.
pub async fn record(
    writer: &Writer<can::Ingest>,
    inputs: Vec<PredictionInput>,
    max_batch: usize,
    keep_rows: bool,
) -> ApiResult<Loaded> {
    check_batch_size(inputs.len(), max_batch, "predictions")?;
    let mut load = PredictionLoad::new(writer, Items::List("input"));
    if keep_rows {
        load = load.keeping_rows();
    }
    for (index, input) in inputs.into_iter().enumerate() {
        load.push(index, input).await?;
    }
    load.finish().await
}

/// A validated prediction input with its values at column precision.
pub(super) struct Checked {
    input: PredictionInput,
    violation_probability: rust_decimal::Decimal,
    time_to_violation_hours: Option<rust_decimal::Decimal>,
    confidence_score: rust_decimal::Decimal,
    interval_lower: Option<rust_decimal::Decimal>,
    interval_upper: Option<rust_decimal::Decimal>,
    risk_score: Option<rust_decimal::Decimal>,
    inference_time_ms: rust_decimal::Decimal,
    shap_values: Option<Json>,
}

pub(super) fn check_prediction(check: &mut super::Check<'_>, input: PredictionInput) -> Checked {
    check.id("predictionId", &input.prediction_id);
    check.id("resourceId", &input.resource_id);
    check.id("modelId", &input.model_id);
    if let Some(version) = &input.model_version {
        check.required_text("modelVersion", version, 20);
    }
    let violation_probability = check.decimal(
        "violationProbability",
        input.violation_probability,
        DecimalSpec::UNIT,
    );
    let confidence_score =
        check.decimal("confidenceScore", input.confidence_score, DecimalSpec::UNIT);
    let interval_lower = check.opt_decimal(
        "confidenceInterval.lower",
        input.confidence_interval_lower,
        DecimalSpec::UNIT,
    );
    let interval_upper = check.opt_decimal(
        "confidenceInterval.upper",
        input.confidence_interval_upper,
        DecimalSpec::UNIT,
    );
    if let (Some(lower), Some(upper)) = (interval_lower, interval_upper) {
        if lower > upper {
            check.problem(
                "confidenceInterval",
                format!("lower ({lower}) must not be above upper ({upper})"),
            );
        }
    }
    let time_to_violation_hours = check.opt_decimal(
        "timeToViolationHours",
        input.time_to_violation_hours,
        DecimalSpec::AMOUNT,
    );
    let risk_score = check.opt_decimal("riskScore", input.risk_score, DecimalSpec::UNIT);
    let inference_time_ms = check.decimal(
        "inferenceTimeMs",
        input.inference_time_ms,
        DecimalSpec::AMOUNT,
    );
    if let Some(recommendations) = &input.recommendations {
        if recommendations.len() > MAX_RECOMMENDATIONS {
            check.problem(
                "recommendations",
                format!("at most {MAX_RECOMMENDATIONS} recommendations"),
            );
        }
        for (i, text) in recommendations.iter().enumerate() {
            check.required_text(
                &format!("recommendations[{i}]"),
                text,
                MAX_RECOMMENDATION_CHARS,
            );
        }
    }
    let shap_values = match (&input.shap_values, input.shap_base_value) {
        (None, None) => None,
        (values, base) => Some(shape::contributions(
            check,
            "shapValues",
            values.as_deref().unwrap_or_default(),
            base.map(|b| ("shapBaseValue", b)),
        )),
    };
    if let Some(weights) = &input.attention_weights {
        shape::check_weights(check, "attentionWeights", weights);
    }
    if let (Some(at), Some(expires)) = (input.prediction_timestamp, input.expires_at) {
        if expires <= at {
            check.problem("expiresAt", "must be after predictionTimestamp");
        }
    }
    Checked {
        input,
        violation_probability,
        time_to_violation_hours,
        confidence_score,
        interval_lower,
        interval_upper,
        risk_score,
        inference_time_ms,
        shap_values,
    }
}

impl Checked {
    /// The row to store, with the server's defaults: the time of recording,
    /// and the model's `registered_version` (empty when not known yet).
    pub(super) fn into_row(
        self,
        tenant: &str,
        registered_version: Option<&str>,
        recorded_at: DateTime<Utc>,
    ) -> NewRow<prediction::Model> {
        let mut defaulted = Vec::new();
        let input = self.input;
        let model_version = input.model_version.unwrap_or_else(|| {
            defaulted.push("modelVersion");
            registered_version.unwrap_or_default().to_owned()
        });
        let prediction_timestamp = input.prediction_timestamp.unwrap_or_else(|| {
            defaulted.push("predictionTimestamp");
            recorded_at
        });
        NewRow {
            row: prediction::Model {
                id: uuid::Uuid::new_v4(),
                prediction_id: input.prediction_id,
                resource_id: input.resource_id,
                tenant_id: tenant.to_owned(),
                model_id: input.model_id,
                violation_probability: self.violation_probability,
                time_to_violation_hours: self.time_to_violation_hours,
                confidence_score: self.confidence_score,
                confidence_interval_lower: self.interval_lower,
                confidence_interval_upper: self.interval_upper,
                risk_level: input.risk_level.as_db().to_owned(),
                risk_score: self.risk_score,
                impact_factors: input.impact_factors,
                uncertainty_sources: input.uncertainty_sources,
                recommendations: input.recommendations.map(StringList),
                features_used: input.features_used,
                shap_values: self.shap_values,
                attention_weights: input.attention_weights,
                inference_time_ms: self.inference_time_ms,
                model_version,
                prediction_timestamp: Some(crate::store::truncate_to_micros(prediction_timestamp)),
                expires_at: input.expires_at.map(crate::store::truncate_to_micros),
                remediation_status: input.remediation_status.map(|s| s.as_db().to_owned()),
                remediation_id: input.remediation_id,
            },
            defaulted,
        }
    }
}

/// Sets where the fix of a predicted violation stands. Setting what is
/// already set changes nothing, so a retry is harmless.
pub async fn update_remediation(
    writer: &Writer<can::Ingest>,
    prediction_id: &str,
    status: RemediationStatus,
    remediation_id: Option<uuid::Uuid>,
) -> ApiResult<prediction::Model> {
    let status = status.as_db();
    let txn = writer.begin().await?;
    let row =
        locked_row::<prediction::Entity>(&txn, prediction::Column::PredictionId, prediction_id)
            .await?
            .ok_or_else(|| not_found("predictionId", "prediction", prediction_id))?;
    if row.remediation_status.as_deref() == Some(status) && row.remediation_id == remediation_id {
        return Ok(row);
    }
    let mut changed = row.clone();
    changed.remediation_status = Some(status.to_owned());
    changed.remediation_id = remediation_id;
    let row = save_changes::<prediction::Entity>(&txn, row, changed).await?;
    commit(txn).await?;
    Ok(row)
}
