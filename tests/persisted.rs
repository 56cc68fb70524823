//! Documents named instead of sent, and several operations in one request:
//! Apollo's automatic persisted queries (APQ), trusted documents (`allow`,
//! `require`, admins exempt), JSON-array batching, over HTTP and WebSocket,
//! with raw requests and with Apollo Client itself.

mod common;

use serde_json::{json, Value};
use server::auth::Role;
use sha2::{Digest, Sha256};

use common::ws::{next, open, send};
use common::{TestDb, TestServer};

const ME: &str = "{ me { tenant role } }";
const MODELS: &str = "{ models { totalCount } }";
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn persisted(text: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}})
}

/// POSTs `body` (with `key`, if any), answering (status, body).
async fn post(
    server: &TestServer,
    key: Option<&str>,
    accept: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = server.client.post(server.url("/graphql")).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// A manifest file of trusted documents, removed when dropped.
struct Manifest(std::path::PathBuf);

impl Manifest {
    fn new(documents: Value) -> Self {
        let path =
            std::env::temp_dir().join(format!("mlgate-trusted-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, documents.to_string()).unwrap();
        Self(path)
    }
}

impl Drop for Manifest {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apq_registers_verified_documents_for_authenticated_callers() {
    let test_db = TestDb::sqlite().await;
    let key = test_db.key("acme", Role::Viewer).await;
    let server = TestServer::start(test_db.config()).await;
    let hash_only = json!({"extensions": persisted(ME)});

    // Unknown hash: Apollo's error, 200 for application/json and 400 for
    // the GraphQL response type (no data).
    let (status, body) = post(&server, Some(&key), None, hash_only.clone()).await;
    assert_eq!(
        (status, code(&body)),
        (200, "PERSISTED_QUERY_NOT_FOUND"),
        "{body}"
    );
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    let (status, _) = post(
        &server,
        Some(&key),
        Some(GRAPHQL_RESPONSE),
        hash_only.clone(),
    )
    .await;
    assert_eq!(status, 400);

    // A hash that is not the text's is refused and registers nothing.
    let wrong = json!({"query": MODELS, "extensions": persisted(ME)});
    let (status, body) = post(&server, Some(&key), None, wrong).await;
    assert_eq!((status, code(&body)), (400, "BAD_USER_INPUT"), "{body}");
    // An anonymous caller registers nothing, and cannot probe the cache
    // (a hash is looked up for the caller's tenant, once known).
    let whole = json!({"query": ME, "extensions": persisted(ME)});
    let (status, _) = post(&server, None, None, whole.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = post(&server, None, None, hash_only.clone()).await;
    assert_eq!(status, 401);
    let (_, body) = post(&server, Some(&key), None, hash_only.clone()).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    // Nor does a document that fails validation.
    let invalid = "{ me { nope } }";
    let body = json!({"query": invalid, "extensions": persisted(invalid)});
    let (_, answer) = post(&server, Some(&key), None, body).await;
    assert_eq!(code(&answer), "GRAPHQL_VALIDATION_FAILED", "{answer}");
    let (_, answer) = post(
        &server,
        Some(&key),
        None,
        json!({"extensions": persisted(invalid)}),
    )
    .await;
    assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");

    // Sent whole by a caller: it runs and is registered; then the hash
    // alone runs it, by POST and by GET (variables included).
    let (status, body) = post(&server, Some(&key), None, whole).await;
    assert_eq!(
        (status, &body["data"]["me"]["tenant"]),
        (200, &json!("acme")),
        "{body}"
    );
    let (status, body) = post(&server, Some(&key), None, hash_only.clone()).await;
    assert_eq!(
        (status, &body["data"]["me"]["tenant"]),
        (200, &json!("acme")),
        "{body}"
    );
    // Another tenant's caller does not find it: registrations are per tenant.
    let other = test_db.key("globex", Role::Viewer).await;
    let (_, body) = post(&server, Some(&other), None, hash_only).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    let query = "query One($n: Int) { models(first: $n) { totalCount } }";
    let register = json!({"query": query, "variables": {"n": 1}, "extensions": persisted(query)});
    assert_eq!(post(&server, Some(&key), None, register).await.0, 200);
    let response = server
        .client
        .get(server.url("/graphql"))
        .query(&[
            ("extensions", persisted(query).to_string()),
            ("variables", json!({"n": 2}).to_string()),
        ])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["models"]["totalCount"], 0, "{body}");

    // With APQ off, a hash is answered PersistedQueryNotSupported.
    server.stop().await;
    let mut config = test_db.config();
    config.serve.documents.apq_max_entries = 0;
    let server = TestServer::start(config).await;
    let (_, body) = post(
        &server,
        Some(&key),
        None,
        json!({"extensions": persisted(ME)}),
    )
    .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_SUPPORTED", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotSupported");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_runs_only_trusted_documents_on_every_transport() {
    let test_db = TestDb::sqlite().await;
    let viewer = test_db.key("acme", Role::Viewer).await;
    let admin = test_db.key("acme", Role::Admin).await;
    let manifest = Manifest::new(json!({"me-v1": ME}));
    let mut config = test_db.config();
    config.serve.documents.trusted_documents = Some(manifest.0.clone());
    let server = TestServer::start(config.clone()).await;

    // Listed: by id, by `sha256:` id, by APQ hash, or sent as text.
    for body in [
        json!({"documentId": "me-v1"}),
        json!({"documentId": format!("sha256:{}", sha256(ME))}),
        json!({"extensions": persisted(ME)}),
        json!({"query": ME}),
    ] {
        let (status, answer) = post(&server, Some(&viewer), None, body.clone()).await;
        assert_eq!(
            (status, &answer["data"]["me"]["tenant"]),
            (200, &json!("acme")),
            "{body}: {answer}"
        );
    }
    let response = server
        .client
        .get(server.url("/graphql?documentId=me-v1"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Anything else is refused before it is parsed or authenticated: an
    // admin too (not exempt by default), and a document that does not parse.
    for key in [Some(viewer.as_str()), Some(admin.as_str()), None] {
        for query in [MODELS, "{ not graphql"] {
            let (status, answer) = post(&server, key, None, json!({"query": query})).await;
            assert_eq!(
                (status, code(&answer)),
                (200, "TRUSTED_DOCUMENT_REQUIRED"),
                "{answer}"
            );
        }
    }
    let (status, answer) = post(
        &server,
        Some(&viewer),
        Some(GRAPHQL_RESPONSE),
        json!({"query": MODELS}),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "TRUSTED_DOCUMENT_REQUIRED"));
    let (_, answer) = post(&server, Some(&viewer), None, json!({"documentId": "nope"})).await;
    assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
    // A batch runs only if every document is trusted.
    let batch = json!([{"documentId": "me-v1"}, {"query": MODELS}]);
    let (_, answer) = post(&server, Some(&viewer), None, batch).await;
    assert_eq!(code(&answer), "TRUSTED_DOCUMENT_REQUIRED", "{answer}");

    // Over WebSocket alike.
    let mut socket = open(&server, &viewer).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": MODELS}}),
    )
    .await;
    let answer = next(&mut socket).await.unwrap();
    assert_eq!(
        (
            answer["type"].as_str(),
            answer["payload"][0]["extensions"]["code"].as_str()
        ),
        (Some("error"), Some("TRUSTED_DOCUMENT_REQUIRED")),
        "{answer}"
    );
    send(
        &mut socket,
        json!({"id": "2", "type": "subscribe", "payload": {"documentId": "me-v1"}}),
    )
    .await;
    let answer = next(&mut socket).await.unwrap();
    assert_eq!(
        answer["payload"]["data"]["me"]["tenant"], "acme",
        "{answer}"
    );
    server.stop().await;

    // Admins exempted: an admin runs anything, over both transports; a
    // viewer still only the manifest.
    config.serve.documents.trusted_documents_exempt_admins = true;
    let server = TestServer::start(config).await;
    let (_, answer) = post(&server, Some(&admin), None, json!({"query": MODELS})).await;
    assert_eq!(answer["data"]["models"]["totalCount"], 0, "{answer}");
    let (_, answer) = post(&server, Some(&viewer), None, json!({"query": MODELS})).await;
    assert_eq!(code(&answer), "TRUSTED_DOCUMENT_REQUIRED", "{answer}");
    let (status, _) = post(&server, None, None, json!({"query": MODELS})).await;
    assert_eq!(status, 401, "an exempt-admin check authenticates first");
    let mut socket = open(&server, &admin).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": MODELS}}),
    )
    .await;
    let answer = next(&mut socket).await.unwrap();
    assert_eq!(
        answer["payload"]["data"]["models"]["totalCount"], 0,
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_is_a_batch_answered_in_order() {
    let test_db = TestDb::sqlite().await;
    let key = test_db.key("acme", Role::Viewer).await;
    let mut config = test_db.config();
    config.serve.http.max_batch_operations = 3;
    let server = TestServer::start(config.clone()).await;

    let batch = json!([
        {"query": MODELS},
        {"query": "query Who { me { tenant } }", "operationName": "Who"},
        {"query": "{ nope }"},
    ]);
    let before = server.db.statements_executed();
    let response = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let answers: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(answers.len(), 3, "{text}");
    assert_eq!(answers[0]["data"]["models"]["totalCount"], 0);
    assert_eq!(answers[1]["data"]["me"]["tenant"], "acme");
    assert_eq!(code(&answers[2]), "GRAPHQL_VALIDATION_FAILED", "{text}");
    // Each operation ran on its own path: one key lookup each, at least.
    assert!(server.db.statements_executed() - before >= 3);

    let four = json!([{"query": ME}, {"query": ME}, {"query": ME}, {"query": ME}]);
    let (status, answer) = post(&server, Some(&key), None, four).await;
    assert_eq!((status, code(&answer)), (400, "BAD_USER_INPUT"));
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 3"),
        "{answer}"
    );
    let (status, answer) = post(&server, Some(&key), None, json!([])).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post(&server, Some(&key), None, json!([{"query": ME}, 7])).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a GraphQL request"),
        "{answer}"
    );
    // Refused credentials: every operation says 401, and so does the batch.
    let (status, answer) = post(
        &server,
        Some("mlg_nope"),
        None,
        json!([{"query": ME}, {"query": ME}]),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");
    server.stop().await;

    config.serve.http.max_batch_operations = 0;
    let server = TestServer::start(config).await;
    let (status, answer) = post(&server, Some(&key), None, json!([{"query": ME}])).await;
    assert_eq!(status, 400);
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("batched requests are off"),
        "{answer}"
    );
    server.stop().await;
}

/// Runs `apollo-e2e.mjs` for `scenario`; its steps.
async fn apollo(server: &TestServer, key: &str, scenario: &str) -> Option<Vec<Value>> {
    let clients = common::node_clients("@apollo/client")?;
    let output = tokio::process::Command::new("node")
        .arg(clients.join("apollo-e2e.mjs"))
        .arg(server.url("/graphql"))
        .arg(key)
        .arg(scenario)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "apollo-e2e {scenario} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}")))
}

