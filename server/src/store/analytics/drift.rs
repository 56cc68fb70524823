//! Drift summaries: per drift type, the latest and largest scores, alerts by
//! level and a gap-filled trend over calendar buckets, with the tenant's
//! thresholds to band the scores.

use chrono::{DateTime, Utc};
use entity::drift_metric::Column;
use sea_orm::{QueryResult, QuerySelect, QueryTrait};

use super::sql::Sql;
use super::{get_count, get_float, get_text, measure_opt, Bucket, Bucketing};
use crate::db::{Scoped, ScopedTxn};
use crate::error::ApiResult;
use crate::store::drift::{self as drift_data, DriftFilter};
use crate::store::thresholds::{self, DriftThresholds};
use crate::store::TimeRange;

/// Latest, largest and average of one score.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScoreSummary {
    /// The score of the latest metric (absent if that metric has none).
    pub latest: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
}

/// Metrics with an alert triggered, by level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertCounts {
    pub total: u64,
    pub info: u64,
    pub warning: u64,
    pub critical: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DriftTrendPoint {
    pub bucket_start: Option<DateTime<Utc>>,
    pub metrics: u64,
    pub avg_drift_score: Option<f64>,
    pub max_drift_score: Option<f64>,
    pub max_psi: Option<f64>,
    pub max_ks: Option<f64>,
    pub max_wasserstein: Option<f64>,
    pub alerts: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DriftTypeSummary {
    pub drift_type: String,
    pub metrics: u64,
    pub latest_metric_id: Option<String>,
    pub latest_measured_at: Option<DateTime<Utc>>,
    pub drift_score: ScoreSummary,
    pub psi: ScoreSummary,
    pub ks: ScoreSummary,
    pub wasserstein: ScoreSummary,
    pub alerts: AlertCounts,
    /// One point per bucket when bucketed, else empty.
    pub trend: Vec<DriftTrendPoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DriftSummary {
    pub thresholds: DriftThresholds,
    /// By drift type name.
    pub types: Vec<DriftTypeSummary>,
}

#[derive(Clone, Debug)]
pub struct DriftSummaryRequest {
    pub model_id: Option<String>,
    pub window: Option<TimeRange>,
    pub bucketing: Option<Bucketing>,
}

/// Two statements (three when bucketed) in one transaction.
pub async fn summary(scoped: &Scoped, request: DriftSummaryRequest) -> ApiResult<DriftSummary> {
    let buckets = request
        .bucketing
        .map(|b| {
            b.buckets_in(
                request.window.unwrap_or_default(),
                "bucket",
                "`window.from` and `window.to`",
            )
        })
        .transpose()?;
    let filter = DriftFilter {
        model_ids: request.model_id.map(|id| vec![id]),
        measured_at: request.window,
        ..Default::default()
    };

    let txn = scoped.begin_analytics().await?;
    let thresholds = thresholds::for_tenant(&txn).await?;
    let mut types = type_summaries(&txn, &filter).await?;
    if let Some(buckets) = &buckets {
        let mut points = trend(&txn, &filter, buckets).await?;
        for summary in &mut types {
            summary.trend = buckets
                .iter()
                .enumerate()
                .map(|(i, bucket)| DriftTrendPoint {
                    bucket_start: Some(bucket.start),
                    ..points
                        .remove(&(summary.drift_type.clone(), i))
                        .unwrap_or_default()
                })
                .collect();
        }
    }
    txn.commit().await?;
    Ok(DriftSummary { thresholds, types })
}

fn filtered(
    txn: &ScopedTxn,
    filter: &DriftFilter,
) -> ApiResult<sea_orm::sea_query::SelectStatement> {
    Ok(drift_data::base(txn, filter)?
        .select_only()
        .columns([
            Column::MetricId,
            Column::DriftType,
            Column::DriftScore,
            Column::PsiScore,
            Column::KsStatistic,
            Column::WassersteinDistance,
            Column::AlertTriggered,
            Column::AlertLevel,
            Column::MeasuredAt,
        ])
        .into_query())
}

/// The measured scores of `d` (doubles on both backends).
fn scores(sql: &mut Sql, alias: &str) {
    for (column, name) in [
        ("drift_score", "score"),
        ("psi_score", "psi"),
        ("ks_statistic", "ks"),
        ("wasserstein_distance", "w"),
    ] {
        sql.push(", ")
            .float(&format!("{alias}.{column}"))
            .push(&format!(" AS {name}"));
    }
}

async fn type_summaries(txn: &ScopedTxn, filter: &DriftFilter) -> ApiResult<Vec<DriftTypeSummary>> {
    let source = filtered(txn, filter)?;
    let mut sql = Sql::new(txn.backend());
    sql.push(
        "SELECT a.*, l.metric_id AS latest_metric_id, l.measured_at AS latest_measured_at, \
         l.score AS latest_score, l.psi AS latest_psi, l.ks AS latest_ks, l.w AS latest_w \
         FROM (SELECT drift_type, COUNT(*) AS n, \
         MAX(score) AS score_max, AVG(score) AS score_avg, MAX(psi) AS psi_max, AVG(psi) AS psi_avg, \
         MAX(ks) AS ks_max, AVG(ks) AS ks_avg, MAX(w) AS w_max, AVG(w) AS w_avg, \
         COUNT(*) FILTER (WHERE alert_triggered) AS alerts_total, \
         COUNT(*) FILTER (WHERE alert_triggered AND alert_level = 'info') AS alerts_info, \
         COUNT(*) FILTER (WHERE alert_triggered AND alert_level = 'warning') AS alerts_warning, \
         COUNT(*) FILTER (WHERE alert_triggered AND alert_level = 'critical') AS alerts_critical \
         FROM (SELECT d.drift_type, d.alert_triggered, d.alert_level",
    );
    scores(&mut sql, "d");
    sql.push(" FROM ").subquery(&source).push(
        " d) scored GROUP BY drift_type) a JOIN (SELECT * FROM (SELECT d.drift_type, d.metric_id, d.measured_at",
    );
    scores(&mut sql, "d");
    sql.push(
        ", ROW_NUMBER() OVER (PARTITION BY d.drift_type \
         ORDER BY d.measured_at DESC NULLS LAST, d.metric_id DESC) AS rank_in_type FROM ",
    )
    .subquery(&source)
    .push(" d) ranked WHERE rank_in_type = 1) l ON l.drift_type = a.drift_type");

    let mut out = Vec::new();
    for row in sql.fetch(txn).await? {
        out.push(read_type_summary(&row)?);
    }
    out.sort_by(|a, b| a.drift_type.cmp(&b.drift_type));
    Ok(out)
}

fn read_type_summary(row: &QueryResult) -> ApiResult<DriftTypeSummary> {
    let summary = |name: &str| -> ApiResult<ScoreSummary> {
        Ok(ScoreSummary {
            latest: measure_opt(get_float(row, &format!("latest_{name}"))?),
            max: measure_opt(get_float(row, &format!("{name}_max"))?),
            avg: measure_opt(get_float(row, &format!("{name}_avg"))?),
        })
    };
    let latest_measured_at = row
        .try_get::<Option<DateTime<Utc>>>("", "latest_measured_at")
        .map_err(|e| {
            crate::error::ApiError::Internal(anyhow::anyhow!("reading latest_measured_at: {e}"))
        })?;
    Ok(DriftTypeSummary {
        drift_type: get_text(row, "drift_type")?.unwrap_or_default(),
        metrics: get_count(row, "n")?,
        latest_metric_id: get_text(row, "latest_metric_id")?,
        latest_measured_at,
        drift_score: summary("score")?,
        psi: summary("psi")?,
        ks: summary("ks")?,
        wasserstein: summary("w")?,
        alerts: AlertCounts {
            total: get_count(row, "alerts_total")?,
            info: get_count(row, "alerts_info")?,
            warning: get_count(row, "alerts_warning")?,
            critical: get_count(row, "alerts_critical")?,
        },
        trend: Vec::new(),
    })
}

async fn trend(
    txn: &ScopedTxn,
    filter: &DriftFilter,
    buckets: &[Bucket],
) -> ApiResult<std::collections::HashMap<(String, usize), DriftTrendPoint>> {
    let source = filtered(txn, filter)?;
    let mut sql = Sql::new(txn.backend());
    sql.bucket_table(buckets);
    sql.push(
        "SELECT idx, drift_type, COUNT(*) AS n, AVG(score) AS score_avg, MAX(score) AS score_max, \
         MAX(psi) AS psi_max, MAX(ks) AS ks_max, MAX(w) AS w_max, \
         COUNT(*) FILTER (WHERE alert_triggered) AS alerts \
         FROM (SELECT ",
    );
    sql.bucket_index("d.measured_at", buckets)
        .push(" AS idx, d.drift_type, d.alert_triggered");
    scores(&mut sql, "d");
    sql.push(" FROM ")
        .subquery(&source)
        .push(" d")
        .bucket_join("d.measured_at")
        .push(") scored GROUP BY idx, drift_type");
    let mut out = std::collections::HashMap::new();
    for row in sql.fetch(txn).await? {
        out.insert(
            (
                get_text(&row, "drift_type")?.unwrap_or_default(),
                get_count(&row, "idx")? as usize,
            ),
            DriftTrendPoint {
                bucket_start: None,
                metrics: get_count(&row, "n")?,
                avg_drift_score: measure_opt(get_float(&row, "score_avg")?),
                max_drift_score: measure_opt(get_float(&row, "score_max")?),
                max_psi: measure_opt(get_float(&row, "psi_max")?),
                max_ks: measure_opt(get_float(&row, "ks_max")?),
                max_wasserstein: measure_opt(get_float(&row, "w_max")?),
                alerts: get_count(&row, "alerts")?,
            },
        );
    }
    Ok(out)
}
