//! SHAP importance from `mlgate_shap_hours` (per feature: predictions,
//! sum and sum of absolute values, exact) and the explained-prediction
//! counts of `mlgate_prediction_hours`; the partial hours from the rows
//! through the same `mlgate_shap_entries` the triggers use.

use super::super::get_count;
use super::super::shap::{answer, ShapImportance};
use super::super::sql::Sql;
use super::{parts, split, Additive, Scope};
use crate::db::ScopedTxn;
use crate::domain::explanation::MAX_FEATURES;
use crate::error::ApiResult;

/// Two statements: the predictions with SHAP values, and the per-feature
/// sums.
pub async fn importance(
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    top: usize,
) -> ApiResult<ShapImportance> {
    let split = split(scope.window);

    let mut count = Sql::new(txn.backend());
    count.push("SELECT CAST(SUM(n) AS BIGINT) AS n FROM (");
    let any = parts(
        &mut count,
        txn,
        scope,
        &split,
        |sql: &mut Sql, tier| {
            sql.push(&format!(
                "SELECT explained AS n FROM {} WHERE ",
                tier.table("mlgate_prediction")
            ));
        },
        |sql: &mut Sql| {
            sql.push(
                "SELECT COUNT(*) FILTER (WHERE mlgate_explained(p.shap_values)) AS n \
                 FROM ml_predictions p WHERE ",
            );
        },
        "p.",
        "p.tenant_id",
        Some(Additive {
            keys: &[],
            measures: &["n"],
        }),
    );
    if !any {
        return answer(0, &[], top);
    }
    count.push(") parts");
    let predictions = match count.fetch(txn).await?.first() {
        Some(row) => get_count(row, "n")?,
        None => 0,
    };

    let mut sql = Sql::new(txn.backend());
    sql.push(
        "SELECT feature, CAST(SUM(n) AS BIGINT) AS n, \
         CAST(SUM(abs_sum) / SUM(n) AS DOUBLE PRECISION) AS mean_abs, \
         CAST(SUM(value_sum) / SUM(n) AS DOUBLE PRECISION) AS mean_value FROM (",
    );
    parts(
        &mut sql,
        txn,
        scope,
        &split,
        |sql: &mut Sql, tier| {
            sql.push(&format!(
                "SELECT feature, predictions AS n, value_sum, abs_sum FROM {} WHERE ",
                tier.table("mlgate_shap")
            ));
        },
        |sql: &mut Sql| {
            sql.push(
                "SELECT e.feature AS feature, COUNT(*) AS n, SUM(e.value) AS value_sum, SUM(ABS(e.value)) AS abs_sum \
             FROM ml_predictions p CROSS JOIN LATERAL mlgate_shap_entries(p.shap_values) e WHERE ",
            );
        },
        "p.",
        "e.feature",
        Some(Additive {
            keys: &["feature"],
            measures: &["n", "value_sum", "abs_sum"],
        }),
    );
    // A feature only in a subtracted rest sums to no prediction.
    sql.push(&format!(
        ") parts GROUP BY feature HAVING SUM(n) > 0 LIMIT {}",
        MAX_FEATURES + 1
    ));
    let rows = sql.fetch(txn).await?;
    answer(predictions, &rows, top)
}
