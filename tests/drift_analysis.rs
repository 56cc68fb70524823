//! `driftAnalysis` against the conformance fixture (expected statistics
//! from scipy and Evidently, `tests/fixtures/drift/conformance.py`), on
//! both backends: exact answers match within 1e-6; answers from the
//! PostgreSQL rollups' bins hold the fixture's value within their stated
//! error bound (and PSI, JS and Hellinger, whose bins nest in the rollup's,
//! within 1e-6). Also attribution drift, champion/challenger by version,
//! input checks and tenant isolation.

mod common;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert_all, scoped_for};
use common::{TestDb, TestServer};

const A: &str = "acme";
const B: &str = "globex";
const FIXTURE: &str = include_str!("fixtures/drift/conformance.json");

const REFERENCE_START: &str = "2026-01-01T00:30:00Z";
const CURRENT_START: &str = "2026-01-10T00:30:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap()
}

fn case(name: &str) -> Value {
    fixture()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .clone()
}

fn decimal(v: &Value, places: u32) -> Decimal {
    let mut d = Decimal::from_f64_retain(v.as_f64().unwrap()).unwrap();
    d = d.round_dp(places);
    d
}

/// The sample's predictions, spread evenly over `span` from `start` (the
/// first and last hour are partial hours of the windows below), with the
/// fixture's SHAP value as feature `x` beside `others`.
fn predictions(
    tenant: &str,
    model: &str,
    version: &str,
    prefix: &str,
    sample: &Value,
    start: DateTime<Utc>,
    span: Duration,
    others: Value,
) -> Vec<entity::prediction::ActiveModel> {
    let n = sample["violationProbability"].as_array().unwrap().len();
    (0..n)
        .map(|i| {
            let mut p = fixtures::prediction(tenant, &format!("{prefix}-{i}"), model);
            p.violation_probability = Set(decimal(&sample["violationProbability"][i], 4));
            p.confidence_score = Set(decimal(&sample["confidenceScore"][i], 4));
            p.risk_score = Set(Some(decimal(&sample["riskScore"][i], 4)));
            p.inference_time_ms = Set(decimal(&sample["inferenceTimeMs"][i], 2));
            let mut shap = others.clone();
            shap["x"] = sample["shap"][i].clone();
            p.shap_values = Set(Some(shap));
            p.model_version = Set(version.into());
            let offset = span.num_milliseconds() * i as i64 / n as i64;
            p.prediction_timestamp = Set(Some(start + Duration::milliseconds(offset)));
            p
        })
        .collect()
}

async fn seed(test_db: &TestDb) {
    fixtures::seed_models(test_db, A, &["m-large", "m-versions"]).await;
    fixtures::seed_models(test_db, B, &["m-large"]).await;
    let db = test_db.connect().await;
    let a = scoped_for(test_db, &db, A).await;
    let large = case("large, shifted");
    // Attributions whose ranking turns over: y leads in the reference, z
    // in the current sample.
    let mut rows = predictions(
        A,
        "m-large",
        "1.0.0",
        "ref",
        &large["reference"],
        at(REFERENCE_START),
        Duration::days(7),
        json!({"y": 0.4, "z": 0.01}),
    );
    rows.extend(predictions(
        A,
        "m-large",
        "1.0.0",
        "cur",
        &large["current"],
        at(CURRENT_START),
        Duration::days(1),
        json!({"y": 0.01, "z": 0.5}),
    ));
    for chunk in rows.chunks(2000) {
        insert_all(&a, chunk.to_vec()).await.unwrap();
    }
    // Champion and challenger in one window.
    let small = case("small, shifted");
    let mut versions = predictions(
        A,
        "m-versions",
        "1.0.0",
        "champion",
        &small["reference"],
        at(CURRENT_START),
        Duration::days(1),
        json!({}),
    );
    versions.extend(predictions(
        A,
        "m-versions",
        "2.0.0",
        "challenger",
        &small["current"],
        at(CURRENT_START),
        Duration::days(1),
        json!({}),
    ));
    insert_all(&a, versions).await.unwrap();
    // Tenant B: the same model id, other predictions, inside A's windows.
    let b = scoped_for(test_db, &db, B).await;
    let theirs = predictions(
        B,
        "m-large",
        "1.0.0",
        "b",
        &small["current"],
        at(REFERENCE_START),
        Duration::days(10),
        json!({"w": 9.0}),
    );
    insert_all(&b, theirs).await.unwrap();
    db.close().await.ok();
}

