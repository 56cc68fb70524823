//! `mlgate keys`: the operator's key management, across tenants.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use entity::api_key;

use crate::db::Database;
use crate::identity::Role;
use crate::store::api_keys::{list, ApiKeyInfo};
use crate::write::api_keys::{insert, NewApiKey};

/// Revokes a key by id whatever its tenant: the operator's command line.
pub async fn revoke_any(db: &Database, id: uuid::Uuid) -> Result<bool, sea_orm::DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, crate::store::now().into())
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db.unscoped())
        .await?;
    Ok(result.rows_affected == 1)
}

/// The operator's path (`mlgate keys create`): creates a key for `tenant`.
pub async fn create_for_tenant(
    db: &Database,
    tenant: &str,
    role: Role,
    name: &str,
) -> anyhow::Result<NewApiKey> {
    let txn = db.begin_as_operator(tenant).await?;
    let key = insert(&txn, role, name, None).await?;
    txn.commit().await?;
    Ok(key)
}

/// The keys of `tenant`, newest first (`mlgate keys list`).
pub async fn list_for_tenant(db: &Database, tenant: &str) -> anyhow::Result<Vec<ApiKeyInfo>> {
    let txn = db.begin_as_operator(tenant).await?;
    let keys = list(&txn).await?;
    txn.commit().await?;
    Ok(keys)
}

/// Whether `tenant` has models or keys: a tenant name nobody used yet is
/// more often a typo than a new tenant.
pub async fn tenant_is_known(db: &Database, tenant: &str) -> anyhow::Result<bool> {
    let txn = db.begin_as_operator(tenant).await?;
    let models = crate::store::tenant_rows::<entity::model::Entity>(&txn)
        .count(txn.conn())
        .await?;
    let keys = crate::store::tenant_rows::<api_key::Entity>(&txn)
        .count(txn.conn())
        .await?;
    txn.commit().await?;
    Ok(models > 0 || keys > 0)
}

/// Up to `limit` tenants that have models, by name (the operator's view,
/// across tenants).
pub async fn known_tenants(db: &Database, limit: u64) -> anyhow::Result<Vec<String>> {
    use sea_orm::{QueryOrder, QuerySelect};
    let tenants: Vec<String> = entity::model::Entity::find()
        .select_only()
        .column(entity::model::Column::TenantId)
        .distinct()
        .order_by_asc(entity::model::Column::TenantId)
        .limit(limit)
        .into_tuple()
        .all(db.unscoped())
        .await?;
    Ok(tenants)
}
