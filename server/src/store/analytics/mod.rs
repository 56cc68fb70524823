//! Analytics computed in the database: aggregates over the tenant's rows,
//! in a fixed, small number of statements per request whatever the data
//! size; only aggregated rows (one per group) reach the gateway.
//!
//! Both backends run the same arithmetic on doubles (PostgreSQL's decimals
//! are cast), percentiles are continuous (`percentile_cont` on PostgreSQL,
//! the same interpolation from window-ranked rows on SQLite), and every
//! measure is rounded to [`MEASURE_DECIMALS`] places so that summation order
//! cannot make the backends' answers differ in the last bits.

pub mod buckets;
pub mod drift;
pub mod drift_analysis;
pub mod performance;
pub mod rollups;
pub mod shap;
mod sql;
pub mod stats;

use entity::prediction::Column;
use sea_orm::{DbBackend, QueryResult, QuerySelect, QueryTrait};

use crate::db::ScopedTxn;
use crate::error::{ApiError, ApiResult};
use crate::store::predictions::{self, PredictionFilter};
pub use buckets::{Bucket, BucketUnit, Bucketing};
use sql::Sql;

/// Decimal places of every reported measure.
pub const MEASURE_DECIMALS: i32 = 9;

/// `value` rounded to [`MEASURE_DECIMALS`] places.
pub fn measure(value: f64) -> f64 {
    let scale = 10f64.powi(MEASURE_DECIMALS);
    (value * scale).round() / scale
}

fn measure_opt(value: Option<f64>) -> Option<f64> {
    value.map(measure)
}

/// `numerator / denominator`, or nothing when the denominator is zero.
pub fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| measure(numerator as f64 / denominator as f64))
}

/// The percentiles reported for latencies.
const PERCENTILES: [(&str, f64); 3] = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)];

/// Average, smallest and largest value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A latency distribution in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub spread: Spread,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// The percentiles are estimated from histograms (within 1 %), not exact.
    pub estimated: bool,
}

/// Predictions per risk level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RiskCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl RiskCounts {
    pub fn high_or_critical(&self) -> u64 {
        self.high + self.critical
    }
}

/// The measures of a group of predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PredictionMeasures {
    pub count: u64,
    pub violation_probability: Spread,
    pub confidence_score: Spread,
    pub inference_time_ms: Latency,
    pub risk: RiskCounts,
}

/// Whether the latency percentiles are computed. They cost a sort of every
/// group's rows (on SQLite a window ranking of all of them), so a request
/// that reads none of them skips it; its percentiles are then absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Percentiles {
    Computed,
    Skipped,
}

impl Percentiles {
    /// Computed when `read`.
    pub fn when(read: bool) -> Self {
        if read {
            Self::Computed
        } else {
            Self::Skipped
        }
    }
}

/// Which measures of a group of predictions are computed (its count always
/// is): what a query does not read is not aggregated, so a scan can stay on
/// an index. What is not computed is absent (spreads, percentiles) or zero
/// (risk counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MeasureColumns {
    /// Which averages, minima and maxima of probability, confidence and
    /// latency.
    pub spreads: Spreads,
    /// Counts per risk level.
    pub risk: bool,
    pub percentiles: Percentiles,
}

impl MeasureColumns {
    pub const ALL: Self = Self {
        spreads: Spreads::ALL,
        risk: true,
        percentiles: Percentiles::Computed,
    };
}

/// The measured columns of a spread, as named in the aggregate selects.
pub const SPREAD_COLUMNS: [&str; 3] = ["prob", "conf", "lat"];
/// The statistics of a spread, as named there and in `PredictionMeasures`.
pub const SPREAD_STATS: [&str; 3] = ["avg", "min", "max"];

/// A set of (column, statistic) pairs of [`SPREAD_COLUMNS`] ×
/// [`SPREAD_STATS`]: each costs an aggregate per row, so only those a query
/// reads are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Spreads(u16);

impl Spreads {
    pub const ALL: Self = Self(0x1ff);
    pub const NONE: Self = Self(0);

    fn bit(column: usize, stat: usize) -> u16 {
        1 << (column * SPREAD_STATS.len() + stat)
    }

