//! Model performance at a size where PostgreSQL answers from the hourly
//! rollups: every measure against values computed here from the stored
//! rows, for a window that starts and ends mid-hour, before and after
//! predictions are updated and deleted behind the gateway's back. Exact
//! where additive; percentiles exact up to 5000 predictions and within 1 %
//! (and marked estimated) above. SQLite, which scans, must give the exact
//! values throughout.

mod common;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert_all, scoped_for};
use common::{TestDb, TestServer};

const A: &str = "acme";
const B: &str = "globex";
const BIG: usize = 9_000;

fn start() -> DateTime<Utc> {
    "2026-03-01T00:00:00Z".parse().unwrap()
}

/// The window asked for: mid-hour to mid-hour, around a whole UTC day (on
/// PostgreSQL read from the day tier, the rest from hours and rows).
fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        start() - Duration::minutes(30),
        start() + Duration::minutes(24 * 60 + 45),
    )
}

/// A skewed, deterministic latency (ms, two decimals).
fn latency(i: usize) -> Decimal {
    let x = ((i * 7919) % 10_007) as f64 / 10_007.0;
    Decimal::new((500.0 + 40_000.0 * x.powi(5)).round() as i64, 2)
}

fn prediction(
    tenant: &str,
    model: &str,
    i: usize,
    spacing_secs: i64,
) -> entity::prediction::ActiveModel {
    let mut p = fixtures::prediction(tenant, &format!("{model}-{i}"), model);
    p.violation_probability = Set(Decimal::new(((i * 37) % 10_001) as i64, 4));
    p.confidence_score = Set(Decimal::new(((i * 53) % 10_001) as i64, 4));
    p.inference_time_ms = Set(if tenant == B {
        Decimal::new(99_900, 2)
    } else {
        latency(i)
    });
    p.risk_level = Set(["critical", "high", "medium", "low", "low"][i % 5].into());
    p.prediction_timestamp = Set(Some(start() + Duration::seconds(i as i64 * spacing_secs)));
    p
}

async fn seed(test_db: &TestDb) {
    let db = test_db.connect().await;
    let a = scoped_for(test_db, &db, A).await;
    insert_all(
        &a,
        vec![fixtures::model(A, "big"), fixtures::model(A, "small")],
    )
    .await
    .unwrap();
    // 9000 over 25 hours (one per 10 s), 300 over 10 hours.
    for chunk in (0..BIG).collect::<Vec<_>>().chunks(500) {
        insert_all(
            &a,
            chunk.iter().map(|&i| prediction(A, "big", i, 10)).collect(),
        )
        .await
        .unwrap();
    }
    insert_all(
        &a,
        (0..300).map(|i| prediction(A, "small", i, 120)).collect(),
    )
    .await
    .unwrap();
    // Tenant B's rows of a same-named model sit in the same hours.
    let b = scoped_for(test_db, &db, B).await;
    insert_all(&b, vec![fixtures::model(B, "big")])
        .await
        .unwrap();
    insert_all(&b, (0..500).map(|i| prediction(B, "big", i, 60)).collect())
        .await
        .unwrap();
}

/// `percentile_cont` of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let position = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - position.floor())
}

