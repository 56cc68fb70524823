//! Drift-alert events: every drift metric stored with `alert_triggered`
//! becomes one event row, written in the same transaction as the metric (an
//! outbox), so an acknowledged alert can never be lost between the write and
//! its delivery.
//!
//! Each tenant numbers its events `1, 2, 3, …` in commit order: the write
//! path takes the next numbers from `mlgate_alert_sequences` with an upsert
//! whose row lock is held until commit, so a later number is never committed
//! before an earlier one. A subscriber that resumes "after event n" therefore
//! misses nothing and sees nothing twice.
//!
//! On PostgreSQL both tables get the forced tenant policy of the ML tables.

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
            for table in ["mlgate_alert_sequences", "mlgate_alert_events"] {
                run_script(manager, &tenant_policy(table, true)).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, DOWN).await
    }
}

const POSTGRES_UP: &str = r#"
CREATE TABLE mlgate_alert_sequences (
    tenant_id VARCHAR(255) PRIMARY KEY CHECK (tenant_id <> ''),
    last_seq BIGINT NOT NULL CHECK (last_seq >= 0)
)
;;
CREATE TABLE mlgate_alert_events (
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    seq BIGINT NOT NULL CHECK (seq > 0),
    metric_id VARCHAR(255) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq),
    CONSTRAINT uq_mlgate_alert_events_metric UNIQUE (tenant_id, metric_id),
    CONSTRAINT fk_mlgate_alert_events_metric FOREIGN KEY (tenant_id, metric_id)
        REFERENCES ml_drift_metrics (tenant_id, metric_id) ON DELETE CASCADE
)
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS mlgate_alert_events
;;
DROP TABLE IF EXISTS mlgate_alert_sequences
"#;
