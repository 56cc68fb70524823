//! Drift metrics: the root list and the drift metrics of models.

use std::collections::HashMap;

use entity::drift_metric::{self, Column, Entity};
use sea_orm::{QueryFilter, Select};

use super::filter::{spelled, Filters, NumberRange, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{child_pages, list_page, tenant_rows, ListQuery};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::{AlertLevel, DriftType};
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct DriftFilter {
    pub metric_ids: Option<Vec<String>>,
    pub model_ids: Option<Vec<String>>,
    pub resource_ids: Option<Vec<String>>,
    pub resource_id_prefix: Option<String>,
    pub drift_types: Option<Vec<DriftType>>,
    pub alert_levels: Option<Vec<AlertLevel>>,
    pub alert_triggered: Option<bool>,
    pub drift_score: Option<NumberRange>,
    pub measured_at: Option<TimeRange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriftOrderField {
    MeasuredAt,
    DriftScore,
    DriftVelocity,
    MetricId,
}

pub type DriftQuery = ListQuery<DriftFilter, DriftOrderField>;

fn sort(order: OrderBy<DriftOrderField>) -> Sort<Entity> {
    let column = match order.field {
        DriftOrderField::MeasuredAt => Column::MeasuredAt,
        DriftOrderField::DriftScore => Column::DriftScore,
        DriftOrderField::DriftVelocity => Column::DriftVelocity,
        DriftOrderField::MetricId => Column::MetricId,
    };
    Sort::by(column, order.direction.order(), Column::MetricId)
}

pub(super) fn base(txn: &ScopedTxn, filter: &DriftFilter) -> ApiResult<Select<Entity>> {
    let filters = Filters::new(txn.backend())
        .one_of(Column::MetricId, "metricIds", filter.metric_ids.clone())?
        .one_of(Column::ModelId, "modelIds", filter.model_ids.clone())?
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
            Column::DriftType,
            "driftTypes",
            spelled(&filter.drift_types),
        )?
        .one_of(
            Column::AlertLevel,
            "alertLevels",
            spelled(&filter.alert_levels),
        )?
        .equals(Column::AlertTriggered, filter.alert_triggered)
        .number_range(Column::DriftScore, "driftScore", filter.drift_score)?
        .time_range(Column::MeasuredAt, "from", filter.measured_at)?;
    Ok(tenant_rows::<Entity>(txn).filter(filters.build()))
}

pub async fn list(scoped: &Scoped, query: &DriftQuery) -> ApiResult<Page<drift_metric::Model>> {
    list_page(scoped, query, base, sort).await
}

/// One page of drift metrics per model.
pub async fn pages_by_model(
    scoped: &Scoped,
    model_ids: &[String],
    query: &DriftQuery,
) -> ApiResult<HashMap<String, Page<drift_metric::Model>>> {
    child_pages(scoped, query, base, sort, Column::ModelId, model_ids).await
}
