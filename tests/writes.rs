//! Writes through the API, on both backends: idempotent batch ingestion
//! (retries and concurrent duplicates leave one row per id; changed content
//! under a used id is refused), all-or-nothing validation that names every
//! bad item and field, references resolved in the caller's tenant only,
//! and one transaction per batch with a constant number of statements.

mod common;

use sea_orm::DbBackend;
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, scoped_for};
use common::{count, TestDb, TestServer};

const ALPHA: &str = "alpha";

const RECORD_PREDICTIONS: &str = r#"mutation($input: [PredictionInput!]!) {
    recordPredictions(input: $input) {
        count
        predictions {
            predictionId resourceId modelId modelVersion violationProbability confidenceScore
            confidenceInterval { lower upper } riskLevel riskScore recommendations
            shapValues { feature value } shapBaseValue attentionWeights { shape raw }
            inferenceTimeMs predictionTimestamp timeToViolationHours
        }
    }
}"#;

/// A valid prediction of `model` with a fixed timestamp, so that it can be
/// sent again as the very same write.
fn prediction(id: &str, model: &str) -> Value {
    json!({
        "predictionId": id,
        "resourceId": format!("res-{id}"),
        "modelId": model,
        "violationProbability": 0.8123,
        "confidenceScore": 0.9,
        "confidenceInterval": {"lower": 0.75, "upper": 0.87},
        "riskLevel": "HIGH",
        "riskScore": 0.5,
        "recommendations": ["rotate keys", "say \"hi\""],
        "shapValues": [{"feature": "cpu", "value": 0.4}, {"feature": "mem", "value": -0.125}],
        "shapBaseValue": 0.05,
        "attentionWeights": [[0.25, 0.75], [0.5, 0.5]],
        "inferenceTimeMs": 12.5,
        "timeToViolationHours": 36.25,
        "predictionTimestamp": "2026-11-20T10:00:00.123456Z",
    })
}

fn batch(prefix: &str, n: usize, model: &str) -> Value {
    Value::Array(
        (0..n)
            .map(|i| prediction(&format!("{prefix}-{i:04}"), model))
            .collect(),
    )
}

fn first_error(body: &Value) -> &Value {
    &body["errors"][0]
}