fn round9(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

/// What the answer must hold, from the stored rows of `model` in the window.
async fn expected(test_db: &TestDb, model: &str) -> (Value, [f64; 3]) {
    let db = test_db.raw().await;
    let (from, to) = window();
    let rows = entity::prediction::Entity::find()
        .filter(entity::prediction::Column::TenantId.eq(A))
        .filter(entity::prediction::Column::ModelId.eq(model))
        .filter(entity::prediction::Column::PredictionTimestamp.gte(from))
        .filter(entity::prediction::Column::PredictionTimestamp.lt(to))
        .all(&db)
        .await
        .unwrap();
    let f = |d: Decimal| d.to_f64().unwrap();
    let n = rows.len() as f64;
    let probability: Vec<f64> = rows.iter().map(|r| f(r.violation_probability)).collect();
    let confidence: Vec<f64> = rows.iter().map(|r| f(r.confidence_score)).collect();
    let mut latencies: Vec<f64> = rows.iter().map(|r| f(r.inference_time_ms)).collect();
    latencies.sort_by(f64::total_cmp);
    let spread = |v: &[f64]| {
        json!({
            "avg": round9(v.iter().sum::<f64>() / n),
            "min": v.iter().copied().fold(f64::INFINITY, f64::min),
            "max": v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    };
    let risk = |level: &str| rows.iter().filter(|r| r.risk_level == level).count();
    let additive = json!({
        "predictionCount": rows.len(),
        "predictions": {"violationProbability": spread(&probability), "confidenceScore": spread(&confidence)},
        "inferenceTimeMs": spread(&latencies),
        "riskDistribution": {"critical": risk("critical"), "high": risk("high"), "medium": risk("medium"), "low": risk("low")},
    });
    let percentiles = [0.5, 0.95, 0.99].map(|p| round9(percentile(&latencies, p)));
    (additive, percentiles)
}

const PERFORMANCE: &str = r#"query($from: DateTime!, $to: DateTime!) {
  modelPerformance(window: {from: $from, to: $to}) {
    model { modelId }
    predictionCount
    predictions { violationProbability { avg min max } confidenceScore { avg min max } }
    inferenceTimeMs { avg min max p50 p95 p99 percentilesEstimated }
    riskDistribution { critical high medium low }
  }
}"#;

async fn check(test_db: &TestDb, server: &TestServer, key: &str) {
    let (from, to) = window();
    let data = server
        .data(key, PERFORMANCE, json!({"from": from, "to": to}))
        .await;
    let models = data["modelPerformance"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{data}");
    for answer in models {
        let model = answer["model"]["modelId"].as_str().unwrap();
        let (additive, percentiles) = expected(test_db, model).await;
        let count = additive["predictionCount"].as_u64().unwrap();
        assert_eq!(
            answer["predictionCount"], additive["predictionCount"],
            "{model}"
        );
        assert_eq!(answer["predictions"], additive["predictions"], "{model}");
        assert_eq!(
            answer["riskDistribution"], additive["riskDistribution"],
            "{model}"
        );
        let latency = &answer["inferenceTimeMs"];
        for measure in ["avg", "min", "max"] {
            assert_eq!(
                latency[measure], additive["inferenceTimeMs"][measure],
                "{model} {measure}"
            );
        }
        let estimated = test_db.backend == DbBackend::Postgres && count > 5_000;
        assert_eq!(
            latency["percentilesEstimated"],
            json!(estimated),
            "{model}: {latency}"
        );
        for (name, exact) in ["p50", "p95", "p99"].into_iter().zip(percentiles) {
            let got = latency[name].as_f64().unwrap();
            if estimated {
                assert!(
                    (got - exact).abs() <= exact * 0.01,
                    "{model} {name}: {got} vs exact {exact}"
                );
            } else {
                assert_eq!(got, exact, "{model} {name}");
            }
        }
    }
}

backend_tests! {
    async fn model_performance_is_exact_where_additive_and_bounded_where_estimated(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let (additive, _) = expected(&test_db, "big").await;
        assert!(additive["predictionCount"].as_u64().unwrap() > 5_000, "the big model is estimated: {additive}");
        check(&test_db, &server, &key).await;

        // Rows changed and removed by other writers: slower calls moved an
        // hour earlier, and a block deleted.
        let raw = test_db.raw().await;
        let earlier = match test_db.backend {
            DbBackend::Postgres => ", prediction_timestamp = prediction_timestamp - interval '1 hour'",
            // RFC 3339 text, as stored.
            _ => ", prediction_timestamp = strftime('%Y-%m-%dT%H:%M:%S+00:00', prediction_timestamp, '-1 hour')",
        };
        let moved = format!(
            "UPDATE ml_predictions SET inference_time_ms = inference_time_ms * 3 + 1, risk_level = 'critical'{earlier} \
             WHERE tenant_id = 'acme' AND model_id = 'big' AND prediction_id LIKE 'big-1%'"
        );
        assert!(raw.execute_unprepared(&moved).await.unwrap().rows_affected() > 1000);
        check(&test_db, &server, &key).await;
        let deleted = raw
            .execute_unprepared("DELETE FROM ml_predictions WHERE tenant_id = 'acme' AND prediction_id LIKE 'big-2%'")
            .await
            .unwrap();
        assert!(deleted.rows_affected() > 1000);
        // A remediation update changes nothing rolled up.
        raw.execute_unprepared("UPDATE ml_predictions SET remediation_status = 'completed' WHERE prediction_id LIKE 'small-%'")
            .await
            .unwrap();
        check(&test_db, &server, &key).await;

        if test_db.backend == DbBackend::Postgres {
            // The rollups equal a fresh aggregation of the rows, tenant B's included.
            let db = test_db.connect().await;
            for tenant in [A, B] {
                for d in server::ops::rollups::differences(&db, tenant).await.unwrap() {
                    assert_eq!(d.differing, 0, "{tenant}: {d:?}");
                }
            }
            assert!(common::count(&raw, "SELECT count(*) FROM mlgate_prediction_hours WHERE tenant_id = 'globex'").await > 0);
        }
        server.stop().await;
    }
}
