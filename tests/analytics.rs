//! Analytics against a small fixed fixture whose every measure is computed
//! by hand below, on both backends; tenant isolation for every aggregate
//! (tenant B's rows sit inside every window of tenant A and would change
//! each value); and the same answers, byte for byte, from SQLite and
//! PostgreSQL.

mod common;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;
use serde_json::{json, Value};
use server::auth::Role;
use server::store::thresholds::{Band, DriftThresholds};

use common::fixtures::{self, insert_all, scoped_for};
use common::{TestDb, TestServer};

const A: &str = "acme";
const B: &str = "globex";

fn at(s: &str) -> Option<DateTime<Utc>> {
    Some(s.parse().unwrap())
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// (id, model, probability, confidence, latency ms, risk, time, version, resource, remediation, SHAP)
type PredictionRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<Value>,
);

fn tenant_a_predictions() -> Vec<PredictionRow> {
    vec![
        (
            "p1",
            "m-1",
            "0.9",
            "0.8",
            "10",
            "critical",
            "2026-03-07T15:00:00Z",
            "1.0",
            "r-a",
            Some("pending"),
            Some(json!({"a": 0.5, "b": -0.25})),
        ),
        (
            "p2",
            "m-1",
            "0.7",
            "0.9",
            "20",
            "high",
            "2026-03-07T23:30:00Z",
            "1.0",
            "r-a",
            None,
            Some(json!({"values": {"a": -0.3, "c": 0.1}, "base_value": 0.2})),
        ),
        (
            "p3",
            "m-1",
            "0.3",
            "0.6",
            "30",
            "medium",
            "2026-03-08T06:00:00Z",
            "1.0",
            "r-b",
            Some("completed"),
            Some(json!({"a": 0.1, "b": 0.45, "expected_value": 0.3})),
        ),
        (
            "p4",
            "m-1",
            "0.2",
            "0.7",
            "40",
            "low",
            "2026-03-08T12:00:00Z",
            "2.0",
            "r-b",
            None,
            None,
        ),
        (
            "p5",
            "m-1",
            "0.6",
            "0.5",
            "50",
            "high",
            "2026-03-09T03:30:00Z",
            "2.0",
            "r-c",
            Some("pending"),
            Some(json!({"d": "n/a", "b": -0.05})),
        ),
        (
            "p6",
            "m-1",
            "0.1",
            "1.0",
            "100",
            "low",
            "2026-03-10T12:00:00Z",
            "2.0",
            "r-c",
            None,
            Some(json!({"a": 0.0})),
        ),
        (
            "q1",
            "m-2",
            "0.5",
            "0.5",
            "5",
            "medium",
            "2026-03-08T12:00:00Z",
            "1.0",
            "r-a",
            None,
            None,
        ),
    ]
}

fn prediction(tenant: &str, row: &PredictionRow) -> entity::prediction::ActiveModel {
    let (id, model, prob, conf, latency, risk, time, version, resource, remediation, shap) =
        row.clone();
    let mut p = fixtures::prediction(tenant, id, model);
    p.violation_probability = Set(dec(prob));
    p.confidence_score = Set(dec(conf));
    p.inference_time_ms = Set(dec(latency));
    p.risk_level = Set(risk.into());
    p.prediction_timestamp = Set(at(time));
    p.model_version = Set(version.into());
    p.resource_id = Set(resource.into());
    p.remediation_status = Set(remediation.map(Into::into));
    p.shap_values = Set(shap);
    p
}

/// (id, prediction, type, correct label, rating, created)
fn feedback(
    tenant: &str,
    (id, prediction, kind, label, rating, created): (
        &str,
        &str,
        &str,
        Option<bool>,
        Option<&str>,
        &str,
    ),
) -> entity::feedback::ActiveModel {
    let mut f = fixtures::feedback(tenant, id, prediction);
    f.feedback_type = Set(kind.into());
    f.correct_label = Set(label);
    f.accuracy_rating = Set(rating.map(dec));
    f.created_at = Set(at(created));
    f
}

/// (id, type, score, psi, ks, wasserstein, alert level if triggered, measured)
#[allow(clippy::type_complexity)]
fn drift(
    tenant: &str,
    (id, kind, score, psi, ks, w, alert, measured): (
        &str,
        &str,
        &str,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        &str,
    ),
) -> entity::drift_metric::ActiveModel {
    let mut d = fixtures::drift_metric(tenant, id, "m-1");
    d.drift_type = Set(kind.into());
    d.drift_score = Set(dec(score));
    d.psi_score = Set(psi.map(dec));
    d.ks_statistic = Set(ks.map(dec));
    d.wasserstein_distance = Set(w.map(dec));
    d.alert_triggered = Set(Some(alert.is_some()));
    d.alert_level = Set(alert.map(Into::into));
    d.measured_at = Set(at(measured));
    d
}

