//! Faults injected by the tests themselves: a full SQLite database (its
//! size capped with `max_page_count`), concurrent SQLite writers, pending
//! migrations, lost notifications, closing WebSockets and shutdown. What
//! was acknowledged is stored; what fails says so with a retryable code.

mod common;

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, insert_all, scoped_for};
use common::{count, TestDb, TestServer};

const ALPHA: &str = "alpha";

const RECORD: &str =
    "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count } }";

/// `n` predictions of model `m-1` with ids `{prefix}-0000…`, each with 20
/// SHAP values, so that a batch takes room.
fn batch(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "predictionId": format!("{prefix}-{i:04}"),
                    "resourceId": format!("res-{prefix}-{i}"),
                    "modelId": "m-1",
                    "violationProbability": 0.8,
                    "confidenceScore": 0.9,
                    "riskLevel": "HIGH",
                    "inferenceTimeMs": 12.5,
                    "predictionTimestamp": "2026-11-20T10:00:00Z",
                    "shapValues": (0..20).map(|f| json!({"feature": format!("feature_{f:02}_with_a_long_name"), "value": 0.01 * f as f64})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

async fn record(server: &TestServer, key: &str, input: &Value) -> (u16, Value, Option<String>) {
    record_at(&server.client, &server.url("/graphql"), key, input).await
}

/// [`record`] at the GraphQL endpoint `url`, of any gateway.
async fn record_at(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    input: &Value,
) -> (u16, Value, Option<String>) {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(&json!({"query": RECORD, "variables": {"input": input}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry_after)
}

/// At the database's size cap (SQLite `max_page_count`), writes are refused
/// with 503 `UNAVAILABLE` and `Retry-After`; no acknowledged write is lost,
/// none is acknowledged without being stored, later writes are seen by
/// other connections once there is room again, and no lock is left held.
/// (SQLite refuses these statement by statement; the whole-transaction
/// rollback that left connections in a false transaction is provoked by the
/// next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_loses_no_acknowledged_write() {
    let test_db = TestDb::sqlite().await;
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    {
        let db = test_db.connect().await;
        // Filler of another tenant, deleted later to make room.
        let beta = scoped_for(&test_db, &db, "beta").await;
        insert(&beta, fixtures::model("beta", "m-1")).await.unwrap();
        for chunk in 0..8 {
            let rows = (0..500).map(|i| {
                let mut row = fixtures::prediction("beta", &format!("filler-{chunk}-{i}"), "m-1");
                row.shap_values = sea_orm::ActiveValue::Set(Some(json!((0..20)
                    .map(|f| (
                        format!("feature_{f:02}_with_a_long_name"),
                        json!(0.01 * f as f64)
                    ))
                    .collect::<serde_json::Map<String, Value>>())));
                row
            });
            insert_all(&beta, rows.collect()).await.unwrap();
        }
        db.close().await.ok();
    }
    let raw = test_db.raw().await;
    let pages = count(&raw, "PRAGMA page_count").await as u64;
    let key = test_db.key(ALPHA, Role::Service).await;
    let mut config = test_db.config();
    // One MiB (and what rounding up to whole MiB leaves) above today's size.
    config.serve.db.sqlite_max_size_mb = Some((pages * 4096).div_ceil(1 << 20) + 1);
    let server = TestServer::start(config).await;

    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    for i in 0..40 {
        let name = format!("b{i:02}");
        let (status, body, retry_after) = record(&server, &key, &batch(&name, 100)).await;
        if status == 200 && body.get("errors").is_none() {
            assert_eq!(body["data"]["recordPredictions"]["count"], 100);
            acknowledged.push(name);
        } else {
            assert_eq!(status, 503, "{body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
                "{body}"
            );
            assert!(retry_after.is_some());
            refused.push(name);
        }
    }
    assert!(
        !acknowledged.is_empty() && refused.len() >= 5,
        "the cap was reached: {} acknowledged, {} refused",
        acknowledged.len(),
        refused.len()
    );
    // Single-row writes at the cap: SQLite rolls the whole transaction back
    // by itself for these (no statement journal), so the driver's own
    // ROLLBACK fails afterwards; the connection must not be reused.
    let job = |id: &str| {
        format!(
            r#"mutation {{ createTrainingJob(input: {{jobId: "{id}", modelType: "lstm", triggerReason: MANUAL, trainingConfig: {{notes: "{}"}}}}) {{ jobId }} }}"#,
            "x".repeat(40_000)
        )
    };
    let mut jobs_acknowledged = Vec::new();
    let mut jobs_refused = 0;
    for i in 0..30 {
        let id = format!("job-full-{i:02}");
        let (status, body) = server.graphql(&key, &job(&id)).await;
        if status == 200 && body.get("errors").is_none() {
            jobs_acknowledged.push(id);
        } else {
            assert_eq!(
                (status, body["errors"][0]["extensions"]["code"].as_str()),
                (503, Some("UNAVAILABLE")),
                "{body}"
            );
            jobs_refused += 1;
        }
    }
    assert!(jobs_refused > 0, "single writes reached the cap too");

    // Room again: the filler goes. Then more batches, and the refused ones again.
    raw.execute_unprepared("DELETE FROM ml_predictions WHERE tenant_id = 'beta'")
        .await
        .unwrap();
    for i in 40..46 {
        let name = format!("b{i:02}");
        let (status, body, _) = record(&server, &key, &batch(&name, 100)).await;
        assert_eq!(status, 200, "after room was made: {body}");
        acknowledged.push(name);
    }
    for i in 0..10 {
        let id = format!("job-after-{i:02}");
        let (status, body) = server.graphql(&key, &job(&id)).await;
        assert_eq!(status, 200, "a single write after room was made: {body}");
        jobs_acknowledged.push(id);
    }
    for name in refused.drain(..) {
        let (status, body, _) = record(&server, &key, &batch(&name, 100)).await;
        assert_eq!(status, 200, "a refused batch, retried: {body}");
        acknowledged.push(name);
    }
    // Every acknowledged batch is there, whole, for another connection.
    let fresh = test_db.raw().await;
    for name in &acknowledged {
        let stored = count(&fresh, &format!("SELECT COUNT(*) FROM ml_predictions WHERE tenant_id = 'alpha' AND prediction_id LIKE '{name}-%'")).await;
        assert_eq!(stored, 100, "batch {name} was acknowledged");
    }
    assert_eq!(
        count(
            &fresh,
            "SELECT COUNT(*) FROM ml_predictions WHERE tenant_id = 'alpha'"
        )
        .await,
        100 * acknowledged.len() as i64
    );
    for id in &jobs_acknowledged {
        let stored = count(&fresh, &format!("SELECT COUNT(*) FROM ml_training_jobs WHERE tenant_id = 'alpha' AND job_id = '{id}'")).await;
        assert_eq!(stored, 1, "job {id} was acknowledged");
    }
    // No write lock left held: another writer gets it at once.
    fresh.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
    fresh.execute_unprepared("ROLLBACK").await.unwrap();
    server.stop().await;
}

/// The same with a real write failure: the gateway's file size limit
/// (`RLIMIT_FSIZE`, lowered on the running process) makes SQLite's writes
/// fail as on a full disk; SQLite then rolls back the whole transaction by
/// itself and the driver's `ROLLBACK` fails. The limit is lifted again (room
/// again), and every acknowledged write must be there, for another
/// connection too, with no lock left held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_up_loses_no_acknowledged_write() {
    let test_db = TestDb::sqlite().await;
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let key = test_db.key(ALPHA, Role::Service).await;
    // Writes past the limit fail with EFBIG instead of killing the process.
    let gateway = common::Gateway::start(&test_db.url, &[], "trap '' XFSZ;", &[]).await;
    let client = reqwest::Client::new();
    let post = |query: &'static str, variables: Value| {
        let request = client
            .post(format!("{}/graphql", gateway.base))
            .bearer_auth(&key)
            .json(&json!({"query": query, "variables": variables}));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    const JOB: &str = "mutation($id: String!, $notes: String!) { createTrainingJob(input: {jobId: $id, modelType: \"lstm\", triggerReason: MANUAL, trainingConfig: {notes: $notes}}) { jobId } }";
    let mut batches = Vec::new();
    let mut jobs = Vec::new();
    let mut refused = (Vec::new(), Vec::new());
    let write_round = async |round: &str,
                             expect_ok: bool,
                             batches: &mut Vec<String>,
                             jobs: &mut Vec<String>,
                             refused: &mut (Vec<String>, Vec<String>)| {
        for i in 0..12 {
            let name = format!("{round}{i:02}");
            // Acknowledged, or refused as unavailable (and then not expected).
            let landed = |(status, body): (u16, Value)| {
                if status == 200 && body.get("errors").is_none() {
                    return true;
                }
                assert!(!expect_ok, "{body}");
                assert_eq!(
                    (status, body["errors"][0]["extensions"]["code"].as_str()),
                    (503, Some("UNAVAILABLE")),
                    "{body}"
                );
                false
            };
            if landed(post(RECORD, json!({"input": batch(&name, 100)})).await) {
                batches.push(name);
            } else {
                refused.0.push(name);
            }
            let id = format!("job-{round}{i:02}");
            if landed(post(JOB, json!({"id": id, "notes": "x".repeat(20_000)})).await) {
                jobs.push(id);
            } else {
                refused.1.push(id);
            }
        }
    };
    write_round("a", true, &mut batches, &mut jobs, &mut refused).await;
    // The disk fills: no file of the gateway may grow past its size now.
    let file = test_db
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let size = |path: &str| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let limit = size(&file).max(size(&format!("{file}-wal"))) + 64 * 1024;
    let (mut soft, mut hard) = (0, 0);
    rlimit::prlimit(
        gateway.pid(),
        rlimit::Resource::FSIZE,
        None,
        Some((&mut soft, &mut hard)),
    )
    .unwrap();
    rlimit::prlimit(
        gateway.pid(),
        rlimit::Resource::FSIZE,
        Some((limit, hard)),
        None,
    )
    .unwrap();
    write_round("b", false, &mut batches, &mut jobs, &mut refused).await;
    assert!(
        !refused.0.is_empty() || !refused.1.is_empty(),
        "the limit made writes fail"
    );
    // Room again.
    rlimit::prlimit(
        gateway.pid(),
        rlimit::Resource::FSIZE,
        Some((soft, hard)),
        None,
    )
    .unwrap();
    write_round("c", true, &mut batches, &mut jobs, &mut refused).await;
    // The refused writes, again: they land now.
    for name in std::mem::take(&mut refused.0) {
        let (status, body) = post(RECORD, json!({"input": batch(&name, 100)})).await;
        assert_eq!(status, 200, "{body}");
        batches.push(name);
    }
    for id in std::mem::take(&mut refused.1) {
        let (status, body) = post(JOB, json!({"id": id, "notes": "x".repeat(20_000)})).await;
        assert_eq!(status, 200, "{body}");
        jobs.push(id);
    }
    // Everything acknowledged is stored, as another connection sees it
    // while the gateway still runs.
    let fresh = test_db.raw().await;
    for name in &batches {
        let stored = count(
            &fresh,
            &format!("SELECT COUNT(*) FROM ml_predictions WHERE prediction_id LIKE '{name}-%'"),
        )
        .await;
        assert_eq!(stored, 100, "batch {name} was acknowledged");
    }
    for id in &jobs {
        let stored = count(
            &fresh,
            &format!("SELECT COUNT(*) FROM ml_training_jobs WHERE job_id = '{id}'"),
        )
        .await;
        assert_eq!(stored, 1, "job {id} was acknowledged");
    }
    fresh.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
    fresh.execute_unprepared("ROLLBACK").await.unwrap();
    drop(gateway);
}

/// Many writers queue for SQLite's single write lock: of one process (in
/// order, through the process's write queue), of two pools in this process,
/// and of a second `mlgate serve` process on the same file (through the
/// database's busy timeout). No write fails, none is `INTERNAL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sqlite_writers_queue_instead_of_failing() {
    let test_db = TestDb::sqlite().await;
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let key = test_db.key(ALPHA, Role::Service).await;
    let servers = [
        TestServer::start(test_db.config()).await,
        TestServer::start(test_db.config()).await,
    ];
    let other_process = common::Gateway::serving(&test_db.url, &[]).await;
    let bases = [
        servers[0].url("/graphql"),
        servers[1].url("/graphql"),
        format!("{}/graphql", other_process.base),
    ];
    let writers: Vec<_> = (0..18)
        .map(|w| {
            let (url, key) = (bases[w % 3].clone(), key.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut failures = Vec::new();
                for i in 0..5 {
                    let (status, body, _) =
                        record_at(&client, &url, &key, &batch(&format!("w{w:02}-{i}"), 50)).await;
                    if status != 200 || body.get("errors").is_some() {
                        failures.push(body);
                    }
                }
                failures
            })
        })
        .collect();
    for writer in writers {
        let failures = writer.await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }
    let raw = test_db.raw().await;
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM ml_predictions").await,
        18 * 5 * 50
    );
}

