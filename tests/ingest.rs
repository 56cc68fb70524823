//! Bulk ingestion (`POST /ingest/predictions`), on both backends: a load is
//! written whole or not at all; retried and concurrent identical loads leave
//! one row per id; a changed payload, an invalid line anywhere, an unknown
//! model or a body cut off mid-stream write nothing, and the answer names
//! the lines; the rollups equal a rebuild after bulk loads; credentials,
//! roles, tenants and bounds apply as for `recordPredictions`.

mod common;

use std::io::Write as _;
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use server::auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::fixtures::{self, insert, scoped_for};
use common::{count, TestDb, TestServer};

const ALPHA: &str = "alpha";
const BETA: &str = "beta";

/// A valid prediction line of `model`, with attention on every third and a
/// fixed timestamp, so it can be sent again as the very same write.
fn prediction(n: usize, prefix: &str, model: &str) -> Value {
    let risk = ["LOW", "MEDIUM", "HIGH", "CRITICAL"][n % 4];
    let mut line = json!({
        "predictionId": format!("{prefix}-{n:05}"),
        "resourceId": format!("res-{}", n % 37),
        "modelId": model,
        "violationProbability": (n % 100) as f64 / 100.0,
        "confidenceScore": 0.9,
        "confidenceInterval": {"lower": 0.75, "upper": 0.87},
        "riskLevel": risk,
        "riskScore": 0.5,
        "recommendations": ["rotate keys", "say \"hi\"\t\\ ok"],
        "shapValues": (0..20).map(|f| json!({"feature": format!("f{f}"), "value": (f as f64 - 9.5) / 100.0})).collect::<Vec<_>>(),
        "shapBaseValue": 0.05,
        "inferenceTimeMs": 12.5,
        "timeToViolationHours": 36.25,
        "predictionTimestamp": format!("2026-11-20T{:02}:{:02}:00.123456Z", n / 60 % 24, n % 60),
        "impactFactors": {"exposure": "public", "nested": {"a": [1, 2.5, null]}},
    });
    if n.is_multiple_of(3) {
        line["attentionWeights"] = json!([[0.25, 0.75], [0.5, 0.5]]);
    }
    line
}

fn ndjson(lines: impl IntoIterator<Item = Value>) -> String {
    lines
        .into_iter()
        .map(|line| line.to_string() + "\n")
        .collect()
}

fn load(prefix: &str, n: usize, model: &str) -> String {
    ndjson((0..n).map(|i| prediction(i, prefix, model)))
}

async fn post(server: &TestServer, key: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    post_to(server, "/ingest/predictions", key, body).await
}

