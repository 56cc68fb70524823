//! Light reads without per-call overhead: a selection reads only the large
//! optional columns it asks for (and the right ones, whichever way the
//! prediction is reached), model reads never carry the encrypted model,
//! and on PostgreSQL a query operation's data calls share one transaction
//! that a failed call cannot poison.

mod common;

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};
use server::auth::Role;
use server::db::{Database, DbSettings};

use common::fixtures::{self, insert_all, scoped_for};
use common::TestServer;

const TENANT: &str = "acme";

/// Each field of `Prediction` built from an optional column, as selected.
const OPTIONAL_FIELDS: [(&str, &str); 7] = [
    ("impactFactors", "impactFactors"),
    ("uncertaintySources", "uncertaintySources"),
    ("recommendations", "recommendations"),
    ("featuresUsed", "featuresUsed"),
    ("shapValues", "shapValues { feature value }"),
    ("shapBaseValue", "shapBaseValue"),
    (
        "attentionWeights",
        "attentionWeights { shape features { feature weight } raw }",
    ),
];

/// `field` of prediction `p-1`, reached through `path` with `selection`.
fn through(path: &str, selection: &str) -> String {
    match path {
        "lookup" => {
            format!(r#"{{ prediction(predictionId: "p-1") {{ predictionId {selection} }} }}"#)
        }
        "nodes" => format!("{{ predictions {{ nodes {{ predictionId {selection} }} }} }}"),
        "edges" => {
            format!("{{ predictions {{ edges {{ node {{ predictionId {selection} }} }} }} }}")
        }
        "recent" => format!("{{ recentPredictions {{ nodes {{ predictionId {selection} }} }} }}"),
        "model" => format!(
            r#"{{ models(filter: {{modelIds: ["m-1"]}}) {{ nodes {{ predictions {{ nodes {{ predictionId {selection} }} }} }} }} }}"#
        ),
        "feedback" => {
            format!("{{ feedback {{ nodes {{ prediction {{ predictionId {selection} }} }} }} }}")
        }
        "fragment" => format!(
            r#"query {{ prediction(predictionId: "p-1") {{ ...P }} }} fragment P on Prediction {{ predictionId {selection} }}"#
        ),
        other => unreachable!("{other}"),
    }
}

/// The prediction object in an answer of [`through`].
fn prediction_of<'a>(path: &str, data: &'a Value) -> &'a Value {
    match path {
        "lookup" | "fragment" => &data["prediction"],
        "nodes" => &data["predictions"]["nodes"][0],
        "edges" => &data["predictions"]["edges"][0]["node"],
        "recent" => &data["recentPredictions"]["nodes"][0],
        "model" => &data["models"]["nodes"][0]["predictions"]["nodes"][0],
        "feedback" => &data["feedback"]["nodes"][0]["prediction"],
        other => unreachable!("{other}"),
    }
}

/// Models `first` (m-1) and m-2, predictions p-1 (of m-1) and p-2 (of
/// m-2), and feedback f-1 on p-1.
async fn two_models_two_predictions(
    scoped: &server::db::Scoped,
    first: entity::model::ActiveModel,
) {
    insert_all(scoped, vec![first, fixtures::model(TENANT, "m-2")])
        .await
        .unwrap();
    insert_all(
        scoped,
        vec![
            fixtures::prediction(TENANT, "p-1", "m-1"),
            fixtures::prediction(TENANT, "p-2", "m-2"),
        ],
    )
    .await
    .unwrap();
    insert_all(scoped, vec![fixtures::feedback(TENANT, "f-1", "p-1")])
        .await
        .unwrap();
}

const PATHS: [&str; 7] = [
    "lookup", "nodes", "edges", "recent", "model", "feedback", "fragment",
];

