//! The dashboard read mix, through mlgate and as hand-written SQL (the floor).
//!
//! Each query is run both ways once first and the answers compared (the same
//! predictions, the same counts and percentiles), so the floor really fetches
//! what mlgate answers and a broken query fails the run instead of timing it.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::{json, Value as Json};
use server::auth::Role;

use crate::args::Args;
use crate::common::{count, in_process, mlgate_mix, ms, one_query, pool, Target};
use crate::load::closed_loop;

/// One query of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    HighRisk,
    Performance,
    Daily,
    Drift,
    Nested,
}

impl Query {
    pub const ALL: [Query; 5] = [
        Query::HighRisk,
        Query::Performance,
        Query::Daily,
        Query::Drift,
        Query::Nested,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Query::HighRisk => "high-risk predictions (SHAP top-5, model, feedback)",
            Query::Performance => "model performance (p50/p95/p99)",
            Query::Daily => "predictions per day, 30 days",
            Query::Drift => "drift summary",
            Query::Nested => "3-level nested list",
        }
    }
}

/// The time windows of the mix, fixed once per run.
#[derive(Clone, Debug)]
pub struct Windows {
    pub last_day: DateTime<Utc>,
    pub last_week: DateTime<Utc>,
    pub days_from: DateTime<Utc>,
    pub days_to: DateTime<Utc>,
    pub drift_from: DateTime<Utc>,
    pub drift_model: String,
}

impl Windows {
    pub fn at(now: DateTime<Utc>, drift_model: &str) -> Self {
        let midnight = now.duration_trunc(Duration::days(1)).expect("whole days");
        Self {
            last_day: now - Duration::hours(24),
            last_week: now - Duration::days(7),
            days_from: midnight - Duration::days(29),
            days_to: midnight + Duration::days(1),
            drift_from: now - Duration::days(2),
            drift_model: drift_model.to_owned(),
        }
    }
}

const HIGH_RISK: &str = r#"query HighRisk($from: DateTime!) {
  predictions(filter: {riskLevels: [CRITICAL, HIGH], from: $from}, orderBy: {field: VIOLATION_PROBABILITY, direction: DESC}, first: 20) {
    nodes {
      predictionId resourceId riskLevel violationProbability
      shapValues(top: 5) { feature value }
      model { modelId modelName }
      feedback(first: 3) { nodes { feedbackType correctLabel } }
    }
  }
}"#;

const PERFORMANCE: &str = r#"query Performance($from: DateTime!) {
  modelPerformance(filter: {statuses: [ACTIVE]}, window: {from: $from}) {
    model { modelId }
    predictionCount avgConfidence
    inferenceTimeMs { p50 p95 p99 percentilesEstimated }
    riskDistribution { critical high medium low }
  }
}"#;

const DAILY: &str = r#"query Daily($from: DateTime!, $to: DateTime!) {
  predictionStats(bucket: {unit: DAY}, from: $from, to: $to) {
    groups { key { bucketStart } measures { count } }
  }
}"#;

const DRIFT: &str = r#"query Drift($modelId: String!, $from: DateTime!) {
  driftSummary(modelId: $modelId, window: {from: $from}) {
    types { driftType metricCount psi { latest max avg } }
  }
}"#;

const NESTED: &str = r#"query Nested {
  models(first: 4) {
    nodes {
      modelId
      predictions(first: 10) {
        nodes { predictionId feedback(first: 2) { nodes { feedbackType } } }
      }
    }
  }
}"#;

/// The variables of `query` (the same for any gateway asked it).
pub fn variables(query: Query, w: &Windows) -> Json {
    match query {
        Query::HighRisk => json!({"from": w.last_day}),
        Query::Performance => json!({"from": w.last_week}),
        Query::Daily => json!({"from": w.days_from, "to": w.days_to}),
        Query::Drift => json!({"modelId": w.drift_model, "from": w.drift_from}),
        Query::Nested => json!({}),
    }
}

