//! GraphQL over WebSocket (`graphql-transport-ws`): authentication in
//! `connection_init`, on `/graphql/ws` and as an upgrade of `/graphql`.

mod common;

use futures_util::SinkExt;
use sea_orm::DbBackend;
use serde_json::json;
use server::auth::Role;
use tokio_tungstenite::tungstenite::Message;

use common::ws::{connect, next, next_text, send, Socket};
use common::TestServer;

async fn send_after_close_fails(socket: &mut Socket) {
    let query = json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { tenant } }"}});
    let sent = socket.send(Message::Text(query.to_string().into())).await;
    assert!(
        sent.is_err() || next(socket).await.is_err(),
        "nothing is served after a refused init"
    );
}

/// Fields come back in the order asked, aliases and nesting included, byte
/// for byte; Hasura's and Apollo's `connection_init` shape (credentials
/// under `headers`) is understood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_keep_the_requested_order_and_headers_in_init_authenticate() {
    let test_db = common::TestDb::sqlite().await;
    let key = test_db.key("acme", Role::Viewer).await;
    let server = TestServer::start(test_db.config()).await;
    let mut socket = connect(&server, "/graphql/ws", Some("graphql-transport-ws"))
        .await
        .unwrap();
    send(&mut socket, json!({"type": "connection_init", "payload": {"headers": {"Authorization": format!("Bearer {key}")}}})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": ORDERED}}),
    )
    .await;
    let text = next_text(&mut socket).await;
    assert!(text.contains(ORDERED_DATA), "{text}");
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
    // A document that does not parse is coded as over HTTP.
    send(
        &mut socket,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "{ me {"}}),
    )
    .await;
    let answer = next(&mut socket).await.unwrap();
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(
        answer["payload"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
        "{answer}"
    );
    // A subscription event keeps the requested order too, a relation first.
    common::fixtures::seed_models(&test_db, "acme", &["m-1"]).await;
    let service = test_db.key("acme", Role::Service).await;
    let since = server.alert_cursor(&key).await;
    send(
        &mut socket,
        json!({"id": "3", "type": "subscribe", "payload": {
            "query": "subscription($since: String) { driftAlerts(since: $since) { model { modelId } metricId level } }",
            "variables": {"since": since}}}),
    )
    .await;
    server
        .data(
            &service,
            r#"mutation { recordDriftMetrics(input: [{metricId: "o-1", modelId: "m-1",
                driftType: DATA, driftScore: 0.42, psiScore: 0.42}]) { count } }"#,
            json!({}),
        )
        .await;
    let text = next_text(&mut socket).await;
    assert!(
        text.contains(
            r#"{"driftAlerts":{"model":{"modelId":"m-1"},"metricId":"o-1","level":"CRITICAL"}}"#
        ),
        "{text}"
    );
    server.stop().await;
}

/// A query whose fields are not in alphabetical order, and its answer.
const ORDERED: &str = "{ zeta: me { tenant role } alpha: me { role tenant } }";
const ORDERED_DATA: &str = r#"{"data":{"zeta":{"tenant":"acme","role":"VIEWER"},"alpha":{"role":"VIEWER","tenant":"acme"}}}"#;

