//! A day tier for `mlgate_distribution_hours` (PostgreSQL only), kept from
//! the hours by the statement triggers of migration 000015's tiers:
//! `mlgate_distribution_days`, the predictions per (signal, 1 % bin) and
//! UTC day. A 7-day drift reference then reads about 7 rows per bin instead
//! of 168: at the benchmark's large tenant an hour holds ~170 predictions
//! of a model, so the hourly bins were hardly smaller than the rows.
//!
//! The rebuild (`mlgate_rebuild_rollups`), the walk of every rollup's keys
//! (`mlgate_rollup_hours`) and the comparison with the rows
//! (`mlgate_rollup_differences`) are redefined to include the new tier.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20260101_000004_row_level_security::tenant_policy;
use crate::m20260101_000015_rollup_days::{differences, rebuild_and_walk, Agg, Tier, TIERS};
use crate::sql::run_script;

#[derive(DeriveMigrationName)]
pub struct Migration;

const DISTRIBUTION: Tier = Tier {
    hours: "mlgate_distribution_hours",
    days: "mlgate_distribution_days",
    keys: &[("signal", "VARCHAR(20)"), ("bin", "INTEGER")],
    measures: &[("predictions", "BIGINT", Agg::Sum)],
};

fn all_tiers() -> Vec<&'static Tier> {
    TIERS.iter().chain([&DISTRIBUTION]).collect()
}

fn up() -> String {
    let tier = &DISTRIBUTION;
    let mut out = tier.create();
    // The forced tenant policy would hide the hours from a migrating owner
    // that is not a superuser: lifted for the copy (one transaction).
    out.push_str(&format!(
        "ALTER TABLE {hours} NO FORCE ROW LEVEL SECURITY\n;;\n\
         INSERT INTO {days} ({columns}) {fresh}\n;;\n\
         ALTER TABLE {hours} FORCE ROW LEVEL SECURITY\n;;\n",
        hours = tier.hours,
        days = tier.days,
        columns = tier.columns(),
        fresh = tier.summed_hours()
    ));
    out.push_str(&tier.triggers());
    out.push_str(&rebuild_and_walk(&all_tiers()));
    out.push_str(&differences(&all_tiers()));
    out
}

fn down() -> String {
    // The functions first: they name the table the tier's drop removes.
    let mut out = rebuild_and_walk(&TIERS.each_ref());
    out.push_str(&differences(&TIERS.each_ref()));
    out.push_str(&DISTRIBUTION.drop());
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        run_script(manager, &up()).await?;
        run_script(manager, &tenant_policy(DISTRIBUTION.days, true)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        run_script(manager, &down()).await
    }
}
