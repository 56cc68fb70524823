//! Ingestion: `recordPredictions` batches shaped like the demo's predictions
//! (20 SHAP features, 8×16 attention on transformer models).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value as Json};
use server::auth::Role;

use crate::args::Args;
use crate::common::{count, graphql, in_process, ms, pool};
use crate::load::closed_loop;
use crate::stats::Samples;

pub const RECORD: &str =
    "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count } }";

fn softmax(rng: &mut StdRng, n: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..3.0f64).exp()).collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / sum * 1e4).round() / 1e4).collect()
}

/// A batch of `size` new predictions for the tenant's `models`, with ids
/// `<prefix>-<n>`.
pub fn batch(prefix: &str, size: usize, models: &[String], seed: u64) -> Json {
    let mut rng = StdRng::seed_from_u64(seed);
    let predictions: Vec<Json> = (0..size)
        .map(|n| {
            let model = &models[n % models.len()];
            let probability: f64 = rng.gen_range(0.01..0.99);
            let risk = match probability {
                p if p >= 0.85 => "CRITICAL",
                p if p >= 0.65 => "HIGH",
                p if p >= 0.35 => "MEDIUM",
                _ => "LOW",
            };
            let shap: Vec<Json> = server::ops::demo::SHAP_FEATURES
                .iter()
                .enumerate()
                .map(|(i, feature)| {
                    let value = 0.35 / (1.0 + i as f64).powf(1.3) * rng.gen_range(-1.0..1.0);
                    json!({"feature": feature, "value": (value * 1e5f64).round() / 1e5})
                })
                .collect();
            let attention = model.starts_with("transformer").then(
                || json!({"heads": (0..8).map(|_| softmax(&mut rng, 16)).collect::<Vec<_>>()}),
            );
            json!({
                "predictionId": format!("{prefix}-{n:04}"),
                "resourceId": format!("res-bench-{:03}", rng.gen_range(0..200)),
                "modelId": model,
                "violationProbability": (probability * 1e4f64).round() / 1e4,
                "confidenceScore": (rng.gen_range(0.6..0.99f64) * 1e4).round() / 1e4,
                "riskLevel": risk,
                "inferenceTimeMs": (rng.gen_range(5.0..60.0f64) * 100.0).round() / 100.0,
                "shapValues": shap,
                "shapBaseValue": 0.18,
                "attentionWeights": attention,
                "recommendations": ["Block public access at the account level"],
            })
        })
        .collect();
    Json::Array(predictions)
}

pub(crate) async fn ingest(args: &Args, tenants: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    let server = in_process(args).await?;
    let mut keys = Vec::new();
    for tenant in tenants {
        keys.push(
            server::ops::keys::create_for_tenant(&server.db, tenant, Role::Service, "bench")
                .await?
                .secret,
        );
    }
    let raw = pool(&args.database_url, 2).await?;
    let mut models = Vec::new();
    for tenant in tenants {
        let rows = raw
            .query_all_raw(Statement::from_string(
                raw.get_database_backend(),
                format!(
                    "SELECT model_id FROM ml_models WHERE tenant_id = '{tenant}' ORDER BY model_id"
                ),
            ))
            .await?;
        models.push(
            rows.iter()
                .map(|r| r.try_get_by_index::<String>(0))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    writeln!(out, "## Ingestion\n")?;
    writeln!(out, "`recordPredictions` with batches of 1000 (20 SHAP values each, 8×16 attention on transformer models), round-robin over the {} tenants; rows counted afterwards.\n", tenants.len())?;
    writeln!(
        out,
        "| concurrency | batches | predictions/s (committed rows ÷ wall time) | batch p50 | p95 | p99 (ms) | rows checked |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    let duration = Duration::from_secs(args.seconds);
    let (keys, models) = (Arc::new(keys), Arc::new(models));
    for &concurrency in &args.concurrency {
        let before = count(&raw, "SELECT count(*) FROM ml_predictions").await?;
        let attempted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let started = Instant::now();
        let samples: Samples = {
            let (client, url, keys, models, run, attempted) = (
                client.clone(),
                server.url.clone(),
                keys.clone(),
                models.clone(),
                run.clone(),
                attempted.clone(),
            );
            closed_loop(concurrency, Duration::ZERO, duration, move |worker, i| {
                let tenant = (worker + i as usize) % keys.len();
                let prefix = format!("bench-{run}-c{concurrency}-w{worker}-{i}");
                let batch = batch(&prefix, 1000, &models[tenant], (worker as u64) << 32 | i);
                let (client, url, key, attempted) = (
                    client.clone(),
                    url.clone(),
                    keys[tenant].clone(),
                    attempted.clone(),
                );
                async move {
                    attempted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let data =
                        graphql(&client, &url, &key, RECORD, &json!({"input": batch})).await?;
                    anyhow::ensure!(data["recordPredictions"]["count"] == 1000, "{data}");
                    Ok(())
                }
            })
            .await?
        };
        // Until the last batch committed: those started in the window finish.
        let wall = started.elapsed();
        let after = count(&raw, "SELECT count(*) FROM ml_predictions").await?;
        let batches = attempted.load(std::sync::atomic::Ordering::Relaxed);
        // Batches still running at the end of the window finish too.
        anyhow::ensure!(
            (after - before) as u64 == batches * 1000,
            "{} rows stored for {batches} batches of 1000",
            after - before
        );
        writeln!(
            out,
            "| {concurrency} | {batches} | {:.0} | {} | {} | {} | {} |",
            (after - before) as f64 / wall.as_secs_f64(),
            ms(samples.p50()),
            ms(samples.p95()),
            ms(samples.p99()),
            after - before
        )?;
    }
    writeln!(out)?;
    let _ = server.stop.send(());
    let _ = server.handle.await;
    Ok(out)
}
