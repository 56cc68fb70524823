//! A day tier for `mlgate_distribution_hours` (PostgreSQL only), kept from
//! the hours by the statement triggers of migration 000015's tiers:
//! `mlgate_distribution_days`, the predictions per (signal, 1 % bin) and
//! UTC day. A 7-day drift reference then reads about 7 rows per bin instead
//! of 168: at the benchmark's large tenant an hour holds ~170 predictions
//! of a model, so the hourly bins were hardly smaller than the rows.
//!
//! Unlike 000015's tiers, which recompute each changed day row from its
//! hours (exact for minima and maxima), this tier only counts, so its
//! trigger adds each statement's difference to the day rows: a prediction
//! insert touches about three bins of an hour, and recomputing their days
//! read up to 24 hour rows each (measured in psql: 2,000-prediction inserts
//! 211 ms without the tier, 262 ms recomputing). Each difference is added
//! with `ON CONFLICT DO UPDATE`, so concurrent writers' differences add up;
//! a day row left at zero is deleted (an hour row never holds zero). A
//! rebuild (`mlgate_rebuild_rollups`) recomputes the days it touches from
//! their hours, so it repairs a day row written past the triggers.
//!
//! The rebuild (`mlgate_rebuild_rollups`), the walk of every rollup's keys
//! (`mlgate_rollup_hours`) and the comparison with the rows
//! (`mlgate_rollup_differences`) are redefined to include the new tier.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20260101_000004_row_level_security::tenant_policy;
use crate::m20260101_000015_rollup_days::{
    differences, rebuild_and_walk, statement_triggers, Agg, Tier, TIERS,
};
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
    out.push_str(&delta_triggers(tier));
    out.push_str(&rebuild_and_walk(&all_tiers(), &repair(tier)));
    out.push_str(&differences(&all_tiers()));
    out
}

/// What the rebuild adds for this tier: its days of the rebuilt hours
/// recomputed from their hours. Differences keep a day row right only if it
/// was right before; a rebuild must also repair one written past the
/// triggers (the tiers of 000015 recompute on every change anyway).
fn repair(tier: &Tier) -> String {
    let hours = tier.hours;
    tier.recompute(
        &format!(
            "(SELECT h.* FROM {hours} h
               JOIN (SELECT DISTINCT u.t, u.m, u.v, date_trunc('day', u.hr, 'UTC') AS day_start,
                            date_trunc('day', u.hr, 'UTC') + interval '24 hours' AS day_end
                       FROM unnest(tenants, models, versions, hours) AS u(t, m, v, hr)) r
                 ON h.tenant_id = r.t AND h.model_id = r.m AND h.model_version = r.v
                AND h.hour_start >= r.day_start AND h.hour_start < r.day_end)"
        ),
        false,
    )
}

/// The day rows of the hour rows in `rows` (`predictions` as `n`, negated
/// with `sign` -1), summed per day key.
fn day_sums(rows: &str, sign: &str) -> String {
    format!(
        "SELECT tenant_id, model_id, model_version, date_trunc('day', hour_start, 'UTC') AS day_start,
                signal, bin, {sign} predictions AS n FROM {rows}"
    )
}

/// Statement triggers on the hour table that add each change's difference
/// to the day rows (names as 000015's, so [`Tier::drop`] removes them).
fn delta_triggers(tier: &Tier) -> String {
    let hours = tier.hours;
    let days = tier.days;
    let function = tier.function();
    let add = |source: String| {
        format!(
            "        INSERT INTO {days} AS x (tenant_id, model_id, model_version, day_start, signal, bin, predictions)
        SELECT tenant_id, model_id, model_version, day_start, signal, bin, sum(n)
          FROM ({source}) c
         GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (tenant_id, model_id, day_start, model_version, signal, bin)
        DO UPDATE SET predictions = x.predictions + EXCLUDED.predictions;
"
        )
    };
    let emptied = format!(
        "        DELETE FROM {days} x USING (SELECT DISTINCT tenant_id, model_id, model_version,
                                        date_trunc('day', hour_start, 'UTC') AS day_start, signal, bin
                                   FROM old_rows) k
         WHERE x.tenant_id = k.tenant_id AND x.model_id = k.model_id AND x.day_start = k.day_start
           AND x.model_version = k.model_version AND x.signal = k.signal AND x.bin = k.bin
           AND x.predictions = 0;
"
    );
    let inserted = add(day_sums("new_rows", ""));
    let updated = add(format!(
        "{} UNION ALL {}",
        day_sums("new_rows", ""),
        day_sums("old_rows", "-")
    ));
    let deleted = add(day_sums("old_rows", "-"));
    let triggers = statement_triggers(hours, &function);
    format!(
        "CREATE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
{inserted}    ELSIF TG_OP = 'DELETE' THEN
{deleted}{emptied}    ELSIF TG_OP = 'UPDATE' THEN
{updated}{emptied}    ELSE
        TRUNCATE {days};
    END IF;
    RETURN NULL;
END
$$
;;
{triggers}"
    )
}

fn down() -> String {
    // The functions first: they name the table the tier's drop removes.
    let mut out = rebuild_and_walk(&TIERS.each_ref(), "");
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