async fn seed(test_db: &TestDb) {
    let db = test_db.connect().await;
    let a = scoped_for(test_db, &db, A).await;
    insert_all(
        &a,
        vec![fixtures::model(A, "m-1"), fixtures::model(A, "m-2")],
    )
    .await
    .unwrap();
    insert_all(
        &a,
        tenant_a_predictions()
            .iter()
            .map(|r| prediction(A, r))
            .collect(),
    )
    .await
    .unwrap();
    insert_all(
        &a,
        vec![
            feedback(
                A,
                (
                    "f1",
                    "p1",
                    "correct",
                    None,
                    Some("4.00"),
                    "2026-03-11T00:00:00Z",
                ),
            ),
            feedback(
                A,
                (
                    "f2a",
                    "p2",
                    "correct",
                    None,
                    Some("5.00"),
                    "2026-03-11T00:00:00Z",
                ),
            ),
            // The latest feedback of p2 decides its outcome.
            feedback(
                A,
                (
                    "f2b",
                    "p2",
                    "false_positive",
                    None,
                    Some("1.00"),
                    "2026-03-12T00:00:00Z",
                ),
            ),
            feedback(
                A,
                (
                    "f3",
                    "p3",
                    "false_negative",
                    None,
                    Some("2.00"),
                    "2026-03-11T00:00:00Z",
                ),
            ),
            // An explicit label wins over what the type implies.
            feedback(
                A,
                (
                    "f4",
                    "p4",
                    "incorrect",
                    Some(false),
                    None,
                    "2026-03-11T00:00:00Z",
                ),
            ),
            feedback(
                A,
                (
                    "f5",
                    "p5",
                    "incorrect",
                    None,
                    Some("3.00"),
                    "2026-03-11T00:00:00Z",
                ),
            ),
        ],
    )
    .await
    .unwrap();
    insert_all(
        &a,
        vec![
            drift(
                A,
                (
                    "d1",
                    "data",
                    "0.2",
                    Some("0.05"),
                    Some("0.1"),
                    Some("0.3"),
                    None,
                    "2026-03-07T10:00:00Z",
                ),
            ),
            drift(
                A,
                (
                    "d2",
                    "data",
                    "0.4",
                    Some("0.3"),
                    Some("0.15"),
                    None,
                    Some("critical"),
                    "2026-03-08T10:00:00Z",
                ),
            ),
            drift(
                A,
                (
                    "d3",
                    "data",
                    "0.3",
                    Some("0.12"),
                    None,
                    Some("0.1"),
                    Some("warning"),
                    "2026-03-09T10:00:00Z",
                ),
            ),
            drift(
                A,
                (
                    "d4",
                    "concept",
                    "0.5",
                    None,
                    None,
                    None,
                    Some("info"),
                    "2026-03-08T12:00:00Z",
                ),
            ),
        ],
    )
    .await
    .unwrap();

    // Tenant B: the same model id, rows inside every window of A's queries.
    let b = scoped_for(test_db, &db, B).await;
    insert_all(&b, vec![fixtures::model(B, "m-1")])
        .await
        .unwrap();
    insert_all(
        &b,
        vec![prediction(
            B,
            &(
                "b1",
                "m-1",
                "0.99",
                "0.1",
                "999",
                "critical",
                "2026-03-08T12:00:00Z",
                "1.0",
                "r-a",
                Some("failed"),
                Some(json!({"a": 9.0, "z": 1.0})),
            ),
        )],
    )
    .await
    .unwrap();
    insert_all(
        &b,
        vec![feedback(
            B,
            (
                "g1",
                "b1",
                "false_negative",
                Some(true),
                Some("0.50"),
                "2026-03-11T00:00:00Z",
            ),
        )],
    )
    .await
    .unwrap();
    insert_all(
        &b,
        vec![drift(
            B,
            (
                "e1",
                "data",
                "0.9",
                Some("0.9"),
                Some("0.9"),
                Some("0.9"),
                Some("critical"),
                "2026-03-08T11:00:00Z",
            ),
        )],
    )
    .await
    .unwrap();
    db.close().await.ok();
}

const PERFORMANCE: &str = r#"query($window: TimeRange, $threshold: Float) {
  modelPerformance(window: $window, decisionThreshold: $threshold) {
    model { modelId }
    registeredMetrics { accuracy }
    predictionCount avgConfidence avgInferenceTimeMs
    inferenceTimeMs { avg min max p50 p95 p99 }
    riskDistribution { critical high medium low }
    predictions { violationProbability { avg min max } highOrCriticalCount }
    feedback { count predictionsWithFeedback coverage meanAccuracyRating }
    observed { decisionThreshold labelled truePositives falsePositives trueNegatives falseNegatives
               accuracy precision recall f1Score falsePositiveRate falseNegativeRate }
    calibration { outcomes brierScore bins { lower upper count meanPredicted observedRate } }
  }
}"#;

