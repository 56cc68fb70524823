//! The read API against real migrations on both backends: typed fields,
//! relations, filters, pagination and the SHAP/attention views.

mod common;

use chrono::{Duration, Utc};
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, insert_all, scoped_for};
use common::TestServer;

const TENANT: &str = "acme";

/// Ids of the nodes of a connection at `path`.
fn ids(data: &Value, path: &[&str], id_field: &str) -> Vec<String> {
    let mut connection = data;
    for segment in path {
        connection = &connection[*segment];
    }
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges at {path:?}: {data}"))
        .iter()
        .map(|edge| edge["node"][id_field].as_str().unwrap().to_owned())
        .collect()
}

backend_tests! {
    async fn every_root_field_and_relation_serves_typed_rows(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        let job = fixtures::training_job(TENANT, "job-1");
        let job_key = job.id.clone().unwrap();
        insert(&scoped, job).await.unwrap();
        let mut model = fixtures::model(TENANT, "m-1");
        model.training_job_id = Set(Some(job_key));
        model.encrypted_model = Set(Some(vec![1, 2, 3]));
        insert(&scoped, model).await.unwrap();
        let mut prediction = fixtures::prediction(TENANT, "p-1", "m-1");
        prediction.attention_weights = Set(Some(json!({"heads": [[0.25, 0.75], [0.5, 0.5]]})));
        prediction.remediation_status = Set(Some("in_progress".into()));
        insert(&scoped, prediction).await.unwrap();
        insert(&scoped, fixtures::feedback(TENANT, "f-1", "p-1")).await.unwrap();
        insert(&scoped, fixtures::drift_metric(TENANT, "d-1", "m-1")).await.unwrap();
        insert(&scoped, fixtures::feature_set(TENANT, "fs-1")).await.unwrap();
        insert(&scoped, fixtures::configuration(TENANT, "res-1")).await.unwrap();
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;

        let data = server.data(&key, r#"{
            model(modelId: "m-1") {
                modelId modelName modelType version status hasEncryptedModel
                metrics { accuracy raw }
                trainingJob { jobId status triggerReason costEstimate trainingConfig }
                predictions { totalCount edges { node { predictionId } } }
                driftMetrics { totalCount nodes { metricId driftType alertLevel driftScore
                    featureContributions(top: 1) { feature value direction } model { modelId } } }
                feedback { totalCount nodes { feedbackId } }
            }
            prediction(predictionId: "p-1") {
                predictionId resourceId modelId violationProbability confidenceScore
                confidenceInterval { lower upper } riskLevel remediationStatus
                recommendations inferenceTimeMs timeToViolationHours
                shapValues { feature value absValue direction }
                attentionWeights { shape heads raw }
                model { modelId }
                feedback { nodes { feedbackId feedbackType accuracyRating correctLabel prediction { predictionId } } }
            }
            trainingJob(jobId: "job-1") { jobId models { nodes { modelId } } }
            trainingJobs { totalCount nodes { jobId } }
            models { totalCount nodes { modelId } }
            predictions { totalCount nodes { predictionId } }
            recentPredictions { totalCount nodes { predictionId } }
            feedback { totalCount nodes { feedbackId } }
            featureSets { totalCount nodes { featureSetId featureType qualityScore features } }
            configurations { totalCount nodes { id resourceId configuration } }
            driftMetrics { totalCount nodes { metricId } }
        }"#, json!({})).await;

        let model = &data["model"];
        assert_eq!(model["modelId"], "m-1");
        assert_eq!(model["status"], "ACTIVE");
        assert_eq!(model["hasEncryptedModel"], true);
        assert_eq!(model["metrics"]["accuracy"], 0.9);
        assert_eq!(model["trainingJob"]["jobId"], "job-1");
        assert_eq!(model["trainingJob"]["status"], "COMPLETED");
        assert_eq!(model["trainingJob"]["triggerReason"], "DRIFT_DETECTED");
        assert_eq!(model["trainingJob"]["costEstimate"], 12.5);
        assert_eq!(model["predictions"]["totalCount"], 1);
        assert_eq!(ids(model, &["predictions"], "predictionId"), ["p-1"]);
        let drift = &model["driftMetrics"]["nodes"][0];
        assert_eq!(drift["driftType"], "DATA");
        assert_eq!(drift["alertLevel"], "WARNING");
        assert_eq!(drift["driftScore"], 0.42);
        assert_eq!(drift["featureContributions"], json!([{"feature": "cpu", "value": 0.6, "direction": "INCREASES_RISK"}]));
        assert_eq!(drift["model"]["modelId"], "m-1");
        assert_eq!(model["feedback"]["nodes"][0]["feedbackId"], "f-1");

        let prediction = &data["prediction"];
        assert_eq!(prediction["violationProbability"], 0.8123);
        assert_eq!(prediction["confidenceInterval"], json!({"lower": 0.75, "upper": 0.87}));
        assert_eq!(prediction["riskLevel"], "HIGH");
        assert_eq!(prediction["remediationStatus"], "IN_PROGRESS");
        assert_eq!(prediction["recommendations"], json!(["rotate keys", "say \"hi\""]));
        assert_eq!(prediction["inferenceTimeMs"], 12.34);
        assert_eq!(prediction["timeToViolationHours"], 12.5);
        assert_eq!(prediction["shapValues"][0], json!({"feature": "a", "value": 0.5, "absValue": 0.5, "direction": "INCREASES_RISK"}));
        assert_eq!(prediction["shapValues"][1]["direction"], "DECREASES_RISK");
        assert_eq!(prediction["attentionWeights"]["shape"], "PER_HEAD");
        assert_eq!(prediction["attentionWeights"]["heads"], json!([[0.25, 0.75], [0.5, 0.5]]));
        assert_eq!(prediction["attentionWeights"]["raw"], json!({"heads": [[0.25, 0.75], [0.5, 0.5]]}));
        assert_eq!(prediction["model"]["modelId"], "m-1");
        let feedback = &prediction["feedback"]["nodes"][0];
        assert_eq!(feedback["feedbackType"], "CORRECT");
        assert_eq!(feedback["accuracyRating"], 4.5);
        assert_eq!(feedback["prediction"]["predictionId"], "p-1");

        assert_eq!(data["trainingJob"]["models"]["nodes"][0]["modelId"], "m-1");
        for root in ["trainingJobs", "models", "predictions", "recentPredictions", "feedback", "featureSets", "configurations", "driftMetrics"] {
            assert_eq!(data[root]["totalCount"], 1, "{root}: {}", data[root]);
        }
        assert_eq!(data["featureSets"]["nodes"][0]["featureType"], "TEMPORAL");
        assert_eq!(data["featureSets"]["nodes"][0]["qualityScore"], 0.9);
        assert_eq!(data["configurations"]["nodes"][0]["configuration"], json!({"encrypted": true}));

        // Unknown ids are null, not errors.
        let data = server.data(&key, r#"{ model(modelId: "nope") { modelId } prediction(predictionId: "nope") { predictionId } trainingJob(jobId: "nope") { jobId } }"#, json!({})).await;
        assert_eq!(data, json!({"model": null, "prediction": null, "trainingJob": null}));
        server.stop().await;
    }

    async fn shap_top_three_is_largest_magnitudes_in_order(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        insert(&scoped, fixtures::model(TENANT, "m-1")).await.unwrap();
        let mut prediction = fixtures::prediction(TENANT, "p-1", "m-1");
        prediction.shap_values = Set(Some(json!({
            "cpu": 0.12, "memory": -0.58, "network": 0.33, "disk": -0.01,
            "age": 0.41, "owner": 0.0, "base_value": 0.3
        })));
        prediction.attention_weights = Set(Some(json!({"features": {"cpu": 0.2, "memory": 0.8}})));
        insert(&scoped, prediction).await.unwrap();
        let mut lstm = fixtures::prediction(TENANT, "p-2", "m-1");
        lstm.attention_weights = Set(Some(json!({"time_steps": [0.1, 0.2, 0.7]})));
        insert(&scoped, lstm).await.unwrap();
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;

        let data = server.data(&key, r#"{
            p1: prediction(predictionId: "p-1") {
                top: shapValues(top: 3) { feature value absValue }
                byValue: shapValues(top: 2, orderBy: VALUE_DESC) { feature }
                byName: shapValues(orderBy: FEATURE) { feature }
                shapBaseValue
                attentionWeights { shape features { feature weight } timeSteps heads raw }
            }
            p2: prediction(predictionId: "p-2") { attentionWeights { shape timeSteps raw } }
        }"#, json!({})).await;
        let p1 = &data["p1"];
        assert_eq!(p1["top"], json!([
            {"feature": "memory", "value": -0.58, "absValue": 0.58},
            {"feature": "age", "value": 0.41, "absValue": 0.41},
            {"feature": "network", "value": 0.33, "absValue": 0.33},
        ]));
        assert_eq!(p1["byValue"], json!([{"feature": "age"}, {"feature": "network"}]));
        assert_eq!(p1["byName"].as_array().unwrap().len(), 6, "base_value is not a feature");
        assert_eq!(p1["shapBaseValue"], 0.3);
        assert_eq!(p1["attentionWeights"]["shape"], "PER_FEATURE");
        assert_eq!(p1["attentionWeights"]["features"], json!([{"feature": "memory", "weight": 0.8}, {"feature": "cpu", "weight": 0.2}]));
        assert_eq!(p1["attentionWeights"]["raw"], json!({"features": {"cpu": 0.2, "memory": 0.8}}));
        assert_eq!(data["p2"]["attentionWeights"], json!({"shape": "PER_STEP", "timeSteps": [0.1, 0.2, 0.7], "raw": {"time_steps": [0.1, 0.2, 0.7]}}));

        let (_, body) = server.graphql(&key, r#"{ prediction(predictionId: "p-1") { shapValues(top: -1) { feature } } }"#).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        server.stop().await;
    }

    async fn pages_are_gap_free_and_duplicate_free_while_rows_are_inserted(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        insert(&scoped, fixtures::model(TENANT, "m-1")).await.unwrap();
        let base = Utc::now() - Duration::hours(2);
        let at = |minutes: i64| server::store::now().min(base) + Duration::minutes(minutes);
        // 25 predictions; timestamps repeat in pairs so ties need the id tiebreaker.
        let rows: Vec<_> = (0..25)
            .map(|i| {
                let mut p = fixtures::prediction(TENANT, &format!("p-{i:03}"), "m-1");
                p.prediction_timestamp = Set(Some(at(i / 2)));
                p
            })
            .collect();
        insert_all(&scoped, rows).await.unwrap();
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let page_query = r#"query($first: Int, $after: String, $last: Int, $before: String) {
            predictions(first: $first, after: $after, last: $last, before: $before) {
                totalCount
                edges { cursor node { predictionId } }
                pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            }
        }"#;

        // Forward, newest first. Between pages, rows arrive on both sides of
        // the cursor: newer ones (already passed) and older ones (still ahead).
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut inserted_ahead = Vec::new();
        for round in 0.. {
            let data = server.data(&key, page_query, json!({"first": 7, "after": after})).await;
            let connection = &data["predictions"];
            seen.extend(ids(&data, &["predictions"], "predictionId"));
            assert_eq!(connection["pageInfo"]["hasPreviousPage"], round > 0);
            if connection["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = connection["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            let newer = format!("new-{round}");
            let mut p = fixtures::prediction(TENANT, &newer, "m-1");
            p.prediction_timestamp = Set(Some(at(60 + round)));
            insert(&scoped, p).await.unwrap();
            let older = format!("old-{round}");
            let mut p = fixtures::prediction(TENANT, &older, "m-1");
            p.prediction_timestamp = Set(Some(at(-10 - round)));
            insert(&scoped, p).await.unwrap();
            inserted_ahead.push(older);
        }
        let mut expected: Vec<String> = (0..25).rev().map(|i| format!("p-{i:03}")).collect();
        // Within equal timestamps the tiebreaker (id, same direction) orders the pair.
        expected.sort_by(|a, b| {
            let ta = a[2..].parse::<i64>().unwrap() / 2;
            let tb = b[2..].parse::<i64>().unwrap() / 2;
            tb.cmp(&ta).then(b.cmp(a))
        });
        let mut ahead_desc = inserted_ahead.clone();
        ahead_desc.sort_by_key(|id| -id[4..].parse::<i64>().unwrap().abs());
        ahead_desc.reverse();
        expected.extend(ahead_desc);
        assert_eq!(seen, expected, "forward pages skip or repeat nothing");

        // Backward from the end with last/before: the same order, reversed.
        let total = server.data(&key, page_query, json!({"first": 0})).await["predictions"]["totalCount"].as_u64().unwrap();
        let mut backward = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let data = server.data(&key, page_query, json!({"last": 6, "before": before})).await;
            let connection = &data["predictions"];
            let mut page = ids(&data, &["predictions"], "predictionId");
            page.reverse();
            backward.extend(page);
            if connection["pageInfo"]["hasPreviousPage"] == false {
                break;
            }
            before = connection["pageInfo"]["startCursor"].as_str().map(str::to_owned);
        }
        backward.reverse();
        assert_eq!(backward.len() as u64, total);
        let everything = server.data(&key, page_query, json!({"first": 100})).await;
        assert_eq!(backward, ids(&everything, &["predictions"], "predictionId"));
        server.stop().await;
    }

    async fn nullable_and_tied_sort_keys_page_consistently_both_ways(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        insert(&scoped, fixtures::model(TENANT, "m-1")).await.unwrap();
        let rows: Vec<_> = (0..17)
            .map(|i| {
                let mut p = fixtures::prediction(TENANT, &format!("p-{i:02}"), "m-1");
                p.risk_score = Set((i % 3 != 0).then(|| Decimal::new((i % 4) * 1000, 4)));
                p
            })
            .collect();
        insert_all(&scoped, rows).await.unwrap();
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let query = r#"query($order: PredictionOrder, $first: Int, $after: String, $last: Int, $before: String) {
            predictions(orderBy: $order, first: $first, after: $after, last: $last, before: $before) {
                edges { node { predictionId riskScore } }
                pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            }
        }"#;
        for direction in ["ASC", "DESC"] {
            let order = json!({"field": "RISK_SCORE", "direction": direction});
            let all = server.data(&key, query, json!({"order": order, "first": 100})).await;
            let all_ids = ids(&all, &["predictions"], "predictionId");
            assert_eq!(all_ids.len(), 17);
            // NULLs come last in both directions.
            let scores: Vec<&Value> = all["predictions"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["riskScore"]).collect();
            let first_null = scores.iter().position(|s| s.is_null()).unwrap();
            assert!(scores[first_null..].iter().all(|s| s.is_null()), "{direction}: {scores:?}");
            let mut forward = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let data = server.data(&key, query, json!({"order": order, "first": 4, "after": after})).await;
                forward.extend(ids(&data, &["predictions"], "predictionId"));
                if data["predictions"]["pageInfo"]["hasNextPage"] == false { break; }
                after = data["predictions"]["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            }
            assert_eq!(forward, all_ids, "{direction} forward");
            let mut backward = Vec::new();
            let mut before: Option<String> = None;
            loop {
                let data = server.data(&key, query, json!({"order": order, "last": 4, "before": before})).await;
                let mut page = ids(&data, &["predictions"], "predictionId");
                page.reverse();
                backward.extend(page);
                if data["predictions"]["pageInfo"]["hasPreviousPage"] == false { break; }
                before = data["predictions"]["pageInfo"]["startCursor"].as_str().map(str::to_owned);
            }
            backward.reverse();
            assert_eq!(backward, all_ids, "{direction} backward");
        }
        // A cursor of one ordering is refused by another.
        let data = server.data(&key, query, json!({"order": {"field": "RISK_SCORE"}, "first": 1})).await;
        let cursor = data["predictions"]["pageInfo"]["endCursor"].clone();
        let (_, body) = server.graphql_with(&key, query, json!({"order": {"field": "VIOLATION_PROBABILITY"}, "after": cursor})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["extensions"]["field"], "after");
        server.stop().await;
    }

    async fn filters_narrow_lists(test_db: TestDb) {
        let db = test_db.connect().await;
        let scoped = scoped_for(&test_db, &db, TENANT).await;
        insert(&scoped, fixtures::model(TENANT, "m-1")).await.unwrap();
        insert(&scoped, fixtures::model(TENANT, "m-2")).await.unwrap();
        let spec = [
            ("p-1", "m-1", "vm-a1", "critical", 9500, 0),
            ("p-2", "m-1", "VM-a2", "high", 7000, 1),
            ("p-3", "m-2", "vm-b1", "low", 1000, 2),
            ("p-4", "m-2", "vm_x", "medium", 5000, 30),
        ];
        for (id, model, resource, risk, probability, hours_ago) in spec {
            let mut p = fixtures::prediction(TENANT, id, model);
            p.resource_id = Set(resource.into());
            p.risk_level = Set(risk.into());
            p.violation_probability = Set(Decimal::new(probability, 4));
            p.prediction_timestamp = Set(Some(server::store::now() - Duration::hours(hours_ago)));
            insert(&scoped, p).await.unwrap();
        }
        insert(&scoped, fixtures::feedback(TENANT, "f-1", "p-3")).await.unwrap();
        let key = test_db.key(TENANT, Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let query = r#"query($filter: PredictionFilter) {
            predictions(filter: $filter, orderBy: {field: PREDICTION_ID, direction: ASC}) {
                totalCount edges { node { predictionId } }
            }
        }"#;
        let cases = [
            (json!({"riskLevels": ["CRITICAL", "HIGH"]}), vec!["p-1", "p-2"]),
            (json!({"minProbability": 0.7}), vec!["p-1", "p-2"]),
            (json!({"violationProbability": {"min": 0.1, "max": 0.5}}), vec!["p-3", "p-4"]),
            (json!({"resourceIdPrefix": "vm-"}), vec!["p-1", "p-3"]),
            (json!({"resourceIdPrefix": "vm_"}), vec!["p-4"]),
            (json!({"modelIds": ["m-2"], "hasFeedback": true}), vec!["p-3"]),
            (json!({"hasFeedback": false}), vec!["p-1", "p-2", "p-4"]),
            (json!({"from": (Utc::now() - Duration::hours(5)).to_rfc3339()}), vec!["p-1", "p-2", "p-3"]),
            (json!({"riskLevels": []}), vec![]),
            (json!({"predictionIds": ["p-2", "p-4", "nope"]}), vec!["p-2", "p-4"]),
        ];
        for (filter, expected) in cases {
            let data = server.data(&key, query, json!({"filter": filter})).await;
            assert_eq!(ids(&data, &["predictions"], "predictionId"), expected, "{filter}");
            assert_eq!(data["predictions"]["totalCount"], expected.len(), "{filter}");
        }
        let recent = server.data(&key, r#"{ recentPredictions(hours: 24, orderBy: {field: PREDICTION_ID, direction: ASC}) { nodes { predictionId } } }"#, json!({})).await;
        assert_eq!(recent["recentPredictions"]["nodes"], json!([{"predictionId": "p-1"}, {"predictionId": "p-2"}, {"predictionId": "p-3"}]));

        let too_many: Vec<String> = (0..501).map(|i| format!("p-{i}")).collect();
        for (filter, field) in [
            (json!({"predictionIds": too_many}), "predictionIds"),
            (json!({"violationProbability": {"min": 0.9, "max": 0.1}}), "violationProbability"),
        ] {
            let (status, body) = server.graphql_with(&key, query, json!({"filter": filter})).await;
            assert_eq!(status, 200);
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], field);
        }
        let (_, body) = server.graphql(&key, "{ recentPredictions(hours: 0) { totalCount } }").await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        server.stop().await;
    }
}