async fn post_to(
    server: &TestServer,
    path: &str,
    key: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = server
        .client
        .post(server.url(path))
        .bearer_auth(key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// A drift metric line: every third CRITICAL by PSI (an alert), every
/// third WARNING by KS (an alert), the rest INFO (no alert).
fn drift_metric(n: usize, prefix: &str, model: &str) -> Value {
    let (psi, ks) = match n % 3 {
        0 => (0.3, 0.01),
        1 => (0.01, 0.15),
        _ => (0.05, 0.01),
    };
    let drift_type = ["DATA", "CONCEPT", "PREDICTION"][n % 3];
    json!({
        "metricId": format!("{prefix}-{n:05}"),
        "modelId": model,
        "resourceId": format!("res-{}", n % 7),
        "driftType": drift_type,
        "driftScore": 0.25,
        "psiScore": psi,
        "ksStatistic": ks,
        "measuredAt": format!("2026-11-20T{:02}:{:02}:00Z", n / 60 % 24, n % 60),
        "featureContributions": [{"feature": "cpu", "value": 0.5}, {"feature": "mem", "value": -0.25}],
    })
}

fn drift_load(prefix: &str, n: usize, model: &str) -> String {
    ndjson((0..n).map(|i| drift_metric(i, prefix, model)))
}

/// (line, field) of every problem an answer lists.
fn problems(body: &Value) -> Vec<(u64, String)> {
    body["errors"][0]["extensions"]["problems"]
        .as_array()
        .map(|problems| {
            problems
                .iter()
                .map(|p| {
                    (
                        p["line"].as_u64().unwrap_or(0),
                        p["field"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// A server over a database where `alpha` has model `m-1` (version 1.0.0).
async fn server_with_model(
    test_db: &TestDb,
    configure: impl FnOnce(&mut server::config::Config),
) -> TestServer {
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, ALPHA).await;
    insert(&scoped, fixtures::model(ALPHA, "m-1"))
        .await
        .unwrap();
    let mut config = test_db.config();
    configure(&mut config);
    TestServer::start(config).await
}

const READ: &str = r#"query($id: String!) { prediction(predictionId: $id) {
    predictionId resourceId modelId modelVersion violationProbability confidenceScore
    confidenceInterval { lower upper } riskLevel riskScore recommendations
    shapValues { feature value } shapBaseValue attentionWeights { raw }
    inferenceTimeMs predictionTimestamp timeToViolationHours impactFactors
} }"#;

backend_tests! {
    async fn a_load_is_written_once_and_a_retry_only_counts_duplicates(test_db: TestDb) {
        let server = server_with_model(&test_db, |_| {}).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        // About 2 MB: more than one COPY chunk on PostgreSQL.
        let body = load("p", 2500, "m-1");
        assert!(body.len() > 2 * 1024 * 1024 - 300_000, "{}", body.len());

        let (status, answer) = post(&server, &key, body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({"predictions": 2500, "inserted": 2500, "duplicates": 0}));
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 2500);

        // Stored exactly as the GraphQL mutation stores it.
        let read = server.data(&key, READ, json!({"id": "p-00003"})).await;
        let stored = &read["prediction"];
        assert_eq!(stored["modelVersion"], "1.0.0", "defaults to the model's version");
        assert_eq!(stored["violationProbability"], 0.03);
        assert_eq!(stored["riskLevel"], "CRITICAL");
        assert_eq!(stored["confidenceInterval"], json!({"lower": 0.75, "upper": 0.87}));
        assert_eq!(stored["recommendations"], json!(["rotate keys", "say \"hi\"\t\\ ok"]));
        assert_eq!(stored["shapValues"].as_array().unwrap().len(), 20);
        assert_eq!(stored["shapBaseValue"], 0.05);
        assert_eq!(stored["attentionWeights"]["raw"], json!([[0.25, 0.75], [0.5, 0.5]]));
        assert_eq!(stored["predictionTimestamp"], "2026-11-20T00:03:00.123456+00:00");
        assert_eq!(stored["timeToViolationHours"], 36.25);
        assert_eq!(stored["impactFactors"], json!({"exposure": "public", "nested": {"a": [1, 2.5, null]}}));

        let (status, retry) = post(&server, &key, body).await;
        assert_eq!(status, 200, "{retry}");
        assert_eq!(retry, json!({"predictions": 2500, "inserted": 0, "duplicates": 2500}));
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 2500);

        // A load mixing stored and new ids writes only the new ones; the
        // GraphQL mutation sees the bulk rows as the same writes.
        let mixed = load("p", 10, "m-1") + &load("q", 5, "m-1");
        let (status, answer) = post(&server, &key, mixed).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({"predictions": 15, "inserted": 5, "duplicates": 10}));
        let again = json!({ "input": [prediction(7, "p", "m-1")] });
        let recorded = server
            .data(&key, "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count } }", again)
            .await;
        assert_eq!(recorded["recordPredictions"]["count"], 1);
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 2505);
        server.stop().await;
    }

    async fn concurrent_identical_loads_leave_one_row_per_id(test_db: TestDb) {
        let server = server_with_model(&test_db, |_| {}).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let body = load("c", 1500, "m-1");
        let send = || post(&server, &key, body.clone());
        let (a, b, c) = tokio::join!(send(), send(), send());
        let mut inserted = 0;
        for (status, answer) in [&a, &b, &c] {
            assert_eq!(*status, 200, "{answer}");
            assert_eq!(answer["predictions"], 1500);
            assert_eq!(answer["inserted"].as_u64().unwrap() + answer["duplicates"].as_u64().unwrap(), 1500);
            inserted += answer["inserted"].as_u64().unwrap();
        }
        assert_eq!(inserted, 1500, "each id written by exactly one load");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 1500);
        server.stop().await;
    }

    async fn a_changed_payload_is_refused_with_its_line_and_nothing_is_written(test_db: TestDb) {
        let server = server_with_model(&test_db, |_| {}).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let (status, _) = post(&server, &key, load("p", 20, "m-1")).await;
        assert_eq!(status, 200);

        let mut lines: Vec<Value> = (0..20).map(|i| prediction(i, "p", "m-1")).collect();
        lines[6]["violationProbability"] = json!(0.99);
        lines[12]["recommendations"] = json!(["something else"]);
        lines.push(prediction(0, "new", "m-1"));
        let (status, answer) = post(&server, &key, ndjson(lines)).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(code(&answer), "CONFLICT");
        assert_eq!(
            problems(&answer),
            vec![(7, "violationProbability".to_owned()), (13, "recommendations".to_owned())]
        );
        assert_eq!(answer["errors"][0]["extensions"]["problems"][0]["id"], "p-00006");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 20, "the new line was not written either");

        // A line leaving the timestamp (or version) to the server repeats
        // a stored write whatever the server filled in.
        let mut defaulted = prediction(3, "p", "m-1");
        defaulted.as_object_mut().unwrap().remove("predictionTimestamp");
        let (status, answer) = post(&server, &key, ndjson([defaulted])).await;
        assert_eq!((status, &answer["duplicates"]), (200, &json!(1)), "{answer}");
        server.stop().await;
    }

    async fn an_invalid_line_anywhere_writes_nothing_and_every_line_is_named(test_db: TestDb) {
        let server = server_with_model(&test_db, |_| {}).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let mut lines: Vec<String> = (0..3000).map(|i| prediction(i, "v", "m-1").to_string()).collect();
        // Far enough in that PostgreSQL has already copied a chunk.
        let mut bad = prediction(2499, "v", "m-1");
        bad["violationProbability"] = json!(2.0);
        bad["confidenceInterval"] = json!({"lower": 0.9, "upper": 0.1});
        lines[2499] = bad.to_string();
        lines[2600] = "{\"predictionId\": \"broken\"".into();
        lines[2700] = prediction(5, "v", "m-1").to_string();
        let mut wrong_enum = prediction(2799, "v", "m-1");
        wrong_enum["riskLevel"] = json!("SEVERE");
        lines[2799] = wrong_enum.to_string();
        let mut unknown = prediction(2899, "v", "m-1");
        unknown["tenantId"] = json!(BETA);
        lines[2899] = unknown.to_string();
        let body = lines.join("\n") + "\n";
        let (status, answer) = post(&server, &key, body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(code(&answer), "BAD_USER_INPUT");
        assert_eq!(
            problems(&answer),
            vec![
                (2500, "violationProbability".to_owned()),
                (2500, "confidenceInterval".to_owned()),
                (2601, String::new()),
                (2701, "predictionId".to_owned()),
                (2800, "riskLevel".to_owned()),
                (2900, "tenantId".to_owned()),
            ]
        );
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("nothing was written: line 2500: violationProbability"), "{message}");
        assert!(answer["errors"][0]["extensions"]["problems"][3]["message"].as_str().unwrap().contains("first at line 6"), "{answer}");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);

        // Unknown models: 404, by line, nothing written.
        let body = load("u", 5, "m-1") + &ndjson([prediction(9, "u", "m-404")]);
        let (status, answer) = post(&server, &key, body).await;
        assert_eq!(status, 404, "{answer}");
        assert_eq!(problems(&answer), vec![(6, "modelId".to_owned())]);
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);
        server.stop().await;
    }

    async fn a_body_cut_off_mid_stream_writes_nothing(test_db: TestDb) {
        let server = server_with_model(&test_db, |_| {}).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let body = load("cut", 3000, "m-1");
        let address = server.base.trim_start_matches("http://").to_owned();

        // Announced longer than sent, then the connection closes; and a
        // chunked body without its last chunk.
        // Cut at the end of a line: every line received is a valid one.
        let cut = body[..body.len() * 3 / 4].rfind('\n').unwrap() + 1;
        let sent = &body[..cut];
        let by_length = format!(
            "POST /ingest/predictions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n{sent}",
            body.len()
        );
        let chunked = format!(
            "POST /ingest/predictions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{sent}\r\n",
            sent.len()
        );
        for request in [by_length, chunked] {
            let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
            socket.write_all(request.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
            // Long enough for the server to have staged what it received.
            tokio::time::sleep(Duration::from_millis(500)).await;
            socket.shutdown().await.unwrap();
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
            let answer = String::from_utf8_lossy(&answer);
            assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);

        // The connections the broken loads held are usable again.
        let (status, answer) = post(&server, &key, load("after", 10, "m-1")).await;
        assert_eq!((status, &answer["inserted"]), (200, &json!(10)), "{answer}");
        server.stop().await;
    }

    async fn credentials_roles_and_tenants_apply_as_for_the_mutation(test_db: TestDb) {
        let server = server_with_model(&test_db, |_| {}).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let beta = test_db.key(BETA, Role::Admin).await;
        let body = load("t", 5, "m-1");

        let anonymous = server
            .client
            .post(server.url("/ingest/predictions"))
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
        let (status, answer) = post(&server, "mlg_not_a_key", body.clone()).await;
        assert_eq!((status, code(&answer)), (401, "UNAUTHENTICATED"), "{answer}");
        let (status, answer) = post(&server, &viewer, body.clone()).await;
        assert_eq!((status, code(&answer)), (403, "FORBIDDEN"), "{answer}");
        // Another tenant cannot reach alpha's model, whatever the lines say.
        let (status, answer) = post(&server, &beta, body.clone()).await;
        assert_eq!((status, code(&answer)), (404, "NOT_FOUND"), "{answer}");
        assert_eq!(test_db.rows("ml_predictions", BETA).await, 0);

        let (status, _) = post(&server, &service, body.clone()).await;
        assert_eq!(status, 200);
        // Beta's own model with the same prediction ids: its own rows.
        let db = test_db.connect().await;
        insert(&scoped_for(&test_db, &db, BETA).await, fixtures::model(BETA, "m-1")).await.unwrap();
        let (status, answer) = post(&server, &beta, body).await;
        assert_eq!((status, &answer["inserted"]), (200, &json!(5)), "{answer}");
        assert_eq!((test_db.rows("ml_predictions", ALPHA).await, test_db.rows("ml_predictions", BETA).await), (5, 5));
        server.stop().await;
    }

    async fn bodies_and_lines_are_bounded_and_compressed_bodies_are_read(test_db: TestDb) {
        let server = server_with_model(&test_db, |config| {
            config.serve.ingest.ingest_max_bytes = 200_000;
            config.serve.ingest.ingest_max_line_bytes = 2_000;
        })
        .await;
        let key = test_db.key(ALPHA, Role::Service).await;

        let (status, answer) = post(&server, &key, load("big", 400, "m-1")).await;
        assert_eq!(status, 413, "{answer}");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);

        let mut long = prediction(1, "long", "m-1");
        long["featuresUsed"] = json!("x".repeat(3000));
        let body = load("long", 1, "m-1") + &ndjson([long]);
        let (status, answer) = post(&server, &key, body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(problems(&answer), vec![(2, String::new())]);
        assert!(answer["errors"][0]["extensions"]["problems"][0]["message"].as_str().unwrap().contains("longer than 2000 bytes"));

        let wrong_type = server
            .client
            .post(server.url("/ingest/predictions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(load("j", 1, "m-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_type.status().as_u16(), 415);

        // gzip: the cap counts decoded bytes (this body is far smaller
        // compressed than the cap, and far larger decoded).
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(load("gz", 100, "m-1").as_bytes()).unwrap();
        let compressed = gzip.finish().unwrap();
        let send_gzip = |body: Vec<u8>| {
            server
                .client
                .post(server.url("/ingest/predictions"))
                .bearer_auth(&key)
                .header("content-type", "application/x-ndjson")
                .header("content-encoding", "gzip")
                .body(body)
                .send()
        };
        let answer = send_gzip(compressed).await.unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        assert_eq!(answer.json::<Value>().await.unwrap()["inserted"], 100);
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![b' '; 50_000_000]).unwrap();
        let bomb = bomb.finish().unwrap();
        assert!(bomb.len() < 200_000);
        assert_eq!(send_gzip(bomb).await.unwrap().status().as_u16(), 413);
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 100);
        server.stop().await;
    }
}

