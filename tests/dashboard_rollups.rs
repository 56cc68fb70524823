//! Dashboard analytics that PostgreSQL answers from the rollups of
//! migration 000013 (SHAP sums, prediction hours per risk level and
//! remediation status, feedback and outcome bins): each answer equals the
//! same query answered from the rows (a second gateway with
//! `--analytics-rollups off`) and, for SHAP importance, values computed here
//! from the stored rows — after inserts, feedback changes, out-of-band
//! updates and deletes — and the rollups equal a fresh aggregation and a
//! rebuild. SQLite, which scans, must give the values computed here too.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert_all, scoped_for};
use common::{TestDb, TestServer};

const A: &str = "acme";
const B: &str = "globex";

fn start() -> DateTime<Utc> {
    "2026-03-01T00:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> String {
    (start() + Duration::minutes(minutes)).to_rfc3339()
}

/// SHAP values in every stored shape: nested under `values` with a base
/// value, bare with non-numbers and base keys, none at all.
fn shap(i: usize) -> Option<Value> {
    let x = |k: usize| ((i * 7 + k * 13) % 200) as f64 / 1000.0 - 0.1;
    match i % 7 {
        0 => None,
        1 => Some(json!({"values": {"f1": x(1), "f2": x(2)}, "base_value": 0.2})),
        2 => Some(json!({"f1": x(3), "f3": "text", "expected_value": 1.5})),
        // Only a base value is a number: not explained.
        3 => Some(json!({"note": "no numbers", "expected_value": 0.4})),
        _ => Some(json!({"f1": x(4), "f2": x(5), format!("g{}", i % 5): x(6)})),
    }
}

fn prediction(tenant: &str, i: usize) -> entity::prediction::ActiveModel {
    // Keys change every few rows, so that an hour holds several rows of a
    // group and a later insert adds to the group an earlier one created.
    let model = if (i / 5).is_multiple_of(3) {
        "m2"
    } else {
        "m1"
    };
    let mut p = fixtures::prediction(tenant, &format!("p-{i}"), model);
    // Probabilities on and between bin edges, 0 and 1 among them.
    let probability = match i {
        _ if i.is_multiple_of(50) => Decimal::new(3500, 4),
        _ if i.is_multiple_of(97) => Decimal::ONE,
        _ if i.is_multiple_of(89) => Decimal::ZERO,
        _ => Decimal::new(((i * 37) % 10_001) as i64, 4),
    };
    p.violation_probability = Set(probability);
    p.confidence_score = Set(Decimal::new(((i * 53) % 10_001) as i64, 4));
    // Risk scores in every bin, 1 among them, and some predictions without one.
    p.risk_score = Set((!i.is_multiple_of(9)).then(|| Decimal::new(((i * 71) % 10_001) as i64, 4)));
    p.inference_time_ms = Set(Decimal::new((500 + (i * 7919) % 40_000) as i64, 2));
    p.model_version = Set(["1.0.0", "2.0.0"][(i / 13) % 4 / 3].into());
    p.risk_level = Set(["critical", "high", "medium", "low", "low"][(i / 7) % 5].into());
    p.remediation_status =
        Set([None, Some("pending"), Some("completed")][(i / 11) % 3].map(Into::into));
    p.shap_values = Set(shap(i));
    // One every 5 minutes over 50 hours; a few without a timestamp.
    p.prediction_timestamp = Set((!i.is_multiple_of(61))
        .then(|| start() + Duration::seconds(i as i64 * 300 + (i as i64 % 7) * 11)));
    p
}

