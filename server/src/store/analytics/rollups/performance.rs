//! Per-model prediction measures from `mlgate_prediction_hours` and the
//! latency histograms. Counts, averages, minima, maxima and risk counts are
//! exact. Latency percentiles are exact (`percentile_cont` over the rows)
//! for a model with at most [`EXACT_PERCENTILE_ROWS`] predictions in the
//! window; above that they are estimated from the merged hourly histograms
//! of 1 %-wide log-scale buckets, within 1 % of the exact value, and marked
//! as estimated.

use std::collections::HashMap;

use super::super::sql::Sql;
use super::super::{
    filtered_predictions, get_count, get_float, get_text, measure, measure_opt, Latency,
    Percentiles, PredictionMeasures, RiskCounts, Spread, PERCENTILES,
};
use super::{parts, split, Scope, Split};
use crate::db::ScopedTxn;
use crate::error::{ApiError, ApiResult};
use crate::store::predictions::PredictionFilter;

/// A model with at most this many predictions in the window gets exact
/// percentiles (sorting that many latencies costs a few milliseconds).
pub const EXACT_PERCENTILE_ROWS: u64 = 5_000;

/// Ratio between a histogram bucket's bounds: bucket `b` holds latencies in
/// `[GROWTH^b, GROWTH^(b+1))` ms (as `mlgate_latency_bucket` computes it).
const GROWTH: f64 = 1.01;

/// The bucket of latencies ≤ 0.
const ZERO_BUCKET: i64 = i32::MIN as i64;

/// The measures of each model in `scope` that has predictions in it.
pub async fn prediction_measures(
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    percentiles: Percentiles,
) -> ApiResult<HashMap<String, PredictionMeasures>> {
    let split = split(scope.window);
    let mut out = additive_measures(txn, scope, &split).await?;
    if percentiles == Percentiles::Skipped || out.is_empty() {
        return Ok(out);
    }
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for (model_id, m) in &out {
        match m.count {
            0 => {}
            n if n <= EXACT_PERCENTILE_ROWS => small.push(model_id.clone()),
            _ => large.push(model_id.clone()),
        }
    }
    if !small.is_empty() {
        for (model_id, [p50, p95, p99]) in exact_percentiles(txn, scope, &small).await? {
            if let Some(m) = out.get_mut(&model_id) {
                m.inference_time_ms.p50 = p50;
                m.inference_time_ms.p95 = p95;
                m.inference_time_ms.p99 = p99;
            }
        }
    }
    if !large.is_empty() {
        let narrowed = Scope {
            model_ids: Some(&large),
            ..*scope
        };
        for (model_id, histogram) in histograms(txn, &narrowed, &split).await? {
            if let Some(m) = out.get_mut(&model_id) {
                let latency = &mut m.inference_time_ms;
                let (min, max) = (latency.spread.min, latency.spread.max);
                let at = |p| measure_opt(estimate(&histogram, p, min?, max?));
                latency.p50 = at(PERCENTILES[0].1);
                latency.p95 = at(PERCENTILES[1].1);
                latency.p99 = at(PERCENTILES[2].1);
                latency.estimated = true;
            }
        }
    }
    Ok(out)
}