mod drift {
    use super::*;

    backend_tests! {
        async fn drift_metrics_load_whole_once_with_their_alerts(test_db: TestDb) {
            let server = server_with_model(&test_db, |config| {
                config.serve.ingest.ingest_max_drift_metrics = 600;
                config.serve.ingest.ingest_max_drift_bytes = 2 * 1024 * 1024;
            })
            .await;
            let key = test_db.key(ALPHA, Role::Service).await;
            const DRIFT: &str = "/ingest/drift-metrics";
            let body = drift_load("d", 600, "m-1");

            let (status, answer) = post_to(&server, DRIFT, &key, body.clone()).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(
                answer,
                json!({"driftMetrics": 600, "inserted": 600, "duplicates": 0, "alerts": 400})
            );
            assert_eq!(test_db.rows("ml_drift_metrics", ALPHA).await, 600);
            assert_eq!(test_db.rows("mlgate_alert_events", ALPHA).await, 400);
            let raw = test_db.raw().await;
            let levels = |level: &str| format!(
                "SELECT COUNT(*) FROM ml_drift_metrics WHERE alert_level = '{level}' AND alert_triggered = {}",
                if level == "info" { "false" } else { "true" }
            );
            assert_eq!(count(&raw, &levels("critical")).await, 200);
            assert_eq!(count(&raw, &levels("warning")).await, 200);
            assert_eq!(count(&raw, &levels("info")).await, 200);
            raw.close().await.ok();

            // A retry only counts duplicates and raises no alert again; the
            // GraphQL mutation sees the bulk rows as the same writes.
            let (status, retry) = post_to(&server, DRIFT, &key, body).await;
            assert_eq!(status, 200, "{retry}");
            assert_eq!(
                retry,
                json!({"driftMetrics": 600, "inserted": 0, "duplicates": 600, "alerts": 0})
            );
            let again = json!({ "input": [drift_metric(4, "d", "m-1")] });
            let recorded = server
                .data(&key, "mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { count } }", again)
                .await;
            assert_eq!(recorded["recordDriftMetrics"]["count"], 1);
            assert_eq!(test_db.rows("mlgate_alert_events", ALPHA).await, 400);

            // A changed payload, invalid lines anywhere, an unknown model, a
            // load above the cap: refused, named by line, nothing written.
            let mut changed = drift_metric(5, "d", "m-1");
            changed["driftScore"] = json!(0.5);
            let body = drift_load("e", 3, "m-1") + &ndjson([changed]);
            let (status, answer) = post_to(&server, DRIFT, &key, body).await;
            assert_eq!((status, code(&answer)), (409, "CONFLICT"), "{answer}");
            assert_eq!(problems(&answer), vec![(4, "driftScore".to_owned())]);

            let mut negative = drift_metric(1, "f", "m-1");
            negative["psiScore"] = json!(-1);
            let mut wrong_type = drift_metric(2, "f", "m-1");
            wrong_type["driftType"] = json!("data");
            let body = drift_load("f", 1, "m-1")
                + &ndjson([negative, wrong_type, drift_metric(0, "f", "m-1")])
                + "{\"metricId\": \"f-9\", \"driftScore\": \"high\"}\n";
            let (status, answer) = post_to(&server, DRIFT, &key, body).await;
            assert_eq!((status, code(&answer)), (400, "BAD_USER_INPUT"), "{answer}");
            assert_eq!(
                problems(&answer),
                vec![
                    (2, "psiScore".to_owned()),
                    (3, "driftType".to_owned()),
                    (4, "metricId".to_owned()),
                    (5, "driftScore".to_owned()),
                ]
            );

            let (status, answer) =
                post_to(&server, DRIFT, &key, drift_load("g", 2, "no-such-model")).await;
            assert_eq!((status, code(&answer)), (404, "NOT_FOUND"), "{answer}");
            assert_eq!(problems(&answer), vec![(1, "modelId".to_owned()), (2, "modelId".to_owned())]);

            let (status, answer) = post_to(&server, DRIFT, &key, drift_load("h", 601, "m-1")).await;
            assert_eq!((status, code(&answer)), (400, "BAD_USER_INPUT"), "{answer}");
            assert_eq!(problems(&answer), vec![(601, String::new())]);
            assert!(answer["errors"][0]["message"].as_str().unwrap().contains("at most 600 drift metrics"), "{answer}");

            // Memory is bounded by the parsed form, not the text: a 200 KB
            // baseline of zeros parses into 3.2 MB of JSON values, past the
            // 2 MiB budget (which the 600 metrics above fit in).
            let mut heavy = drift_metric(1, "j", "m-1");
            heavy["baselineComparison"] = json!({ "histogram": vec![0; 100_000] });
            let body = drift_load("j", 1, "m-1") + &ndjson([heavy, drift_metric(2, "j", "m-1")]);
            assert!(body.len() < 256 * 1024);
            let (status, answer) = post_to(&server, DRIFT, &key, body).await;
            assert_eq!((status, code(&answer)), (400, "BAD_USER_INPUT"), "{answer}");
            assert_eq!(problems(&answer), vec![(2, String::new())]);
            assert!(answer["errors"][0]["message"].as_str().unwrap().contains("at most 2097152 bytes of parsed drift metrics"), "{answer}");

            assert_eq!(test_db.rows("ml_drift_metrics", ALPHA).await, 600);
            assert_eq!(test_db.rows("mlgate_alert_events", ALPHA).await, 400);

            // Roles and tenants as for the mutation.
            let viewer = test_db.key(ALPHA, Role::Viewer).await;
            let (status, answer) = post_to(&server, DRIFT, &viewer, drift_load("i", 1, "m-1")).await;
            assert_eq!((status, code(&answer)), (403, "FORBIDDEN"), "{answer}");
            let beta = test_db.key(BETA, Role::Service).await;
            let (status, answer) = post_to(&server, DRIFT, &beta, drift_load("i", 1, "m-1")).await;
            assert_eq!((status, code(&answer)), (404, "NOT_FOUND"), "{answer}");
            assert_eq!(test_db.rows("ml_drift_metrics", BETA).await, 0);
            server.stop().await;
        }
    }
}

