//! Feedback and outcomes from `mlgate_feedback_hours`: per model and
//! 1 %-wide probability bin, the feedback given and, by the kind of each
//! prediction's latest feedback, how many predictions, their probabilities'
//! sum and sum of squares. A decision threshold on a bin edge splits the
//! bins exactly, so confusion counts, calibration and the Brier score follow
//! exactly (see `store::analytics::performance`).

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::super::sql::Sql;
use super::super::{get_count, get_float, get_text};
use super::{parts, split, Additive, Scope};
use crate::db::ScopedTxn;
use crate::error::{ApiError, ApiResult};

/// Probability bins of the rollup: bin `b` holds `[b/100, (b+1)/100)`, bin
/// 100 holds probability 1.
pub const PROBABILITY_BINS: u32 = 101;

/// Predictions whose latest feedback is of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KindSums {
    pub n: u64,
    /// Sum of their probabilities (exact).
    pub sum: Decimal,
    /// Sum of their squared probabilities (exact).
    pub squares: Decimal,
}

/// One probability bin of one model.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BinOutcomes {
    /// Predictions with feedback.
    pub reviewed: u64,
    /// Feedback rows.
    pub feedback: u64,
    /// Latest feedback says: a violation.
    pub positive: KindSums,
    /// …no violation.
    pub negative: KindSums,
    /// …as the model decided.
    pub as_decided: KindSums,
    /// …the opposite of what it decided.
    pub opposite: KindSums,
}

/// One model's feedback: its bins with feedback, `(bin, sums)`, and the mean
/// rating (computed in the database, exactly as the scan's average).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelOutcomes {
    pub rating_mean: Option<f64>,
    pub bins: Vec<(u32, BinOutcomes)>,
}

/// Per model.
pub type OutcomeSums = HashMap<String, ModelOutcomes>;

const KINDS: [(&str, u8); 4] = [
    ("positive", 1),
    ("negative", 0),
    ("as_decided", 2),
    ("opposite", 3),
];

/// The bin edge a decision threshold lies on (threshold = bin / 100), if
/// it lies on one; thresholds between edges are answered by scanning.
pub fn threshold_bin(threshold: f64) -> Option<u32> {
    let bin = (threshold * 100.0).round();
    (0.0..=100.0)
        .contains(&bin)
        .then_some(bin)
        .filter(|b| b / 100.0 == threshold)
        .map(|b| b as u32)
}

