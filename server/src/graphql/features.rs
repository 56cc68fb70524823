//! The feature store.

use async_graphql::{Context, Enum, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use entity::feature_set;

use super::common::order_input;
use super::common::page;
use super::common::{
    domain_values, float_opt, list_query, node, page_complexity, time_range, vocab, vocabulary,
    FloatRange, OrderDirection,
};
use super::request_context;
use crate::identity::can;
use crate::store::features::{self as store, FeatureSetOrderField as DataOrderField};
use crate::write::features as write;

vocabulary!(
    /// What a feature set describes.
    FeatureType {
        Configuration,
        Temporal,
        Contextual,
        Policy,
    }
);

/// Which feature sets a list holds. All conditions must hold.
#[derive(InputObject, Default, Debug)]
pub struct FeatureSetFilter {
    pub feature_set_ids: Option<Vec<String>>,
    pub resource_ids: Option<Vec<String>>,
    /// Resource ids starting with this (case-sensitive).
    pub resource_id_prefix: Option<String>,
    pub feature_types: Option<Vec<FeatureType>>,
    pub quality_score: Option<FloatRange>,
    pub completeness: Option<FloatRange>,
    /// Computed at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Computed before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only sets past (true) or not past (false) their `expiresAt`.
    pub expired: Option<bool>,
}

impl From<FeatureSetFilter> for store::FeatureSetFilter {
    fn from(filter: FeatureSetFilter) -> Self {
        store::FeatureSetFilter {
            feature_set_ids: filter.feature_set_ids,
            resource_ids: filter.resource_ids,
            resource_id_prefix: filter.resource_id_prefix,
            feature_types: domain_values(filter.feature_types),
            quality_score: filter.quality_score.map(Into::into),
            completeness: filter.completeness.map(Into::into),
            computed_at: time_range(filter.from, filter.to),
            expired: filter.expired,
            now: None,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::store::features::FeatureSetOrderField")]
pub enum FeatureSetOrderField {
    #[default]
    ComputedAt,
    QualityScore,
    Completeness,
    FeatureSetId,
}

/// How a feature set list is ordered; ties are broken by `featureSetId`.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct FeatureSetOrder {
    #[graphql(default)]
    pub field: FeatureSetOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

order_input!(FeatureSetOrder => DataOrderField);

node!(
    /// Features computed for a resource.
    FeatureSet(feature_set::Model),
    FeatureSetConnection,
    FeatureSetEdge
);

/// Features computed for a resource.
#[Object]
impl FeatureSet {
    async fn feature_set_id(&self) -> &str {
        &self.0.feature_set_id
    }

    async fn resource_id(&self) -> &str {
        &self.0.resource_id
    }

    async fn feature_type(&self) -> async_graphql::Result<FeatureType> {
        vocab(&self.0.feature_type)
    }

    async fn features(&self) -> Json<&serde_json::Value> {
        Json(&self.0.features)
    }

    async fn feature_version(&self) -> Option<i32> {
        self.0.feature_version
    }

    async fn computed_at(&self) -> Option<DateTime<Utc>> {
        self.0.computed_at
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// 0–1.
    async fn quality_score(&self) -> Option<f64> {
        float_opt(&self.0.quality_score)
    }

    /// 0–1.
    async fn completeness(&self) -> Option<f64> {
        float_opt(&self.0.completeness)
    }
}

#[derive(Default)]
pub struct FeaturesQuery;

#[Object]
impl FeaturesQuery {
    /// Feature sets, most recently computed first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn feature_sets(
        &self,
        ctx: &Context<'_>,
        filter: Option<FeatureSetFilter>,
        order_by: Option<FeatureSetOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<FeatureSetConnection> {
        let rc = request_context(ctx)?;
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        Ok(store::list(rc.scoped(), &query).await?.into())
    }
}

/// A feature set as computed. The tenant comes from the credentials.
#[derive(InputObject, Debug)]
pub struct FeatureSetInput {
    /// The feature set's id, unique in the tenant.
    pub feature_set_id: String,
    pub resource_id: String,
    pub feature_type: FeatureType,
    /// An object.
    pub features: Json<serde_json::Value>,
    /// When the features were computed; the time of the write when absent.
    pub computed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// 0–1, stored to 2 decimal places.
    pub quality_score: Option<f64>,
    /// 0–1, stored to 2 decimal places.
    pub completeness: Option<f64>,
}

#[derive(Default)]
pub struct FeaturesMutation;

#[Object]
impl FeaturesMutation {
    /// Creates a feature set at `featureVersion` 1, or replaces its content
    /// and bumps `featureVersion` (`service`, `admin`). Content equal to the
    /// stored one changes nothing, so a retry never bumps twice.
    async fn upsert_feature_set(
        &self,
        ctx: &Context<'_>,
        input: FeatureSetInput,
    ) -> async_graphql::Result<FeatureSet> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::Ingest>()?;
        let input = write::FeatureSetInput {
            feature_set_id: input.feature_set_id,
            resource_id: input.resource_id,
            feature_type: input.feature_type.into(),
            features: input.features.0,
            computed_at: input.computed_at,
            expires_at: input.expires_at,
            quality_score: input.quality_score,
            completeness: input.completeness,
        };
        Ok(FeatureSet::from(write::upsert(&writer, input).await?))
    }
}
