//! PostGraphile v4 with `@graphile/pg-aggregates` and the connection filter
//! (`bench/postgraphile/server.mjs`), the gateway users would otherwise
//! pick, asked the read mix's questions the way its schema lets them be
//! asked, under the same row-level security (gateway role, tenant set per
//! request). Its answers are checked against the SQL floor's before timing.
//!
//! Where its schema cannot say the same thing, it is asked for less: no
//! latency percentiles (pg-aggregates has none), no SHAP top-5 (the whole
//! SHAP object comes back), no latest PSI per drift type, days without
//! predictions absent instead of zero, and model performance over every
//! model with predictions rather than the active ones.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::{json, Value as Json};
use server::auth::Role;

use crate::args::Args;
use crate::common::{in_process, mlgate_mix, ms, pool, post_graphql};
use crate::load::closed_loop;
use crate::reads::{self, Query, Windows};

const HIGH_RISK: &str = r#"query HighRisk($from: Datetime!) {
  allMlPredictions(filter: {riskLevel: {in: ["critical", "high"]}, predictionTimestamp: {greaterThanOrEqualTo: $from}},
                   orderBy: [VIOLATION_PROBABILITY_DESC, PREDICTION_ID_DESC], first: 20) {
    nodes {
      predictionId resourceId riskLevel violationProbability shapValues
      mlModelByTenantIdAndModelId { modelId modelName }
      mlFeedbacksByTenantIdAndPredictionId(first: 3, orderBy: [CREATED_AT_DESC, FEEDBACK_ID_DESC]) { nodes { feedbackType correctLabel } }
    }
  }
}"#;

const PERFORMANCE: &str = r#"query Performance($from: Datetime!) {
  allMlPredictions(filter: {predictionTimestamp: {greaterThanOrEqualTo: $from}}) {
    byModel: groupedAggregates(groupBy: [MODEL_ID]) { keys distinctCount { predictionId } average { confidenceScore inferenceTimeMs } }
    byRisk: groupedAggregates(groupBy: [MODEL_ID, RISK_LEVEL]) { keys distinctCount { predictionId } }
  }
}"#;

const DAILY: &str = r#"query Daily($from: Datetime!, $to: Datetime!) {
  allMlPredictions(filter: {predictionTimestamp: {greaterThanOrEqualTo: $from, lessThan: $to}}) {
    groupedAggregates(groupBy: [PREDICTION_TIMESTAMP_TRUNCATED_TO_DAY]) { keys distinctCount { predictionId } }
  }
}"#;

const DRIFT: &str = r#"query Drift($modelId: String!, $from: Datetime!) {
  allMlDriftMetrics(filter: {modelId: {equalTo: $modelId}, measuredAt: {greaterThanOrEqualTo: $from}}) {
    groupedAggregates(groupBy: [DRIFT_TYPE]) { keys distinctCount { metricId } max { psiScore } average { psiScore } }
  }
}"#;

const NESTED: &str = r#"query Nested {
  allMlModels(first: 4, orderBy: [CREATED_AT_DESC, MODEL_ID_DESC]) {
    nodes {
      modelId
      mlPredictionsByTenantIdAndModelId(first: 10, orderBy: [PREDICTION_TIMESTAMP_DESC, PREDICTION_ID_DESC]) {
        nodes { predictionId mlFeedbacksByTenantIdAndPredictionId(first: 2, orderBy: [CREATED_AT_DESC, FEEDBACK_ID_DESC]) { nodes { feedbackType } } }
      }
    }
  }
}"#;

/// The PostGraphile document and variables asking `query`'s question.
pub fn graphql(query: Query, w: &Windows) -> (&'static str, Json) {
    let document = match query {
        Query::HighRisk => HIGH_RISK,
        Query::Performance => PERFORMANCE,
        Query::Daily => DAILY,
        Query::Drift => DRIFT,
        Query::Nested => NESTED,
    };
    (document, reads::variables(query, w))
}

/// A PostGraphile count (a bigint, sent as a string).
fn count(v: &Json) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_i64())
}