async fn additive_measures(
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    split: &Split,
) -> ApiResult<HashMap<String, PredictionMeasures>> {
    const DOUBLE: &str = " AS DOUBLE PRECISION)";
    let mut sql = Sql::new(txn.backend());
    sql.push("SELECT model_id, CAST(SUM(n) AS BIGINT) AS n_rows");
    for prefix in ["prob", "conf", "lat"] {
        sql.push(&format!(
            ", CAST(SUM({prefix}_sum) / NULLIF(SUM(n), 0){DOUBLE} AS {prefix}_avg, \
             CAST(MIN({prefix}_min){DOUBLE} AS {prefix}_min, CAST(MAX({prefix}_max){DOUBLE} AS {prefix}_max"
        ));
    }
    for level in ["critical", "high", "medium", "low"] {
        sql.push(&format!(", CAST(SUM({level}) AS BIGINT) AS risk_{level}"));
    }
    sql.push(" FROM (");
    let any = parts(
        &mut sql,
        txn,
        scope,
        split,
        |sql: &mut Sql, tier| {
            sql.push(
                "SELECT model_id, predictions AS n, \
             probability_sum AS prob_sum, probability_min AS prob_min, probability_max AS prob_max, \
             confidence_sum AS conf_sum, confidence_min AS conf_min, confidence_max AS conf_max, \
             latency_sum AS lat_sum, latency_min AS lat_min, latency_max AS lat_max, \
             CASE WHEN risk_level = 'critical' THEN predictions ELSE 0 END AS critical, \
             CASE WHEN risk_level = 'high' THEN predictions ELSE 0 END AS high, \
             CASE WHEN risk_level = 'medium' THEN predictions ELSE 0 END AS medium, \
             CASE WHEN risk_level = 'low' THEN predictions ELSE 0 END AS low FROM ",
            );
            sql.push(&tier.table("mlgate_prediction")).push(" WHERE ");
        },
        |sql: &mut Sql| {
            sql.push(
                // Every column named: without a whole hour this branch is alone.
                "SELECT model_id, COUNT(*) AS n, SUM(violation_probability) AS prob_sum, \
             MIN(violation_probability) AS prob_min, MAX(violation_probability) AS prob_max, \
             SUM(confidence_score) AS conf_sum, MIN(confidence_score) AS conf_min, \
             MAX(confidence_score) AS conf_max, SUM(inference_time_ms) AS lat_sum, \
             MIN(inference_time_ms) AS lat_min, MAX(inference_time_ms) AS lat_max, \
             COUNT(*) FILTER (WHERE risk_level = 'critical') AS critical, \
             COUNT(*) FILTER (WHERE risk_level = 'high') AS high, \
             COUNT(*) FILTER (WHERE risk_level = 'medium') AS medium, \
             COUNT(*) FILTER (WHERE risk_level = 'low') AS low \
             FROM ml_predictions WHERE ",
            );
        },
        "",
        "model_id",
        None,
    );
    if !any {
        return Ok(HashMap::new());
    }
    sql.push(") parts GROUP BY model_id");
    let mut out = HashMap::new();
    for row in sql.fetch(txn).await? {
        let spread = |prefix: &str| -> ApiResult<Spread> {
            Ok(Spread {
                avg: measure_opt(get_float(&row, &format!("{prefix}_avg"))?),
                min: measure_opt(get_float(&row, &format!("{prefix}_min"))?),
                max: measure_opt(get_float(&row, &format!("{prefix}_max"))?),
            })
        };
        let measures = PredictionMeasures {
            count: get_count(&row, "n_rows")?,
            violation_probability: spread("prob")?,
            confidence_score: spread("conf")?,
            inference_time_ms: Latency {
                spread: spread("lat")?,
                ..Latency::default()
            },
            risk: RiskCounts {
                critical: get_count(&row, "risk_critical")?,
                high: get_count(&row, "risk_high")?,
                medium: get_count(&row, "risk_medium")?,
                low: get_count(&row, "risk_low")?,
            },
        };
        out.insert(get_text(&row, "model_id")?.unwrap_or_default(), measures);
    }
    Ok(out)
}

/// `percentile_cont` over the rows of `model_ids` in the window.
async fn exact_percentiles(
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    model_ids: &[String],
) -> ApiResult<Vec<(String, [Option<f64>; 3])>> {
    let filter = PredictionFilter {
        model_ids: Some(model_ids.to_vec()),
        model_versions: scope.versions.map(<[String]>::to_vec),
        predicted_at: scope.window,
        ..Default::default()
    };
    let source = filtered_predictions(txn, &filter)?;
    let mut sql = Sql::new(txn.backend());
    sql.push("SELECT f.model_id AS model_id");
    for (name, p) in PERCENTILES {
        sql.push(&format!(", percentile_cont({p}) WITHIN GROUP (ORDER BY "))
            .float("f.inference_time_ms")
            .push(&format!(") AS lat_{name}"));
    }
    sql.push(" FROM ")
        .subquery(&source)
        .push(" f GROUP BY f.model_id");
    let mut out = Vec::new();
    for row in sql.fetch(txn).await? {
        let mut values = [None; 3];
        for (slot, (name, _)) in values.iter_mut().zip(PERCENTILES) {
            *slot = measure_opt(get_float(&row, &format!("lat_{name}"))?);
        }
        out.push((get_text(&row, "model_id")?.unwrap_or_default(), values));
    }
    Ok(out)
}

