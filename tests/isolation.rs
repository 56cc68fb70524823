//! Tenant isolation of the read API: two tenants with the same business
//! ids. Through every root field and relation, each sees only its own rows,
//! counts and cursors; the other tenant's ids behave exactly like ids that
//! do not exist; concurrent requests through the DataLoaders never mix.

mod common;

use sea_orm::ActiveValue::Set;
use serde_json::{json, Value};
use server::auth::Role;

use common::fixtures::{self, insert, scoped_for};
use common::TestServer;

const ALPHA: &str = "alpha";
const BETA: &str = "beta";

/// Seeds one tenant: shared ids (`m-1`, `p-1`, …) in both, `*-only-<tenant>`
/// ids in one. Every text a client can see carries the tenant's name.
async fn seed(test_db: &common::TestDb, db: &server::db::Database, tenant: &str) {
    let scoped = scoped_for(test_db, db, tenant).await;
    for job_id in ["job-1", &format!("job-only-{tenant}")] {
        let mut job = fixtures::training_job(tenant, job_id);
        job.created_by = Set(Some(format!("{tenant}-scheduler")));
        let key = job.id.clone().unwrap();
        insert(&scoped, job).await.unwrap();
        let model_id = if job_id == "job-1" {
            "m-1".to_owned()
        } else {
            format!("m-only-{tenant}")
        };
        let mut model = fixtures::model(tenant, &model_id);
        model.model_name = Set(format!("{tenant} model"));
        model.training_job_id = Set(Some(key));
        insert(&scoped, model).await.unwrap();
    }
    for (prediction_id, model_id) in [
        ("p-1".to_owned(), "m-1".to_owned()),
        (format!("p-only-{tenant}"), format!("m-only-{tenant}")),
    ] {
        let mut prediction = fixtures::prediction(tenant, &prediction_id, &model_id);
        prediction.resource_id = Set(format!("{tenant}-resource"));
        insert(&scoped, prediction).await.unwrap();
        let mut feedback =
            fixtures::feedback(tenant, &format!("f-{prediction_id}"), &prediction_id);
        feedback.user_id = Set(format!("{tenant}-reviewer"));
        insert(&scoped, feedback).await.unwrap();
        let mut drift = fixtures::drift_metric(tenant, &format!("d-{prediction_id}"), &model_id);
        drift.resource_id = Set(Some(format!("{tenant}-resource")));
        insert(&scoped, drift).await.unwrap();
    }
    let mut features = fixtures::feature_set(tenant, "fs-1");
    features.resource_id = Set(format!("{tenant}-resource"));
    insert(&scoped, features).await.unwrap();
    insert(
        &scoped,
        fixtures::configuration(tenant, &format!("{tenant}-resource")),
    )
    .await
    .unwrap();
}

/// Every tenant-revealing string in a response.
fn tenant_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if ["resourceId", "modelName", "userId", "createdBy"].contains(&key.as_str()) {
                    if let Some(s) = value.as_str() {
                        out.push(s.to_owned());
                    }
                }
                tenant_strings(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| tenant_strings(v, out)),
        _ => {}
    }
}

fn assert_only(tenant: &str, data: &Value) {
    let mut strings = Vec::new();
    tenant_strings(data, &mut strings);
    assert!(!strings.is_empty(), "nothing tenant-revealing in {data}");
    for s in strings {
        assert!(s.starts_with(tenant), "{tenant} saw {s:?} in {data}");
    }
}

/// Every root field and relation, with counts.
const EVERYTHING: &str = r#"{
    models { totalCount nodes { modelName
        predictions { totalCount nodes { resourceId feedback { totalCount nodes { userId prediction { resourceId } } } model { modelName } } }
        driftMetrics { totalCount nodes { resourceId model { modelName } } }
        feedback { totalCount nodes { userId } }
        trainingJob { createdBy models { totalCount nodes { modelName } } }
    } }
    predictions { totalCount nodes { resourceId } }
    recentPredictions { totalCount nodes { resourceId } }
    feedback { totalCount nodes { userId prediction { resourceId } } }
    trainingJobs { totalCount nodes { createdBy models { totalCount nodes { modelName } } } }
    featureSets { totalCount nodes { resourceId } }
    configurations { totalCount nodes { resourceId } }
    driftMetrics { totalCount nodes { resourceId model { modelName } } }
    m: model(modelId: "m-1") { modelName predictions { totalCount nodes { resourceId } } }
    p: prediction(predictionId: "p-1") { resourceId feedback { totalCount nodes { userId } } }
    j: trainingJob(jobId: "job-1") { createdBy models { nodes { modelName } } }
}"#;

