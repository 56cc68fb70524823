//! Quality monitors: precision, F1 and calibration error observed through
//! feedback, evaluated by the gateway on its schedule. A precision drop
//! below fixed thresholds writes a `CONCEPT` metric with the measured and
//! the reference value, notifies once and queues one `FEEDBACK_THRESHOLD`
//! training job; sigma thresholds come from the reference hours' own F1; a
//! window with too few outcomes is not measured. Both backends (PostgreSQL
//! reads the outcomes from the rollups plus the partial hours' rows).

mod common;

use chrono::Utc;
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert_all, scoped_for};
use common::{TestDb, TestServer};

const A: &str = "acme";
const B: &str = "globex";

/// True positives of the 100 positive decisions in each reference hour
/// (oldest first), and in the current hour.
const REFERENCE_TP: [u32; 6] = [88, 92, 90, 89, 91, 90];
const CURRENT_TP: u32 = 60;

/// Each hour block: 100 predictions at probability 0.8 (decided
/// "violation"), `tp` of them confirmed by feedback; 100 at 0.2, 10 of
/// which violated after all. Blocks sit inside [start + 10 min, start +
/// 50 min] of their hour, so windows that move by seconds see the same rows.
async fn seed(test_db: &TestDb) {
    fixtures::seed_models(test_db, A, &["m-q"]).await;
    fixtures::seed_models(test_db, B, &["m-q"]).await;
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, A).await;
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    let mut predictions = Vec::new();
    let mut feedback = Vec::new();
    let blocks = REFERENCE_TP
        .iter()
        .enumerate()
        .map(|(k, tp)| (now - hour * (7 - k as i32), *tp))
        .chain([(now - hour, CURRENT_TP)]);
    for (start, tp) in blocks {
        for i in 0..200u32 {
            let id = format!("p-{}-{i}", start.timestamp());
            let mut p = fixtures::prediction(A, &id, "m-q");
            let positive = i < 100;
            let probability = if positive { 0.8 } else { 0.2 };
            p.violation_probability =
                Set(Decimal::from_f64_retain(probability).unwrap().round_dp(4));
            let at =
                start + chrono::Duration::minutes(10) + chrono::Duration::seconds(i as i64 * 12);
            p.prediction_timestamp = Set(Some(at));
            predictions.push(p);
            let violated = if positive { i < tp } else { i < 110 };
            let mut f = fixtures::feedback(A, &format!("f-{id}"), &id);
            f.correct_label = Set(Some(violated));
            feedback.push(f);
        }
    }
    for chunk in predictions.chunks(1000) {
        insert_all(&scoped, chunk.to_vec()).await.unwrap();
    }
    for chunk in feedback.chunks(1000) {
        insert_all(&scoped, chunk.to_vec()).await.unwrap();
    }
    db.close().await.ok();
}

const CREATE: &str = r#"mutation($input: CreateMonitorInput!) {
  createMonitor(input: $input) { monitorId signal method quality { measure decisionThreshold minimumOutcomes } }
}"#;

const STATE: &str =
    "{ monitors { monitorId state { evaluations firing lastValue lastLevel lastTrainingAt } } }";

const METRICS: &str = r#"{ driftMetrics(filter: {modelIds: ["m-q"]}, first: 100) {
  nodes { metricId driftType driftScore psiScore alertTriggered alertLevel baselineComparison }
} }"#;

const JOBS: &str =
    "{ trainingJobs(first: 50) { nodes { jobId triggerReason status datasetInfo } } }";

fn quality_input(id: &str, measure: &str, thresholds: Value, minimum: i32) -> Value {
    json!({
        "monitorId": id,
        "modelId": "m-q",
        "quality": {"measure": measure, "decisionThreshold": 0.5, "minimumOutcomes": minimum},
        "reference": {"rollingSeconds": 6 * 3600},
        "currentSeconds": 3600,
        "intervalSeconds": 1,
        "thresholds": thresholds,
        "noise": {"breachesToFire": 1, "keepFiring": 0, "cooldownSeconds": 3600},
        "retraining": {"queue": true, "cooldownSeconds": 3600},
    })
}

