//! The feedback rollup trigger (migration 000013) finds the predictions a
//! statement's feedback is about by joining their ids to `ml_predictions`.
//! When the planner believes the tenant has almost no predictions (a tenant
//! loaded in the same transaction, statistics not yet gathered), it drove
//! that join from an index scan of all the tenant's predictions and tested
//! every feedback row against each: 2000 feedback rows on a tenant of
//! 200 000 predictions made 400 million comparisons, 70 s. `LATERAL` fixes
//! the order: one unique-index lookup per feedback row, whatever the
//! estimates (`LIMIT 1`, exact on the unique key, keeps the planner from
//! flattening the subquery back into the join). PostgreSQL only, like the
//! rollups.

use sea_orm_migration::prelude::*;

use crate::m20260101_000013_dashboard_rollups::{
    changed_feedback_function, changed_feedback_function_000013,
};
use crate::sql::run_on_postgres;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = concat!(
    changed_feedback_function!(
        "CREATE OR REPLACE FUNCTION",
        r#"              FROM unnest(tenants, ids) AS a(tenant_id, prediction_id)
              CROSS JOIN LATERAL (SELECT * FROM ml_predictions q
                                   WHERE q.tenant_id = a.tenant_id AND q.prediction_id = a.prediction_id LIMIT 1) p
"#,
        r#"          FROM (SELECT DISTINCT * FROM unnest(tenants, ids)) AS a(tenant_id, prediction_id)
          CROSS JOIN LATERAL (SELECT * FROM ml_predictions q
                               WHERE q.tenant_id = a.tenant_id AND q.prediction_id = a.prediction_id LIMIT 1) p
"#
    ),
    ";;\n"
);

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let down = changed_feedback_function_000013!().replacen(
            "CREATE FUNCTION",
            "CREATE OR REPLACE FUNCTION",
            1,
        );
        run_on_postgres(manager, &format!("{down};;\n")).await
    }
}
