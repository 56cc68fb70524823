//! API keys, managed by a tenant's admins.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::me::RoleName;
use super::request_context;
use crate::identity::{can, Role};
use crate::store::api_keys::ApiKeyInfo;
use crate::write::api_keys as write;

/// An API key, as listed: never its secret.
#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: uuid::Uuid,
    pub name: String,
    pub role: RoleName,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyInfo> for ApiKey {
    fn from(info: ApiKeyInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            role: info.role.into(),
            prefix: info.prefix,
            created_at: info.created_at,
            expires_at: info.expires_at,
            revoked_at: info.revoked_at,
        }
    }
}

/// A new API key with its secret, shown this once.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// Send it as `Authorization: Bearer <secret>`. It is stored only as a
    /// hash and can never be shown again.
    pub secret: String,
    pub key: ApiKey,
}

#[derive(Default)]
pub struct ApiKeysQuery;

#[Object]
impl ApiKeysQuery {
    /// The tenant's API keys, newest first, without secrets (`admin`).
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageKeys>()?;
        Ok(write::list(&writer)
            .await?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }
}

#[derive(Default)]
pub struct ApiKeysMutation;

#[Object]
impl ApiKeysMutation {
    /// Creates an API key for the caller's tenant (`admin`). The secret is in
    /// this answer only. Each call creates a key.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        role: RoleName,
        #[graphql(desc = "A label to recognise the key by (1–255 characters).")] name: String,
        #[graphql(desc = "When the key stops being accepted; never when absent.")]
        expires_at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<CreatedApiKey> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageKeys>()?;
        let created = write::create(&writer, Role::from(role), &name, expires_at).await?;
        Ok(CreatedApiKey {
            secret: created.secret,
            key: created.info.into(),
        })
    }

    /// Revokes one of the tenant's API keys (`admin`): requests with it are
    /// refused from now on. Revoking a revoked key changes nothing.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        id: uuid::Uuid,
    ) -> async_graphql::Result<ApiKey> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageKeys>()?;
        Ok(write::revoke(&writer, id).await?.into())
    }
}
