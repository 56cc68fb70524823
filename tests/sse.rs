//! GraphQL over Server-Sent Events (`graphql-sse`, distinct connections
//! mode): alerts as `next` events whose `id` is the alert cursor, resumed
//! with `Last-Event-ID` after a disconnect with nothing lost or repeated;
//! queries, document errors and refusals; revocation; and the `graphql-sse`
//! client itself across a forced disconnect.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures;
use common::{Proxy, TestDb, TestServer};

const ALPHA: &str = "alpha";
const ALERTS: &str =
    "subscription($since: String) { driftAlerts(since: $since) { sequence metricId level } }";
const RECORD: &str = r#"mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }"#;

/// Records critical drift metrics (each raises an alert) with these ids.
async fn record(server: &TestServer, key: &str, ids: &[&str]) {
    let metrics: Vec<Value> = ids
        .iter()
        .map(|id| json!({"metricId": id, "modelId": "m-1", "driftType": "DATA", "driftScore": 0.4, "psiScore": 0.4}))
        .collect();
    server.data(key, RECORD, json!({ "input": metrics })).await;
}

/// One server-sent event.
#[derive(Debug, Default, Clone)]
struct Event {
    event: String,
    id: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// An event stream being read.
struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Events {
    /// The next event (comments skipped), or `None` when the stream ended
    /// or nothing came within `wait`.
    async fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(block).unwrap();
                let mut event = Event::default();
                for line in text.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        event.event = value.to_owned();
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        event.id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        event.data = value.trim_start().to_owned();
                    }
                }
                if event.event.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(event);
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// Whether the server ends the stream within `wait` (events before the
    /// end are skipped).
    async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }

    async fn next(&mut self) -> Event {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }
}

/// Opens an event stream for `query` (POST /graphql/stream).
async fn open(
    server: &TestServer,
    key: &str,
    query: &str,
    variables: Value,
    last_event_id: Option<&str>,
) -> Events {
    let mut request = server
        .client
        .post(server.url("/graphql/stream"))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .json(&json!({"query": query, "variables": variables}));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    Events {
        response,
        buffer: Vec::new(),
    }
}

/// The alert of a `next` event, with the event's id.
fn alert(event: &Event) -> (String, String) {
    assert_eq!(event.event, "next", "{event:?}");
    let body = event.json();
    assert!(body.get("errors").is_none(), "{body}");
    (
        body["data"]["driftAlerts"]["metricId"]
            .as_str()
            .unwrap()
            .to_owned(),
        event
            .id
            .clone()
            .expect("an alert event carries its cursor as id"),
    )
}

backend_tests! {
    async fn a_stream_resumes_after_its_last_event_id_losing_and_repeating_nothing(test_db: TestDb) {
        fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
        let viewer = test_db.key(ALPHA, Role::Viewer).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let server = TestServer::start(test_db.config()).await;
        let since = server.alert_cursor(&viewer).await;
        let mut stream = open(&server, &viewer, ALERTS, json!({"since": since}), None).await;
        record(&server, &service, &["a-1", "a-2", "a-3"]).await;
        let first = alert(&stream.next().await);
        let second = alert(&stream.next().await);
        assert_eq!((first.0.as_str(), second.0.as_str()), ("a-1", "a-2"));
        // The connection drops after the second event (the third may have
        // been sent, never read); more alerts are raised meanwhile.
        drop(stream);
        record(&server, &service, &["a-4", "a-5"]).await;
        let mut resumed = open(&server, &viewer, ALERTS, json!({"since": since}), Some(&second.1)).await;
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(alert(&resumed.next().await).0);
        }
        assert_eq!(seen, ["a-3", "a-4", "a-5"], "after the last seen, in order");
        assert!(resumed.next_within(Duration::from_millis(400)).await.is_none(), "nothing twice");
        // A Last-Event-ID that is no cursor of this tenant is refused on the stream.
        let mut refused = open(&server, &viewer, ALERTS, json!({}), Some("not-a-cursor")).await;
        let event = refused.next().await;
        assert_eq!(event.event, "next");
        assert_eq!(event.json()["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{event:?}");
        assert!(event.json()["errors"][0]["message"].as_str().unwrap().contains("Last-Event-ID"));
        assert_eq!(refused.next().await.event, "complete");
        server.stop().await;
    }
}

