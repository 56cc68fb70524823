//! Drift monitors: a tenant's standing drift analyses, evaluated by the
//! gateways themselves on a schedule (`next_due_at`), with their noise
//! control state. Each evaluation writes an `ml_drift_metrics` row. A
//! notification may also be delivered to the tenant's webhook
//! (`mlgate_webhooks`, its URL and signing secret) through an outbox of
//! deliveries with their attempts (`mlgate_webhook_deliveries`).
//!
//! On PostgreSQL the table has a tenant policy that is enabled but not
//! forced, like the API keys: the API (as the gateway role) sees only its
//! tenant's monitors, while the scheduler (the pool's own role) finds the
//! due ones of every tenant; each is then claimed and evaluated in a
//! transaction scoped to its tenant. The deliveries likewise; the webhooks
//! themselves get the forced policy (only ever read under a tenant's scope).

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
            run_script(manager, &tenant_policy("mlgate_monitors", false)).await?;
            run_script(manager, &tenant_policy("mlgate_webhooks", true)).await?;
            run_script(manager, &tenant_policy("mlgate_webhook_deliveries", false)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, DOWN).await
    }
}

const POSTGRES_UP: &str = r#"
CREATE TABLE mlgate_monitors (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    monitor_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    signal VARCHAR(40) NOT NULL CHECK (signal IN
        ('violation_probability', 'confidence_score', 'risk_score', 'inference_time', 'shap')),
    feature VARCHAR(255),
    method VARCHAR(20) NOT NULL CHECK (method IN ('psi', 'ks', 'wasserstein', 'jensen_shannon', 'hellinger')),
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
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_mlgate_monitors_tenant_monitor UNIQUE (tenant_id, monitor_id),
    CONSTRAINT fk_mlgate_monitors_model FOREIGN KEY (tenant_id, model_id)
        REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
CREATE INDEX idx_mlgate_monitors_due ON mlgate_monitors (next_due_at) WHERE enabled
;;
CREATE TABLE mlgate_webhooks (
    tenant_id VARCHAR(255) PRIMARY KEY CHECK (tenant_id <> ''),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
)
;;
CREATE TABLE mlgate_webhook_deliveries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    delivery_id VARCHAR(255) NOT NULL,
    monitor_id VARCHAR(255) NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status VARCHAR(20) NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    CONSTRAINT uq_mlgate_webhook_deliveries_tenant_delivery UNIQUE (tenant_id, delivery_id)
)
;;
CREATE INDEX idx_mlgate_webhook_deliveries_due ON mlgate_webhook_deliveries (next_attempt_at)
    WHERE status = 'pending'
;;
CREATE INDEX idx_mlgate_webhook_deliveries_tenant_created ON mlgate_webhook_deliveries (tenant_id, created_at DESC)
"#;

const DOWN: &str = "DROP TABLE IF EXISTS mlgate_webhook_deliveries\n;;\nDROP TABLE IF EXISTS mlgate_webhooks\n;;\nDROP TABLE IF EXISTS mlgate_monitors";
