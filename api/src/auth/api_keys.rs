//! API keys: `mlg_` followed by 256 random bits, base64url. Only the SHA-256
//! of a key is stored (the key has full entropy, so a fast hash suffices);
//! the secret is shown once, when created.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};

use entity::api_key;

use super::{AuthError, Role};
use crate::db::{Database, ScopedTxn};

pub const KEY_PREFIX: &str = "mlg_";
const SHOWN_PREFIX_LEN: usize = 12;

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

/// A newly created key, with its secret (to be shown once).
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub info: ApiKeyInfo,
    pub secret: String,
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn info(model: api_key::Model) -> ApiKeyInfo {
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

/// Creates a key for the transaction's tenant, valid until `expires_at` if given.
pub async fn create(
    txn: &ScopedTxn,
    role: Role,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<NewApiKey, sea_orm::DbErr> {
    let secret = generate_secret();
    let model = api_key::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        tenant_id: Set(txn.tenant().to_owned()),
        role: Set(role.as_str().to_owned()),
        name: Set(name.to_owned()),
        key_prefix: Set(secret[..SHOWN_PREFIX_LEN].to_owned()),
        key_hash: Set(hash(&secret)),
        created_at: Set(crate::data::now()),
        expires_at: Set(expires_at.map(crate::data::truncate_to_micros)),
        revoked_at: Set(None),
    }
    .insert(txn.conn())
    .await?;
    Ok(NewApiKey {
        info: info(model),
        secret,
    })
}

/// Revokes one of the transaction's tenant's keys; `false` if it has no such key.
pub async fn revoke(txn: &ScopedTxn, id: uuid::Uuid) -> Result<bool, sea_orm::DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, crate::data::now().into())
        .filter(api_key::Column::TenantId.eq(txn.tenant()))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(txn.conn())
        .await?;
    Ok(result.rows_affected == 1)
}

/// Revokes keys by name prefix (the demo re-issues its keys this way).
pub async fn revoke_named(txn: &ScopedTxn, name_prefix: &str) -> Result<u64, sea_orm::DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, crate::data::now().into())
        .filter(api_key::Column::TenantId.eq(txn.tenant()))
        .filter(api_key::Column::Name.starts_with(name_prefix))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(txn.conn())
        .await?;
    Ok(result.rows_affected)
}

/// One of the transaction's tenant's keys.
pub async fn find(txn: &ScopedTxn, id: uuid::Uuid) -> Result<Option<ApiKeyInfo>, sea_orm::DbErr> {
    Ok(crate::data::tenant_rows::<api_key::Entity>(txn)
        .filter(api_key::Column::Id.eq(id))
        .one(txn.conn())
        .await?
        .map(info))
}

pub async fn list(txn: &ScopedTxn) -> Result<Vec<ApiKeyInfo>, sea_orm::DbErr> {
    Ok(crate::data::tenant_rows::<api_key::Entity>(txn)
        .order_by_desc(api_key::Column::CreatedAt)
        .all(txn.conn())
        .await?
        .into_iter()
        .map(info)
        .collect())
}

/// Revokes a key by id whatever its tenant: the operator's command line.
pub async fn revoke_any(db: &Database, id: uuid::Uuid) -> Result<bool, sea_orm::DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, crate::data::now().into())
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db.unscoped())
        .await?;
    Ok(result.rows_affected == 1)
}

/// The key a secret belongs to, if it is active. This runs before any tenant
/// is known, so it is the one read of tenant-owned rows outside a scoped handle.
pub(super) async fn find_active(db: &Database, secret: &str) -> Result<api_key::Model, AuthError> {
    let key = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash(secret)))
        .one(db.auth_pool())
        .await
        .map_err(|e| match crate::db::classify(&e) {
            Some(crate::db::Failure::Overloaded) => AuthError::Busy(e.into()),
            _ => AuthError::Internal(e.into()),
        })?
        .ok_or(AuthError::InvalidApiKey)?;
    if key.revoked_at.is_some() {
        return Err(AuthError::RevokedApiKey);
    }
    if key.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AuthError::Expired);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hash_to_hex() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(h, hash(&b));
    }
}

/// The operator's path (`mlgate keys create`): creates a key for `tenant`.
pub async fn create_for_tenant(
    db: &Database,
    tenant: &str,
    role: Role,
    name: &str,
) -> anyhow::Result<NewApiKey> {
    let txn = db.begin_as_operator(tenant).await?;
    let key = create(&txn, role, name, None).await?;
    txn.commit().await?;
    Ok(key)
}