/// Each model's latency histogram over the window: (bucket, count), by bucket.
pub(super) async fn histograms(
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    split: &Split,
) -> ApiResult<HashMap<String, Vec<(i64, u64)>>> {
    let mut sql = Sql::new(txn.backend());
    sql.push(
        "SELECT model_id, CAST(bucket AS BIGINT) AS bucket, CAST(SUM(n) AS BIGINT) AS n FROM (",
    );
    let any = parts(
        &mut sql,
        txn,
        scope,
        split,
        |sql: &mut Sql, tier| {
            sql.push(&format!(
                "SELECT model_id, bucket, predictions AS n FROM {} WHERE ",
                tier.table("mlgate_prediction_latency")
            ));
        },
        |sql: &mut Sql| {
            sql.push(
                "SELECT model_id, mlgate_latency_bucket(inference_time_ms) AS bucket, COUNT(*) AS n \
                 FROM ml_predictions WHERE ",
            );
        },
        "",
        "1, 2",
        None,
    );
    if !any {
        return Ok(HashMap::new());
    }
    sql.push(") parts GROUP BY model_id, bucket ORDER BY model_id, bucket");
    let mut out: HashMap<String, Vec<(i64, u64)>> = HashMap::new();
    for row in sql.fetch(txn).await? {
        let bucket = row
            .try_get::<i64>("", "bucket")
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading bucket: {e}")))?;
        out.entry(get_text(&row, "model_id")?.unwrap_or_default())
            .or_default()
            .push((bucket, get_count(&row, "n")?));
    }
    Ok(out)
}

/// The bounds of bucket `b`.
pub(super) fn bucket_bounds(b: i64) -> (f64, f64) {
    if b == ZERO_BUCKET {
        (0.0, 0.0)
    } else {
        (GROWTH.powi(b as i32), GROWTH.powi(b as i32 + 1))
    }
}

/// `percentile_cont(p)` estimated from a histogram (buckets ascending):
/// the values at the two ranks it interpolates between are placed inside
/// their buckets (geometrically, by their position among the bucket's
/// values) and clamped to the known minimum and maximum. Each lies in the
/// same bucket as the true value, so each, and their interpolation, is
/// within `GROWTH − 1` (1 %) of the exact answer.
fn estimate(histogram: &[(i64, u64)], p: f64, min: f64, max: f64) -> Option<f64> {
    let n: u64 = histogram.iter().map(|(_, c)| c).sum();
    if n == 0 {
        return None;
    }
    let value_at = |rank: u64| -> f64 {
        let mut before = 0;
        for &(bucket, count) in histogram {
            if rank < before + count {
                let (lower, upper) = bucket_bounds(bucket);
                let share = ((rank - before) as f64 + 0.5) / count as f64;
                let value = if lower > 0.0 {
                    lower * (upper / lower).powf(share)
                } else {
                    0.0
                };
                return value.max(min).min(max);
            }
            before += count;
        }
        max
    };
    let position = p * (n - 1) as f64;
    let (lower_rank, upper_rank) = (position.floor() as u64, position.ceil() as u64);
    let (low, high) = (value_at(lower_rank), value_at(upper_rank));
    Some(measure(low + (high - low) * (position - position.floor())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact `percentile_cont` of sorted values.
    fn exact(sorted: &[f64], p: f64) -> f64 {
        let position = p * (sorted.len() - 1) as f64;
        let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (position - position.floor())
    }

    fn bucket_of(ms: f64) -> i64 {
        if ms <= 0.0 {
            ZERO_BUCKET
        } else {
            (ms.ln() / GROWTH.ln()).floor() as i64
        }
    }

    #[test]
    fn estimated_percentiles_are_within_one_percent() {
        // A skewed latency mix: many fast calls, a slow tail, some zeros.
        let mut values: Vec<f64> = (0..20_000u64)
            .map(|i| {
                let x = ((i * 7919) % 20_000) as f64 / 20_000.0;
                if i % 997 == 0 {
                    0.0
                } else {
                    ((5.0 + 400.0 * x.powi(6)) * 100.0).round() / 100.0
                }
            })
            .collect();
        values.sort_by(f64::total_cmp);
        let mut histogram: Vec<(i64, u64)> = Vec::new();
        for v in &values {
            let b = bucket_of(*v);
            match histogram.last_mut() {
                Some((last, c)) if *last == b => *c += 1,
                _ => histogram.push((b, 1)),
            }
        }
        let (min, max) = (values[0], *values.last().unwrap());
        for p in [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let truth = exact(&values, p);
            let guess = estimate(&histogram, p, min, max).unwrap();
            assert!(
                (guess - truth).abs() <= truth * (GROWTH - 1.0) + 1e-9,
                "p{p}: estimated {guess}, exact {truth}"
            );
        }
        assert_eq!(estimate(&[], 0.5, 0.0, 0.0), None);
        assert_eq!(estimate(&[(bucket_of(7.0), 1)], 0.99, 7.0, 7.0), Some(7.0));
    }
}