/// Feedback on a quarter of the predictions, a second (later, or at the
/// same instant: the id breaks the tie) on an eighth, in every kind.
fn feedback(tenant: &str, i: usize) -> Vec<entity::feedback::ActiveModel> {
    let kinds = [
        ("correct", None),
        ("incorrect", None),
        ("false_positive", None),
        ("false_negative", None),
        ("correct", Some(false)),
        ("incorrect", Some(true)),
    ];
    let mut out = Vec::new();
    for n in 0..(1 + usize::from(i.is_multiple_of(8))) {
        let (kind, label) = kinds[(i / 4 + n * 5) % kinds.len()];
        let mut f = fixtures::feedback(tenant, &format!("f-{i}-{n}"), &format!("p-{i}"));
        f.feedback_type = Set(kind.into());
        f.correct_label = Set(label);
        f.accuracy_rating =
            Set((!i.is_multiple_of(5)).then(|| Decimal::new(((i + n) % 11 * 50) as i64, 2)));
        let later = if i.is_multiple_of(16) {
            0
        } else {
            n as i64 * 90
        };
        f.created_at = Set(Some(start() + Duration::days(3) + Duration::minutes(later)));
        out.push(f);
    }
    out
}

async fn seed(test_db: &TestDb) {
    let db = test_db.connect().await;
    for (tenant, n) in [(A, 600), (B, 200)] {
        let scoped = scoped_for(test_db, &db, tenant).await;
        insert_all(
            &scoped,
            vec![fixtures::model(tenant, "m1"), fixtures::model(tenant, "m2")],
        )
        .await
        .unwrap();
        // Evens first, then odds: the second pass adds to existing groups.
        let rows: Vec<usize> = (0..n).step_by(2).chain((1..n).step_by(2)).collect();
        for chunk in rows.chunks(100) {
            insert_all(
                &scoped,
                chunk.iter().map(|&i| prediction(tenant, i)).collect(),
            )
            .await
            .unwrap();
        }
        let given: Vec<_> = (0..n)
            .filter(|i| i % 4 == 0)
            .flat_map(|i| feedback(tenant, i))
            .collect();
        insert_all(&scoped, given).await.unwrap();
    }
}

const SHAP_WINDOWED: &str = r#"{
  shapImportance(modelId: "m1", window: {from: "FROM", to: "TO"}, top: 50) {
    predictionCount featureCount features { feature meanAbsValue meanValue predictionCount }
  }
}"#;

