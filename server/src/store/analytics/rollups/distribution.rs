//! Signal distributions for the drift engine from the rollups: the 1 %-wide
//! bins of `mlgate_distribution_hours` and `_days` (probability,
//! confidence, risk score) and the 1 %-growth latency histograms (hours and days); the
//! partial hours from the rows, binned as the triggers bin.

use super::super::sql::Sql;
use super::super::{get_count, internal};
use super::performance::{bucket_bounds, histograms};
use super::{parts, split, Additive, Scope};
use crate::db::ScopedTxn;
use crate::domain::drift::Cell;
use crate::error::ApiResult;

/// A unit-interval signal kept in `mlgate_distribution_hours`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolledSignal {
    Probability,
    Confidence,
    /// Predictions without a risk score in [0, 1] are not counted (the
    /// column has no CHECK).
    Risk,
}

impl RolledSignal {
    fn name(self) -> &'static str {
        match self {
            Self::Probability => "probability",
            Self::Confidence => "confidence",
            Self::Risk => "risk",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Probability => "violation_probability",
            Self::Confidence => "confidence_score",
            Self::Risk => "risk_score",
        }
    }
}

/// The signal's predictions per 1 % bin (`[k/100, (k+1)/100)`, bin 100
/// holding exactly 1). One statement.
pub async fn unit_bins(
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    signal: RolledSignal,
) -> ApiResult<Vec<Cell>> {
    let split = split(scope.window);
    let mut sql = Sql::new(txn.backend());
    sql.push("SELECT CAST(bin AS BIGINT) AS bin, CAST(SUM(n) AS BIGINT) AS n FROM (");
    let any = parts(
        &mut sql,
        txn,
        scope,
        &split,
        |sql: &mut Sql, tier| {
            sql.push(&format!(
                "SELECT bin, predictions AS n FROM {} WHERE signal = '{}' AND ",
                tier.table("mlgate_distribution"),
                signal.name()
            ));
        },
        |sql: &mut Sql| {
            sql.push(&format!(
                "SELECT mlgate_probability_bin({column}) AS bin, COUNT(*) AS n FROM ml_predictions \
                 WHERE {column} BETWEEN 0 AND 1 AND ",
                column = signal.column()
            ));
        },
        "",
        "1",
        Some(Additive {
            keys: &["bin"],
            measures: &["n"],
        }),
    );
    if !any {
        return Ok(Vec::new());
    }
    sql.push(") parts GROUP BY bin HAVING SUM(n) > 0 ORDER BY bin");
    let mut cells = Vec::new();
    for row in sql.fetch(txn).await? {
        let bin = row
            .try_get::<i64>("", "bin")
            .map_err(|e| internal("bin", e))?;
        let count = get_count(&row, "n")?;
        cells.push(if bin >= 100 {
            Cell::point(1.0, count)
        } else {
            Cell {
                lower: bin as f64 / 100.0,
                upper: (bin + 1) as f64 / 100.0,
                count,
            }
        });
    }
    Ok(cells)
}

/// Inference times per latency bucket (`[1.01^b, 1.01^(b+1))` ms, and
/// exactly 0). One statement.
pub async fn latency_buckets(txn: &ScopedTxn, scope: &Scope<'_>) -> ApiResult<Vec<Cell>> {
    let split = split(scope.window);
    let by_model = histograms(txn, scope, &split).await?;
    let mut cells = Vec::new();
    for (bucket, count) in by_model.into_values().flatten() {
        let (lower, upper) = bucket_bounds(bucket);
        cells.push(Cell {
            lower,
            upper,
            count,
        });
    }
    Ok(cells)
}