/// One statement: the bins of every model in `scope`.
pub async fn outcome_sums(txn: &ScopedTxn, scope: &Scope<'_>) -> ApiResult<OutcomeSums> {
    let split = split(scope.window);
    let mut sql = Sql::new(txn.backend());
    sql.push(
        "SELECT model_id, CAST(bin AS BIGINT) AS bin, CAST(SUM(reviewed) AS BIGINT) AS reviewed, \
         CAST(SUM(feedback) AS BIGINT) AS feedback, \
         CAST(SUM(SUM(rating_sum)) OVER model / NULLIF(SUM(SUM(rated)) OVER model, 0) \
         AS DOUBLE PRECISION) AS rating_mean",
    );
    for (kind, _) in KINDS {
        sql.push(&format!(
            ", CAST(SUM({kind}_n) AS BIGINT) AS {kind}_n, SUM({kind}_sum) AS {kind}_sum, \
             SUM({kind}_squares) AS {kind}_squares"
        ));
    }
    sql.push(" FROM (");
    // Every column a part sums: the rollups' own, by name.
    let summed: Vec<String> = ["reviewed", "feedback", "rated", "rating_sum"]
        .map(String::from)
        .into_iter()
        .chain(KINDS.iter().flat_map(|(kind, _)| {
            ["n", "sum", "squares"].map(|measure| format!("{kind}_{measure}"))
        }))
        .collect();
    let measures: Vec<&str> = summed.iter().map(String::as_str).collect();
    let any = parts(
        &mut sql,
        txn,
        scope,
        &split,
        |sql, tier| {
            sql.push(&format!(
                "SELECT model_id, bin, {} FROM {} WHERE ",
                measures.join(", "),
                tier.table("mlgate_feedback")
            ));
        },
        |sql| {
            // As the triggers aggregate: each prediction's feedback summed,
            // and the kind of its latest (by `created_at`, then id).
            sql.push(
                "SELECT p.model_id AS model_id, mlgate_probability_bin(p.violation_probability) AS bin, \
                 COUNT(*) AS reviewed, SUM(r.feedback) AS feedback, SUM(r.rated) AS rated, \
                 COALESCE(SUM(r.rating_sum), 0) AS rating_sum",
            );
            for (kind, code) in KINDS {
                sql.push(&format!(
                    ", COUNT(*) FILTER (WHERE r.kind = {code}) AS {kind}_n, \
                     COALESCE(SUM(p.violation_probability) FILTER (WHERE r.kind = {code}), 0) AS {kind}_sum, \
                     COALESCE(SUM(p.violation_probability * p.violation_probability) \
                     FILTER (WHERE r.kind = {code}), 0) AS {kind}_squares"
                ));
            }
            sql.push(
                " FROM ml_predictions p CROSS JOIN LATERAL (SELECT COUNT(*) AS feedback, \
                 COUNT(fe.accuracy_rating) AS rated, SUM(fe.accuracy_rating) AS rating_sum, \
                 (array_agg(mlgate_outcome_kind(fe.feedback_type, fe.correct_label) \
                 ORDER BY fe.created_at DESC NULLS LAST, fe.feedback_id DESC))[1] AS kind \
                 FROM ml_feedback fe WHERE fe.tenant_id = p.tenant_id \
                 AND fe.prediction_id = p.prediction_id) r WHERE r.feedback > 0 AND ",
            );
        },
        "p.",
        "1, 2",
        Some(Additive {
            keys: &["model_id", "bin"],
            measures: &measures,
        }),
    );
    if !any {
        return Ok(HashMap::new());
    }
    // A bin only in a subtracted rest sums to zero in every column: it adds
    // nothing to any answer (the tests compare with the scan).
    sql.push(") parts GROUP BY model_id, bin WINDOW model AS (PARTITION BY model_id)");
    let mut out = OutcomeSums::new();
    for row in sql.fetch(txn).await? {
        let decimal = |column: &str| -> ApiResult<Decimal> {
            row.try_get::<Option<Decimal>>("", column)
                .map(Option::unwrap_or_default)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading {column}: {e}")))
        };
        let kind = |name: &str| -> ApiResult<KindSums> {
            Ok(KindSums {
                n: get_count(&row, &format!("{name}_n"))?,
                sum: decimal(&format!("{name}_sum"))?,
                squares: decimal(&format!("{name}_squares"))?,
            })
        };
        let bin = get_count(&row, "bin")?.min(u64::from(PROBABILITY_BINS) - 1) as u32;
        let sums = BinOutcomes {
            reviewed: get_count(&row, "reviewed")?,
            feedback: get_count(&row, "feedback")?,
            positive: kind("positive")?,
            negative: kind("negative")?,
            as_decided: kind("as_decided")?,
            opposite: kind("opposite")?,
        };
        let model = out
            .entry(get_text(&row, "model_id")?.unwrap_or_default())
            .or_default();
        model.rating_mean = get_float(&row, "rating_mean")?;
        model.bins.push((bin, sums));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_on_bin_edges_are_exact_others_scan() {
        assert_eq!(threshold_bin(0.5), Some(50));
        assert_eq!(threshold_bin(0.35), Some(35));
        assert_eq!(threshold_bin(0.0), Some(0));
        assert_eq!(threshold_bin(1.0), Some(100));
        assert_eq!(threshold_bin(0.07), Some(7));
        assert_eq!(threshold_bin(0.355), None);
        assert_eq!(threshold_bin(0.5000001), None);
        for k in 0..=100u32 {
            assert_eq!(threshold_bin(f64::from(k) / 100.0), Some(k));
        }
    }
}
