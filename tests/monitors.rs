//! Drift monitors evaluated by the gateways: a monitor over shifted data
//! writes one drift metric per slot, with the PSI the reference
//! implementations give (the conformance fixture), notifies once (alert
//! event and one queued training job) while its signal keeps breaching, and
//! stays its tenant's own; on PostgreSQL, two gateway processes on one
//! database evaluate every slot exactly once.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert_all, scoped_for};
use common::Gateway;
use common::{TestDb, TestServer};

const A: &str = "acme";
const B: &str = "globex";
const FIXTURE: &str = include_str!("fixtures/drift/conformance.json");

fn case() -> Value {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "large, shifted")
        .unwrap()
        .clone()
}

/// The fixture's shifted case for `m-1`: its reference spread over the 6
/// hours before the last hour, its current sample over the last hour (as
/// seen from now: each evaluation slot, a second or more ahead, sees the
/// same rows).
async fn seed(test_db: &TestDb) {
    fixtures::seed_models(test_db, A, &["m-1"]).await;
    fixtures::seed_models(test_db, B, &["m-1"]).await;
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, A).await;
    let case = case();
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    let mut rows = Vec::new();
    for (sample, from, span) in [
        (
            &case["reference"],
            now - hour * 7 + chrono::Duration::minutes(10),
            hour * 6 - chrono::Duration::minutes(20),
        ),
        (
            &case["current"],
            now - hour + chrono::Duration::minutes(5),
            hour - chrono::Duration::minutes(10),
        ),
    ] {
        let values = sample["violationProbability"].as_array().unwrap();
        let n = values.len();
        for (i, v) in values.iter().enumerate() {
            let mut p = fixtures::prediction(A, &format!("p-{}-{i}", from.timestamp()), "m-1");
            let d = Decimal::from_f64_retain(v.as_f64().unwrap())
                .unwrap()
                .round_dp(4);
            p.violation_probability = Set(d);
            let at: DateTime<Utc> = from + span * (i as i32) / (n as i32);
            p.prediction_timestamp = Set(Some(at));
            rows.push(p);
        }
    }
    for chunk in rows.chunks(2000) {
        insert_all(&scoped, chunk.to_vec()).await.unwrap();
    }
    db.close().await.ok();
}

const CREATE: &str = r#"mutation($input: CreateMonitorInput!) {
  createMonitor(input: $input) { monitorId signal method enabled state { evaluations firing } }
}"#;

fn monitor_input(id: &str) -> Value {
    json!({
        "monitorId": id,
        "modelId": "m-1",
        "signal": "VIOLATION_PROBABILITY",
        "method": "PSI",
        "reference": {"rollingSeconds": 6 * 3600},
        "currentSeconds": 3600,
        "intervalSeconds": 1,
        "thresholds": {"kind": "FIXED", "warning": 0.1, "critical": 0.25},
        "noise": {"breachesToFire": 1, "keepFiring": 0, "cooldownSeconds": 3600},
        "retraining": {"queue": true, "cooldownSeconds": 3600},
        "notifyWebhook": true,
    })
}

/// A webhook receiver on 127.0.0.1: records each request's headers and
/// body, and answers 500 to the first `fail_first` requests, then 200.
struct Receiver {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        use axum::routing::post;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let recorded = recorded.clone();
                async move {
                    let mut seen = recorded.lock().unwrap();
                    seen.push((headers, body));
                    if seen.len() <= fail_first {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            seen,
            _task: task,
        }
    }

    /// (idempotency key, attempt, body) of each request, each signature
    /// checked against `secret`.
    fn requests(&self, secret: &str) -> Vec<(String, String, Value)> {
        use hmac::{Hmac, Mac};
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, body)| {
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(body.as_bytes());
                let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                assert_eq!(
                    headers["x-mlgate-signature"],
                    expected.as_str(),
                    "signed body"
                );
                (
                    headers["idempotency-key"].to_str().unwrap().to_owned(),
                    headers["x-mlgate-attempt"].to_str().unwrap().to_owned(),
                    serde_json::from_str(body).unwrap(),
                )
            })
            .collect()
    }
}

const SECRET: &str = "a-webhook-secret-of-some-length";

const SET_WEBHOOK: &str = r#"mutation($url: String!, $secret: String!) { setWebhook(url: $url, secret: $secret) { url } }"#;

const DELIVERIES: &str = "{ webhookDeliveries { deliveryId monitorId status attempts lastStatus lastError deliveredAt } }";

const STATE: &str = "{ monitors { monitorId state { evaluations firing lastValue lastLevel lastNotifiedAt lastTrainingAt } } }";

const METRICS: &str = r#"{ driftMetrics(filter: {modelIds: ["m-1"]}, first: 100) {
  nodes { metricId driftScore psiScore alertTriggered alertLevel measuredAt baselineComparison }
} }"#;

