//! Drift thresholds for the two distances mlgate computes itself
//! (`driftAnalysis` and monitors): Jensen–Shannon distance and Hellinger
//! distance, defaulting to 0.1 / 0.2 (Evidently's drift threshold for both
//! is 0.1). Tenants that already set thresholds get the defaults for these.

use sea_orm_migration::prelude::*;

use crate::sql::run_for_backend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, DOWN).await
    }
}

const POSTGRES_UP: &str = r#"
ALTER TABLE mlgate_drift_thresholds
    ADD COLUMN jensen_shannon_warning DECIMAL(10,6) NOT NULL DEFAULT 0.1,
    ADD COLUMN jensen_shannon_critical DECIMAL(10,6) NOT NULL DEFAULT 0.2,
    ADD COLUMN hellinger_warning DECIMAL(10,6) NOT NULL DEFAULT 0.1,
    ADD COLUMN hellinger_critical DECIMAL(10,6) NOT NULL DEFAULT 0.2,
    ADD CONSTRAINT ck_mlgate_drift_thresholds_jensen_shannon
        CHECK (0 <= jensen_shannon_warning AND jensen_shannon_warning <= jensen_shannon_critical),
    ADD CONSTRAINT ck_mlgate_drift_thresholds_hellinger
        CHECK (0 <= hellinger_warning AND hellinger_warning <= hellinger_critical)
"#;

// SQLite adds one column per statement, and a column's CHECK there may only
// look at that column; the writer checks the order of the pair.
const SQLITE_UP: &str = r#"
ALTER TABLE mlgate_drift_thresholds ADD COLUMN jensen_shannon_warning REAL NOT NULL DEFAULT 0.1 CHECK (jensen_shannon_warning >= 0)
;;
ALTER TABLE mlgate_drift_thresholds ADD COLUMN jensen_shannon_critical REAL NOT NULL DEFAULT 0.2 CHECK (jensen_shannon_critical >= 0)
;;
ALTER TABLE mlgate_drift_thresholds ADD COLUMN hellinger_warning REAL NOT NULL DEFAULT 0.1 CHECK (hellinger_warning >= 0)
;;
ALTER TABLE mlgate_drift_thresholds ADD COLUMN hellinger_critical REAL NOT NULL DEFAULT 0.2 CHECK (hellinger_critical >= 0)
"#;

const DOWN: &str = r#"
ALTER TABLE mlgate_drift_thresholds DROP COLUMN hellinger_critical
;;
ALTER TABLE mlgate_drift_thresholds DROP COLUMN hellinger_warning
;;
ALTER TABLE mlgate_drift_thresholds DROP COLUMN jensen_shannon_critical
;;
ALTER TABLE mlgate_drift_thresholds DROP COLUMN jensen_shannon_warning
"#;
