//! Drift alerts and training-job updates pushed over `graphql-transport-ws`,
//! driven by a real WebSocket client against a running server on both
//! backends: delivered to the writer's tenant only, filtered server-side,
//! fast, resumable with `since` without loss or duplicates, ended when the
//! credentials are revoked or expire, and cut off (then resumable) when
//! the client stops reading; alerts of bulk drift loads arrive the same way.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, scoped_for};
use common::ws::{next, next_within, open, send, subscribe, Socket};
use common::Gateway;
use common::{TestDb, TestServer};

const ALPHA: &str = "alpha";
const BETA: &str = "beta";

const ALERTS: &str = r#"subscription($since: String, $modelIds: [String!], $minLevel: AlertLevel, $types: [DriftType!]) {
    driftAlerts(since: $since, modelIds: $modelIds, minLevel: $minLevel, driftTypes: $types) {
        cursor sequence level driftType metricId modelId psiScore model { modelId modelName }
    }
}"#;

const RECORD: &str = r#"mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }"#;

/// A drift metric of `model` whose PSI makes it `level` under the default thresholds.
fn metric(id: &str, model: &str, level: &str, drift_type: &str) -> Value {
    let psi = match level {
        "CRITICAL" => 0.4,
        "WARNING" => 0.15,
        _ => 0.01,
    };
    json!({"metricId": id, "modelId": model, "driftType": drift_type, "driftScore": psi, "psiScore": psi})
}

async fn seed(test_db: &TestDb) {
    let db = test_db.connect().await;
    for tenant in [ALPHA, BETA] {
        let scoped = scoped_for(test_db, &db, tenant).await;
        for model in ["m-1", "m-2"] {
            insert(&scoped, fixtures::model(tenant, model))
                .await
                .unwrap();
        }
    }
    db.close().await.ok();
}

async fn record(server: &TestServer, key: &str, metrics: Vec<Value>) {
    server.data(key, RECORD, json!({ "input": metrics })).await;
}

/// The next alert on subscription `id`, failing on anything else.
async fn alert(socket: &mut Socket, id: &str) -> Value {
    let message = next(socket).await.expect("connection open");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], id, "{message}");
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"]["driftAlerts"].clone()
}

/// Asserts that nothing arrives for a while.
async fn silent(socket: &mut Socket, what: &str) {
    let message = next_within(socket, Duration::from_millis(300)).await;
    assert_eq!(message, Ok(None), "{what}");
}

/// ~12 MB of alerts (240) for a client that does not read them: more than
/// the kernel buffers between the two ends hold.
async fn flood(server: &TestServer, service: &str) {
    let baseline: Vec<String> = (0..2000)
        .map(|i| format!("feature-{i:05}-baseline"))
        .collect();
    for batch in 0..6 {
        let metrics = (0..40)
            .map(|i| {
                let mut m = metric(&format!("x-{batch}-{i:02}"), "m-1", "CRITICAL", "DATA");
                m["baselineComparison"] = json!({"features": baseline});
                m
            })
            .collect();
        record(server, service, metrics).await;
    }
}

