//! Training jobs: the root list and lookups.

use std::collections::HashMap;

use entity::training_job::{self, Column, Entity};
use sea_orm::{QueryFilter, Select};

use super::filter::{spelled, Filters, NumberRange, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{list_page, rows_by_key, tenant_rows, ListQuery};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::{JobStatus, TriggerReason};
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct TrainingJobFilter {
    pub job_ids: Option<Vec<String>>,
    pub statuses: Option<Vec<JobStatus>>,
    pub trigger_reasons: Option<Vec<TriggerReason>>,
    pub model_types: Option<Vec<String>>,
    pub created_by: Option<Vec<String>>,
    pub cost_estimate: Option<NumberRange>,
    pub created_at: Option<TimeRange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrainingJobOrderField {
    CreatedAt,
    StartedAt,
    CompletedAt,
    CostEstimate,
    JobId,
}

pub type TrainingJobQuery = ListQuery<TrainingJobFilter, TrainingJobOrderField>;

fn sort(order: OrderBy<TrainingJobOrderField>) -> Sort<Entity> {
    let column = match order.field {
        TrainingJobOrderField::CreatedAt => Column::CreatedAt,
        TrainingJobOrderField::StartedAt => Column::StartedAt,
        TrainingJobOrderField::CompletedAt => Column::CompletedAt,
        TrainingJobOrderField::CostEstimate => Column::CostEstimate,
        TrainingJobOrderField::JobId => Column::JobId,
    };
    Sort::by(column, order.direction.order(), Column::JobId)
}

fn base(txn: &ScopedTxn, filter: &TrainingJobFilter) -> ApiResult<Select<Entity>> {
    let filters = Filters::new(txn.backend())
        .one_of(Column::JobId, "jobIds", filter.job_ids.clone())?
        .one_of(Column::Status, "statuses", spelled(&filter.statuses))?
        .one_of(
            Column::TriggerReason,
            "triggerReasons",
            spelled(&filter.trigger_reasons),
        )?
        .one_of(Column::ModelType, "modelTypes", filter.model_types.clone())?
        .one_of(Column::CreatedBy, "createdBy", filter.created_by.clone())?
        .number_range(Column::CostEstimate, "costEstimate", filter.cost_estimate)?
        .time_range(Column::CreatedAt, "from", filter.created_at)?;
    Ok(tenant_rows::<Entity>(txn).filter(filters.build()))
}

pub async fn list(
    scoped: &Scoped,
    query: &TrainingJobQuery,
) -> ApiResult<Page<training_job::Model>> {
    list_page(scoped, query, base, sort).await
}

/// The tenant's jobs with these business ids.
pub async fn by_job_ids(
    scoped: &Scoped,
    job_ids: &[String],
) -> ApiResult<HashMap<String, training_job::Model>> {
    rows_by_key::<Entity, _>(scoped, Column::JobId, job_ids, |row| row.job_id.clone()).await
}

/// The tenant's jobs with these row keys (what `ml_models.training_job_id` holds).
pub async fn by_keys(
    scoped: &Scoped,
    keys: &[uuid::Uuid],
) -> ApiResult<HashMap<uuid::Uuid, training_job::Model>> {
    rows_by_key::<Entity, _>(scoped, Column::Id, keys, |row| row.id).await
}