const STATS: &str = r#"query($groupBy: [PredictionGroupBy!], $bucket: BucketInput, $from: DateTime, $to: DateTime, $filter: PredictionFilter) {
  predictionStats(filter: $filter, groupBy: $groupBy, bucket: $bucket, from: $from, to: $to) {
    groups {
      key { bucketStart modelId modelVersion riskLevel resourceId remediationStatus }
      measures { count violationProbability { avg min max } confidenceScore { avg min max }
                 inferenceTimeMs { p50 p95 p99 } highOrCriticalCount }
    }
  }
}"#;

const SHAP: &str = r#"query($top: Int) { shapImportance(modelId: "m-1", top: $top) {
  predictionCount featureCount features { feature meanAbsValue meanValue predictionCount } } }"#;

const DRIFT: &str = r#"query($bucket: BucketInput, $window: TimeRange) {
  driftSummary(modelId: "m-1", window: $window, bucket: $bucket) {
    thresholds { psi { warning critical } custom }
    types { driftType metricCount latestMetricId latestMeasuredAt
      driftScore { latest max avg latestLevel }
      psi { latest max avg latestLevel maxLevel }
      ks { latest max avg } wasserstein { latest max avg }
      alerts { total info warning critical }
      trend { bucketStart metricCount avgDriftScore maxDriftScore maxPsi maxKs maxWasserstein alerts } }
  }
}"#;

const COMPARE: &str = r#"{ compareModels(a: {modelId: "m-1", version: "1.0"}, b: {modelId: "m-1", version: "2.0"}) {
  a { modelVersion predictionCount inferenceTimeMs { p95 } observed { precision } }
  b { modelVersion predictionCount inferenceTimeMs { p95 } observed { precision } }
  difference { predictionCount p95InferenceTimeMs precision brierScore } } }"#;

fn model<'a>(data: &'a Value, id: &str) -> &'a Value {
    data["modelPerformance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"]["modelId"] == id)
        .unwrap_or_else(|| panic!("no {id} in {data}"))
}

fn bins(counts: [(u64, Option<f64>, Option<f64>); 10]) -> Value {
    Value::Array(
        counts
            .iter()
            .enumerate()
            .map(|(i, (count, mean, rate))| {
                json!({"lower": i as f64 / 10.0, "upper": (i + 1) as f64 / 10.0,
                       "count": count, "meanPredicted": mean, "observedRate": rate})
            })
            .collect(),
    )
}

fn groups(data: &Value) -> Vec<Value> {
    data["predictionStats"]["groups"]
        .as_array()
        .unwrap()
        .clone()
}

