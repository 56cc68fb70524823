//! Who a caller is and what it may do: [`Principal`], [`Role`],
//! [`Permission`]. Depends on nothing else in the crate; everything that
//! needs a caller's identity (the scoped database handle, writes, the
//! schema, the transport) depends on this.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

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
    /// Create, change, delete and list drift monitors (admin).
    ManageMonitors,
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
            Permission::ManageMonitors => "manage drift monitors",
        }
    }
}

/// Write capabilities as types: a write function names the one it needs
/// (`&Writer<can::Ingest>`), so pairing a write with the wrong permission
/// does not compile. Each type stands for one [`Permission`].
pub mod can {
    use super::Permission;

    /// A write permission as a type.
    pub trait Capability: Send + Sync + 'static {
        const PERMISSION: Permission;
    }

    macro_rules! capabilities {
        ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug)]
            pub enum $name {}

            impl Capability for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    capabilities! {
        /// [`Permission::GiveFeedback`].
        GiveFeedback,
        /// [`Permission::Ingest`].
        Ingest,
        /// [`Permission::ProcessFeedback`].
        ProcessFeedback,
        /// [`Permission::ManageModels`].
        ManageModels,
        /// [`Permission::ManageKeys`].
        ManageKeys,
        /// [`Permission::ManageThresholds`].
        ManageThresholds,
        /// [`Permission::ManageMonitors`].
        ManageMonitors,
    }
}

impl Role {
    /// Whether this role holds `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::GiveFeedback => self >= Role::Analyst,
            Permission::Ingest | Permission::ProcessFeedback => self >= Role::Service,
            Permission::ManageModels
            | Permission::ManageKeys
            | Permission::ManageThresholds
            | Permission::ManageMonitors => self == Role::Admin,
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
    /// A gateway evaluating a monitor its tenant's admin defined.
    Monitor,
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

    /// A caller whose credentials `auth` verified (a JWT's tenant checked
    /// with [`check_tenant`] first). Crate-visible, but only `auth` calls it
    /// (`tests/architecture.rs` checks).
    pub(crate) fn authenticated(
        tenant: String,
        role: Role,
        subject: String,
        expires_at: Option<DateTime<Utc>>,
        credential: Credential,
    ) -> Self {
        Self {
            tenant,
            role,
            subject,
            expires_at,
            credential,
        }
    }

    /// The operator's principal for command-line maintenance of one tenant.
    pub(crate) fn cli(tenant: &str) -> Result<Self, InvalidTenant> {
        check_tenant(tenant)?;
        Ok(Self {
            tenant: tenant.to_owned(),
            role: Role::Admin,
            subject: "cli".to_owned(),
            expires_at: None,
            credential: Credential::Cli,
        })
    }
}

impl Principal {
    /// The evaluator of a monitor of `tenant`: the tenant is the monitor
    /// row's own, which only that tenant's admin could create.
    pub(crate) fn monitor(tenant: &str) -> Result<Self, InvalidTenant> {
        check_tenant(tenant)?;
        Ok(Self {
            tenant: tenant.to_owned(),
            role: Role::Service,
            subject: "monitor".to_owned(),
            expires_at: None,
            credential: Credential::Monitor,
        })
    }
}

/// A tenant id that cannot be one: empty, over 255 bytes or with control
/// characters.
#[derive(Debug, thiserror::Error)]
#[error("tenant must be 1–255 printable characters")]
pub struct InvalidTenant;

/// Tenant ids come from credentials; still, an empty or oversized one is refused.
pub(crate) fn check_tenant(tenant: &str) -> Result<(), InvalidTenant> {
    if tenant.is_empty() || tenant.len() > 255 || tenant.chars().any(char::is_control) {
        return Err(InvalidTenant);
    }
    Ok(())
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
            ManageMonitors,
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