/// Every query compared, with what it exercises.
fn queries() -> Vec<(&'static str, String)> {
    let windowed = SHAP_WINDOWED
        .replace("FROM", &at(17))
        .replace("TO", &at(40 * 60 + 23));
    vec![
        ("SHAP importance, mid-hour window", windowed),
        (
            "SHAP importance, no window (untimed rows too)",
            r#"{ shapImportance(modelId: "m2", top: 50) {
                 predictionCount featureCount features { feature meanAbsValue meanValue predictionCount } } }"#
                .into(),
        ),
        (
            "statistics by risk level and remediation status per Kolkata day",
            format!(
                r#"{{ predictionStats(groupBy: [RISK_LEVEL, REMEDIATION_STATUS],
                     bucket: {{unit: DAY, timezone: "Asia/Kolkata"}}, from: "{}", to: "{}") {{
                   groups {{ key {{ bucketStart riskLevel remediationStatus }}
                     measures {{ count violationProbability {{ avg min max }} confidenceScore {{ avg min max }}
                       inferenceTimeMs {{ avg min max }} riskDistribution {{ critical high medium low }} }} }} }} }}"#,
                at(17),
                at(49 * 60)
            ),
        ),
        (
            "SHAP importance over a whole day and the hours around it",
            SHAP_WINDOWED
                .replace("FROM", &at(17))
                .replace("TO", &at(49 * 60 + 10)),
        ),
        (
            "statistics by risk level and remediation status per UTC day, whole days",
            format!(
                r#"{{ predictionStats(groupBy: [RISK_LEVEL, REMEDIATION_STATUS], bucket: {{unit: DAY}},
                     from: "{}", to: "{}") {{
                   groups {{ key {{ bucketStart riskLevel remediationStatus }}
                     measures {{ count violationProbability {{ avg min max }} confidenceScore {{ avg min max }}
                       inferenceTimeMs {{ avg min max }} riskDistribution {{ critical high medium low }} }} }} }} }}"#,
                at(0),
                at(49 * 60)
            ),
        ),
        (
            "performance at 0.35 over two whole days and partial hours either side",
            format!(
                r#"{{ modelPerformance(window: {{from: "{}", to: "{}"}}, decisionThreshold: 0.35) {{
                   model {{ modelId }} predictionCount inferenceTimeMs {{ avg min max p50 p95 }}
                   riskDistribution {{ critical high medium low }}
                   feedback {{ count predictionsWithFeedback coverage meanAccuracyRating }}
                   observed {{ labelled truePositives falsePositives trueNegatives falseNegatives
                     accuracy precision recall f1Score }}
                   calibration {{ outcomes brierScore bins {{ lower count meanPredicted observedRate }} }} }} }}"#,
                at(-30),
                at(48 * 60 + 30)
            ),
        ),
        (
            "statistics of one model's high risks pending, per version per hour",
            format!(
                r#"{{ predictionStats(filter: {{modelIds: ["m1"], riskLevels: [HIGH, CRITICAL],
                       remediationStatuses: [PENDING]}}, groupBy: [MODEL_VERSION],
                     bucket: {{unit: HOUR}}, from: "{}", to: "{}") {{
                   groups {{ key {{ bucketStart modelVersion }} measures {{ count violationProbability {{ avg max }} }} }} }} }}"#,
                at(0),
                at(50 * 60)
            ),
        ),
        (
            "statistics per model, no window",
            r#"{ predictionStats(groupBy: [MODEL]) {
                 groups { key { modelId } measures { count riskDistribution { critical low } } } } }"#
                .into(),
        ),
        (
            "performance at 0.35 over a mid-hour window",
            format!(
                r#"{{ modelPerformance(window: {{from: "{}", to: "{}"}}, decisionThreshold: 0.35) {{
                   model {{ modelId }} predictionCount
                   feedback {{ count predictionsWithFeedback coverage meanAccuracyRating }}
                   observed {{ labelled truePositives falsePositives trueNegatives falseNegatives
                     accuracy precision recall f1Score }}
                   calibration {{ outcomes brierScore bins {{ lower count meanPredicted observedRate }} }} }} }}"#,
                at(17),
                at(45 * 60 + 5)
            ),
        ),
        (
            "performance at 1, all time",
            r#"{ modelPerformance(decisionThreshold: 1) { model { modelId }
                 feedback { count predictionsWithFeedback meanAccuracyRating }
                 observed { truePositives falsePositives trueNegatives falseNegatives }
                 calibration { brierScore bins { count observedRate } } } }"#
                .into(),
        ),
        (
            "windows with no whole hour: inside one, and across a boundary",
            format!(
                r#"{{ shapImportance(modelId: "m1", window: {{from: "{a}", to: "{b}"}}, top: 50) {{
                     predictionCount featureCount features {{ feature meanAbsValue predictionCount }} }}
                   predictionStats(groupBy: [RISK_LEVEL], from: "{a}", to: "{b}") {{
                     groups {{ key {{ riskLevel }} measures {{ count violationProbability {{ avg min max }} }} }} }}
                   modelPerformance(window: {{from: "{a}", to: "{c}"}}) {{ model {{ modelId }} predictionCount
                     inferenceTimeMs {{ avg max }} feedback {{ count meanAccuracyRating }}
                     observed {{ truePositives falseNegatives }} calibration {{ brierScore }} }} }}"#,
                a = at(10 * 60 + 15),
                b = at(10 * 60 + 45),
                c = at(11 * 60 + 45),
            ),
        ),
        (
            "an empty window",
            format!(
                r#"{{ predictionStats(from: "{a}", to: "{a}") {{ groups {{ measures {{ count }} }} }}
                   shapImportance(modelId: "m1", window: {{from: "{a}", to: "{a}"}}) {{ predictionCount }} }}"#,
                a = at(600)
            ),
        ),
        (
            "SHAP importance and performance, both partial hours read as their hour less the rest",
            format!(
                r#"{{ shapImportance(modelId: "m1", window: {{from: "{a}", to: "{b}"}}, top: 50) {{
                     predictionCount featureCount features {{ feature meanAbsValue meanValue predictionCount }} }}
                   modelPerformance(window: {{from: "{a}", to: "{b}"}}, decisionThreshold: 0.35) {{
                     model {{ modelId }} predictionCount feedback {{ count predictionsWithFeedback meanAccuracyRating }}
                     observed {{ truePositives falsePositives trueNegatives falseNegatives }}
                     calibration {{ outcomes brierScore bins {{ lower count meanPredicted observedRate }} }} }} }}"#,
                a = at(60 + 10),
                b = at(9 * 60 + 50),
            ),
        ),
        (
            "hours less both of their ends, where features and bins exist only in the ends",
            // Twelve hours four apart, two root fields each (the limit is 25).
            (0..12)
                .map(|i| {
                    let h = i * 4;
                    format!(
                        r#"s{h}: shapImportance(modelId: "m1", window: {{from: "{a}", to: "{b}"}}, top: 50) {{
                             predictionCount features {{ feature meanAbsValue meanValue predictionCount }} }}
                           p{h}: modelPerformance(filter: {{modelIds: ["m1", "m2"]}}, window: {{from: "{a}", to: "{b}"}}) {{
                             model {{ modelId }} feedback {{ count predictionsWithFeedback meanAccuracyRating }}
                             calibration {{ outcomes brierScore bins {{ lower count meanPredicted }} }} }}"#,
                        a = at(h * 60 + 4),
                        b = at(h * 60 + 56),
                    )
                })
                .fold("{".to_owned(), |q, field| q + &field)
                + "}",
        ),
        (
            "performance at a threshold between bin edges (scanned)",
            r#"{ modelPerformance(decisionThreshold: 0.355) { model { modelId }
                 observed { truePositives falsePositives trueNegatives falseNegatives } } }"#
                .into(),
        ),
    ]
}