const JOBS: &str =
    "{ trainingJobs(first: 50) { nodes { jobId triggerReason status datasetInfo } } }";

/// The metrics, jobs and monitor state agree: one metric per evaluation,
/// each slot once, the fixture's PSI, one notification and one job.
fn check_outcome(metrics: &Value, jobs: &Value, monitor: &Value) {
    let evaluated = monitor["state"]["evaluations"].as_i64().unwrap();
    let nodes = metrics["driftMetrics"]["nodes"].as_array().unwrap();
    let mine: Vec<&Value> = nodes
        .iter()
        .filter(|m| m["baselineComparison"]["monitorId"] == monitor["monitorId"])
        .collect();
    assert_eq!(mine.len() as i64, evaluated, "one metric per evaluation");
    let mut slots: Vec<&str> = mine
        .iter()
        .map(|m| m["measuredAt"].as_str().unwrap())
        .collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), mine.len(), "each slot once");
    let expected = case()["expected"]["violationProbability"]["psi"]
        .as_f64()
        .unwrap();
    for m in &mine {
        let value = m["baselineComparison"]["value"].as_f64().unwrap();
        assert!(
            (value - expected).abs() < 1e-6,
            "PSI {value}, fixture {expected}"
        );
        assert!((m["psiScore"].as_f64().unwrap() - expected).abs() < 1e-6);
        assert_eq!(m["alertLevel"], "CRITICAL");
        assert_eq!(m["baselineComparison"]["referenceCount"], 6000);
        assert_eq!(m["baselineComparison"]["currentCount"], 2000);
    }
    let notified = mine.iter().filter(|m| m["alertTriggered"] == true).count();
    assert_eq!(
        notified, 1,
        "one notification while the signal keeps breaching"
    );
    assert_eq!(monitor["state"]["firing"], true);
    let jobs = jobs["trainingJobs"]["nodes"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "no training-job storm: {jobs:?}");
    assert_eq!(jobs[0]["triggerReason"], "DRIFT_DETECTED");
    assert_eq!(jobs[0]["status"], "QUEUED");
    assert!(jobs[0]["datasetInfo"]["current"]["from"].is_string());
}

