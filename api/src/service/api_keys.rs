//! API keys managed through the API by a tenant's admins.

use chrono::{DateTime, Utc};

use super::{commit, not_found, Checker, Writer, MAX_ID_CHARS};
use crate::auth::api_keys::{self, ApiKeyInfo, NewApiKey};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult};

/// Creates a key for the caller's tenant; its secret is in the answer and
/// nowhere else, ever. (Each call creates a key: a client that retries
/// after losing the answer revokes the key it never saw.)
pub async fn create(
    writer: &Writer,
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
    let key = api_keys::create(&txn, role, name, expires_at)
        .await
        .map_err(ApiError::from_write)?;
    commit(txn).await?;
    tracing::info!(key = %key.info.prefix, role = %role, "API key created");
    Ok(key)
}

/// Revokes one of the tenant's keys (`NOT_FOUND` for any other id).
/// Revoking a revoked key changes nothing.
pub async fn revoke(writer: &Writer, id: uuid::Uuid) -> ApiResult<ApiKeyInfo> {
    let txn = writer.begin().await?;
    api_keys::revoke(&txn, id)
        .await
        .map_err(ApiError::from_write)?;
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
pub async fn list(writer: &Writer) -> ApiResult<Vec<ApiKeyInfo>> {
    let txn = writer.begin().await?;
    let keys = api_keys::list(&txn).await?;
    commit(txn).await?;
    Ok(keys)
}
