//! The model registry: the root list, lookups by id, and the models a
//! training job produced.

use std::collections::HashMap;

use entity::model::{self, Column, Entity};
use sea_orm::sea_query::Expr;
use sea_orm::{
    DbBackend, EntityName, EntityTrait, IdenStatic, Iterable, QueryFilter, QuerySelect, Select,
};

use super::filter::{spelled, Filters, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{child_pages, list_page, rows_by_key_reading, tenant_rows, ListQuery};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::ModelStatus;
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct ModelFilter {
    pub model_ids: Option<Vec<String>>,
    pub statuses: Option<Vec<ModelStatus>>,
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

/// The tenant's models, read without the encrypted model itself: no answer
/// shows it and it can be megabytes. An empty value stands in for one, so
/// `hasEncryptedModel` still tells.
pub(super) fn rows(txn: &ScopedTxn) -> Select<Entity> {
    without_blob(tenant_rows::<Entity>(txn), txn.backend())
}

fn without_blob(select: Select<Entity>, backend: DbBackend) -> Select<Entity> {
    joined_columns(select.select_only(), "", backend)
}

/// An empty value where the model has an encrypted model, else NULL.
fn blob_placeholder(backend: DbBackend) -> String {
    let placeholder = match backend {
        DbBackend::Postgres => "'\\x'::bytea",
        _ => "X''",
    };
    format!(
        "CASE WHEN \"{}\".\"{}\" IS NULL THEN NULL ELSE {placeholder} END",
        Entity.table_name(),
        Column::EncryptedModel.as_str()
    )
}

/// Adds a model's columns to `select` (the models' own rows, or another
/// table's with the models joined in), each named `{prefix}{column}` and
/// without the encrypted model, as [`rows`] reads them.
pub(super) fn joined_columns<E: EntityTrait>(
    mut select: Select<E>,
    prefix: &str,
    backend: DbBackend,
) -> Select<E> {
    for column in Column::iter() {
        let alias = format!("{prefix}{}", column.as_str());
        select = match column {
            Column::EncryptedModel => {
                select.column_as(Expr::cust(blob_placeholder(backend)), alias)
            }
            other => select.column_as(Expr::col((Entity, other)), alias),
        };
    }
    select
}

pub(super) fn base(txn: &ScopedTxn, filter: &ModelFilter) -> ApiResult<Select<Entity>> {
    let filters = Filters::new(txn.backend())
        .one_of(Column::ModelId, "modelIds", filter.model_ids.clone())?
        .one_of(Column::Status, "statuses", spelled(&filter.statuses))?
        .one_of(Column::ModelType, "modelTypes", filter.model_types.clone())?
        .one_of(Column::Version, "versions", filter.versions.clone())?
        .time_range(Column::CreatedAt, "createdAt", filter.created_at)?
        .time_range(Column::DeployedAt, "deployedAt", filter.deployed_at)?;
    Ok(rows(txn).filter(filters.build()))
}

pub async fn list(scoped: &Scoped, query: &ModelQuery) -> ApiResult<Page<model::Model>> {
    list_page(scoped, query, base, sort).await
}

/// The tenant's models with these ids; ids it does not have are absent.
pub async fn by_ids(
    scoped: &Scoped,
    model_ids: &[String],
) -> ApiResult<HashMap<String, model::Model>> {
    rows_by_key_reading::<Entity, _>(
        scoped,
        Column::ModelId,
        model_ids,
        |row| row.model_id.clone(),
        without_blob,
    )
    .await
}

/// One page of models per training job (by the job's row key).
pub async fn pages_by_training_job(
    scoped: &Scoped,
    job_keys: &[uuid::Uuid],
    query: &ModelQuery,
) -> ApiResult<HashMap<uuid::Uuid, Page<model::Model>>> {
    child_pages(scoped, query, base, sort, Column::TrainingJobId, job_keys).await
}
