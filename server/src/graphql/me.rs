//! `me`: who the caller is.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::request_context;
use crate::identity::{Credential, Principal, Role};

#[derive(Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    /// The authenticated caller: its tenant, role and how it authenticated.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        Ok(Me::from(request_context(ctx)?.principal()))
    }
}

/// The authenticated caller.
#[derive(SimpleObject)]
pub struct Me {
    /// The tenant every answer is scoped to.
    pub tenant: String,
    pub role: RoleName,
    /// The JWT subject, or `api-key:<prefix>` for an API key.
    pub subject: String,
    pub auth_method: AuthMethod,
    /// When the credentials stop being accepted, if they expire.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&Principal> for Me {
    fn from(p: &Principal) -> Self {
        Me {
            tenant: p.tenant().to_owned(),
            role: p.role().into(),
            subject: p.subject().to_owned(),
            auth_method: match p.credential() {
                Credential::ApiKey { .. } => AuthMethod::ApiKey,
                Credential::Jwt => AuthMethod::Jwt,
                // A monitor's evaluator never calls the API.
                Credential::Cli | Credential::Monitor => AuthMethod::Cli,
            },
            expires_at: p.expires_at(),
        }
    }
}

/// What a caller may do within its tenant.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Role")]
pub enum RoleName {
    /// Read.
    Viewer,
    /// Read and give feedback.
    Analyst,
    /// Read and ingest.
    Service,
    /// Everything in its tenant.
    Admin,
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Viewer => Role::Viewer,
            RoleName::Analyst => Role::Analyst,
            RoleName::Service => Role::Service,
            RoleName::Admin => Role::Admin,
        }
    }
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Viewer => RoleName::Viewer,
            Role::Analyst => RoleName::Analyst,
            Role::Service => RoleName::Service,
            Role::Admin => RoleName::Admin,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AuthMethod {
    ApiKey,
    Jwt,
    Cli,
}