/// (method, whether the text was sent, whether a hash was) of each request.
fn requests(step: &Value) -> Vec<(String, bool, bool)> {
    step["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["query"].as_bool().unwrap(),
                r["hash"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_clients_persisted_query_link_and_batch_link_work_unchanged() {
    let test_db = TestDb::sqlite().await;
    let key = test_db.key("acme", Role::Viewer).await;
    let server = TestServer::start(test_db.config()).await;
    let Some(steps) = apollo(&server, &key, "apq").await else {
        return;
    };
    let post = |query: bool| ("POST".to_owned(), query, true);
    let get = |query: bool| ("GET".to_owned(), query, true);
    // First: the hash alone, PersistedQueryNotFound, then the text with its
    // hash (registered). Again: the hash alone. The same by GET.
    assert_eq!(steps[0]["data"]["me"]["tenant"], "acme", "{}", steps[0]);
    assert_eq!(requests(&steps[0]), vec![post(false), post(true)]);
    assert_eq!(steps[1]["data"]["me"]["tenant"], "acme");
    assert_eq!(requests(&steps[1]), vec![post(false)]);
    assert_eq!(steps[2]["data"]["models"]["totalCount"], 0, "{}", steps[2]);
    assert_eq!(requests(&steps[2]), vec![get(false), post(true)]);
    assert_eq!(requests(&steps[3]), vec![get(false)]);
    assert_eq!(steps[3]["data"]["models"]["totalCount"], 0);

    let steps = apollo(&server, &key, "batch").await.unwrap();
    let batched = &steps[0];
    assert_eq!(
        batched["requests"].as_array().unwrap().len(),
        1,
        "{batched}"
    );
    assert_eq!(batched["requests"][0]["batch"], 3, "{batched}");
    assert_eq!(batched["data"][0]["me"]["tenant"], "acme");
    assert_eq!(batched["data"][1]["models"]["totalCount"], 0);
    assert!(
        batched["data"][2]["driftAlertCursor"].is_string(),
        "{batched}"
    );

    // Trusted documents from the manifest Apollo's own printing makes.
    let clients = common::node_clients("@apollo/client").unwrap();
    let output = tokio::process::Command::new("node")
        .arg(clients.join("apollo-e2e.mjs"))
        .args([server.url("/graphql"), key.clone(), "manifest".into()])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    server.stop().await;
    let manifest = Manifest::new(serde_json::from_slice(&output.stdout).unwrap());
    let mut config = test_db.config();
    config.serve.documents.trusted_documents = Some(manifest.0.clone());
    let server = TestServer::start(config).await;
    let steps = apollo(&server, &key, "trusted").await.unwrap();
    // Listed: found by its hash at once.
    assert_eq!(steps[0]["data"]["me"]["tenant"], "acme", "{}", steps[0]);
    assert_eq!(requests(&steps[0]), vec![post(false)]);
    // Unlisted: refused at once (not "not found", which would only make
    // the link send the text to have it refused).
    assert_eq!(
        steps[1]["error"],
        json!(["TRUSTED_DOCUMENT_REQUIRED"]),
        "{}",
        steps[1]
    );
    assert_eq!(requests(&steps[1]), vec![post(false)]);
    server.stop().await;
}