backend_tests! {
    async fn model_performance_matches_hand_computed_values(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let data = server.data(&key, PERFORMANCE, json!({})).await;
        let ids: Vec<&Value> = data["modelPerformance"].as_array().unwrap().iter().map(|m| &m["model"]["modelId"]).collect();
        assert_eq!(ids, [&json!("m-1"), &json!("m-2")]);

        // m-1: latencies 10 20 30 40 50 100 → p50 at rank 2.5 = 35, p95 at 4.75 =
        // 50 + 0.75·50, p99 at 4.95 = 50 + 0.95·50.
        let m1 = model(&data, "m-1");
        assert_eq!(m1["registeredMetrics"]["accuracy"], json!(0.9));
        assert_eq!(m1["predictionCount"], json!(6));
        assert_eq!(m1["avgConfidence"], json!(0.75));
        assert_eq!(m1["avgInferenceTimeMs"], json!(41.666666667));
        assert_eq!(m1["inferenceTimeMs"], json!({"avg": 41.666666667, "min": 10.0, "max": 100.0, "p50": 35.0, "p95": 87.5, "p99": 97.5}));
        assert_eq!(m1["riskDistribution"], json!({"critical": 1, "high": 2, "medium": 1, "low": 2}));
        assert_eq!(m1["predictions"], json!({"violationProbability": {"avg": 0.466666667, "min": 0.1, "max": 0.9}, "highOrCriticalCount": 3}));
        // 6 feedback rows on 5 of 6 predictions; ratings 4 5 1 2 3 (f4 has none).
        assert_eq!(m1["feedback"], json!({"count": 6, "predictionsWithFeedback": 5, "coverage": 0.833333333, "meanAccuracyRating": 3.0}));
        // Decided at 0.5: p1 TP (correct), p2 FP (latest: false_positive), p3 FN
        // (false_negative), p4 TN (label false beats "incorrect"), p5 FP (incorrect).
        assert_eq!(m1["observed"], json!({
            "decisionThreshold": 0.5, "labelled": 5, "truePositives": 1, "falsePositives": 2,
            "trueNegatives": 1, "falseNegatives": 1, "accuracy": 0.4, "precision": 0.333333333,
            "recall": 0.5, "f1Score": 0.4, "falsePositiveRate": 0.666666667, "falseNegativeRate": 0.5}));
        // Outcomes (p, y): (0.9,1) (0.7,0) (0.3,1) (0.2,0) (0.6,0):
        // Brier = (0.01 + 0.49 + 0.49 + 0.04 + 0.36) / 5.
        assert_eq!(m1["calibration"]["outcomes"], json!(5));
        assert_eq!(m1["calibration"]["brierScore"], json!(0.278));
        assert_eq!(m1["calibration"]["bins"], bins([
            (0, None, None), (0, None, None), (1, Some(0.2), Some(0.0)), (1, Some(0.3), Some(1.0)),
            (0, None, None), (0, None, None), (1, Some(0.6), Some(0.0)), (1, Some(0.7), Some(0.0)),
            (0, None, None), (1, Some(0.9), Some(1.0)),
        ]));

        let m2 = model(&data, "m-2");
        assert_eq!(m2["predictionCount"], json!(1));
        assert_eq!(m2["inferenceTimeMs"], json!({"avg": 5.0, "min": 5.0, "max": 5.0, "p50": 5.0, "p95": 5.0, "p99": 5.0}));
        assert_eq!(m2["feedback"], json!({"count": 0, "predictionsWithFeedback": 0, "coverage": 0.0, "meanAccuracyRating": null}));
        assert_eq!(m2["observed"]["precision"], Value::Null);
        assert_eq!(m2["calibration"]["brierScore"], Value::Null);

        // A window keeps p3 p4 p5: latencies 30 40 50 → p95 at rank 1.9 = 40 + 0.9·10.
        let window = json!({"window": {"from": "2026-03-08T00:00:00Z", "to": "2026-03-10T00:00:00Z"}});
        let data = server.data(&key, PERFORMANCE, window).await;
        let m1 = model(&data, "m-1");
        assert_eq!(m1["inferenceTimeMs"], json!({"avg": 40.0, "min": 30.0, "max": 50.0, "p50": 40.0, "p95": 49.0, "p99": 49.8}));
        assert_eq!(
            (&m1["observed"]["truePositives"], &m1["observed"]["falsePositives"], &m1["observed"]["trueNegatives"], &m1["observed"]["falseNegatives"]),
            (&json!(0), &json!(1), &json!(1), &json!(1))
        );

        // At threshold 0.25 p3 (0.3) is decided "violation" and its false_negative
        // feedback means a violation happened: TP.
        let data = server.data(&key, PERFORMANCE, json!({"threshold": 0.25})).await;
        let observed = &model(&data, "m-1")["observed"];
        assert_eq!(
            (&observed["truePositives"], &observed["falsePositives"], &observed["trueNegatives"], &observed["falseNegatives"]),
            (&json!(2), &json!(2), &json!(1), &json!(0))
        );

        // Model.performance gives the same answer, batched: one model or two
        // cost the same statements.
        let nested = r#"query($n: Int) { models(first: $n, orderBy: {field: MODEL_ID, direction: ASC}) {
            nodes { modelId performance { predictionCount inferenceTimeMs { p95 } observed { precision } } } } }"#;
        let (one, _) = server.statements_for(&key, nested, json!({"n": 1})).await;
        let (two, body) = server.statements_for(&key, nested, json!({"n": 2})).await;
        assert_eq!(one, two, "statements for one and two models");
        assert_eq!(body["data"]["models"]["nodes"][0]["performance"], json!({"predictionCount": 6, "inferenceTimeMs": {"p95": 87.5}, "observed": {"precision": 0.333333333}}));

        // Tenant B sees only its own prediction of its own m-1.
        let key_b = test_db.key(B, Role::Viewer).await;
        let data = server.data(&key_b, PERFORMANCE, json!({})).await;
        assert_eq!(data["modelPerformance"].as_array().unwrap().len(), 1);
        let m1 = model(&data, "m-1");
        assert_eq!(m1["predictionCount"], json!(1));
        assert_eq!(m1["inferenceTimeMs"]["p50"], json!(999.0));
        // Its false_negative feedback carries label true: a violation the
        // model (0.99) did predict.
        assert_eq!(m1["observed"]["truePositives"], json!(1));
        assert_eq!(m1["feedback"]["count"], json!(1));
        server.stop().await;
    }

    async fn analytics_compute_only_the_measures_a_query_reads(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let (_, full) = server.statements_for(&key, PERFORMANCE, json!({})).await;
        let full = &full["data"];

        // Counts and averages only: no feedback joins (and no percentiles).
        let counts = "{ modelPerformance { model { modelId } predictionCount avgConfidence inferenceTimeMs { avg } } }";
        let (fewer, body) = server.statements_for(&key, counts, json!({})).await;
        let reviewed = "{ modelPerformance { model { modelId } predictionCount avgConfidence inferenceTimeMs { avg } feedback { count } observed { precision } } }";
        let (more, _) = server.statements_for(&key, reviewed, json!({})).await;
        // PostgreSQL reads feedback and outcomes from the rollups in one
        // statement; SQLite scans them in two.
        let reading_them = if test_db.backend == sea_orm::DbBackend::Postgres { 1 } else { 2 };
        assert_eq!(fewer + reading_them, more, "feedback and outcomes skipped: {body}");
        let m1 = model(&body["data"], "m-1");
        assert_eq!(m1["predictionCount"], json!(6));
        assert_eq!(m1["inferenceTimeMs"], json!({"avg": 41.666666667}));

        // Parts read through fragments, inline and named, under aliases, are
        // computed and equal to the full answer's.
        let fragments = r#"
            fragment Quantiles on LatencyStats { p50 slow: p99 }
            fragment Reviewed on ModelPerformance { feedback { coverage } }
            { modelPerformance {
                model { modelId }
                ... on ModelPerformance { all: predictions { inferenceTimeMs { ...Quantiles } } }
                ...Reviewed
                quality: observed { precision }
            } }"#;
        let (_, body) = server.statements_for(&key, fragments, json!({})).await;
        for id in ["m-1", "m-2"] {
            let (part, whole) = (model(&body["data"], id), model(full, id));
            assert_eq!(part["all"]["inferenceTimeMs"]["p50"], whole["inferenceTimeMs"]["p50"], "{body}");
            assert_eq!(part["all"]["inferenceTimeMs"]["slow"], whole["inferenceTimeMs"]["p99"], "{body}");
            assert_eq!(part["feedback"]["coverage"], whole["feedback"]["coverage"], "{body}");
            assert_eq!(part["quality"]["precision"], whole["observed"]["precision"], "{body}");
        }
        assert_eq!(model(&body["data"], "m-1")["all"]["inferenceTimeMs"]["p50"], json!(35.0));

        // Model.performance, batched per request: calibration alone.
        let nested = r#"{ models(first: 1, orderBy: {field: MODEL_ID, direction: ASC}) {
            nodes { performance { calibration { brierScore } } } } }"#;
        let (_, body) = server.statements_for(&key, nested, json!({})).await;
        assert_eq!(body["data"]["models"]["nodes"][0]["performance"]["calibration"]["brierScore"], json!(0.278), "{body}");

        // Statistics: percentiles when read (here through a fragment), and
        // the other measures the same whether they are or not.
        let stats = |latency: &str, fragments: &str| format!(
            "{{ predictionStats(groupBy: [MODEL]) {{ groups {{ key {{ modelId }} measures {{ count confidenceScore {{ avg }} inferenceTimeMs {{ {latency} }} }} }} }} }} {fragments}");
        let with = server.data(&key, &stats("max ...P", "fragment P on LatencyStats { p95 }"), json!({})).await;
        let without = server.data(&key, &stats("max", ""), json!({})).await;
        let m1 = &with["predictionStats"]["groups"][0];
        assert_eq!(m1["key"]["modelId"], "m-1");
        assert_eq!(m1["measures"]["inferenceTimeMs"], json!({"max": 100.0, "p95": 87.5}));
        // Counts alone, and risk counts alone, equal the full answer's.
        let full_stats = server.data(&key, STATS, json!({"groupBy": ["MODEL"]})).await;
        let risk_only = server.data(&key, "{ predictionStats(groupBy: [MODEL]) { groups { measures { highOrCriticalCount } } } }", json!({})).await;
        let count_only = server.data(&key, "{ predictionStats(groupBy: [MODEL]) { groups { measures { count } } } }", json!({})).await;
        assert_eq!(groups(&full_stats).len(), 2);
        for ((full, risk), count) in groups(&full_stats).iter().zip(groups(&risk_only)).zip(groups(&count_only)) {
            assert_eq!(risk["measures"]["highOrCriticalCount"], full["measures"]["highOrCriticalCount"]);
            assert_eq!(count["measures"]["count"], full["measures"]["count"]);
        }
        assert_eq!(groups(&risk_only)[0]["measures"]["highOrCriticalCount"], json!(3));
        for (a, b) in groups(&with).iter().zip(groups(&without)) {
            assert_eq!(a["measures"]["count"], b["measures"]["count"]);
            assert_eq!(a["measures"]["confidenceScore"], b["measures"]["confidenceScore"]);
            assert_eq!(a["measures"]["inferenceTimeMs"]["max"], b["measures"]["inferenceTimeMs"]["max"]);
        }
        server.stop().await;
    }

    async fn compare_models_puts_two_versions_side_by_side(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        // Version 1.0: p1 p2 p3 (latencies 10 20 30; TP FP FN); 2.0: p4 p5 p6
        // (40 50 100; TN FP). p95 at rank 1.9: 29 and 95.
        let data = server.data(&key, COMPARE, json!({})).await;
        assert_eq!(data["compareModels"], json!({
            "a": {"modelVersion": "1.0", "predictionCount": 3, "inferenceTimeMs": {"p95": 29.0}, "observed": {"precision": 0.5}},
            "b": {"modelVersion": "2.0", "predictionCount": 3, "inferenceTimeMs": {"p95": 95.0}, "observed": {"precision": 0.0}},
            "difference": {"predictionCount": 0, "p95InferenceTimeMs": 66.0, "precision": -0.5,
                           // Brier a: (0.01 + 0.49 + 0.49) / 3 = 0.33; b: (0.04 + 0.36) / 2 = 0.2.
                           "brierScore": -0.13}
        }));
        // Another tenant's model is not found, like a missing one.
        let key_b = test_db.key(B, Role::Viewer).await;
        let (_, body) = server.graphql(&key_b, r#"{ compareModels(a: {modelId: "m-1"}, b: {modelId: "m-2"}) { a { predictionCount } } }"#).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
        server.stop().await;
    }

    async fn prediction_stats_bucket_on_the_local_calendar_and_fill_gaps(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        // New York days from 7 to 9 March 2026; the 8th has 23 hours (DST), so
        // p5 at 03:30Z on the 9th is still the 8th there.
        let window = json!({
            "filter": {"modelIds": ["m-1"]},
            "bucket": {"unit": "DAY", "timezone": "America/New_York"},
            "from": "2026-03-07T05:00:00Z", "to": "2026-03-10T04:00:00Z"
        });
        let data = server.data(&key, STATS, window.clone()).await;
        let none = json!({"modelId": null, "modelVersion": null, "riskLevel": null, "resourceId": null, "remediationStatus": null});
        let key_at = |start: &str| { let mut k = none.clone(); k["bucketStart"] = json!(start); k };
        assert_eq!(Value::Array(groups(&data)), json!([
            {"key": key_at("2026-03-07T05:00:00+00:00"), "measures": {
                "count": 2, "violationProbability": {"avg": 0.8, "min": 0.7, "max": 0.9},
                "confidenceScore": {"avg": 0.85, "min": 0.8, "max": 0.9},
                "inferenceTimeMs": {"p50": 15.0, "p95": 19.5, "p99": 19.9}, "highOrCriticalCount": 2}},
            {"key": key_at("2026-03-08T05:00:00+00:00"), "measures": {
                "count": 3, "violationProbability": {"avg": 0.366666667, "min": 0.2, "max": 0.6},
                "confidenceScore": {"avg": 0.6, "min": 0.5, "max": 0.7},
                "inferenceTimeMs": {"p50": 40.0, "p95": 49.0, "p99": 49.8}, "highOrCriticalCount": 1}},
            {"key": key_at("2026-03-09T04:00:00+00:00"), "measures": {
                "count": 0, "violationProbability": {"avg": null, "min": null, "max": null},
                "confidenceScore": {"avg": null, "min": null, "max": null},
                "inferenceTimeMs": {"p50": null, "p95": null, "p99": null}, "highOrCriticalCount": 0}},
        ]));

        // Grouped by risk level, every series gets every bucket.
        let mut by_risk = window.clone();
        by_risk["groupBy"] = json!(["RISK_LEVEL"]);
        let data = server.data(&key, STATS, by_risk).await;
        let series: Vec<(String, String, u64)> = groups(&data).iter().map(|g| (
            g["key"]["riskLevel"].as_str().unwrap().to_owned(),
            g["key"]["bucketStart"].as_str().unwrap()[5..10].to_owned(),
            g["measures"]["count"].as_u64().unwrap(),
        )).collect();
        let expected: Vec<(String, String, u64)> = [
            ("CRITICAL", "03-07", 1), ("CRITICAL", "03-08", 0), ("CRITICAL", "03-09", 0),
            ("HIGH", "03-07", 1), ("HIGH", "03-08", 1), ("HIGH", "03-09", 0),
            ("LOW", "03-07", 0), ("LOW", "03-08", 1), ("LOW", "03-09", 0),
            ("MEDIUM", "03-07", 0), ("MEDIUM", "03-08", 1), ("MEDIUM", "03-09", 0),
        ].iter().map(|(r, d, n)| (r.to_string(), d.to_string(), *n)).collect();
        assert_eq!(series, expected);

        // Unbucketed groups over all time, ordered by key; NULL statuses last.
        let data = server.data(&key, STATS, json!({"groupBy": ["MODEL", "MODEL_VERSION"]})).await;
        let keys: Vec<(Value, Value, Value)> = groups(&data).iter().map(|g| (g["key"]["modelId"].clone(), g["key"]["modelVersion"].clone(), g["measures"]["count"].clone())).collect();
        assert_eq!(keys, [
            (json!("m-1"), json!("1.0"), json!(3)),
            (json!("m-1"), json!("2.0"), json!(3)),
            (json!("m-2"), json!("1.0"), json!(1)),
        ]);
        let data = server.data(&key, STATS, json!({"groupBy": ["REMEDIATION_STATUS"], "filter": {"modelIds": ["m-1"]}})).await;
        let keys: Vec<(Value, Value)> = groups(&data).iter().map(|g| (g["key"]["remediationStatus"].clone(), g["measures"]["count"].clone())).collect();
        assert_eq!(keys, [(json!("COMPLETED"), json!(1)), (json!("PENDING"), json!(2)), (Value::Null, json!(3))]);

        // Tenant B: its one prediction, in its bucket.
        let key_b = test_db.key(B, Role::Viewer).await;
        let data = server.data(&key_b, STATS, window).await;
        let counts: Vec<u64> = groups(&data).iter().map(|g| g["measures"]["count"].as_u64().unwrap()).collect();
        assert_eq!(counts, [0, 1, 0]);

        // Bad input is named.
        for (variables, field) in [
            (json!({"bucket": {"unit": "DAY"}}), "bucket"),
            (json!({"bucket": {"unit": "DAY", "timezone": "Mars/Base"}, "from": "2026-03-07T00:00:00Z", "to": "2026-03-08T00:00:00Z"}), "bucket.timezone"),
            (json!({"bucket": {"unit": "HOUR"}, "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}), "bucket"),
        ] {
            let (_, body) = server.graphql_with(&key, STATS, variables).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
        server.stop().await;
    }

    async fn shap_importance_ranks_features_by_mean_absolute_value(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        // a: 0.5 −0.3 0.1 0.0 → |mean| 0.9/4, mean 0.3/4; b: −0.25 0.45 −0.05 →
        // 0.75/3, 0.15/3; c: 0.1. Base values and the text "n/a" are not features.
        let data = server.data(&key, SHAP, json!({"top": 10})).await;
        assert_eq!(data["shapImportance"], json!({
            "predictionCount": 5, "featureCount": 3, "features": [
                {"feature": "b", "meanAbsValue": 0.25, "meanValue": 0.05, "predictionCount": 3},
                {"feature": "a", "meanAbsValue": 0.225, "meanValue": 0.075, "predictionCount": 4},
                {"feature": "c", "meanAbsValue": 0.1, "meanValue": 0.1, "predictionCount": 1},
            ]}));
        let data = server.data(&key, SHAP, json!({"top": 1})).await;
        assert_eq!(data["shapImportance"]["features"].as_array().unwrap().len(), 1);
        let (_, body) = server.graphql_with(&key, SHAP, json!({"top": 0})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

        let key_b = test_db.key(B, Role::Viewer).await;
        let data = server.data(&key_b, SHAP, json!({})).await;
        assert_eq!(data["shapImportance"]["predictionCount"], json!(1));
        let features: Vec<&Value> = data["shapImportance"]["features"].as_array().unwrap().iter().map(|f| &f["feature"]).collect();
        assert_eq!(features, [&json!("a"), &json!("z")]);
        server.stop().await;
    }

    async fn drift_summary_bands_scores_with_the_tenants_thresholds(test_db: TestDb) {
        seed(&test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let variables = json!({
            "bucket": {"unit": "DAY"},
            "window": {"from": "2026-03-07T00:00:00Z", "to": "2026-03-10T00:00:00Z"}
        });
        let data = server.data(&key, DRIFT, variables.clone()).await;
        let summary = &data["driftSummary"];
        assert_eq!(summary["thresholds"], json!({"psi": {"warning": 0.1, "critical": 0.25}, "custom": false}));
        let zero = |day: &str| json!({"bucketStart": format!("2026-03-{day}T00:00:00+00:00"), "metricCount": 0, "avgDriftScore": null, "maxDriftScore": null, "maxPsi": null, "maxKs": null, "maxWasserstein": null, "alerts": 0});
        assert_eq!(summary["types"], json!([
            {"driftType": "CONCEPT", "metricCount": 1, "latestMetricId": "d4", "latestMeasuredAt": "2026-03-08T12:00:00+00:00",
             "driftScore": {"latest": 0.5, "max": 0.5, "avg": 0.5, "latestLevel": null},
             "psi": {"latest": null, "max": null, "avg": null, "latestLevel": null, "maxLevel": null},
             "ks": {"latest": null, "max": null, "avg": null}, "wasserstein": {"latest": null, "max": null, "avg": null},
             "alerts": {"total": 1, "info": 1, "warning": 0, "critical": 0},
             "trend": [zero("07"),
                       {"bucketStart": "2026-03-08T00:00:00+00:00", "metricCount": 1, "avgDriftScore": 0.5, "maxDriftScore": 0.5, "maxPsi": null, "maxKs": null, "maxWasserstein": null, "alerts": 1},
                       zero("09")]},
            {"driftType": "DATA", "metricCount": 3, "latestMetricId": "d3", "latestMeasuredAt": "2026-03-09T10:00:00+00:00",
             "driftScore": {"latest": 0.3, "max": 0.4, "avg": 0.3, "latestLevel": null},
             // PSI 0.12 is moderate (WARNING), 0.3 significant (CRITICAL).
             "psi": {"latest": 0.12, "max": 0.3, "avg": 0.156666667, "latestLevel": "WARNING", "maxLevel": "CRITICAL"},
             "ks": {"latest": null, "max": 0.15, "avg": 0.125}, "wasserstein": {"latest": 0.1, "max": 0.3, "avg": 0.2},
             "alerts": {"total": 2, "info": 0, "warning": 1, "critical": 1},
             "trend": [
                {"bucketStart": "2026-03-07T00:00:00+00:00", "metricCount": 1, "avgDriftScore": 0.2, "maxDriftScore": 0.2, "maxPsi": 0.05, "maxKs": 0.1, "maxWasserstein": 0.3, "alerts": 0},
                {"bucketStart": "2026-03-08T00:00:00+00:00", "metricCount": 1, "avgDriftScore": 0.4, "maxDriftScore": 0.4, "maxPsi": 0.3, "maxKs": 0.15, "maxWasserstein": null, "alerts": 1},
                {"bucketStart": "2026-03-09T00:00:00+00:00", "metricCount": 1, "avgDriftScore": 0.3, "maxDriftScore": 0.3, "maxPsi": 0.12, "maxKs": null, "maxWasserstein": 0.1, "alerts": 1}]},
        ]));

        // Tenant A raises its PSI thresholds; B keeps the defaults.
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, A).await;
        let custom = DriftThresholds { psi: Band { warning: 0.2, critical: 0.4 }, ..Default::default() };
        let txn = scoped.begin().await.unwrap();
        server::write::thresholds::store(&txn, custom).await.unwrap();
        txn.commit().await.unwrap();
        let data = server.data(&key, DRIFT, variables.clone()).await;
        let summary = &data["driftSummary"];
        assert_eq!(summary["thresholds"], json!({"psi": {"warning": 0.2, "critical": 0.4}, "custom": true}));
        assert_eq!(summary["types"][1]["psi"]["latestLevel"], "INFO");
        assert_eq!(summary["types"][1]["psi"]["maxLevel"], "WARNING");
        let data = server.data(&key, r#"{ driftThresholds { levelOf(score: PSI, value: 0.3) } }"#, json!({})).await;
        assert_eq!(data["driftThresholds"]["levelOf"], "WARNING");

        let key_b = test_db.key(B, Role::Viewer).await;
        let data = server.data(&key_b, DRIFT, variables).await;
        let summary = &data["driftSummary"];
        assert_eq!(summary["thresholds"]["custom"], json!(false));
        assert_eq!(summary["types"].as_array().unwrap().len(), 1);
        assert_eq!(summary["types"][0]["metricCount"], json!(1));
        assert_eq!(summary["types"][0]["psi"]["latestLevel"], "CRITICAL");
        db.close().await.ok();
        server.stop().await;
    }
}

/// Every analytics answer of the fixture, in one list.
async fn all_answers(server: &TestServer, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (query, variables) in [
        (PERFORMANCE, json!({})),
        (
            PERFORMANCE,
            json!({"window": {"from": "2026-03-08T00:00:00Z"}, "threshold": 0.65}),
        ),
        (
            STATS,
            json!({"groupBy": ["MODEL", "MODEL_VERSION", "RISK_LEVEL", "RESOURCE", "REMEDIATION_STATUS"]}),
        ),
        (
            STATS,
            json!({"groupBy": ["RESOURCE"], "bucket": {"unit": "HOUR", "timezone": "Asia/Kolkata"},
                       "from": "2026-03-07T00:00:00Z", "to": "2026-03-11T00:00:00Z"}),
        ),
        (
            STATS,
            json!({"bucket": {"unit": "WEEK", "timezone": "Europe/Berlin"},
                       "from": "2026-02-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}),
        ),
        (SHAP, json!({"top": 500})),
        (
            DRIFT,
            json!({"bucket": {"unit": "HOUR", "timezone": "America/New_York"},
                       "window": {"from": "2026-03-07T00:00:00Z", "to": "2026-03-10T00:00:00Z"}}),
        ),
        (COMPARE, json!({})),
    ] {
        out.push(server.data(key, query, variables).await);
    }
    out
}

/// The same fixture answers identically on SQLite and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_give_identical_answers() {
    let Some(postgres) = TestDb::postgres().await else {
        return;
    };
    let sqlite = TestDb::sqlite().await;
    let mut answers = Vec::new();
    for test_db in [&sqlite, &postgres] {
        seed(test_db).await;
        let key = test_db.key(A, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        answers.push(all_answers(&server, &key).await);
        server.stop().await;
    }
    assert_eq!(answers[0].len(), 8);
    for (i, (on_sqlite, on_postgres)) in answers[0].iter().zip(&answers[1]).enumerate() {
        assert_eq!(
            on_sqlite, on_postgres,
            "answer {i} differs between backends"
        );
    }
}
