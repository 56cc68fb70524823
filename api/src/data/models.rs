//! The model registry: the root list, lookups by id, and the models a
//! training job produced.

use std::collections::HashMap;

use entity::model::{self, Column, Entity};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};

use super::filter::{Filters, OrderBy, TimeRange};
use super::page::{fetch_child_pages, fetch_page, Page, Sort};
use super::ListQuery;
use crate::db::{Scoped, ScopedTxn};
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct ModelFilter {
    pub model_ids: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    pub model_types: Option<Vec<String>>,
    pub versions: Option<Vec<String>>,
    pub created_at: Option<TimeRange>,
    pub deployed_at: Option<TimeRange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelOrderField {
    CreatedAt,
    UpdatedAt,
    DeployedAt,
    ModelId,
    ModelName,
}

pub type ModelQuery = ListQuery<ModelFilter, ModelOrderField>;

fn sort(order: OrderBy<ModelOrderField>) -> Sort<Entity> {
    let column = match order.field {
        ModelOrderField::CreatedAt => Column::CreatedAt,
        ModelOrderField::UpdatedAt => Column::UpdatedAt,
        ModelOrderField::DeployedAt => Column::DeployedAt,
        ModelOrderField::ModelId => Column::ModelId,
        ModelOrderField::ModelName => Column::ModelName,
    };
    Sort::by(column, order.direction.order(), Column::ModelId)
}

fn base(txn: &ScopedTxn, filter: &ModelFilter) -> ApiResult<Select<Entity>> {
    let filters = Filters::new(txn.backend())
        .one_of(Column::ModelId, "modelIds", filter.model_ids.clone())?
        .one_of(Column::Status, "statuses", filter.statuses.clone())?
        .one_of(Column::ModelType, "modelTypes", filter.model_types.clone())?
        .one_of(Column::Version, "versions", filter.versions.clone())?
        .time_range(Column::CreatedAt, "createdAt", filter.created_at)?
        .time_range(Column::DeployedAt, "deployedAt", filter.deployed_at)?;
    Ok(Entity::find()
        .filter(Column::TenantId.eq(txn.tenant()))
        .filter(filters.build()))
}

pub async fn list(scoped: &Scoped, query: &ModelQuery) -> ApiResult<Page<model::Model>> {
    let txn = scoped.begin().await?;
    let base = base(&txn, &query.filter)?;
    let page = fetch_page(&txn, base, &sort(query.order), &query.window, query.want).await?;
    txn.commit().await?;
    Ok(page)
}

/// The tenant's models with these ids; ids it does not have are absent.
pub async fn by_ids(
    scoped: &Scoped,
    model_ids: &[String],
) -> ApiResult<HashMap<String, model::Model>> {
    let txn = scoped.begin().await?;
    let rows = Entity::find()
        .filter(Column::TenantId.eq(txn.tenant()))
        .filter(Column::ModelId.is_in(model_ids.iter().cloned()))
        .all(txn.conn())
        .await?;
    txn.commit().await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.model_id.clone(), row))
        .collect())
}

/// One page of models per training job (by the job's row key).
pub async fn pages_by_training_job(
    scoped: &Scoped,
    job_keys: &[uuid::Uuid],
    query: &ModelQuery,
) -> ApiResult<HashMap<uuid::Uuid, Page<model::Model>>> {
    let txn = scoped.begin().await?;
    let base = base(&txn, &query.filter)?;
    let pages = fetch_child_pages(
        &txn,
        base,
        Column::TrainingJobId,
        job_keys,
        &sort(query.order),
        &query.window,
        query.want,
    )
    .await?;
    txn.commit().await?;
    Ok(pages)
}
