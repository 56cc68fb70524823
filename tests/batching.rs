//! No N+1: nested lists load through per-request DataLoaders, so the number
//! of SQL statements depends on the nesting, not on the number of rows.
//! And limits: over-deep, over-complex and over-sized queries are refused
//! before any of their SQL runs.

mod common;

use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert_all, scoped_for};
use common::TestServer;

const TENANT: &str = "acme";

const NESTED: &str = r#"query($models: Int) {
    models(first: $models, orderBy: {field: MODEL_ID, direction: ASC}) {
        totalCount
        edges { node {
            modelId
            predictions(first: 50) {
                totalCount
                edges { node {
                    predictionId
                    feedback(first: 5) { nodes { feedbackId } }
                    model { modelId }
                } }
            }
            driftMetrics(first: 10) { nodes { metricId } }
        } }
    }
}"#;

fn count_nodes(data: &Value, key: &str) -> usize {
    match data {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| usize::from(k == key) + count_nodes(v, key))
            .sum(),
        Value::Array(items) => items.iter().map(|v| count_nodes(v, key)).sum(),
        _ => 0,
    }
}

backend_tests! {
    async fn nested_lists_cost_the_same_statements_for_5_and_50_models(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        let mut models = Vec::new();
        let mut predictions = Vec::new();
        let mut feedback = Vec::new();
        let mut drift = Vec::new();
        for m in 0..50 {
            let model_id = format!("m-{m:02}");
            models.push(fixtures::model(TENANT, &model_id));
            for p in 0..3 {
                let prediction_id = format!("p-{m:02}-{p}");
                predictions.push(fixtures::prediction(TENANT, &prediction_id, &model_id));
                feedback.push(fixtures::feedback(TENANT, &format!("f-{m:02}-{p}"), &prediction_id));
            }
            for d in 0..2 {
                drift.push(fixtures::drift_metric(TENANT, &format!("d-{m:02}-{d}"), &model_id));
            }
        }
        insert_all(&scoped, models).await.unwrap();
        insert_all(&scoped, predictions).await.unwrap();
        insert_all(&scoped, feedback).await.unwrap();
        insert_all(&scoped, drift).await.unwrap();
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;

        // Authentication alone, as the baseline every request pays.
        let (baseline, _) = server.statements_for(&key, "{ __typename }", json!({})).await;
        let (five, body5) = server.statements_for(&key, NESTED, json!({"models": 5})).await;
        let (fifty, body50) = server.statements_for(&key, NESTED, json!({"models": 50})).await;
        assert!(body5.get("errors").is_none() && body50.get("errors").is_none(), "{body50}");
        assert_eq!(count_nodes(&body5["data"], "predictionId"), 15);
        assert_eq!(count_nodes(&body50["data"], "predictionId"), 150);
        assert_eq!(count_nodes(&body50["data"], "feedbackId"), 150);
        assert_eq!(count_nodes(&body50["data"], "metricId"), 100);
        assert_eq!(body50["data"]["models"]["edges"][7]["node"]["predictions"]["totalCount"], 3);
        assert_eq!(five, fifty, "statements grow with rows: 5 models {five}, 50 models {fifty}");
        // Root list + count, then one batch per nested level (predictions with
        // counts, feedback, model, drift); each data call adds the statement
        // that sets up its transaction (PostgreSQL: tenant, role and time
        // budgets; SQLite: the statement deadline).
        let per_call = 1;
        let bound = baseline + 2 + 4 + 1 + 5 * per_call;
        eprintln!("statements: baseline {baseline}, 5 models {five}, 50 models {fifty}, bound {bound}");
        assert!(fifty <= bound, "{fifty} statements for a 4-level query (bound {bound})");
        server.stop().await;
    }

    async fn limits_refuse_queries_before_any_sql(test_db: TestDb) {
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let (baseline, _) = server.statements_for(&key, "{ __typename }", json!({})).await;

        let deep = |cycles: usize| {
            let mut query = String::from("{ models { nodes { modelId ");
            for _ in 0..cycles {
                query.push_str("predictions { nodes { model { ");
            }
            query.push_str("modelId");
            for _ in 0..cycles {
                query.push_str(" } } }");
            }
            query + " } } }"
        };
        let complex = "{ models(first: 100) { nodes { predictions(first: 100) { nodes { feedback(first: 100) { nodes { feedbackId } } } } } } }";
        let cases: Vec<(String, Value, &str, &str)> = vec![
            (deep(5), json!({}), "QUERY_TOO_DEEP", "depth"),
            (deep(17), json!({}), "QUERY_TOO_DEEP", "depth"),
            (complex.into(), json!({}), "QUERY_TOO_COMPLEX", "complexity"),
            ("{ models(first: 101) { totalCount } }".into(), json!({}), "BAD_USER_INPUT", "pageSize"),
            (
                "query($n: Int) { models(first: 1) { nodes { predictions(last: $n) { totalCount } } } }".into(),
                json!({"n": 500}),
                "BAD_USER_INPUT",
                "pageSize",
            ),
            (
                "{ ...F } fragment F on Query { drift: driftMetrics(first: 1000) { totalCount } }".into(),
                json!({}),
                "BAD_USER_INPUT",
                "pageSize",
            ),
        ];
        for (query, variables, code, limit) in cases {
            let (statements, body) = server.statements_for(&key, &query, variables).await;
            assert!(body.get("data").is_none(), "{body}");
            let error = &body["errors"][0];
            assert_eq!(error["extensions"]["code"], code, "{body}");
            assert_eq!(error["extensions"]["limit"], limit, "{body}");
            // Document limits refuse before the credentials are even looked
            // up; the others after authentication, before any data is read.
            assert!(statements <= baseline, "{limit}: SQL ran for a refused query ({statements})");
        }
        let (_, body) = server.graphql(&key, &deep(5)).await;
        assert_eq!(body["errors"][0]["extensions"]["actual"], 18, "{body}");
        // The same query under the limits runs.
        let (_, body) = server.graphql(&key, "{ models(first: 100) { totalCount } }").await;
        assert_eq!(body["data"]["models"]["totalCount"], 0);
        // Negative sizes are refused too, with the argument named.
        let (_, body) = server.graphql(&key, "{ models(first: -1) { totalCount } }").await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["extensions"]["field"], "first");
        server.stop().await;
    }

    async fn limits_are_configurable(test_db: TestDb) {
        let key = test_db.key(TENANT, Role::Viewer).await;
        let mut config = test_db.config();
        config.serve.limits.max_page_size = 10;
        config.serve.limits.default_page_size = 3;
        config.serve.limits.max_query_depth = 4;
        let server = TestServer::start(config).await;
        let (_, body) = server.graphql(&key, "{ models(first: 11) { totalCount } }").await;
        assert_eq!(body["errors"][0]["extensions"]["max"], 10);
        let (_, body) = server.graphql(&key, "{ models { nodes { predictions { nodes { predictionId } } } } }").await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP");
        server.stop().await;
    }
}
