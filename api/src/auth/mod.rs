//! Authentication: `Authorization: Bearer <token>` → [`Principal`].
//!
//! A token is either an mlgate API key (`mlg_…`, stored hashed, bound to one
//! tenant and role) or a JWT (HS256 secret or RS256 public key from config,
//! carrying `tenant_id` and `role` claims). Only this module constructs a
//! `Principal`, and only a `Principal` opens a tenant-scoped database handle.

pub mod api_keys;
mod cache;
mod jwt;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::Database;

pub use jwt::{JwtSettings, JwtVerifier};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and gives feedback.
    Analyst,
    /// Reads and ingests predictions, drift metrics, jobs, features.
    Service,
    /// Everything within its tenant.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Service, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }
}

/// What a write needs the caller's role to allow. Reading needs no
/// permission: every role reads its own tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Submit feedback on predictions (analyst and above).
    GiveFeedback,
    /// Record predictions, drift metrics, training jobs, feature sets,
    /// configurations and remediation progress (service and admin).
    Ingest,
    /// Mark feedback as processed (service and admin).
    ProcessFeedback,
    /// Register, change and transition models (admin).
    ManageModels,
    /// Create, list and revoke API keys (admin).
    ManageKeys,
    /// Change the tenant's drift alert thresholds (admin).
    ManageThresholds,
}

impl Permission {
    /// The roles that hold this permission, for error messages.
    pub fn roles(self) -> String {
        let roles: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|role| role.allows(self))
            .map(Role::as_str)
            .collect();
        roles.join(", ")
    }

    /// What the permission lets a caller do, for error messages.
    pub fn action(self) -> &'static str {
        match self {
            Permission::GiveFeedback => "submit feedback",
            Permission::Ingest => "ingest data",
            Permission::ProcessFeedback => "process feedback",
            Permission::ManageModels => "manage models",
            Permission::ManageKeys => "manage API keys",
            Permission::ManageThresholds => "change drift thresholds",
        }
    }
}

impl Role {
    /// Whether this role holds `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::GiveFeedback => self >= Role::Analyst,
            Permission::Ingest | Permission::ProcessFeedback => self >= Role::Service,
            Permission::ManageModels | Permission::ManageKeys | Permission::ManageThresholds => {
                self == Role::Admin
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}` (expected viewer, analyst, service or admin)")
            })
    }
}

/// How the caller proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    ApiKey {
        key_id: uuid::Uuid,
    },
    Jwt,
    /// The command line, acting on a tenant named by the operator.
    Cli,
}

/// An authenticated caller. Its fields are private and it has no public
/// constructor: a tenant cannot be chosen by anything but credentials.
#[derive(Clone, Debug)]
pub struct Principal {
    tenant: String,
    role: Role,
    subject: String,
    expires_at: Option<DateTime<Utc>>,
    credential: Credential,
}

impl Principal {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The operator's principal for command-line maintenance of one tenant.
    pub(crate) fn cli(tenant: &str) -> Result<Self, AuthError> {
        validate_tenant(tenant)?;
        Ok(Self {
            tenant: tenant.to_owned(),
            role: Role::Admin,
            subject: "cli".to_owned(),
            expires_at: None,
            credential: Credential::Cli,
        })
    }
}

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

/// Tenant ids come from credentials; still, an empty or oversized one is refused.
fn validate_tenant(tenant: &str) -> Result<(), AuthError> {
    if tenant.is_empty() || tenant.len() > 255 || tenant.chars().any(char::is_control) {
        return Err(AuthError::InvalidToken(
            "tenant must be 1–255 printable characters".into(),
        ));
    }
    Ok(())
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
    /// by another process (the command line) could live on in a cache.
    pub fn new(db: Database, settings: &AuthSettings) -> anyhow::Result<Self> {
        let ttl = if db.backend() == sea_orm::DbBackend::Postgres {
            settings.cache_ttl
        } else {
            Duration::ZERO
        };
        Ok(Self {
            db,
            jwt: JwtVerifier::from_settings(&settings.jwt)?,
            cache: Arc::new(cache::CredentialCache::new(ttl)),
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
        let principal = self.verify(token).await?;
        self.cache.put(token, &principal);
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
            return Ok(Principal {
                subject: format!("api-key:{}", key.key_prefix),
                tenant: key.tenant_id,
                role,
                expires_at: key.expires_at,
                credential: Credential::ApiKey { key_id: key.id },
            });
        }
        let verifier = self.jwt.as_ref().ok_or(AuthError::JwtNotConfigured)?;
        let claims = verifier.verify(token)?;
        validate_tenant(&claims.tenant_id)?;
        let role = claims.role.parse().map_err(AuthError::InvalidToken)?;
        Ok(Principal {
            tenant: claims.tenant_id,
            role,
            subject: claims.sub,
            expires_at: DateTime::from_timestamp(claims.exp, 0),
            credential: Credential::Jwt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_hold_exactly_their_permissions() {
        use Permission::*;
        let all = [
            GiveFeedback,
            Ingest,
            ProcessFeedback,
            ManageModels,
            ManageKeys,
            ManageThresholds,
        ];
        let held = |role: Role| -> Vec<Permission> {
            all.into_iter().filter(|p| role.allows(*p)).collect()
        };
        assert_eq!(held(Role::Viewer), vec![]);
        assert_eq!(held(Role::Analyst), vec![GiveFeedback]);
        assert_eq!(
            held(Role::Service),
            vec![GiveFeedback, Ingest, ProcessFeedback]
        );
        assert_eq!(held(Role::Admin), all.to_vec());
    }
}
