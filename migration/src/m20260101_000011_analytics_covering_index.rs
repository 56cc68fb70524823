//! A covering index for the analytics scans on PostgreSQL: a tenant's
//! predictions in a time range with the columns the statistics and the
//! exact percentiles read, so that those scans are index-only instead of
//! fetching every (wide: SHAP values, attention weights) row from the heap.
//! Measured with mlgate-bench (50 000 predictions per tenant, 30 days, after
//! VACUUM): counts per day took 202 ms p50 reading the heap, 112 ms with this
//! index, 38 ms once only the selected measures were aggregated.
//!
//! SQLite keeps its indexes; its rows are read in place from the B-tree.

use sea_orm_migration::prelude::*;

use crate::sql::run_for_backend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE INDEX idx_ml_predictions_tenant_time_measures ON ml_predictions
    (tenant_id, prediction_timestamp)
    INCLUDE (model_id, model_version, risk_level, violation_probability, confidence_score, inference_time_ms)
;;
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS idx_ml_predictions_tenant_time_measures
;;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, UP, "").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, "").await
    }
}