fn f1(tp: u32) -> f64 {
    // 100 positive decisions (tp right), 10 missed violations.
    let tp = f64::from(tp);
    2.0 * tp / (2.0 * tp + (100.0 - tp) + 10.0)
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-6)
}

backend_tests! {
    async fn quality_monitors_watch_feedback_and_queue_feedback_threshold_jobs(test_db: TestDb) {
        seed(&test_db).await;
        let mut config = test_db.config();
        config.serve.monitor_poll_ms = 200;
        let server = TestServer::start(config).await;
        let admin = test_db.key(A, Role::Admin).await;
        let viewer = test_db.key(A, Role::Viewer).await;

        // Bad definitions are refused before anything is stored.
        let mut both = quality_input("bad", "PRECISION", json!({"kind": "FIXED", "warning": 0.8, "critical": 0.7}), 30);
        both["signal"] = json!("VIOLATION_PROBABILITY");
        both["method"] = json!("PSI");
        let mut neither = quality_input("bad", "PRECISION", json!({"kind": "FIXED", "warning": 0.8, "critical": 0.7}), 30);
        neither.as_object_mut().unwrap().remove("quality");
        let upward = quality_input("bad", "PRECISION", json!({"kind": "FIXED", "warning": 0.7, "critical": 0.8}), 30);
        let mut threshold = quality_input("bad", "RECALL", json!({"kind": "FIXED", "warning": 0.8, "critical": 0.7}), 30);
        threshold["quality"]["decisionThreshold"] = json!(1.5);
        let none = quality_input("bad", "F1", json!({"kind": "FIXED", "warning": 0.8, "critical": 0.7}), 0);
        for (input, needle) in [
            (both, "either"),
            (neither, "either"),
            (upward, "lower is worse"),
            (threshold, "decisionThreshold"),
            (none, "minimumOutcomes"),
        ] {
            let (_, body) = server.graphql_with(&admin, CREATE, json!({"input": input})).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
            assert!(body["errors"][0]["message"].as_str().unwrap().contains(needle), "{needle}: {body}");
        }
        assert_eq!(server.data(&admin, STATE, json!({})).await["monitors"], json!([]));

        // Precision 0.6 now against fixed thresholds 0.8 / 0.7 (lower is worse).
        let created = server
            .data(&admin, CREATE, json!({"input": quality_input("precision", "PRECISION", json!({"kind": "FIXED", "warning": 0.8, "critical": 0.7}), 30)}))
            .await;
        assert_eq!(
            created["createMonitor"],
            json!({"monitorId": "precision", "signal": null, "method": null,
                   "quality": {"measure": "PRECISION", "decisionThreshold": 0.5, "minimumOutcomes": 30}})
        );
        // F1 against mean − k·σ of the six reference hours' own F1.
        server
            .data(&admin, CREATE, json!({"input": quality_input("f1", "F1", json!({"kind": "SIGMA", "warning": 2, "critical": 3, "chunks": 6}), 30)}))
            .await;
        // Calibration error needs 500 outcomes a window; the current hour has 200.
        server
            .data(&admin, CREATE, json!({"input": quality_input("ece", "CALIBRATION_ERROR", json!({"kind": "FIXED", "warning": 0.05, "critical": 0.1}), 500)}))
            .await;

        for id in ["precision", "f1", "ece"] {
            let ask = async |query: &str| server.data(&admin, query, json!({})).await;
            common::monitor_after(ask, STATE, id, 2).await;
        }
        for id in ["precision", "f1", "ece"] {
            let off = format!(r#"mutation {{ updateMonitor(input: {{monitorId: "{id}", enabled: false}}) {{ enabled }} }}"#);
            server.data(&admin, &off, json!({})).await;
        }
        let state = server.data(&admin, STATE, json!({})).await;
        let monitor = |id: &str| state["monitors"].as_array().unwrap().iter().find(|m| m["monitorId"] == id).unwrap().clone();
        let metrics = server.data(&viewer, METRICS, json!({})).await;
        let nodes = metrics["driftMetrics"]["nodes"].as_array().unwrap().clone();
        let of = |id: &str| -> Vec<Value> {
            nodes.iter().filter(|m| m["baselineComparison"]["monitorId"] == id).cloned().collect()
        };

        let precision = of("precision");
        let evaluated = monitor("precision")["state"]["evaluations"].as_i64().unwrap();
        assert_eq!(precision.len() as i64, evaluated, "one metric per evaluation");
        let reference = f64::from(REFERENCE_TP.iter().sum::<u32>()) / 600.0;
        for m in &precision {
            let b = &m["baselineComparison"];
            assert_eq!(m["driftType"], "CONCEPT");
            assert!(close(&m["driftScore"], 0.6) && close(&b["value"], 0.6), "{m}");
            assert!(m["psiScore"].is_null());
            assert_eq!(m["alertLevel"], "CRITICAL");
            assert_eq!(b["quality"], "precision");
            assert!(close(&b["referenceValue"], reference), "{b}");
            assert_eq!(b["currentOutcomes"], 200);
            assert_eq!(b["referenceOutcomes"], 1200);
            assert!(close(&b["warning"], 0.8) && close(&b["critical"], 0.7), "{b}");
        }
        assert_eq!(precision.iter().filter(|m| m["alertTriggered"] == true).count(), 1, "notified once");
        assert_eq!(monitor("precision")["state"]["lastLevel"], "CRITICAL");

        let f1s: Vec<f64> = REFERENCE_TP.iter().map(|tp| f1(*tp)).collect();
        let mean = f1s.iter().sum::<f64>() / 6.0;
        let sd = (f1s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0).sqrt();
        let f1_metrics = of("f1");
        assert!(!f1_metrics.is_empty());
        for m in &f1_metrics {
            let b = &m["baselineComparison"];
            assert!(close(&b["value"], f1(CURRENT_TP)), "{b}");
            assert!(close(&b["warning"], mean - 2.0 * sd) && close(&b["critical"], mean - 3.0 * sd), "{b}");
            assert_eq!(m["alertLevel"], "CRITICAL");
        }

        // Not enough outcomes: evaluated, not measured, nothing written.
        let ece = monitor("ece");
        assert!(ece["state"]["evaluations"].as_i64().unwrap() >= 2);
        assert!(ece["state"]["lastValue"].is_null() && ece["state"]["lastLevel"].is_null(), "{ece}");
        assert!(of("ece").is_empty());

        // One job per notifying monitor, for the feedback threshold.
        let jobs = server.data(&viewer, JOBS, json!({})).await;
        let jobs = jobs["trainingJobs"]["nodes"].as_array().unwrap();
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        for job in jobs {
            assert_eq!(job["triggerReason"], "FEEDBACK_THRESHOLD");
            assert_eq!(job["status"], "QUEUED");
            assert!(job["jobId"].as_str().unwrap().starts_with("quality-"));
        }

        // The other tenant sees none of it.
        let admin_b = test_db.key(B, Role::Admin).await;
        assert_eq!(server.data(&admin_b, STATE, json!({})).await["monitors"], json!([]));
        assert_eq!(server.data(&admin_b, METRICS, json!({})).await["driftMetrics"]["nodes"], json!([]));
        assert_eq!(server.data(&admin_b, JOBS, json!({})).await["trainingJobs"]["nodes"], json!([]));

        // modelPerformance reports the same calibration error a monitor would.
        let from = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        let q = r#"query($from: DateTime!) { modelPerformance(window: {from: $from}) { model { modelId } calibration { expectedCalibrationError outcomes } } }"#;
        let data = server.data(&viewer, q, json!({"from": from})).await;
        let mine = data["modelPerformance"].as_array().unwrap().iter().find(|m| m["model"]["modelId"] == "m-q").unwrap().clone();
        assert_eq!(mine["calibration"]["outcomes"], 200);
        // Half at 0.8 with 60 % violating, half at 0.2 with 10 %.
        assert!(close(&mine["calibration"]["expectedCalibrationError"], 0.5 * 0.2 + 0.5 * 0.1), "{mine}");
        server.stop().await;
    }
}
