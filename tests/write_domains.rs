//! What each write does, on both backends: the model and training-job
//! lifecycles with their timestamps, write-only model artefacts, feedback
//! attributed to the caller, drift alerts derived from the tenant's
//! thresholds and raised as numbered events exactly once, feature-set
//! versions, configuration upserts, and API keys managed through the API.

mod common;

use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, scoped_for};
use common::{count, TestDb, TestServer};

const ALPHA: &str = "alpha";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

async fn start(test_db: &TestDb) -> TestServer {
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, ALPHA).await;
    insert(&scoped, fixtures::model(ALPHA, "m-1"))
        .await
        .unwrap();
    insert(&scoped, fixtures::prediction(ALPHA, "p-1", "m-1"))
        .await
        .unwrap();
    db.close().await.ok();
    TestServer::start(test_db.config()).await
}

async fn sql_count(test_db: &TestDb, sql: &str) -> i64 {
    let raw = test_db.raw().await;
    let n = count(&raw, sql).await;
    raw.close().await.ok();
    n
}

backend_tests! {
    async fn models_move_through_their_lifecycle(test_db: TestDb) {
        let server = start(&test_db).await;
        let admin = test_db.key(ALPHA, Role::Admin).await;
        const FIELDS: &str = "modelId status deployedAt retiredAt updatedAt hasEncryptedModel encryptionKeyId";
        let registered = server.data(&admin, &format!(r#"mutation {{ registerModel(input: {{
            modelId: "m-2", modelName: "Risk v2", modelType: "transformer", version: "2.0.0",
            status: TRAINING, metrics: {{accuracy: 0.91, f1_score: 0.88}}, parameters: {{layers: 4}},
            encryptedModel: "c2VjcmV0IHdlaWdodHM=", encryptionKeyId: "kms-key-7"
        }}) {{ {FIELDS} metrics {{ accuracy f1Score }} }} }}"#), json!({})).await;
        let model = &registered["registerModel"];
        assert_eq!(model["status"], "TRAINING");
        assert!(model["deployedAt"].is_null());
        assert_eq!(model["hasEncryptedModel"], true);
        assert_eq!(model["encryptionKeyId"], "kms-key-7");
        assert_eq!(model["metrics"]["f1Score"], 0.88);
        // The artefact is stored as bytes and never served.
        let raw = test_db.raw().await;
        let stored = sea_orm::ConnectionTrait::query_one_raw(&raw, sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "SELECT encrypted_model FROM ml_models WHERE model_id = 'm-2'",
        )).await.unwrap().unwrap();
        assert_eq!(stored.try_get_by_index::<Vec<u8>>(0).unwrap(), b"secret weights");
        raw.close().await.ok();

        let transition = |to: &str| format!(r#"mutation {{ transitionModel(modelId: "m-2", to: {to}) {{ {FIELDS} }} }}"#);
        let active = server.data(&admin, &transition("ACTIVE"), json!({})).await["transitionModel"].clone();
        assert_eq!(active["status"], "ACTIVE");
        assert!(active["deployedAt"].is_string());
        // Moving to the status it has is a harmless retry.
        let again = server.data(&admin, &transition("ACTIVE"), json!({})).await["transitionModel"].clone();
        assert_eq!(again, active);
        // Illegal moves are refused and name the allowed ones.
        let (_, body) = server.graphql(&admin, &transition("TRAINING")).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("RETIRED or FAILED"));
        let retired = server.data(&admin, &transition("RETIRED"), json!({})).await["transitionModel"].clone();
        assert_eq!(retired["status"], "RETIRED");
        assert!(retired["retiredAt"].is_string());
        assert_eq!(retired["deployedAt"], active["deployedAt"]);
        // A rollback puts it back in service and clears retiredAt.
        let rolled_back = server.data(&admin, &transition("ACTIVE"), json!({})).await["transitionModel"].clone();
        assert!(rolled_back["retiredAt"].is_null());
        assert_ne!(rolled_back["deployedAt"], active["deployedAt"]);
        let failed = server.data(&admin, &transition("FAILED"), json!({})).await;
        assert_eq!(failed["transitionModel"]["status"], "FAILED");
        let (_, body) = server.graphql(&admin, &transition("ACTIVE")).await;
        assert_eq!(code(&body), "BAD_USER_INPUT");

        // Registering the same model again with the same content is a retry
        // (the lifecycle has moved on since); other content is a conflict.
        let (_, body) = server.graphql(&admin, r#"mutation { registerModel(input: {
            modelId: "m-2", modelName: "Risk v2", modelType: "transformer", version: "2.0.0",
            status: TRAINING, metrics: {accuracy: 0.91, f1_score: 0.88}, parameters: {layers: 4},
            encryptedModel: "c2VjcmV0IHdlaWdodHM=", encryptionKeyId: "kms-key-7"
        }) { status } }"#).await;
        assert_eq!(body["data"]["registerModel"]["status"], "FAILED", "{body}");
        let (_, body) = server.graphql(&admin, r#"mutation { registerModel(input: {
            modelId: "m-2", modelName: "Risk v3", modelType: "transformer", version: "2.0.0"
        }) { status } }"#).await;
        assert_eq!(code(&body), "CONFLICT", "{body}");

        // Updates change only what is given; `null` clears; bad input is named.
        let updated = server.data(&admin, r#"mutation { updateModel(modelId: "m-2", input: {
            metrics: {accuracy: 0.95}, encryptedModel: null, encryptionKeyId: null, modelPath: "s3://models/m-2"
        }) { modelName metrics { accuracy f1Score } hasEncryptedModel modelPath updatedAt } }"#, json!({})).await;
        let updated = &updated["updateModel"];
        assert_eq!(updated["modelName"], "Risk v2");
        assert_eq!(updated["metrics"]["accuracy"], 0.95);
        assert!(updated["metrics"]["f1Score"].is_null(), "metrics are replaced");
        assert_eq!(updated["hasEncryptedModel"], false);
        let unchanged = server.data(&admin, r#"mutation { updateModel(modelId: "m-2", input: {modelPath: "s3://models/m-2"}) { updatedAt } }"#, json!({})).await;
        assert_eq!(unchanged["updateModel"]["updatedAt"], updated["updatedAt"], "no change, no update");
        let (_, body) = server.graphql(&admin, r#"mutation { updateModel(modelId: "m-2", input: {
            encryptedModel: "not base64!", metrics: {accuracy: 1.5}, version: "123456789012345678901"
        }) { modelId } }"#).await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        let mut fields: Vec<&str> = body["errors"][0]["extensions"]["problems"].as_array().unwrap()
            .iter().map(|p| p["field"].as_str().unwrap()).collect();
        fields.sort();
        assert_eq!(fields, ["input.encryptedModel", "input.metrics.accuracy", "input.version"]);
        let (_, body) = server.graphql(&admin, r#"mutation { updateModel(modelId: "m-2", input: {encryptedModel: "aGk="}) { modelId } }"#).await;
        assert_eq!(body["errors"][0]["extensions"]["field"], "input.encryptionKeyId", "{body}");
        server.stop().await;
    }

    async fn training_jobs_report_progress_until_they_finish(test_db: TestDb) {
        let server = start(&test_db).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        const CREATE: &str = r#"mutation { createTrainingJob(input: {jobId: "job-9", modelType: "lstm",
            triggerReason: DRIFT_DETECTED, trainingConfig: {epochs: 20}, costEstimate: 12.345}) {
            jobId status createdBy startedAt completedAt costEstimate } }"#;
        let created = server.data(&service, CREATE, json!({})).await["createTrainingJob"].clone();
        assert_eq!(created["status"], "QUEUED");
        assert!(created["createdBy"].as_str().unwrap().starts_with("api-key:mlg_"));
        assert_eq!(created["costEstimate"], 12.35, "rounded half away from zero");
        assert_eq!(server.data(&service, CREATE, json!({})).await["createTrainingJob"], created);

        let update = |input: &str| format!(r#"mutation {{ updateTrainingJob(jobId: "job-9", input: {input}) {{ status startedAt completedAt metrics errorMessage }} }}"#);
        let running = server.data(&service, &update("{status: RUNNING}"), json!({})).await["updateTrainingJob"].clone();
        assert!(running["startedAt"].is_string());
        assert!(running["completedAt"].is_null());
        let failed = server.data(&service, &update(r#"{status: FAILED, errorMessage: "OOM", metrics: {loss: 0.4}}"#), json!({})).await["updateTrainingJob"].clone();
        assert_eq!(failed["status"], "FAILED");
        assert_eq!(failed["startedAt"], running["startedAt"]);
        assert!(failed["completedAt"].is_string());
        assert_eq!(failed["errorMessage"], "OOM");
        let (_, body) = server.graphql(&service, &update("{status: RUNNING}")).await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("finished"));
        // A finished job still takes its final metrics.
        let later = server.data(&service, &update("{metrics: {loss: 0.39}, errorMessage: null}"), json!({})).await;
        assert_eq!(later["updateTrainingJob"]["metrics"], json!({"loss": 0.39}));
        assert!(later["updateTrainingJob"]["errorMessage"].is_null());

        // A model registered from the job links to it.
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let model = server.data(&admin, r#"mutation { registerModel(input: {modelId: "m-9", modelName: "n",
            modelType: "lstm", version: "1", trainingJobId: "job-9"}) { trainingJob { jobId } } }"#, json!({})).await;
        assert_eq!(model["registerModel"]["trainingJob"]["jobId"], "job-9");
        server.stop().await;
    }

    async fn feedback_is_attributed_to_the_caller_and_processed_once(test_db: TestDb) {
        let server = start(&test_db).await;
        let analyst = test_db.key(ALPHA, Role::Analyst).await;
        const SUBMIT: &str = r#"mutation { submitFeedback(input: {feedbackId: "f-9", predictionId: "p-1",
            feedbackType: FALSE_POSITIVE, correctLabel: false, accuracyRating: 4.256, comments: "benign"}) {
            feedbackId userId userRole processed accuracyRating prediction { predictionId } } }"#;
        let given = server.data(&analyst, SUBMIT, json!({})).await["submitFeedback"].clone();
        let me = server.data(&analyst, "{ me { subject } }", json!({})).await;
        assert_eq!(given["userId"], me["me"]["subject"]);
        assert_eq!(given["userRole"], "analyst");
        assert_eq!(given["accuracyRating"], 4.26);
        assert_eq!(given["prediction"]["predictionId"], "p-1");
        assert_eq!(server.data(&analyst, SUBMIT, json!({})).await["submitFeedback"], given);
        // Another caller reusing the id is another write.
        let other = test_db.key(ALPHA, Role::Analyst).await;
        let (_, body) = server.graphql(&other, SUBMIT).await;
        assert_eq!(code(&body), "CONFLICT");
        assert_eq!(body["errors"][0]["extensions"]["field"], "input.userId");
        // Contradictions and unknown predictions are refused.
        let (_, body) = server.graphql(&analyst, r#"mutation { submitFeedback(input: {predictionId: "p-1",
            feedbackType: FALSE_NEGATIVE, correctLabel: false, accuracyRating: 7}) { feedbackId } }"#).await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["extensions"]["problemCount"], 2);
        let (_, body) = server.graphql(&analyst, r#"mutation { submitFeedback(input: {predictionId: "p-404",
            feedbackType: CORRECT}) { feedbackId } }"#).await;
        assert_eq!(code(&body), "NOT_FOUND");
        // Without an id, one is generated.
        let generated = server.data(&analyst, r#"mutation { submitFeedback(input: {predictionId: "p-1",
            feedbackType: CORRECT}) { feedbackId } }"#, json!({})).await;
        assert!(generated["submitFeedback"]["feedbackId"].as_str().unwrap().starts_with("fb-"));

        let service = test_db.key(ALPHA, Role::Service).await;
        const MARK: &str = r#"mutation { markFeedbackProcessed(feedbackIds: ["f-9", "f-9"], impactOnModel: RETRAIN_TRIGGERED) {
            feedbackId processed impactOnModel processedAt } }"#;
        let marked = server.data(&service, MARK, json!({})).await["markFeedbackProcessed"].clone();
        assert_eq!(marked.as_array().unwrap().len(), 1);
        assert_eq!(marked[0]["processed"], true);
        assert_eq!(marked[0]["impactOnModel"], "RETRAIN_TRIGGERED");
        assert_eq!(server.data(&service, MARK, json!({})).await["markFeedbackProcessed"], marked, "processedAt kept");
        let revised = server.data(&service, r#"mutation { markFeedbackProcessed(feedbackIds: ["f-9"], impactOnModel: IGNORED) {
            impactOnModel processedAt } }"#, json!({})).await;
        assert_eq!(revised["markFeedbackProcessed"][0]["impactOnModel"], "IGNORED");
        let (_, body) = server.graphql(&service, r#"mutation { markFeedbackProcessed(feedbackIds: ["f-9", "f-404"], impactOnModel: WEIGHT_ADJUSTED) { feedbackId } }"#).await;
        assert_eq!(code(&body), "NOT_FOUND");
        assert_eq!(body["errors"][0]["extensions"]["field"], "feedbackIds[1]");
        let still = server.data(&service, r#"{ feedback(filter: {feedbackIds: ["f-9"]}) { nodes { impactOnModel } } }"#, json!({})).await;
        assert_eq!(still["feedback"]["nodes"][0]["impactOnModel"], "IGNORED", "the refused call changed nothing");

        let remediated = server.data(&service, r#"mutation { updateRemediation(predictionId: "p-1", status: IN_PROGRESS,
            remediationId: "7f1c2a52-52b4-4c1e-9c55-0d7c4d1f2b11") { remediationStatus remediationId } }"#, json!({})).await;
        assert_eq!(remediated["updateRemediation"]["remediationStatus"], "IN_PROGRESS");
        server.stop().await;
    }

    async fn drift_alerts_follow_the_thresholds_and_are_raised_once(test_db: TestDb) {
        let server = start(&test_db).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        const RECORD: &str = r#"mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) {
            count alertsTriggered metrics { metricId alertLevel alertTriggered featureContributions { feature value } } } }"#;
        let batch = json!({ "input": [
            {"metricId": "d-1", "modelId": "m-1", "driftType": "DATA", "driftScore": 0.3, "psiScore": 0.3,
             "measuredAt": "2026-11-25T10:00:00Z", "featureContributions": [{"feature": "cpu", "value": 0.7}]},
            {"metricId": "d-2", "modelId": "m-1", "driftType": "CONCEPT", "driftScore": 0.1, "psiScore": 0.05, "ksStatistic": 0.15,
             "measuredAt": "2026-11-25T10:00:00Z"},
            {"metricId": "d-3", "driftType": "PREDICTION", "driftScore": 0.01, "psiScore": 0.01, "measuredAt": "2026-11-25T10:00:00Z"},
            {"metricId": "d-4", "driftType": "DATA", "driftScore": 0.9, "measuredAt": "2026-11-25T10:00:00Z"},
            {"metricId": "d-5", "driftType": "DATA", "driftScore": 0.9, "psiScore": 0.9, "alertLevel": "INFO",
             "alertTriggered": false, "measuredAt": "2026-11-25T10:00:00Z"},
        ]});
        let first = server.data(&service, RECORD, batch.clone()).await["recordDriftMetrics"].clone();
        let levels: Vec<(&str, &str, bool)> = first["metrics"].as_array().unwrap().iter()
            .map(|m| (m["metricId"].as_str().unwrap(), m["alertLevel"].as_str().unwrap_or("-"), m["alertTriggered"].as_bool().unwrap()))
            .collect();
        assert_eq!(levels, [
            ("d-1", "CRITICAL", true),   // PSI 0.3 > 0.25
            ("d-2", "WARNING", true),    // KS 0.15 in 0.1–0.2 outranks PSI 0.05
            ("d-3", "INFO", false),
            ("d-4", "-", false),         // no banded score: nothing to derive
            ("d-5", "INFO", false),      // the caller's own verdict stands
        ]);
        assert_eq!(first["alertsTriggered"], 2);
        assert_eq!(first["metrics"][0]["featureContributions"], json!([{"feature": "cpu", "value": 0.7}]));
        let events = "SELECT COUNT(*) FROM mlgate_alert_events WHERE tenant_id = 'alpha'";
        assert_eq!(sql_count(&test_db, events).await, 2);
        assert_eq!(sql_count(&test_db, "SELECT MAX(seq) FROM mlgate_alert_events").await, 2);

        // A retry raises nothing again, even after the thresholds changed.
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let thresholds = server.data(&admin, r#"mutation { setDriftThresholds(input: {psi: {warning: 0.5, critical: 0.8}}) {
            psi { warning critical } ks { warning critical } custom } }"#, json!({})).await;
        assert_eq!(thresholds["setDriftThresholds"], json!({
            "psi": {"warning": 0.5, "critical": 0.8}, "ks": {"warning": 0.1, "critical": 0.2}, "custom": true}));
        assert_eq!(server.data(&service, RECORD, batch).await["recordDriftMetrics"], first);
        assert_eq!(sql_count(&test_db, events).await, 2);

        // New metrics use the new thresholds, and events number on.
        let later = server.data(&service, RECORD, json!({ "input": [
            {"metricId": "d-6", "driftType": "DATA", "driftScore": 0.3, "psiScore": 0.3},
            {"metricId": "d-7", "driftType": "DATA", "driftScore": 0.9, "psiScore": 0.9},
        ]})).await;
        assert_eq!(later["recordDriftMetrics"]["metrics"][0]["alertLevel"], "INFO");
        assert_eq!(later["recordDriftMetrics"]["metrics"][1]["alertLevel"], "CRITICAL");
        let raw = test_db.raw().await;
        let rows = sea_orm::ConnectionTrait::query_all_raw(&raw, sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "SELECT seq, metric_id FROM mlgate_alert_events ORDER BY seq",
        )).await.unwrap();
        let numbered: Vec<(i64, String)> = rows.iter()
            .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap()))
            .collect();
        assert_eq!(numbered, [(1, "d-1".into()), (2, "d-2".into()), (3, "d-7".into())]);
        raw.close().await.ok();

        // Inverted or negative bands are refused and change nothing.
        let (_, body) = server.graphql(&admin, r#"mutation { setDriftThresholds(input: {ks: {warning: 0.3, critical: 0.2}}) { custom } }"#).await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        let kept = server.data(&admin, "{ driftThresholds { ks { warning } psi { warning } } }", json!({})).await;
        assert_eq!(kept["driftThresholds"], json!({"ks": {"warning": 0.1}, "psi": {"warning": 0.5}}));
        server.stop().await;
    }

    async fn concurrent_alerting_batches_number_their_events_without_gaps(test_db: TestDb) {
        let server = start(&test_db).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        const RECORD: &str = r#"mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }"#;
        let batch = |task: usize| json!({ "input": (0..10).map(|i| json!({
            "metricId": format!("t{task}-{i}"), "driftType": "DATA", "driftScore": 0.5, "psiScore": 0.5
        })).collect::<Vec<_>>() });
        let sends: Vec<_> = (0..4).map(|task| server.graphql_with(&service, RECORD, batch(task))).collect();
        for (status, body) in futures_util::future::join_all(sends).await {
            assert_eq!(status, 200);
            assert_eq!(body["data"]["recordDriftMetrics"]["alertsTriggered"], 10, "{body}");
        }
        assert_eq!(sql_count(&test_db, "SELECT COUNT(DISTINCT seq) FROM mlgate_alert_events").await, 40);
        assert_eq!(sql_count(&test_db, "SELECT MAX(seq) FROM mlgate_alert_events").await, 40);
        assert_eq!(sql_count(&test_db, "SELECT last_seq FROM mlgate_alert_sequences").await, 40);
        server.stop().await;
    }

    async fn feature_sets_version_by_content_and_configurations_upsert(test_db: TestDb) {
        let server = start(&test_db).await;
        let service = test_db.key(ALPHA, Role::Service).await;
        let upsert = |features: &str| format!(r#"mutation {{ upsertFeatureSet(input: {{featureSetId: "fs-9",
            resourceId: "res-9", featureType: TEMPORAL, features: {features}, qualityScore: 0.954,
            computedAt: "2026-11-25T00:00:00Z"}}) {{ featureVersion features qualityScore computedAt }} }}"#);
        let v1 = server.data(&service, &upsert("{cpu_p95: 0.7}"), json!({})).await["upsertFeatureSet"].clone();
        assert_eq!(v1["featureVersion"], 1);
        assert_eq!(v1["qualityScore"], 0.95);
        assert_eq!(server.data(&service, &upsert("{cpu_p95: 0.7}"), json!({})).await["upsertFeatureSet"], v1);
        let v2 = server.data(&service, &upsert("{cpu_p95: 0.8}"), json!({})).await["upsertFeatureSet"].clone();
        assert_eq!(v2["featureVersion"], 2);
        assert_eq!(v2["features"], json!({"cpu_p95": 0.8}));
        // Concurrent upserts of new content each bump once, in turn.
        let (server_ref, service_ref) = (&server, &service);
        let sends: Vec<_> = (0..3).map(|i| {
            let m = upsert(&format!("{{cpu_p95: 0.{}}}", i + 1));
            async move { server_ref.graphql(service_ref, &m).await }
        }).collect();
        let mut versions: Vec<i64> = futures_util::future::join_all(sends).await.into_iter()
            .map(|(_, body)| body["data"]["upsertFeatureSet"]["featureVersion"].as_i64().unwrap())
            .collect();
        versions.sort();
        assert_eq!(versions, [3, 4, 5]);
        assert_eq!(sql_count(&test_db, "SELECT COUNT(*) FROM ml_feature_store WHERE feature_set_id = 'fs-9'").await, 1);

        let configure = |config: &str| format!(r#"mutation {{ upsertConfiguration(input: {{resourceId: "res-9",
            configuration: {config}, baselineConfig: {{encrypted: true}}}}) {{ id configuration createdAt updatedAt }} }}"#);
        let first = server.data(&service, &configure("{encrypted: false}"), json!({})).await["upsertConfiguration"].clone();
        assert_eq!(first["createdAt"], first["updatedAt"]);
        assert_eq!(server.data(&service, &configure("{encrypted: false}"), json!({})).await["upsertConfiguration"], first);
        let changed = server.data(&service, &configure("{encrypted: true}"), json!({})).await["upsertConfiguration"].clone();
        assert_eq!(changed["id"], first["id"]);
        assert_eq!(changed["createdAt"], first["createdAt"]);
        assert!(changed["updatedAt"].as_str() > first["updatedAt"].as_str(), "{changed} {first}");
        let sends: Vec<_> = (0..3).map(|i| {
            let m = format!(r#"mutation {{ upsertConfiguration(input: {{resourceId: "res-new", configuration: {{n: {i}}}}}) {{ id }} }}"#);
            async move { server_ref.graphql(service_ref, &m).await }
        }).collect();
        for (_, body) in futures_util::future::join_all(sends).await {
            assert!(body.get("errors").is_none(), "{body}");
        }
        assert_eq!(
            sql_count(&test_db, "SELECT COUNT(*) FROM ml_configurations WHERE resource_id = 'res-new'").await,
            1,
            "concurrent first upserts of a resource make one snapshot"
        );
        server.stop().await;
    }

    async fn admins_manage_api_keys_through_the_api(test_db: TestDb) {
        let server = start(&test_db).await;
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let created = server.data(&admin, r#"mutation { createApiKey(role: SERVICE, name: "ingest-eu",
            expiresAt: "2099-01-01T00:00:00Z") { secret key { id name role prefix expiresAt revokedAt } } }"#, json!({})).await;
        let secret = created["createApiKey"]["secret"].as_str().unwrap().to_owned();
        let key = created["createApiKey"]["key"].clone();
        assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
        assert_eq!(key["role"], "SERVICE");
        let me = server.data(&secret, "{ me { tenant role } }", json!({})).await;
        assert_eq!(me["me"], json!({"tenant": "alpha", "role": "SERVICE"}));

        let listed = server.data(&admin, "{ apiKeys { id name prefix } }", json!({})).await;
        assert!(!listed.to_string().contains(&secret), "secrets are never listed");
        assert!(listed["apiKeys"].as_array().unwrap().iter().any(|k| k["id"] == key["id"]));

        let revoke = format!(r#"mutation {{ revokeApiKey(id: "{}") {{ revokedAt }} }}"#, key["id"].as_str().unwrap());
        let revoked = server.data(&admin, &revoke, json!({})).await;
        assert!(revoked["revokeApiKey"]["revokedAt"].is_string());
        assert_eq!(server.data(&admin, &revoke, json!({})).await, revoked, "revoking twice changes nothing");
        let (status, body) = server.graphql(&secret, "{ me { tenant } }").await;
        assert_eq!(status, 401, "{body}");

        for bad in [
            r#"mutation { createApiKey(role: VIEWER, name: "  ") { secret } }"#,
            r#"mutation { createApiKey(role: VIEWER, name: "old", expiresAt: "2001-01-01T00:00:00Z") { secret } }"#,
        ] {
            let (_, body) = server.graphql(&admin, bad).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        }
        server.stop().await;
    }
}
