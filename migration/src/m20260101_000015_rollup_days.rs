//! A day tier beside the hourly rollups of migration 000013, PostgreSQL
//! only: `mlgate_prediction_days`, `mlgate_prediction_latency_days`,
//! `mlgate_shap_days` and `mlgate_feedback_days`, each the sum (and minima,
//! maxima) of its hour table's rows over a UTC day, with the same keys.
//! A 30-day window then reads about 30 rows per group instead of 720, and
//! the cost of a dashboard analytic stops growing with the tenant once its
//! days hold every group (the hours only fill at a larger size).
//!
//! The days are kept from the hours, not from the predictions: a statement
//! trigger on each hour table recomputes the day rows of the keys it
//! changed from their (at most 24) hour rows. That is exact for every
//! measure, minima and maxima included, whatever changed the hours (insert,
//! rebuild, feedback difference, cascade). Recomputing is only safe if no
//! other transaction changes an hour of the same day meanwhile, so the
//! rollup lock (`mlgate_lock_hours`) now locks the (tenant, model, version,
//! UTC day) of an hour instead of the hour: writers of different hours of
//! one model-day serialise. Ingestion writes the current hour, where they
//! serialised already; feedback on an earlier hour of the same day now
//! waits for a concurrent batch of that day's predictions too.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20260101_000004_row_level_security::{drop_tenant_policy, tenant_policy};
use crate::sql::{run_on_postgres, run_script};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, Copy)]
pub(crate) enum Agg {
    Sum,
    Min,
    Max,
}

/// One hour table and its day table (later migrations add tiers with it).
pub(crate) struct Tier {
    pub(crate) hours: &'static str,
    pub(crate) days: &'static str,
    /// Key columns besides tenant, model, version and time, with types.
    pub(crate) keys: &'static [(&'static str, &'static str)],
    /// Measure columns, with types and how a day combines its hours.
    pub(crate) measures: &'static [(&'static str, &'static str, Agg)],
}

pub(crate) const TIERS: [Tier; 4] = [
    Tier {
        hours: "mlgate_prediction_hours",
        days: "mlgate_prediction_days",
        keys: &[
            ("risk_level", "VARCHAR(20)"),
            ("remediation_status", "VARCHAR(50)"),
        ],
        measures: &[
            ("predictions", "BIGINT", Agg::Sum),
            ("explained", "BIGINT", Agg::Sum),
            ("probability_sum", "NUMERIC", Agg::Sum),
            ("probability_min", "NUMERIC", Agg::Min),
            ("probability_max", "NUMERIC", Agg::Max),
            ("confidence_sum", "NUMERIC", Agg::Sum),
            ("confidence_min", "NUMERIC", Agg::Min),
            ("confidence_max", "NUMERIC", Agg::Max),
            ("latency_sum", "NUMERIC", Agg::Sum),
            ("latency_min", "NUMERIC", Agg::Min),
            ("latency_max", "NUMERIC", Agg::Max),
        ],
    },
    Tier {
        hours: "mlgate_prediction_latency_hours",
        days: "mlgate_prediction_latency_days",
        keys: &[("bucket", "INTEGER")],
        measures: &[("predictions", "BIGINT", Agg::Sum)],
    },
    Tier {
        hours: "mlgate_shap_hours",
        days: "mlgate_shap_days",
        keys: &[("feature", "TEXT")],
        measures: &[
            ("predictions", "BIGINT", Agg::Sum),
            ("value_sum", "NUMERIC", Agg::Sum),
            ("abs_sum", "NUMERIC", Agg::Sum),
        ],
    },
    Tier {
        hours: "mlgate_feedback_hours",
        days: "mlgate_feedback_days",
        keys: &[("bin", "INTEGER")],
        measures: &[
            ("reviewed", "BIGINT", Agg::Sum),
            ("feedback", "BIGINT", Agg::Sum),
            ("rated", "BIGINT", Agg::Sum),
            ("rating_sum", "NUMERIC", Agg::Sum),
            ("positive_n", "BIGINT", Agg::Sum),
            ("positive_sum", "NUMERIC", Agg::Sum),
            ("positive_squares", "NUMERIC", Agg::Sum),
            ("negative_n", "BIGINT", Agg::Sum),
            ("negative_sum", "NUMERIC", Agg::Sum),
            ("negative_squares", "NUMERIC", Agg::Sum),
            ("as_decided_n", "BIGINT", Agg::Sum),
            ("as_decided_sum", "NUMERIC", Agg::Sum),
            ("as_decided_squares", "NUMERIC", Agg::Sum),
            ("opposite_n", "BIGINT", Agg::Sum),
            ("opposite_sum", "NUMERIC", Agg::Sum),
            ("opposite_squares", "NUMERIC", Agg::Sum),
        ],
    },
];