    /// With `stat` (an index of [`SPREAD_STATS`]) of `column` (of
    /// [`SPREAD_COLUMNS`]) when `read`.
    pub fn with(self, column: usize, stat: usize, read: bool) -> Self {
        if read {
            Self(self.0 | Self::bit(column, stat))
        } else {
            self
        }
    }

    pub fn reads(self, column: usize, stat: usize) -> bool {
        self.0 & Self::bit(column, stat) != 0
    }

    /// Every (column, statistic) computed, by name.
    pub fn read(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        SPREAD_COLUMNS
            .iter()
            .enumerate()
            .flat_map(move |(c, column)| {
                SPREAD_STATS
                    .iter()
                    .enumerate()
                    .filter(move |&(s, _)| self.reads(c, s))
                    .map(move |(_, stat)| (*column, *stat))
            })
    }
}

/// The filtered predictions, with only the columns the analytics read.
fn filtered_predictions(
    txn: &ScopedTxn,
    filter: &PredictionFilter,
) -> ApiResult<sea_orm::sea_query::SelectStatement> {
    Ok(predictions::base(txn, filter)?
        .select_only()
        .columns([
            Column::TenantId,
            Column::PredictionId,
            Column::ModelId,
            Column::ModelVersion,
            Column::ResourceId,
            Column::RiskLevel,
            Column::RemediationStatus,
            Column::ViolationProbability,
            Column::ConfidenceScore,
            Column::InferenceTimeMs,
            Column::PredictionTimestamp,
        ])
        .into_query())
}

/// Writes the aggregate select over `rows`, a derived table whose columns
/// are the group columns `g0…g{groups-1}`, `prob`, `conf`, `lat` (each a
/// [`Sql::decimal`]) and `risk_level`; `rows` writes its body into the
/// builder.
fn prediction_measures_select(
    sql: &mut Sql,
    groups: usize,
    columns: MeasureColumns,
    rows: impl FnOnce(&mut Sql),
) {
    let percentiles = columns.percentiles;
    let ranked = percentiles == Percentiles::Computed && !sql.is_postgres();
    let group_list = (0..groups)
        .map(|g| format!("g{g}"))
        .collect::<Vec<_>>()
        .join(", ");
    sql.push("SELECT ");
    for g in 0..groups {
        sql.push(&format!("g{g}, "));
    }
    sql.push("COUNT(*) AS n_rows");
    for (column, stat) in columns.spreads.read() {
        sql.push(", ")
            .aggregate(&stat.to_uppercase(), column)
            .push(&format!(" AS {column}_{stat}"));
    }
    for (name, p) in PERCENTILES {
        if percentiles == Percentiles::Skipped {
            break;
        }
        if sql.is_postgres() {
            sql.push(&format!(
                ", percentile_cont({p}) WITHIN GROUP (ORDER BY CAST(lat AS DOUBLE PRECISION)) AS lat_{name}"
            ));
        } else {
            // The two ranks percentile_cont interpolates between (0-based):
            // floor and ceil of p·(n−1).
            let position = format!("((n - 1) * {p})");
            let lower = format!("CAST({position} AS INTEGER)");
            sql.push(&format!(
                ", MAX(CASE WHEN i = {lower} THEN lat END) AS lat_{name}_lo, \
                 MAX(CASE WHEN i = {lower} + ({position} > {lower}) THEN lat END) AS lat_{name}_hi"
            ));
        }
    }
    if columns.risk {
        sql.push(
            ", COUNT(*) FILTER (WHERE risk_level = 'critical') AS risk_critical, \
             COUNT(*) FILTER (WHERE risk_level = 'high') AS risk_high, \
             COUNT(*) FILTER (WHERE risk_level = 'medium') AS risk_medium, \
             COUNT(*) FILTER (WHERE risk_level = 'low') AS risk_low",
        );
    }
    sql.push(" FROM (");
    if !ranked {
        rows(sql);
    } else {
        let partition = if groups == 0 {
            String::new()
        } else {
            format!("PARTITION BY {group_list} ")
        };
        sql.push(&format!(
            "SELECT ranked_rows.*, \
             ROW_NUMBER() OVER ({partition}ORDER BY lat) - 1 AS i, \
             COUNT(*) OVER ({partition}) AS n FROM ("
        ));
        rows(sql);
        sql.push(") ranked_rows");
    }
    sql.push(") measured_rows");
    if groups > 0 {
        sql.push(&format!(" GROUP BY {group_list}"));
    }
}

