//! Light relational queries (a lookup, a page with two relations, a
//! 3-level list, a filtered page with SHAP and attention): mlgate beside
//! PostGraphile and beside hand-written SQL run the way a gateway must run
//! it (a transaction as the gateway role with the tenant set: `BEGIN`,
//! `set_config`, one statement, `COMMIT`), the floor.
//!
//! PostGraphile is asked through aliases, so its answers have mlgate's
//! shape; all three answers are compared (the ids, in order) before timing.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use serde_json::{json, Value as Json};
use server::auth::Role;

use crate::args::Args;
use crate::common::{graphql, in_process, ms, pool};
use crate::load::closed_loop;
use crate::postgraphile::{postgraphile_request, PostGraphile};
use crate::reads::top_shap;
use crate::stats::Samples;

#[derive(Clone, Copy, Debug)]
enum Light {
    Lookup,
    Critical,
    FeedbackPage,
    Nested,
}

impl Light {
    const ALL: [Light; 4] = [
        Light::Lookup,
        Light::Critical,
        Light::FeedbackPage,
        Light::Nested,
    ];

    fn name(self) -> &'static str {
        match self {
            Light::Lookup => "one prediction by id + model",
            Light::Critical => {
                "25 newest CRITICAL of a model + SHAP top-3 + attention shape + model"
            }
            Light::FeedbackPage => "50 feedback + prediction + model",
            Light::Nested => "3 models × 10 predictions × 5 feedback",
        }
    }

    fn mlgate(self) -> &'static str {
        match self {
            Light::Lookup => {
                "query($id: String!) { prediction(predictionId: $id) {
                   predictionId riskLevel modelVersion model { modelId modelName } } }"
            }
            Light::Critical => {
                "query($model: String!) {
                   predictions(filter: {modelIds: [$model], riskLevels: [CRITICAL]},
                               orderBy: {field: PREDICTION_TIMESTAMP, direction: DESC}, first: 25) {
                     nodes { predictionId violationProbability shapValues(top: 3) { feature value }
                             attentionWeights { shape } model { modelId modelName } } } }"
            }
            Light::FeedbackPage => {
                "query {
                   feedback(orderBy: {field: CREATED_AT, direction: DESC}, first: 50) {
                     nodes { feedbackId feedbackType correctLabel
                             prediction { predictionId riskLevel model { modelId modelName } } } } }"
            }
            Light::Nested => {
                "query {
                   models(orderBy: {field: CREATED_AT, direction: DESC}, first: 3) {
                     nodes { modelId
                             predictions(orderBy: {field: PREDICTION_TIMESTAMP, direction: DESC}, first: 10) {
                               nodes { predictionId
                                       feedback(orderBy: {field: CREATED_AT, direction: DESC}, first: 5) {
                                         nodes { feedbackId feedbackType } } } } } } }"
            }
        }
    }

    fn postgraphile(self) -> &'static str {
        match self {
            Light::Lookup => {
                "query($tenant: String!, $id: String!) {
                   prediction: mlPredictionByTenantIdAndPredictionId(tenantId: $tenant, predictionId: $id) {
                     predictionId riskLevel modelVersion
                     model: mlModelByTenantIdAndModelId { modelId modelName } } }"
            }
            Light::Critical => {
                "query($model: String!) {
                   predictions: allMlPredictions(condition: {modelId: $model, riskLevel: \"critical\"},
                                                 orderBy: [PREDICTION_TIMESTAMP_DESC, PREDICTION_ID_DESC], first: 25) {
                     nodes { predictionId violationProbability shapValues attentionWeights
                             model: mlModelByTenantIdAndModelId { modelId modelName } } } }"
            }
            Light::FeedbackPage => {
                "query {
                   feedback: allMlFeedbacks(orderBy: [CREATED_AT_DESC, FEEDBACK_ID_DESC], first: 50) {
                     nodes { feedbackId feedbackType correctLabel
                             prediction: mlPredictionByTenantIdAndPredictionId {
                               predictionId riskLevel model: mlModelByTenantIdAndModelId { modelId modelName } } } } }"
            }
            Light::Nested => {
                "query {
                   models: allMlModels(orderBy: [CREATED_AT_DESC, MODEL_ID_DESC], first: 3) {
                     nodes { modelId
                             predictions: mlPredictionsByTenantIdAndModelId(orderBy: [PREDICTION_TIMESTAMP_DESC, PREDICTION_ID_DESC], first: 10) {
                               nodes { predictionId
                                       feedback: mlFeedbacksByTenantIdAndPredictionId(orderBy: [CREATED_AT_DESC, FEEDBACK_ID_DESC], first: 5) {
                                         nodes { feedbackId feedbackType } } } } } } }"
            }
        }
    }

    /// The variables of the mlgate document.
    fn variables(self, s: &Subject) -> Json {
        match self {
            Light::Lookup => json!({"id": s.prediction}),
            Light::Critical => json!({"model": s.model}),
            Light::FeedbackPage | Light::Nested => json!({}),
        }
    }

    /// The variables of the PostGraphile document.
    fn their_variables(self, s: &Subject) -> Json {
        match self {
            Light::Lookup => json!({"tenant": s.tenant, "id": s.prediction}),
            Light::Critical => json!({"model": s.model}),
            Light::FeedbackPage | Light::Nested => json!({}),
        }
    }

    /// The parameters of the floor's statement.
    fn parameters(self, s: &Subject) -> Vec<Value> {
        let mut values = vec![Value::from(s.tenant.clone())];
        match self {
            Light::Lookup => values.push(s.prediction.clone().into()),
            Light::Critical => values.push(s.model.clone().into()),
            Light::FeedbackPage | Light::Nested => {}
        }
        values
    }

    /// The floor's one statement.
    fn floor_sql(self) -> &'static str {
        match self {
            Light::Lookup => {
                "SELECT p.prediction_id, p.risk_level, p.model_version, m.model_id, m.model_name
                   FROM ml_predictions p
                   LEFT JOIN ml_models m ON m.tenant_id = p.tenant_id AND m.model_id = p.model_id
                  WHERE p.tenant_id = $1 AND p.prediction_id = $2"
            }
            Light::Critical => {
                "SELECT p.prediction_id, p.violation_probability::float8 AS probability, p.shap_values::text AS shap,
                        p.attention_weights::text AS attention, m.model_id, m.model_name
                   FROM ml_predictions p
                   LEFT JOIN ml_models m ON m.tenant_id = p.tenant_id AND m.model_id = p.model_id
                  WHERE p.tenant_id = $1 AND p.model_id = $2 AND p.risk_level = 'critical'
                  ORDER BY p.prediction_timestamp DESC NULLS LAST, p.prediction_id DESC LIMIT 25"
            }
            Light::FeedbackPage => {
                "SELECT f.feedback_id, f.feedback_type, f.correct_label, p.prediction_id, p.risk_level,
                        m.model_id, m.model_name
                   FROM ml_feedback f
                   LEFT JOIN ml_predictions p ON p.tenant_id = f.tenant_id AND p.prediction_id = f.prediction_id
                   LEFT JOIN ml_models m ON m.tenant_id = p.tenant_id AND m.model_id = p.model_id
                  WHERE f.tenant_id = $1
                  ORDER BY f.created_at DESC NULLS LAST, f.feedback_id DESC LIMIT 50"
            }
            Light::Nested => {
                "SELECT m.model_id, p.prediction_id, f.feedback_id, f.feedback_type
                   FROM (SELECT tenant_id, model_id, created_at FROM ml_models WHERE tenant_id = $1
                          ORDER BY created_at DESC NULLS LAST, model_id DESC LIMIT 3) m
                   LEFT JOIN LATERAL (SELECT tenant_id, prediction_id, prediction_timestamp FROM ml_predictions q
                                       WHERE q.tenant_id = m.tenant_id AND q.model_id = m.model_id
                                       ORDER BY q.prediction_timestamp DESC NULLS LAST, q.prediction_id DESC LIMIT 10) p ON true
                   LEFT JOIN LATERAL (SELECT feedback_id, feedback_type, created_at FROM ml_feedback g
                                       WHERE g.tenant_id = p.tenant_id AND g.prediction_id = p.prediction_id
                                       ORDER BY g.created_at DESC NULLS LAST, g.feedback_id DESC LIMIT 5) f ON true
                  ORDER BY m.created_at DESC NULLS LAST, m.model_id DESC,
                           p.prediction_timestamp DESC NULLS LAST, p.prediction_id DESC,
                           f.created_at DESC NULLS LAST, f.feedback_id DESC"
            }
        }
    }
}