fn number(v: &Json) -> Option<f64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
}

/// Checks PostGraphile's answer against the floor's on what both say.
pub fn same_results(query: Query, theirs: &Json, floor: &Json) -> anyhow::Result<()> {
    let fail = |what: &str| {
        format!("{}: PostGraphile and the SQL floor disagree on {what}:\nPostGraphile {theirs}\nfloor {floor}", query.name())
    };
    match query {
        Query::HighRisk => {
            let probabilities = |nodes: &Json| -> Vec<Option<f64>> {
                nodes
                    .as_array()
                    .map(|n| {
                        n.iter()
                            .map(|p| number(&p["violationProbability"]))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mine = probabilities(&theirs["allMlPredictions"]["nodes"]);
            ensure!(!mine.is_empty(), fail("the predictions"));
            ensure!(
                mine == probabilities(&floor["predictions"]["nodes"]),
                fail("the probabilities, in order")
            );
        }
        Query::Performance => {
            for model in floor["modelPerformance"].as_array().into_iter().flatten() {
                let id = &model["model"]["modelId"];
                let found = theirs["allMlPredictions"]["byModel"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|g| &g["keys"][0] == id);
                let n = found.and_then(|g| count(&g["distinctCount"]["predictionId"]));
                ensure!(
                    n.unwrap_or(0) == model["predictionCount"].as_i64().unwrap_or(-1),
                    fail("prediction counts")
                );
            }
        }
        Query::Daily => {
            let mut total = 0;
            for group in theirs["allMlPredictions"]["groupedAggregates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                total += count(&group["distinctCount"]["predictionId"]).unwrap_or(0);
            }
            let expected: i64 = floor["predictionStats"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g["measures"]["count"].as_i64())
                .sum();
            ensure!(
                total > 0 && total == expected,
                fail("the predictions counted")
            );
        }
        Query::Drift => {
            for kind in floor["driftSummary"]["types"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let name = kind["driftType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase();
                let found = theirs["allMlDriftMetrics"]["groupedAggregates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|g| g["keys"][0] == json!(name));
                let n = found.and_then(|g| count(&g["distinctCount"]["metricId"]));
                ensure!(
                    n == kind["metricCount"].as_i64(),
                    fail("metric counts per drift type")
                );
            }
        }
        Query::Nested => {
            let ids = |models: &Json, predictions: &str| -> Vec<(Json, Vec<Json>)> {
                models
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        let nodes = m[predictions]["nodes"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        (
                            m["modelId"].clone(),
                            nodes.iter().map(|p| p["predictionId"].clone()).collect(),
                        )
                    })
                    .collect()
            };
            let mine = ids(
                &theirs["allMlModels"]["nodes"],
                "mlPredictionsByTenantIdAndModelId",
            );
            ensure!(!mine.is_empty(), fail("the models"));
            ensure!(
                mine == ids(&floor["models"]["nodes"], "predictions"),
                fail("the models and their predictions")
            );
        }
    }
    Ok(())
}

/// A PostGraphile request: the tenant rides in a header its `pgSettings` read.
pub(crate) async fn postgraphile_request(
    client: &reqwest::Client,
    url: &str,
    tenant: &str,
    query: &str,
    variables: &Json,
) -> anyhow::Result<Json> {
    post_graphql(
        client.post(url).header("x-tenant", tenant),
        query,
        variables,
    )
    .await
    .map_err(|e| anyhow::anyhow!("PostGraphile: {e}"))
}

/// PostGraphile v4 started from `bench/postgraphile` (pool of the same size
/// as mlgate's), answering; stopped when dropped.
pub(crate) struct PostGraphile {
    _process: tokio::process::Child,
    pub(crate) url: String,
    pub(crate) version: String,
}

impl PostGraphile {
    pub(crate) async fn start(
        args: &Args,
        client: &reqwest::Client,
        tenant: &str,
    ) -> anyhow::Result<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("postgraphile");
        anyhow::ensure!(
            dir.join("node_modules").is_dir(),
            "PostGraphile is not installed: run `npm ci --prefix bench/postgraphile`"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let process = tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("DATABASE_URL", &args.database_url)
            .env("PORT", port.to_string())
            .env("POOL_SIZE", args.pool_size.to_string())
            .env("NODE_ENV", "production")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start node: {e}"))?;
        let url = format!("http://127.0.0.1:{port}/graphql");
        let started = Instant::now();
        while postgraphile_request(client, &url, tenant, "{ __typename }", &json!({}))
            .await
            .is_err()
        {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "PostGraphile never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let version = std::fs::read_to_string(dir.join("node_modules/postgraphile/package.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Json>(&s).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(Self {
            _process: process,
            url,
            version,
        })
    }
}

/// The read mix through mlgate and through PostGraphile v4 (started here
/// from `bench/postgraphile`, pool of the same size), same client, same
/// closed loop.
pub(crate) async fn versus_postgraphile(args: &Args, tenant: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let postgraphile = PostGraphile::start(args, &client, tenant).await?;
    let (theirs_url, version) = (postgraphile.url.clone(), postgraphile.version.clone());

    let server = in_process(args).await?;
    let key = server::ops::keys::create_for_tenant(&server.db, tenant, Role::Viewer, "bench")
        .await?
        .secret;
    let floor_pool = pool(&args.database_url, args.pool_size).await?;
    let windows = Arc::new(Windows::at(chrono::Utc::now(), "ensemble-risk-03"));
    for query in Query::ALL {
        let floor = reads::floor(&floor_pool, tenant, query, &windows).await?;
        let (document, variables) = reads::graphql(query, &windows);
        let mine = crate::common::graphql(&client, &server.url, &key, document, &variables).await?;
        reads::same_results(query, &mine, &floor)?;
        let (document, variables) = graphql(query, &windows);
        let theirs =
            postgraphile_request(&client, &theirs_url, tenant, document, &variables).await?;
        same_results(query, &theirs, &floor)?;
    }

    writeln!(
        out,
        "## Beside PostGraphile
"
    )?;
    writeln!(out, "PostGraphile {version} with `@graphile/pg-aggregates` and `postgraphile-plugin-connection-filter` (`bench/postgraphile/server.mjs`: Node, pool of {} connections, each request in a transaction as the gateway role with the tenant set, like mlgate), over the same database; tenant `{tenant}`. \
              Both answer the read mix, checked against the SQL floor first; PostGraphile is asked for less where its schema cannot say the same (no percentiles, whole SHAP objects, no latest PSI, no gap filling). Same client, same closed loop as above.\n", args.pool_size)?;
    writeln!(out, "| concurrency | mlgate req/s | p50 | p99 (ms) | PostGraphile req/s | p50 | p99 (ms) | throughput ratio |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    let duration = Duration::from_secs(args.seconds);
    for &concurrency in &args.concurrency {
        let mine = mlgate_mix(&client, &server.url, &key, &windows, concurrency, duration).await?;
        let theirs = {
            let (client, url, windows, tenant) = (
                client.clone(),
                theirs_url.clone(),
                windows.clone(),
                tenant.to_owned(),
            );
            closed_loop(concurrency, duration / 5, duration, move |worker, i| {
                let (client, url, tenant) = (client.clone(), url.clone(), tenant.clone());
                let query = Query::ALL[(worker + i as usize) % Query::ALL.len()];
                let (document, variables) = graphql(query, &windows);
                async move {
                    postgraphile_request(&client, &url, &tenant, document, &variables)
                        .await
                        .map(|_| ())
                }
            })
            .await?
        };
        writeln!(
            out,
            "| {concurrency} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2}× |",
            mine.throughput(),
            ms(mine.p50()),
            ms(mine.p99()),
            theirs.throughput(),
            ms(theirs.p50()),
            ms(theirs.p99()),
            mine.throughput() / theirs.throughput()
        )?;
    }
    writeln!(out)?;
    let _ = server.stop.send(());
    let _ = server.handle.await;
    Ok(out)
}
