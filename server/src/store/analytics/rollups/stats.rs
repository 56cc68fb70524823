//! Grouped prediction statistics from `mlgate_prediction_hours`, kept per
//! risk level and remediation status: counts, averages (sum / count),
//! minima, maxima and risk counts, exact. Calendar buckets whose boundaries
//! fall on whole UTC hours (every zone with whole-hour offsets) take their
//! hours whole; an hour a boundary cuts is read from the rows.

use sea_orm::QueryResult;

use super::super::buckets::Bucket;
use super::super::sql::Sql;
use super::super::MeasureColumns;
use super::{parts, Scope, Split};
use crate::db::ScopedTxn;
use crate::error::ApiResult;

/// A grouped column: how the rollup rows and the predictions `p` give it.
pub struct GroupColumn {
    pub hours: &'static str,
    pub rows: &'static str,
}

/// The rows of the stats answer, in the layout the scan gives: `g0…`
/// (the bucket index first when bucketed), `n_rows`, the spreads and the
/// risk counts. `None` when the rollups cannot answer (too many cut hours).
pub async fn prediction_stats(
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    columns: &[GroupColumn],
    buckets: Option<&[Bucket]>,
    measures: MeasureColumns,
    limit: usize,
) -> ApiResult<Option<Vec<QueryResult>>> {
    let boundaries: Vec<_> = buckets
        .unwrap_or_default()
        .iter()
        .flat_map(|b| [b.start, b.end])
        .collect();
    let Some(split) = Split::cut_at(scope.window, &boundaries) else {
        return Ok(None);
    };
    let groups = columns.len() + usize::from(buckets.is_some());
    let group_list = (0..groups)
        .map(|g| format!("g{g}"))
        .collect::<Vec<_>>()
        .join(", ");

    let mut sql = Sql::new(txn.backend());
    sql.push("SELECT ");
    for g in 0..groups {
        sql.push(&format!("g{g}, "));
    }
    sql.push("CAST(SUM(n) AS BIGINT) AS n_rows");
    const DOUBLE: &str = " AS DOUBLE PRECISION)";
    for (column, stat) in measures.spreads.read() {
        sql.push(&match stat {
            "avg" => {
                format!(", CAST(SUM({column}_sum) / NULLIF(SUM(n), 0){DOUBLE} AS {column}_avg")
            }
            other => format!(
                ", CAST({}({column}_{other}){DOUBLE} AS {column}_{other}",
                other.to_uppercase()
            ),
        });
    }
    if measures.risk {
        for level in ["critical", "high", "medium", "low"] {
            sql.push(&format!(
                ", CAST(COALESCE(SUM(n) FILTER (WHERE risk_level = '{level}'), 0) AS BIGINT) AS risk_{level}"
            ));
        }
    }
    sql.push(" FROM (");

    let rows_group_by = (1..=groups + 1)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let any = parts(
        &mut sql,
        txn,
        scope,
        &split,
        |sql, tier| {
            head(sql, buckets, columns, tier.time(), false);
            sql.push(
                "risk_level, predictions AS n, \
                 probability_sum AS prob_sum, probability_min AS prob_min, probability_max AS prob_max, \
                 confidence_sum AS conf_sum, confidence_min AS conf_min, confidence_max AS conf_max, \
                 latency_sum AS lat_sum, latency_min AS lat_min, latency_max AS lat_max \
                 FROM ",
            );
            sql.push(&tier.table("mlgate_prediction")).push(" WHERE ");
        },
        |sql| {
            head(sql, buckets, columns, "p.prediction_timestamp", true);
            sql.push(
                "p.risk_level AS risk_level, COUNT(*) AS n, SUM(p.violation_probability) AS prob_sum, \
                 MIN(p.violation_probability) AS prob_min, MAX(p.violation_probability) AS prob_max, \
                 SUM(p.confidence_score) AS conf_sum, MIN(p.confidence_score) AS conf_min, \
                 MAX(p.confidence_score) AS conf_max, SUM(p.inference_time_ms) AS lat_sum, \
                 MIN(p.inference_time_ms) AS lat_min, MAX(p.inference_time_ms) AS lat_max \
                 FROM ml_predictions p WHERE ",
            );
        },
        "p.",
        &rows_group_by,
        None,
    );
    if !any {
        // Nothing to read (an empty window): the scan answers that alike.
        return Ok(None);
    }
    sql.push(") parts");
    if groups > 0 {
        sql.push(&format!(" GROUP BY {group_list}"));
    }
    sql.push(&format!(" LIMIT {limit}"));
    Ok(Some(sql.fetch(txn).await?))
}

/// `SELECT` and the group columns `g0…` of one branch: the bucket index
/// of `time` when bucketed, then each grouped column.
fn head(
    sql: &mut Sql,
    buckets: Option<&[Bucket]>,
    columns: &[GroupColumn],
    time: &str,
    rows: bool,
) {
    sql.push("SELECT ");
    let mut g = 0;
    if let Some(buckets) = buckets {
        sql.bucket_index(time, buckets).push(" AS g0, ");
        g = 1;
    }
    for column in columns {
        let expr = if rows { column.rows } else { column.hours };
        sql.push(&format!("{expr} AS g{g}, "));
        g += 1;
    }
}
