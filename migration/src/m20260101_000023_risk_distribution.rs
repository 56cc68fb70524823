//! Risk scores join the rolled-up distributions (PostgreSQL only): the
//! prediction triggers, the rebuild and the comparison with the rows of
//! migration 000013 now also count each prediction's `risk_score` (when it
//! has one) per 1 %-wide bin as signal `risk` of `mlgate_distribution_hours`
//! (and so of 000022's day tier). The drift engine then reads risk scores
//! from the rollups as it reads probability and confidence, instead of
//! scanning a window's rows (the largest part of a drift analysis on the
//! benchmark's large tenant: 19 of 30 ms of database time).
//!
//! The functions are 000013's own definitions with two edits, applied to
//! its text here (checked: each edit must find what it replaces): the
//! per-prediction bins gain the risk score, and an update that changes only
//! a risk score now counts as a change of a rolled-up column.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20260101_000013_dashboard_rollups::{BACKFILL, UP};
use crate::sql::run_script;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// 000013's bins of a prediction `p`.
const BINS: &str = "(VALUES ('probability', mlgate_probability_bin(p.violation_probability)),
                 ('confidence', mlgate_probability_bin(p.confidence_score))) AS d(signal, bin)";

/// With the risk score, when the prediction has one in [0, 1] (the column
/// has no CHECK: a score outside is not binned, and the drift engine leaves
/// it out on every path).
const BINS_WITH_RISK: &str = "(SELECT b.signal, b.bin
                  FROM (VALUES ('probability', mlgate_probability_bin(p.violation_probability)),
                               ('confidence', mlgate_probability_bin(p.confidence_score)),
                               ('risk', mlgate_probability_bin(p.risk_score))) AS b(signal, bin)
                 WHERE b.bin BETWEEN 0 AND 100) AS d(signal, bin)";

/// 000013's rolled-up columns of a prediction (what an update must change
/// to touch the rollups).
const COLUMNS: &str = "remediation_status, shap_values";
const COLUMNS_WITH_RISK: &str = "remediation_status, shap_values, risk_score";

/// The functions 000013 defines that bin predictions or list rolled-up
/// columns, by the name 000013 gives them and the name they have now
/// (000015 renamed the comparison).
const FUNCTIONS: [(&str, &str); 4] = [
    ("mlgate_rebuild_hours(", "mlgate_rebuild_hours("),
    (
        "mlgate_roll_up_inserted_predictions()",
        "mlgate_roll_up_inserted_predictions()",
    ),
    (
        "mlgate_roll_up_updated_predictions()",
        "mlgate_roll_up_updated_predictions()",
    ),
    (
        "mlgate_rollup_differences()",
        "mlgate_rollup_hour_differences()",
    ),
];

/// 000013's statement creating `name` (up to its `;;`).
fn definition(name: &str) -> Result<&'static str, DbErr> {
    let missing = || DbErr::Migration(format!("000013 defines no {name}"));
    for script in [UP, BACKFILL] {
        if let Some(start) = script.find(&format!("CREATE FUNCTION {name}")) {
            let end = script[start..].find("\n;;").ok_or_else(missing)?;
            return Ok(&script[start..start + end]);
        }
    }
    Err(missing())
}

/// Every function of [`FUNCTIONS`], redefined `with_risk` or as 000013 had it.
fn functions(with_risk: bool) -> Result<String, DbErr> {
    let mut out = String::new();
    for (name, now) in FUNCTIONS {
        let original = definition(name)?;
        let mut sql = original.replacen(
            &format!("CREATE FUNCTION {name}"),
            &format!("CREATE OR REPLACE FUNCTION {now}"),
            1,
        );
        if with_risk {
            let edited = sql
                .replace(BINS, BINS_WITH_RISK)
                .replace(COLUMNS, COLUMNS_WITH_RISK);
            if edited == sql {
                return Err(DbErr::Migration(format!(
                    "{name}: neither the bins nor the columns of 000013 found"
                )));
            }
            sql = edited;
        }
        out.push_str(&sql);
        out.push_str("\n;;\n");
    }
    Ok(out)
}

const CHECK_WITH_RISK: &str = "
ALTER TABLE mlgate_distribution_hours DROP CONSTRAINT mlgate_distribution_hours_signal_check
;;
ALTER TABLE mlgate_distribution_hours ADD CONSTRAINT mlgate_distribution_hours_signal_check
    CHECK (signal IN ('probability', 'confidence', 'risk'))
;;
";

// The forced tenant policies would hide the rows from a migrating owner
// that is not a superuser: lifted for the copy (one transaction). The day
// tier's trigger sums the new hours into days.
const BACKFILL_RISK: &str = "
ALTER TABLE ml_predictions NO FORCE ROW LEVEL SECURITY
;;
ALTER TABLE mlgate_distribution_hours NO FORCE ROW LEVEL SECURITY
;;
ALTER TABLE mlgate_distribution_days NO FORCE ROW LEVEL SECURITY
;;
INSERT INTO mlgate_distribution_hours (tenant_id, model_id, model_version, hour_start, signal, bin, predictions)
SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC'), 'risk',
       mlgate_probability_bin(risk_score), count(*)
  FROM ml_predictions
 WHERE prediction_timestamp IS NOT NULL AND risk_score BETWEEN 0 AND 1
 GROUP BY 1, 2, 3, 4, 5, 6
;;
ALTER TABLE mlgate_distribution_days FORCE ROW LEVEL SECURITY
;;
ALTER TABLE mlgate_distribution_hours FORCE ROW LEVEL SECURITY
;;
ALTER TABLE ml_predictions FORCE ROW LEVEL SECURITY
;;
";

const DROP_RISK: &str = "
ALTER TABLE mlgate_distribution_hours NO FORCE ROW LEVEL SECURITY
;;
ALTER TABLE mlgate_distribution_days NO FORCE ROW LEVEL SECURITY
;;
DELETE FROM mlgate_distribution_hours WHERE signal = 'risk'
;;
ALTER TABLE mlgate_distribution_days FORCE ROW LEVEL SECURITY
;;
ALTER TABLE mlgate_distribution_hours FORCE ROW LEVEL SECURITY
;;
ALTER TABLE mlgate_distribution_hours DROP CONSTRAINT mlgate_distribution_hours_signal_check
;;
ALTER TABLE mlgate_distribution_hours ADD CONSTRAINT mlgate_distribution_hours_signal_check
    CHECK (signal IN ('probability', 'confidence'))
;;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        run_script(manager, CHECK_WITH_RISK).await?;
        run_script(manager, &functions(true)?).await?;
        run_script(manager, BACKFILL_RISK).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        run_script(manager, &functions(false)?).await?;
        run_script(manager, DROP_RISK).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_gets_its_edit() {
        let with = functions(true).unwrap();
        // Insert trigger and rebuild bin once, the comparison twice (both
        // directions); the update trigger lists the columns four times.
        assert_eq!(
            with.matches("('risk', mlgate_probability_bin(p.risk_score))")
                .count(),
            4
        );
        assert_eq!(with.matches(COLUMNS_WITH_RISK).count(), 4);
        assert_eq!(with.matches("CREATE OR REPLACE FUNCTION").count(), 4);
        assert!(with.contains("CREATE OR REPLACE FUNCTION mlgate_rollup_hour_differences()"));
        let without = functions(false).unwrap();
        assert!(!without.contains("'risk'"));
        assert_eq!(without.matches("CREATE OR REPLACE FUNCTION").count(), 4);
    }
}
