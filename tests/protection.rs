//! Hostile input and noisy neighbours, on both backends against a running
//! server: deep input anywhere is refused with a code and the process
//! lives; document, cost and answer limits; time budgets ending in
//! `TIMEOUT`; one tenant cannot starve another nor make authentication
//! fail; rate limits; revoked keys stop at once on open WebSockets; socket
//! and subscription caps; slow and idle connections are closed; JWT claims;
//! introspection; NUL bytes and missing variables; no credential in logs.

mod common;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::{json, Value};
use server::auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use common::fixtures::{self, insert, insert_all, scoped_for};
use common::ws::{connect, next, next_within, open, send, subscribe, PROTOCOL};
use common::{count, TestDb, TestServer};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const ALPHA: &str = "alpha";
const BETA: &str = "beta";

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
    }
}

/// POSTs `body` (as given, already JSON) with `key`, asking for
/// `application/graphql-response+json` so request errors come back as 400.
async fn post_raw(server: &TestServer, key: Option<&str>, body: String) -> Answer {
    let mut request = server
        .client
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", GRAPHQL_RESPONSE)
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    read_answer(request.send().await.expect("request")).await
}

async fn read_answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

async fn post(server: &TestServer, key: Option<&str>, query: &str, variables: Value) -> Answer {
    post_raw(
        server,
        key,
        json!({"query": query, "variables": variables}).to_string(),
    )
    .await
}

