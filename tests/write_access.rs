//! Who may write what, and where: every mutation is refused (`FORBIDDEN`,
//! nothing written) to roles without its permission; a tenant cannot write
//! against another tenant's rows through any input (answers exactly like a
//! missing id), cannot name a tenant in any input, and the other tenant's
//! data is left byte-for-byte as it was.

mod common;

use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, scoped_for};
use common::{count, TestDb, TestServer};

const ALPHA: &str = "alpha";
const BETA: &str = "beta";

/// One call of every mutation, valid for a tenant that has model `m-1`,
/// prediction `p-1`, feedback `f-1` and training job `job-1`.
const MUTATIONS: [(&str, &str); 15] = [
    (
        "registerModel",
        r#"mutation { registerModel(input: {modelId: "m-new", modelName: "n", modelType: "lstm", version: "1"}) { modelId } }"#,
    ),
    (
        "updateModel",
        r#"mutation { updateModel(modelId: "m-1", input: {modelName: "renamed"}) { modelId } }"#,
    ),
    (
        "transitionModel",
        r#"mutation { transitionModel(modelId: "m-1", to: RETIRED) { modelId } }"#,
    ),
    (
        "recordPredictions",
        r#"mutation { recordPredictions(input: [{predictionId: "p-new", resourceId: "r", modelId: "m-1", violationProbability: 0.5, confidenceScore: 0.5, riskLevel: LOW, inferenceTimeMs: 1}]) { count } }"#,
    ),
    (
        "updateRemediation",
        r#"mutation { updateRemediation(predictionId: "p-1", status: COMPLETED) { predictionId } }"#,
    ),
    (
        "submitFeedback",
        r#"mutation { submitFeedback(input: {feedbackId: "f-new", predictionId: "p-1", feedbackType: CORRECT}) { feedbackId } }"#,
    ),
    (
        "markFeedbackProcessed",
        r#"mutation { markFeedbackProcessed(feedbackIds: ["f-1"], impactOnModel: IGNORED) { feedbackId } }"#,
    ),
    (
        "recordDriftMetrics",
        r#"mutation { recordDriftMetrics(input: [{metricId: "d-new", modelId: "m-1", driftType: DATA, driftScore: 0.3, psiScore: 0.3}]) { count } }"#,
    ),
    (
        "setDriftThresholds",
        r#"mutation { setDriftThresholds(input: {psi: {warning: 0.2, critical: 0.3}}) { custom } }"#,
    ),
    (
        "createTrainingJob",
        r#"mutation { createTrainingJob(input: {jobId: "job-new", modelType: "lstm", triggerReason: MANUAL, trainingConfig: {}}) { jobId } }"#,
    ),
    (
        "updateTrainingJob",
        r#"mutation { updateTrainingJob(jobId: "job-1", input: {metrics: {loss: 0.1}}) { jobId } }"#,
    ),
    (
        "upsertFeatureSet",
        r#"mutation { upsertFeatureSet(input: {featureSetId: "fs-new", resourceId: "r", featureType: TEMPORAL, features: {x: 1}}) { featureVersion } }"#,
    ),
    (
        "upsertConfiguration",
        r#"mutation { upsertConfiguration(input: {resourceId: "r-new", configuration: {x: 1}}) { id } }"#,
    ),
    (
        "createApiKey",
        r#"mutation { createApiKey(role: VIEWER, name: "k") { secret } }"#,
    ),
    ("apiKeys", r#"{ apiKeys { name } }"#),
];

/// The mutations each role may call.
fn allowed(role: Role) -> &'static [&'static str] {
    match role {
        Role::Viewer => &[],
        Role::Analyst => &["submitFeedback"],
        Role::Service => &[
            "recordPredictions",
            "updateRemediation",
            "submitFeedback",
            "markFeedbackProcessed",
            "recordDriftMetrics",
            "createTrainingJob",
            "updateTrainingJob",
            "upsertFeatureSet",
            "upsertConfiguration",
        ],
        Role::Admin => &[
            "registerModel",
            "updateModel",
            "transitionModel",
            "recordPredictions",
            "updateRemediation",
            "submitFeedback",
            "markFeedbackProcessed",
            "recordDriftMetrics",
            "setDriftThresholds",
            "createTrainingJob",
            "updateTrainingJob",
            "upsertFeatureSet",
            "upsertConfiguration",
            "createApiKey",
            "apiKeys",
        ],
    }
}