/// SHAP importance of `model` in `[from, to)`, computed from the stored rows.
async fn expected_shap(test_db: &TestDb, model: &str, from: i64, to: i64) -> Value {
    let db = test_db.raw().await;
    let rows = entity::prediction::Entity::find()
        .filter(entity::prediction::Column::TenantId.eq(A))
        .filter(entity::prediction::Column::ModelId.eq(model))
        .filter(
            entity::prediction::Column::PredictionTimestamp.gte(start() + Duration::minutes(from)),
        )
        .filter(entity::prediction::Column::PredictionTimestamp.lt(start() + Duration::minutes(to)))
        .all(&db)
        .await
        .unwrap();
    let mut sums: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
    let mut explained = 0;
    for row in rows {
        let Some(Value::Object(object)) = row.shap_values else {
            continue;
        };
        let map = match object.get("values") {
            Some(Value::Object(values)) => values.clone(),
            _ => object,
        };
        let mut any = false;
        for (feature, value) in map {
            if ["base_value", "_base_value", "expected_value"].contains(&feature.as_str()) {
                continue;
            }
            let Some(v) = value.as_f64() else { continue };
            any = true;
            let s = sums.entry(feature).or_default();
            s.0 += 1;
            s.1 += v.abs();
            s.2 += v;
        }
        explained += u64::from(any);
    }
    let round9 = |v: f64| (v * 1e9).round() / 1e9;
    let mut features: Vec<Value> = sums
        .iter()
        .map(|(feature, (n, abs, sum))| {
            json!({
                "feature": feature,
                "meanAbsValue": round9(abs / *n as f64),
                "meanValue": round9(sum / *n as f64),
                "predictionCount": n,
            })
        })
        .collect();
    features.sort_by(|a, b| {
        b["meanAbsValue"]
            .as_f64()
            .unwrap()
            .total_cmp(&a["meanAbsValue"].as_f64().unwrap())
            .then_with(|| a["feature"].as_str().cmp(&b["feature"].as_str()))
    });
    json!({"shapImportance": {
        "predictionCount": explained,
        "featureCount": sums.len(),
        "features": features,
    }})
}