const ANALYSIS: &str = r#"query($model: String!, $reference: DriftSampleInput!, $current: DriftSampleInput!, $signals: [DriftSignal!]!, $features: [String!]!) {
  driftAnalysis(modelId: $model, reference: $reference, current: $current, signals: $signals, shapFeatures: $features) {
    modelId
    signals {
      signal feature referenceCount currentCount exact binning
      bins { lower upper referenceCount currentCount referenceShare currentShare }
      statistics { method value errorBound pValue level thresholds { warning critical } }
    }
    attribution {
      referenceCount currentCount k ndcg threshold drifted
      features { feature referenceMeanAbs currentMeanAbs referenceRank currentRank }
    }
  }
}"#;

const ALL_SIGNALS: [&str; 5] = [
    "VIOLATION_PROBABILITY",
    "CONFIDENCE_SCORE",
    "RISK_SCORE",
    "INFERENCE_TIME",
    "SHAP",
];

fn fixture_key(signal: &str) -> &'static str {
    match signal {
        "VIOLATION_PROBABILITY" => "violationProbability",
        "CONFIDENCE_SCORE" => "confidenceScore",
        "RISK_SCORE" => "riskScore",
        "INFERENCE_TIME" => "inferenceTimeMs",
        _ => "shap",
    }
}

fn method_key(method: &str) -> &'static str {
    match method {
        "PSI" => "psi",
        "KS" => "ks",
        "WASSERSTEIN" => "wasserstein",
        "JENSEN_SHANNON" => "jensenShannon",
        _ => "hellinger",
    }
}

/// Every statistic of `answer` against the fixture's `expected`; returns
/// which signals were exact.
fn check_against_fixture(answer: &Value, expected: &Value, what: &str) -> Vec<(String, bool)> {
    let mut exactness = Vec::new();
    for signal in answer["signals"].as_array().unwrap() {
        let name = signal["signal"].as_str().unwrap();
        let key = fixture_key(name);
        let expected = &expected[key];
        let exact = signal["exact"].as_bool().unwrap();
        exactness.push((name.to_owned(), exact));
        let unit = !matches!(key, "inferenceTimeMs" | "shap");
        let fixture_bins: Vec<(u64, u64)> = expected["bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b[1].as_u64().unwrap(), b[2].as_u64().unwrap()))
            .collect();
        let bins: Vec<(u64, u64)> = signal["bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["referenceCount"].as_u64().unwrap(),
                    b["currentCount"].as_u64().unwrap(),
                )
            })
            .collect();
        // Quantile bins from rollup buckets fall on bucket ends.
        if exact || unit {
            assert_eq!(bins, fixture_bins, "{what} {name}: bins");
        }
        let statistics = signal["statistics"].as_array().unwrap();
        assert_eq!(statistics.len(), 5, "{what} {name}: {signal}");
        for s in statistics {
            let method = s["method"].as_str().unwrap();
            let value = s["value"].as_f64().unwrap();
            let bound = s["errorBound"].as_f64().unwrap();
            let reference = expected[method_key(method)].as_f64().unwrap();
            let binned = matches!(method, "PSI" | "JENSEN_SHANNON" | "HELLINGER");
            if exact || (unit && binned) {
                assert!(
                    (value - reference).abs() <= 1e-6,
                    "{what} {name} {method}: mlgate {value}, reference {reference}"
                );
                if exact {
                    assert_eq!(bound, 0.0, "{what} {name} {method}");
                }
            } else if !binned {
                assert!(
                    (value - reference).abs() <= bound + 1e-6,
                    "{what} {name} {method}: mlgate {value} ± {bound}, reference {reference}"
                );
            }
            if method == "KS" {
                let p = s["pValue"].as_f64().unwrap();
                if exact {
                    let expected_p = expected["ksPValue"].as_f64().unwrap();
                    assert!(
                        (p - expected_p).abs() <= 1e-6,
                        "{what} {name} p-value: mlgate {p}, scipy {expected_p}"
                    );
                }
            } else {
                assert!(s["pValue"].is_null());
            }
            // Every method has the tenant's band, and `level` is where the value falls in it.
            let warning = s["thresholds"]["warning"].as_f64().unwrap();
            let critical = s["thresholds"]["critical"].as_f64().unwrap();
            let level = if value > critical {
                "CRITICAL"
            } else if value >= warning {
                "WARNING"
            } else {
                "INFO"
            };
            assert_eq!(s["level"], level, "{what} {name} {method}");
        }
    }
    exactness
}