/// The GraphQL document and variables of `query`.
pub fn graphql(query: Query, w: &Windows) -> (&'static str, Json) {
    let document = match query {
        Query::HighRisk => HIGH_RISK,
        Query::Performance => PERFORMANCE,
        Query::Daily => DAILY,
        Query::Drift => DRIFT,
        Query::Nested => NESTED,
    };
    (document, variables(query, w))
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The hand-written SQL of `query` for `tenant`, run on `pool`, shaped like
/// mlgate's answer (`data`). PostgreSQL only: it is the production backend.
pub async fn floor(
    pool: &DatabaseConnection,
    tenant: &str,
    query: Query,
    w: &Windows,
) -> anyhow::Result<Json> {
    let t = Value::from(tenant.to_owned());
    Ok(match query {
        Query::HighRisk => {
            let rows = pool
                .query_all_raw(statement(
                    "SELECT p.prediction_id, p.resource_id, p.risk_level, p.violation_probability::float8 AS probability,
                            p.shap_values::text AS shap, m.model_id, m.model_name,
                            (SELECT coalesce(json_agg(json_build_object('feedbackType', upper(f.feedback_type), 'correctLabel', f.correct_label)), '[]')::text
                               FROM (SELECT feedback_type, correct_label FROM ml_feedback f
                                      WHERE f.tenant_id = p.tenant_id AND f.prediction_id = p.prediction_id
                                      ORDER BY f.created_at DESC NULLS LAST, f.feedback_id DESC LIMIT 3) f) AS feedback
                       FROM ml_predictions p
                       JOIN ml_models m ON m.tenant_id = p.tenant_id AND m.model_id = p.model_id
                      WHERE p.tenant_id = $1 AND p.risk_level IN ('critical', 'high') AND p.prediction_timestamp >= $2
                      ORDER BY p.violation_probability DESC NULLS LAST, p.prediction_id DESC
                      LIMIT 20",
                    vec![t, w.last_day.into()],
                ))
                .await?;
            let mut nodes = Vec::with_capacity(rows.len());
            for row in rows {
                let shap: Option<String> = row.try_get("", "shap")?;
                let feedback: String = row.try_get("", "feedback")?;
                nodes.push(json!({
                    "predictionId": row.try_get::<String>("", "prediction_id")?,
                    "resourceId": row.try_get::<String>("", "resource_id")?,
                    "riskLevel": row.try_get::<String>("", "risk_level")?.to_uppercase(),
                    "violationProbability": row.try_get::<f64>("", "probability")?,
                    "shapValues": top_shap(shap.as_deref(), 5),
                    "model": {"modelId": row.try_get::<String>("", "model_id")?, "modelName": row.try_get::<String>("", "model_name")?},
                    "feedback": {"nodes": serde_json::from_str::<Json>(&feedback)?},
                }));
            }
            json!({"predictions": {"nodes": nodes}})
        }
        Query::Performance => {
            let rows = pool
                .query_all_raw(statement(
                    "SELECT m.model_id, count(p.prediction_id) AS n, avg(p.confidence_score)::float8 AS confidence,
                            percentile_cont(0.5) WITHIN GROUP (ORDER BY p.inference_time_ms::float8) AS p50,
                            percentile_cont(0.95) WITHIN GROUP (ORDER BY p.inference_time_ms::float8) AS p95,
                            percentile_cont(0.99) WITHIN GROUP (ORDER BY p.inference_time_ms::float8) AS p99,
                            count(*) FILTER (WHERE p.risk_level = 'critical') AS critical,
                            count(*) FILTER (WHERE p.risk_level = 'high') AS high,
                            count(*) FILTER (WHERE p.risk_level = 'medium') AS medium,
                            count(*) FILTER (WHERE p.risk_level = 'low') AS low
                       FROM ml_models m
                       LEFT JOIN ml_predictions p ON p.tenant_id = m.tenant_id AND p.model_id = m.model_id
                                                 AND p.prediction_timestamp >= $2
                      WHERE m.tenant_id = $1 AND m.status = 'active'
                      GROUP BY m.model_id ORDER BY m.model_id",
                    vec![t, w.last_week.into()],
                ))
                .await?;
            let mut models = Vec::new();
            for row in rows {
                models.push(json!({
                    "model": {"modelId": row.try_get::<String>("", "model_id")?},
                    "predictionCount": row.try_get::<i64>("", "n")?,
                    "avgConfidence": row.try_get::<Option<f64>>("", "confidence")?,
                    "inferenceTimeMs": {
                        "p50": row.try_get::<Option<f64>>("", "p50")?,
                        "p95": row.try_get::<Option<f64>>("", "p95")?,
                        "p99": row.try_get::<Option<f64>>("", "p99")?,
                    },
                    "riskDistribution": {
                        "critical": row.try_get::<i64>("", "critical")?,
                        "high": row.try_get::<i64>("", "high")?,
                        "medium": row.try_get::<i64>("", "medium")?,
                        "low": row.try_get::<i64>("", "low")?,
                    },
                }));
            }
            json!({"modelPerformance": models})
        }
        Query::Daily => {
            let rows = pool
                .query_all_raw(statement(
                    // One pass over the window's rows, grouped by UTC day, then
                    // gap-filled.
                    "SELECT d.day, coalesce(c.n, 0) AS n
                       FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 day', interval '1 day') AS d(day)
                       LEFT JOIN (SELECT date_trunc('day', prediction_timestamp, 'UTC') AS day, count(*) AS n
                                    FROM ml_predictions
                                   WHERE tenant_id = $1 AND prediction_timestamp >= $2 AND prediction_timestamp < $3
                                   GROUP BY 1) c ON c.day = d.day
                      ORDER BY d.day",
                    vec![t, w.days_from.into(), w.days_to.into()],
                ))
                .await?;
            let mut groups = Vec::new();
            for row in rows {
                let day: DateTime<Utc> = row.try_get("", "day")?;
                groups.push(json!({"key": {"bucketStart": day}, "measures": {"count": row.try_get::<i64>("", "n")?}}));
            }
            json!({"predictionStats": {"groups": groups}})
        }
        Query::Drift => {
            let rows = pool
                .query_all_raw(statement(
                    "SELECT drift_type, count(*) AS n,
                            (array_agg(psi_score::float8 ORDER BY measured_at DESC NULLS LAST, metric_id DESC))[1] AS latest,
                            max(psi_score)::float8 AS max, avg(psi_score)::float8 AS avg
                       FROM ml_drift_metrics
                      WHERE tenant_id = $1 AND model_id = $2 AND measured_at >= $3
                      GROUP BY drift_type ORDER BY drift_type",
                    vec![t, w.drift_model.clone().into(), w.drift_from.into()],
                ))
                .await?;
            let mut types = Vec::new();
            for row in rows {
                types.push(json!({
                    "driftType": row.try_get::<String>("", "drift_type")?.to_uppercase(),
                    "metricCount": row.try_get::<i64>("", "n")?,
                    "psi": {
                        "latest": row.try_get::<Option<f64>>("", "latest")?,
                        "max": row.try_get::<Option<f64>>("", "max")?,
                        "avg": row.try_get::<Option<f64>>("", "avg")?,
                    },
                }));
            }
            json!({"driftSummary": {"types": types}})
        }
        Query::Nested => {
            let rows = pool
                .query_all_raw(statement(
                    "SELECT m.model_id,
                            (SELECT coalesce(json_agg(json_build_object('predictionId', p.prediction_id, 'feedback', json_build_object('nodes',
                                      (SELECT coalesce(json_agg(json_build_object('feedbackType', upper(f.feedback_type))), '[]')
                                         FROM (SELECT feedback_type FROM ml_feedback f
                                                WHERE f.tenant_id = p.tenant_id AND f.prediction_id = p.prediction_id
                                                ORDER BY f.created_at DESC NULLS LAST, f.feedback_id DESC LIMIT 2) f)))), '[]')::text
                               FROM (SELECT tenant_id, prediction_id FROM ml_predictions p
                                      WHERE p.tenant_id = m.tenant_id AND p.model_id = m.model_id
                                      ORDER BY p.prediction_timestamp DESC NULLS LAST, p.prediction_id DESC LIMIT 10) p) AS predictions
                       FROM ml_models m
                      WHERE m.tenant_id = $1
                      ORDER BY m.created_at DESC NULLS LAST, m.model_id DESC LIMIT 4",
                    vec![t],
                ))
                .await?;
            let mut models = Vec::new();
            for row in rows {
                let predictions: String = row.try_get("", "predictions")?;
                models.push(json!({
                    "modelId": row.try_get::<String>("", "model_id")?,
                    "predictions": {"nodes": serde_json::from_str::<Json>(&predictions)?},
                }));
            }
            json!({"models": {"nodes": models}})
        }
    })
}

/// The `top` SHAP contributions of a stored object, largest magnitude first
/// (ties by name), as mlgate orders them.
pub(crate) fn top_shap(stored: Option<&str>, top: usize) -> Json {
    let Some(object) = stored
        .and_then(|s| serde_json::from_str::<Json>(s).ok())
        .and_then(|v| v.as_object().cloned())
    else {
        return json!([]);
    };
    let mut items: Vec<(String, f64)> = object
        .into_iter()
        .filter(|(k, _)| !["base_value", "_base_value", "expected_value"].contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k, v.as_f64()?)))
        .collect();
    items.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
    items.truncate(top);
    Json::Array(
        items
            .into_iter()
            .map(|(feature, value)| json!({"feature": feature, "value": value}))
            .collect(),
    )
}

