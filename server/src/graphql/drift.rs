//! Drift metrics: how far inputs, concepts or predictions moved from baseline.

use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::drift_metric;

use super::analytics::DriftThresholds;
use super::common::order_input;
use super::common::page;
use super::common::{
    domain_values, float, float_opt, list_query, node, page_complexity, time_range, vocab,
    vocab_opt, vocabulary, FloatRange, OrderDirection,
};
use super::explain::{self, ContributionOrder, FeatureContribution, FeatureValueInput};
use super::limits::WriteLimits;
use super::loaders::row_by_id;
use super::loaders::ModelById;
use super::models::Model;
use super::request_context;
use crate::domain::drift::Method;
use crate::identity::can;
use crate::store::drift::{self as store, DriftOrderField as DataOrderField};
use crate::store::thresholds::Band;
use crate::write::drift as write;

vocabulary!(
    /// What drifted.
    DriftType {
        Data,
        Concept,
        Prediction,
    }
);

vocabulary!(
    /// Severity of a drift alert.
    AlertLevel {
        Info,
        Warning,
        Critical,
    }
);

/// Which drift metrics a list holds. All conditions must hold.
#[derive(InputObject, Default, Debug)]
pub struct DriftMetricFilter {
    pub metric_ids: Option<Vec<String>>,
    pub model_ids: Option<Vec<String>>,
    pub resource_ids: Option<Vec<String>>,
    /// Resource ids starting with this (case-sensitive).
    pub resource_id_prefix: Option<String>,
    pub drift_types: Option<Vec<DriftType>>,
    pub alert_levels: Option<Vec<AlertLevel>>,
    pub alert_triggered: Option<bool>,
    pub drift_score: Option<FloatRange>,
    /// Measured at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Measured before this time.
    pub to: Option<DateTime<Utc>>,
}

