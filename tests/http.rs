//! GraphQL over HTTP: media types, methods, status codes, limits, and the
//! graphql-http audit as an off-the-shelf client.

mod common;

use serde_json::json;
use server::auth::Role;

use common::{TestDb, TestServer};

const ME: &str = "{ me { tenant } }";
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn post(
    server: &TestServer,
    key: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(key)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned()
}

backend_tests! {
    async fn response_type_follows_accept(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let body = || json!({"query": ME}).to_string().into_bytes();
        let r = post(&server, &key, Some("application/json"), Some("application/json"), body()).await;
        assert_eq!(r.status(), 200);
        assert!(content_type(&r).starts_with("application/json"));
        let r = post(&server, &key, Some("application/json"), Some(GRAPHQL_RESPONSE), body()).await;
        assert_eq!(r.status(), 200);
        assert!(content_type(&r).starts_with(GRAPHQL_RESPONSE));
        let r = post(&server, &key, Some("application/json"), None, body()).await;
        assert!(content_type(&r).starts_with("application/json"));
        let r = post(&server, &key, Some("application/json"), Some("text/html"), body()).await;
        assert_eq!(r.status(), 406);
        server.stop().await;
    }

    async fn non_json_posts_are_refused_before_running(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let query = json!({"query": ME}).to_string();
        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x"), None, Some("application/json; charset=latin1")] {
            let r = post(&server, &key, content_type, Some(GRAPHQL_RESPONSE), query.clone().into_bytes()).await;
            assert_eq!(r.status(), 415, "{content_type:?}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(body.get("data").is_none());
        }
        // Not even unauthenticated callers get further than the media type.
        let r = server.client.post(server.url("/graphql")).header("content-type", "text/plain").body(query).send().await.unwrap();
        assert_eq!(r.status(), 415);
        server.stop().await;
    }

    async fn bodies_over_the_cap_get_413(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let mut config = test_db.config();
        config.serve.http.max_body_bytes = 4096;
        let server = TestServer::start(config).await;
        let padding = " ".repeat(5000);
        let big = format!("{{\"query\": \"{{ me {{ tenant }} }}{padding}\"}}");
        let r = post(&server, &key, Some("application/json"), None, big.into_bytes()).await;
        assert_eq!(r.status(), 413);
        let small = json!({"query": ME}).to_string();
        let r = post(&server, &key, Some("application/json"), None, small.into_bytes()).await;
        assert_eq!(r.status(), 200);
        server.stop().await;
    }

    async fn mutations_over_get_are_refused_and_queries_work(test_db: TestDb) {
        let key = test_db.key("acme", Role::Admin).await;
        let server = TestServer::start(test_db.config()).await;
        let get = |query: &str| server.client.get(server.url("/graphql")).bearer_auth(&key).query(&[("query", query)]).send();
        let r = get("mutation { me }").await.unwrap();
        assert_eq!(r.status(), 405);
        assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
        let r = get(ME).await.unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["data"]["me"]["tenant"], "acme");
        // PUT and friends are not GraphQL methods.
        let r = server.client.put(server.url("/graphql")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        server.stop().await;
    }

    async fn request_errors_get_400_without_data(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let cases = [
            (json!({"query": "{ me { tenant "}), "GRAPHQL_PARSE_FAILED"),
            (json!({"query": "{ me { nope } }"}), "GRAPHQL_VALIDATION_FAILED"),
            (json!({"query": "query($x: Int!) { me { tenant } }", "variables": {"x": "not an int"}}), "GRAPHQL_VALIDATION_FAILED"),
            (json!({"query": 42}), "BAD_USER_INPUT"),
            (json!({"query": ME, "variables": "[]"}), "BAD_USER_INPUT"),
        ];
        for (request, code) in cases {
            let r = post(&server, &key, Some("application/json"), Some(GRAPHQL_RESPONSE), request.to_string().into_bytes()).await;
            assert_eq!(r.status(), 400, "{request}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(body.get("data").is_none(), "{body}");
            assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
            // Under application/json the same request is answered 200, as the spec asks,
            // except when the HTTP request itself is malformed.
            let r = post(&server, &key, Some("application/json"), Some("application/json"), request.to_string().into_bytes()).await;
            let expected = if code == "BAD_USER_INPUT" { 400 } else { 200 };
            assert_eq!(r.status(), expected, "{request}");
        }
        let r = post(&server, &key, Some("application/json"), None, b"{not json".to_vec()).await;
        assert_eq!(r.status(), 400);
        server.stop().await;
    }

    async fn health_ready_and_playground(test_db: TestDb) {
        let server = TestServer::start(test_db.config()).await;
        let r = server.client.get(server.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = server.client.get(server.url("/ready")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = server.client.get(server.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(content_type(&r).starts_with("text/html"));
        assert!(r.text().await.unwrap().contains("mlgate"));
        server.stop().await;

        let mut config = test_db.config();
        config.serve.playground = false;
        let server = TestServer::start(config).await;
        let r = server.client.get(server.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        server.stop().await;
    }

    async fn responses_carry_a_request_id(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let r = server.client.post(server.url("/graphql")).bearer_auth(&key).header("x-request-id", "trace-123")
            .json(&json!({"query": ME})).send().await.unwrap();
        assert_eq!(r.headers()["x-request-id"], "trace-123");
        let r = server.client.post(server.url("/graphql")).bearer_auth(&key).json(&json!({"query": ME})).send().await.unwrap();
        assert_eq!(r.headers()["x-request-id"].len(), 36);
        server.stop().await;
    }
}

/// Fields come back in the order asked, aliases and nesting included, byte
/// for byte (a null field keeps its place).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_keep_the_requested_order_byte_for_byte() {
    let test_db = TestDb::sqlite().await;
    let key = test_db.key("acme", Role::Viewer).await;
    let server = TestServer::start(test_db.config()).await;
    let query = "{ zeta: me { tenant role } alpha: me { role tenant } }";
    let response = post(
        &server,
        &key,
        Some("application/json"),
        None,
        serde_json::to_vec(&json!({"query": query})).unwrap(),
    )
    .await;
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"data":{"zeta":{"tenant":"acme","role":"VIEWER"},"alpha":{"role":"VIEWER","tenant":"acme"}}}"#
    );
    let query = r#"{ zeta: me { tenant } alpha: model(modelId: "missing") { modelId } }"#;
    let response = post(
        &server,
        &key,
        Some("application/json"),
        None,
        serde_json::to_vec(&json!({"query": query})).unwrap(),
    )
    .await;
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"data":{"zeta":{"tenant":"acme"},"alpha":null}"#),
        "{text}"
    );
    // A field resolved through a DataLoader (`model`) finishes after its
    // siblings; it still answers in its requested place, through a fragment
    // too, in a list and over a nested relation.
    common::fixtures::seed_models(&test_db, "acme", &["m-1"]).await;
    let db = test_db.connect().await;
    let scoped = common::fixtures::scoped_for(&test_db, &db, "acme").await;
    common::fixtures::insert(&scoped, common::fixtures::prediction("acme", "p-1", "m-1"))
        .await
        .unwrap();
    db.close().await.ok();
    let query = r#"{ predictions(first: 1) { nodes { model { modelId } predictionId ...F
        feedback(first: 1) { totalCount } } } } fragment F on Prediction { model { status } riskLevel }"#;
    let response = post(
        &server,
        &key,
        Some("application/json"),
        None,
        serde_json::to_vec(&json!({"query": query})).unwrap(),
    )
    .await;
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"data":{"predictions":{"nodes":[{"model":{"modelId":"m-1","status":"ACTIVE"},"predictionId":"p-1","riskLevel":"HIGH","feedback":{"totalCount":0}}]}}}"#
    );
    server.stop().await;
}

/// graphql-http's `auditServer` (npm) against a running mlgate: no MUST may fail.
/// Needs Node and `npm ci` in tests/clients; CI provides both and requires it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_http_audit_reports_no_failures() {
    let Some(audit_dir) = common::node_clients("graphql-http") else {
        return;
    };
    let test_db = TestDb::sqlite().await;
    let key = test_db.key("acme", Role::Viewer).await;
    let server = TestServer::start(test_db.config()).await;
    let output = tokio::process::Command::new("node")
        .arg(audit_dir.join("audit.mjs"))
        .arg(server.url("/graphql"))
        .arg(&key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "audit failed:\n{stdout}");
    assert!(stdout.contains(" 0 errors"), "{stdout}");
    server.stop().await;
}