/// Every query on both gateways, equal; the windowed SHAP importance equal
/// to the rows'. Returns the answers.
async fn check(
    test_db: &TestDb,
    on: &TestServer,
    off: &TestServer,
    key: &str,
    when: &str,
) -> Vec<Value> {
    let mut answers = Vec::new();
    for (name, query) in queries() {
        let rollups = on.data(key, &query, json!({})).await;
        let rows = off.data(key, &query, json!({})).await;
        assert_eq!(rollups, rows, "{when}: {name}: rollups vs rows");
        answers.push(rollups);
    }
    // A reversed window is refused alike.
    let reversed = format!(
        r#"{{ shapImportance(modelId: "m1", window: {{from: "{}", to: "{}"}}) {{ predictionCount }} }}"#,
        at(60),
        at(0)
    );
    for server in [on, off] {
        let (_, body) = server.graphql(key, &reversed).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{when}: {body}"
        );
    }
    let expected = expected_shap(test_db, "m1", 17, 40 * 60 + 23).await;
    assert_eq!(
        answers[0], expected,
        "{when}: SHAP importance vs the stored rows"
    );
    assert!(
        answers[0]["shapImportance"]["featureCount"]
            .as_u64()
            .unwrap()
            >= 5,
        "{when}"
    );
    answers
}

