//! Prometheus metrics on their own listener: the exposition parses with a
//! Prometheus text-format parser, the expected families are there, and the
//! values move as a known sequence of requests says they must, WebSocket
//! alert delivery included. Each test runs its own `mlgate` process: the
//! registry is process-wide.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, scoped_for};
use common::ws::{next, open_to, subscribe};
use common::Gateway;

const TENANT: &str = "acme";

/// One scrape: every sample by its name and sorted labels.
struct Scrape {
    samples: HashMap<String, f64>,
    /// Each family's name and type, from its `# TYPE` line.
    families: Vec<(String, String)>,
}

impl Scrape {
    /// The value of `name{labels}` (0 when the series does not exist yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&series(name, labels))
            .copied()
            .unwrap_or(0.0)
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

async fn scrape(metrics: &str) -> Scrape {
    let answer = reqwest::get(format!("{metrics}/metrics")).await.unwrap();
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = answer.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("the exposition parses");
    let mut samples = HashMap::new();
    for sample in &parsed.samples {
        let value = match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                // The +Inf bucket is the count.
                buckets.last().map_or(0.0, |b| b.count)
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        let labels: Vec<(&str, &str)> = sample
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "le")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        samples.insert(series(&sample.metric, &labels), value);
    }
    let families = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut parts = l.split_whitespace();
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            )
        })
        .collect();
    Scrape { samples, families }
}

/// The families the Grafana dashboard and the README name; each must be
/// exported from the first scrape on (its `# TYPE` line), before any
/// series exists.
pub const FAMILIES: [(&str, &str); 21] = [
    ("mlgate_requests", "counter"),
    ("mlgate_request_duration_seconds", "histogram"),
    ("mlgate_graphql_errors", "counter"),
    ("mlgate_http_connections", "gauge"),
    ("mlgate_ws_connections", "gauge"),
    ("mlgate_subscriptions", "gauge"),
    ("mlgate_db_pool_connections", "gauge"),
    ("mlgate_db_pool_max_connections", "gauge"),
    ("mlgate_db_waiting_transactions", "gauge"),
    ("mlgate_db_acquire_seconds", "histogram"),
    ("mlgate_db_transaction_seconds", "histogram"),
    ("mlgate_db_statement_seconds", "histogram"),
    ("mlgate_db_statements", "counter"),
    ("mlgate_db_broken_connections", "counter"),
    ("mlgate_alert_delivery_lag_seconds", "histogram"),
    ("mlgate_alerts_delivered", "counter"),
    ("mlgate_alert_outbox_events_read", "counter"),
    ("mlgate_alert_feeds", "gauge"),
    ("mlgate_alerts_raised", "counter"),
    ("mlgate_ingested_rows", "counter"),
    ("mlgate_build_info", "gauge"),
];

fn prediction(id: &str) -> Value {
    json!({
        "predictionId": id, "resourceId": format!("res-{id}"), "modelId": "m-1",
        "violationProbability": 0.8, "confidenceScore": 0.9, "riskLevel": "HIGH", "riskScore": 0.5,
        "confidenceInterval": {"lower": 0.75, "upper": 0.87}, "recommendations": [],
        "shapValues": [{"feature": "cpu", "value": 0.4}], "shapBaseValue": 0.05,
        "attentionWeights": [[0.25, 0.75]], "inferenceTimeMs": 12.5, "timeToViolationHours": 36.0,
        "predictionTimestamp": "2026-11-20T10:00:00Z",
    })
}

/// The metrics address from the "mlgate ready" log line.
fn metrics_address(gateway: &Gateway) -> String {
    let logs = gateway.logs.lock().unwrap();
    let line = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["fields"]["message"] == "mlgate ready")
        .expect("a ready line");
    format!("http://{}", line["fields"]["metrics"].as_str().unwrap())
}

