//! Configuration snapshots: the current configuration of each resource.

use entity::configuration::{self, Column, Entity};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde_json::Value as Json;

use super::{commit, save_changes, Checker, Fingerprint, Writer};
use crate::db::ScopedTxn;
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::{now, tenant_rows};

/// A resource's configuration as a service observed it.
#[derive(Clone, Debug)]
pub struct ConfigurationInput {
    pub resource_id: String,
    pub configuration: Json,
    pub features: Option<Json>,
    pub policy_context: Option<Json>,
    pub baseline_config: Option<Json>,
}

fn fingerprint(row: &configuration::Model) -> Fingerprint {
    Fingerprint::new()
        .json("configuration", Some(&row.configuration))
        .json("features", row.features.as_ref())
        .json("policyContext", row.policy_context.as_ref())
        .json("baselineConfig", row.baseline_config.as_ref())
}

/// Serialises upserts of one resource of one tenant until commit. PostgreSQL
/// cannot lock a row that does not exist yet, so the first snapshot of a
/// resource takes a transaction-scoped advisory lock on its name; SQLite's
/// write transactions already run one at a time.
async fn lock_resource(txn: &ScopedTxn, resource_id: &str) -> ApiResult<()> {
    if txn.backend() == DbBackend::Postgres {
        txn.conn()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                [format!("mlgate:configuration:{}\u{1f}{resource_id}", txn.tenant()).into()],
            ))
            .await?;
    }
    Ok(())
}

/// Stores the current configuration of a resource: the resource's latest
/// snapshot is updated (its `updatedAt` moves on), or its first one created.
/// Sending what is already stored changes nothing, `updatedAt` included.
pub async fn upsert(
    writer: &Writer<can::Ingest>,
    input: ConfigurationInput,
) -> ApiResult<configuration::Model> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    check.id("resourceId", &input.resource_id);
    check.json_object("configuration", &input.configuration);
    checker.finish()?;

    let txn = writer.begin().await?;
    lock_resource(&txn, &input.resource_id).await?;
    let latest = tenant_rows::<Entity>(&txn)
        .filter(Column::ResourceId.eq(&input.resource_id))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .lock_exclusive()
        .one(txn.conn())
        .await?;
    let at = now();
    let row = match latest {
        None => {
            let row = configuration::Model {
                id: uuid::Uuid::new_v4(),
                resource_id: input.resource_id,
                tenant_id: txn.tenant().to_owned(),
                configuration: input.configuration,
                features: input.features,
                policy_context: input.policy_context,
                baseline_config: input.baseline_config,
                created_at: Some(at),
                updated_at: Some(at),
            };
            let active: configuration::ActiveModel = row.clone().into_active_model();
            super::insert_many(&txn, vec![active.reset_all()])
                .await
                .map_err(ApiError::from_write)?;
            row
        }
        Some(stored) => {
            let changed = configuration::Model {
                configuration: input.configuration,
                features: input.features,
                policy_context: input.policy_context,
                baseline_config: input.baseline_config,
                updated_at: Some(at),
                ..stored.clone()
            };
            if fingerprint(&changed) == fingerprint(&stored) {
                return Ok(stored);
            }
            save_changes::<Entity>(&txn, stored, changed).await?
        }
    };
    commit(txn).await?;
    Ok(row)
}
