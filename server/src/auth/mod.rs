//! Authentication: `Authorization: Bearer <token>` → [`Principal`].
//!
//! A token is either an mlgate API key (`mlg_…`, stored hashed, bound to one
//! tenant and role) or a JWT (HS256 secret, RS256 public key or an identity
//! provider's JWKS, carrying the tenant and role at configured claims). Only this module (and the
//! operator's command line) constructs a [`Principal`], and only a
//! `Principal` opens a tenant-scoped database handle; `tests/architecture.rs`
//! keeps it so.

pub mod api_keys;
mod cache;
mod jwks;
mod jwt;

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;

use crate::db::Database;

use crate::identity::check_tenant;
pub use crate::identity::{Credential, Permission, Principal, Role};

pub use jwks::JwksSettings;
pub use jwt::{JwtSettings, JwtVerifier};

/// Why credentials were refused. Every variant is answered with
/// `UNAUTHENTICATED`; only `Internal` is logged as a server fault.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials: send `Authorization: Bearer <API key or JWT>`")]
    Missing,
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    Malformed,
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("API key has been revoked")]
    RevokedApiKey,
    #[error("credentials have expired")]
    Expired,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("JWTs are not accepted: no JWT key is configured")]
    JwtNotConfigured,
    /// The key lookup waited too long for a connection: retry shortly.
    #[error("authentication is busy; retry shortly")]
    Busy(#[source] anyhow::Error),
    /// The key lookup failed (the database is unreachable, say).
    #[error("authentication is unavailable; retry shortly")]
    Internal(#[source] anyhow::Error),
}

impl AuthError {
    /// Whether the credentials were refused (401), rather than the server
    /// unable to check them (503).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, AuthError::Busy(_) | AuthError::Internal(_))
    }
}

/// The token of an `Authorization` value `Bearer <token>` (scheme in any case).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// How credentials are checked.
#[derive(Clone, Debug, Default)]
pub struct AuthSettings {
    pub jwt: JwtSettings,
    /// How long a verified credential is remembered (zero: not at all).
    pub cache_ttl: Duration,
}

/// Turns bearer tokens into principals.
#[derive(Clone)]
pub struct Authenticator {
    db: Database,
    jwt: Option<JwtVerifier>,
    cache: Arc<cache::CredentialCache>,
}

impl Authenticator {
    /// The credential cache is only kept on PostgreSQL, whose notifications
    /// tell every process of a revocation; SQLite has none, so a key revoked
    /// by another process (the command line) could live on in a cache. It
    /// is consulted only while `revocations_current` says every revocation
    /// made elsewhere has arrived (`Events::revocations_current`).
    pub fn new(
        db: Database,
        settings: &AuthSettings,
        revocations_current: impl Fn() -> bool + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let ttl = if db.backend() == sea_orm::DbBackend::Postgres {
            settings.cache_ttl
        } else {
            Duration::ZERO
        };
        Ok(Self {
            db,
            jwt: JwtVerifier::from_settings(&settings.jwt)?,
            cache: Arc::new(cache::CredentialCache::new(
                ttl,
                Box::new(revocations_current),
            )),
        })
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer_token(header.ok_or(AuthError::Missing)?).ok_or(AuthError::Malformed)?;
        self.authenticate_token(token).await
    }

    /// Whether `token` was verified recently (no lookup needed).
    pub fn is_known(&self, token: &str) -> bool {
        self.cache.get(token).is_some()
    }

    /// Authenticates a bare token (an API key or a JWT), from the credential
    /// cache when it was verified recently.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(principal) = self.cache.get(token) {
            return Ok(principal);
        }
        let ticket = self.cache.ticket();
        let principal = self.verify(token).await?;
        if let Some(ticket) = ticket {
            self.cache.put(ticket, token, &principal);
        }
        Ok(principal)
    }

    /// Authenticates `token` against the database itself, bypassing the
    /// cache: what a WebSocket operation does, so a key revoked by another
    /// process runs nothing once the revocation committed.
    pub async fn authenticate_fresh(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify(token).await
    }

    /// Forgets API key `key_id` at once (it was revoked or deleted).
    pub fn forget_key(&self, key_id: uuid::Uuid) {
        self.cache.forget_key(key_id);
    }

    /// Forgets every remembered credential (revocations may have been missed).
    pub fn forget_all(&self) {
        self.cache.clear();
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.starts_with(api_keys::KEY_PREFIX) {
            let key = api_keys::find_active(&self.db, token).await?;
            let role = key.role.parse().map_err(|_| AuthError::InvalidApiKey)?;
            return Ok(Principal::authenticated(
                key.tenant_id,
                role,
                format!("api-key:{}", key.key_prefix),
                key.expires_at,
                Credential::ApiKey { key_id: key.id },
            ));
        }
        let verifier = self.jwt.as_ref().ok_or(AuthError::JwtNotConfigured)?;
        let claims = verifier.verify(token).await?;
        check_tenant(&claims.tenant_id).map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        Ok(Principal::authenticated(
            claims.tenant_id,
            claims.role,
            claims.sub,
            DateTime::from_timestamp(claims.exp, 0),
            Credential::Jwt,
        ))
    }
}
