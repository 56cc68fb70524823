//! Ingestion: batches shaped like the demo's predictions (20 SHAP
//! features, 8×16 attention on transformer models), written in one run by
//! four paths at concurrency 1 and 4: plain `COPY` into `ml_predictions`
//! (the floor), `COPY` into a staging table plus `INSERT … SELECT … ON
//! CONFLICT DO NOTHING` (the floor with idempotency), mlgate's bulk
//! endpoint (`POST /ingest/predictions`) and `recordPredictions`; every row
//! counted afterwards. Then the gateway's memory while it streams one body
//! of about 100 MB.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sqlx::postgres::{PgPool, PgPoolOptions};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value as Json};
use server::auth::Role;

use crate::args::Args;
use crate::common::{count, graphql, ms, pool};
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

/// The paths compared, in the table's order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    Copy,
    StagedCopy,
    Bulk,
    Record,
}

impl Path {
    const ALL: [Path; 4] = [Path::Copy, Path::StagedCopy, Path::Bulk, Path::Record];

    fn label(self) -> &'static str {
        match self {
            Path::Copy => "plain `COPY` (floor)",
            Path::StagedCopy => "`COPY` to staging + `INSERT … SELECT … ON CONFLICT DO NOTHING`",
            Path::Bulk => "mlgate `POST /ingest/predictions` (NDJSON)",
            Path::Record => "mlgate `recordPredictions`",
        }
    }
}

/// Predictions per batch (request, or floor transaction).
const BATCH: usize = 1000;

/// One tenant's credentials and models (with their registered versions).
struct Tenant {
    name: String,
    key: String,
    models: Vec<String>,
    versions: Vec<String>,
}

/// One batch, ready to send the way its path sends it.
enum Payload {
    Csv { tenant: usize, data: Vec<u8> },
    Ndjson { tenant: usize, body: Vec<u8> },
    GraphQL { tenant: usize, variables: Json },
}

const PREDICTION_COLUMNS: &str = "id, prediction_id, resource_id, tenant_id, model_id, \
violation_probability, confidence_score, risk_level, shap_values, attention_weights, \
recommendations, inference_time_ms, model_version, prediction_timestamp";

/// A CSV field, always quoted.
fn csv_field(out: &mut String, value: &str) {
    out.push('"');
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

/// The batch as CSV rows of `ml_predictions`, stored as mlgate stores them
/// (SHAP values as one object with `base_value`, vocabulary in lowercase).
fn csv_rows(batch: &Json, tenant: &Tenant) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc3339();
    let mut out = String::new();
    for p in batch.as_array().expect("a batch is a list") {
        let model = p["modelId"].as_str().unwrap();
        let version = &tenant.versions[tenant.models.iter().position(|m| m == model).unwrap()];
        let mut shap = serde_json::Map::new();
        for c in p["shapValues"].as_array().unwrap() {
            shap.insert(
                c["feature"].as_str().unwrap().to_owned(),
                c["value"].clone(),
            );
        }
        shap.insert("base_value".into(), p["shapBaseValue"].clone());
        let recommendations: Vec<String> = p["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("\"{}\"", r.as_str().unwrap().replace('"', "\\\"")))
            .collect();
        let fields = [
            uuid::Uuid::new_v4().to_string(),
            p["predictionId"].as_str().unwrap().to_owned(),
            p["resourceId"].as_str().unwrap().to_owned(),
            tenant.name.clone(),
            model.to_owned(),
            p["violationProbability"].to_string(),
            p["confidenceScore"].to_string(),
            p["riskLevel"].as_str().unwrap().to_ascii_lowercase(),
            Json::Object(shap).to_string(),
            p["attentionWeights"].to_string(),
            format!("{{{}}}", recommendations.join(",")),
            p["inferenceTimeMs"].to_string(),
            version.clone(),
            now.clone(),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if i == 9 && field == "null" {
                continue; // an unquoted empty field is NULL
            }
            csv_field(&mut out, field);
        }
        out.push('\n');
    }
    out.into_bytes()
}

fn ndjson(batch: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    for p in batch.as_array().expect("a batch is a list") {
        serde_json::to_writer(&mut out, p).expect("JSON serializes");
        out.push(b'\n');
    }
    out
}

