//! OpenTelemetry traces over OTLP/HTTP, received by a tiny collector in
//! the test: one span per GraphQL operation named by its operation type,
//! with a child span per SQL statement, sent by the real binary.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use server::auth::Role;

use common::Gateway;

/// What the collector received: every span with its resource's service name.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// An OTLP/HTTP receiver on a free loopback port: `POST /v1/traces` with a
/// protobuf `ExportTraceServiceRequest`.
async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .as_ref()
                        .and_then(|r| text(&r.attributes, "service.name"))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            store.lock().unwrap().push((service.clone(), span));
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

backend_tests! {
    async fn operations_and_their_statements_reach_the_collector(test_db: TestDb) {
        let (endpoint, received) = collector().await;
        let key = test_db.key("acme", Role::Admin).await;
        let gateway = Gateway::start(&test_db.url, &["--otlp-endpoint", &endpoint], "", &[]).await;
        for query in [
            "query Dashboard { models { totalCount } }",
            r#"mutation Register { registerModel(input: {modelId: "m-1", modelName: "M", modelType: "lstm", version: "1.0.0"}) { modelId } }"#,
        ] {
            let answer = gateway.post(Some(&key), query, json!({})).await;
            assert!(answer.get("errors").is_none(), "{answer}");
        }
        // SIGTERM: the process sends what it buffered before it exits.
        let mut gateway = gateway;
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &gateway.pid().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        let exited = tokio::time::timeout(Duration::from_secs(20), gateway.child.wait()).await;
        assert!(exited.is_ok(), "mlgate exits after SIGTERM");

        let spans = received.lock().unwrap().clone();
        let operation = |name: &str| {
            spans
                .iter()
                .find(|(_, span)| span.name == name)
                .unwrap_or_else(|| panic!("no `{name}` span among {:?}", spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()))
                .clone()
        };
        let (service, query) = operation("query");
        assert_eq!(service, "mlgate");
        assert_eq!(text(&query.attributes, "graphql.operation.type").as_deref(), Some("query"));
        assert_eq!(text(&query.attributes, "graphql.operation.name").as_deref(), Some("Dashboard"));
        let (_, mutation) = operation("mutation");
        assert_eq!(text(&mutation.attributes, "graphql.operation.name").as_deref(), Some("Register"));
        for (parent, verb) in [(&query, "SELECT"), (&mutation, "INSERT")] {
            let children: Vec<&Span> = spans
                .iter()
                .map(|(_, s)| s)
                .filter(|s| s.parent_span_id == parent.span_id)
                .collect();
            let statement = children
                .iter()
                .find(|s| s.name == verb)
                .unwrap_or_else(|| panic!("no {verb} child of {}: {:?}", parent.name, children.iter().map(|s| &s.name).collect::<Vec<_>>()));
            assert_eq!(statement.trace_id, parent.trace_id);
            let sql = text(&statement.attributes, "db.query.text").unwrap();
            assert!(sql.to_uppercase().starts_with(verb), "{sql}");
            assert!(!sql.contains("m-1"), "values are bound, never in the text: {sql}");
            assert!(statement.start_time_unix_nano >= parent.start_time_unix_nano);
            assert!(statement.end_time_unix_nano <= parent.end_time_unix_nano);
        }
    }
}