backend_tests! {
    async fn each_tenant_sees_only_its_own_rows_counts_and_relations(test_db: TestDb) {
        let db = test_db.connect().await;
        seed(&test_db, &db, ALPHA).await;
        seed(&test_db, &db, BETA).await;
        let server = TestServer::start(test_db.config()).await;
        for tenant in [ALPHA, BETA] {
            let key = test_db.key(tenant, Role::Viewer).await;
            let data = server.data(&key, EVERYTHING, json!({})).await;
            assert_only(tenant, &data);
            for root in ["models", "predictions", "recentPredictions", "feedback", "trainingJobs", "driftMetrics"] {
                assert_eq!(data[root]["totalCount"], 2, "{tenant} {root}");
            }
            assert_eq!(data["featureSets"]["totalCount"], 1);
            assert_eq!(data["configurations"]["totalCount"], 1);
            assert_eq!(data["m"]["predictions"]["totalCount"], 1);
            assert_eq!(data["p"]["feedback"]["totalCount"], 1);
            for model in data["models"]["nodes"].as_array().unwrap() {
                assert_eq!(model["predictions"]["totalCount"], 1);
                assert_eq!(model["feedback"]["totalCount"], 1);
                assert_eq!(model["trainingJob"]["models"]["totalCount"], 1);
            }
        }
        server.stop().await;
    }

    async fn another_tenants_ids_behave_like_missing_ids(test_db: TestDb) {
        let db = test_db.connect().await;
        seed(&test_db, &db, ALPHA).await;
        seed(&test_db, &db, BETA).await;
        let server = TestServer::start(test_db.config()).await;
        let beta = test_db.key(BETA, Role::Viewer).await;
        let lookup = |suffix: &str| format!(r#"{{
            model(modelId: "m-only-{suffix}") {{ modelName }}
            prediction(predictionId: "p-only-{suffix}") {{ resourceId }}
            trainingJob(jobId: "job-only-{suffix}") {{ createdBy }}
            predictions(filter: {{predictionIds: ["p-only-{suffix}"]}}) {{ totalCount nodes {{ resourceId }} }}
            feedback(filter: {{predictionIds: ["p-only-{suffix}"]}}) {{ totalCount }}
            driftMetrics(filter: {{modelIds: ["m-only-{suffix}"]}}) {{ totalCount }}
            models(filter: {{modelIds: ["m-only-{suffix}"]}}) {{ totalCount }}
            trainingJobs(filter: {{jobIds: ["job-only-{suffix}"]}}) {{ totalCount }}
        }}"#);
        let (status_alpha_ids, alpha_ids) = server.graphql(&beta, &lookup(ALPHA)).await;
        let (status_missing, missing) = server.graphql(&beta, &lookup("nobody")).await;
        assert_eq!(status_alpha_ids, status_missing);
        assert_eq!(alpha_ids, missing, "alpha's ids must look exactly like missing ones to beta");
        assert_eq!(missing["data"]["model"], Value::Null);
        assert_eq!(missing["data"]["predictions"]["totalCount"], 0);
        // Beta's own ids of the same kind are found, so the query itself works.
        let (_, own) = server.graphql(&beta, &lookup(BETA)).await;
        assert_only(BETA, &own["data"]);
        assert_eq!(own["data"]["predictions"]["totalCount"], 1);
        server.stop().await;
    }

    async fn a_cursor_minted_for_one_tenant_is_useless_to_another(test_db: TestDb) {
        let db = test_db.connect().await;
        seed(&test_db, &db, ALPHA).await;
        seed(&test_db, &db, BETA).await;
        let server = TestServer::start(test_db.config()).await;
        let alpha = test_db.key(ALPHA, Role::Viewer).await;
        let beta = test_db.key(BETA, Role::Viewer).await;
        let query = r#"query($after: String) {
            predictions(first: 1, after: $after) { pageInfo { endCursor } nodes { resourceId } }
            models(first: 1) { nodes { predictions(first: 1, after: $after) { nodes { resourceId } } } }
        }"#;
        let minted = server.data(&alpha, "{ predictions(first: 1) { pageInfo { endCursor } } }", json!({})).await;
        let cursor = minted["predictions"]["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
        // Alpha can use it.
        let data = server.data(&alpha, query, json!({"after": cursor})).await;
        assert_only(ALPHA, &data);
        // Beta gets exactly what a garbage cursor gets, at the root and nested.
        // Errors arrive in completion order: compare them as a set.
        let sorted = |mut body: Value| {
            if let Some(errors) = body["errors"].as_array_mut() {
                errors.sort_by_key(|e| e["path"].to_string());
            }
            body
        };
        let (_, stolen) = server.graphql_with(&beta, query, json!({"after": cursor})).await;
        let (_, garbage) = server.graphql_with(&beta, query, json!({"after": "garbage"})).await;
        let (stolen, garbage) = (sorted(stolen), sorted(garbage));
        assert_eq!(stolen, garbage);
        let codes: Vec<&Value> = stolen["errors"].as_array().unwrap().iter().map(|e| &e["extensions"]["code"]).collect();
        assert_eq!(codes, [&json!("BAD_USER_INPUT"), &json!("BAD_USER_INPUT")], "{stolen}");
        server.stop().await;
    }

    async fn concurrent_tenants_never_mix_through_the_loaders(test_db: TestDb) {
        let db = test_db.connect().await;
        seed(&test_db, &db, ALPHA).await;
        seed(&test_db, &db, BETA).await;
        // Twenty at once per credential: the in-flight caps (16 per
        // credential, waiting 2 s) would turn a slow machine into 429s,
        // which is admission's subject, not this test's.
        let mut config = test_db.config();
        config.serve.admission.credential_max_in_flight = 0;
        config.serve.admission.tenant_max_in_flight = 0;
        let server = std::sync::Arc::new(TestServer::start(config).await);
        let alpha = test_db.key(ALPHA, Role::Viewer).await;
        let beta = test_db.key(BETA, Role::Viewer).await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (tenant, key) = if i % 2 == 0 { (ALPHA, alpha.clone()) } else { (BETA, beta.clone()) };
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let data = server.data(&key, EVERYTHING, json!({})).await;
                assert_only(tenant, &data);
            }));
        }
        for task in tasks {
            task.await.expect("no request saw another tenant's rows");
        }
    }

    async fn monitors_webhooks_and_deliveries_are_each_tenants_own(test_db: TestDb) {
        let db = test_db.connect().await;
        seed(&test_db, &db, ALPHA).await;
        seed(&test_db, &db, BETA).await;
        let server = TestServer::start(test_db.config()).await;
        let create = r#"mutation($id: String!, $warning: Float!, $url: String!) {
            setWebhook(url: $url, secret: "sixteen-bytes-or-more") { url }
            createMonitor(input: {monitorId: $id, modelId: "m-1", signal: VIOLATION_PROBABILITY, method: PSI,
                reference: {rollingSeconds: 3600}, currentSeconds: 3600, intervalSeconds: 3600,
                thresholds: {kind: FIXED, warning: $warning, critical: 1}}) { monitorId }
        }"#;
        for (tenant, warning) in [(ALPHA, 0.1), (BETA, 0.2)] {
            let admin = test_db.key(tenant, Role::Admin).await;
            for id in ["mon-1".to_owned(), format!("mon-only-{tenant}")] {
                let url = format!("https://{tenant}.example.com/hook");
                server.data(&admin, create, json!({"id": id, "warning": warning, "url": url})).await;
            }
        }
        let read = "{ monitors { monitorId modelId thresholds { warning } } webhook { url } webhookDeliveries { deliveryId } }";
        for (tenant, warning) in [(ALPHA, 0.1), (BETA, 0.2)] {
            let admin = test_db.key(tenant, Role::Admin).await;
            let data = server.data(&admin, read, json!({})).await;
            let ids: Vec<&str> = data["monitors"].as_array().unwrap().iter().map(|m| m["monitorId"].as_str().unwrap()).collect();
            assert_eq!(ids, ["mon-1", &format!("mon-only-{tenant}")], "{tenant}");
            for monitor in data["monitors"].as_array().unwrap() {
                assert_eq!(monitor["thresholds"]["warning"], warning, "{tenant}: {monitor}");
            }
            assert_eq!(data["webhook"]["url"], format!("https://{tenant}.example.com/hook"));
            assert_eq!(data["webhookDeliveries"], json!([]));
            assert_eq!(test_db.rows("mlgate_monitors", tenant).await, 2);
            assert_eq!(test_db.rows("mlgate_webhooks", tenant).await, 1);
        }
        // Alpha's monitor ids behave like missing ones for beta.
        let beta = test_db.key(BETA, Role::Admin).await;
        let poke = |id: &str| format!(r#"mutation {{
            u: updateMonitor(input: {{monitorId: "{id}", enabled: false}}) {{ monitorId }}
        }}"#);
        let (_, alpha_id) = server.graphql(&beta, &poke("mon-only-alpha")).await;
        let (_, missing) = server.graphql(&beta, &poke("mon-only-nobody")).await;
        assert_eq!(alpha_id["errors"][0]["extensions"], missing["errors"][0]["extensions"]);
        assert_eq!(alpha_id["errors"][0]["extensions"]["code"], "NOT_FOUND");
        let delete = |id: &str| format!(r#"mutation {{ deleteMonitor(monitorId: "{id}") }}"#);
        let (_, deleted) = server.graphql(&beta, &delete("mon-only-alpha")).await;
        assert_eq!(deleted["data"]["deleteMonitor"], false);
        assert_eq!(test_db.rows("mlgate_monitors", ALPHA).await, 2, "alpha's monitor stays");
        server.stop().await;
    }
}