/// Writes one CSV batch as the floor does: a transaction with the tenant
/// set, then `COPY` (into the table, or, as the gateway role, into a
/// staging table moved by one idempotent `INSERT … SELECT`).
async fn floor_copy(pool: &PgPool, tenant: &str, data: &[u8], staged: bool) -> anyhow::Result<()> {
    let mut txn = pool.begin().await?;
    // PostgreSQL refuses `COPY FROM` into a table under row-level security
    // for a role it applies to, so plain `COPY` runs as the table's owner
    // (unchecked: a floor no gateway could use); the staged path runs as
    // the gateway role, its `INSERT` checked like mlgate's.
    let role = if staged { "mlgate_gateway" } else { "" };
    sea_orm::sqlx::query(
        "SELECT set_config('role', COALESCE(NULLIF($2, ''), current_user), true), \
         set_config('app.tenant_id', $1, true)",
    )
    .bind(tenant)
    .bind(role)
    .execute(&mut *txn)
    .await?;
    if staged {
        sea_orm::sqlx::raw_sql(
            "CREATE TEMP TABLE bench_staged (LIKE ml_predictions INCLUDING DEFAULTS) ON COMMIT DROP",
        )
        .execute(&mut *txn)
        .await?;
    }
    let table = if staged {
        "bench_staged"
    } else {
        "ml_predictions"
    };
    let copy = format!("COPY {table} ({PREDICTION_COLUMNS}) FROM STDIN (FORMAT csv)");
    let mut copy = txn.copy_in_raw(&copy).await?;
    copy.send(data).await?;
    copy.finish().await?;
    if staged {
        sea_orm::sqlx::raw_sql(
            "INSERT INTO ml_predictions SELECT * FROM bench_staged ORDER BY prediction_id \
             ON CONFLICT (tenant_id, prediction_id) DO NOTHING",
        )
        .execute(&mut *txn)
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Sends `payloads` with `concurrency` workers; returns the wall time and
/// each batch's latency.
async fn run(
    concurrency: usize,
    payloads: Vec<Payload>,
    client: &reqwest::Client,
    base: &str,
    tenants: &Arc<Vec<Tenant>>,
    floor: &PgPool,
    path: Path,
) -> anyhow::Result<(Duration, Samples)> {
    let payloads = Arc::new(payloads);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (payloads, next, client, base, tenants, floor) = (
            payloads.clone(),
            next.clone(),
            client.clone(),
            base.to_owned(),
            tenants.clone(),
            floor.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Samples::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(payload) = payloads.get(i) else {
                    break;
                };
                let sent = Instant::now();
                match payload {
                    Payload::Csv { tenant, data } => {
                        floor_copy(
                            &floor,
                            &tenants[*tenant].name,
                            data,
                            path == Path::StagedCopy,
                        )
                        .await?
                    }
                    Payload::Ndjson { tenant, body } => {
                        let response = client
                            .post(format!("{base}/ingest/predictions"))
                            .bearer_auth(&tenants[*tenant].key)
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .await?;
                        let status = response.status();
                        let answer: Json = response.json().await?;
                        anyhow::ensure!(
                            status.is_success() && answer["inserted"] == BATCH,
                            "HTTP {status}: {answer}"
                        );
                    }
                    Payload::GraphQL { tenant, variables } => {
                        let data = graphql(
                            &client,
                            &format!("{base}/graphql"),
                            &tenants[*tenant].key,
                            RECORD,
                            variables,
                        )
                        .await?;
                        anyhow::ensure!(data["recordPredictions"]["count"] == BATCH, "{data}");
                    }
                }
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut samples = Samples::default();
    for worker in workers {
        samples.extend(worker.await??);
    }
    Ok((started.elapsed(), samples))
}

pub(crate) async fn ingest(args: &Args, tenant_names: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    let gateway = crate::process::Gateway::start(
        &args.mlgate_bin,
        &args.database_url,
        &[
            "--no-migrate",
            "--credential-rate",
            "0",
            "--tenant-rate",
            "0",
        ],
    )
    .await?;
    let db = server::db::Database::connect(&args.database_url, 2).await?;
    let raw = pool(&args.database_url, 2).await?;
    let mut tenants = Vec::new();
    for name in tenant_names {
        let key = server::ops::keys::create_for_tenant(&db, name, Role::Service, "bench")
            .await?
            .secret;
        let rows = raw
            .query_all_raw(Statement::from_string(
                raw.get_database_backend(),
                format!("SELECT model_id, version FROM ml_models WHERE tenant_id = '{name}' ORDER BY model_id"),
            ))
            .await?;
        let mut models = Vec::new();
        let mut versions = Vec::new();
        for row in rows {
            models.push(row.try_get_by_index::<String>(0)?);
            versions.push(row.try_get_by_index::<String>(1)?);
        }
        tenants.push(Tenant {
            name: name.clone(),
            key,
            models,
            versions,
        });
    }
    let tenants = Arc::new(tenants);
    let floor = PgPoolOptions::new()
        .max_connections(8)
        // sqlx's idle/lifetime sweep can spin forever (sqlx#3645).
        .idle_timeout(None)
        .max_lifetime(None)
        .connect(&args.database_url)
        .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let batches = (args.seconds as usize * 2).max(2);

    writeln!(out, "## Ingestion\n")?;
    writeln!(
        out,
        "Batches of {BATCH} predictions (20 SHAP values each, 8×16 attention on transformer models), \
         {batches} per path and level, round-robin over the {} tenants; each level runs the paths \
         twice (in order, then in reverse), and a path's rate is its committed rows over its wall \
         time in both rounds. Rows counted afterwards. The floors get CSV prepared in advance; \
         plain `COPY` runs as the table's owner (PostgreSQL refuses `COPY FROM` into a table \
         under row-level security), the staged floor as the gateway role with the tenant set; mlgate (the release binary, limits off) gets \
         NDJSON or GraphQL variables prepared in advance.\n",
        tenants.len()
    )?;
    writeln!(
        out,
        "| concurrency | path | predictions/s | of plain `COPY` | batch p50 | p95 (ms) | rows checked |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for concurrency in [1usize, 4] {
        let mut totals: Vec<(Path, u64, Duration, Samples)> = Path::ALL
            .iter()
            .map(|p| (*p, 0, Duration::ZERO, Samples::default()))
            .collect();
        for round in 0..2 {
            let order: Vec<Path> = if round == 0 {
                Path::ALL.to_vec()
            } else {
                Path::ALL.iter().rev().copied().collect()
            };
            for path in order {
                let payloads: Vec<Payload> = (0..batches)
                    .map(|b| {
                        let tenant = b % tenants.len();
                        let prefix = format!("bench-{run_id}-c{concurrency}-r{round}-{path:?}-{b}");
                        let batch = batch(&prefix, BATCH, &tenants[tenant].models, b as u64);
                        match path {
                            Path::Copy | Path::StagedCopy => Payload::Csv {
                                tenant,
                                data: csv_rows(&batch, &tenants[tenant]),
                            },
                            Path::Bulk => Payload::Ndjson {
                                tenant,
                                body: ndjson(&batch),
                            },
                            Path::Record => Payload::GraphQL {
                                tenant,
                                variables: json!({ "input": batch }),
                            },
                        }
                    })
                    .collect();
                let before = count(&raw, "SELECT count(*) FROM ml_predictions").await?;
                let (wall, samples) = run(
                    concurrency,
                    payloads,
                    &client,
                    &gateway.base,
                    &tenants,
                    &floor,
                    path,
                )
                .await?;
                let written = count(&raw, "SELECT count(*) FROM ml_predictions").await? - before;
                anyhow::ensure!(
                    written as usize == batches * BATCH,
                    "{path:?}: {written} rows stored for {batches} batches of {BATCH}"
                );
                let total = totals.iter_mut().find(|t| t.0 == path).unwrap();
                total.1 += written as u64;
                total.2 += wall;
                total.3.extend(samples);
            }
        }
        let rate = |t: &(Path, u64, Duration, Samples)| t.1 as f64 / t.2.as_secs_f64();
        let copy_rate = rate(&totals[0]);
        for total in &totals {
            writeln!(
                out,
                "| {concurrency} | {} | {:.0} | {:.0} % | {} | {} | {} |",
                total.0.label(),
                rate(total),
                rate(total) / copy_rate * 100.0,
                ms(total.3.p50()),
                ms(total.3.p95()),
                total.1
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        stream_memory(&gateway, &tenants[0], &raw, &run_id, args.ingest_stream_mb).await?
    )?;
    gateway.stop().await;
    Ok(out)
}

/// Streams one body of `megabytes` MiB to the bulk endpoint (generated as it
/// is sent) while sampling the gateway's resident memory.
async fn stream_memory(
    gateway: &crate::process::Gateway,
    tenant: &Tenant,
    raw: &sea_orm::DatabaseConnection,
    run_id: &str,
    megabytes: usize,
) -> anyhow::Result<String> {
    let target_bytes = megabytes * 1024 * 1024;
    let rss = gateway.rss_probe()?;
    let idle = rss()?;
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(idle));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(now) = rss() {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let sent = Arc::new(AtomicUsize::new(0));
    let (models, prefix, counter) = (
        tenant.models.clone(),
        format!("bench-{run_id}-stream"),
        sent.clone(),
    );
    let chunks = futures_util::stream::unfold(0u64, move |b| {
        let (models, prefix, counter) = (models.clone(), prefix.clone(), counter.clone());
        async move {
            if counter.load(Ordering::Relaxed) >= target_bytes {
                return None;
            }
            let body = ndjson(&batch(&format!("{prefix}-{b}"), BATCH, &models, b));
            counter.fetch_add(body.len(), Ordering::Relaxed);
            Some((Ok::<_, std::io::Error>(body), b + 1))
        }
    });
    let before = count(raw, "SELECT count(*) FROM ml_predictions").await?;
    // A new connection: a pooled one the server closed while idle cannot be
    // retried with a streamed body.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let started = Instant::now();
    let response = client
        .post(format!("{}/ingest/predictions", gateway.base))
        .bearer_auth(&tenant.key)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await?;
    let status = response.status();
    let answer: Json = response.json().await?;
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    anyhow::ensure!(status.is_success(), "HTTP {status}: {answer}");
    let written = count(raw, "SELECT count(*) FROM ml_predictions").await? - before;
    anyhow::ensure!(
        answer["inserted"].as_i64() == Some(written),
        "{written} rows stored, answer {answer}"
    );
    let bytes = sent.load(Ordering::Relaxed);
    Ok(format!(
        "One streamed body of {:.0} MB ({written} predictions) to `POST /ingest/predictions`: \
         {:.1} s ({:.0} predictions/s); the gateway's resident memory {:.0} MB before, at most \
         {:.0} MB while streaming (sampled every 20 ms).\n",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64(),
        idle as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
    ))
}