backend_tests! {
    async fn a_query_runs_over_websocket_for_the_keys_tenant(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        for path in ["/graphql/ws", "/graphql"] {
            let mut socket = connect(&server, path, Some("graphql-transport-ws")).await.unwrap();
            send(&mut socket, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}})).await;
            assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
            send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { tenant role } }"}})).await;
            let answer = next(&mut socket).await.unwrap();
            assert_eq!(answer["type"], "next", "{answer}");
            assert_eq!(answer["payload"]["data"]["me"]["tenant"], "acme");
            assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
        }
        server.stop().await;
    }

    async fn nested_lists_load_in_batches_over_websocket(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = common::fixtures::scoped_for(&test_db, &db, "acme").await;
        let mut models = Vec::new();
        let mut predictions = Vec::new();
        for m in 0..20 {
            let model_id = format!("m-{m:02}");
            models.push(common::fixtures::model("acme", &model_id));
            for p in 0..2 {
                predictions.push(common::fixtures::prediction("acme", &format!("p-{m:02}-{p}"), &model_id));
            }
        }
        common::fixtures::insert_all(&scoped, models).await.unwrap();
        common::fixtures::insert_all(&scoped, predictions).await.unwrap();
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let mut socket = connect(&server, "/graphql/ws", Some("graphql-transport-ws")).await.unwrap();
        send(&mut socket, json!({"type": "connection_init", "payload": {"token": key}})).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        let query = "{ models(first: 20) { nodes { modelId predictions { totalCount nodes { predictionId model { modelId } } } } } }";
        for id in ["1", "2"] {
            let before = server.db.statements_executed();
            send(&mut socket, json!({"id": id, "type": "subscribe", "payload": {"query": query}})).await;
            let answer = next(&mut socket).await.unwrap();
            assert_eq!(answer["type"], "next", "{answer}");
            let models = answer["payload"]["data"]["models"]["nodes"].as_array().unwrap();
            assert_eq!(models.len(), 20);
            for model in models {
                assert_eq!(model["predictions"]["totalCount"], 2);
                assert_eq!(model["predictions"]["nodes"][0]["model"]["modelId"], model["modelId"]);
            }
            assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
            // The credential re-check every operation makes, then models
            // (page), predictions (count + page), models by id; plus the
            // statement that sets up a transaction (PostgreSQL: tenant,
            // role and budgets, once for the whole query operation;
            // SQLite: the deadline, once for each data call's).
            let statements = server.db.statements_executed() - before;
            let expected = match test_db.backend {
                DbBackend::Postgres => 6,
                _ => 8,
            };
            assert_eq!(statements, expected, "operation {id}");
        }
        server.stop().await;
    }

    async fn rejected_credentials_close_the_connection(test_db: TestDb) {
        let server = TestServer::start(test_db.config()).await;
        let mut socket = connect(&server, "/graphql/ws", Some("graphql-transport-ws")).await.unwrap();
        send(&mut socket, json!({"type": "connection_init", "payload": {"Authorization": "Bearer mlg_nope"}})).await;
        assert_eq!(next(&mut socket).await, Err(Some(4403)));
        send_after_close_fails(&mut socket).await;
        // No credentials at all: the same.
        let mut socket = connect(&server, "/graphql/ws", Some("graphql-transport-ws")).await.unwrap();
        send(&mut socket, json!({"type": "connection_init"})).await;
        assert_eq!(next(&mut socket).await, Err(Some(4403)));
        server.stop().await;
    }

    async fn clients_must_offer_graphql_transport_ws(test_db: TestDb) {
        let server = TestServer::start(test_db.config()).await;
        assert!(connect(&server, "/graphql/ws", None).await.is_err());
        assert!(connect(&server, "/graphql/ws", Some("graphql-ws")).await.is_err());
        server.stop().await;
    }

    async fn protocol_violations_get_their_close_codes(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let mut config = test_db.config();
        config.serve.ws.ws_init_timeout_secs = 1;
        let server = TestServer::start(config).await;
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}});
        let open = || connect(&server, "/graphql/ws", Some("graphql-transport-ws"));

        // Subscribe before connection_ack: 4401.
        let mut socket = open().await.unwrap();
        send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { tenant } }"}})).await;
        assert_eq!(next(&mut socket).await, Err(Some(4401)));

        // A second connection_init: 4429.
        let mut socket = open().await.unwrap();
        send(&mut socket, init.clone()).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        send(&mut socket, init.clone()).await;
        assert_eq!(next(&mut socket).await, Err(Some(4429)));

        // Invalid messages: 4400.
        for bad in ["not json", r#"{"no":"type"}"#, r#"{"type":"shout"}"#, r#"{"type":"subscribe","id":"","payload":{"query":"{ me { tenant } }"}}"#] {
            let mut socket = open().await.unwrap();
            send(&mut socket, init.clone()).await;
            assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
            socket.send(Message::Text(bad.to_owned().into())).await.unwrap();
            assert_eq!(next(&mut socket).await, Err(Some(4400)), "{bad}");
        }

        // No connection_init in time: 4408.
        let mut socket = open().await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(next(&mut socket).await, Err(Some(4408)));
        assert!(started.elapsed() >= std::time::Duration::from_millis(900));
        server.stop().await;
    }

    async fn ping_pong_and_operation_errors(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let mut socket = connect(&server, "/graphql/ws", Some("graphql-transport-ws")).await.unwrap();
        send(&mut socket, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}})).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        send(&mut socket, json!({"type": "ping"})).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "pong");
        // A document that does not validate: an `error` message for that id, the connection stays.
        send(&mut socket, json!({"id": "bad", "type": "subscribe", "payload": {"query": "{ me { nope } }"}})).await;
        let error = next(&mut socket).await.unwrap();
        assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("bad")), "{error}");
        assert_eq!(error["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
        // The id is free again, and the connection still answers.
        send(&mut socket, json!({"id": "bad", "type": "subscribe", "payload": {"query": "{ me { tenant } }"}})).await;
        assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["me"]["tenant"], "acme");
        server.stop().await;
    }
}
