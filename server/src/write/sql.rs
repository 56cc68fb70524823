//! SQL the writes share: references resolved inside the tenant, rows
//! locked for an update, changed columns written, multi-row inserts.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter,
};

use super::validate::refuse;
use super::Items;
use crate::db::{ScopedTxn, MAX_BOUND_PARAMETERS};
use crate::error::{ApiError, ApiResult, Refusal};
use crate::store::{keyed_rows, TenantOwned};

/// The tenant's models that the items of an input name, by id. `refs` are
/// `(item position, item id, model id)`; any model the tenant does not have
/// refuses the whole input with `NOT_FOUND`, one problem per item naming
/// it (named by `items`).
pub(crate) async fn referenced_models<'a>(
    txn: &ScopedTxn,
    items: Items<'_>,
    refs: impl Iterator<Item = (usize, &'a str, Option<&'a str>)> + Clone,
) -> ApiResult<HashMap<String, entity::model::Model>> {
    use entity::model;
    let model_ids: Vec<String> = refs
        .clone()
        .filter_map(|(_, _, model_id)| model_id.map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let models =
        keyed_rows::<model::Entity, String>(txn, model::Column::ModelId, &model_ids, |m| {
            m.model_id.clone()
        })
        .await?;
    let missing = refs
        .filter_map(|(index, id, model_id)| {
            let model_id = model_id?;
            (!models.contains_key(model_id)).then(|| {
                items.problem(
                    index,
                    id,
                    "modelId",
                    format!("model `{model_id}` not found"),
                )
            })
        })
        .collect();
    refuse(Refusal::NotFound, missing)?;
    Ok(models)
}

/// The one row of the tenant's `E` whose `column` is `key`, locked for this
/// transaction on PostgreSQL (SQLite's write transaction already excludes
/// other writers).
pub(crate) async fn locked_row<E>(
    txn: &ScopedTxn,
    column: E::Column,
    key: impl Into<sea_orm::Value>,
) -> ApiResult<Option<E::Model>>
where
    E: TenantOwned,
    E::Model: FromQueryResult + Sized + Send + Sync,
{
    use sea_orm::QuerySelect;
    Ok(crate::store::tenant_rows::<E>(txn)
        .filter(column.eq(key.into()))
        .lock_exclusive()
        .one(txn.conn())
        .await?)
}

/// Writes `changed`, a modified copy of the stored `row`: only the columns
/// that differ are updated. `row` must have been read in `txn` (through the
/// tenant's rows), which is what makes its primary key safe to update by.
pub(crate) async fn save_changes<E>(
    txn: &ScopedTxn,
    row: E::Model,
    changed: E::Model,
) -> ApiResult<E::Model>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + sea_orm::ActiveModelBehavior + Send,
{
    use sea_orm::Iterable;
    let stored = row.into_active_model();
    let mut active = changed.into_active_model();
    for column in E::Column::iter() {
        let value = active.get(column).into_value();
        if value != stored.get(column).into_value() {
            if let Some(value) = value {
                active.set(column, value);
            }
        }
    }
    active
        .update(txn.conn())
        .await
        .map_err(ApiError::from_write)
}

/// Inserts rows in multi-row statements sized to stay under both backends'
/// bound-parameter limits.
pub async fn insert_many<A>(txn: &ScopedTxn, rows: Vec<A>) -> Result<(), sea_orm::DbErr>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    use sea_orm::{EntityTrait, Iterable, QueryTrait};
    if rows.is_empty() {
        return Ok(());
    }
    let columns = <A::Entity as EntityTrait>::Column::iter().count().max(1);
    let chunk = (MAX_BOUND_PARAMETERS / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<A> = rows.by_ref().take(chunk).collect();
        let statement = <A::Entity as EntityTrait>::insert_many(batch).build(txn.backend());
        txn.execute(statement).await?;
    }
    Ok(())
}