impl From<DriftMetricFilter> for store::DriftFilter {
    fn from(filter: DriftMetricFilter) -> Self {
        store::DriftFilter {
            metric_ids: filter.metric_ids,
            model_ids: filter.model_ids,
            resource_ids: filter.resource_ids,
            resource_id_prefix: filter.resource_id_prefix,
            drift_types: domain_values(filter.drift_types),
            alert_levels: domain_values(filter.alert_levels),
            alert_triggered: filter.alert_triggered,
            drift_score: filter.drift_score.map(Into::into),
            measured_at: time_range(filter.from, filter.to),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::store::drift::DriftOrderField")]
pub enum DriftMetricOrderField {
    #[default]
    MeasuredAt,
    DriftScore,
    DriftVelocity,
    MetricId,
}

/// How a drift metric list is ordered; ties are broken by `metricId`.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct DriftMetricOrder {
    #[graphql(default)]
    pub field: DriftMetricOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

order_input!(DriftMetricOrder => DataOrderField);

node!(
    /// One drift measurement.
    DriftMetric(drift_metric::Model),
    DriftMetricConnection,
    DriftMetricEdge
);

/// One drift measurement.
#[Object]
impl DriftMetric {
    async fn metric_id(&self) -> &str {
        &self.0.metric_id
    }

    async fn resource_id(&self) -> Option<&str> {
        self.0.resource_id.as_deref()
    }

    async fn model_id(&self) -> Option<&str> {
        self.0.model_id.as_deref()
    }

    async fn drift_type(&self) -> async_graphql::Result<DriftType> {
        vocab(&self.0.drift_type)
    }

    async fn drift_score(&self) -> f64 {
        float(&self.0.drift_score)
    }

    async fn drift_velocity(&self) -> Option<f64> {
        float_opt(&self.0.drift_velocity)
    }

    /// VAE reconstruction error.
    async fn reconstruction_error(&self) -> Option<f64> {
        float_opt(&self.0.reconstruction_error)
    }

    /// Population stability index.
    async fn psi_score(&self) -> Option<f64> {
        float_opt(&self.0.psi_score)
    }

    /// Kolmogorov–Smirnov statistic.
    async fn ks_statistic(&self) -> Option<f64> {
        float_opt(&self.0.ks_statistic)
    }

    async fn wasserstein_distance(&self) -> Option<f64> {
        float_opt(&self.0.wasserstein_distance)
    }

    async fn alert_triggered(&self) -> Option<bool> {
        self.0.alert_triggered
    }

    async fn alert_level(&self) -> async_graphql::Result<Option<AlertLevel>> {
        vocab_opt(self.0.alert_level.as_deref())
    }

    async fn time_to_violation_hours(&self) -> Option<f64> {
        float_opt(&self.0.time_to_violation_hours)
    }

    async fn measured_at(&self) -> Option<DateTime<Utc>> {
        self.0.measured_at
    }

    async fn baseline_comparison(&self) -> Option<Json<&serde_json::Value>> {
        self.0.baseline_comparison.as_ref().map(Json)
    }

    /// Each feature's contribution to the drift, largest magnitude first
    /// unless ordered otherwise; `top` keeps the first n.
    async fn feature_contributions(
        &self,
        top: Option<i32>,
        #[graphql(default)] order_by: ContributionOrder,
    ) -> async_graphql::Result<Vec<FeatureContribution>> {
        Ok(explain::contributions(
            self.0.feature_contributions.as_ref(),
            top,
            order_by,
        )?)
    }

    /// The feature contributions exactly as stored.
    async fn feature_contributions_raw(&self) -> Option<Json<&serde_json::Value>> {
        self.0.feature_contributions.as_ref().map(Json)
    }

    /// The model this metric was measured for.
    async fn model(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Model>> {
        model_of(ctx, &self.0).await
    }
}

/// The model a drift metric was measured for, through the request's loader.
pub async fn model_of(
    ctx: &Context<'_>,
    metric: &drift_metric::Model,
) -> async_graphql::Result<Option<Model>> {
    let Some(model_id) = &metric.model_id else {
        return Ok(None);
    };
    row_by_id(ctx, ModelById, model_id.clone()).await
}

#[derive(Default)]
pub struct DriftQueryRoot;

#[Object]
impl DriftQueryRoot {
    /// Drift metrics, most recently measured first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn drift_metrics(
        &self,
        ctx: &Context<'_>,
        filter: Option<DriftMetricFilter>,
        order_by: Option<DriftMetricOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<DriftMetricConnection> {
        let rc = request_context(ctx)?;
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        Ok(store::list(rc.scoped(), &query).await?.into())
    }
}

/// One drift measurement to record. The tenant comes from the credentials.
#[derive(InputObject, Debug)]
pub struct DriftMetricInput {
    /// The client's id for the metric, unique in the tenant; recording it
    /// again with the same content is a harmless retry.
    pub metric_id: String,
    pub resource_id: Option<String>,
    /// A model of the caller's tenant, if the drift concerns one.
    pub model_id: Option<String>,
    pub drift_type: DriftType,
    pub drift_score: f64,
    pub drift_velocity: Option<f64>,
    /// VAE reconstruction error (≥ 0).
    pub reconstruction_error: Option<f64>,
    /// Population stability index (≥ 0).
    pub psi_score: Option<f64>,
    /// Kolmogorov–Smirnov statistic (0–1).
    pub ks_statistic: Option<f64>,
    /// ≥ 0.
    pub wasserstein_distance: Option<f64>,
    /// Derived when absent: true when the alert level is `WARNING` or `CRITICAL`.
    pub alert_triggered: Option<bool>,
    /// Derived when absent: the most severe level the PSI, KS and
    /// Wasserstein scores reach under the tenant's `driftThresholds`.
    pub alert_level: Option<AlertLevel>,
    pub time_to_violation_hours: Option<f64>,
    /// When it was measured; the time of recording when absent.
    pub measured_at: Option<DateTime<Utc>>,
    pub baseline_comparison: Option<Json<serde_json::Value>>,
    /// Each feature's contribution to the drift (distinct feature names).
    pub feature_contributions: Option<Vec<FeatureValueInput>>,
}

impl From<DriftMetricInput> for write::DriftMetricInput {
    fn from(input: DriftMetricInput) -> Self {
        write::DriftMetricInput {
            metric_id: input.metric_id,
            resource_id: input.resource_id,
            model_id: input.model_id,
            drift_type: input.drift_type.into(),
            drift_score: input.drift_score,
            drift_velocity: input.drift_velocity,
            reconstruction_error: input.reconstruction_error,
            psi_score: input.psi_score,
            ks_statistic: input.ks_statistic,
            wasserstein_distance: input.wasserstein_distance,
            alert_triggered: input.alert_triggered,
            alert_level: input.alert_level.map(Into::into),
            time_to_violation_hours: input.time_to_violation_hours,
            measured_at: input.measured_at,
            baseline_comparison: input.baseline_comparison.map(|j| j.0),
            feature_contributions: input
                .feature_contributions
                .map(|values| values.into_iter().map(Into::into).collect()),
        }
    }
}

/// The metrics of a `recordDriftMetrics` call as stored, in input order.
/// A retried batch answers exactly as the first attempt did.
#[derive(SimpleObject)]
pub struct RecordDriftMetricsPayload {
    /// Metrics in the batch (all of them are now recorded).
    pub count: usize,
    /// How many of them have an alert triggered.
    pub alerts_triggered: usize,
    pub metrics: Vec<DriftMetric>,
}

/// Scores at or above `warning` are a `WARNING` drift, above `critical` a `CRITICAL` one.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct ThresholdBandInput {
    pub warning: f64,
    pub critical: f64,
}

impl From<ThresholdBandInput> for Band {
    fn from(band: ThresholdBandInput) -> Self {
        Band {
            warning: band.warning,
            critical: band.critical,
        }
    }
}

/// New drift alert thresholds; bands left out keep their current values.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct DriftThresholdsInput {
    pub psi: Option<ThresholdBandInput>,
    pub ks: Option<ThresholdBandInput>,
    pub wasserstein: Option<ThresholdBandInput>,
    pub jensen_shannon: Option<ThresholdBandInput>,
    pub hellinger: Option<ThresholdBandInput>,
}

impl DriftThresholdsInput {
    /// The bands given, each with its statistic.
    fn changes(self) -> Vec<(Method, Band)> {
        [
            (Method::Psi, self.psi),
            (Method::Ks, self.ks),
            (Method::Wasserstein, self.wasserstein),
            (Method::JensenShannon, self.jensen_shannon),
            (Method::Hellinger, self.hellinger),
        ]
        .into_iter()
        .filter_map(|(method, band)| band.map(|band| (method, band.into())))
        .collect()
    }
}

#[derive(Default)]
pub struct DriftMutation;

#[Object]
impl DriftMutation {
    /// Records a batch of drift metrics (`service`, `admin`) in one
    /// transaction, all or nothing, with the same refusals and retry rule as
    /// `recordPredictions`. Alert fields left out are derived from the
    /// tenant's thresholds; each new metric with an alert triggered raises a
    /// drift-alert event.
    async fn record_drift_metrics(
        &self,
        ctx: &Context<'_>,
        input: Vec<DriftMetricInput>,
    ) -> async_graphql::Result<RecordDriftMetricsPayload> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::Ingest>()?;
        let max_batch = WriteLimits::of(ctx).max_batch;
        let inputs = input.into_iter().map(Into::into).collect();
        let recorded = write::record(&writer, inputs, max_batch).await?;
        let rows = recorded.metrics.rows;
        Ok(RecordDriftMetricsPayload {
            count: rows.len(),
            alerts_triggered: rows
                .iter()
                .filter(|row| row.alert_triggered == Some(true))
                .count(),
            metrics: rows.into_iter().map(DriftMetric::from).collect(),
        })
    }

    /// Changes the tenant's drift alert thresholds (`admin`); see `driftThresholds`.
    async fn set_drift_thresholds(
        &self,
        ctx: &Context<'_>,
        input: DriftThresholdsInput,
    ) -> async_graphql::Result<DriftThresholds> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageThresholds>()?;
        let stored = crate::write::thresholds::set(&writer, &input.changes()).await?;
        Ok(DriftThresholds::from(stored))
    }
}