/// Reads the measures of one row of [`prediction_measures_select`].
fn read_prediction_measures(
    row: &QueryResult,
    backend: DbBackend,
    columns: MeasureColumns,
) -> ApiResult<PredictionMeasures> {
    let count = get_count(row, "n_rows")?;
    let spread = |c: usize| -> ApiResult<Spread> {
        let stat = |s: usize| -> ApiResult<Option<f64>> {
            if !columns.spreads.reads(c, s) {
                return Ok(None);
            }
            let name = format!("{}_{}", SPREAD_COLUMNS[c], SPREAD_STATS[s]);
            Ok(measure_opt(get_float(row, &name)?))
        };
        Ok(Spread {
            avg: stat(0)?,
            min: stat(1)?,
            max: stat(2)?,
        })
    };
    let computed = columns.percentiles == Percentiles::Computed;
    let mut percentiles = [None; 3];
    for (slot, (name, p)) in percentiles.iter_mut().zip(PERCENTILES) {
        if !computed {
            break;
        }
        *slot = measure_opt(match backend {
            DbBackend::Postgres => get_float(row, &format!("lat_{name}"))?,
            _ => interpolate(
                p,
                count,
                get_float(row, &format!("lat_{name}_lo"))?,
                get_float(row, &format!("lat_{name}_hi"))?,
            ),
        });
    }
    let risk = if columns.risk {
        RiskCounts {
            critical: get_count(row, "risk_critical")?,
            high: get_count(row, "risk_high")?,
            medium: get_count(row, "risk_medium")?,
            low: get_count(row, "risk_low")?,
        }
    } else {
        RiskCounts::default()
    };
    Ok(PredictionMeasures {
        count,
        violation_probability: spread(0)?,
        confidence_score: spread(1)?,
        inference_time_ms: Latency {
            spread: spread(2)?,
            p50: percentiles[0],
            p95: percentiles[1],
            p99: percentiles[2],
            estimated: false,
        },
        risk,
    })
}

/// PostgreSQL's `percentile_cont`: linear interpolation between the values
/// at ranks floor and ceil of p·(n−1), computed the way it computes it.
fn interpolate(p: f64, n: u64, lower: Option<f64>, upper: Option<f64>) -> Option<f64> {
    let (lower, upper) = (lower?, upper?);
    if n == 0 {
        return None;
    }
    let position = p * (n - 1) as f64;
    let proportion = position - position.floor();
    Some(lower + (upper - lower) * proportion)
}

fn internal(column: &str, error: sea_orm::DbErr) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "reading aggregate column {column}: {error}"
    ))
}

fn get_float(row: &QueryResult, column: &str) -> ApiResult<Option<f64>> {
    row.try_get::<Option<f64>>("", column)
        .map_err(|e| internal(column, e))
}

fn get_count(row: &QueryResult, column: &str) -> ApiResult<u64> {
    let value = row
        .try_get::<Option<i64>>("", column)
        .map_err(|e| internal(column, e))?;
    Ok(value.unwrap_or(0).max(0) as u64)
}

fn get_text(row: &QueryResult, column: &str) -> ApiResult<Option<String>> {
    row.try_get::<Option<String>>("", column)
        .map_err(|e| internal(column, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_matches_percentile_cont() {
        // Values 10, 20, 30, 40: p50 lies halfway between ranks 1 and 2.
        assert_eq!(interpolate(0.5, 4, Some(20.0), Some(30.0)), Some(25.0));
        // p95 of 4 values: position 2.85 → 30 + 0.85·10.
        assert_eq!(
            measure(interpolate(0.95, 4, Some(30.0), Some(40.0)).unwrap()),
            38.5
        );
        assert_eq!(interpolate(0.99, 1, Some(7.0), Some(7.0)), Some(7.0));
        assert_eq!(interpolate(0.5, 0, None, None), None);
    }

    #[test]
    fn ratios_of_nothing_are_absent() {
        assert_eq!(ratio(1, 0), None);
        assert_eq!(ratio(1, 3), Some(0.333333333));
    }
}
