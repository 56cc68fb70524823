//! Prediction statistics grouped by any of model, model version, risk
//! level, resource and remediation status, optionally per calendar bucket,
//! with every series gap-filled over the whole window.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::QueryResult;

use super::sql::Sql;
use super::{
    filtered_predictions, get_count, get_text, prediction_measures_select,
    read_prediction_measures, rollups, Bucket, Bucketing, MeasureColumns, Percentiles,
    PredictionMeasures,
};
use crate::db::{Scoped, ScopedTxn};
use crate::error::ApiResult;
use crate::store::filter::invalid;
use crate::store::predictions::PredictionFilter;
use crate::store::TimeRange;

/// The most groups (series × buckets) one answer may hold.
pub const MAX_GROUPS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatsDimension {
    Model,
    ModelVersion,
    RiskLevel,
    Resource,
    RemediationStatus,
}

impl StatsDimension {
    fn column(self) -> &'static str {
        match self {
            StatsDimension::Model => "model_id",
            StatsDimension::ModelVersion => "model_version",
            StatsDimension::RiskLevel => "risk_level",
            StatsDimension::Resource => "resource_id",
            StatsDimension::RemediationStatus => "remediation_status",
        }
    }
}

/// The key of a group: the bucket start when bucketed, and the value of
/// each grouped dimension (absent for dimensions not grouped by, and for a
/// grouped dimension whose value is NULL, e.g. no remediation status).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StatsKey {
    pub bucket_start: Option<DateTime<Utc>>,
    pub model_id: Option<String>,
    pub model_version: Option<String>,
    pub risk_level: Option<String>,
    pub resource_id: Option<String>,
    pub remediation_status: Option<String>,
}

impl StatsKey {
    fn value_mut(&mut self, dimension: StatsDimension) -> &mut Option<String> {
        match dimension {
            StatsDimension::Model => &mut self.model_id,
            StatsDimension::ModelVersion => &mut self.model_version,
            StatsDimension::RiskLevel => &mut self.risk_level,
            StatsDimension::Resource => &mut self.resource_id,
            StatsDimension::RemediationStatus => &mut self.remediation_status,
        }
    }

