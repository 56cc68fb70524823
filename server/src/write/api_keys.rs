//! API keys managed through the API by a tenant's admins.

use chrono::{DateTime, Utc};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use entity::api_key;

use super::{commit, not_found, Checker, Writer, MAX_ID_CHARS};
use crate::auth::api_keys::KeySecret;
use crate::db::ScopedTxn;
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::identity::Role;
use crate::store::api_keys::{self, ApiKeyInfo};

/// A newly created key, with its secret (to be shown once).
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub info: ApiKeyInfo,
    pub secret: String,
}

/// Creates a key for the caller's tenant; its secret is in the answer and
/// nowhere else, ever. (Each call creates a key: a client that retries
/// after losing the answer revokes the key it never saw.)
pub async fn create(
    writer: &Writer<can::ManageKeys>,
    role: Role,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> ApiResult<NewApiKey> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    check.required_text("name", name, MAX_ID_CHARS);
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        check.problem("expiresAt", "must be in the future");
    }
    checker.finish()?;
    let txn = writer.begin().await?;
    let key = insert(&txn, role, name, expires_at)
        .await
        .map_err(ApiError::from_write)?;
    commit(txn).await?;
    tracing::info!(key = %key.info.prefix, role = %role, "API key created");
    Ok(key)
}

/// Revokes one of the tenant's keys (`NOT_FOUND` for any other id).
/// Revoking a revoked key changes nothing.
pub async fn revoke(writer: &Writer<can::ManageKeys>, id: uuid::Uuid) -> ApiResult<ApiKeyInfo> {
    let txn = writer.begin().await?;
    revoke_one(&txn, id).await.map_err(ApiError::from_write)?;
    let key = api_keys::find(&txn, id)
        .await?
        .ok_or_else(|| not_found("id", "API key", &id.to_string()))?;
    commit(txn).await?;
    tracing::info!(key = %key.prefix, "API key revoked");
    // Takes effect on this process before the answer: the key leaves the
    // credential cache and its WebSockets close (on PostgreSQL the table's
    // trigger tells every other process too).
    writer.events().key_revoked(Some(id));
    Ok(key)
}

/// The tenant's keys, newest first, without secrets.
pub async fn list(writer: &Writer<can::ManageKeys>) -> ApiResult<Vec<ApiKeyInfo>> {
    // A read, so a turn on the query operation's transaction: a write
    // transaction here would wait for a second connection while the
    // operation holds one.
    let txn = writer.scoped().begin().await?;
    let keys = api_keys::list(&txn).await?;
    txn.commit().await?;
    Ok(keys)
}

/// Creates a key for the transaction's tenant, valid until `expires_at` if given.
pub(crate) async fn insert(
    txn: &ScopedTxn,
    role: Role,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<NewApiKey, sea_orm::DbErr> {
    let secret = KeySecret::generate();
    let model = api_key::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        tenant_id: Set(txn.tenant().to_owned()),
        role: Set(role.as_str().to_owned()),
        name: Set(name.to_owned()),
        key_prefix: Set(secret.prefix),
        key_hash: Set(secret.hash),
        created_at: Set(crate::store::now()),
        expires_at: Set(expires_at.map(crate::store::truncate_to_micros)),
        revoked_at: Set(None),
    }
    .insert(txn.conn())
    .await?;
    Ok(NewApiKey {
        info: api_keys::info(model),
        secret: secret.secret,
    })
}

/// Revokes one of the transaction's tenant's keys; `false` if it has no such key.
async fn revoke_one(txn: &ScopedTxn, id: uuid::Uuid) -> Result<bool, sea_orm::DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, crate::store::now().into())
        .filter(api_key::Column::TenantId.eq(txn.tenant()))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(txn.conn())
        .await?;
    Ok(result.rows_affected == 1)
}

/// Revokes keys by name prefix (the demo re-issues its keys this way).
pub(crate) async fn revoke_named(
    txn: &ScopedTxn,
    name_prefix: &str,
) -> Result<u64, sea_orm::DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, crate::store::now().into())
        .filter(api_key::Column::TenantId.eq(txn.tenant()))
        .filter(api_key::Column::Name.starts_with(name_prefix))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(txn.conn())
        .await?;
    Ok(result.rows_affected)
}