backend_tests! {
    async fn alerts_reach_their_tenant_only_filtered_and_fast(test_db: TestDb) {
        seed(&test_db).await;
        let server = TestServer::start(test_db.config()).await;
        let alpha = test_db.key(ALPHA, Role::Service).await;
        let beta = test_db.key(BETA, Role::Service).await;
        let alpha_viewer = test_db.key(ALPHA, Role::Viewer).await;
        let beta_viewer = test_db.key(BETA, Role::Viewer).await;

        let mut alpha_socket = open(&server, &alpha_viewer).await;
        let mut beta_socket = open(&server, &beta_viewer).await;
        let since = server.alert_cursor(&alpha_viewer).await;
        subscribe(&mut alpha_socket, "all", ALERTS, json!({"since": since})).await;
        subscribe(&mut alpha_socket, "narrow", ALERTS, json!({
            "since": since, "modelIds": ["m-1"], "minLevel": "CRITICAL", "types": ["DATA"],
        })).await;
        subscribe(&mut beta_socket, "beta", ALERTS, json!({"since": server.alert_cursor(&beta_viewer).await})).await;

        record(&server, &alpha, vec![
            metric("a-1", "m-2", "CRITICAL", "DATA"),
            metric("a-2", "m-1", "WARNING", "DATA"),
            metric("a-3", "m-1", "CRITICAL", "CONCEPT"),
            metric("a-4", "m-1", "INFO", "DATA"),
            metric("a-5", "m-1", "CRITICAL", "DATA"),
        ]).await;
        // The default filter (WARNING and above) gets a-1, a-2, a-3, a-5; the
        // narrow one only a-5. Messages of two subscriptions interleave.
        let mut all = Vec::new();
        let mut narrow = Vec::new();
        while all.len() < 4 || narrow.is_empty() {
            let message = next(&mut alpha_socket).await.expect("open");
            assert_eq!(message["type"], "next", "{message}");
            let alert = message["payload"]["data"]["driftAlerts"].clone();
            match message["id"].as_str().unwrap() {
                "all" => all.push(alert),
                _ => narrow.push(alert),
            }
        }
        let ids = |alerts: &[Value]| alerts.iter().map(|a| a["metricId"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(ids(&all), ["a-1", "a-2", "a-3", "a-5"]);
        assert_eq!(ids(&narrow), ["a-5"]);
        assert_eq!(narrow[0]["level"], "CRITICAL");
        assert_eq!(narrow[0]["model"]["modelId"], "m-1");
        let sequences: Vec<i64> = all.iter().map(|a| a["sequence"].as_i64().unwrap()).collect();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
        silent(&mut alpha_socket, "alpha got more than its alerts").await;
        silent(&mut beta_socket, "beta got alpha's alerts").await;

        // Beta's own alert reaches beta, never alpha.
        record(&server, &beta, vec![metric("b-1", "m-1", "CRITICAL", "DATA")]).await;
        assert_eq!(alert(&mut beta_socket, "beta").await["metricId"], "b-1");
        silent(&mut alpha_socket, "alpha got beta's alert").await;

        // Delivery latency, from the write's answer to the alert's arrival.
        let mut latencies = Vec::new();
        for i in 0..10 {
            let written = Instant::now();
            record(&server, &alpha, vec![metric(&format!("t-{i}"), "m-1", "CRITICAL", "DATA")]).await;
            // Both subscriptions match, in either order.
            let mut got = BTreeSet::new();
            for _ in 0..2 {
                let message = next(&mut alpha_socket).await.unwrap();
                assert_eq!(message["payload"]["data"]["driftAlerts"]["metricId"], format!("t-{i}"), "{message}");
                got.insert(message["id"].as_str().unwrap().to_owned());
            }
            latencies.push(written.elapsed());
            assert_eq!(got, BTreeSet::from(["all".to_owned(), "narrow".to_owned()]));
        }
        latencies.sort();
        eprintln!("write → alert delivered (incl. the write itself): {latencies:?}");
        assert!(latencies[5] < Duration::from_millis(100), "median {:?}", latencies[5]);
        server.stop().await;
    }

    async fn reconnecting_with_since_replays_in_order_without_duplicates(test_db: TestDb) {
        seed(&test_db).await;
        let server = TestServer::start(test_db.config()).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let start = server.alert_cursor(&viewer).await;

        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "1", ALERTS, json!({"since": start})).await;
        record(&server, &service, vec![metric("r-1", "m-1", "CRITICAL", "DATA")]).await;
        let first = alert(&mut socket, "1").await;
        assert_eq!(first["metricId"], "r-1");
        drop(socket);

        // Missed while disconnected: two batches, one alert filtered out.
        record(&server, &service, vec![
            metric("r-2", "m-1", "WARNING", "DATA"),
            metric("r-3", "m-1", "INFO", "DATA"),
        ]).await;
        record(&server, &service, vec![metric("r-4", "m-2", "CRITICAL", "PREDICTION")]).await;

        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "2", ALERTS, json!({"since": first["cursor"]})).await;
        assert_eq!(alert(&mut socket, "2").await["metricId"], "r-2");
        assert_eq!(alert(&mut socket, "2").await["metricId"], "r-4");
        // Then live, without repeating anything.
        record(&server, &service, vec![metric("r-5", "m-1", "CRITICAL", "DATA")]).await;
        assert_eq!(alert(&mut socket, "2").await["metricId"], "r-5");
        silent(&mut socket, "a duplicate after going live").await;

        // Cursors are the tenant's own; garbage is refused as bad input.
        let beta_viewer = test_db.key(BETA, Role::Viewer).await;
        let mut beta_socket = open(&server, &beta_viewer).await;
        for (id, since) in [("stolen", first["cursor"].clone()), ("garbage", json!("nope"))] {
            subscribe(&mut beta_socket, id, ALERTS, json!({"since": since})).await;
            let message = next(&mut beta_socket).await.unwrap();
            assert_eq!(message["type"], "next", "{message}");
            assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{message}");
            assert_eq!(next(&mut beta_socket).await.unwrap()["type"], "complete");
        }
        server.stop().await;
    }

    async fn alerts_of_a_bulk_load_are_pushed_once_in_line_order(test_db: TestDb) {
        seed(&test_db).await;
        let server = TestServer::start(test_db.config()).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let start = server.alert_cursor(&viewer).await;
        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "1", ALERTS, json!({"since": start})).await;

        let body: String = [
            // Ids out of key order: alerts follow the lines, not the ids.
            metric("b-9", "m-1", "CRITICAL", "DATA"),
            metric("b-1", "m-1", "INFO", "DATA"),
            metric("b-2", "m-2", "WARNING", "CONCEPT"),
            metric("b-5", "m-1", "CRITICAL", "PREDICTION"),
        ]
        .iter()
        .map(|line| line.to_string() + "\n")
        .collect();
        let post = || async {
            let response = server
                .client
                .post(server.url("/ingest/drift-metrics"))
                .bearer_auth(&service)
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.json::<Value>().await.unwrap()
        };
        assert_eq!(post().await["alerts"], 3);
        let mut sequences = Vec::new();
        for expected in ["b-9", "b-2", "b-5"] {
            let alert = alert(&mut socket, "1").await;
            assert_eq!(alert["metricId"], expected, "{alert}");
            sequences.push(alert["sequence"].as_i64().unwrap());
        }
        assert!(sequences.windows(2).all(|w| w[1] == w[0] + 1), "{sequences:?}");
        // A retried load is counted, not raised again.
        assert_eq!(post().await["duplicates"], 4);
        silent(&mut socket, "an alert raised again by a retried load").await;
        server.stop().await;
    }

    async fn an_alert_racing_a_new_subscription_is_not_lost(test_db: TestDb) {
        seed(&test_db).await;
        let server = TestServer::start(test_db.config()).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        // Each round starts the tenant's feed afresh and writes while the
        // subscription and the feed are still starting.
        for round in 0..15 {
            let since = server.alert_cursor(&viewer).await;
            let mut socket = open(&server, &viewer).await;
            subscribe(&mut socket, "1", ALERTS, json!({"since": since})).await;
            record(&server, &service, vec![metric(&format!("race-{round}"), "m-1", "CRITICAL", "DATA")]).await;
            assert_eq!(alert(&mut socket, "1").await["metricId"], format!("race-{round}"), "round {round}");
            drop(socket);
            // Let the feed stop with its last subscriber.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.stop().await;
    }

    async fn a_replay_survives_a_concurrent_writer(test_db: TestDb) {
        seed(&test_db).await;
        let server = TestServer::start(test_db.config()).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let start = server.alert_cursor(&viewer).await;
        // 1200 stored alerts (more than a page), then more while replaying.
        for batch in 0..3 {
            let metrics = (0..400).map(|i| metric(&format!("s-{batch}-{i:03}"), "m-1", "CRITICAL", "DATA")).collect();
            record(&server, &service, metrics).await;
        }
        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "1", "subscription($since: String) { driftAlerts(since: $since) { sequence } }", json!({"since": start})).await;
        let writer = async {
            for batch in 0..5 {
                let metrics = (0..50).map(|i| metric(&format!("w-{batch}-{i:02}"), "m-1", "CRITICAL", "DATA")).collect();
                record(&server, &service, metrics).await;
            }
        };
        let reader = async {
            let mut seen = Vec::new();
            while seen.len() < 1450 {
                let message = next(&mut socket).await.expect("open");
                assert_eq!(message["type"], "next", "{message}");
                seen.push(message["payload"]["data"]["driftAlerts"]["sequence"].as_i64().unwrap());
            }
            seen
        };
        let ((), seen) = tokio::join!(writer, reader);
        let expected: Vec<i64> = (1..=1450).collect();
        assert_eq!(seen, expected, "every alert once, in order");
        silent(&mut socket, "a duplicate").await;
        server.stop().await;
    }

    async fn training_job_changes_are_pushed(test_db: TestDb) {
        seed(&test_db).await;
        let server = TestServer::start(test_db.config()).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "jobs", r#"subscription { trainingJobUpdates(jobIds: ["job-1"]) { jobId status startedAt } }"#, json!({})).await;
        let beta_viewer = test_db.key(BETA, Role::Viewer).await;
        let mut beta_socket = open(&server, &beta_viewer).await;
        subscribe(&mut beta_socket, "jobs", "subscription { trainingJobUpdates { jobId } }", json!({})).await;
        // Let both subscriptions reach their feeds.
        tokio::time::sleep(Duration::from_millis(200)).await;

        let create = |id: &str| format!(r#"mutation {{ createTrainingJob(input: {{jobId: "{id}", modelType: "lstm", triggerReason: MANUAL, trainingConfig: {{}}}}) {{ jobId }} }}"#);
        let mut statuses = Vec::new();
        let mut take = async |socket: &mut common::ws::Socket| {
            let message = next(socket).await.unwrap();
            let job = &message["payload"]["data"]["trainingJobUpdates"];
            assert_eq!(job["jobId"], "job-1", "{message}");
            statuses.push(job["status"].as_str().unwrap().to_owned());
        };
        server.data(&service, &create("job-other"), json!({})).await;
        server.data(&service, &create("job-1"), json!({})).await;
        // The subscription reads a job's state when notified: wait for the
        // first state before changing it (else it may read the second).
        take(&mut socket).await;
        server.data(&service, r#"mutation { updateTrainingJob(jobId: "job-1", input: {metrics: {loss: 1}}) { jobId } }"#, json!({})).await;
        server.data(&service, r#"mutation { updateTrainingJob(jobId: "job-1", input: {status: RUNNING}) { jobId } }"#, json!({})).await;
        take(&mut socket).await;
        assert_eq!(statuses, ["QUEUED", "RUNNING"]);
        silent(&mut socket, "a metrics-only change or another job").await;
        silent(&mut beta_socket, "beta saw alpha's jobs").await;
        server.stop().await;
    }

    async fn revoked_or_expired_credentials_end_the_connection(test_db: TestDb) {
        seed(&test_db).await;
        let mut config = test_db.config();
        config.serve.ws.ws_auth_recheck_secs = 1;
        config.serve.auth.jwt_secret = Some("test-secret-with-enough-entropy-0123456789".into());
        let server = TestServer::start(config).await;
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let created = server.data(&admin, r#"mutation { createApiKey(role: VIEWER, name: "dash") { secret key { id } } }"#, json!({})).await;
        let secret = created["createApiKey"]["secret"].as_str().unwrap().to_owned();
        let mut socket = open(&server, &secret).await;
        subscribe(&mut socket, "1", ALERTS, json!({})).await;
        server.data(&admin, &format!(r#"mutation {{ revokeApiKey(id: "{}") {{ revokedAt }} }}"#, created["createApiKey"]["key"]["id"].as_str().unwrap()), json!({})).await;
        let closed = next_within(&mut socket, Duration::from_secs(4)).await;
        assert_eq!(closed, Err(Some(4403)), "a revoked key ends the connection");

        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": "dashboard", "tenant_id": ALPHA, "role": "viewer", "exp": chrono::Utc::now().timestamp() + 2}),
            &jsonwebtoken::EncodingKey::from_secret(b"test-secret-with-enough-entropy-0123456789"),
        ).unwrap();
        let mut socket = open(&server, &token).await;
        subscribe(&mut socket, "1", ALERTS, json!({})).await;
        let started = Instant::now();
        let closed = next_within(&mut socket, Duration::from_secs(5)).await;
        assert_eq!(closed, Err(Some(4403)), "an expired JWT ends the connection");
        assert!(started.elapsed() < Duration::from_millis(2900), "{:?}", started.elapsed());
        server.stop().await;
    }

    async fn a_duplicate_subscription_id_is_refused(test_db: TestDb) {
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "same", ALERTS, json!({})).await;
        subscribe(&mut socket, "same", ALERTS, json!({})).await;
        assert_eq!(next(&mut socket).await, Err(Some(4409)));
        // Completing one frees its id.
        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "x", ALERTS, json!({})).await;
        send(&mut socket, json!({"id": "x", "type": "complete"})).await;
        subscribe(&mut socket, "x", ALERTS, json!({})).await;
        send(&mut socket, json!({"type": "ping"})).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "pong");
        server.stop().await;
    }

    async fn a_client_that_stops_reading_is_cut_off_and_resumes(test_db: TestDb) {
        seed(&test_db).await;
        let mut config = test_db.config();
        config.serve.ws.ws_slow_consumer_secs = 1;
        let server = TestServer::start(config).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let start = server.alert_cursor(&viewer).await;
        let query = "subscription($since: String) { driftAlerts(since: $since) { cursor sequence metric { baselineComparison } } }";
        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "1", query, json!({"since": start})).await;
        flood(&server, &service).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Read what was sent before the server gave up on us.
        let mut seen = BTreeSet::new();
        let mut last_cursor = start.clone();
        let ended = loop {
            match next_within(&mut socket, Duration::from_secs(5)).await {
                Ok(Some(message)) => {
                    let alert = &message["payload"]["data"]["driftAlerts"];
                    seen.insert(alert["sequence"].as_i64().unwrap());
                    last_cursor = alert["cursor"].as_str().unwrap().to_owned();
                }
                Ok(None) => panic!("the server kept a stalled client connected"),
                Err(code) => break code,
            }
        };
        assert!(matches!(ended, Some(1013) | None), "closed with {ended:?}");
        assert!(seen.len() < 240, "cut off before the end ({} delivered)", seen.len());
        // Resuming from the last alert received gets exactly the rest.
        let mut socket = open(&server, &viewer).await;
        subscribe(&mut socket, "2", query, json!({"since": last_cursor})).await;
        while seen.len() < 240 {
            let message = next(&mut socket).await.expect("open");
            let sequence = message["payload"]["data"]["driftAlerts"]["sequence"].as_i64().unwrap();
            assert!(seen.insert(sequence), "{sequence} delivered twice");
        }
        assert_eq!(seen, (1..=240).collect::<BTreeSet<i64>>());
        server.stop().await;
    }
}

