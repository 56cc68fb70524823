//! The feature store.

use entity::feature_set::{self, Column, Entity};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, QueryFilter, Select};

use super::filter::{spelled, Filters, NumberRange, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{list_page, tenant_rows, ListQuery};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::FeatureType;
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct FeatureSetFilter {
    pub feature_set_ids: Option<Vec<String>>,
    pub resource_ids: Option<Vec<String>>,
    pub resource_id_prefix: Option<String>,
    pub feature_types: Option<Vec<FeatureType>>,
    pub quality_score: Option<NumberRange>,
    pub completeness: Option<NumberRange>,
    pub computed_at: Option<TimeRange>,
    /// `Some(false)`: only sets not yet expired at `now`; `Some(true)`: only expired ones.
    pub expired: Option<bool>,
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureSetOrderField {
    ComputedAt,
    QualityScore,
    Completeness,
    FeatureSetId,
}

pub type FeatureSetQuery = ListQuery<FeatureSetFilter, FeatureSetOrderField>;

fn sort(order: OrderBy<FeatureSetOrderField>) -> Sort<Entity> {
    let column = match order.field {
        FeatureSetOrderField::ComputedAt => Column::ComputedAt,
        FeatureSetOrderField::QualityScore => Column::QualityScore,
        FeatureSetOrderField::Completeness => Column::Completeness,
        FeatureSetOrderField::FeatureSetId => Column::FeatureSetId,
    };
    Sort::by(column, order.direction.order(), Column::FeatureSetId)
}

fn base(txn: &ScopedTxn, filter: &FeatureSetFilter) -> ApiResult<Select<Entity>> {
    let mut filters = Filters::new(txn.backend())
        .one_of(
            Column::FeatureSetId,
            "featureSetIds",
            filter.feature_set_ids.clone(),
        )?
        .one_of(
            Column::ResourceId,
            "resourceIds",
            filter.resource_ids.clone(),
        )?
        .prefix(
            Column::ResourceId,
            "resourceIdPrefix",
            filter.resource_id_prefix.clone(),
        )?
        .one_of(
            Column::FeatureType,
            "featureTypes",
            spelled(&filter.feature_types),
        )?
        .number_range(Column::QualityScore, "qualityScore", filter.quality_score)?
        .number_range(Column::Completeness, "completeness", filter.completeness)?
        .time_range(Column::ComputedAt, "from", filter.computed_at)?;
    if let Some(expired) = filter.expired {
        let now = filter.now.unwrap_or_else(super::now);
        filters = filters.and(if expired {
            Condition::all().add(Column::ExpiresAt.lte(now))
        } else {
            Condition::any()
                .add(Column::ExpiresAt.is_null())
                .add(Column::ExpiresAt.gt(now))
        });
    }
    Ok(tenant_rows::<Entity>(txn).filter(filters.build()))
}

pub async fn list(scoped: &Scoped, query: &FeatureSetQuery) -> ApiResult<Page<feature_set::Model>> {
    list_page(scoped, query, base, sort).await
}
