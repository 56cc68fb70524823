//! The write side: plain functions over a [`Writer`], one module per domain.
//!
//! A [`Writer`] is a tenant-scoped handle that only a caller whose role holds
//! the write's permission ([`can`](crate::identity::can)) can open, so no write path skips the role
//! check, just as no read path skips the tenant. Every write:
//! - validates its whole input first and refuses it with every problem found
//!   (`BAD_USER_INPUT`, each problem naming its item and field);
//! - resolves references inside the caller's tenant only (`NOT_FOUND` for
//!   anything else, exactly like an id that does not exist);
//! - runs in one transaction (on PostgreSQL under row-level security, whose
//!   `WITH CHECK` refuses any row of another tenant), so it lands whole or
//!   not at all;
//! - is idempotent where a client may retry: creating what exists with the
//!   same content returns it unchanged; the same id with different content
//!   is `CONFLICT`.

pub mod alerts;
pub mod api_keys;
pub mod bulk;
pub mod configurations;
mod copy;
pub mod drift;
pub mod features;
pub mod feedback;
mod footprint;
mod idempotent;
pub mod models;
pub mod monitors;
pub mod predictions;
mod shape;
mod sql;
pub mod tenant;
pub mod thresholds;
pub mod training;
mod validate;
pub mod webhooks;

pub use shape::FeatureValue;

pub use idempotent::Items;
use idempotent::{
    conflict, create_idempotent_at, create_one, insert_new, Created, Fingerprint, Idempotent,
    NewRow,
};
pub use sql::insert_many;
use sql::{locked_row, referenced_models, save_changes};
use validate::{check_batch, refuse, Check, Checker, DecimalSpec, MAX_ID_CHARS};

use std::marker::PhantomData;

use crate::db::{Scoped, ScopedTxn};
use crate::error::{ApiError, ApiResult, InputProblem, Refusal};
use crate::events::Events;
use crate::identity::can::Capability;
use crate::identity::{Principal, Role};

/// The tenant-scoped handle of a caller allowed one kind of write: `C`, a
/// capability of [`can`](crate::identity::can). Only [`Writer::authorize`]
/// makes one, after the role check, and each write function takes the
/// capability it needs:
///
/// ```no_run
/// # use server::{identity::can, write::Writer};
/// # async fn keys(writer: &Writer<can::ManageKeys>) {
/// let _ = server::write::api_keys::list(writer).await;
/// # }
/// ```
///
/// and another capability does not compile:
///
/// ```compile_fail
/// # use server::{identity::can, write::Writer};
/// # async fn keys(writer: &Writer<can::Ingest>) {
/// let _ = server::write::api_keys::list(writer).await;
/// # }
/// ```
pub struct Writer<C: Capability> {
    scoped: Scoped,
    subject: String,
    role: Role,
    events: Events,
    capability: PhantomData<C>,
}

impl<C: Capability> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Self {
            scoped: self.scoped.clone(),
            subject: self.subject.clone(),
            role: self.role,
            events: self.events.clone(),
            capability: PhantomData,
        }
    }
}

impl<C: Capability> Writer<C> {
    /// Opens the write handle for `principal` if its role holds `C`'s
    /// permission (`FORBIDDEN` otherwise). `scoped` is the principal's own
    /// handle.
    pub(crate) fn authorize(
        principal: &Principal,
        scoped: &Scoped,
        events: &Events,
    ) -> ApiResult<Self> {
        let permission = C::PERMISSION;
        if scoped.tenant() != principal.tenant() {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a write handle was requested with another principal's scope"
            )));
        }
        if !principal.role().allows(permission) {
            return Err(ApiError::Forbidden(format!(
                "role `{}` may not {}; that needs {}",
                principal.role(),
                permission.action(),
                permission.roles()
            )));
        }
        Ok(Self {
            scoped: scoped.clone(),
            subject: principal.subject().to_owned(),
            role: principal.role(),
            events: events.clone(),
            capability: PhantomData,
        })
    }

    /// The caller's tenant-scoped handle, for a read an authorized caller makes.
    pub(crate) fn scoped(&self) -> &Scoped {
        &self.scoped
    }

    /// Where committed writes announce alerts and job changes.
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    pub fn tenant(&self) -> &str {
        self.scoped.tenant()
    }

    /// Who is writing: the JWT subject or `api-key:<prefix>`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Begins the write's transaction, bound to the caller's tenant.
    pub(crate) async fn begin(&self) -> ApiResult<ScopedTxn> {
        Ok(self.scoped.begin_write().await?)
    }
}

/// Commits `txn`, mapping a refusal at commit (deferred constraints) like
/// any other failed write.
pub(crate) async fn commit(txn: ScopedTxn) -> ApiResult<()> {
    txn.commit().await.map_err(ApiError::from_write)
}

/// `NOT_FOUND` for a reference the tenant does not have, named like the
/// input field that holds it.
pub fn not_found(field: impl Into<String>, what: &str, id: &str) -> ApiError {
    ApiError::Refused {
        code: Refusal::NotFound,
        problems: vec![InputProblem {
            index: None,
            id: Some(id.to_owned()),
            field: field.into(),
            message: format!("{what} `{id}` not found"),
        }],
    }
}