/// Changes behind the gateway's back, as another writer would make them.
async fn change_out_of_band(test_db: &TestDb) {
    let raw = test_db.raw().await;
    let earlier = match test_db.backend {
        DbBackend::Postgres => "prediction_timestamp - interval '90 minutes'",
        _ => "strftime('%Y-%m-%dT%H:%M:%S+00:00', prediction_timestamp, '-90 minutes')",
    };
    let later = match test_db.backend {
        DbBackend::Postgres => "created_at + interval '1 day'",
        _ => "strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, '+1 day')",
    };
    let new_shap = match test_db.backend {
        DbBackend::Postgres => r#"'{"values": {"f1": 0.75, "h9": -0.5}}'::jsonb"#,
        _ => r#"'{"values": {"f1": 0.75, "h9": -0.5}}'"#,
    };
    for statement in [
        // Remediation moves predictions between groups.
        "UPDATE ml_predictions SET remediation_status = 'failed' WHERE tenant_id = 'acme' AND prediction_id LIKE 'p-1%'".to_owned(),
        // Probabilities change bins; predictions move an hour and a half earlier.
        format!("UPDATE ml_predictions SET violation_probability = 1 - violation_probability, risk_level = 'critical', \
                 prediction_timestamp = {earlier} WHERE tenant_id = 'acme' AND prediction_id LIKE 'p-2%'"),
        format!("UPDATE ml_predictions SET shap_values = {new_shap} WHERE tenant_id = 'acme' AND prediction_id LIKE 'p-3%'"),
        // Only risk scores change (bins, and to and from none).
        "UPDATE ml_predictions SET risk_score = CASE WHEN risk_score IS NULL THEN 0.5 WHEN risk_score > 0.9 THEN NULL \
         ELSE 1 - risk_score END WHERE tenant_id = 'acme' AND prediction_id LIKE 'p-6%'".to_owned(),
        // The column has no CHECK: scores outside [0, 1] are written (and not binned).
        "UPDATE ml_predictions SET risk_score = CASE WHEN risk_score > 0.5 THEN 1.5 ELSE -0.25 END \
         WHERE tenant_id = 'acme' AND prediction_id LIKE 'p-7%'".to_owned(),
        "DELETE FROM ml_predictions WHERE tenant_id = 'acme' AND prediction_id LIKE 'p-4%'".to_owned(),
        // Feedback: relabelled and made latest, removed, added.
        format!("UPDATE ml_feedback SET correct_label = TRUE, created_at = {later} \
                 WHERE tenant_id = 'acme' AND feedback_id LIKE 'f-%0-0'"),
        "DELETE FROM ml_feedback WHERE tenant_id = 'acme' AND feedback_id LIKE 'f-%6-1'".to_owned(),
        // Moved to a prediction that had none, hours away.
        "UPDATE ml_feedback SET prediction_id = 'p-77' WHERE tenant_id = 'acme' AND prediction_id = 'p-8'".to_owned(),
        "INSERT INTO ml_feedback (id, feedback_id, prediction_id, tenant_id, feedback_type, user_id, accuracy_rating, created_at) \
         SELECT id, 'x-' || prediction_id, prediction_id, tenant_id, 'incorrect', 'u', 2.5, prediction_timestamp \
           FROM ml_predictions WHERE tenant_id = 'acme' AND prediction_id LIKE 'p-5%'".to_owned(),
    ] {
        let done = raw.execute_unprepared(&statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        assert!(done.rows_affected() > 0, "{statement}");
    }
}

backend_tests! {
    async fn dashboard_analytics_from_rollups_equal_the_rows(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let on = TestServer::start(test_db.config()).await;
        let mut config = test_db.config();
        config.serve.db.analytics_rollups = server::config::Switch::Off;
        let off = TestServer::start(config).await;

        check(&test_db, &on, &off, &key, "after inserts").await;
        change_out_of_band(&test_db).await;
        let changed = check(&test_db, &on, &off, &key, "after out-of-band changes").await;

        if test_db.backend == DbBackend::Postgres {
            // The rollups equal a fresh aggregation of each tenant's rows…
            let db = test_db.connect().await;
            for tenant in [A, B] {
                for d in server::ops::rollups::differences(&db, tenant).await.unwrap() {
                    assert_eq!(d.differing, 0, "{tenant}: {d:?}");
                }
            }
            // …and a rebuild from scratch changes no answer.
            let hours = server::ops::rollups::rebuild(&db, A, |_| {}).await.unwrap();
            assert!(hours > 50, "{hours} hours rebuilt");
            let rebuilt = check(&test_db, &on, &off, &key, "after a rebuild").await;
            assert_eq!(rebuilt, changed);
            // Marking feedback processed changes nothing rolled up: no
            // rollup row is rewritten.
            let versions = "SELECT string_agg(xmin::text || ctid::text, ',' ORDER BY hour_start, model_id, model_version, bin) \
                            FROM mlgate_feedback_hours";
            let version_text = |rows: Vec<sea_orm::QueryResult>| -> String {
                rows[0].try_get::<Option<String>>("", "string_agg").unwrap().unwrap_or_default()
            };
            let raw = test_db.raw().await;
            let before = version_text(raw.query_all_raw(sea_orm::Statement::from_string(DbBackend::Postgres, versions)).await.unwrap());
            let marked = raw
                .execute_unprepared("UPDATE ml_feedback SET processed = true WHERE tenant_id = 'acme'")
                .await
                .unwrap();
            assert!(marked.rows_affected() > 100);
            let after = version_text(raw.query_all_raw(sea_orm::Statement::from_string(DbBackend::Postgres, versions)).await.unwrap());
            assert!(!before.is_empty());
            assert_eq!(before, after, "feedback rollups rewritten by a processed-only update");
            // Tenant B's rollups are its own: none of A's rows in them.
            let raw = test_db.raw().await;
            assert!(common::count(&raw, "SELECT count(*) FROM mlgate_shap_hours WHERE tenant_id = 'globex'").await > 0);
        }
        on.stop().await;
        off.stop().await;
    }
}

/// The race migration 000010 left open: a rebuild of an hour (here, from a
/// prediction moved into it) beside an uncommitted insert into the same,
/// empty hour. Neither sees the other's rows, so the rebuild used to count
/// the insert twice or fail on the rollup's key; now it waits for the
/// insert's transaction and then sees its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_waits_for_an_insert_into_the_same_hour() {
    let moved = (start() + Duration::minutes(5 * 60 + 40)).to_rfc3339();
    beside_an_insert(
        format!(
        "UPDATE ml_predictions SET prediction_timestamp = '{moved}' WHERE prediction_id = 'p-1'"
    ),
        2,
        2,
    )
    .await;
}

/// The same across hours of one UTC day: the day tier (migration 000015)
/// is recomputed from the day's hours, so a writer of any hour of the day
/// waits for another's. Without it, the second insert's day row would be
/// computed without the first's hour, and then written over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_waits_for_an_insert_into_another_hour_of_the_day() {
    beside_an_insert(
        insert_sql("other", start() + Duration::minutes(9 * 60 + 40)),
        1,
        3,
    )
    .await;
}

