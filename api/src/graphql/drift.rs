//! Drift metrics: how far inputs, concepts or predictions moved from baseline.

use async_graphql::{Context, Enum, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use entity::drift_metric;

use super::common::{
    connection, db_values, float, float_opt, list_query, page_complexity, time_range, vocab,
    vocab_opt, vocabulary, FloatRange, OrderDirection,
};
use super::explain::{self, ContributionOrder, FeatureContribution};
use super::loaders::{load_row, ModelById, RowKey};
use super::models::Model;
use super::request_context;
use crate::data::drift::{self as data, DriftOrderField as DataOrderField, DriftQuery};
use crate::error::ApiResult;

vocabulary!(
    /// What drifted.
    DriftType {
        Data => "data",
        Concept => "concept",
        Prediction => "prediction",
    }
);

vocabulary!(
    /// Severity of a drift alert.
    AlertLevel {
        Info => "info",
        Warning => "warning",
        Critical => "critical",
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

impl From<DriftMetricFilter> for data::DriftFilter {
    fn from(filter: DriftMetricFilter) -> Self {
        data::DriftFilter {
            metric_ids: filter.metric_ids,
            model_ids: filter.model_ids,
            resource_ids: filter.resource_ids,
            resource_id_prefix: filter.resource_id_prefix,
            drift_types: db_values(filter.drift_types),
            alert_levels: db_values(filter.alert_levels),
            alert_triggered: filter.alert_triggered,
            drift_score: filter.drift_score.map(Into::into),
            measured_at: time_range(filter.from, filter.to),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::data::drift::DriftOrderField")]
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

pub fn drift_query(
    ctx: &Context<'_>,
    filter: Option<DriftMetricFilter>,
    order_by: Option<DriftMetricOrder>,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> ApiResult<DriftQuery> {
    let order = order_by.unwrap_or_default();
    list_query(
        ctx,
        filter.unwrap_or_default().into(),
        DataOrderField::from(order.field),
        order.direction,
        first,
        after,
        last,
        before,
    )
}

/// One drift measurement.
pub struct DriftMetric(drift_metric::Model);

impl From<drift_metric::Model> for DriftMetric {
    fn from(row: drift_metric::Model) -> Self {
        Self(row)
    }
}

connection!(DriftMetricConnection, DriftMetricEdge, DriftMetric);

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
        let Some(model_id) = &self.0.model_id else {
            return Ok(None);
        };
        let rc = request_context(ctx)?;
        let key = ModelById(RowKey {
            tenant: rc.tenant(),
            id: model_id.clone(),
        });
        Ok(load_row(rc.loaders(), key).await?.map(Model::from))
    }
}

#[derive(Default)]
pub struct DriftQueryRoot;

#[Object]
impl DriftQueryRoot {
    /// Drift metrics, most recently measured first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
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
        let query = drift_query(ctx, filter, order_by, first, after, last, before)?;
        Ok(data::list(rc.scoped(), &query).await?.into())
    }
}