/// A query's answer waiting for a client that stopped reading holds no
/// transaction (PostgreSQL shares one per query operation): its connection
/// is back in the pool at once, not after the slow-consumer timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_answer_waiting_for_a_slow_reader_holds_no_transaction() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    seed(&test_db).await;
    let mut config = test_db.config();
    config.serve.ws.ws_slow_consumer_secs = 10;
    let server = TestServer::start(config).await;
    let service = test_db.key(ALPHA, Role::Service).await;
    let viewer = test_db.key(ALPHA, Role::Viewer).await;
    let start = server.alert_cursor(&viewer).await;
    let mut socket = open(&server, &viewer).await;
    let alerts = "subscription($since: String) { driftAlerts(since: $since) { cursor metric { baselineComparison } } }";
    subscribe(&mut socket, "alerts", alerts, json!({"since": start})).await;
    flood(&server, &service).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The answer cannot be queued: the connection's queue is full.
    subscribe(&mut socket, "q", "{ models { totalCount } }", json!({})).await;
    let raw = test_db.raw().await;
    // Between the statements of any short transaction a backend is briefly
    // idle in transaction; one held for an unread answer stays so for seconds.
    let open_transactions = "SELECT count(*) FROM pg_stat_activity \
        WHERE datname = current_database() AND pid <> pg_backend_pid() \
        AND state LIKE 'idle in transaction%' \
        AND clock_timestamp() - state_change > interval '500 milliseconds'";
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(4) {
        let held = common::count(&raw, open_transactions).await;
        assert_eq!(held, 0, "a transaction held for an unread answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reading again (before the slow-consumer timeout), the answer is there.
    let answer = loop {
        let message = next_within(&mut socket, Duration::from_secs(5))
            .await
            .expect("still connected")
            .expect("a message");
        if message["id"] == "q" {
            break message;
        }
    };
    assert!(
        answer["payload"]["data"]["models"]["totalCount"].as_i64() > Some(0),
        "{answer}"
    );
    server.stop().await;
}

/// Two gateway processes on one PostgreSQL database: an alert written
/// through either reaches the subscribers of both, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_alerts_cross_gateway_processes_exactly_once() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    seed(&test_db).await;
    let service = test_db.key(ALPHA, Role::Service).await;
    let viewer = test_db.key(ALPHA, Role::Viewer).await;
    let first = Gateway::serving(&test_db.url, &[]).await;
    let second = Gateway::serving(&test_db.url, &[]).await;
    let since =
        first.data(&viewer, "{ driftAlertCursor }", json!({})).await["driftAlertCursor"].clone();
    let mut on_first = common::ws::open_to(&first.base, &viewer).await;
    let mut on_second = common::ws::open_to(&second.base, &viewer).await;
    for socket in [&mut on_first, &mut on_second] {
        subscribe(socket, "1", ALERTS, json!({"since": since})).await;
    }
    first
        .data(
            &service,
            RECORD,
            json!({"input": [metric("p1-1", "m-1", "CRITICAL", "DATA")]}),
        )
        .await;
    second
        .data(
            &service,
            RECORD,
            json!({"input": [metric("p2-1", "m-2", "WARNING", "DATA")]}),
        )
        .await;
    for socket in [&mut on_first, &mut on_second] {
        assert_eq!(alert(socket, "1").await["metricId"], "p1-1");
        assert_eq!(alert(socket, "1").await["metricId"], "p2-1");
        silent(socket, "an alert delivered twice").await;
    }
}

/// graphql-ws's own client (npm) receives an alert and reports a refused
/// key's close code. Needs Node and `npm ci` in tests/clients; CI requires it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_ws_client_receives_alerts() {
    let Some(clients) = common::node_clients("graphql-ws") else {
        return;
    };
    let test_db = TestDb::sqlite().await;
    seed(&test_db).await;
    let viewer = test_db.key(ALPHA, Role::Viewer).await;
    let service = test_db.key(ALPHA, Role::Service).await;
    let server = TestServer::start(test_db.config()).await;
    let output = tokio::process::Command::new("node")
        .arg(clients.join("ws-client.mjs"))
        .args([server.base.as_str(), &viewer, &service, "m-1"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "graphql-ws client failed:\n{stdout}"
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["alert"]["metricId"], "graphql-ws-1");
    assert_eq!(lines[0]["alert"]["level"], "CRITICAL");
    assert_eq!(lines[0]["alert"]["model"]["modelId"], "m-1");
    assert_eq!(lines[1]["refusedWith"], 4403);
    server.stop().await;
}