async fn monitors_evaluate(test_db: TestDb) {
    seed(&test_db).await;
    let mut config = test_db.config();
    config.serve.monitor_poll_ms = 200;
    config.serve.webhook_private_addresses = true;
    let server = TestServer::start(config).await;
    let admin = test_db.key(A, Role::Admin).await;
    let viewer = test_db.key(A, Role::Viewer).await;
    // The receiver fails the first attempt: the retry must carry the same key.
    let receiver = Receiver::start(1).await;
    server
        .data(
            &admin,
            SET_WEBHOOK,
            json!({"url": receiver.url, "secret": SECRET}),
        )
        .await;
    let data = server
        .data(&admin, CREATE, json!({"input": monitor_input("psi-1")}))
        .await;
    assert_eq!(data["createMonitor"]["state"]["evaluations"], 0);

    let ask = async |query: &str| server.data(&admin, query, json!({})).await;
    let monitor = common::monitor_after(ask, STATE, "psi-1", 3).await;
    // Stop evaluating before reading, so that the three views agree.
    server
        .data(&admin, r#"mutation { updateMonitor(input: {monitorId: "psi-1", enabled: false}) { enabled } }"#, json!({}))
        .await;
    let monitor = {
        let _ = monitor;
        server.data(&admin, STATE, json!({})).await["monitors"][0].clone()
    };
    let metrics = server.data(&viewer, METRICS, json!({})).await;
    let jobs = server.data(&viewer, JOBS, json!({})).await;
    check_outcome(&metrics, &jobs, &monitor);
    assert_eq!(monitor["state"]["lastLevel"], "CRITICAL");
    assert!(monitor["state"]["lastTrainingAt"].is_string());

    // The one notification reaches the webhook: refused once, retried with
    // the same idempotency key, then logged as delivered.
    let notified: Vec<String> = metrics["driftMetrics"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["alertTriggered"] == true)
        .map(|m| m["metricId"].as_str().unwrap().to_owned())
        .collect();
    let mut log = Value::Null;
    for _ in 0..100 {
        log = server.data(&admin, DELIVERIES, json!({})).await;
        if log["webhookDeliveries"][0]["status"] == "DELIVERED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deliveries = log["webhookDeliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log}");
    assert_eq!(deliveries[0]["deliveryId"], notified[0].as_str());
    assert_eq!(deliveries[0]["status"], "DELIVERED", "{log}");
    assert_eq!(deliveries[0]["attempts"], 2);
    assert_eq!(deliveries[0]["lastStatus"], 200);
    let requests = receiver.requests(SECRET);
    assert_eq!(requests.len(), 2);
    for (i, (key, attempt, body)) in requests.iter().enumerate() {
        assert_eq!(key, &notified[0]);
        assert_eq!(attempt, &(i + 1).to_string());
        assert_eq!(body["monitorId"], "psi-1");
        assert_eq!(body["level"], "critical");
    }
    let (_, body) = server.graphql_with(&viewer, DELIVERIES, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );

    // Only admins manage monitors; tenants see only their own.
    let (_, body) = server.graphql_with(&viewer, STATE, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let admin_b = test_db.key(B, Role::Admin).await;
    let theirs = server.data(&admin_b, STATE, json!({})).await;
    assert_eq!(theirs["monitors"], json!([]));
    let (_, body) = server
        .graphql_with(
            &admin_b,
            r#"mutation { updateMonitor(input: {monitorId: "psi-1", enabled: true}) { enabled } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
    let theirs = server.data(&admin_b, METRICS, json!({})).await;
    assert_eq!(theirs["driftMetrics"]["nodes"], json!([]));
    let (_, body) = server
        .graphql_with(
            &admin_b,
            r#"mutation { deleteMonitor(monitorId: "psi-1") }"#,
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["deleteMonitor"], false, "{body}");

    // Bad definitions are refused.
    for (change, needle) in [
        (
            json!({"reference": {"modelVersion": "1.0.0"}, "thresholds": {"kind": "SIGMA", "warning": 2, "critical": 3}}),
            "time reference",
        ),
        (json!({"intervalSeconds": 0}), "intervalSeconds"),
        (json!({"signal": "SHAP"}), "feature"),
        (json!({"modelId": "m-unknown"}), "m-unknown"),
        (
            json!({"thresholds": {"kind": "FIXED", "warning": 0.3, "critical": 0.2}}),
            "warning",
        ),
    ] {
        let mut input = monitor_input("bad");
        for (k, v) in change.as_object().unwrap() {
            input[k] = v.clone();
        }
        let (_, body) = server
            .graphql_with(&admin, CREATE, json!({"input": input}))
            .await;
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
    let (_, body) = server
        .graphql_with(&admin, CREATE, json!({"input": monitor_input("psi-1")}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "CONFLICT",
        "{body}"
    );
    let deleted = server
        .data(
            &admin,
            r#"mutation { deleteMonitor(monitorId: "psi-1") }"#,
            json!({}),
        )
        .await;
    assert_eq!(deleted["deleteMonitor"], true);
    server.stop().await;
}

#[tokio::test]
async fn sqlite_monitors_evaluate_once_per_slot_and_notify_once() {
    monitors_evaluate(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_monitors_evaluate_once_per_slot_and_notify_once() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    monitors_evaluate(test_db).await;
}

#[tokio::test]
async fn postgres_two_gateways_evaluate_every_slot_exactly_once() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    seed(&test_db).await;
    let args = [
        "--monitor-poll-ms",
        "50",
        "--webhook-private-addresses",
        "true",
    ];
    let (one, two) = tokio::join!(
        Gateway::serving(&test_db.url, &args),
        Gateway::serving(&test_db.url, &args)
    );
    let admin = test_db.key(A, Role::Admin).await;
    let viewer = test_db.key(A, Role::Viewer).await;
    let receiver = Receiver::start(0).await;
    one.data(
        &admin,
        SET_WEBHOOK,
        json!({"url": receiver.url, "secret": SECRET}),
    )
    .await;
    // Two monitors due every second, both gateways looking 20 times a second.
    for id in ["race-1", "race-2"] {
        one.data(&admin, CREATE, json!({"input": monitor_input(id)}))
            .await;
    }
    let ask = async |query: &str| two.data(&admin, query, json!({})).await;
    common::monitor_after(&ask, STATE, "race-1", 6).await;
    common::monitor_after(&ask, STATE, "race-2", 6).await;
    for id in ["race-1", "race-2"] {
        one.data(
            &admin,
            "mutation($id: String!) { updateMonitor(input: {monitorId: $id, enabled: false}) { enabled } }",
            json!({"id": id}),
        )
        .await;
    }
    let monitors = two.data(&admin, STATE, json!({})).await;
    let metrics = one.data(&viewer, METRICS, json!({})).await;
    let jobs = two.data(&viewer, JOBS, json!({})).await;
    let all_jobs = jobs["trainingJobs"]["nodes"].as_array().unwrap().clone();
    assert_eq!(all_jobs.len(), 2, "one job per monitor: {all_jobs:?}");
    for monitor in monitors["monitors"].as_array().unwrap() {
        let id = monitor["monitorId"].as_str().unwrap();
        let of_monitor: Vec<Value> = all_jobs
            .iter()
            .filter(|j| {
                j["datasetInfo"]["driftMetricId"].as_str().is_some_and(|m| {
                    metrics["driftMetrics"]["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n["metricId"] == m && n["baselineComparison"]["monitorId"] == id)
                })
            })
            .cloned()
            .collect();
        check_outcome(
            &metrics,
            &json!({"trainingJobs": {"nodes": of_monitor}}),
            monitor,
        );
    }
}