/// Training-job changes stream too: of the tenant's own jobs, filtered, as
/// each is then (no ids: they are not replayed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_job_changes_stream() {
    let test_db = TestDb::sqlite().await;
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let server = TestServer::start(test_db.config()).await;
    let service = test_db.key(ALPHA, Role::Service).await;
    let viewer = test_db.key(ALPHA, Role::Viewer).await;
    let jobs = r#"subscription { trainingJobUpdates(jobIds: ["job-1"]) { jobId status } }"#;
    let mut stream = open(&server, &viewer, jobs, json!({}), None).await;
    let other = test_db.key("beta", Role::Viewer).await;
    let mut beta = open(
        &server,
        &other,
        "subscription { trainingJobUpdates { jobId } }",
        json!({}),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let create = |id: &str| {
        format!(
            r#"mutation {{ createTrainingJob(input: {{jobId: "{id}", modelType: "lstm", triggerReason: MANUAL, trainingConfig: {{}}}}) {{ jobId }} }}"#
        )
    };
    server.data(&service, &create("job-other"), json!({})).await;
    server.data(&service, &create("job-1"), json!({})).await;
    let event = stream.next().await;
    assert_eq!((event.event.as_str(), event.id.as_deref()), ("next", None));
    assert_eq!(
        event.json()["data"]["trainingJobUpdates"],
        json!({"jobId": "job-1", "status": "QUEUED"})
    );
    server
        .data(
            &service,
            r#"mutation { updateTrainingJob(jobId: "job-1", input: {status: RUNNING}) { jobId } }"#,
            json!({}),
        )
        .await;
    let event = stream.next().await;
    assert_eq!(
        event.json()["data"]["trainingJobUpdates"]["status"],
        "RUNNING"
    );
    assert!(
        stream
            .next_within(Duration::from_millis(300))
            .await
            .is_none(),
        "another job's change"
    );
    assert!(
        beta.next_within(Duration::from_millis(300)).await.is_none(),
        "beta saw alpha's jobs"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_document_errors_and_refusals_over_event_streams() {
    let test_db = TestDb::sqlite().await;
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let mut config = test_db.config();
    config.serve.ws.ws_auth_recheck_secs = 1;
    config.serve.ws.ws_max_sockets_per_credential = 2;
    let server = TestServer::start(config).await;
    let admin = test_db.key(ALPHA, Role::Admin).await;

    // Streams count among the credential's connections, and a client that
    // goes away gives its place back at once (not at the next keep-alive).
    let first = open(&server, &admin, ALERTS, json!({}), None).await;
    let second = open(&server, &admin, ALERTS, json!({}), None).await;
    let third = server
        .client
        .post(server.url("/graphql/stream"))
        .bearer_auth(&admin)
        .json(&json!({"query": ALERTS}))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    drop((first, second));
    let mut reopened = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let response = server
            .client
            .post(server.url("/graphql/stream"))
            .bearer_auth(&admin)
            .json(&json!({"query": "{ me { tenant } }"}))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            reopened = true;
            break;
        }
    }
    assert!(reopened, "closed streams free their places within 2 s");

    // A query on /graphql accepting an event stream: one result, then complete.
    let response = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&admin)
        .header("accept", "text/event-stream")
        .json(&json!({"query": "{ me { tenant } }"}))
        .send()
        .await
        .unwrap();
    let mut events = Events {
        response,
        buffer: Vec::new(),
    };
    let answer = events.next().await;
    assert_eq!(
        (answer.event.as_str(), answer.id.as_deref()),
        ("next", None)
    );
    assert_eq!(answer.json(), json!({"data": {"me": {"tenant": "alpha"}}}));
    assert_eq!(events.next().await.event, "complete");

    // A document that does not parse: errors on an accepted stream.
    let mut events = open(&server, &admin, "{ me {", json!({}), None).await;
    let answer = events.next().await;
    assert_eq!(
        answer.json()["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );
    assert_eq!(events.next().await.event, "complete");

    // Bad input is an error event on an accepted stream too.
    let response = server
        .client
        .post(server.url("/graphql/stream"))
        .bearer_auth(&admin)
        .json(&json!({"query": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = Events {
        response,
        buffer: Vec::new(),
    };
    assert_eq!(
        events.next().await.json()["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert_eq!(events.next().await.event, "complete");
    let mut events = open(&server, &admin, ALERTS, json!({}), Some(&"x".repeat(600))).await;
    assert_eq!(
        events.next().await.json()["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );

    // A client that takes JSON first (urql's Accept) gets JSON on /graphql.
    let response = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&admin)
        .header(
            "accept",
            "application/graphql-response+json, application/json, text/event-stream",
        )
        .json(&json!({"query": "{ me { tenant } }"}))
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/graphql-response+json"));

    // Refused credentials keep their status.
    let response = server
        .client
        .post(server.url("/graphql/stream"))
        .bearer_auth("mlg_nope")
        .json(&json!({"query": ALERTS}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // GET (what EventSource sends) opens a subscription stream; a plain GET
    // still never runs one. From the cursor before the write: a stream from
    // "now" may take its starting point after the write commits.
    let cursor =
        server.data(&admin, "{ driftAlertCursor }", json!({})).await["driftAlertCursor"].clone();
    let variables = json!({ "since": cursor }).to_string();
    let get = |accept: &'static str| {
        server
            .client
            .get(server.url("/graphql"))
            .query(&[("query", ALERTS), ("variables", variables.as_str())])
            .bearer_auth(&admin)
            .header("accept", accept)
            .send()
    };
    assert_eq!(get("application/json").await.unwrap().status(), 405);
    let response = get("text/event-stream").await.unwrap();
    assert_eq!(response.status(), 200);
    let mut by_get = Events {
        response,
        buffer: Vec::new(),
    };
    record(&server, &admin, &["g-1"]).await;
    assert_eq!(alert(&by_get.next().await).0, "g-1");

    // Revoking the key ends its stream.
    let created = server
        .data(
            &admin,
            r#"mutation { createApiKey(role: VIEWER, name: "dash") { secret key { id } } }"#,
            json!({}),
        )
        .await;
    let secret = created["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stream = open(&server, &secret, ALERTS, json!({}), None).await;
    let id = created["createApiKey"]["key"]["id"].as_str().unwrap();
    server
        .data(
            &admin,
            &format!(r#"mutation {{ revokeApiKey(id: "{id}") {{ revokedAt }} }}"#),
            json!({}),
        )
        .await;
    assert!(
        stream.ends_within(Duration::from_secs(4)).await,
        "a revoked key's stream ends"
    );
    server.stop().await;
}

/// graphql-sse's own client (npm), through a proxy the test cuts: it
/// reconnects by itself, resuming with `Last-Event-ID` from the last alert
/// it saw, and prints every alert once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_sse_client_resumes_across_a_forced_disconnect() {
    let Some(clients) = common::node_clients("graphql-sse") else {
        return;
    };
    let test_db = TestDb::sqlite().await;
    fixtures::seed_models(&test_db, ALPHA, &["m-1"]).await;
    let viewer = test_db.key(ALPHA, Role::Viewer).await;
    let service = test_db.key(ALPHA, Role::Service).await;
    let server = TestServer::start(test_db.config()).await;
    let target: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(0, target).await;
    let since = server.alert_cursor(&viewer).await;
    let mut client = tokio::process::Command::new("node")
        .arg(clients.join("sse-client.mjs"))
        .args([
            format!("http://127.0.0.1:{}/graphql/stream", proxy.port),
            viewer.clone(),
            since,
            "6".into(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Give the client time to subscribe, then raise alerts, cut every
    // connection, raise more while it is away, and let it back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    record(&server, &service, &["s-1", "s-2", "s-3"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.down();
    record(&server, &service, &["s-4", "s-5"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.forward();
    tokio::time::sleep(Duration::from_millis(500)).await;
    record(&server, &service, &["s-6"]).await;
    let output = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::AsyncReadExt;
        let mut stdout = String::new();
        client
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .await
            .unwrap();
        let mut stderr = String::new();
        client
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        (client.wait().await.unwrap(), stdout, stderr)
    })
    .await
    .expect("the client finishes");
    let (status, stdout, stderr) = output;
    eprintln!("{stdout}{stderr}");
    assert!(
        status.success(),
        "graphql-sse client failed:\n{stdout}{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(
        report["alerts"],
        json!(["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"]),
        "{report}"
    );
    assert!(
        report["reconnects"].as_u64().unwrap() >= 1,
        "the connection was cut: {report}"
    );
    server.stop().await;
}
