//! Indexes in the exact order the API pages in.
//!
//! Lists sort by a timestamp descending with NULLs last, ties broken by the
//! business id. A PostgreSQL `DESC` index keeps NULLs first, so it cannot
//! serve `DESC NULLS LAST`, and every page sorted all of a tenant's rows
//! (seen with EXPLAIN on the demo data). These indexes match the order,
//! tiebreaker included, so a page is an index range scan; read backwards,
//! they serve `last`/`before` too. SQLite is left as it is: its `DESC`
//! already puts NULLs last (it has no NULLS clause in index definitions),
//! and dropping and recreating an index under the same name in one
//! migration failed there ("already exists") on a pooled connection.

use sea_orm_migration::prelude::*;

use crate::sql::run_for_backend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index, table, leading columns, timestamp column, tiebreaker)
const KEYSET_INDEXES: [(&str, &str, &str, &str, &str); 9] = [
    (
        "idx_ml_predictions_tenant_time",
        "ml_predictions",
        "tenant_id",
        "prediction_timestamp",
        "prediction_id",
    ),
    (
        "idx_ml_predictions_tenant_model_time",
        "ml_predictions",
        "tenant_id, model_id",
        "prediction_timestamp",
        "prediction_id",
    ),
    (
        "idx_ml_feedback_tenant_created",
        "ml_feedback",
        "tenant_id",
        "created_at",
        "feedback_id",
    ),
    (
        "idx_ml_drift_metrics_tenant_time",
        "ml_drift_metrics",
        "tenant_id",
        "measured_at",
        "metric_id",
    ),
    (
        "idx_ml_drift_metrics_tenant_model_time",
        "ml_drift_metrics",
        "tenant_id, model_id",
        "measured_at",
        "metric_id",
    ),
    (
        "idx_ml_models_tenant_created",
        "ml_models",
        "tenant_id",
        "created_at",
        "model_id",
    ),
    (
        "idx_ml_training_jobs_tenant_created",
        "ml_training_jobs",
        "tenant_id",
        "created_at",
        "job_id",
    ),
    (
        "idx_ml_feature_store_tenant_computed",
        "ml_feature_store",
        "tenant_id",
        "computed_at",
        "feature_set_id",
    ),
    (
        "idx_ml_configurations_tenant_created",
        "ml_configurations",
        "tenant_id",
        "created_at",
        "id",
    ),
];

fn script(nulls_last: &str, with_tiebreaker: bool) -> String {
    KEYSET_INDEXES
        .iter()
        .map(|(name, table, leading, time, tiebreaker)| {
            let tail = if with_tiebreaker {
                format!(", {tiebreaker} DESC")
            } else {
                String::new()
            };
            format!(
                "DROP INDEX IF EXISTS {name}\n;;\nCREATE INDEX {name} ON {table} ({leading}, {time} DESC{nulls_last}{tail})\n;;\n"
            )
        })
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, &script(" NULLS LAST", true), "").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, &script("", false), "").await
    }
}