fn insert_sql(id: &str, at: DateTime<Utc>) -> String {
    format!(
        "INSERT INTO ml_predictions (prediction_id, resource_id, tenant_id, model_id, violation_probability, \
         confidence_score, risk_level, inference_time_ms, model_version, prediction_timestamp) \
         VALUES ('{id}', 'r', 'acme', 'm2', 0.5, 0.5, 'critical', 10, '1.0.0', '{}')",
        at.to_rfc3339()
    )
}

/// `second` (a write in the first UTC day, to the group of `p-1` and of
/// the insert) run beside an uncommitted insert into hour 5 of that day;
/// hour 5 and the day then hold `in_hour` and `in_day` predictions.
async fn beside_an_insert(second_sql: String, in_hour: i64, in_day: i64) {
    use sea_orm::TransactionTrait;
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    let db = test_db.connect().await;
    let scoped = scoped_for(&test_db, &db, A).await;
    insert_all(
        &scoped,
        vec![fixtures::model(A, "m1"), fixtures::model(A, "m2")],
    )
    .await
    .unwrap();
    // p-1 is a prediction of m2, version 1.0.0, critical, without a
    // remediation status: the row inserted beside it falls in the same group.
    insert_all(&scoped, vec![prediction(A, 1)]).await.unwrap();
    let hour = start() + Duration::hours(5);
    let (first, second) = (test_db.raw().await, test_db.raw().await);

    let inserting = first.begin().await.unwrap();
    inserting
        .execute_unprepared(&insert_sql("new", hour + Duration::minutes(20)))
        .await
        .unwrap();
    let writing = tokio::spawn(async move { second.execute_unprepared(&second_sql).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !writing.is_finished(),
        "the second write waits for the lock"
    );
    inserting.commit().await.unwrap();
    writing
        .await
        .unwrap()
        .expect("the second write runs once the insert committed");

    let raw = test_db.raw().await;
    let between = |table: &str, column: &str, from: i64, hours: i64| {
        format!(
            "SELECT CAST(COALESCE(sum(predictions), 0) AS BIGINT) FROM {table} \
             WHERE {column} >= '{}' AND {column} < '{}'",
            (start() + Duration::hours(from)).to_rfc3339(),
            (start() + Duration::hours(from + hours)).to_rfc3339()
        )
    };
    let count = |table, column, from, hours| {
        let sql = between(table, column, from, hours);
        let raw = &raw;
        async move { common::count(raw, &sql).await }
    };
    assert_eq!(
        count("mlgate_prediction_hours", "hour_start", 5, 1).await,
        in_hour
    );
    assert_eq!(
        count("mlgate_prediction_hours", "hour_start", 0, 24).await,
        in_day
    );
    assert_eq!(
        count("mlgate_prediction_days", "day_start", 0, 24).await,
        in_day
    );
    for d in server::ops::rollups::differences(&db, A).await.unwrap() {
        assert_eq!(d.differing, 0, "{d:?}");
    }
}

/// A writer whose session is in a zone with daylight saving keeps the day
/// tier right (a UTC day is 24 hours whatever the session's zone), and a
/// day row with nothing behind it is found by `differences` and removed
/// by a rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_hold_in_any_session_zone_and_a_rebuild_removes_orphans() {
    use sea_orm::TransactionTrait;
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    let db = test_db.connect().await;
    let scoped = scoped_for(&test_db, &db, A).await;
    insert_all(&scoped, vec![fixtures::model(A, "m2")])
        .await
        .unwrap();
    let check = |when: &'static str| {
        let db = &db;
        async move {
            for d in server::ops::rollups::differences(db, A).await.unwrap() {
                assert_eq!(d.differing, 0, "{when}: {d:?}");
            }
        }
    };
    // New York springs forward on 2026-03-08 and falls back on 2026-11-01:
    // a day there is 23 or 25 hours long.
    let raw = test_db.raw().await;
    for (a, b) in [
        ("2026-03-08T10:30:00Z", "2026-03-08T23:30:00Z"),
        ("2026-11-01T23:30:00Z", "2026-11-02T00:30:00Z"),
    ] {
        let txn = raw.begin().await.unwrap();
        txn.execute_unprepared("SET LOCAL TimeZone = 'America/New_York'")
            .await
            .unwrap();
        for (id, at) in [("dst-a", a), ("dst-b", b)] {
            let sql = insert_sql(id, at.parse().unwrap());
            txn.execute_unprepared(&sql).await.unwrap();
        }
        txn.commit().await.unwrap();
        check("after inserts in a New York session").await;
        let txn = raw.begin().await.unwrap();
        txn.execute_unprepared("SET LOCAL TimeZone = 'America/New_York'")
            .await
            .unwrap();
        txn.execute_unprepared("DELETE FROM ml_predictions WHERE prediction_id = 'dst-a'")
            .await
            .unwrap();
        txn.execute_unprepared("DELETE FROM ml_predictions WHERE prediction_id = 'dst-b'")
            .await
            .unwrap();
        txn.commit().await.unwrap();
        check("after deletes in a New York session").await;
    }

    // A day row no hour stands behind (written past the triggers).
    raw.execute_unprepared(
        "INSERT INTO mlgate_prediction_days (tenant_id, model_id, model_version, day_start, risk_level, \
         remediation_status, predictions, explained, probability_sum, probability_min, probability_max, \
         confidence_sum, confidence_min, confidence_max, latency_sum, latency_min, latency_max) \
         VALUES ('acme', 'm2', '1.0.0', '2026-04-01T00:00:00Z', 'low', '', 1, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 1, 1)",
    )
    .await
    .unwrap();
    let found = server::ops::rollups::differences(&db, A).await.unwrap();
    assert!(
        found
            .iter()
            .any(|d| d.rollup == "mlgate_prediction_days" && d.differing == 1),
        "{found:?}"
    );
    server::ops::rollups::rebuild(&db, A, |_| {}).await.unwrap();
    check("after a rebuild").await;

    // The distribution days are kept by differences: a day row written
    // wrong past the triggers, or deleted, while its hours stand, stays
    // wrong through later writes, and a rebuild repairs it.
    let at: DateTime<Utc> = "2026-04-02T10:30:00Z".parse().unwrap();
    for (id, minutes) in [("dist-a", 0), ("dist-b", 5), ("dist-c", 65)] {
        raw.execute_unprepared(&insert_sql(id, at + Duration::minutes(minutes)))
            .await
            .unwrap();
    }
    check("after distribution inserts").await;
    let bins = "SELECT count(*) FROM mlgate_distribution_days WHERE tenant_id = 'acme' AND model_id = 'm2' \
                AND day_start = '2026-04-02T00:00:00Z'";
    let day_bins = common::count(&raw, bins).await;
    assert!(day_bins >= 2, "{day_bins} day bins");
    raw.execute_unprepared(
        "UPDATE mlgate_distribution_days SET predictions = predictions + 7 \
         WHERE tenant_id = 'acme' AND model_id = 'm2' AND day_start = '2026-04-02T00:00:00Z' AND signal = 'probability'",
    )
    .await
    .unwrap();
    raw.execute_unprepared(
        "DELETE FROM mlgate_distribution_days \
         WHERE tenant_id = 'acme' AND model_id = 'm2' AND day_start = '2026-04-02T00:00:00Z' AND signal = 'confidence'",
    )
    .await
    .unwrap();
    raw.execute_unprepared(&insert_sql("dist-d", at + Duration::minutes(10)))
        .await
        .unwrap();
    let found = server::ops::rollups::differences(&db, A).await.unwrap();
    assert!(
        found
            .iter()
            .any(|d| d.rollup == "mlgate_distribution_days" && d.differing > 0),
        "{found:?}"
    );
    server::ops::rollups::rebuild(&db, A, |_| {}).await.unwrap();
    check("after a rebuild of the distribution days").await;
    assert_eq!(
        common::count(&raw, &format!("{bins} AND predictions = 0")).await,
        0,
        "no day row left at zero"
    );
}