/// Seeds `tenant` with `m-1`, `p-1`, `f-1`, `job-1`, `fs-1`, a configuration
/// of `r-1`, and a `<tenant>-only` model; returns its admin key's id.
async fn seed(test_db: &TestDb, tenant: &str) {
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, tenant).await;
    insert(&scoped, fixtures::training_job(tenant, "job-1"))
        .await
        .unwrap();
    insert(&scoped, fixtures::model(tenant, "m-1"))
        .await
        .unwrap();
    insert(
        &scoped,
        fixtures::model(tenant, &format!("m-{tenant}-only")),
    )
    .await
    .unwrap();
    insert(&scoped, fixtures::prediction(tenant, "p-1", "m-1"))
        .await
        .unwrap();
    insert(&scoped, fixtures::feedback(tenant, "f-1", "p-1"))
        .await
        .unwrap();
    insert(&scoped, fixtures::feature_set(tenant, "fs-1"))
        .await
        .unwrap();
    insert(&scoped, fixtures::configuration(tenant, "r-1"))
        .await
        .unwrap();
    db.close().await.ok();
}

/// Every row of every tenant table, as text: what "unchanged" is checked against.
async fn snapshot(test_db: &TestDb, tenant: &str) -> Vec<String> {
    let raw = test_db.raw().await;
    let mut out = Vec::new();
    for table in [
        "ml_models",
        "ml_predictions",
        "ml_feedback",
        "ml_drift_metrics",
        "ml_training_jobs",
        "ml_feature_store",
        "ml_configurations",
        "mlgate_api_keys",
        "mlgate_drift_thresholds",
        "mlgate_alert_events",
    ] {
        let rows = sea_orm::ConnectionTrait::query_all_raw(
            &raw,
            sea_orm::Statement::from_string(
                raw.get_database_backend(),
                format!("SELECT * FROM {table} WHERE tenant_id = '{tenant}'"),
            ),
        )
        .await
        .unwrap();
        out.push(format!("{table}: {} rows", rows.len()));
        for row in rows {
            out.push(format!("{row:?}"));
        }
    }
    raw.close().await.ok();
    out.sort();
    out
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

backend_tests! {
    async fn each_role_may_call_exactly_its_mutations(test_db: TestDb) {
        seed(&test_db, ALPHA).await;
        let server = TestServer::start(test_db.config()).await;
        for role in [Role::Viewer, Role::Analyst, Role::Service] {
            let key = test_db.key(ALPHA, role).await;
            for (name, mutation) in MUTATIONS {
                // Ids of their own: the same id from another caller is
                // another write (it differs in userId or createdBy).
                let mutation = mutation.replace("-new", &format!("-new-{role}"));
                let before = snapshot(&test_db, ALPHA).await;
                let (_, body) = server.graphql(&key, &mutation).await;
                if allowed(role).contains(&name) {
                    assert!(body.get("errors").is_none(), "{role} {name}: {body}");
                } else {
                    assert_eq!(code(&body), "FORBIDDEN", "{role} {name}: {body}");
                    let message = body["errors"][0]["message"].as_str().unwrap();
                    assert!(message.contains(&format!("`{role}`")), "{message}");
                    assert_eq!(snapshot(&test_db, ALPHA).await, before, "{role} {name} wrote");
                }
            }
        }
        // Admins may do everything (run last: it retires m-1).
        let admin = test_db.key(ALPHA, Role::Admin).await;
        for (name, mutation) in MUTATIONS {
            assert!(allowed(Role::Admin).contains(&name));
            let (_, body) = server.graphql(&admin, mutation).await;
            assert!(body.get("errors").is_none(), "admin {name}: {body}");
        }
        server.stop().await;
    }

    async fn another_tenants_rows_answer_like_missing_ones_in_every_input(test_db: TestDb) {
        seed(&test_db, ALPHA).await;
        seed(&test_db, BETA).await;
        let beta_key_id = {
            let db = test_db.connect().await;
            let key = server::ops::keys::create_for_tenant(&db, BETA, Role::Viewer, "beta-key")
                .await
                .unwrap();
            key.info.id.to_string()
        };
        let server = TestServer::start(test_db.config()).await;
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let beta_before = snapshot(&test_db, BETA).await;

        // Each call names something only beta has; `{id}` is replaced by
        // beta's id and by an id nobody has: the answers must not differ.
        let probes: [(&str, &str); 10] = [
            ("m-beta-only", r#"mutation { recordPredictions(input: [{predictionId: "p-x", resourceId: "r", modelId: "{id}", violationProbability: 0.5, confidenceScore: 0.5, riskLevel: LOW, inferenceTimeMs: 1}]) { count } }"#),
            ("m-beta-only", r#"mutation { recordDriftMetrics(input: [{metricId: "d-x", modelId: "{id}", driftType: DATA, driftScore: 0.9, psiScore: 0.9}]) { count } }"#),
            ("m-beta-only", r#"mutation { updateModel(modelId: "{id}", input: {modelName: "stolen"}) { modelId } }"#),
            ("m-beta-only", r#"mutation { transitionModel(modelId: "{id}", to: RETIRED) { modelId } }"#),
            ("p-beta", r#"mutation { submitFeedback(input: {feedbackId: "f-x", predictionId: "{id}", feedbackType: INCORRECT}) { feedbackId } }"#),
            ("p-beta", r#"mutation { updateRemediation(predictionId: "{id}", status: FAILED) { predictionId } }"#),
            ("f-beta", r#"mutation { markFeedbackProcessed(feedbackIds: ["{id}"], impactOnModel: RETRAIN_TRIGGERED) { feedbackId } }"#),
            ("job-beta", r#"mutation { updateTrainingJob(jobId: "{id}", input: {status: CANCELLED}) { jobId } }"#),
            ("job-beta", r#"mutation { registerModel(input: {modelId: "m-x", modelName: "n", modelType: "lstm", version: "1", trainingJobId: "{id}"}) { modelId } }"#),
            ("beta-key", r#"mutation { revokeApiKey(id: "{id}") { id } }"#),
        ];
        // Beta's rows with those ids (seeded under shared names too).
        {
            let db = test_db.connect().await;
            let scoped = scoped_for(&test_db, &db, BETA).await;
            insert(&scoped, fixtures::prediction(BETA, "p-beta", "m-1")).await.unwrap();
            insert(&scoped, fixtures::feedback(BETA, "f-beta", "p-beta")).await.unwrap();
            insert(&scoped, fixtures::training_job(BETA, "job-beta")).await.unwrap();
        }
        let beta_before_probes = snapshot(&test_db, BETA).await;
        assert_ne!(beta_before, beta_before_probes);
        let nobody_key = uuid::Uuid::new_v4().to_string();
        for (beta_id, template) in probes {
            let (beta_id, missing_id) = if beta_id == "beta-key" {
                (beta_key_id.as_str(), nobody_key.as_str())
            } else {
                (beta_id, "nobody-has-this")
            };
            let (_, with_beta) = server.graphql(&admin, &template.replace("{id}", beta_id)).await;
            let (_, with_missing) = server.graphql(&admin, &template.replace("{id}", missing_id)).await;
            assert_eq!(code(&with_beta), "NOT_FOUND", "{template}: {with_beta}");
            assert_eq!(
                with_beta.to_string().replace(beta_id, "<id>"),
                with_missing.to_string().replace(missing_id, "<id>"),
                "{template}"
            );
        }
        assert_eq!(snapshot(&test_db, BETA).await, beta_before_probes, "beta's rows changed");

        // Shared ids are per tenant: alpha's writes land in alpha's rows only.
        let body = server.data(&admin, r#"mutation {
            submitFeedback(input: {feedbackId: "f-shared", predictionId: "p-1", feedbackType: CORRECT}) { feedbackId prediction { resourceId } }
            upsertFeatureSet(input: {featureSetId: "fs-1", resourceId: "r", featureType: POLICY, features: {alpha: 1}}) { featureVersion }
            upsertConfiguration(input: {resourceId: "r-1", configuration: {alpha: 1}}) { configuration }
            recordDriftMetrics(input: [{metricId: "d-1", modelId: "m-1", driftType: DATA, driftScore: 0.9, psiScore: 0.9}]) { alertsTriggered }
            transitionModel(modelId: "m-1", to: RETIRED) { status }
        }"#, json!({})).await;
        assert_eq!(body["upsertFeatureSet"]["featureVersion"], 2);
        assert_eq!(body["recordDriftMetrics"]["alertsTriggered"], 1);
        assert_eq!(snapshot(&test_db, BETA).await, beta_before_probes, "beta's rows changed");
        server.stop().await;
    }

    async fn no_input_can_name_a_tenant(test_db: TestDb) {
        seed(&test_db, ALPHA).await;
        seed(&test_db, BETA).await;
        let server = TestServer::start(test_db.config()).await;
        let admin = test_db.key(ALPHA, Role::Admin).await;
        let beta_before = snapshot(&test_db, BETA).await;
        let alpha_before = snapshot(&test_db, ALPHA).await;
        // Every input type, with a `tenantId` field added (and the fields
        // that come from the credentials).
        for mutation in [
            r#"mutation { registerModel(input: {tenantId: "beta", modelId: "m-x", modelName: "n", modelType: "lstm", version: "1"}) { modelId } }"#,
            r#"mutation { updateModel(modelId: "m-1", input: {tenantId: "beta", modelName: "n"}) { modelId } }"#,
            r#"mutation { recordPredictions(input: [{tenantId: "beta", predictionId: "p-x", resourceId: "r", modelId: "m-1", violationProbability: 0.5, confidenceScore: 0.5, riskLevel: LOW, inferenceTimeMs: 1}]) { count } }"#,
            r#"mutation { submitFeedback(input: {tenantId: "beta", predictionId: "p-1", feedbackType: CORRECT}) { feedbackId } }"#,
            r#"mutation { submitFeedback(input: {userId: "someone-else", predictionId: "p-1", feedbackType: CORRECT}) { feedbackId } }"#,
            r#"mutation { recordDriftMetrics(input: [{tenantId: "beta", metricId: "d-x", driftType: DATA, driftScore: 0.1}]) { count } }"#,
            r#"mutation { setDriftThresholds(input: {tenantId: "beta"}) { custom } }"#,
            r#"mutation { createTrainingJob(input: {tenantId: "beta", modelType: "lstm", triggerReason: MANUAL, trainingConfig: {}}) { jobId } }"#,
            r#"mutation { createTrainingJob(input: {createdBy: "someone-else", modelType: "lstm", triggerReason: MANUAL, trainingConfig: {}}) { jobId } }"#,
            r#"mutation { updateTrainingJob(jobId: "job-1", input: {tenantId: "beta"}) { jobId } }"#,
            r#"mutation { upsertFeatureSet(input: {tenantId: "beta", featureSetId: "fs-x", resourceId: "r", featureType: TEMPORAL, features: {}}) { featureVersion } }"#,
            r#"mutation { upsertConfiguration(input: {tenantId: "beta", resourceId: "r", configuration: {}}) { id } }"#,
            r#"mutation { createApiKey(role: ADMIN, name: "k", tenantId: "beta") { secret } }"#,
        ] {
            let (status, body) = server.graphql(&admin, mutation).await;
            assert_eq!(status, 200, "{body}");
            // An unknown input field fails coercion (BAD_USER_INPUT), an
            // unknown argument validation; either way nothing runs.
            assert!(
                ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"].contains(&code(&body).as_str()),
                "{mutation}: {body}"
            );
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(
                message.contains("unknown field") || message.contains("Unknown argument"),
                "{message}"
            );
            assert!(body.get("data").is_none(), "{body}");
        }
        assert_eq!(snapshot(&test_db, BETA).await, beta_before);
        assert_eq!(snapshot(&test_db, ALPHA).await, alpha_before);
        server.stop().await;
    }
}

/// The database's own refusals map to the API's codes, never shown raw:
/// writing through a scoped handle around the write side's checks.
mod database_refusals {
    use super::*;
    use sea_orm::ActiveValue::Set;
    use server::error::ApiError;

    async fn refusal<A>(scoped: &server::db::Scoped, row: A) -> ApiError
    where
        A: sea_orm::ActiveModelTrait + Send,
    {
        let error = insert(scoped, row).await.expect_err("the database refuses");
        ApiError::from_write(error)
    }

    backend_tests! {
        async fn constraint_violations_become_client_codes(test_db: TestDb) {
            let db = test_db.connect().await;
            let scoped = scoped_for(&test_db, &db, ALPHA).await;
            insert(&scoped, fixtures::model(ALPHA, "m-1")).await.unwrap();
            insert(&scoped, fixtures::prediction(ALPHA, "p-1", "m-1")).await.unwrap();

            let duplicate = refusal(&scoped, fixtures::prediction(ALPHA, "p-1", "m-1")).await;
            assert_eq!(duplicate.code(), "CONFLICT");
            let dangling = refusal(&scoped, fixtures::feedback(ALPHA, "f-1", "p-missing")).await;
            assert_eq!(dangling.code(), "NOT_FOUND");
            let mut out_of_range = fixtures::prediction(ALPHA, "p-2", "m-1");
            out_of_range.violation_probability = Set(rust_decimal::Decimal::new(2, 0));
            let checked = refusal(&scoped, out_of_range).await;
            assert_eq!(checked.code(), "BAD_USER_INPUT");
            for error in [&duplicate, &dangling, &checked] {
                let message = error.message();
                assert!(!message.to_lowercase().contains("insert"), "{message}");
                assert!(!message.contains("ml_"), "{message}");
            }
            if test_db.backend == sea_orm::DbBackend::Postgres {
                // Row-level security's WITH CHECK: a row of another tenant.
                let smuggled = refusal(&scoped, fixtures::model(BETA, "m-2")).await;
                assert_eq!(smuggled.code(), "FORBIDDEN");
                let mut too_long = fixtures::model(ALPHA, "m-3");
                too_long.version = Set("v".repeat(21));
                assert_eq!(refusal(&scoped, too_long).await.code(), "BAD_USER_INPUT");
            }
            let raw = test_db.raw().await;
            assert_eq!(count(&raw, "SELECT COUNT(*) FROM ml_models WHERE tenant_id = 'beta'").await, 0);
        }
    }
}