fn windows() -> Value {
    // Each window starts and ends inside an hour that holds predictions.
    let reference_end = at(REFERENCE_START) + Duration::days(7);
    let current_end = at(CURRENT_START) + Duration::days(1);
    json!({
        "reference": {"from": REFERENCE_START, "to": reference_end},
        "current": {"from": CURRENT_START, "to": current_end},
    })
}

async fn conformance(test_db: TestDb, postgres: bool) {
    seed(&test_db).await;
    let server = TestServer::start(test_db.config()).await;
    let key = test_db.key(A, Role::Viewer).await;
    let w = windows();
    let variables = json!({
        "model": "m-large",
        "reference": w["reference"],
        "current": w["current"],
        "signals": ALL_SIGNALS,
        "features": ["x"],
    });
    let data = server.data(&key, ANALYSIS, variables.clone()).await;
    let answer = &data["driftAnalysis"];
    let large = case("large, shifted");
    let exactness = check_against_fixture(answer, &large["expected"], "large, shifted");
    for (signal, exact) in exactness {
        // PostgreSQL reads probability, confidence, risk score and latency
        // from the rollups; SHAP (and everything on SQLite) from the rows.
        let rolled = postgres && signal != "SHAP";
        assert_eq!(exact, !rolled, "{signal}");
    }
    let counts = &answer["signals"][0];
    assert_eq!(
        counts["referenceCount"], 6000,
        "tenant B's rows are not counted"
    );
    assert_eq!(counts["currentCount"], 2000);
    assert_eq!(answer["signals"][4]["feature"], "x");

    // Attribution: y led, z leads now; x in between.
    let attribution = &answer["attribution"];
    assert_eq!(attribution["referenceCount"], 6000);
    assert_eq!(attribution["currentCount"], 2000);
    let features = attribution["features"].as_array().unwrap();
    let names: Vec<&str> = features
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["z", "x", "y"], "B's feature w is not seen");
    assert_eq!(features[0]["currentRank"], 1);
    assert_eq!(features[0]["referenceRank"], 3);
    assert!((features[2]["referenceMeanAbs"].as_f64().unwrap() - 0.4).abs() < 1e-9);
    // nDCG@10 recomputed from the answer's own means: current order z, x,
    // y with the reference's means as relevance.
    let rel = |f: &Value| f["referenceMeanAbs"].as_f64().unwrap();
    let d = |i: usize| ((i + 2) as f64).log2();
    let dcg = rel(&features[0]) / d(0) + rel(&features[1]) / d(1) + rel(&features[2]) / d(2);
    let mut ideal: Vec<f64> = features.iter().map(rel).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal.iter().enumerate().map(|(i, v)| v / d(i)).sum();
    let ndcg = attribution["ndcg"].as_f64().unwrap();
    assert!((ndcg - dcg / idcg).abs() < 1e-6, "{ndcg} vs {}", dcg / idcg);
    assert_eq!(attribution["drifted"], true);

    // Every method starts with the default band; JS and Hellinger get the
    // tenant's own once its admin sets them (B keeps the defaults).
    let band_of = |answer: &Value, method: &str| -> (Value, Value) {
        let s = answer["signals"][0]["statistics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["method"] == method)
            .unwrap()
            .clone();
        (s["thresholds"].clone(), s["level"].clone())
    };
    for method in ["KS", "WASSERSTEIN", "JENSEN_SHANNON", "HELLINGER"] {
        assert_eq!(
            band_of(answer, method).0,
            json!({"warning": 0.1, "critical": 0.2})
        );
    }
    let admin = test_db.key(A, Role::Admin).await;
    let set = r#"mutation($input: DriftThresholdsInput!) {
      setDriftThresholds(input: $input) { psi { warning critical } jensenShannon { warning critical } hellinger { warning critical } }
    }"#;
    let (_, body) = server
        .graphql_with(
            &admin,
            set,
            json!({"input": {"hellinger": {"warning": 0.5, "critical": 0.4}}}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let data = server
        .data(
            &admin,
            set,
            json!({"input": {"jensenShannon": {"warning": 0.0, "critical": 0.0}, "hellinger": {"warning": 2.0, "critical": 3.0}}}),
        )
        .await;
    assert_eq!(
        data["setDriftThresholds"],
        json!({"psi": {"warning": 0.1, "critical": 0.25}, "jensenShannon": {"warning": 0.0, "critical": 0.0}, "hellinger": {"warning": 2.0, "critical": 3.0}})
    );
    let data = server.data(&key, ANALYSIS, variables.clone()).await;
    let again = &data["driftAnalysis"];
    assert_eq!(
        band_of(again, "JENSEN_SHANNON"),
        (json!({"warning": 0.0, "critical": 0.0}), json!("CRITICAL"))
    );
    assert_eq!(
        band_of(again, "HELLINGER"),
        (json!({"warning": 2.0, "critical": 3.0}), json!("INFO"))
    );

    // Champion against challenger: versions in one window.
    let versions = json!({
        "model": "m-versions",
        "reference": {"from": CURRENT_START, "to": at(CURRENT_START) + Duration::days(1), "modelVersion": "1.0.0"},
        "current": {"from": CURRENT_START, "to": at(CURRENT_START) + Duration::days(1), "modelVersion": "2.0.0"},
        "signals": ALL_SIGNALS,
        "features": ["x"],
    });
    let data = server.data(&key, ANALYSIS, versions).await;
    let small = case("small, shifted");
    check_against_fixture(&data["driftAnalysis"], &small["expected"], "small, shifted");

    // Tenant B sees its own rows only: A's model id with B's predictions.
    let key_b = test_db.key(B, Role::Viewer).await;
    let variables = json!({
        "model": "m-large",
        "reference": {"from": REFERENCE_START, "to": at(REFERENCE_START) + Duration::days(10)},
        "current": {"from": REFERENCE_START, "to": at(REFERENCE_START) + Duration::days(10)},
        "signals": ["VIOLATION_PROBABILITY"],
        "features": [],
    });
    let data = server.data(&key_b, ANALYSIS, variables).await;
    let theirs = &data["driftAnalysis"];
    assert_eq!(theirs["signals"][0]["referenceCount"], 50);
    assert_eq!(
        band_of(theirs, "JENSEN_SHANNON").0,
        json!({"warning": 0.1, "critical": 0.2})
    );
    let psi = &theirs["signals"][0]["statistics"][0];
    assert_eq!(psi["method"], "PSI");
    assert_eq!(psi["value"], 0.0, "a sample against itself");
    let features: Vec<&str> = theirs["attribution"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert!(
        features.contains(&"w") && !features.contains(&"y"),
        "{features:?}"
    );

    // Bad input is refused before anything is read.
    for (variables, needle) in [
        (
            json!({"model": "m-large", "reference": {}, "current": {}, "signals": ["SHAP"], "features": []}),
            "shapFeatures",
        ),
        (
            json!({"model": "m-large", "reference": {"from": CURRENT_START, "to": REFERENCE_START}, "current": {}, "signals": ["RISK_SCORE"], "features": []}),
            "before",
        ),
    ] {
        let (status, body) = server.graphql_with(&key, ANALYSIS, variables).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn sqlite_answers_match_the_reference_implementations() {
    conformance(TestDb::sqlite().await, false).await;
}

#[tokio::test]
async fn postgres_answers_match_within_their_bounds() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    conformance(test_db, true).await;
}
