//! Per-tenant drift alert thresholds: the PSI, KS and Wasserstein values at
//! which a measurement is a `warning` or `critical` drift. A tenant without a
//! row uses the conventional defaults (PSI 0.1 / 0.25, KS 0.1 / 0.2,
//! Wasserstein 0.1 / 0.2), so the table only holds the tenants that differ.
//!
//! On PostgreSQL it gets the same forced tenant policy as the ML tables.

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
            run_script(manager, &tenant_policy("mlgate_drift_thresholds", true)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, DOWN).await
    }
}

const POSTGRES_UP: &str = r#"
CREATE TABLE mlgate_drift_thresholds (
    tenant_id VARCHAR(255) PRIMARY KEY CHECK (tenant_id <> ''),
    psi_warning DECIMAL(10,6) NOT NULL,
    psi_critical DECIMAL(10,6) NOT NULL,
    ks_warning DECIMAL(10,6) NOT NULL,
    ks_critical DECIMAL(10,6) NOT NULL,
    wasserstein_warning DECIMAL(10,6) NOT NULL,
    wasserstein_critical DECIMAL(10,6) NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT ck_mlgate_drift_thresholds_psi CHECK (0 <= psi_warning AND psi_warning <= psi_critical),
    CONSTRAINT ck_mlgate_drift_thresholds_ks CHECK (0 <= ks_warning AND ks_warning <= ks_critical),
    CONSTRAINT ck_mlgate_drift_thresholds_wasserstein
        CHECK (0 <= wasserstein_warning AND wasserstein_warning <= wasserstein_critical)
)
"#;

const DOWN: &str = "DROP TABLE IF EXISTS mlgate_drift_thresholds";
