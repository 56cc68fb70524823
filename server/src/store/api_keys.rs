//! API keys as listed: never their secrets.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};

use entity::api_key;

use crate::db::ScopedTxn;
use crate::identity::Role;

/// A key as listed: never its secret.
#[derive(Clone, Debug)]
pub struct ApiKeyInfo {
    pub id: uuid::Uuid,
    pub tenant: String,
    pub role: Role,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(crate) fn info(model: api_key::Model) -> ApiKeyInfo {
    ApiKeyInfo {
        id: model.id,
        role: model.role.parse().unwrap_or(Role::Viewer),
        tenant: model.tenant_id,
        name: model.name,
        prefix: model.key_prefix,
        created_at: model.created_at,
        expires_at: model.expires_at,
        revoked_at: model.revoked_at,
    }
}

/// One of the transaction's tenant's keys.
pub async fn find(txn: &ScopedTxn, id: uuid::Uuid) -> Result<Option<ApiKeyInfo>, sea_orm::DbErr> {
    Ok(super::tenant_rows::<api_key::Entity>(txn)
        .filter(api_key::Column::Id.eq(id))
        .one(txn.conn())
        .await?
        .map(info))
}

/// The transaction's tenant's keys, newest first.
pub async fn list(txn: &ScopedTxn) -> Result<Vec<ApiKeyInfo>, sea_orm::DbErr> {
    Ok(super::tenant_rows::<api_key::Entity>(txn)
        .order_by_desc(api_key::Column::CreatedAt)
        .all(txn.conn())
        .await?
        .into_iter()
        .map(info)
        .collect())
}