mod postgres_only {
    use super::*;

    /// Rollups equal a fresh aggregation after bulk loads (the triggers fire
    /// once per load), and a load costs the same statements whatever its
    /// size beyond one COPY per chunk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rollups_equal_a_rebuild_after_bulk_loads() {
        let Some(test_db) = TestDb::postgres().await else {
            return;
        };
        let server = server_with_model(&test_db, |_| {}).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let before = server.db.statements_executed();
        let (status, _) = post(&server, &key, load("r", 10, "m-1")).await;
        assert_eq!(status, 200);
        let small = server.db.statements_executed() - before;
        let before = server.db.statements_executed();
        let large_body = load("s", 3000, "m-1");
        let large_bytes = large_body.len();
        let (status, _) = post(&server, &key, large_body).await;
        assert_eq!(status, 200);
        let large = server.db.statements_executed() - before;
        // Authentication, the tenant settings, the staging table, a COPY per
        // chunk of 256 KiB (the binary rows are smaller than their JSON) and
        // the insert: nothing per line.
        assert_eq!(small, 5);
        let chunks = large_bytes.div_ceil(256 * 1024) as u64;
        assert!(
            large > small && large <= small + chunks,
            "{large} statements for {large_bytes} bytes"
        );
        let (status, _) = post(&server, &key, load("r", 10, "m-1") + &load("t", 500, "m-1")).await;
        assert_eq!(status, 200);

