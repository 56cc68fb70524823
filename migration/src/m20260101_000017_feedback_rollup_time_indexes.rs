//! The feedback rollups (migrations 000013 and 000015) are keyed model
//! first, so a read of every model of a tenant over a window (model
//! performance with no model named, the dashboard's usual question) could
//! only narrow them to the tenant: at a tenant with most of the rows,
//! PostgreSQL read the whole tables (40 ms at the benchmark's 500k tenant
//! for a week, 7.7 ms with these). The prediction rollups have had the same
//! index since they were made. PostgreSQL only, like the rollups.

use sea_orm_migration::prelude::*;

use crate::sql::run_on_postgres;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE INDEX idx_mlgate_feedback_hours_tenant_hour ON mlgate_feedback_hours (tenant_id, hour_start)
;;
CREATE INDEX idx_mlgate_feedback_days_tenant_day ON mlgate_feedback_days (tenant_id, day_start)
;;
";

const DOWN: &str = "
DROP INDEX idx_mlgate_feedback_days_tenant_day
;;
DROP INDEX idx_mlgate_feedback_hours_tenant_hour
;;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, DOWN).await
    }
}
