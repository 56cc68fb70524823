//! Dashboard analytics at two tenant sizes: SHAP importance over 30 days,
//! model performance with feedback, observed quality and calibration over
//! 7 days, predictions per risk level per day over 30 days, and drift
//! analysis (a 7-day reference against the last day), for a
//! tenant of `--predictions` and the scale tenant of `--scale-factor` times
//! that. Three ways, in one run: mlgate as configured (rollups on
//! PostgreSQL), the same gateway scanning the rows (`--analytics-rollups
//! off`), and hand-written SQL over the rows (the floor). The two gateways
//! must answer alike before anything is timed (drift analysis: the
//! rollups' answer within its stated error bounds of the exact one).

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::{json, Value as Json};
use server::auth::Role;

use crate::args::Args;
use crate::common::{graphql, in_process_with, ms, pool, timed, InProcess};
use crate::load::closed_loop;
use crate::scale::large_tenant;

#[derive(Clone, Copy, Debug)]
enum Analytic {
    Shap,
    Performance,
    Stats,
    Drift,
}

impl Analytic {
    const ALL: [Analytic; 4] = [
        Analytic::Shap,
        Analytic::Performance,
        Analytic::Stats,
        Analytic::Drift,
    ];

    fn name(self) -> &'static str {
        match self {
            Analytic::Shap => "SHAP importance, top 10, one model, 30 days",
            Analytic::Performance => {
                "model performance with feedback, observed and calibration, 7 days"
            }
            Analytic::Stats => {
                "predictions per risk level per day (count, mean probability), 30 days"
            }
            Analytic::Drift => {
                "drift analysis, one model, 7-day reference against the last day, 4 signals × 5 methods and attribution"
            }
        }
    }
}

const SHAP: &str = r#"query Shap($model: String!, $from: DateTime!) {
  shapImportance(modelId: $model, window: {from: $from}, top: 10) {
    predictionCount featureCount features { feature meanAbsValue meanValue predictionCount }
  }
}"#;

const PERFORMANCE: &str = r#"query Performance($from: DateTime!) {
  modelPerformance(window: {from: $from}) {
    model { modelId } predictionCount
    feedback { count predictionsWithFeedback meanAccuracyRating }
    observed { labelled truePositives falsePositives trueNegatives falseNegatives precision recall f1Score }
    calibration { outcomes brierScore bins { count meanPredicted observedRate } }
  }
}"#;

const STATS: &str = r#"query Stats($from: DateTime!, $to: DateTime!) {
  predictionStats(groupBy: [RISK_LEVEL], bucket: {unit: DAY}, from: $from, to: $to) {
    groups { key { bucketStart riskLevel } measures { count violationProbability { avg } } }
  }
}"#;

const DRIFT: &str = r#"query Drift($model: String!, $refFrom: DateTime!, $refTo: DateTime!) {
  driftAnalysis(modelId: $model, reference: {from: $refFrom, to: $refTo}, current: {from: $refTo}) {
    signals {
      signal referenceCount currentCount exact
      bins { lower upper referenceShare currentShare }
      statistics { method value errorBound pValue level }
    }
    attribution { ndcg drifted features { feature referenceMeanAbs currentMeanAbs referenceRank currentRank } }
  }
}"#;

/// One tenant's requests: the model with the most predictions, the windows.
struct Case {
    tenant: String,
    model: String,
    predictions: i64,
    last_month: DateTime<Utc>,
    last_week: DateTime<Utc>,
    last_day: DateTime<Utc>,
    days_to: DateTime<Utc>,
}

impl Case {
    fn request(&self, analytic: Analytic) -> (&'static str, Json) {
        match analytic {
            Analytic::Shap => (SHAP, json!({"model": self.model, "from": self.last_month})),
            Analytic::Performance => (PERFORMANCE, json!({"from": self.last_week})),
            Analytic::Stats => (STATS, json!({"from": self.last_month, "to": self.days_to})),
            Analytic::Drift => (
                DRIFT,
                json!({"model": self.model, "refFrom": self.last_week - chrono::Duration::days(1), "refTo": self.last_day}),
            ),
        }
    }