/// A UTC day's first and last instant as SQL over a timestamp `t`; an
/// infinite timestamp is its own day. `24 hours`, not `1 day`: adding a
/// day to a `timestamptz` follows the session's time zone, and a writer in
/// a zone with daylight saving would get 23- or 25-hour days.
fn day_start(t: &str) -> String {
    format!("date_trunc('day', {t}, 'UTC')")
}

fn day_last(t: &str) -> String {
    let start = day_start(t);
    format!(
        "CASE WHEN isfinite({t}) THEN {start} + interval '24 hours' - interval '1 microsecond' ELSE {t} END"
    )
}

impl Tier {
    fn key_list(&self, alias: &str) -> String {
        self.keys
            .iter()
            .map(|(k, _)| format!("{alias}{k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn measure_list(&self) -> String {
        self.measures
            .iter()
            .map(|(m, _, _)| *m)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn columns(&self) -> String {
        format!(
            "tenant_id, model_id, model_version, day_start, {}, {}",
            self.key_list(""),
            self.measure_list()
        )
    }

    /// The day measures over hour rows `h`.
    fn aggregates(&self) -> String {
        self.measures
            .iter()
            .map(|(m, _, agg)| match agg {
                Agg::Sum => format!("sum(h.{m})"),
                Agg::Min => format!("min(h.{m})"),
                Agg::Max => format!("max(h.{m})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn create(&self) -> String {
        let keys: String = self
            .keys
            .iter()
            .map(|(k, ty)| format!("    {k} {ty} NOT NULL,\n"))
            .collect();
        let measures: String = self
            .measures
            .iter()
            .map(|(m, ty, _)| format!("    {m} {ty} NOT NULL,\n"))
            .collect();
        format!(
            "CREATE TABLE {days} (
    tenant_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    day_start TIMESTAMPTZ NOT NULL,
{keys}{measures}    PRIMARY KEY (tenant_id, model_id, day_start, model_version, {key_list}),
    FOREIGN KEY (tenant_id, model_id) REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
",
            days = self.days,
            key_list = self.key_list(""),
        )
    }

    /// The day rows as an aggregation of all the hour rows visible.
    pub(crate) fn summed_hours(&self) -> String {
        format!(
            "SELECT h.tenant_id, h.model_id, h.model_version, {day}, {keys}, {aggs}
               FROM {hours} h GROUP BY 1, 2, 3, 4, {positions}",
            day = day_start("h.hour_start"),
            keys = self.key_list("h."),
            aggs = self.aggregates(),
            hours = self.hours,
            positions = (5..5 + self.keys.len())
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    /// The statements that recompute the day rows of the keys in the hour
    /// rows `changed` (a transition table, or a union of two), and with
    /// `removed` delete those left with no hour (an insert leaves none).
    pub(crate) fn recompute(&self, changed: &str, removed: bool) -> String {
        let keys = self.key_list("");
        let k_keys = self.key_list("k.");
        let matches: String = self
            .keys
            .iter()
            .map(|(k, _)| format!(" AND h.{k} = k.{k}"))
            .collect();
        let same_day: String = self
            .keys
            .iter()
            .map(|(k, _)| format!(" AND x.{k} = k.{k}"))
            .collect();
        let updates = self
            .measures
            .iter()
            .map(|(m, _, _)| format!("{m} = EXCLUDED.{m}"))
            .collect::<Vec<_>>()
            .join(", ");
        // The day bounds are computed in `k` (not RLS-protected), so the
        // hour-table side compares plain columns: leakproof, an index range.
        let k = format!(
            "(SELECT DISTINCT tenant_id, model_id, model_version, {keys},
                     {start} AS day_start, {last} AS day_last
                FROM {changed} c) k",
            start = day_start("c.hour_start"),
            last = day_last("c.hour_start"),
        );
        let hour_of_day = format!(
            "h.tenant_id = k.tenant_id AND h.model_id = k.model_id
                 AND h.hour_start >= k.day_start AND h.hour_start <= k.day_last
                 AND h.model_version = k.model_version{matches}"
        );
        // One index range of hours per key (LATERAL): the transition
        // table's size is unknown to the planner, which otherwise joins it
        // to a scan of the whole hour table.
        let lateral = self
            .measures
            .iter()
            .map(|(m, _, agg)| {
                let f = match agg {
                    Agg::Sum => "sum",
                    Agg::Min => "min",
                    Agg::Max => "max",
                };
                format!(", {f}(h.{m}) AS {m}")
            })
            .collect::<String>();
        let fresh = self
            .measures
            .iter()
            .map(|(m, _, _)| format!("a.{m}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "        INSERT INTO {days} AS x ({columns})
        SELECT k.tenant_id, k.model_id, k.model_version, k.day_start, {k_keys}, {fresh}
          FROM {k} CROSS JOIN LATERAL (SELECT count(*) AS present{lateral}
                                         FROM {hours} h WHERE {hour_of_day}) a
         WHERE a.present > 0
         ORDER BY k.tenant_id, k.model_id, k.day_start, k.model_version, {k_keys}
        ON CONFLICT (tenant_id, model_id, day_start, model_version, {keys}) DO UPDATE SET {updates};
{delete}",
            days = self.days,
            hours = self.hours,
            columns = self.columns(),
            delete = if removed {
                format!(
                    "        DELETE FROM {days} x USING {k}
         WHERE x.tenant_id = k.tenant_id AND x.model_id = k.model_id AND x.day_start = k.day_start
           AND x.model_version = k.model_version{same_day}
           AND NOT EXISTS (SELECT 1 FROM {hours} h WHERE {hour_of_day});
",
                    days = self.days,
                    hours = self.hours,
                )
            } else {
                String::new()
            },
        )
    }

    /// Deletes the day rows of the days of hours `k(t, m, v, h)` (arrays
    /// of the rebuild's arguments) that have no hour left: a rebuild
    /// recomputes only the days of hour rows it rewrites.
    pub(crate) fn orphans(&self) -> String {
        let same_key: String = self
            .keys
            .iter()
            .map(|(k, _)| format!(" AND h.{k} = d.{k}"))
            .collect();
        format!(
            "    DELETE FROM {days} d USING (SELECT DISTINCT t, m, v, {start} AS day_start, {last} AS day_last
                                 FROM unnest(tenants, models, versions, hours) AS k(t, m, v, h)) k
     WHERE d.tenant_id = k.t AND d.model_id = k.m AND d.day_start = k.day_start AND d.model_version = k.v
       AND NOT EXISTS (SELECT 1 FROM {hours} h WHERE h.tenant_id = d.tenant_id AND h.model_id = d.model_id
                          AND h.hour_start >= k.day_start AND h.hour_start <= k.day_last
                          AND h.model_version = d.model_version{same_key});
",
            days = self.days,
            hours = self.hours,
            start = day_start("k.h"),
            last = day_last("k.h"),
        )
    }

    pub(crate) fn function(&self) -> String {
        format!("mlgate_roll_up_{}", self.days.trim_start_matches("mlgate_"))
    }

    pub(crate) fn triggers(&self) -> String {
        let function = self.function();
        let hours = self.hours;
        let days = self.days;
        format!(
            "CREATE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
{inserted}    ELSIF TG_OP = 'DELETE' THEN
{deleted}    ELSIF TG_OP = 'UPDATE' THEN
{updated}    ELSE
        TRUNCATE {days};
    END IF;
    RETURN NULL;
END
$$
;;
{triggers}",
            triggers = statement_triggers(hours, &function),
            inserted = self.recompute("new_rows", false),
            deleted = self.recompute("old_rows", true),
            updated = self.recompute(
                "(SELECT * FROM new_rows UNION ALL SELECT * FROM old_rows)",
                true
            ),
        )
    }

    pub(crate) fn drop(&self) -> String {
        let hours = self.hours;
        let mut out = String::new();
        for event in ["inserts", "updates", "deletes", "truncates"] {
            out.push_str(&format!(
                "DROP TRIGGER IF EXISTS {hours}_roll_up_{event} ON {hours}\n;;\n"
            ));
        }
        out.push_str(&format!(
            "DROP FUNCTION IF EXISTS {}()\n;;\n{}DROP TABLE IF EXISTS {}\n;;\n",
            self.function(),
            drop_tenant_policy(self.days),
            self.days
        ));
        out
    }

    /// `SELECT '<days>', count` of day rows that differ from an aggregation
    /// of the hours, both ways.
    pub(crate) fn differing(&self) -> String {
        let columns = self.columns();
        let days = self.days;
        let fresh = self.summed_hours();
        format!(
            "SELECT '{days}'::text, (SELECT count(*) FROM ((SELECT {columns} FROM {days} EXCEPT {fresh})
                UNION ALL ({fresh} EXCEPT SELECT {columns} FROM {days})) d)"
        )
    }
}

/// The statement triggers on an hour table that run a day tier's
/// `function` with the changed rows (`new_rows`, `old_rows`).
pub(crate) fn statement_triggers(hours: &str, function: &str) -> String {
    format!(
        "CREATE TRIGGER {hours}_roll_up_inserts AFTER INSERT ON {hours}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {function}()
;;
CREATE TRIGGER {hours}_roll_up_updates AFTER UPDATE ON {hours}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {function}()
;;
CREATE TRIGGER {hours}_roll_up_deletes AFTER DELETE ON {hours}
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {function}()
;;
CREATE TRIGGER {hours}_roll_up_truncates AFTER TRUNCATE ON {hours}
    FOR EACH STATEMENT EXECUTE FUNCTION {function}()
;;
"
    )
}

/// `mlgate_lock_hours` locking what `unit` truncates an hour to.
fn lock_function(unit: &str) -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION mlgate_lock_hours(
    tenants TEXT[], models TEXT[], versions TEXT[], hours TIMESTAMPTZ[]
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(key)
       FROM (SELECT DISTINCT hashtextextended(
                    concat_ws(E'\x1f', t, m, v, extract(epoch FROM {unit})::text), 7019) AS key
               FROM unnest(tenants, models, versions, hours) AS k(t, m, v, h)
              ORDER BY 1) keys;
END
$$
;;
"#
    )
}

/// 000013's list of the hours a full rebuild walks.
const ROLLUP_HOURS_000013: &str = "
    SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC')
      FROM ml_predictions WHERE prediction_timestamp IS NOT NULL
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_prediction_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_prediction_latency_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_shap_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_feedback_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_distribution_hours";

fn rollup_hours(extra: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION mlgate_rollup_hours()
RETURNS TABLE (tenant_id TEXT, model_id TEXT, model_version TEXT, hour_start TIMESTAMPTZ)
LANGUAGE sql STABLE AS $${ROLLUP_HOURS_000013}{extra}
    ORDER BY 1, 2, 3, 4
$$
;;
"
    )
}

/// `mlgate_rebuild_rollups`, what `mlgate rollups rebuild` runs: 000013's
/// `mlgate_rebuild_hours` (the triggers' path, left as it is: a trigger's
/// day recomputation leaves no orphan), then the day rows of its hours'
/// days left with no hour deleted. The hours a full rebuild walks include
/// each day row's first hour, so a day row with nothing behind it (written
/// past the triggers) is visited.
pub(crate) fn rebuild_and_walk(tiers: &[&Tier], repairs: &str) -> String {
    let mut out = String::from(
        "CREATE OR REPLACE FUNCTION mlgate_rebuild_rollups(
    tenants TEXT[], models TEXT[], versions TEXT[], hours TIMESTAMPTZ[], shap BOOLEAN
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mlgate_rebuild_hours(tenants, models, versions, hours, shap);
",
    );
    for tier in tiers {
        out.push_str(&tier.orphans());
    }
    out.push_str(repairs);
    out.push_str("END\n$$\n;;\n");
    let days: String = tiers
        .iter()
        .map(|t| {
            format!(
                "\n    UNION SELECT tenant_id, model_id, model_version, day_start FROM {}",
                t.days
            )
        })
        .collect();
    out.push_str(&rollup_hours(&days));
    out
}

fn up() -> String {
    let mut out = String::from(
        "-- Locks the (tenant, model, version, UTC day) of each hour: every writer
-- of a day's hours, so that the day tier's recomputation sees them all.
",
    );
    out.push_str(&lock_function(&day_start("h")));
    for tier in &TIERS {
        out.push_str(&tier.create());
    }
    out.push_str(
        "CREATE INDEX idx_mlgate_prediction_days_tenant_day ON mlgate_prediction_days (tenant_id, day_start)\n;;\n",
    );
    for tier in &TIERS {
        // The forced tenant policy would hide the hours from a migrating
        // owner that is not a superuser: lifted for the copy (one
        // transaction).
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
    }
    out.push_str(&rebuild_and_walk(&TIERS.each_ref(), ""));
    out.push_str(
        "ALTER FUNCTION mlgate_rollup_differences() RENAME TO mlgate_rollup_hour_differences\n;;\n",
    );
    out.push_str(&differences(&TIERS.each_ref()));
    out
}

/// `mlgate_rollup_differences()`: 000013's hour differences, then each
/// day tier's.
pub(crate) fn differences(tiers: &[&Tier]) -> String {
    let mut out = String::from(
        "CREATE OR REPLACE FUNCTION mlgate_rollup_differences() RETURNS TABLE (rollup TEXT, differing BIGINT)
LANGUAGE sql STABLE AS $$
SELECT * FROM mlgate_rollup_hour_differences()",
    );
    for tier in tiers {
        out.push_str(" UNION ALL ");
        out.push_str(&tier.differing());
    }
    out.push_str("\n$$\n;;\n");
    out
}

fn down() -> String {
    let mut out = String::from(
        "DROP FUNCTION IF EXISTS mlgate_rollup_differences()
;;
ALTER FUNCTION mlgate_rollup_hour_differences() RENAME TO mlgate_rollup_differences
;;
DROP FUNCTION IF EXISTS mlgate_rebuild_rollups(TEXT[], TEXT[], TEXT[], TIMESTAMPTZ[], BOOLEAN)
;;
",
    );
    out.push_str(&rollup_hours(""));
    for tier in TIERS.iter().rev() {
        out.push_str(&tier.drop());
    }
    out.push_str(&lock_function("h"));
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        run_script(manager, &up()).await?;
        for tier in &TIERS {
            run_script(manager, &tenant_policy(tier.days, true)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, &down()).await
    }
}