    /// The key's place in the answer: its values in `dimensions` order,
    /// bytewise (as on both backends), absent values last.
    fn order(&self, dimensions: &[StatsDimension]) -> Vec<(bool, String)> {
        let mut key = self.clone();
        dimensions
            .iter()
            .map(|&d| match key.value_mut(d).take() {
                Some(v) => (false, v),
                None => (true, String::new()),
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StatsGroup {
    pub key: StatsKey,
    pub measures: PredictionMeasures,
}

#[derive(Clone, Debug)]
pub struct StatsRequest {
    pub filter: PredictionFilter,
    pub group_by: Vec<StatsDimension>,
    pub bucketing: Option<Bucketing>,
    pub window: TimeRange,
    pub measures: MeasureColumns,
}

/// The groups, ordered by dimension values (in `group_by` order, bytewise,
/// absent values last) and then by bucket start. One statement.
pub async fn prediction_stats(
    scoped: &Scoped,
    request: StatsRequest,
) -> ApiResult<Vec<StatsGroup>> {
    let mut dimensions: Vec<StatsDimension> = Vec::new();
    for dimension in request.group_by {
        if !dimensions.contains(&dimension) {
            dimensions.push(dimension);
        }
    }
    let mut filter = request.filter;
    let window = intersect(filter.predicted_at, request.window);
    filter.predicted_at = Some(window);
    let buckets = request
        .bucketing
        .map(|b| b.buckets_in(window, "bucket", "`from` and `to`"))
        .transpose()?;

    let txn = scoped.begin_analytics().await?;
    let bucketed = buckets.is_some();
    let scope = match rollup_columns(&dimensions, request.measures) {
        Some(columns) => rollups::Scope::for_filter(&txn, &filter, rollups::Kept::Groups)?
            .map(|scope| (scope, columns)),
        None => None,
    };
    let from_rollups = match scope {
        Some((scope, columns)) => {
            rollups::prediction_stats(
                &txn,
                &scope,
                &columns,
                buckets.as_deref(),
                request.measures,
                MAX_GROUPS + 1,
            )
            .await?
        }
        None => None,
    };
    let rows = match from_rollups {
        Some(rows) => rows,
        None => {
            scan(
                &txn,
                &filter,
                &dimensions,
                buckets.as_deref(),
                request.measures,
            )
            .await?
        }
    };
    txn.commit().await?;
    if rows.len() > MAX_GROUPS {
        return Err(too_many_groups());
    }

    let backend = scoped.backend();
    let mut groups = Vec::with_capacity(rows.len());
    for row in &rows {
        let (bucket, key) = read_key(row, &dimensions, bucketed)?;
        groups.push((
            bucket,
            key,
            read_prediction_measures(row, backend, request.measures)?,
        ));
    }
    fill_and_order(groups, &dimensions, buckets.as_deref())
}

/// The rollups' group columns for this request, when they can answer it:
/// groups on what they keep and no percentiles (the filter is
/// [`rollups::Scope::for_filter`]'s to judge).
fn rollup_columns(
    dimensions: &[StatsDimension],
    measures: MeasureColumns,
) -> Option<Vec<rollups::GroupColumn>> {
    if measures.percentiles == Percentiles::Computed {
        return None;
    }
    dimensions
        .iter()
        .map(|d| {
            Some(match d {
                StatsDimension::Model => rollups::GroupColumn {
                    hours: "model_id",
                    rows: "p.model_id",
                },
                StatsDimension::ModelVersion => rollups::GroupColumn {
                    hours: "model_version",
                    rows: "p.model_version",
                },
                StatsDimension::RiskLevel => rollups::GroupColumn {
                    hours: "risk_level",
                    rows: "p.risk_level",
                },
                // The rollup keeps "no status" as ''.
                StatsDimension::RemediationStatus => rollups::GroupColumn {
                    hours: "NULLIF(remediation_status, '')",
                    rows: "p.remediation_status",
                },
                StatsDimension::Resource => return None,
            })
        })
        .collect()
}

/// The groups from the filtered predictions themselves.
async fn scan(
    txn: &ScopedTxn,
    filter: &PredictionFilter,
    dimensions: &[StatsDimension],
    buckets: Option<&[Bucket]>,
    measures: MeasureColumns,
) -> ApiResult<Vec<QueryResult>> {
    let source = filtered_predictions(txn, filter)?;
    let mut sql = Sql::new(txn.backend());
    if let Some(buckets) = buckets {
        sql.bucket_table(buckets);
    }
    let bucketed = buckets.is_some();
    let groups = dimensions.len() + usize::from(bucketed);
    prediction_measures_select(&mut sql, groups, measures, |sql| {
        sql.push("SELECT ");
        let mut g = 0;
        if let Some(buckets) = buckets {
            sql.bucket_index("f.prediction_timestamp", buckets)
                .push(" AS g0, ");
            g = 1;
        }
        for dimension in dimensions {
            sql.push(&format!("f.{} AS g{g}, ", dimension.column()));
            g += 1;
        }
        sql.decimal("f.violation_probability")
            .push(" AS prob, ")
            .decimal("f.confidence_score")
            .push(" AS conf, ")
            .decimal("f.inference_time_ms")
            .push(" AS lat, f.risk_level AS risk_level FROM ")
            .subquery(&source)
            .push(" f");
        if bucketed {
            sql.bucket_join("f.prediction_timestamp");
        }
    });
    sql.push(&format!(" LIMIT {}", MAX_GROUPS + 1));
    Ok(sql.fetch(txn).await?)
}

fn read_key(
    row: &QueryResult,
    dimensions: &[StatsDimension],
    bucketed: bool,
) -> ApiResult<(Option<usize>, StatsKey)> {
    let mut key = StatsKey::default();
    let mut g = 0;
    let mut bucket = None;
    if bucketed {
        bucket = Some(get_count(row, "g0")? as usize);
        g = 1;
    }
    for &dimension in dimensions {
        *key.value_mut(dimension) = get_text(row, &format!("g{g}"))?;
        g += 1;
    }
    Ok((bucket, key))
}

/// Orders the groups and, when bucketed, gives every series (dimension
/// values seen) a row for every bucket, zero where it had no predictions.
fn fill_and_order(
    groups: Vec<(Option<usize>, StatsKey, PredictionMeasures)>,
    dimensions: &[StatsDimension],
    buckets: Option<&[Bucket]>,
) -> ApiResult<Vec<StatsGroup>> {
    let Some(buckets) = buckets else {
        let mut out: Vec<StatsGroup> = groups
            .into_iter()
            .map(|(_, key, measures)| StatsGroup { key, measures })
            .collect();
        out.sort_by_cached_key(|g| g.key.order(dimensions));
        return Ok(out);
    };

    let mut series: Vec<StatsKey> = if dimensions.is_empty() {
        vec![StatsKey::default()]
    } else {
        groups.iter().map(|(_, key, _)| key.clone()).collect()
    };
    series.sort_by_cached_key(|key| key.order(dimensions));
    series.dedup();
    if series.len().saturating_mul(buckets.len()) > MAX_GROUPS {
        return Err(too_many_groups());
    }
    let mut found: HashMap<(StatsKey, usize), PredictionMeasures> = groups
        .into_iter()
        .map(|(bucket, key, measures)| ((key, bucket.unwrap_or(0)), measures))
        .collect();
    let mut out = Vec::with_capacity(series.len() * buckets.len());
    for key in series {
        for (i, bucket) in buckets.iter().enumerate() {
            let measures = found.remove(&(key.clone(), i)).unwrap_or_default();
            out.push(StatsGroup {
                key: StatsKey {
                    bucket_start: Some(bucket.start),
                    ..key.clone()
                },
                measures,
            });
        }
    }
    Ok(out)
}

fn too_many_groups() -> crate::error::ApiError {
    invalid(
        "groupBy",
        format!(
            "more than {MAX_GROUPS} groups; narrow the filter, group by fewer dimensions or use larger buckets"
        ),
    )
}

/// The window both ranges allow.
fn intersect(a: Option<TimeRange>, b: TimeRange) -> TimeRange {
    let a = a.unwrap_or_default();
    TimeRange {
        from: a.from.max(b.from),
        to: match (a.to, b.to) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
    }
}
