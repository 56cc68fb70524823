//! API keys: opaque bearer secrets, stored only as SHA-256 hashes, each bound
//! to one tenant and one role.
//!
//! On PostgreSQL the table has a tenant policy that is enabled but not forced:
//! the gateway role sees only its tenant's keys, while authentication (which
//! must find a key before it knows the tenant) runs as the pool's own role.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20260101_000004_row_level_security::tenant_policy;
use crate::sql::{run_for_backend, run_script, sqlite_dialect};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, POSTGRES_UP, &sqlite_dialect(POSTGRES_UP)).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // The role and its schema grant come from the RLS migration before this one.
            run_script(manager, &tenant_policy("mlgate_api_keys", false)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, DOWN).await
    }
}

const POSTGRES_UP: &str = r#"
CREATE TABLE mlgate_api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    role VARCHAR(20) NOT NULL CHECK (role IN ('viewer', 'analyst', 'service', 'admin')),
    name VARCHAR(255) NOT NULL,
    key_prefix VARCHAR(16) NOT NULL,
    key_hash VARCHAR(64) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    CONSTRAINT uq_mlgate_api_keys_hash UNIQUE (key_hash)
)
;;
CREATE INDEX idx_mlgate_api_keys_tenant ON mlgate_api_keys (tenant_id, created_at DESC)
"#;

const DOWN: &str = "DROP TABLE IF EXISTS mlgate_api_keys";