/// The notification listener's connection killed (`pg_terminate_backend`)
/// while alerts are written: each still reaches a subscriber, once, in
/// order, within the bound, and the gateway is ready again once it listens
/// anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_arrive_when_the_listener_connection_is_killed() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let viewer = test_db.key(ALPHA, Role::Viewer).await;
    let service = test_db.key(ALPHA, Role::Service).await;
    let server = TestServer::start(test_db.config()).await;
    let mut socket = common::ws::open(&server, &viewer).await;
    let since = server.alert_cursor(&viewer).await;
    common::ws::subscribe(&mut socket, "alerts", ALERTS, json!({"since": since})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw = test_db.raw().await;
    // The listener is the gateway's session whose last statement was LISTEN.
    let killed = count(
        &raw,
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await;
    assert_eq!(killed, 1, "one listener");
    let written = std::time::Instant::now();
    for id in ["gone-1", "gone-2", "gone-3"] {
        server
            .data(&service, RECORD_DRIFT, json!({"input": critical(id)}))
            .await;
    }
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let message = common::ws::next_within(&mut socket, Duration::from_secs(6))
            .await
            .unwrap()
            .expect("delivered within the bound");
        delivered.push(
            message["payload"]["data"]["driftAlerts"]["metricId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        delivered,
        ["gone-1", "gone-2", "gone-3"],
        "in order, once each"
    );
    assert!(
        written.elapsed() < Duration::from_secs(5),
        "{:?}",
        written.elapsed()
    );
    assert_eq!(
        common::ws::next_within(&mut socket, Duration::from_millis(3_500)).await,
        Ok(None),
        "no duplicate after a further sweep"
    );
    // Listening again: a new LISTEN session, and ready.
    let mut listening = false;
    for _ in 0..50 {
        let sessions = count(
            &raw,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await;
        let ready = server
            .client
            .get(server.url("/ready"))
            .send()
            .await
            .unwrap();
        if sessions == 1 && ready.status() == 200 {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(listening, "the listener came back and /ready says so");
    server.stop().await;
}

/// Ends the server sessions `pids` (`pg_terminate_backend`) and waits until
/// they are gone.
async fn terminate(raw: &sea_orm::DatabaseConnection, pids: &[i32]) {
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let ended = count(
        raw,
        &format!(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM unnest(ARRAY[{list}]::int[]) AS pid"
        ),
    )
    .await;
    assert_eq!(ended, pids.len() as i64, "every session signalled");
    let gone = format!("SELECT COUNT(*) FROM pg_stat_activity WHERE pid IN ({list})");
    for _ in 0..100 {
        if count(raw, &gone).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sessions {list} still there");
}

/// Waits until `n` connections of `db`'s main pool are idle in it.
async fn idle(db: &server::db::Database, n: u32) {
    for _ in 0..100 {
        if db.connections_idle() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} connections idle, not {n}", db.connections_idle());
}

/// The PostgreSQL session a transaction runs on.
async fn pid_of(txn: &server::db::ScopedTxn) -> i32 {
    let query = sea_orm::Statement::from_string(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_backend_pid() AS pid",
    );
    let row = txn.conn().query_one_raw(query).await.unwrap().unwrap();
    row.try_get::<i32>("", "pid").unwrap()
}

/// Pooled connections whose server sessions were ended while they sat idle
/// (an administrator, a restart, a proxy): the next transactions, the
/// readiness probe and key lookups run on new connections, and no request
/// sees the broken ones. Connections are pinged before they are handed
/// out only after they idled (`connection_ping_idle`; here never): a
/// `BEGIN`, a key lookup or a readiness check that finds one broken is
/// sent again on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_ended_are_replaced_before_a_request_fails() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let raw = test_db.raw().await;
    // Never pinged (an hour's idleness): only sending again can save a
    // request from a broken connection.
    let settings = server::db::DbSettings {
        connection_ping_idle: Duration::from_secs(3_600),
        tenant_share_percent: 100,
        auth_connections: 0,
        ..server::db::DbSettings::new(test_db.url.clone(), 3)
    };
    let db = server::db::Database::connect_with(&settings).await.unwrap();
    let scoped = scoped_for(&test_db, &db, ALPHA).await;
    let held =
        futures_util::future::join_all((0..3).map(|_| scoped.begin_as(server::db::TxnKind::Read)))
            .await;
    let held: Vec<_> = held.into_iter().map(Result::unwrap).collect();
    let mut pids = Vec::new();
    for txn in &held {
        pids.push(pid_of(txn).await);
    }
    for txn in held {
        txn.commit().await.unwrap();
    }
    // Back in the pool first (sqlx pings each as it returns: a session
    // ended before that ping would be found by sqlx, not by a statement).
    idle(&db, 3).await;
    terminate(&raw, &pids).await;
    assert_eq!(db.broken_connections(), 0);
    // Readiness tries the three broken connections, then opens a new one.
    db.ping().await.expect("ready on a new connection");
    assert_eq!(
        db.broken_connections(),
        3,
        "each broken connection found once"
    );
    let txn = scoped
        .begin_write()
        .await
        .expect("a transaction on a live connection");
    assert!(!pids.contains(&pid_of(&txn).await));
    txn.commit().await.unwrap();
    db.close().await.unwrap();
    // A transaction first, on a pool of one connection (a larger pool may
    // hand out another while the last one is still coming back).
    let db = server::db::Database::connect_with(&server::db::DbSettings {
        max_connections: 1,
        ..settings
    })
    .await
    .unwrap();
    let scoped = scoped_for(&test_db, &db, ALPHA).await;
    let txn = scoped.begin_write().await.unwrap();
    let pid = pid_of(&txn).await;
    txn.commit().await.unwrap();
    idle(&db, 1).await;
    terminate(&raw, &[pid]).await;
    let txn = scoped
        .begin_as(server::db::TxnKind::Read)
        .await
        .expect("a read on a live connection");
    assert_ne!(pid_of(&txn).await, pid);
    txn.commit().await.unwrap();
    assert_eq!(db.broken_connections(), 1);
    db.close().await.unwrap();

    // Through the gateway, never pinging either: queries, a write, key
    // lookups (the test server caches no key) and readiness right after
    // every session of the gateway was ended.
    let viewer = test_db.key(ALPHA, Role::Viewer).await;
    let service = test_db.key(ALPHA, Role::Service).await;
    let mut config = test_db.config();
    config.serve.db.db_ping_idle_ms = 3_600_000;
    let server = TestServer::start(config).await;
    let models = "{ models { totalCount } }";
    for round in 0..2 {
        let warm =
            futures_util::future::join_all((0..4).map(|_| server.data(&viewer, models, json!({}))))
                .await;
        assert_eq!(warm[0]["models"]["totalCount"], 1);
        // All but the notification listener's, which it keeps.
        idle(&server.db, server.db.connections_open() - 1).await;
        let gateway: Vec<i32> = raw
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
                 AND query NOT LIKE 'LISTEN%'",
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<i32>("", "pid").unwrap())
            .collect();
        assert!(gateway.len() >= 2, "the gateway's pools: {gateway:?}");
        terminate(&raw, &gateway).await;
        let broken = server.db.broken_connections();
        let answers =
            futures_util::future::join_all((0..4).map(|_| server.data(&viewer, models, json!({}))))
                .await;
        assert!(answers.iter().all(|data| data["models"]["totalCount"] == 1));
        server
            .data(
                &service,
                RECORD_DRIFT,
                json!({"input": critical(&format!("ended-{round}"))}),
            )
            .await;
        let ready = server
            .client
            .get(server.url("/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        assert!(
            server.db.broken_connections() > broken,
            "found by statements, not pings"
        );
    }
    server.stop().await;
}

const ALERTS: &str = "subscription($since: String) { driftAlerts(since: $since) { metricId } }";
const RECORD_DRIFT: &str =
    "mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }";

/// A drift metric of `m-1` critical under the default thresholds.
fn critical(id: &str) -> Value {
    json!([{"metricId": id, "modelId": "m-1", "driftType": "DATA", "driftScore": 0.4, "psiScore": 0.4}])
}

/// The binary's `migrate` command on `test_db`.
fn migrate(test_db: &TestDb, args: &[&str]) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mlgate"))
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", &test_db.url)
        .status()
        .unwrap();
    assert!(status.success(), "migrate {args:?}");
}

/// Which server session (PostgreSQL backend, SQLite connection) a
/// transaction of `scoped` runs on: a PostgreSQL backend's pid; on SQLite a
/// random mark kept in a temporary table, which only its connection sees.
async fn session_of(scoped: &server::db::Scoped) -> String {
    let txn = scoped.begin_write().await.unwrap();
    let conn = txn.conn();
    let backend = conn.get_database_backend();
    let query = |sql: &str| sea_orm::Statement::from_string(backend, sql.to_owned());
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT pg_backend_pid()::text AS v",
        _ => {
            for sql in [
                "CREATE TEMP TABLE IF NOT EXISTS session_mark (v TEXT)",
                "INSERT INTO session_mark SELECT lower(hex(randomblob(8))) \
                 WHERE NOT EXISTS (SELECT 1 FROM session_mark)",
            ] {
                conn.execute_raw(query(sql)).await.unwrap();
            }
            "SELECT v FROM session_mark"
        }
    };
    let row = conn.query_one_raw(query(sql)).await.unwrap().unwrap();
    let session: String = row.try_get("", "v").unwrap();
    txn.commit().await.unwrap();
    session
}

backend_tests! {
    async fn pooled_connections_are_retired_by_age_and_by_idleness(test_db: TestDb) {
        // sqlx's own sweep is off (it can spin forever, sqlx#3645): the
        // pool applies both limits when it hands a connection out.
        let settings = |lifetime: u64, idle: u64| server::db::DbSettings {
            connection_lifetime: Duration::from_millis(lifetime),
            connection_idle: Duration::from_millis(idle),
            auth_connections: 0,
            ..server::db::DbSettings::new(test_db.url.clone(), 1)
        };
        // By age: reused while young, however busy; replaced once old.
        let db = server::db::Database::connect_with(&settings(1_500, 60_000)).await.unwrap();
        let scoped = scoped_for(&test_db, &db, ALPHA).await;
        let first = session_of(&scoped).await;
        assert_eq!(session_of(&scoped).await, first, "a young connection is reused");
        let until = std::time::Instant::now() + Duration::from_millis(1_700);
        while std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = session_of(&scoped).await;
        }
        assert_ne!(session_of(&scoped).await, first, "an old connection is retired");
        db.close().await.unwrap();
        // By idleness: replaced after a pause longer than the idle limit.
        let db = server::db::Database::connect_with(&settings(60_000, 500)).await.unwrap();
        let scoped = scoped_for(&test_db, &db, ALPHA).await;
        let first = session_of(&scoped).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(session_of(&scoped).await, first, "a briefly idle connection is reused");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_ne!(session_of(&scoped).await, first, "an idle connection is retired");
        db.close().await.unwrap();
    }

    async fn pools_shrink_to_what_they_are_used_for(test_db: TestDb) {
        // sqlx's idle sweep is off (sqlx#3645); mlgate's reaper closes, once
        // per idle period, the connections beyond the most in use at once.
        let settings = server::db::DbSettings {
            connection_idle: Duration::from_millis(400),
            tenant_share_percent: 100,
            auth_connections: 0,
            ..server::db::DbSettings::new(test_db.url.clone(), 4)
        };
        let db = server::db::Database::connect_with(&settings).await.unwrap();
        let scoped = scoped_for(&test_db, &db, ALPHA).await;
        // A burst holds four connections at once.
        let burst = futures_util::future::join_all((0..4).map(|_| scoped.begin_as(server::db::TxnKind::Read))).await;
        for txn in burst {
            txn.unwrap().commit().await.unwrap();
        }
        assert_eq!(db.connections_open(), 4);
        // Light use after it: the pool shrinks to one connection and keeps it.
        let (scoped, db) = (&scoped, &db);
        let until = |open: u32| async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let session = session_of(scoped).await;
                if db.connections_open() == open {
                    return session;
                }
                assert!(std::time::Instant::now() < deadline, "{} connections open", db.connections_open());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let kept = until(1).await;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(session_of(scoped).await, kept, "the one connection in use is kept");
        }
        // Unused for a period: none left.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db.connections_open() > 0 {
            assert!(std::time::Instant::now() < deadline, "{} connections open", db.connections_open());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        db.clone().close().await.unwrap();
    }

    async fn alerts_arrive_when_notifications_are_lost(test_db: TestDb) {
        fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let subscribed_to = TestServer::start(test_db.config()).await;
        // The alert is written through another gateway process's pool. On
        // PostgreSQL its notification is suppressed (the trigger disabled);
        // SQLite has none across processes. Only the periodic look at the
        // outbox can deliver it.
        let writer = TestServer::start(test_db.config()).await;
        let raw = test_db.raw().await;
        if test_db.backend == sea_orm::DbBackend::Postgres {
            raw.execute_unprepared("ALTER TABLE mlgate_alert_events DISABLE TRIGGER mlgate_alert_events_notify").await.unwrap();
        }
        let mut socket = common::ws::open(&subscribed_to, &viewer).await;
        let since = subscribed_to.data(&viewer, "{ driftAlertCursor }", json!({})).await["driftAlertCursor"].clone();
        common::ws::subscribe(&mut socket, "alerts", ALERTS, json!({"since": since})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let written = std::time::Instant::now();
        for id in ["lost-1", "lost-2"] {
            writer.data(&service, RECORD_DRIFT, json!({"input": critical(id)})).await;
        }
        let mut delivered = Vec::new();
        while delivered.len() < 2 {
            let message = common::ws::next_within(&mut socket, Duration::from_secs(6)).await.unwrap().expect("delivered within the bound");
            delivered.push(message["payload"]["data"]["driftAlerts"]["metricId"].as_str().unwrap().to_owned());
        }
        assert_eq!(delivered, ["lost-1", "lost-2"], "in order, once each");
        assert!(written.elapsed() < Duration::from_secs(5), "{:?}", written.elapsed());
        assert_eq!(common::ws::next_within(&mut socket, Duration::from_millis(3_500)).await, Ok(None), "no duplicate after a further sweep");
        if test_db.backend == sea_orm::DbBackend::Postgres {
            raw.execute_unprepared("ALTER TABLE mlgate_alert_events ENABLE TRIGGER mlgate_alert_events_notify").await.unwrap();
        }
        writer.stop().await;
        subscribed_to.stop().await;
    }

    async fn pending_migrations_are_not_served(test_db: TestDb) {
        let server = TestServer::start(test_db.config()).await;
        let ready = || async { server.client.get(server.url("/ready")).send().await.unwrap() };
        assert_eq!(ready().await.status(), 200);
        migrate(&test_db, &["down", "--steps", "1", "--yes"]);
        let response = ready().await;
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.unwrap();
        assert!(body["status"].as_str().unwrap().starts_with("migrations pending"), "{body}");
        // verify-schema says so too, and fails.
        let verify = std::process::Command::new(env!("CARGO_BIN_EXE_mlgate"))
            .arg("verify-schema")
            .env("DATABASE_URL", &test_db.url)
            .output()
            .unwrap();
        assert!(!verify.status.success());
        let printed = String::from_utf8_lossy(&verify.stdout);
        assert!(printed.contains("MISSING/WRONG: migration m2026"), "{printed}");
        assert!(printed.contains("(run `mlgate migrate up`)"), "{printed}");
        // A server told not to migrate refuses to start on that schema.
        let mut config = test_db.config();
        config.serve.no_migrate = true;
        let refused = server::Application::build(config).await.err().expect("refused");
        assert!(refused.to_string().contains("pending"), "{refused}");
        migrate(&test_db, &["up"]);
        assert_eq!(ready().await.status(), 200);
        server.stop().await;
    }

    async fn websocket_closes_are_answered_and_shutdown_says_going_away(test_db: TestDb) {
        let key = test_db.key(ALPHA, Role::Viewer).await;
        let gateway = common::Gateway::start(&test_db.url, &["--shutdown-grace-secs", "5"], "", &[]).await;
        // A client's close gets the closing handshake's answer.
        let mut socket = common::ws::open_to(&gateway.base, &key).await;
        use futures_util::SinkExt;
        socket.send(tokio_tungstenite::tungstenite::Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "bye".into(),
        }))).await.unwrap();
        assert_eq!(common::ws::next(&mut socket).await, Err(Some(1000)), "answered, not dropped (1006)");
        // SIGTERM: subscribers hear 1001, then the process exits within its grace.
        let mut subscriber = common::ws::open_to(&gateway.base, &key).await;
        common::ws::subscribe(&mut subscriber, "alerts", ALERTS, json!({})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut gateway = gateway;
        let stopped = std::process::Command::new("kill").args(["-TERM", &gateway.pid().to_string()]).status().unwrap();
        assert!(stopped.success());
        assert_eq!(common::ws::next(&mut subscriber).await, Err(Some(1001)));
        let exit = tokio::time::timeout(Duration::from_secs(6), gateway.child.wait()).await.expect("exits within its grace").unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

/// A free TCP port (nothing listens on it once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// PostgreSQL down at start: the gateway retries with backoff, becomes
/// ready once the database answers, and otherwise exits with the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_at_start_is_retried_then_reported() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    let port = free_port();
    let (url, target) = common::via_port(&test_db.url, port);
    // Nothing answers: the process exits, saying why.
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mlgate"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--db-connect-retry-secs",
                "2",
            ])
            .env("DATABASE_URL", &url)
            .output(),
    )
    .await
    .expect("gave up in time")
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused"), "the real cause: {stderr}");
    // The database appears while the gateway retries: it becomes ready.
    let starting = tokio::spawn({
        let url = url.clone();
        async move { common::Gateway::start(&url, &["--db-connect-retry-secs", "30"], "", &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _proxy = common::Proxy::start(port, target).await;
    let gateway = tokio::time::timeout(Duration::from_secs(20), starting)
        .await
        .expect("ready once the database answers")
        .unwrap();
    // Readiness also waits for the notification listener, which connects
    // beside the server: probed as a probe would, within a bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = reqwest::get(format!("{}/ready", gateway.base))
            .await
            .unwrap();
        let status = ready.status();
        let body = ready.text().await.unwrap();
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A network path to the database that silently stops forwarding: requests
/// end by their deadline (504, or 503 while credentials cannot be checked)
/// instead of hanging, and SIGTERM still exits within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_database_ends_requests_by_their_deadline() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    let key = test_db.key(ALPHA, Role::Viewer).await;
    let (proxy, url) = common::Proxy::in_front_of(&test_db.url).await;
    let mut gateway = common::Gateway::start(
        &url,
        &["--request-timeout-ms", "1500", "--shutdown-grace-secs", "3"],
        "",
        &[],
    )
    .await;
    let client = reqwest::Client::new();
    let query = || {
        client
            .post(format!("{}/graphql", gateway.base))
            .bearer_auth(&key)
            .json(&json!({"query": "{ models { totalCount } }"}))
            .send()
    };
    assert_eq!(query().await.unwrap().status(), 200);
    proxy.blackhole();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(10), query())
            .await
            .expect("the request ended")
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 503 | 504),
            "{}",
            response.status()
        );
        assert!(response.headers().contains_key("retry-after") || response.status() == 504);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
    let asked = std::time::Instant::now();
    let ready = tokio::time::timeout(
        Duration::from_secs(3),
        reqwest::get(format!("{}/ready", gateway.base)),
    )
    .await
    .expect("readiness answers")
    .unwrap();
    // Its own bound is 1 s; the margin is for a loaded test machine.
    assert!(
        asked.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(ready.status(), 503);
    let started = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &gateway.pid().to_string()])
        .status()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), gateway.child.wait())
        .await
        .expect("exits despite stuck connections")
        .unwrap();
    // The grace period (3 s) bounds the whole exit, stuck pool included; the
    // margin is for the process's own teardown.
    assert!(
        started.elapsed() < Duration::from_millis(4_000),
        "{:?}",
        started.elapsed()
    );
}

