//! Predictions: what a model said about a resource, and why.

use async_graphql::{Context, Enum, InputObject, Json, Lookahead, Object, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use entity::prediction;

use super::common::order_input;
use super::common::page;
use super::common::{
    domain_values, float, float_opt, list_query, node, page_complexity, vocab, vocab_opt,
    vocabulary, FloatRange, OrderDirection,
};
use super::explain::{
    self, AttentionWeights, ContributionOrder, FeatureContribution, FeatureValueInput,
};
use super::feedback::{FeedbackConnection, FeedbackFilter, FeedbackOrder};
use super::limits::WriteLimits;
use super::loaders::child_page;
use super::loaders::row_by_id;
use super::loaders::{FeedbackOfPrediction, ModelById, PredictionById};
use super::models::Model;
use super::request_context;
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::predictions::{self as store, PredictionOrderField as DataOrderField};
use crate::store::Columns;
use crate::write::predictions as write;

vocabulary!(
    /// How bad a predicted violation would be.
    RiskLevel {
        Critical,
        High,
        Medium,
        Low,
    }
);

vocabulary!(
    /// Where the fix for a predicted violation stands.
    RemediationStatus {
        Pending,
        InProgress,
        Completed,
        Failed,
    }
);

/// Which predictions a list holds. All conditions must hold.
#[derive(InputObject, Default, Debug)]
pub struct PredictionFilter {
    pub prediction_ids: Option<Vec<String>>,
    pub model_ids: Option<Vec<String>>,
    pub resource_ids: Option<Vec<String>>,
    /// Resource ids starting with this (case-sensitive).
    pub resource_id_prefix: Option<String>,
    pub risk_levels: Option<Vec<RiskLevel>>,
    pub remediation_statuses: Option<Vec<RemediationStatus>>,
    pub model_versions: Option<Vec<String>>,
    /// Shorthand for `violationProbability: {min: …}`.
    pub min_probability: Option<f64>,
    pub violation_probability: Option<FloatRange>,
    pub confidence_score: Option<FloatRange>,
    pub risk_score: Option<FloatRange>,
    pub time_to_violation_hours: Option<FloatRange>,
    /// Predicted at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Predicted before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only predictions with (true) or without (false) feedback.
    pub has_feedback: Option<bool>,
}

impl TryFrom<PredictionFilter> for store::PredictionFilter {
    type Error = ApiError;

    fn try_from(filter: PredictionFilter) -> ApiResult<Self> {
        filter.into_data()
    }
}

impl PredictionFilter {
    pub(super) fn into_data(self) -> ApiResult<store::PredictionFilter> {
        let mut probability = self.violation_probability.map(Into::into);
        if let Some(min) = self.min_probability {
            let range: &mut crate::store::NumberRange =
                probability.get_or_insert_with(Default::default);
            range.min = Some(range.min.map_or(min, |m: f64| m.max(min)));
        }
        Ok(store::PredictionFilter {
            prediction_ids: self.prediction_ids,
            model_ids: self.model_ids,
            resource_ids: self.resource_ids,
            resource_id_prefix: self.resource_id_prefix,
            risk_levels: domain_values(self.risk_levels),
            remediation_statuses: domain_values(self.remediation_statuses),
            model_versions: self.model_versions,
            violation_probability: probability,
            confidence_score: self.confidence_score.map(Into::into),
            risk_score: self.risk_score.map(Into::into),
            time_to_violation_hours: self.time_to_violation_hours.map(Into::into),
            predicted_at: super::common::time_range(self.from, self.to),
            has_feedback: self.has_feedback,
        })
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::store::predictions::PredictionOrderField")]
pub enum PredictionOrderField {
    #[default]
    PredictionTimestamp,
    ViolationProbability,
    RiskScore,
    ConfidenceScore,
    TimeToViolationHours,
    InferenceTimeMs,
    PredictionId,
}

/// How a prediction list is ordered; ties are broken by `predictionId`.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct PredictionOrder {
    #[graphql(default)]
    pub field: PredictionOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

order_input!(PredictionOrder => DataOrderField);

/// A lower and upper bound on the violation probability.
#[derive(async_graphql::SimpleObject)]
pub struct ConfidenceInterval {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// The optional columns the selection of a `Prediction` reads: each field
/// below built from one of them (see the resolvers) names it here.
pub(super) fn columns_read(look: &Lookahead<'_>) -> Columns {
    use store::optional::*;
    [
        ("impactFactors", IMPACT_FACTORS),
        ("uncertaintySources", UNCERTAINTY_SOURCES),
        ("recommendations", RECOMMENDATIONS),
        ("featuresUsed", FEATURES_USED),
        ("shapValues", SHAP_VALUES),
        ("shapBaseValue", SHAP_VALUES),
        ("attentionWeights", ATTENTION_WEIGHTS),
        // Read by id, the model is joined in (lists load it on their own).
        ("model", WITH_MODEL),
    ]
    .into_iter()
    .filter(|(field, _)| look.field(field).exists())
    .fold(Columns::NONE, |columns, (_, bit)| columns.with(bit))
}

/// The optional columns a connection of predictions reads (its nodes').
pub(super) fn connection_columns(look: &Lookahead<'_>) -> Columns {
    columns_read(&look.field("nodes")).union(columns_read(&look.field("edges").field("node")))
}

/// A prediction by id through the request's loader, reading the columns
/// the field's selection needs.
pub(super) async fn prediction_by_id(
    ctx: &Context<'_>,
    prediction_id: String,
) -> async_graphql::Result<Option<Prediction>> {
    let columns = columns_read(&ctx.look_ahead());
    row_by_id(ctx, |key| PredictionById(key, columns), prediction_id).await
}

node!(
    /// A model's prediction that a resource will violate a policy, with its explanation.
    Prediction(prediction::Model),
    PredictionConnection,
    PredictionEdge
);

/// A model's prediction that a resource will violate a policy, with its explanation.
#[Object]
impl Prediction {
    async fn prediction_id(&self) -> &str {
        &self.0.prediction_id
    }

    async fn resource_id(&self) -> &str {
        &self.0.resource_id
    }

    async fn model_id(&self) -> &str {
        &self.0.model_id
    }

    /// Probability (0–1) that the resource violates the policy.
    async fn violation_probability(&self) -> f64 {
        float(&self.0.violation_probability)
    }

    /// Hours until the predicted violation.
    async fn time_to_violation_hours(&self) -> Option<f64> {
        float_opt(&self.0.time_to_violation_hours)
    }

    async fn confidence_score(&self) -> f64 {
        float(&self.0.confidence_score)
    }

    async fn confidence_interval(&self) -> Option<ConfidenceInterval> {
        let lower = float_opt(&self.0.confidence_interval_lower);
        let upper = float_opt(&self.0.confidence_interval_upper);
        (lower.is_some() || upper.is_some()).then_some(ConfidenceInterval { lower, upper })
    }

    async fn risk_level(&self) -> async_graphql::Result<RiskLevel> {
        vocab(&self.0.risk_level)
    }

    async fn risk_score(&self) -> Option<f64> {
        float_opt(&self.0.risk_score)
    }

    async fn impact_factors(&self) -> Option<Json<&serde_json::Value>> {
        self.0.impact_factors.as_ref().map(Json)
    }

    async fn uncertainty_sources(&self) -> Option<Json<&serde_json::Value>> {
        self.0.uncertainty_sources.as_ref().map(Json)
    }

    async fn recommendations(&self) -> Vec<&str> {
        self.0
            .recommendations
            .as_ref()
            .map(|list| list.0.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    async fn features_used(&self) -> Option<Json<&serde_json::Value>> {
        self.0.features_used.as_ref().map(Json)
    }

    /// Each feature's SHAP contribution, largest magnitude first unless
    /// ordered otherwise; `top` keeps the first n.
    async fn shap_values(
        &self,
        top: Option<i32>,
        #[graphql(default)] order_by: ContributionOrder,
    ) -> async_graphql::Result<Vec<FeatureContribution>> {
        Ok(explain::contributions(
            self.0.shap_values.as_ref(),
            top,
            order_by,
        )?)
    }

    /// SHAP's base (expected) value, if stored with the contributions.
    async fn shap_base_value(&self) -> Option<f64> {
        explain::base_value(self.0.shap_values.as_ref())
    }

    async fn attention_weights(&self) -> Option<AttentionWeights> {
        self.0.attention_weights.as_ref().map(explain::attention)
    }

    async fn inference_time_ms(&self) -> f64 {
        float(&self.0.inference_time_ms)
    }

    async fn model_version(&self) -> &str {
        &self.0.model_version
    }

    async fn prediction_timestamp(&self) -> Option<DateTime<Utc>> {
        self.0.prediction_timestamp
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    async fn remediation_status(&self) -> async_graphql::Result<Option<RemediationStatus>> {
        vocab_opt(self.0.remediation_status.as_deref())
    }

    /// The remediation (in the remediation system) handling this prediction.
    async fn remediation_id(&self) -> Option<uuid::Uuid> {
        self.0.remediation_id
    }

    /// The model that made this prediction.
    async fn model(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Model>> {
        row_by_id(ctx, ModelById, self.0.model_id.clone()).await
    }

    /// Human feedback on this prediction.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn feedback(
        &self,
        ctx: &Context<'_>,
        filter: Option<FeedbackFilter>,
        order_by: Option<FeedbackOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<FeedbackConnection> {
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        child_page(
            ctx,
            FeedbackOfPrediction,
            self.0.prediction_id.clone(),
            query,
        )
        .await
    }
}

#[derive(Default)]
pub struct PredictionsQuery;

#[Object]
impl PredictionsQuery {
    /// One prediction by id; null if the tenant has none with this id.
    async fn prediction(
        &self,
        ctx: &Context<'_>,
        prediction_id: String,
    ) -> async_graphql::Result<Option<Prediction>> {
        prediction_by_id(ctx, prediction_id).await
    }

    /// Predictions, newest first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn predictions(
        &self,
        ctx: &Context<'_>,
        filter: Option<PredictionFilter>,
        order_by: Option<PredictionOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<PredictionConnection> {
        let rc = request_context(ctx)?;
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?
            .with_columns(connection_columns(&ctx.look_ahead()));
        Ok(store::list(rc.scoped(), &query).await?.into())
    }

    /// Predictions of the last `hours` hours (1–8760), newest first unless
    /// ordered otherwise; select `model { modelName modelType metrics { accuracy } }`
    /// for what `v_recent_predictions` shows.
    // The connection arguments plus the window.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn recent_predictions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 24)] hours: i32,
        filter: Option<PredictionFilter>,
        order_by: Option<PredictionOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<PredictionConnection> {
        if !(1..=8760).contains(&hours) {
            return Err(ApiError::BadUserInput {
                message: format!("`hours` must be between 1 and 8760 (got {hours})"),
                field: Some("hours".into()),
            }
            .into());
        }
        let rc = request_context(ctx)?;
        let since = crate::store::now() - Duration::hours(hours.into());
        let mut filter = filter.unwrap_or_default();
        filter.from = Some(filter.from.map_or(since, |from| from.max(since)));
        let query = list_query(
            ctx,
            Some(filter),
            order_by,
            page(first, after, last, before),
        )?
        .with_columns(connection_columns(&ctx.look_ahead()));
        Ok(store::list(rc.scoped(), &query).await?.into())
    }
}

/// A confidence interval around the violation probability.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct ConfidenceIntervalInput {
    pub lower: f64,
    pub upper: f64,
}

/// One prediction to record. The tenant comes from the credentials.
#[derive(InputObject, Debug)]
pub struct PredictionInput {
    /// The client's id for the prediction, unique in the tenant; recording
    /// it again with the same content is a harmless retry.
    pub prediction_id: String,
    pub resource_id: String,
    /// A model of the caller's tenant.
    pub model_id: String,
    /// The model version that predicted; the model's registered version when absent.
    pub model_version: Option<String>,
    /// 0–1, stored to 4 decimal places.
    pub violation_probability: f64,
    /// Hours until the predicted violation (≥ 0).
    pub time_to_violation_hours: Option<f64>,
    /// 0–1, stored to 4 decimal places.
    pub confidence_score: f64,
    /// Both ends 0–1, lower ≤ upper.
    pub confidence_interval: Option<ConfidenceIntervalInput>,
    pub risk_level: RiskLevel,
    /// 0–1.
    pub risk_score: Option<f64>,
    pub impact_factors: Option<Json<serde_json::Value>>,
    pub uncertainty_sources: Option<Json<serde_json::Value>>,
    pub recommendations: Option<Vec<String>>,
    pub features_used: Option<Json<serde_json::Value>>,
    /// Each feature's signed SHAP contribution (distinct feature names).
    pub shap_values: Option<Vec<FeatureValueInput>>,
    /// SHAP's base (expected) value.
    pub shap_base_value: Option<f64>,
    /// Attention weights: an array or object of numbers, at most four levels
    /// deep (e.g. heads × time steps).
    pub attention_weights: Option<Json<serde_json::Value>>,
    /// Milliseconds the inference took (≥ 0).
    pub inference_time_ms: f64,
    /// When the prediction was made; the time of recording when absent.
    pub prediction_timestamp: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub remediation_status: Option<RemediationStatus>,
    pub remediation_id: Option<uuid::Uuid>,
}

impl From<PredictionInput> for write::PredictionInput {
    fn from(input: PredictionInput) -> Self {
        write::PredictionInput {
            prediction_id: input.prediction_id,
            resource_id: input.resource_id,
            model_id: input.model_id,
            model_version: input.model_version,
            violation_probability: input.violation_probability,
            time_to_violation_hours: input.time_to_violation_hours,
            confidence_score: input.confidence_score,
            confidence_interval_lower: input.confidence_interval.map(|i| i.lower),
            confidence_interval_upper: input.confidence_interval.map(|i| i.upper),
            risk_level: input.risk_level.into(),
            risk_score: input.risk_score,
            impact_factors: input.impact_factors.map(|j| j.0),
            uncertainty_sources: input.uncertainty_sources.map(|j| j.0),
            recommendations: input.recommendations,
            features_used: input.features_used.map(|j| j.0),
            shap_values: input
                .shap_values
                .map(|values| values.into_iter().map(Into::into).collect()),
            shap_base_value: input.shap_base_value,
            attention_weights: input.attention_weights.map(|j| j.0),
            inference_time_ms: input.inference_time_ms,
            prediction_timestamp: input.prediction_timestamp,
            expires_at: input.expires_at,
            remediation_status: input.remediation_status.map(Into::into),
            remediation_id: input.remediation_id,
        }
    }
}

/// The predictions of a `recordPredictions` call as stored, in input order.
/// A retried batch answers exactly as the first attempt did.
#[derive(SimpleObject)]
pub struct RecordPredictionsPayload {
    /// Predictions in the batch (all of them are now recorded).
    pub count: usize,
    pub predictions: Vec<Prediction>,
}

#[derive(Default)]
pub struct PredictionsMutation;

#[Object]
impl PredictionsMutation {
    /// Records a batch of predictions (`service`, `admin`) in one transaction:
    /// all or nothing. Invalid items refuse the batch with `BAD_USER_INPUT`
    /// listing every problem (`extensions.problems`: index, id, field,
    /// message); unknown models with `NOT_FOUND`; a prediction id recorded
    /// before with other content with `CONFLICT`. A prediction id recorded
    /// before with the same content is a retry and is not written again.
    async fn record_predictions(
        &self,
        ctx: &Context<'_>,
        input: Vec<PredictionInput>,
    ) -> async_graphql::Result<RecordPredictionsPayload> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::Ingest>()?;
        let max_batch = WriteLimits::of(ctx).max_batch;
        let inputs = input.into_iter().map(Into::into).collect();
        // The stored rows are kept (and, for retries, read back) only for
        // a selection that asks for them: most services ask for the count.
        let keep_rows = ctx.look_ahead().field("predictions").exists();
        let loaded = write::record(&writer, inputs, max_batch, keep_rows).await?;
        Ok(RecordPredictionsPayload {
            count: loaded.items,
            predictions: loaded
                .rows
                .unwrap_or_default()
                .into_iter()
                .map(Prediction::from)
                .collect(),
        })
    }

    /// Sets where the fix of a predicted violation stands (`service`,
    /// `admin`); `NOT_FOUND` for a prediction the tenant does not have.
    async fn update_remediation(
        &self,
        ctx: &Context<'_>,
        prediction_id: String,
        status: RemediationStatus,
        #[graphql(desc = "The remediation (in the remediation system) handling it.")]
        remediation_id: Option<uuid::Uuid>,
    ) -> async_graphql::Result<Prediction> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::Ingest>()?;
        let row = write::update_remediation(&writer, &prediction_id, status.into(), remediation_id)
            .await?;
        Ok(Prediction::from(row))
    }
}