/// Checks that mlgate's `data` and the floor's answer hold the same results.
pub fn same_results(query: Query, mlgate: &Json, floor: &Json) -> anyhow::Result<()> {
    let close = |a: &Json, b: &Json| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(1.0),
        _ => a == b,
    };
    let ensure = |ok: bool, what: &str| -> anyhow::Result<()> {
        anyhow::ensure!(
            ok,
            "{}: mlgate and the SQL floor disagree on {what}:\nmlgate {mlgate}\nfloor  {floor}",
            query.name()
        );
        Ok(())
    };
    match query {
        Query::HighRisk => {
            let ids = |v: &Json| -> Vec<Json> {
                v["predictions"]["nodes"]
                    .as_array()
                    .map(|n| n.iter().map(|p| p["predictionId"].clone()).collect())
                    .unwrap_or_default()
            };
            ensure(!ids(mlgate).is_empty(), "a non-empty page")?;
            ensure(ids(mlgate) == ids(floor), "the predictions")?;
            let nodes = mlgate["predictions"]["nodes"].as_array().unwrap();
            for (m, f) in nodes
                .iter()
                .zip(floor["predictions"]["nodes"].as_array().unwrap())
            {
                ensure(m["shapValues"] == f["shapValues"], "SHAP top-5")?;
                ensure(m["model"] == f["model"], "the model")?;
                ensure(m["feedback"] == f["feedback"], "the feedback")?;
            }
        }
        Query::Performance => {
            let models = mlgate["modelPerformance"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            ensure(
                models > 0 && Some(models) == floor["modelPerformance"].as_array().map(Vec::len),
                "the models",
            )?;
            let mut mine: Vec<&Json> = mlgate["modelPerformance"]
                .as_array()
                .unwrap()
                .iter()
                .collect();
            mine.sort_by_key(|m| {
                m["model"]["modelId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            });
            for (m, f) in mine
                .into_iter()
                .zip(floor["modelPerformance"].as_array().unwrap())
            {
                ensure(m["model"] == f["model"], "the model order")?;
                ensure(
                    m["predictionCount"] == f["predictionCount"],
                    "prediction counts",
                )?;
                ensure(
                    m["riskDistribution"] == f["riskDistribution"],
                    "risk distributions",
                )?;
                // Estimated percentiles are within 1 % of the exact ones.
                let estimated = m["inferenceTimeMs"]["percentilesEstimated"] == json!(true);
                for p in ["p50", "p95", "p99"] {
                    let (mine, exact) = (&m["inferenceTimeMs"][p], &f["inferenceTimeMs"][p]);
                    let within = match (mine.as_f64(), exact.as_f64()) {
                        (Some(a), Some(b)) if estimated => (a - b).abs() <= b.abs() * 0.01,
                        _ => close(mine, exact),
                    };
                    ensure(within, "latency percentiles")?;
                }
            }
        }
        Query::Daily => {
            let counts = |v: &Json| -> Vec<Json> {
                v["predictionStats"]["groups"]
                    .as_array()
                    .map(|g| g.iter().map(|x| x["measures"]["count"].clone()).collect())
                    .unwrap_or_default()
            };
            ensure(counts(mlgate).len() == 30, "30 days")?;
            ensure(counts(mlgate) == counts(floor), "daily counts")?;
        }
        Query::Drift => {
            let mut mine: Vec<&Json> = mlgate["driftSummary"]["types"]
                .as_array()
                .map(|t| t.iter().collect())
                .unwrap_or_default();
            mine.sort_by_key(|t| t["driftType"].as_str().unwrap_or_default().to_owned());
            let theirs = floor["driftSummary"]["types"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            ensure(
                !mine.is_empty() && mine.len() == theirs.len(),
                "the drift types",
            )?;
            for (m, f) in mine.into_iter().zip(&theirs) {
                ensure(m["metricCount"] == f["metricCount"], "metric counts")?;
                ensure(close(&m["psi"]["max"], &f["psi"]["max"]), "max PSI")?;
                ensure(
                    close(&m["psi"]["latest"], &f["psi"]["latest"]),
                    "latest PSI",
                )?;
            }
        }
        Query::Nested => {
            ensure(
                mlgate["models"]["nodes"]
                    .as_array()
                    .is_some_and(|n| !n.is_empty()),
                "models",
            )?;
            ensure(mlgate["models"] == floor["models"], "the nested lists")?;
        }
    }
    Ok(())
}

pub(crate) async fn reads(args: &Args, tenant: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let server = in_process(args).await?;
    let key = server::ops::keys::create_for_tenant(&server.db, tenant, Role::Viewer, "bench")
        .await?
        .secret;
    let floor_pool = pool(&args.database_url, args.pool_size).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let windows = Arc::new(Windows::at(chrono::Utc::now(), "ensemble-risk-03"));
    let tenant_predictions = count(
        &floor_pool,
        &format!("SELECT count(*) FROM ml_predictions WHERE tenant_id = '{tenant}'"),
    )
    .await?;

    writeln!(out, "## Read mix\n")?;
    writeln!(out, "Tenant `{tenant}` ({tenant_predictions} predictions); gateway pool and SQL-floor pool of {} connections each; \
              the tenant may hold {} % of the gateway's pool, {} % for analytics (`--tenant-db-share`, `--tenant-analytics-share`). \
              The floor is hand-written SQL returning the same results (checked before timing), run over its own pool from the harness.\n", args.pool_size, args.tenant_db_share, args.tenant_analytics_share)?;
    writeln!(
        out,
        "| query | statements per request (mlgate) | p50 mlgate (ms) | p50 floor (ms) | ratio |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    let per_query = std::time::Duration::from_secs((args.seconds / 2).max(1));
    let target = Target {
        client: &client,
        url: &server.url,
        key: &key,
        floor_pool: &floor_pool,
        tenant,
        windows: &windows,
    };
    for query in Query::ALL {
        let (statements, mine, theirs) = one_query(&target, &server.db, query, per_query).await?;
        writeln!(
            out,
            "| {} | {statements} | {} | {} | {:.2}× |",
            query.name(),
            ms(mine.p50()),
            ms(theirs.p50()),
            mine.p50() / theirs.p50()
        )?;
    }

    writeln!(
        out,
        "\nThe five queries in turn, each worker cycling through them:\n"
    )?;
    writeln!(out, "| concurrency | mlgate req/s | p50 | p95 | p99 (ms) | floor req/s | p50 | p95 | p99 (ms) | p50 ratio |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
    let duration = std::time::Duration::from_secs(args.seconds);
    for &concurrency in &args.concurrency {
        let mine = mlgate_mix(&client, &server.url, &key, &windows, concurrency, duration).await?;
        let theirs = {
            let (floor_pool, windows, tenant) =
                (floor_pool.clone(), windows.clone(), tenant.to_owned());
            closed_loop(concurrency, duration / 5, duration, move |worker, i| {
                let (floor_pool, windows, tenant) =
                    (floor_pool.clone(), windows.clone(), tenant.clone());
                let query = Query::ALL[(worker + i as usize) % Query::ALL.len()];
                async move {
                    floor(&floor_pool, &tenant, query, &windows)
                        .await
                        .map(|_| ())
                }
            })
            .await?
        };
        writeln!(
            out,
            "| {concurrency} | {:.0} | {} | {} | {} | {:.0} | {} | {} | {} | {:.2}× |",
            mine.throughput(),
            ms(mine.p50()),
            ms(mine.p95()),
            ms(mine.p99()),
            theirs.throughput(),
            ms(theirs.p50()),
            ms(theirs.p95()),
            ms(theirs.p99()),
            mine.p50() / theirs.p50()
        )?;
    }
    writeln!(out)?;
    let _ = server.stop.send(());
    let _ = server.handle.await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disagreeing_answers_fail_the_run() {
        let mine = json!({"predictionStats": {"groups": (0..30).map(|i| json!({"measures": {"count": i}})).collect::<Vec<_>>()}});
        let mut theirs = mine.clone();
        assert!(same_results(Query::Daily, &mine, &theirs).is_ok());
        theirs["predictionStats"]["groups"][3]["measures"]["count"] = json!(99);
        let error = same_results(Query::Daily, &mine, &theirs).unwrap_err();
        assert!(error.to_string().contains("daily counts"), "{error}");
        // An empty answer is a failure, not a fast success.
        let empty = json!({"predictions": {"nodes": []}});
        assert!(same_results(Query::HighRisk, &empty, &empty).is_err());
    }

    #[test]
    fn shap_top_is_ordered_by_magnitude_then_name() {
        let top = top_shap(
            Some(r#"{"b": -0.5, "a": 0.5, "c": 0.1, "base_value": 9}"#),
            2,
        );
        assert_eq!(
            top,
            json!([{"feature": "a", "value": 0.5}, {"feature": "b", "value": -0.5}])
        );
    }
}