backend_tests! {
    async fn each_optional_field_is_read_whichever_way_it_is_selected(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        let mut model = fixtures::model(TENANT, "m-1");
        model.encrypted_model = Set(Some(vec![7; 4096]));
        insert_all(&scoped, vec![model, fixtures::model(TENANT, "m-2")]).await.unwrap();
        let mut prediction = fixtures::prediction(TENANT, "p-1", "m-1");
        prediction.impact_factors = Set(Some(json!({"exposure": "public"})));
        prediction.uncertainty_sources = Set(Some(json!(["sparse history"])));
        prediction.features_used = Set(Some(json!(["exposure", "age"])));
        prediction.shap_values = Set(Some(json!({"exposure": 0.5, "age": -0.25, "base_value": 0.125})));
        prediction.attention_weights = Set(Some(json!({"exposure": 0.75, "age": 0.25})));
        insert_all(&scoped, vec![prediction]).await.unwrap();
        insert_all(&scoped, vec![fixtures::feedback(TENANT, "f-1", "p-1")]).await.unwrap();
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;

        // Every optional field at once reads every column: the reference.
        let everything: Vec<&str> = OPTIONAL_FIELDS.iter().map(|(_, s)| *s).collect();
        let reference = server.data(&key, &through("lookup", &everything.join(" ")), json!({})).await;
        let reference = prediction_of("lookup", &reference).clone();
        for (field, _) in OPTIONAL_FIELDS {
            assert!(
                !reference[field].is_null() && reference[field] != json!([]),
                "{field} is stored, so the reference has it: {reference}"
            );
        }
        // Each alone, and each beside another, through every path.
        for path in PATHS {
            for (i, (field, selection)) in OPTIONAL_FIELDS.iter().enumerate() {
                let data = server.data(&key, &through(path, selection), json!({})).await;
                assert_eq!(prediction_of(path, &data)[field], reference[field], "{field} alone via {path}");
                let (other, other_selection) = OPTIONAL_FIELDS[(i + 1) % OPTIONAL_FIELDS.len()];
                let both = format!("{selection} {other_selection}");
                let data = server.data(&key, &through(path, &both), json!({})).await;
                let answer = prediction_of(path, &data);
                assert_eq!(answer[field], reference[field], "{field} beside {other} via {path}");
                assert_eq!(answer[other], reference[other], "{other} beside {field} via {path}");
            }
        }
        // One batch, two selections of one prediction: each gets its fields.
        let data = server
            .data(
                &key,
                r#"{ a: prediction(predictionId: "p-1") { shapBaseValue }
                     b: prediction(predictionId: "p-1") { recommendations }
                     feedback { nodes { prediction { featuresUsed } } } }"#,
                json!({}),
            )
            .await;
        assert_eq!(data["a"]["shapBaseValue"], reference["shapBaseValue"]);
        assert_eq!(data["b"]["recommendations"], reference["recommendations"]);
        assert_eq!(data["feedback"]["nodes"][0]["prediction"]["featuresUsed"], reference["featuresUsed"]);

        // The encrypted model is never read, yet whether there is one shows.
        let data = server
            .data(
                &key,
                r#"{ one: model(modelId: "m-1") { hasEncryptedModel }
                     other: model(modelId: "m-2") { hasEncryptedModel }
                     models(orderBy: {field: MODEL_ID, direction: ASC}) { nodes { modelId hasEncryptedModel } }
                     prediction(predictionId: "p-1") { model { hasEncryptedModel } }
                     compareModels(a: {modelId: "m-1"}, b: {modelId: "m-2"}) { a { model { hasEncryptedModel } } b { model { hasEncryptedModel } } } }"#,
                json!({}),
            )
            .await;
        assert_eq!(data["one"]["hasEncryptedModel"], true);
        assert_eq!(data["other"]["hasEncryptedModel"], false);
        assert_eq!(data["models"]["nodes"], json!([
            {"modelId": "m-1", "hasEncryptedModel": true},
            {"modelId": "m-2", "hasEncryptedModel": false},
        ]));
        assert_eq!(data["prediction"]["model"]["hasEncryptedModel"], true);
        assert_eq!(data["compareModels"]["a"]["model"]["hasEncryptedModel"], true);
        assert_eq!(data["compareModels"]["b"]["model"]["hasEncryptedModel"], false);
        server.stop().await;
    }

    async fn a_prediction_read_by_id_brings_its_own_model_in_the_same_statement(test_db: TestDb) {
        let db = test_db.connect().await;
        // Another tenant has a model of the same id, named differently.
        let mut theirs = fixtures::model("other", "m-1");
        theirs.model_name = Set("theirs".into());
        let other = scoped_for(&test_db, &db, "other").await;
        insert_all(&other, vec![theirs]).await.unwrap();
        insert_all(&other, vec![fixtures::prediction("other", "p-9", "m-1")]).await.unwrap();
        let mut with_blob = fixtures::model(TENANT, "m-1");
        with_blob.encrypted_model = Set(Some(vec![7; 4096]));
        two_models_two_predictions(&scoped_for(&test_db, &db, TENANT).await, with_blob).await;
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        const MODEL: &str = "model { modelId modelName version hasEncryptedModel }";
        for (without, with) in [
            (
                r#"{ a: prediction(predictionId: "p-1") { predictionId } b: prediction(predictionId: "p-2") { predictionId } }"#.to_owned(),
                format!(r#"{{ a: prediction(predictionId: "p-1") {{ predictionId {MODEL} }} b: prediction(predictionId: "p-2") {{ predictionId {MODEL} }} }}"#),
            ),
            (
                "{ feedback { nodes { feedbackId prediction { predictionId } } } }".to_owned(),
                format!("{{ feedback {{ nodes {{ feedbackId prediction {{ predictionId {MODEL} }} }} }} }}"),
            ),
        ] {
            let (alone, _) = server.statements_for(&key, &without, json!({})).await;
            let (joined, body) = server.statements_for(&key, &with, json!({})).await;
            assert!(body.get("errors").is_none(), "{body}");
            assert_eq!(joined, alone, "the models come with the predictions: {with}");
        }
        let data = server
            .data(&key, &format!(r#"{{ a: prediction(predictionId: "p-1") {{ {MODEL} }} b: prediction(predictionId: "p-2") {{ {MODEL} }} c: prediction(predictionId: "p-9") {{ {MODEL} }} }}"#), json!({}))
            .await;
        assert_eq!(data["a"]["model"], json!({"modelId": "m-1", "modelName": "m-1 name", "version": "1.0.0", "hasEncryptedModel": true}));
        assert_eq!(data["b"]["model"], json!({"modelId": "m-2", "modelName": "m-2 name", "version": "1.0.0", "hasEncryptedModel": false}));
        assert!(data["c"].is_null(), "another tenant's prediction is not found: {data}");
        let data = server.data(&key, &format!("{{ feedback {{ nodes {{ prediction {{ {MODEL} }} }} }} }}"), json!({})).await;
        assert_eq!(data["feedback"]["nodes"][0]["prediction"]["model"]["modelName"], "m-1 name");
        server.stop().await;
    }

    async fn a_query_operation_runs_in_one_transaction_on_postgresql(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        two_models_two_predictions(&scoped, fixtures::model(TENANT, "m-1")).await;
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        // Four data calls (models, their predictions, the predictions'
        // feedback and models) and an analytic beside them.
        let query = r#"{ models { nodes { modelId predictions { totalCount nodes { predictionId
                           feedback { nodes { feedbackId } } model { modelId } } } } }
                         modelPerformance { predictionCount } }"#;
        for _ in 0..2 {
            let before = server.db.transactions_begun();
            let data = server.data(&key, query, json!({})).await;
            let transactions = server.db.transactions_begun() - before;
            assert_eq!(data["models"]["nodes"].as_array().unwrap().len(), 2, "{data}");
            assert_eq!(data["modelPerformance"].as_array().unwrap().len(), 2, "{data}");
            match test_db.backend {
                DbBackend::Postgres => assert_eq!(transactions, 1, "one transaction per query operation"),
                _ => assert_eq!(transactions, 5, "SQLite: one per data call"),
            }
        }
        // A mutation keeps a transaction per write; its answer reads after
        // the commit and sees the write.
        let (_, body) = server
            .graphql(
                &test_db.key(TENANT, Role::Admin).await,
                r#"mutation { updateRemediation(predictionId: "p-2", status: IN_PROGRESS) { predictionId remediationStatus model { modelId } } }"#,
            )
            .await;
        assert_eq!(body["data"]["updateRemediation"]["remediationStatus"], "IN_PROGRESS", "{body}");
        server.stop().await;
    }

    async fn a_failed_call_does_not_poison_the_operations_transaction(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        let operation = scoped.for_query_operation();
        let _end = operation.operation_end();
        let one = |sql: &str| Statement::from_string(test_db.backend, sql.to_owned());
        let transaction_id = "SELECT CAST(txid_current() AS TEXT) AS v";
        let timeout = "SELECT current_setting('statement_timeout') AS v";
        let value = |row: Option<sea_orm::QueryResult>| row.unwrap().try_get::<String>("", "v").unwrap();

        let before = db.transactions_begun();
        let txn = operation.begin().await.unwrap();
        let failed = txn.conn().query_one_raw(one("SELECT 1 / (SELECT 0) AS v")).await;
        if test_db.backend == DbBackend::Postgres {
            assert!(failed.is_err(), "division by zero fails on PostgreSQL");
        }
        drop(txn);
        // The next call gets a transaction that works.
        let txn = operation.begin().await.unwrap();
        let row = txn.conn().query_one_raw(one("SELECT 1 AS v")).await.unwrap().unwrap();
        assert_eq!(row.try_get::<i32>("", "v").unwrap(), 1);
        txn.commit().await.unwrap();
        assert_eq!(db.transactions_begun() - before, 2, "the failed transaction was replaced");

        if test_db.backend == DbBackend::Postgres {
            // Calls after a commit share it; each runs under its own
            // budget (read 5 s, analytics 30 s by default).
            let before = db.transactions_begun();
            let mut seen = Vec::new();
            for analytic in [false, true, false] {
                let txn = if analytic { operation.begin_analytics().await } else { operation.begin().await }.unwrap();
                let id = value(txn.conn().query_one_raw(one(transaction_id)).await.unwrap());
                let budget = value(txn.conn().query_one_raw(one(timeout)).await.unwrap());
                txn.commit().await.unwrap();
                seen.push((id, budget));
            }
            assert_eq!(db.transactions_begun(), before, "no new transaction");
            assert!(seen.iter().all(|(id, _)| *id == seen[0].0), "one transaction: {seen:?}");
            let budgets: Vec<&str> = seen.iter().map(|(_, b)| b.as_str()).collect();
            assert_eq!(budgets, ["5s", "30s", "5s"]);

            // A tenant's statements start no parallel workers by default
            // (each would be a core outside its share of the pool); the
            // setting reaches every transaction when raised.
            let workers = "SELECT current_setting('max_parallel_workers_per_gather') AS v";
            let txn = operation.begin_analytics().await.unwrap();
            assert_eq!(value(txn.conn().query_one_raw(one(workers)).await.unwrap()), "0");
            txn.commit().await.unwrap();
            let raised = Database::connect_with(&DbSettings {
                parallel_workers: 3,
                ..DbSettings::new(test_db.url.clone(), 2)
            })
            .await
            .unwrap();
            let txn = scoped_for(&test_db, &raised, TENANT).await.begin_analytics().await.unwrap();
            assert_eq!(value(txn.conn().query_one_raw(one(workers)).await.unwrap()), "3");
            txn.commit().await.unwrap();
            raised.close().await.unwrap();
        }
        // A handle that is not an operation's opens a transaction per call.
        let before = db.transactions_begun();
        for _ in 0..2 {
            let txn = scoped.begin().await.unwrap();
            txn.conn().query_one_raw(one("SELECT 1 AS v")).await.unwrap();
            txn.commit().await.unwrap();
        }
        assert_eq!(db.transactions_begun() - before, 2);
    }
}