    /// The hand-written scan of the same answer, its rows returned.
    fn floor(&self, analytic: Analytic) -> Statement {
        let t = Value::from(self.tenant.clone());
        let (sql, values): (&str, Vec<Value>) = match analytic {
            Analytic::Shap => (
                "SELECT e.key, count(*), avg(abs((e.value #>> '{}')::float8)), avg((e.value #>> '{}')::float8)
                   FROM ml_predictions p,
                        jsonb_each(CASE WHEN jsonb_typeof(p.shap_values -> 'values') = 'object'
                                        THEN p.shap_values -> 'values' ELSE p.shap_values END) e
                  WHERE p.tenant_id = $1 AND p.model_id = $2 AND p.prediction_timestamp >= $3
                    AND jsonb_typeof(p.shap_values) = 'object' AND jsonb_typeof(e.value) = 'number'
                    AND e.key NOT IN ('base_value', '_base_value', 'expected_value')
                  GROUP BY e.key ORDER BY 3 DESC LIMIT 10",
                vec![t, self.model.clone().into(), self.last_month.into()],
            ),
            Analytic::Performance => (
                "WITH latest AS (
                     SELECT DISTINCT ON (f.prediction_id) f.prediction_id, f.feedback_type, f.correct_label
                       FROM ml_feedback f JOIN ml_predictions p
                         ON p.tenant_id = f.tenant_id AND p.prediction_id = f.prediction_id
                      WHERE f.tenant_id = $1 AND p.prediction_timestamp >= $2
                      ORDER BY f.prediction_id, f.created_at DESC NULLS LAST, f.feedback_id DESC
                 ), outcomes AS (
                     SELECT p.model_id, p.violation_probability::float8 AS prob,
                            (p.violation_probability >= 0.5)::int AS decided,
                            CASE WHEN l.correct_label IS NOT NULL THEN l.correct_label::int
                                 WHEN l.feedback_type = 'false_positive' THEN 0
                                 WHEN l.feedback_type = 'false_negative' THEN 1
                                 WHEN l.feedback_type = 'correct' THEN (p.violation_probability >= 0.5)::int
                                 ELSE 1 - (p.violation_probability >= 0.5)::int END AS outcome
                       FROM latest l JOIN ml_predictions p
                         ON p.tenant_id = $1 AND p.prediction_id = l.prediction_id
                 )
                 SELECT model_id, least(floor(prob * 10), 9) AS bin, count(*), avg(prob), avg(outcome),
                        sum((prob - outcome) ^ 2), count(*) FILTER (WHERE decided = 1 AND outcome = 1)
                   FROM outcomes GROUP BY 1, 2
                 UNION ALL
                 SELECT p.model_id, -1, count(*), avg(p.confidence_score::float8), count(f.id), NULL, NULL
                   FROM ml_predictions p LEFT JOIN ml_feedback f
                     ON f.tenant_id = p.tenant_id AND f.prediction_id = p.prediction_id
                  WHERE p.tenant_id = $1 AND p.prediction_timestamp >= $2 GROUP BY 1",
                vec![t, self.last_week.into()],
            ),
            // What the comparison needs from the rows: each window's value
            // counts of the four signals and its features' SHAP sums.
            Analytic::Drift => (
                "WITH w AS (
                     SELECT p.*, p.prediction_timestamp >= $4 AS cur FROM ml_predictions p
                      WHERE p.tenant_id = $1 AND p.model_id = $2 AND p.prediction_timestamp >= $3
                 )
                 SELECT cur, 'p' AS s, violation_probability::float8 AS v, count(*) FROM w GROUP BY 1, 2, 3
                 UNION ALL SELECT cur, 'c', confidence_score::float8, count(*) FROM w GROUP BY 1, 2, 3
                 UNION ALL SELECT cur, 'r', risk_score::float8, count(*) FROM w WHERE risk_score IS NOT NULL GROUP BY 1, 2, 3
                 UNION ALL SELECT cur, 'l', inference_time_ms::float8, count(*) FROM w GROUP BY 1, 2, 3
                 UNION ALL SELECT cur, e.key, sum(abs((e.value #>> '{}')::float8)), count(*)
                   FROM w, jsonb_each(CASE WHEN jsonb_typeof(w.shap_values -> 'values') = 'object'
                                           THEN w.shap_values -> 'values' ELSE w.shap_values END) e
                  WHERE jsonb_typeof(w.shap_values) = 'object' AND jsonb_typeof(e.value) = 'number'
                  GROUP BY 1, 2",
                vec![
                    t,
                    self.model.clone().into(),
                    (self.last_week - chrono::Duration::days(1)).into(),
                    self.last_day.into(),
                ],
            ),
            Analytic::Stats => (
                "SELECT date_trunc('day', prediction_timestamp, 'UTC'), risk_level, count(*),
                        avg(violation_probability::float8)
                   FROM ml_predictions
                  WHERE tenant_id = $1 AND prediction_timestamp >= $2 AND prediction_timestamp < $3
                  GROUP BY 1, 2",
                vec![t, self.last_month.into(), self.days_to.into()],
            ),
        };
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }
}

async fn case(raw: &DatabaseConnection, tenant: &str, now: DateTime<Utc>) -> anyhow::Result<Case> {
    let row = raw
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT model_id, count(*) AS n FROM ml_predictions WHERE tenant_id = $1
              GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
            [tenant.into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant} has no predictions"))?;
    let predictions = crate::common::count(
        raw,
        &format!("SELECT count(*) FROM ml_predictions WHERE tenant_id = '{tenant}'"),
    )
    .await?;
    let midnight = chrono::DurationRound::duration_trunc(now, chrono::Duration::days(1))?;
    Ok(Case {
        tenant: tenant.to_owned(),
        model: row.try_get("", "model_id")?,
        predictions,
        last_month: now - chrono::Duration::days(30),
        last_week: now - chrono::Duration::days(7),
        last_day: now - chrono::Duration::days(1),
        days_to: midnight + chrono::Duration::days(1),
    })
}

/// Each drift statistic from the rollups holds the exact one (from the
/// rows) within its stated bound, and both saw the same samples.
fn within_bounds(rollups: &Json, rows: &Json) -> bool {
    let signals = |answer: &Json| answer["driftAnalysis"]["signals"].clone();
    let (a, b) = (signals(rollups), signals(rows));
    let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else {
        return false;
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x["referenceCount"] == y["referenceCount"]
                && x["currentCount"] == y["currentCount"]
                && x["statistics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .zip(y["statistics"].as_array().into_iter().flatten())
                    .all(|(s, t)| {
                        let value = |v: &Json| v["value"].as_f64().unwrap_or(f64::NAN);
                        let bound = s["errorBound"].as_f64().unwrap_or(0.0);
                        // PSI, JS and Hellinger over quantile edges snapped to
                        // latency buckets are exact for other edges: not compared.
                        let snapped = x["signal"] == "INFERENCE_TIME"
                            && !matches!(s["method"].as_str(), Some("KS" | "WASSERSTEIN"));
                        snapped || (value(s) - value(t)).abs() <= bound + 1e-6
                    })
        })
        && rollups["driftAnalysis"]["attribution"] == rows["driftAnalysis"]["attribution"]
}

fn stop(server: InProcess) -> tokio::task::JoinHandle<()> {
    let _ = server.stop.send(());
    server.handle
}

pub(crate) async fn dashboard(args: &Args, tenants: &[String]) -> anyhow::Result<String> {
    let (large, _, _) = large_tenant(args).await?;
    let raw = pool(&args.database_url, 1).await?;
    let now = Utc::now();
    let cases = [
        case(&raw, &tenants[0], now).await?,
        case(&raw, &large, now).await?,
    ];
    let rollups = in_process_with(args, true).await?;
    let rows = in_process_with(args, false).await?;
    let client = reqwest::Client::new();
    let duration = Duration::from_secs(args.seconds.max(1));

    let mut out = String::new();
    writeln!(out, "## Dashboard analytics at two tenant sizes\n")?;
    writeln!(
        out,
        "Each query alone at concurrency 1, {} s per measurement: mlgate answering from the rollups, the same gateway \
         scanning the rows (`--analytics-rollups off`), and hand-written SQL scanning the rows (the floor). \
         The two gateways' answers are compared before timing (equal).\n",
        duration.as_secs()
    )?;
    writeln!(out, "| query | tenant (predictions) | statements | p50 rollups (ms) | p95 | p50 scanning (ms) | p50 floor (ms) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    let mut p50s: Vec<(Analytic, f64)> = Vec::new();
    for case in &cases {
        let key =
            server::ops::keys::create_for_tenant(&rollups.db, &case.tenant, Role::Viewer, "bench")
                .await?
                .secret;
        for analytic in Analytic::ALL {
            let request = case.request(analytic);
            let before = rollups.db.statements_executed();
            let from_rollups = graphql(&client, &rollups.url, &key, request.0, &request.1).await?;
            let statements = rollups.db.statements_executed() - before;
            let from_rows = graphql(&client, &rows.url, &key, request.0, &request.1).await?;
            let alike = match analytic {
                Analytic::Drift => within_bounds(&from_rollups, &from_rows),
                _ => from_rollups == from_rows,
            };
            anyhow::ensure!(
                alike,
                "{}: rollups and rows differ for {}:\n{from_rollups}\n{from_rows}",
                analytic.name(),
                case.tenant
            );
            let mine = timed(&client, &rollups.url, &key, request.clone(), duration).await?;
            let scanning = timed(&client, &rows.url, &key, request, duration).await?;
            let statement = case.floor(analytic);
            let floor_pool = raw.clone();
            let floor = closed_loop(1, duration / 5, duration, move |_, _| {
                let (pool, statement) = (floor_pool.clone(), statement.clone());
                async move {
                    pool.query_all_raw(statement)
                        .await
                        .map(|_| ())
                        .map_err(Into::into)
                }
            })
            .await?;
            writeln!(
                out,
                "| {} | {} ({}) | {statements} | {} | {} | {} | {} |",
                analytic.name(),
                case.tenant,
                case.predictions,
                ms(mine.p50()),
                ms(mine.p95()),
                ms(scanning.p50()),
                ms(floor.p50()),
            )?;
            p50s.push((analytic, mine.p50()));
        }
    }
    writeln!(out)?;
    for analytic in Analytic::ALL {
        let of = |i: usize| {
            p50s.iter()
                .filter(|(a, _)| a.name() == analytic.name())
                .nth(i)
                .map(|(_, p)| *p)
        };
        if let (Some(small), Some(large)) = (of(0), of(1)) {
            writeln!(
                out,
                "- {}: {:.2}× from the smaller tenant to the larger (p50 {} → {} ms).",
                analytic.name(),
                large / small,
                ms(small),
                ms(large)
            )?;
        }
    }
    writeln!(out)?;
    let _ = tokio::join!(stop(rollups), stop(rows));
    Ok(out)
}