/// PostgreSQL unreachable (stopped, then back): API-key, JWT and WebSocket
/// callers are told 503 with `Retry-After` (WebSocket: close 1013), never
/// 401/4403, within the acquire timeout; once the database is back, the
/// same credentials work without restarting the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_never_401_and_heals() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let key = test_db.key(ALPHA, Role::Viewer).await;
    const SECRET: &[u8] = b"test-secret-with-enough-entropy-0123456789";
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "dash", "tenant_id": ALPHA, "role": "viewer", "exp": chrono::Utc::now().timestamp() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let (proxy, url) = common::Proxy::in_front_of(&test_db.url).await;
    let gateway = common::Gateway::start(
        &url,
        &["--db-acquire-timeout-ms", "1000"],
        "",
        &[("MLGATE_JWT_SECRET", std::str::from_utf8(SECRET).unwrap())],
    )
    .await;
    let client = reqwest::Client::new();
    let query = |token: &str| {
        client
            .post(format!("{}/graphql", gateway.base))
            .bearer_auth(token)
            .json(&json!({"query": "{ models { totalCount } }"}))
            .send()
    };
    for token in [&key, &jwt] {
        assert_eq!(query(token).await.unwrap().status(), 200);
    }
    proxy.down();
    let down = std::time::Instant::now();
    for (what, token) in [("API key", &key), ("JWT", &jwt)] {
        let started = std::time::Instant::now();
        let response = query(token).await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 503, "{what}: {body}");
        assert!(retry_after, "{what}");
        let code = body["errors"][0]["extensions"]["code"].as_str().unwrap();
        assert!(
            matches!(code, "UNAVAILABLE" | "OVERLOADED"),
            "{what}: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{what}: {:?}",
            started.elapsed()
        );
    }
    // The key was verified moments ago: the credential cache (on by
    // default) may still vouch for it until the listener's last heartbeat
    // is 3 s old, and a socket opened meanwhile is accepted. After that it
    // needs the database.
    loop {
        let mut socket =
            common::ws::connect_to(&gateway.base, "/graphql/ws", Some(common::ws::PROTOCOL))
                .await
                .unwrap();
        common::ws::send(
            &mut socket,
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}}),
        )
        .await;
        let answer = common::ws::next(&mut socket).await;
        if answer
            .as_ref()
            .is_ok_and(|ack| ack["type"] == "connection_ack")
            && down.elapsed() < Duration::from_millis(3_500)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(answer, Err(Some(1013)), "try again later, not forbidden");
        break;
    }
    let ready = reqwest::get(format!("{}/ready", gateway.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    // Back: the same credentials work, without a restart.
    proxy.forward();
    let started = std::time::Instant::now();
    loop {
        let statuses = [
            query(&key).await.unwrap().status(),
            query(&jwt).await.unwrap().status(),
        ];
        if statuses.iter().all(|s| *s == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not healed: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let socket = common::ws::open_to(&gateway.base, &key).await;
    drop(socket);
}
