//! Quality monitors: a monitor may watch a quality measure observed through
//! feedback (precision, recall, F1 at a decision threshold, or expected
//! calibration error) instead of a drift statistic of a signal. Such a
//! monitor has `quality` (with its decision threshold and the fewest
//! predictions with an outcome a window needs) and neither `signal` nor
//! `method`; a drift monitor has both and no `quality`.
//!
//! PostgreSQL alters the table in place. SQLite cannot drop a NOT NULL or
//! add a table constraint, so it rebuilds the table (nothing references it).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql::{run_script, sqlite_dialect};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // In one transaction on SQLite too: the rebuild's statements must run
    // on one connection (another pooled connection's cached schema would
    // still hold the dropped table) and all or nothing.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run_script(manager, POSTGRES_UP).await,
            _ => run_script(manager, &sqlite_rebuild(true)).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run_script(manager, POSTGRES_DOWN).await,
            _ => run_script(manager, &sqlite_rebuild(false)).await,
        }
    }
}

const POSTGRES_UP: &str = r#"
ALTER TABLE mlgate_monitors
    ALTER COLUMN signal DROP NOT NULL,
    ALTER COLUMN method DROP NOT NULL,
    ADD COLUMN quality VARCHAR(30) CHECK (quality IN ('precision', 'recall', 'f1', 'calibration_error')),
    ADD COLUMN decision_threshold DOUBLE PRECISION,
    ADD COLUMN minimum_outcomes INTEGER,
    ADD CONSTRAINT ck_mlgate_monitors_measure CHECK (
        (quality IS NULL AND signal IS NOT NULL AND method IS NOT NULL)
        OR (quality IS NOT NULL AND signal IS NULL AND method IS NULL
            AND decision_threshold IS NOT NULL AND minimum_outcomes IS NOT NULL))
"#;

const POSTGRES_DOWN: &str = r#"
DELETE FROM mlgate_monitors WHERE quality IS NOT NULL
;;
ALTER TABLE mlgate_monitors
    DROP CONSTRAINT ck_mlgate_monitors_measure,
    DROP COLUMN minimum_outcomes,
    DROP COLUMN decision_threshold,
    DROP COLUMN quality,
    ALTER COLUMN method SET NOT NULL,
    ALTER COLUMN signal SET NOT NULL
"#;

/// The columns both versions of the table have, in order.
const KEPT: &str = "id, tenant_id, monitor_id, model_id, signal, feature, method, reference_kind, \
    reference_from, reference_to, reference_seconds, reference_version, current_version, \
    current_seconds, interval_seconds, threshold_kind, warning, critical, reference_chunks, \
    breaches_to_fire, keep_firing, cooldown_seconds, queue_training, notify_webhook, \
    training_cooldown_seconds, enabled, next_due_at, evaluations, consecutive_breaches, \
    firing_left, firing, last_value, last_level, last_evaluated_at, last_notified_at, \
    last_training_at, created_at, updated_at";

/// The table as it is with (`quality`) or without quality monitors.
fn table(name: &str, quality: bool) -> String {
    let required = if quality { "" } else { " NOT NULL" };
    let measure = if quality {
        "
    quality VARCHAR(30) CHECK (quality IN ('precision', 'recall', 'f1', 'calibration_error')),
    decision_threshold DOUBLE PRECISION,
    minimum_outcomes INTEGER,
    CONSTRAINT ck_mlgate_monitors_measure CHECK (
        (quality IS NULL AND signal IS NOT NULL AND method IS NOT NULL)
        OR (quality IS NOT NULL AND signal IS NULL AND method IS NULL
            AND decision_threshold IS NOT NULL AND minimum_outcomes IS NOT NULL)),"
    } else {
        ""
    };
    format!(
        r#"CREATE TABLE {name} (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    monitor_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    signal VARCHAR(40){required} CHECK (signal IN
        ('violation_probability', 'confidence_score', 'risk_score', 'inference_time', 'shap')),
    feature VARCHAR(255),
    method VARCHAR(20){required} CHECK (method IN ('psi', 'ks', 'wasserstein', 'jensen_shannon', 'hellinger')),
    reference_kind VARCHAR(20) NOT NULL CHECK (reference_kind IN ('fixed', 'rolling', 'version')),
    reference_from TIMESTAMPTZ,
    reference_to TIMESTAMPTZ,
    reference_seconds BIGINT,
    reference_version VARCHAR(20),
    current_version VARCHAR(20),
    current_seconds BIGINT NOT NULL CHECK (current_seconds > 0),
    interval_seconds BIGINT NOT NULL CHECK (interval_seconds > 0),
    threshold_kind VARCHAR(10) NOT NULL CHECK (threshold_kind IN ('fixed', 'sigma')),
    warning DOUBLE PRECISION NOT NULL,
    critical DOUBLE PRECISION NOT NULL,
    reference_chunks INTEGER NOT NULL,
    breaches_to_fire INTEGER NOT NULL,
    keep_firing INTEGER NOT NULL,
    cooldown_seconds BIGINT NOT NULL,
    queue_training BOOLEAN NOT NULL,
    notify_webhook BOOLEAN NOT NULL,
    training_cooldown_seconds BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL,
    next_due_at TIMESTAMPTZ NOT NULL,
    evaluations BIGINT NOT NULL,
    consecutive_breaches INTEGER NOT NULL,
    firing_left INTEGER NOT NULL,
    firing BOOLEAN NOT NULL,
    last_value DOUBLE PRECISION,
    last_level VARCHAR(20),
    last_evaluated_at TIMESTAMPTZ,
    last_notified_at TIMESTAMPTZ,
    last_training_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,{measure}
    CONSTRAINT uq_mlgate_monitors_tenant_monitor UNIQUE (tenant_id, monitor_id),
    CONSTRAINT fk_mlgate_monitors_model FOREIGN KEY (tenant_id, model_id)
        REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)"#
    )
}

/// SQLite's rebuild into the table with or without quality monitors (going
/// down, the quality monitors are dropped: the old table cannot hold them).
fn sqlite_rebuild(quality: bool) -> String {
    let keep = if quality {
        ""
    } else {
        " WHERE quality IS NULL"
    };
    sqlite_dialect(&format!(
        "{}\n;;\nINSERT INTO mlgate_monitors_rebuilt ({KEPT}) SELECT {KEPT} FROM mlgate_monitors{keep}\n;;\n\
         DROP TABLE mlgate_monitors\n;;\nALTER TABLE mlgate_monitors_rebuilt RENAME TO mlgate_monitors\n;;\n\
         CREATE INDEX idx_mlgate_monitors_due ON mlgate_monitors (next_due_at) WHERE enabled",
        table("mlgate_monitors_rebuilt", quality)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tables_keep_every_column() {
        for quality in [true, false] {
            let ddl = table("t", quality);
            for column in KEPT.split(',').map(str::trim) {
                assert!(ddl.contains(&format!("\n    {column} ")), "{column}");
            }
            assert_eq!(ddl.contains("quality VARCHAR"), quality);
        }
    }
}