/// A prediction id and its feedback, as the nested floor collects them.
type Feedbacked = (String, Vec<Json>);

/// What the queries are asked about.
#[derive(Clone)]
struct Subject {
    tenant: String,
    prediction: String,
    model: String,
}

/// The floor: one transaction as the gateway role (`mlgate_gateway`, as the
/// PostGraphile server sets it) with the tenant set, one
/// statement, the answer built as mlgate shapes it.
async fn floor(pool: &DatabaseConnection, s: &Subject, query: Light) -> anyhow::Result<Json> {
    let txn = pool.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true)",
        ["mlgate_gateway".into(), s.tenant.clone().into()],
    ))
    .await?;
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            query.floor_sql(),
            query.parameters(s),
        ))
        .await?;
    txn.commit().await?;
    let upper = |s: String| s.to_uppercase();
    Ok(match query {
        Light::Lookup => {
            let prediction = match rows.first() {
                None => Json::Null,
                Some(row) => json!({
                    "predictionId": row.try_get::<String>("", "prediction_id")?,
                    "riskLevel": upper(row.try_get("", "risk_level")?),
                    "modelVersion": row.try_get::<String>("", "model_version")?,
                    "model": {"modelId": row.try_get::<String>("", "model_id")?,
                              "modelName": row.try_get::<String>("", "model_name")?},
                }),
            };
            json!({ "prediction": prediction })
        }
        Light::Critical => {
            let mut nodes = Vec::with_capacity(rows.len());
            for row in rows {
                let shap: Option<String> = row.try_get("", "shap")?;
                let attention: Option<String> = row.try_get("", "attention")?;
                let attention = attention.and_then(|a| serde_json::from_str::<Json>(&a).ok());
                nodes.push(json!({
                    "predictionId": row.try_get::<String>("", "prediction_id")?,
                    "violationProbability": row.try_get::<f64>("", "probability")?,
                    "shapValues": top_shap(shap.as_deref(), 3),
                    "attentionWeights": attention.map(|_| json!({})),
                    "model": {"modelId": row.try_get::<String>("", "model_id")?,
                              "modelName": row.try_get::<String>("", "model_name")?},
                }));
            }
            json!({ "predictions": { "nodes": nodes } })
        }
        Light::FeedbackPage => {
            let mut nodes = Vec::with_capacity(rows.len());
            for row in rows {
                nodes.push(json!({
                    "feedbackId": row.try_get::<String>("", "feedback_id")?,
                    "feedbackType": upper(row.try_get("", "feedback_type")?),
                    "correctLabel": row.try_get::<Option<bool>>("", "correct_label")?,
                    "prediction": {
                        "predictionId": row.try_get::<String>("", "prediction_id")?,
                        "riskLevel": upper(row.try_get("", "risk_level")?),
                        "model": {"modelId": row.try_get::<String>("", "model_id")?,
                                  "modelName": row.try_get::<String>("", "model_name")?},
                    },
                }));
            }
            json!({ "feedback": { "nodes": nodes } })
        }
        Light::Nested => {
            let mut models: Vec<(String, Vec<Feedbacked>)> = Vec::new();
            for row in rows {
                let model: String = row.try_get("", "model_id")?;
                if models.last().map(|m| &m.0) != Some(&model) {
                    models.push((model, Vec::new()));
                }
                let predictions = &mut models.last_mut().expect("pushed").1;
                let Some(prediction) = row.try_get::<Option<String>>("", "prediction_id")? else {
                    continue;
                };
                if predictions.last().map(|p| &p.0) != Some(&prediction) {
                    predictions.push((prediction, Vec::new()));
                }
                if let Some(feedback) = row.try_get::<Option<String>>("", "feedback_id")? {
                    let kind: String = row.try_get("", "feedback_type")?;
                    predictions
                        .last_mut()
                        .expect("pushed")
                        .1
                        .push(json!({"feedbackId": feedback, "feedbackType": kind.to_uppercase()}));
                }
            }
            let nodes: Vec<Json> = models
                .into_iter()
                .map(|(model, predictions)| {
                    json!({"modelId": model, "predictions": {"nodes": predictions.into_iter().map(|(p, feedback)| {
                        json!({"predictionId": p, "feedback": {"nodes": feedback}})
                    }).collect::<Vec<_>>()}})
                })
                .collect();
            json!({ "models": { "nodes": nodes } })
        }
    })
}