/// `depth` nested lists around `1`.
fn nested_list(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// The server still answers.
async fn alive(server: &TestServer, key: &str) {
    let answer = post(server, Some(key), "{ me { tenant } }", json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["data"]["me"]["tenant"], ALPHA);
}

/// Holds a lock alpha's model writes wait for, on `raw` (one connection):
/// a row lock on alpha's models on PostgreSQL (other tenants are not
/// blocked), the write lock on SQLite (reads are not blocked). Released
/// with `ROLLBACK`.
async fn hold_alpha_writes(test_db: &TestDb, raw: &sea_orm::DatabaseConnection) {
    let sql = match test_db.backend {
        DbBackend::Postgres => {
            "BEGIN; SELECT 1 FROM ml_models WHERE tenant_id = 'alpha' FOR UPDATE"
        }
        _ => "BEGIN IMMEDIATE",
    };
    raw.execute_unprepared(sql).await.unwrap();
}

const RENAME: &str =
    r#"mutation { updateModel(modelId: "m-1", input: {modelName: "x"}) { modelName } }"#;

/// `count` renames of alpha's model, sent at once and left running.
fn stuck_writes(
    server: &std::sync::Arc<TestServer>,
    key: &str,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Answer>> {
    (0..count)
        .map(|_| {
            let (server, key) = (server.clone(), key.to_owned());
            tokio::spawn(async move { post(&server, Some(&key), RENAME, json!({})).await })
        })
        .collect()
}

async fn models(test_db: &TestDb, tenant: &str, ids: &[&str]) {
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, tenant).await;
    for id in ids {
        insert(&scoped, fixtures::model(tenant, id)).await.unwrap();
    }
    db.close().await.ok();
}

backend_tests! {
    async fn deep_input_anywhere_is_refused_and_the_process_lives(test_db: TestDb) {
        let key = test_db.key(ALPHA, Role::Admin).await;
        let server = TestServer::start(test_db.config()).await;
        // About 2 MB each: far past where the parser used to overflow its
        // stack (~1,550), well within the 8 MiB body cap. No credentials:
        // the document is checked before anything else.
        let deep = 1_000_000;
        let cases = [
            ("a list literal", format!("{{ me(x: {}) {{ tenant }} }}", nested_list(deep)), "VALUE_TOO_DEEP"),
            ("an object literal", format!("{{ me(x: {}1{}) {{ tenant }} }}", "{a: ".repeat(deep / 4), "}".repeat(deep / 4)), "VALUE_TOO_DEEP"),
            ("a variable default", format!("query($x: JSON = {}) {{ me {{ tenant }} }}", nested_list(deep)), "VALUE_TOO_DEEP"),
            ("a variable type", format!("query($x: {}Int{}) {{ me {{ tenant }} }}", "[".repeat(deep), "]".repeat(deep)), "VALUE_TOO_DEEP"),
            (
                "a JSON argument",
                format!(r#"mutation {{ recordPredictions(input: [{{predictionId: "p", resourceId: "r", modelId: "m", violationProbability: 0.5, confidenceScore: 0.5, riskLevel: LOW, inferenceTimeMs: 1, shapValues: {{a: {}}}}}]) {{ count }} }}"#, nested_list(deep)),
                "VALUE_TOO_DEEP",
            ),
            ("selections", format!("{}{}", "{ a ".repeat(deep / 4), "}".repeat(deep / 4)), "QUERY_TOO_DEEP"),
        ];
        for (what, query, code) in &cases {
            let answer = post(&server, None, query, json!({})).await;
            assert_eq!((answer.status, answer.code()), (400, *code), "{what}: {}", answer.body);
            assert!(answer.body.get("data").is_none(), "{what}");
            alive(&server, &key).await;
        }
        // Variables: deeper than the value limit, and deeper than JSON
        // parsing goes at all.
        let variables: Value = serde_json::from_str(&nested_list(40)).unwrap();
        let answer = post(&server, Some(&key), "query($x: JSON) { me { tenant } }", json!({"x": variables})).await;
        assert_eq!((answer.status, answer.code()), (400, "VALUE_TOO_DEEP"), "{}", answer.body);
        assert!(answer.body["errors"][0]["extensions"]["field"].as_str().unwrap().starts_with("$x[0]"), "{}", answer.body);
        let body = format!(r#"{{"query": "{{ me {{ tenant }} }}", "variables": {{"x": {}}}}}"#, nested_list(deep));
        let answer = post_raw(&server, Some(&key), body).await;
        assert_eq!((answer.status, answer.code()), (400, "BAD_USER_INPUT"), "{}", answer.body);

        // GET: the same document in the query string (kept under the URI
        // length clients allow: 10,000 brackets).
        let query = format!("{{ me(x: {}) {{ tenant }} }}", nested_list(5_000));
        let response = server.client.get(server.url("/graphql")).header("accept", GRAPHQL_RESPONSE).query(&[("query", query)]).send().await.unwrap();
        let answer = read_answer(response).await;
        assert_eq!((answer.status, answer.code()), (400, "VALUE_TOO_DEEP"), "{}", answer.body);

        // WebSocket: refused as an operation error; the connection goes on.
        let mut socket = open(&server, &key).await;
        for (what, query, code) in &cases {
            subscribe(&mut socket, "deep", query, json!({})).await;
            let message = next(&mut socket).await.unwrap();
            assert_eq!(message["type"], "error", "{what}: {message}");
            assert_eq!(message["payload"][0]["extensions"]["code"], *code, "{what}");
        }
        subscribe(&mut socket, "fine", "{ me { tenant } }", json!({})).await;
        let message = next(&mut socket).await.unwrap();
        assert_eq!(message["payload"]["data"]["me"]["tenant"], ALPHA, "{message}");
        alive(&server, &key).await;
        server.stop().await;
    }

    async fn document_limits_refuse_with_their_codes_before_any_sql(test_db: TestDb) {
        let key = test_db.key(ALPHA, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let aliases = |n: usize| format!("{{ me {{ {} }} }}", (0..n).map(|i| format!("a{i}: tenant")).collect::<Vec<_>>().join(" "));
        let roots = |n: usize| format!("{{ {} }}", (0..n).map(|i| format!("a{i}: me {{ tenant }}")).collect::<Vec<_>>().join(" "));
        let directives = |n: usize| format!("{{ me {{ {} }} }} fragment T on Me {{ tenant }}", "...T @include(if: true) ".repeat(n));
        let tokens = |n: usize| format!("{{ me {{ {} }} }}", "tenant ".repeat(n - 5));
        for (query, ok) in [(aliases(30), true), (roots(25), true), (directives(50), true), (tokens(15_000), true)] {
            let answer = post(&server, Some(&key), &query, json!({})).await;
            assert_eq!((answer.status, ok), (200, answer.body.get("errors").is_none()), "{}", answer.body);
        }
        let refused = [
            (aliases(31), "TOO_MANY_ALIASES", "aliases", 30, Some(31)),
            (roots(26), "TOO_MANY_ROOT_FIELDS", "rootFields", 25, Some(26)),
            (directives(51), "TOO_MANY_DIRECTIVES", "directives", 50, Some(51)),
            (tokens(15_001), "TOO_MANY_TOKENS", "tokens", 15_000, None),
            // 400,000 unknown directives: stopped at the token limit, not
            // answered with 400,000 errors.
            (format!("{{ me {{ tenant {} }} }}", "@x ".repeat(400_000)), "TOO_MANY_TOKENS", "tokens", 15_000, None),
        ];
        for (query, code, limit, max, actual) in refused {
            let before = server.db.statements_executed();
            let answer = post(&server, Some(&key), &query, json!({})).await;
            assert_eq!((answer.status, answer.code()), (400, code), "{}", answer.body);
            let extensions = &answer.body["errors"][0]["extensions"];
            assert_eq!(extensions["limit"], limit);
            assert_eq!(extensions["max"], max);
            assert_eq!(extensions["actual"], actual.map_or(Value::Null, Value::from));
            assert_eq!(server.db.statements_executed() - before, 0, "{code}: nothing ran, not even authentication");
            // Anonymous callers meet the same limit (not a 401).
            assert_eq!(post(&server, None, &query, json!({})).await.code(), code);
        }
        // At most 100 errors, then one saying how many were left out.
        let unknown = format!("{{ me {{ {} }} }}", (0..150).map(|i| format!("x{i}")).collect::<Vec<_>>().join(" "));
        let answer = post(&server, Some(&key), &unknown, json!({})).await;
        let errors = answer.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 101, "{}", answer.body);
        assert_eq!(errors[100]["extensions"]["code"], "TOO_MANY_ERRORS");
        assert_eq!(errors[100]["extensions"]["actual"], 150);
        server.stop().await;

        // Each limit is configurable.
        let mut config = test_db.config();
        config.serve.limits.max_aliases = 2;
        config.serve.limits.max_tokens = 20;
        config.serve.limits.max_errors = 3;
        let server = TestServer::start(config).await;
        assert_eq!(post(&server, Some(&key), &aliases(3), json!({})).await.code(), "TOO_MANY_ALIASES");
        assert_eq!(post(&server, Some(&key), &tokens(21), json!({})).await.code(), "TOO_MANY_TOKENS");
        let answer = post(&server, Some(&key), "{ me { x1 x2 x3 x4 } }", json!({})).await;
        assert_eq!(answer.body["errors"].as_array().unwrap().len(), 4, "{}", answer.body);
        server.stop().await;
    }

    async fn analytics_cost_counts_what_they_may_return(test_db: TestDb) {
        let key = test_db.key(ALPHA, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        // 20 aliases of a grouping by resource (up to 10,000 groups each):
        // the amplification is refused before anything runs.
        let by_resource = |filter: &str| format!(
            "{{ {} }}",
            (0..20).map(|i| format!("s{i}: predictionStats(groupBy: [RESOURCE]{filter}) {{ groups {{ measures {{ count }} }} }}")).collect::<Vec<_>>().join(" ")
        );
        let before = server.db.statements_executed();
        let answer = post(&server, Some(&key), &by_resource(""), json!({})).await;
        assert_eq!((answer.status, answer.code()), (400, "QUERY_TOO_COMPLEX"), "{}", answer.body);
        assert_eq!(answer.body["errors"][0]["extensions"]["actual"], 20 * (1 + 10_000 * 3));
        assert_eq!(server.db.statements_executed() - before, 1, "authentication only");
        // Naming the resources bounds the groups: the same 20 aliases run.
        let answer = post(&server, Some(&key), &by_resource(r#", filter: {resourceIds: ["r-1", "r-2"]}"#), json!({})).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        server.stop().await;

        // The arithmetic, through the server's own complexity report.
        let mut config = test_db.config();
        config.serve.limits.max_query_complexity = 1;
        let server = TestServer::start(config).await;
        let actual = async |query: &str| {
            let answer = post(&server, Some(&key), query, json!({})).await;
            assert_eq!(answer.code(), "QUERY_TOO_COMPLEX", "{}", answer.body);
            answer.body["errors"][0]["extensions"]["actual"].as_u64().unwrap()
        };
        // Every model (at most 500) or the ones named.
        assert_eq!(actual("{ modelPerformance { predictionCount } }").await, 1 + 500);
        assert_eq!(actual(r#"{ modelPerformance(filter: {modelIds: ["a", "b"]}) { predictionCount } }"#).await, 1 + 2);
        // `top` features.
        assert_eq!(actual(r#"{ shapImportance(modelId: "m", top: 100) { features { feature } } }"#).await, 1 + 100 * 2);
        // Risk levels (with "none") per day over 30 days: 5 × ⌈720 h / 23 h⌉ + 2.
        assert_eq!(
            actual(r#"{ predictionStats(groupBy: [RISK_LEVEL], bucket: {unit: DAY}, from: "2026-01-01T00:00:00Z", to: "2026-01-31T00:00:00Z") { groups { measures { count } } } }"#).await,
            1 + 5 * 34 * 3
        );
        // Three drift types per hour over two days.
        assert_eq!(
            actual(r#"{ driftSummary(window: {from: "2026-01-01T00:00:00Z", to: "2026-01-03T00:00:00Z"}, bucket: {unit: HOUR}) { types { driftType } } }"#).await,
            1 + 3 * 50 * 2
        );
        server.stop().await;
    }

    async fn limit_refusals_are_explained_alike_on_every_transport_and_run_nothing(test_db: TestDb) {
        // The schema requests run on checks depth and complexity itself and
        // says only "too complex"; the refusal is explained (limit, max,
        // actual) by validating again on a twin schema, which runs nothing.
        let key = test_db.key(ALPHA, Role::Service).await;
        let mut config = test_db.config();
        config.serve.limits.max_query_complexity = 1;
        config.serve.limits.max_query_depth = 3;
        let server = TestServer::start(config).await;
        let complex = r#"{ shapImportance(modelId: "m", top: 100) { features { feature } } }"#;
        let deep = "{ models { nodes { predictions { nodes { predictionId } } } } }";
        let answer = post(&server, Some(&key), complex, json!({})).await;
        assert_eq!((answer.status, answer.code()), (400, "QUERY_TOO_COMPLEX"), "{}", answer.body);
        let http = answer.body["errors"][0].clone();
        assert_eq!(http["extensions"]["actual"], 1 + 100 * 2, "{http}");
        let answer = post(&server, Some(&key), deep, json!({})).await;
        assert_eq!(answer.code(), "QUERY_TOO_DEEP", "{}", answer.body);
        assert_eq!(answer.body["errors"][0]["extensions"]["actual"], 5, "{}", answer.body);
        // The same error, word for word, over a WebSocket.
        let mut socket = open(&server, &key).await;
        subscribe(&mut socket, "complex", complex, json!({})).await;
        let message = next(&mut socket).await.unwrap();
        assert_eq!((&message["type"], &message["payload"][0]), (&json!("error"), &http), "{message}");
        // A write refused for its selection stores nothing; with a small
        // input the refusal says how far over it is, with a large one it
        // says the limit (the input is not copied to explain it).
        let record = "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count } }";
        let input = |n: usize| json!({"input": (0..n).map(|i| json!({
            "predictionId": format!("p-{i}"), "resourceId": "r", "modelId": "m",
            "violationProbability": 0.5, "confidenceScore": 0.5, "riskLevel": "LOW", "inferenceTimeMs": 1,
        })).collect::<Vec<_>>()});
        for (n, actual) in [(1, json!(2)), (200, Value::Null)] {
            let answer = post(&server, Some(&key), record, input(n)).await;
            assert_eq!((answer.status, answer.code()), (400, "QUERY_TOO_COMPLEX"), "{}", answer.body);
            let extensions = &answer.body["errors"][0]["extensions"];
            assert_eq!((&extensions["limit"], &extensions["max"]), (&json!("complexity"), &json!(1)));
            assert_eq!(extensions["actual"], actual, "{n} items: {}", answer.body);
        }
        // Validation errors still come first, and depth before complexity,
        // whatever the size of the input.
        let invalid = "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count nope } }";
        let deep_write = "mutation($input: [PredictionInput!]!, $n: Int) { recordPredictions(input: $input) { predictions { model { predictions(first: $n) { nodes { predictionId } } } } } }";
        for n in [1, 200] {
            let answer = post(&server, Some(&key), invalid, input(n)).await;
            assert_eq!(answer.code(), "GRAPHQL_VALIDATION_FAILED", "{n} items: {}", answer.body);
            let mut variables = input(n);
            variables["n"] = json!(5);
            let answer = post(&server, Some(&key), deep_write, variables).await;
            assert_eq!(answer.code(), "QUERY_TOO_DEEP", "{n} items: {}", answer.body);
        }
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);
        server.stop().await;
    }

    async fn answers_above_the_size_ceiling_fail_cleanly(test_db: TestDb) {
        let ids: Vec<String> = (0..40).map(|i| format!("model-with-a-longish-id-{i:02}")).collect();
        models(&test_db, ALPHA, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let key = test_db.key(ALPHA, Role::Viewer).await;
        let mut config = test_db.config();
        config.serve.limits.max_response_bytes = 2_000;
        let server = TestServer::start(config).await;
        let big = "{ models(first: 40) { nodes { modelId modelName } } }";
        let answer = post(&server, Some(&key), big, json!({})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["data"], Value::Null);
        assert_eq!(answer.code(), "RESPONSE_TOO_LARGE");
        assert_eq!(answer.body["errors"][0]["extensions"]["max"], 2_000);
        let answer = post(&server, Some(&key), "{ models(first: 2) { nodes { modelId } } }", json!({})).await;
        assert_eq!(answer.body["data"]["models"]["nodes"].as_array().unwrap().len(), 2);
        // The same over WebSocket.
        let mut socket = open(&server, &key).await;
        subscribe(&mut socket, "1", big, json!({})).await;
        let message = next(&mut socket).await.unwrap();
        assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "RESPONSE_TOO_LARGE", "{message}");
        server.stop().await;
    }

    async fn statements_and_requests_past_their_budget_end_with_timeout(test_db: TestDb) {
        // Enough SHAP values that aggregating them takes well over 1 ms.
        {
            let db = test_db.connect().await;
            let scoped = scoped_for(&test_db, &db, ALPHA).await;
            insert(&scoped, fixtures::model(ALPHA, "m-1")).await.unwrap();
            for chunk in 0..10 {
                let rows = (0..1_000).map(|i| {
                    let mut row = fixtures::prediction(ALPHA, &format!("p-{chunk}-{i}"), "m-1");
                    row.shap_values = sea_orm::ActiveValue::Set(Some(json!({"a": 0.5, "b": -0.25, "c": 0.1, "d": 0.2, "e": -0.3})));
                    row
                });
                insert_all(&scoped, rows.collect()).await.unwrap();
            }
            db.close().await.ok();
        }
        let key = test_db.key(ALPHA, Role::Admin).await;
        let mut config = test_db.config();
        config.serve.db.analytics_budget_ms = 1;
        config.serve.db.lock_budget_ms = 300;
        // Scanning, which takes time: from the rollups it would not.
        config.serve.db.analytics_rollups = server::config::Switch::Off;
        let server = TestServer::start(config).await;
        let shap = r#"{ shapImportance(modelId: "m-1") { predictionCount features { feature } } }"#;
        let answer = post(&server, Some(&key), shap, json!({})).await;
        assert_eq!(answer.code(), "TIMEOUT", "{}", answer.body);
        assert!(!answer.body.to_string().contains("SELECT"), "no SQL reaches the client");
        // Reads have their own (default) budget.
        let answer = post(&server, Some(&key), "{ predictions { totalCount } }", json!({})).await;
        assert_eq!(answer.body["data"]["predictions"]["totalCount"], 10_000, "{}", answer.body);
        server.stop().await;

        // A lock held past the lock budget: a row lock on PostgreSQL, the
        // write lock on SQLite.
        let raw = test_db.raw().await;
        let update = r#"mutation { updateModel(modelId: "m-1", input: {modelName: "renamed"}) { modelName } }"#;
        let mut config = test_db.config();
        config.serve.db.lock_budget_ms = 300;
        let server = TestServer::start(config).await;
        hold_alpha_writes(&test_db, &raw).await;
        let started = Instant::now();
        let answer = post(&server, Some(&key), update, json!({})).await;
        assert_eq!(answer.code(), "TIMEOUT", "{}", answer.body);
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        raw.execute_unprepared("ROLLBACK").await.unwrap();
        assert_eq!(post(&server, Some(&key), update, json!({})).await.body["data"]["updateModel"]["modelName"], "renamed");
        server.stop().await;

        // The whole request's deadline: 504 with TIMEOUT, whatever is slow.
        let mut config = test_db.config();
        config.serve.http.request_timeout_ms = 500;
        let server = TestServer::start(config).await;
        hold_alpha_writes(&test_db, &raw).await;
        let started = Instant::now();
        let answer = post(&server, Some(&key), update, json!({})).await;
        assert_eq!((answer.status, answer.code()), (504, "TIMEOUT"), "{}", answer.body);
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        raw.execute_unprepared("ROLLBACK").await.unwrap();
        alive_as(&server, &key).await;
        // The cancelled write left no transaction behind on a pooled
        // connection: later writes commit, as another connection sees.
        for i in 0..6 {
            let renamed = format!("after-{i}");
            let query = format!(r#"mutation {{ updateModel(modelId: "m-1", input: {{modelName: "{renamed}"}}) {{ modelName }} }}"#);
            let answer = post(&server, Some(&key), &query, json!({})).await;
            assert_eq!(answer.body["data"]["updateModel"]["modelName"], renamed.as_str(), "{}", answer.body);
            let seen = raw
                .query_one_raw(sea_orm::Statement::from_string(
                    raw.get_database_backend(),
                    "SELECT model_name FROM ml_models WHERE tenant_id = 'alpha' AND model_id = 'm-1'",
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index::<String>(0)
                .unwrap();
            assert_eq!(seen, renamed, "a write acknowledged but not committed");
        }
        server.stop().await;
    }

    async fn a_noisy_tenant_cannot_starve_another(test_db: TestDb) {
        models(&test_db, ALPHA, &["m-1"]).await;
        models(&test_db, BETA, &["m-1", "m-2"]).await;
        let alpha = test_db.key(ALPHA, Role::Admin).await;
        let beta = test_db.key(BETA, Role::Viewer).await;
        let raw = test_db.raw().await;
        let mut config = test_db.config();
        config.database.db_max_connections = 4;
        config.serve.db.tenant_db_share = 50;
        config.serve.db.db_acquire_timeout_ms = 400;
        config.serve.db.lock_budget_ms = 4_000;
        let server = std::sync::Arc::new(TestServer::start(config).await);
        hold_alpha_writes(&test_db, &raw).await;
        // Alpha: four writes stuck behind the lock; two hold alpha's whole
        // share of the pool, two wait for it.
        let stuck = stuck_writes(&server, &alpha, 4);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Beta is served meanwhile, promptly.
        for _ in 0..5 {
            let started = Instant::now();
            let answer = post(&server, Some(&beta), "{ models { totalCount } }", json!({})).await;
            assert_eq!(answer.body["data"]["models"]["totalCount"], 2, "{}", answer.body);
            assert!(started.elapsed() < Duration::from_millis(1_000), "beta waited {:?}", started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        raw.execute_unprepared("ROLLBACK").await.unwrap();
        let mut limited = 0;
        for task in stuck {
            let answer = task.await.unwrap();
            if answer.status == 429 {
                assert_eq!(answer.code(), "RATE_LIMITED", "{}", answer.body);
                assert!(answer.retry_after.is_some_and(|s| s >= 1));
                limited += 1;
            } else {
                assert_eq!(answer.body["data"]["updateModel"]["modelName"], "x", "{}", answer.body);
            }
        }
        assert_eq!(limited, 2, "alpha's requests beyond its share were refused, not queued forever");
        drop(server);

        // With one tenant holding the whole pool, another tenant's valid
        // key still authenticates (its own pool), and the answer is 503
        // OVERLOADED with Retry-After, never 401.
        let mut config = test_db.config();
        // PostgreSQL: the listener holds one connection, a stuck write the
        // other. SQLite: writes queue for the write lock before taking a
        // connection, so one stuck write holds a one-connection pool.
        config.database.db_max_connections = match test_db.backend {
            DbBackend::Postgres => 2,
            _ => 1,
        };
        config.serve.db.tenant_db_share = 100;
        config.serve.db.db_acquire_timeout_ms = 400;
        config.serve.db.lock_budget_ms = 4_000;
        let server = std::sync::Arc::new(TestServer::start(config).await);
        hold_alpha_writes(&test_db, &raw).await;
        let stuck = stuck_writes(&server, &alpha, 2);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer = post(&server, Some(&beta), "{ models { totalCount } }", json!({})).await;
        assert_eq!((answer.status, answer.code()), (503, "OVERLOADED"), "{}", answer.body);
        assert!(answer.retry_after.is_some());
        raw.execute_unprepared("ROLLBACK").await.unwrap();
        for task in stuck {
            task.await.unwrap();
        }
        let answer = post(&server, Some(&beta), "{ models { totalCount } }", json!({})).await;
        assert_eq!(answer.body["data"]["models"]["totalCount"], 2, "{}", answer.body);
    }

    async fn a_tenants_requests_in_flight_are_capped(test_db: TestDb) {
        models(&test_db, ALPHA, &["m-1"]).await;
        let alpha = test_db.key(ALPHA, Role::Admin).await;
        let beta = test_db.key(BETA, Role::Viewer).await;
        let raw = test_db.raw().await;
        let mut config = test_db.config();
        config.serve.admission.tenant_max_in_flight = 2;
        config.serve.admission.admission_wait_ms = 300;
        config.serve.db.lock_budget_ms = 4_000;
        let server = std::sync::Arc::new(TestServer::start(config).await);
        hold_alpha_writes(&test_db, &raw).await;
        let stuck = stuck_writes(&server, &alpha, 2);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = post(&server, Some(&alpha), "{ me { tenant } }", json!({})).await;
        assert_eq!((answer.status, answer.code()), (429, "RATE_LIMITED"), "{}", answer.body);
        assert_eq!(answer.retry_after, Some(1));
        // Another tenant is not affected.
        let answer = post(&server, Some(&beta), "{ me { tenant } }", json!({})).await;
        assert_eq!(answer.body["data"]["me"]["tenant"], BETA, "{}", answer.body);
        raw.execute_unprepared("ROLLBACK").await.unwrap();
        for task in stuck {
            assert_eq!(task.await.unwrap().status, 200);
        }
        drop(server);

        // One credential's requests in flight, within its tenant's.
        let other_alpha = test_db.key(ALPHA, Role::Viewer).await;
        let mut config = test_db.config();
        config.serve.admission.credential_max_in_flight = 1;
        config.serve.admission.admission_wait_ms = 300;
        config.serve.db.lock_budget_ms = 4_000;
        let server = std::sync::Arc::new(TestServer::start(config).await);
        hold_alpha_writes(&test_db, &raw).await;
        let stuck = stuck_writes(&server, &alpha, 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = post(&server, Some(&alpha), "{ me { tenant } }", json!({})).await;
        assert_eq!((answer.status, answer.code()), (429, "RATE_LIMITED"), "{}", answer.body);
        assert!(answer.body["errors"][0]["message"].as_str().unwrap().contains("credential"), "{}", answer.body);
        let answer = post(&server, Some(&other_alpha), "{ me { tenant } }", json!({})).await;
        assert_eq!(answer.body["data"]["me"]["tenant"], ALPHA, "another key of the tenant: {}", answer.body);
        raw.execute_unprepared("ROLLBACK").await.unwrap();
        for task in stuck {
            assert_eq!(task.await.unwrap().status, 200);
        }
    }

    async fn rate_limits_answer_429_with_retry_after(test_db: TestDb) {
        let a1 = test_db.key(ALPHA, Role::Viewer).await;
        let a2 = test_db.key(ALPHA, Role::Viewer).await;
        let b = test_db.key(BETA, Role::Viewer).await;
        let me = "{ me { tenant } }";
        let mut config = test_db.config();
        config.serve.admission.credential_rate = 1;
        config.serve.admission.credential_burst = 2;
        config.serve.admission.tenant_rate = 1;
        config.serve.admission.tenant_burst = 3;
        let server = TestServer::start(config).await;
        assert_eq!(post(&server, Some(&a1), me, json!({})).await.status, 200);
        assert_eq!(post(&server, Some(&a1), me, json!({})).await.status, 200);
        let answer = post(&server, Some(&a1), me, json!({})).await;
        assert_eq!((answer.status, answer.code()), (429, "RATE_LIMITED"), "{}", answer.body);
        assert!(answer.retry_after.is_some_and(|s| s >= 1), "{:?}", answer.retry_after);
        assert!(answer.body["errors"][0]["message"].as_str().unwrap().contains("credential"));
        // Another key of the tenant has its own rate, within the tenant's.
        assert_eq!(post(&server, Some(&a2), me, json!({})).await.status, 200);
        let answer = post(&server, Some(&a2), me, json!({})).await;
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert!(answer.body["errors"][0]["message"].as_str().unwrap().contains("tenant"));
        // Another tenant is not limited by alpha's traffic.
        assert_eq!(post(&server, Some(&b), me, json!({})).await.status, 200);
        server.stop().await;

        // Refused credentials are throttled per client address.
        let mut config = test_db.config();
        config.serve.admission.failed_auth_rate = 1;
        config.serve.admission.failed_auth_burst = 3;
        let server = TestServer::start(config).await;
        for _ in 0..3 {
            assert_eq!(post(&server, Some("mlg_wrong"), me, json!({})).await.status, 401);
        }
        let answer = post(&server, Some("mlg_wrong"), me, json!({})).await;
        assert_eq!((answer.status, answer.code()), (429, "RATE_LIMITED"), "{}", answer.body);
        assert!(answer.retry_after.is_some());
        // From another address the same server answers as usual.
        let other = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
        let response = other.post(server.url("/graphql")).bearer_auth(&a1).json(&json!({"query": me})).send().await.unwrap();
        assert_eq!(response.status(), 200);
        server.stop().await;
    }

    async fn revoked_keys_stop_at_once_on_open_websockets(test_db: TestDb) {
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let mut config = test_db.config();
        // Only revocations can close sockets within this test's time.
        config.serve.ws.ws_auth_recheck_secs = 3_600;
        let server = TestServer::start(config).await;
        let create = |role: &str| format!(r#"mutation {{ createApiKey(role: {role}, name: "ws") {{ secret key {{ id }} }} }}"#);
        let new_key = async |role: &str| {
            let created = server.data(&admin, &create(role), json!({})).await;
            (created["createApiKey"]["secret"].as_str().unwrap().to_owned(), created["createApiKey"]["key"]["id"].as_str().unwrap().to_owned())
        };
        const ALERTS: &str = "subscription { driftAlerts { metricId } }";

        // Revoked through the API: the key's sockets close within a second.
        let (secret, id) = new_key("VIEWER").await;
        let mut sockets = Vec::new();
        for _ in 0..2 {
            let mut socket = open(&server, &secret).await;
            subscribe(&mut socket, "alerts", ALERTS, json!({})).await;
            sockets.push(socket);
        }
        let started = Instant::now();
        server.data(&admin, &format!(r#"mutation {{ revokeApiKey(id: "{id}") {{ revokedAt }} }}"#), json!({})).await;
        for mut socket in sockets {
            assert_eq!(next_within(&mut socket, Duration::from_secs(1)).await, Err(Some(4403)));
        }
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

        // Revoked behind the server's back (plain SQL): the next operation
        // on an open socket runs nothing; on PostgreSQL the notification
        // closes the socket within a second anyway.
        let (secret, _) = new_key("ADMIN").await;
        let mut socket = open(&server, &secret).await;
        let raw = test_db.raw().await;
        let keys_before = count(&raw, "SELECT COUNT(*) FROM mlgate_api_keys").await;
        let now = match test_db.backend {
            DbBackend::Postgres => "now()",
            _ => "'2026-01-01T00:00:00.000000+00:00'",
        };
        let prefix = &secret[..12];
        let revoked = raw
            .execute_unprepared(&format!("UPDATE mlgate_api_keys SET revoked_at = {now} WHERE key_prefix = '{prefix}'"))
            .await
            .unwrap();
        assert_eq!(revoked.rows_affected(), 1);
        if test_db.backend == DbBackend::Postgres {
            assert_eq!(next_within(&mut socket, Duration::from_secs(1)).await, Err(Some(4403)));
        } else {
            subscribe(&mut socket, "escalate", &create("ADMIN"), json!({})).await;
            assert_eq!(next(&mut socket).await, Err(Some(4403)));
        }
        assert_eq!(count(&raw, "SELECT COUNT(*) FROM mlgate_api_keys").await, keys_before, "nothing ran");
        server.stop().await;
    }

    async fn websocket_sockets_and_operations_are_capped(test_db: TestDb) {
        let key = test_db.key(ALPHA, Role::Viewer).await;
        let mut config = test_db.config();
        config.serve.ws.ws_max_sockets_per_credential = 2;
        config.serve.ws.ws_max_subscriptions = 2;
        let server = TestServer::start(config).await;
        let first = open(&server, &key).await;
        let mut second = open(&server, &key).await;
        let mut third = connect(&server, "/graphql/ws", Some(PROTOCOL)).await.unwrap();
        send(&mut third, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}})).await;
        assert_eq!(next(&mut third).await, Err(Some(1008)));
        // Another credential is not counted against this one.
        let other = test_db.key(ALPHA, Role::Viewer).await;
        let _other = open(&server, &other).await;
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _again = open(&server, &key).await;

        // Two operations at once per socket; a third is refused, not run.
        const ALERTS: &str = "subscription { driftAlerts { metricId } }";
        subscribe(&mut second, "s1", ALERTS, json!({})).await;
        subscribe(&mut second, "s2", ALERTS, json!({})).await;
        subscribe(&mut second, "s3", ALERTS, json!({})).await;
        let message = next(&mut second).await.unwrap();
        assert_eq!((message["id"].as_str(), message["type"].as_str()), (Some("s3"), Some("error")), "{message}");
        assert_eq!(message["payload"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS");
        send(&mut second, json!({"id": "s1", "type": "complete"})).await;
        subscribe(&mut second, "q", "{ me { tenant } }", json!({})).await;
        let message = next(&mut second).await.unwrap();
        assert_eq!(message["payload"]["data"]["me"]["tenant"], ALPHA, "{message}");
        server.stop().await;
    }

    async fn slow_and_idle_connections_are_closed(test_db: TestDb) {
        let mut config = test_db.config();
        config.serve.http.header_timeout_secs = 1;
        config.serve.http.body_timeout_secs = 1;
        let server = TestServer::start(config).await;
        let address = server.base.trim_start_matches("http://").to_owned();
        // Closed by the server within `limit`: reading ends (EOF or reset).
        let closed_within = async |stream: &mut tokio::net::TcpStream, limit: Duration| -> Vec<u8> {
            let mut received = Vec::new();
            let started = Instant::now();
            let read = tokio::time::timeout(limit, async {
                let mut buffer = [0u8; 4096];
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => received.extend_from_slice(&buffer[..n]),
                    }
                }
            }).await;
            assert!(read.is_ok(), "still open after {:?}", started.elapsed());
            received
        };
        // Half-sent headers.
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        closed_within(&mut stream, Duration::from_secs(4)).await;
        // An idle keep-alive connection after a request.
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let received = closed_within(&mut stream, Duration::from_secs(4)).await;
        assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"), "the request itself was served");
        // A body that stops arriving: 408.
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\"").await.unwrap();
        let received = closed_within(&mut stream, Duration::from_secs(4)).await;
        assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&received));
        server.stop().await;

        // At most `max_connections` open: a third client waits until one closes.
        let mut config = test_db.config();
        config.serve.http.max_connections = 2;
        let server = TestServer::start(config).await;
        let idle1 = tokio::net::TcpStream::connect(&address_of(&server)).await.unwrap();
        let _idle2 = tokio::net::TcpStream::connect(&address_of(&server)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let client = reqwest::Client::new();
        let third = tokio::spawn({
            let url = server.url("/health");
            async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!third.is_finished(), "a third connection was served past the cap");
        drop(idle1);
        let status = tokio::time::timeout(Duration::from_secs(3), third).await.expect("served once a slot freed").unwrap().unwrap();
        assert_eq!(status, 200);
        server.stop().await;
    }

    async fn jwt_claims_are_required_when_configured(test_db: TestDb) {
        const SECRET: &[u8] = b"test-secret-with-enough-entropy-0123456789";
        let mut config = test_db.config();
        config.serve.auth.jwt_secret = Some(String::from_utf8(SECRET.to_vec()).unwrap());
        config.serve.auth.jwt_issuer = Some("https://issuer.example".into());
        config.serve.auth.jwt_audience = Some("mlgate".into());
        let server = TestServer::start(config).await;
        let now = chrono::Utc::now().timestamp();
        let token = |claims: Value| jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(SECRET)).unwrap();
        let full = json!({"sub": "dash", "tenant_id": ALPHA, "role": "viewer", "exp": now + 600, "iss": "https://issuer.example", "aud": "mlgate"});
        let without = |claim: &str| { let mut c = full.clone(); c.as_object_mut().unwrap().remove(claim); c };
        let with = |claim: &str, value: Value| { let mut c = full.clone(); c[claim] = value; c };
        let answer = post(&server, Some(&token(full.clone())), "{ me { tenant } }", json!({})).await;
        assert_eq!(answer.body["data"]["me"]["tenant"], ALPHA, "{}", answer.body);
        for (claims, says) in [
            (without("iss"), "no `iss` claim"),
            (without("aud"), "no `aud` claim"),
            (with("iss", json!("https://elsewhere")), "issuer"),
            (with("aud", json!("someone-else")), "audience"),
            (with("nbf", json!(now + 300)), "not valid yet"),
            (without("tenant_id"), "no `tenant_id` claim"),
        ] {
            let answer = post(&server, Some(&token(claims.clone())), "{ me { tenant } }", json!({})).await;
            assert_eq!((answer.status, answer.code()), (401, "UNAUTHENTICATED"), "{claims}: {}", answer.body);
            let message = answer.body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(says), "{claims}: {message}");
            for debug in ["Json(", "Error(", "line ", "Kind"] {
                assert!(!message.contains(debug), "debug text in {message:?}");
            }
        }
        // A past nbf is fine.
        let answer = post(&server, Some(&token(with("nbf", json!(now - 60)))), "{ me { tenant } }", json!({})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        server.stop().await;
    }

    async fn introspection_follows_its_setting(test_db: TestDb) {
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let schema = "{ __schema { queryType { name } } }";
        let fragment = "{ ...I } fragment I on Query { __type(name: \"Model\") { name } }";
        let suggestion = |answer: &Answer| answer.body["errors"][0]["message"].as_str().unwrap_or_default().contains("Did you mean");

        let server = TestServer::start(test_db.config()).await;
        assert_eq!(post(&server, Some(&viewer), schema, json!({})).await.body["data"]["__schema"]["queryType"]["name"], "Query");
        assert!(suggestion(&post(&server, Some(&viewer), "{ modelz }", json!({})).await), "suggestions when on");
        server.stop().await;

        for (mode, admin_may) in [(server::config::IntrospectionArg::Off, false), (server::config::IntrospectionArg::Admin, true)] {
            let mut config = test_db.config();
            config.serve.limits.introspection = mode;
            let server = TestServer::start(config).await;
            for query in [schema, fragment] {
                let answer = post(&server, Some(&viewer), query, json!({})).await;
                assert_eq!((answer.status, answer.code()), (400, "GRAPHQL_VALIDATION_FAILED"), "{mode:?}: {}", answer.body);
                let answer = post(&server, Some(&admin), query, json!({})).await;
                assert_eq!(answer.status == 200 && answer.body.get("errors").is_none(), admin_may, "{mode:?} admin: {}", answer.body);
            }
            let answer = post(&server, Some(&viewer), "{ __typename me { __typename } }", json!({})).await;
            assert_eq!(answer.body["data"]["__typename"], "Query", "{}", answer.body);
            for key in [&viewer, &admin] {
                let answer = post(&server, Some(key), "{ modelz }", json!({})).await;
                assert_eq!(answer.code(), "GRAPHQL_VALIDATION_FAILED");
                assert!(!suggestion(&answer), "{mode:?}: {}", answer.body);
            }
            // Over WebSocket too.
            let mut socket = open(&server, &viewer).await;
            subscribe(&mut socket, "i", schema, json!({})).await;
            let message = next(&mut socket).await.unwrap();
            assert_eq!(message["type"], "error", "{message}");
            server.stop().await;
        }
    }

    async fn client_mistakes_are_never_internal(test_db: TestDb) {
        models(&test_db, ALPHA, &["m-1"]).await;
        let key = test_db.key(ALPHA, Role::Admin).await;
        let server = TestServer::start(test_db.config()).await;
        let nul = "a\u{0}b";
        let cases = [
            (r#"query($id: String!) { model(modelId: $id) { modelId } }"#, json!({"id": nul})),
            (r#"query($f: PredictionFilter) { predictions(filter: $f) { totalCount } }"#, json!({"f": {"resourceIdPrefix": nul}})),
            (r#"query($f: ModelFilter) { models(filter: $f) { totalCount } }"#, json!({"f": {"modelIds": ["m-1", nul]}})),
            (r#"{ model(modelId: "a\u0000b") { modelId } }"#, json!({})),
            (r#"{ shapImportance(modelId: "\u0000") { predictionCount } }"#, json!({})),
            (r#"mutation($c: String) { submitFeedback(input: {predictionId: "p", feedbackType: CORRECT, comments: $c}) { feedbackId } }"#, json!({"c": nul})),
        ];
        for (query, variables) in &cases {
            let answer = post(&server, Some(&key), query, variables.clone()).await;
            assert_eq!((answer.status, answer.code()), (400, "BAD_USER_INPUT"), "{query}: {}", answer.body);
            let mut socket = open(&server, &key).await;
            subscribe(&mut socket, "1", query, variables.clone()).await;
            let message = next(&mut socket).await.unwrap();
            assert_eq!(message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{message}");
        }
        // Missing or null required variables: request errors.
        let query = "query($id: String!) { model(modelId: $id) { modelId } }";
        for variables in [json!({}), json!({"id": null})] {
            let answer = post(&server, Some(&key), query, variables).await;
            assert_eq!((answer.status, answer.code()), (400, "GRAPHQL_VALIDATION_FAILED"), "{}", answer.body);
        }
        let answer = post(&server, Some(&key), query, json!({"id": "m-1"})).await;
        assert_eq!(answer.body["data"]["model"]["modelId"], "m-1", "{}", answer.body);
        // A named single mutation over GET is still refused (405).
        let response = server.client.get(server.url("/graphql")).bearer_auth(&key)
            .query(&[("query", r#"mutation M { revokeApiKey(id: "00000000-0000-0000-0000-000000000000") { id } }"#)])
            .send().await.unwrap();
        assert_eq!(response.status(), 405);
        server.stop().await;
    }
}

fn address_of(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// The server answers an admin's query.
async fn alive_as(server: &TestServer, key: &str) {
    let answer = post(server, Some(key), "{ me { tenant } }", json!({})).await;
    assert_eq!(
        answer.body["data"]["me"]["tenant"], ALPHA,
        "{}",
        answer.body
    );
}

/// At `RUST_LOG=trace`, no credential reaches the logs: not a bearer
/// header, not a `connection_init` payload, not a new key's secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_reaches_the_logs_at_any_level() {
    let test_db = TestDb::sqlite().await;
    let key = test_db.key(ALPHA, Role::Admin).await;
    let gateway = common::Gateway::start(&test_db.url, &[], "", &[("RUST_LOG", "trace")]).await;
    let base = gateway.base.clone();
    let created = gateway
        .post(
            Some(&key),
            r#"mutation { createApiKey(role: ADMIN, name: "log") { secret } }"#,
            json!({}),
        )
        .await;
    let secret = created["data"]["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut socket = common::ws::connect_to(&base, "/graphql/ws", Some(PROTOCOL))
        .await
        .unwrap();
    send(&mut socket, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {secret}")}})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    subscribe(
        &mut socket,
        "1",
        r#"mutation { createApiKey(role: VIEWER, name: "ws") { secret } }"#,
        json!({}),
    )
    .await;
    let message = next(&mut socket).await.unwrap();
    let ws_secret = message["payload"]["data"]["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    socket.send(Message::Close(None)).await.ok();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = gateway.logs.lock().unwrap().clone();
    drop(gateway);
    assert!(logs.contains("TRACE"), "trace logging was on");
    for credential in [&key, &secret, &ws_secret] {
        assert!(
            !logs.contains(credential.as_str()),
            "a credential in the logs"
        );
        // Nor its distinctive tail (e.g. inside an escaped frame dump).
        assert!(
            !logs.contains(&credential[12..]),
            "part of a credential in the logs"
        );
    }
}