        let db = test_db.connect().await;
        let differences = server::ops::rollups::differences(&db, ALPHA).await.unwrap();
        assert!(!differences.is_empty());
        for d in differences {
            assert_eq!(d.differing, 0, "{d:?}");
        }
        let raw = test_db.raw().await;
        let hours = count(
            &raw,
            "SELECT count(*) FROM mlgate_prediction_hours WHERE tenant_id = 'alpha'",
        )
        .await;
        assert!(hours > 0);
        server.stop().await;
    }

    /// Bulk loads stage rows in a temporary table: `verify-schema` names a
    /// gateway role without `TEMP`, and such a load writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_schema_names_a_gateway_role_without_temp() {
        let Some(test_db) = TestDb::postgres().await else {
            return;
        };
        let db = test_db.connect().await;
        let report = server::ops::verify::verify(&db).await.unwrap();
        assert!(report.problems.is_empty(), "{}", report.render());
        assert!(report.render().contains("temp=true"), "{}", report.render());

        let raw = test_db.raw().await;
        raw.execute_unprepared(
            "DO $$ BEGIN EXECUTE format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database()); END $$",
        )
        .await
        .unwrap();
        let report = server::ops::verify::verify(&db).await.unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("needs TEMP")),
            "{:?}",
            report.problems
        );

        let server = server_with_model(&test_db, |_| {}).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let (status, answer) = post(&server, &key, load("t", 3, "m-1")).await;
        // The deployment's fault, not the client's: 500 with a request id.
        assert_eq!((status, code(&answer)), (500, "INTERNAL"), "{answer}");
        assert!(
            answer["errors"][0]["extensions"]["requestId"].is_string(),
            "{answer}"
        );
        assert!(
            !answer.to_string().contains("CREATE TEMP"),
            "no SQL text: {answer}"
        );
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);
        server.stop().await;
    }
}