fn code(body: &Value) -> &str {
    first_error(body)["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// (index, field) of every problem an error lists.
fn problems(body: &Value) -> Vec<(Option<u64>, String)> {
    first_error(body)["extensions"]["problems"]
        .as_array()
        .map(|problems| {
            problems
                .iter()
                .map(|p| (p["index"].as_u64(), p["field"].as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A server over a database where `alpha` has model `m-1` (version 1.0.0).
async fn server_with_model(test_db: &TestDb) -> TestServer {
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, ALPHA).await;
    insert(&scoped, fixtures::model(ALPHA, "m-1"))
        .await
        .unwrap();
    TestServer::start(test_db.config()).await
}

backend_tests! {
    async fn a_batch_sent_twice_is_recorded_once_and_answers_the_same(test_db: TestDb) {
        let server = server_with_model(&test_db).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let input = json!({ "input": batch("p", 25, "m-1") });

        let first = server.data(&key, RECORD_PREDICTIONS, input.clone()).await;
        assert_eq!(first["recordPredictions"]["count"], 25);
        let stored = &first["recordPredictions"]["predictions"][0];
        assert_eq!(stored["modelVersion"], "1.0.0", "defaults to the model's version");
        assert_eq!(stored["violationProbability"], 0.8123);
        assert_eq!(stored["shapBaseValue"], 0.05);
        assert_eq!(stored["shapValues"][0], json!({"feature": "cpu", "value": 0.4}));
        assert_eq!(stored["attentionWeights"]["shape"], "PER_HEAD");
        assert_eq!(stored["recommendations"], json!(["rotate keys", "say \"hi\""]));
        assert_eq!(stored["predictionTimestamp"], "2026-11-20T10:00:00.123456+00:00");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 25);

        let retry = server.data(&key, RECORD_PREDICTIONS, input).await;
        assert_eq!(retry, first, "a retry answers exactly as the first attempt");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 25);

        // A batch mixing recorded and new ids records only the new ones.
        let mut mixed = batch("p", 25, "m-1").as_array().unwrap().clone();
        mixed.extend(batch("q", 5, "m-1").as_array().unwrap().clone());
        let answer = server.data(&key, RECORD_PREDICTIONS, json!({ "input": mixed })).await;
        assert_eq!(answer["recordPredictions"]["count"], 30);
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 30);
        server.stop().await;
    }

    async fn stored_rows_are_answered_however_the_selection_asks_for_them(test_db: TestDb) {
        // The rows are kept only when the selection reads `predictions`:
        // an alias, a fragment spread or an inline fragment must still get
        // them, for new rows and for a retry's rows read back.
        let server = server_with_model(&test_db).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let input = json!({ "input": batch("l", 3, "m-1") });
        let count_only = server
            .data(&key, "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count } }", input.clone())
            .await;
        assert_eq!(count_only, json!({"recordPredictions": {"count": 3}}));
        let ids = json!([{"predictionId": "l-0000"}, {"predictionId": "l-0001"}, {"predictionId": "l-0002"}]);
        for query in [
            "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count rows: predictions { predictionId } } }",
            "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { ...stored } }
             fragment stored on RecordPredictionsPayload { count rows: predictions { predictionId } }",
            "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count ... on RecordPredictionsPayload { rows: predictions { predictionId } } } }",
        ] {
            let retried = server.data(&key, query, input.clone()).await;
            assert_eq!(retried["recordPredictions"]["rows"], ids, "{query}");
            let fresh = json!({ "input": batch(&format!("n{}", query.len()), 2, "m-1") });
            let answer = server.data(&key, query, fresh).await;
            assert_eq!(answer["recordPredictions"]["rows"].as_array().map(Vec::len), Some(2), "{query}");
        }
        server.stop().await;
    }

    async fn concurrent_duplicate_batches_leave_one_row_per_prediction(test_db: TestDb) {
        let server = server_with_model(&test_db).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let input = json!({ "input": batch("c", 200, "m-1") });
        let send = || server.graphql_with(&key, RECORD_PREDICTIONS, input.clone());
        let (a, b, c) = tokio::join!(send(), send(), send());
        for (status, body) in [&a, &b, &c] {
            assert_eq!(*status, 200, "{body}");
            assert!(body.get("errors").is_none(), "{body}");
            assert_eq!(body["data"]["recordPredictions"]["count"], 200);
        }
        assert_eq!(a.1, b.1);
        assert_eq!(b.1, c.1);
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 200);
        let raw = test_db.raw().await;
        let distinct = count(&raw, "SELECT COUNT(DISTINCT prediction_id) FROM ml_predictions").await;
        assert_eq!(distinct, 200);

        // Overlapping batches in opposite orders: rows are inserted in key
        // order, so the two transactions never wait on each other in a cycle
        // (on PostgreSQL that would be a deadlock, and one batch would fail).
        for round in 0..3 {
            let ids = batch(&format!("o{round}"), 300, "m-1");
            let mut reversed = ids.as_array().unwrap().clone();
            reversed.reverse();
            let (forward, backward) = tokio::join!(
                server.graphql_with(&key, RECORD_PREDICTIONS, json!({ "input": ids })),
                server.graphql_with(&key, RECORD_PREDICTIONS, json!({ "input": reversed })),
            );
            for (_, body) in [&forward, &backward] {
                assert!(body.get("errors").is_none(), "{body}");
                assert_eq!(body["data"]["recordPredictions"]["count"], 300);
            }
        }
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 200 + 3 * 300);
        server.stop().await;
    }

    async fn changed_content_under_a_used_id_is_a_conflict_and_changes_nothing(test_db: TestDb) {
        let server = server_with_model(&test_db).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        server.data(&key, RECORD_PREDICTIONS, json!({ "input": batch("p", 3, "m-1") })).await;

        let mut changed = batch("p", 3, "m-1");
        changed[1]["violationProbability"] = json!(0.5);
        changed[1]["riskLevel"] = json!("LOW");
        let mut with_new = changed.as_array().unwrap().clone();
        with_new.push(prediction("new-1", "m-1"));
        let (_, body) = server
            .graphql_with(&key, RECORD_PREDICTIONS, json!({ "input": with_new }))
            .await;
        assert_eq!(code(&body), "CONFLICT", "{body}");
        assert_eq!(problems(&body), vec![(Some(1), "input[1].riskLevel".to_owned())]);
        let message = first_error(&body)["extensions"]["problems"][0]["message"].as_str().unwrap();
        assert!(message.contains("riskLevel, violationProbability"), "{message}");
        assert_eq!(
            test_db.rows("ml_predictions", ALPHA).await,
            3,
            "the new prediction of the refused batch was not written either"
        );
        let stored = server
            .data(&key, r#"{ prediction(predictionId: "p-0001") { violationProbability riskLevel } }"#, json!({}))
            .await;
        assert_eq!(stored["prediction"], json!({"violationProbability": 0.8123, "riskLevel": "HIGH"}));

        // Leaving out a field the server filled in is still the same write.
        let mut without_timestamp = prediction("late", "m-1");
        without_timestamp.as_object_mut().unwrap().remove("predictionTimestamp");
        let input = json!({ "input": [without_timestamp] });
        let first = server.data(&key, RECORD_PREDICTIONS, input.clone()).await;
        let again = server.data(&key, RECORD_PREDICTIONS, input).await;
        assert_eq!(first, again);
        server.stop().await;
    }

    async fn an_invalid_item_anywhere_refuses_the_batch_naming_each_item_and_field(test_db: TestDb) {
        let server = server_with_model(&test_db).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let mut input = batch("v", 10, "m-1");
        input[2]["confidenceInterval"] = json!({"lower": 0.9, "upper": 0.1});
        input[4]["shapValues"] = json!([{"feature": "cpu", "value": 1}, {"feature": "cpu", "value": 2}]);
        input[6]["attentionWeights"] = json!({"layer": "encoder"});
        input[7]["violationProbability"] = json!(1.5);
        input[7]["inferenceTimeMs"] = json!(-1);
        input[8]["predictionId"] = json!("v-0001");
        input[9]["predictionId"] = json!("");
        let (status, body) = server
            .graphql_with(&key, RECORD_PREDICTIONS, json!({ "input": input }))
            .await;
        assert_eq!(status, 200);
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["data"].is_null(), "{body}");
        let mut found = problems(&body);
        found.sort();
        let expected: Vec<(Option<u64>, String)> = vec![
            (Some(2), "input[2].confidenceInterval".into()),
            (Some(4), "input[4].shapValues[1].feature".into()),
            (Some(6), "input[6].attentionWeights".into()),
            (Some(7), "input[7].inferenceTimeMs".into()),
            (Some(7), "input[7].violationProbability".into()),
            (Some(8), "input[8].predictionId".into()),
            (Some(9), "input[9].predictionId".into()),
        ];
        assert_eq!(found, expected, "{body}");
        assert_eq!(first_error(&body)["extensions"]["problemCount"], 7);
        let message = first_error(&body)["message"].as_str().unwrap();
        assert!(message.starts_with("nothing was written"), "{message}");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);

        // An unknown risk level never reaches the server's checks: the
        // schema refuses it, as bad input.
        let mut unknown = batch("u", 1, "m-1");
        unknown[0]["riskLevel"] = json!("SEVERE");
        let (_, body) = server
            .graphql_with(&key, RECORD_PREDICTIONS, json!({ "input": unknown }))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);
        server.stop().await;
    }

    async fn unknown_models_refuse_the_batch_as_not_found(test_db: TestDb) {
        let server = server_with_model(&test_db).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let mut input = batch("n", 4, "m-1");
        input[1]["modelId"] = json!("m-missing");
        input[3]["modelId"] = json!("m-missing");
        let (_, body) = server
            .graphql_with(&key, RECORD_PREDICTIONS, json!({ "input": input }))
            .await;
        assert_eq!(code(&body), "NOT_FOUND", "{body}");
        assert_eq!(
            problems(&body),
            vec![
                (Some(1), "input[1].modelId".to_owned()),
                (Some(3), "input[3].modelId".to_owned()),
            ]
        );
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);
        server.stop().await;
    }

    async fn batches_above_the_cap_are_refused_whole(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, ALPHA).await;
        insert(&scoped, fixtures::model(ALPHA, "m-1")).await.unwrap();
        let mut config = test_db.config();
        config.serve.limits.max_write_batch = 5;
        let server = TestServer::start(config).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        let (_, body) = server
            .graphql_with(&key, RECORD_PREDICTIONS, json!({ "input": batch("b", 6, "m-1") }))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(first_error(&body)["extensions"]["field"], "input");
        assert!(first_error(&body)["message"].as_str().unwrap().contains("at most 5"));
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 0);
        let body = server
            .data(&key, RECORD_PREDICTIONS, json!({ "input": batch("b", 5, "m-1") }))
            .await;
        assert_eq!(body["recordPredictions"]["count"], 5);
        server.stop().await;
    }

    async fn a_batch_costs_no_statement_per_prediction(test_db: TestDb) {
        let server = server_with_model(&test_db).await;
        let key = test_db.key(ALPHA, Role::Service).await;
        const SMALL: &str = "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count } }";
        let (small, body) = server
            .statements_for(&key, SMALL, json!({ "input": batch("s", 2, "m-1") }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let large_batch = batch("l", 1000, "m-1");
        let large_bytes = large_batch.to_string().len();
        let (large, body) = server
            .statements_for(&key, SMALL, json!({ "input": large_batch }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        // Authentication, then on PostgreSQL the tenant settings, the staging
        // table, one COPY per chunk of 256 KiB and the insert (which also
        // looks up the models); on SQLite the models lookup and the insert.
        // Nothing per prediction.
        assert_eq!(small, if test_db.backend == DbBackend::Postgres { 5 } else { 3 });
        let chunks = if test_db.backend == DbBackend::Postgres {
            large_bytes.div_ceil(256 * 1024) as u64
        } else {
            0
        };
        assert!(
            large >= small && large <= small + chunks,
            "{large} statements for 1000 predictions ({large_bytes} bytes), {small} for 2"
        );
        assert_eq!(test_db.rows("ml_predictions", ALPHA).await, 1002);

        // A full retry reads the stored rows back once more: still constant.
        let (retry, _) = server
            .statements_for(&key, SMALL, json!({ "input": batch("l", 1000, "m-1") }))
            .await;
        assert_eq!(retry, large + 1);
        eprintln!("statements: batch of 2 = {small}, batch of 1000 = {large}, retry of 1000 = {retry}");
        server.stop().await;
    }
}