/// Polls until `check` holds for a fresh scrape (gauges move when
/// connections close, a moment after the client let go).
async fn eventually(metrics: &str, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scraped = scrape(metrics).await;
        if check(&scraped) {
            return scraped;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

backend_tests! {
    async fn metrics_move_with_a_known_sequence_of_requests(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        insert(&scoped, fixtures::model(TENANT, "m-1")).await.unwrap();
        db.close().await.ok();
        let viewer = test_db.key(TENANT, Role::Viewer).await;
        let service = test_db.key(TENANT, Role::Service).await;
        let gateway = Gateway::start(
            &test_db.url,
            &["--metrics-bind", "127.0.0.1:0", "--max-response-bytes", "400"],
            "",
            &[],
        )
        .await;
        let metrics = metrics_address(&gateway);
        let base = gateway.base.clone();

        let before = scrape(&metrics).await;
        for (family, kind) in FAMILIES {
            assert!(
                before.families.iter().any(|(f, k)| f == family && k == kind),
                "{family} is not exported as a {kind}: {:?}", before.families
            );
        }
        for (family, _) in &before.families {
            assert!(
                FAMILIES.iter().any(|(f, _)| f == family),
                "{family} is exported but on no dashboard panel: add it to FAMILIES and the dashboard"
            );
        }
        assert_eq!(before.value("mlgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
        assert_eq!(before.value("mlgate_ws_connections", &[]), 0.0);

        // Two good queries, one refused credential, one invalid document.
        for _ in 0..2 {
            let answer = gateway.post(Some(&viewer), "{ models { totalCount } }", json!({})).await;
            assert_eq!(answer["data"]["models"]["totalCount"], 1, "{answer}");
        }
        gateway.post(Some("mlg_not_a_key"), "{ models { totalCount } }", json!({})).await;
        gateway.post(Some(&viewer), "{ nope }", json!({})).await;
        // An answer over the response ceiling is an error of its own.
        let large = gateway.post(Some(&viewer), "{ __schema { types { name description } } }", json!({})).await;
        assert_eq!(large["errors"][0]["extensions"]["code"], "RESPONSE_TOO_LARGE", "{large}");

        // A live subscriber, then a write that raises one critical alert.
        let mut socket = open_to(&base, &viewer).await;
        subscribe(&mut socket, "alerts", "subscription { driftAlerts { level metricId } }", json!({})).await;
        let during = eventually(&metrics, "the subscription is counted", |s| {
            s.value("mlgate_subscriptions", &[("field", "driftAlerts")]) == 1.0
        })
        .await;
        assert_eq!(during.value("mlgate_ws_connections", &[]), 1.0);
        assert_eq!(during.value("mlgate_alert_feeds", &[]), 1.0);
        let written = gateway.post(Some(&service),
            "mutation($m: [DriftMetricInput!]!, $p: [PredictionInput!]!) { recordDriftMetrics(input: $m) { alertsTriggered } recordPredictions(input: $p) { count } }",
            json!({
                "m": [{"metricId": "d-1", "modelId": "m-1", "driftType": "DATA", "driftScore": 0.4, "psiScore": 0.4}],
                "p": [prediction("p-1"), prediction("p-2"), prediction("p-3")],
            }),
        )
        .await;
        assert_eq!(written["data"]["recordPredictions"]["count"], 3, "{written}");
        let delivered = next(&mut socket).await.unwrap();
        assert_eq!(delivered["payload"]["data"]["driftAlerts"]["metricId"], "d-1", "{delivered}");
        drop(socket);

        // The connection's gauge and its subscription's count are each
        // recorded as their own task ends: wait for both.
        let ws_ok = [("transport", "ws"), ("operation", "subscription"), ("outcome", "ok")];
        let after = eventually(&metrics, "the WebSocket and its subscription are done", |s| {
            s.value("mlgate_ws_connections", &[]) == 0.0
                && s.value("mlgate_requests_total", &ws_ok) > before.value("mlgate_requests_total", &ws_ok)
        })
        .await;
        let moved = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);
        let http = |operation, outcome| [("transport", "http"), ("operation", operation), ("outcome", outcome)];
        assert_eq!(moved("mlgate_requests_total", &http("query", "ok")), 2.0);
        assert_eq!(moved("mlgate_requests_total", &http("query", "error")), 1.0, "the oversized answer");
        assert_eq!(moved("mlgate_graphql_errors_total", &[("code", "RESPONSE_TOO_LARGE")]), 1.0);
        assert_eq!(moved("mlgate_requests_total", &http("query", "refused")), 2.0, "bad key and invalid field");
        assert_eq!(moved("mlgate_requests_total", &http("mutation", "ok")), 1.0);
        assert_eq!(
            moved("mlgate_requests_total", &[("transport", "ws"), ("operation", "subscription"), ("outcome", "ok")]),
            1.0
        );
        assert_eq!(
            moved("mlgate_request_duration_seconds", &[("transport", "http"), ("operation", "query")]),
            5.0,
            "every HTTP query is timed"
        );
        assert_eq!(moved("mlgate_graphql_errors_total", &[("code", "UNAUTHENTICATED")]), 1.0);
        assert_eq!(moved("mlgate_graphql_errors_total", &[("code", "GRAPHQL_VALIDATION_FAILED")]), 1.0);
        assert_eq!(moved("mlgate_ingested_rows_total", &[("kind", "predictions")]), 3.0);
        assert_eq!(moved("mlgate_ingested_rows_total", &[("kind", "drift_metrics")]), 1.0);
        assert_eq!(moved("mlgate_alerts_raised_total", &[("level", "critical")]), 1.0);
        assert_eq!(moved("mlgate_alerts_delivered_total", &[]), 1.0);
        assert_eq!(moved("mlgate_alert_delivery_lag_seconds", &[]), 1.0);
        assert!(moved("mlgate_alert_outbox_events_read_total", &[]) >= 1.0);
        assert_eq!(after.value("mlgate_subscriptions", &[("field", "driftAlerts")]), 0.0);
        assert!(moved("mlgate_db_transaction_seconds", &[("kind", "write")]) >= 1.0);
        assert!(moved("mlgate_db_transaction_seconds", &[("kind", "read")]) >= 2.0);
        assert!(moved("mlgate_db_statements_total", &[]) >= 4.0);
        assert!(after.value("mlgate_db_pool_max_connections", &[("pool", "main")]) >= 1.0);
        let pool = after.value("mlgate_db_pool_connections", &[("pool", "main"), ("state", "idle")])
            + after.value("mlgate_db_pool_connections", &[("pool", "main"), ("state", "in_use")]);
        assert!(pool >= 1.0, "the main pool holds connections");

        // The API's own address does not serve metrics.
        let api = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(api.status(), 404);
    }
}

/// Every metric the Grafana dashboard queries is exported (and so is
/// every family listed above): a renamed metric fails here, not on a
/// dashboard at 3 a.m.
#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/mlgate.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut expressions = Vec::new();
    collect_expressions(&dashboard, &mut expressions);
    assert!(expressions.len() >= 10, "the dashboard has its panels");
    let mut queried = std::collections::BTreeSet::new();
    for expression in &expressions {
        let mut rest = expression.as_str();
        while let Some(at) = rest.find("mlgate_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            queried.insert(name);
        }
    }
    // Each queried series must be one its family's type exports: a
    // counter's `_total`, a histogram's `_bucket`/`_sum`/`_count`, a gauge
    // as it is.
    for name in &queried {
        let found = FAMILIES.iter().any(|(family, kind)| {
            let suffixes: &[&str] = match *kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            suffixes
                .iter()
                .any(|suffix| *name == format!("{family}{suffix}"))
        });
        assert!(
            found,
            "the dashboard queries {name}, which mlgate does not export"
        );
    }
    for (family, _) in FAMILIES {
        assert!(
            queried.iter().any(|q| q.starts_with(family)),
            "no dashboard panel shows {family}"
        );
    }
}

fn collect_expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_expressions(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_expressions(v, out)),
        _ => {}
    }
}