/// Every id in `answer`, in document order (keys in sorted order, as all
/// three answers are compared the same way).
fn ids(answer: &Json, out: &mut Vec<String>) {
    match answer {
        Json::Object(map) => {
            for (key, value) in map {
                match value {
                    Json::String(id) if key.ends_with("Id") => out.push(id.clone()),
                    other => ids(other, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|item| ids(item, out)),
        _ => {}
    }
}

fn same_ids(query: Light, what: &str, theirs: &Json, floor: &Json) -> anyhow::Result<()> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    ids(theirs, &mut a);
    ids(floor, &mut b);
    anyhow::ensure!(!b.is_empty(), "{}: the floor found nothing", query.name());
    anyhow::ensure!(
        a == b,
        "{}: {what} and the floor disagree:\n{what} {theirs}\nfloor {floor}",
        query.name()
    );
    Ok(())
}

async fn subject(raw: &DatabaseConnection, tenant: &str) -> anyhow::Result<Subject> {
    let row = raw
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT p.prediction_id, p.model_id FROM ml_predictions p
              WHERE p.tenant_id = $1 AND p.risk_level = 'critical'
              ORDER BY p.prediction_timestamp DESC NULLS LAST, p.prediction_id DESC LIMIT 1",
            [tenant.into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant} has no critical prediction"))?;
    Ok(Subject {
        tenant: tenant.to_owned(),
        prediction: row.try_get("", "prediction_id")?,
        model: row.try_get("", "model_id")?,
    })
}

pub(crate) async fn light(args: &Args, tenant: &str) -> anyhow::Result<String> {
    let raw = pool(&args.database_url, 1).await?;
    let floor_pool = pool(&args.database_url, args.pool_size).await?;
    let s = Arc::new(subject(&raw, tenant).await?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let postgraphile = PostGraphile::start(args, &client, tenant).await?;
    let server = in_process(args).await?;
    let key = server::ops::keys::create_for_tenant(&server.db, tenant, Role::Viewer, "bench")
        .await?
        .secret;
    let duration = Duration::from_secs(args.seconds.max(1));
    let levels = [1usize, 8];

    let mut out = String::new();
    writeln!(out, "## Light queries beside PostGraphile and the floor\n")?;
    writeln!(
        out,
        "Tenant `{tenant}`, {} s per measurement after a warm-up of a fifth of it. The floor is one hand-written statement \
         in a transaction as the gateway role with the tenant set (`BEGIN`, `set_config`, the statement, `COMMIT`: \
         4 round trips); PostGraphile {} runs each request the same way. The three answers are compared (ids, in order) \
         before timing. mlgate's round trips are its statements plus a `BEGIN` and a `COMMIT` per transaction, counted on \
         a request after the first (its API key remembered, as in steady use: the credential cache's default).\n",
        duration.as_secs(),
        postgraphile.version,
    )?;
    writeln!(
        out,
        "| query | mlgate statements (transactions, round trips) | concurrency | p50 mlgate (ms) | p50 PostGraphile | p50 floor | mlgate / PostGraphile | mlgate / floor |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for query in Light::ALL {
        let (mine_variables, their_variables) = (query.variables(&s), query.their_variables(&s));
        let floor_answer = floor(&floor_pool, &s, query).await?;
        // Counted on a second request: the key is remembered after the
        // first (the credential cache, on by default), as in steady use.
        graphql(&client, &server.url, &key, query.mlgate(), &mine_variables).await?;
        let (statements, transactions) = (
            server.db.statements_executed(),
            server.db.transactions_begun(),
        );
        let mine = graphql(&client, &server.url, &key, query.mlgate(), &mine_variables).await?;
        let statements = server.db.statements_executed() - statements;
        let transactions = server.db.transactions_begun() - transactions;
        same_ids(query, "mlgate", &mine, &floor_answer)?;
        let theirs = postgraphile_request(
            &client,
            &postgraphile.url,
            tenant,
            query.postgraphile(),
            &their_variables,
        )
        .await?;
        same_ids(query, "PostGraphile", &theirs, &floor_answer)?;
        for concurrency in levels {
            let mine = {
                let (client, url, key, variables) = (
                    client.clone(),
                    server.url.clone(),
                    key.clone(),
                    mine_variables.clone(),
                );
                closed_loop(concurrency, duration / 5, duration, move |_, _| {
                    let (client, url, key, variables) =
                        (client.clone(), url.clone(), key.clone(), variables.clone());
                    async move {
                        graphql(&client, &url, &key, query.mlgate(), &variables)
                            .await
                            .map(|_| ())
                    }
                })
                .await?
            };
            let theirs = {
                let (client, url, tenant, variables) = (
                    client.clone(),
                    postgraphile.url.clone(),
                    tenant.to_owned(),
                    their_variables.clone(),
                );
                closed_loop(concurrency, duration / 5, duration, move |_, _| {
                    let (client, url, tenant, variables) = (
                        client.clone(),
                        url.clone(),
                        tenant.clone(),
                        variables.clone(),
                    );
                    async move {
                        postgraphile_request(
                            &client,
                            &url,
                            &tenant,
                            query.postgraphile(),
                            &variables,
                        )
                        .await
                        .map(|_| ())
                    }
                })
                .await?
            };
            let floor_samples: Samples = {
                let (pool, s) = (floor_pool.clone(), s.clone());
                closed_loop(concurrency, duration / 5, duration, move |_, _| {
                    let (pool, s) = (pool.clone(), s.clone());
                    async move { floor(&pool, &s, query).await.map(|_| ()) }
                })
                .await?
            };
            writeln!(
                out,
                "| {} | {statements} ({transactions}, {}) | {concurrency} | {} | {} | {} | {:.2}× | {:.2}× |",
                query.name(),
                statements + 2 * transactions,
                ms(mine.p50()),
                ms(theirs.p50()),
                ms(floor_samples.p50()),
                mine.p50() / theirs.p50(),
                mine.p50() / floor_samples.p50(),
            )?;
        }
    }
    writeln!(out)?;
    let _ = server.stop.send(());
    let _ = server.handle.await;
    Ok(out)
}
