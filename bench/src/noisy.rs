//! Noisy neighbour: one tenant saturates the gateway with expensive
//! analytics and amplification attempts while another runs a light
//! dashboard mix. The light tenant's latency is measured alone first, then
//! under the noise, against the real `mlgate` binary with its default
//! protections; the gateway's resident set is sampled throughout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value as Json};
use server::auth::Role;

use crate::args::Args;
use crate::common::ms;
use crate::process::Gateway;
use crate::stats::Samples;

/// How long each light client waits between its requests: two clients
/// send at most 80 requests per second, a busy dashboard.
const LIGHT_PAUSE: Duration = Duration::from_millis(25);

/// The light tenant's dashboard: small pages, counts and a drift summary.
const LIGHT: [&str; 4] = [
    "{ models { totalCount nodes { modelId status } } }",
    r#"query($from: DateTime!) { predictions(filter: {riskLevels: [CRITICAL], from: $from}, first: 20) { nodes { predictionId violationProbability } } }"#,
    r#"query($model: String!, $from: DateTime!) { driftSummary(modelId: $model, window: {from: $from}) { types { driftType metricCount } } }"#,
    "{ me { tenant role } }",
];

/// What the noisy tenant sends: the heaviest analytics the limits let
/// through (25 aliased SHAP importances over 30 days, model performance
/// with percentiles and outcomes, predictions per risk level per hour).
fn heavy(model: &str) -> Vec<String> {
    let shap = (0..25)
        .map(|i| format!("s{i}: shapImportance(modelId: \"{model}\", window: {{from: $from}}, top: 20) {{ features {{ feature meanAbsValue }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        format!("query($from: DateTime!) {{ {shap} }}"),
        "query($from: DateTime!) { modelPerformance(window: {from: $from}) { predictionCount inferenceTimeMs { p50 p95 p99 } observed { precision recall } calibration { brierScore } } }".into(),
        "query($from: DateTime!, $to: DateTime!) { predictionStats(groupBy: [RISK_LEVEL], bucket: {unit: HOUR}, from: $from, to: $to) { groups { measures { count inferenceTimeMs { p95 } } } } }".into(),
    ]
}

/// Amplification attempts: each refused before it costs memory, or bounded.
fn attacks() -> Vec<(&'static str, String)> {
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    vec![
        ("deep literal (1M)", format!("{{ me(x: {}) {{ tenant }} }}", nested(1_000_000))),
        (
            "20 × predictionStats by resource",
            format!(
                "{{ {} }}",
                (0..20)
                    .map(|i| format!("a{i}: predictionStats(groupBy: [RESOURCE]) {{ groups {{ key {{ resourceId }} measures {{ count }} }} }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        ("400k unknown directives", format!("{{ me {{ tenant {} }} }}", "@x ".repeat(400_000))),
        (
            "1,000 aliases of modelPerformance",
            format!(
                "{{ {} }}",
                (0..1000)
                    .map(|i| format!("a{i}: modelPerformance {{ predictionCount }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        (
            "one grouping by resource (largest allowed answer)",
            "{ predictionStats(groupBy: [RESOURCE]) { groups { key { resourceId } measures { count violationProbability { avg min max } } } } }".into(),
        ),
    ]
}

/// Where a light client's requests go.
#[derive(Clone)]
pub enum Light {
    /// mlgate, with the light tenant's key.
    Gateway {
        url: String,
        key: String,
        variables: Json,
    },
    /// The floor: hand-written SQL that answers the mix's questions on
    /// PostgreSQL, each in a transaction as the gateway's role with the
    /// tenant set, as mlgate runs them. It reads only what each answer
    /// needs (the drift summary: a count per type, where mlgate's summary
    /// query computes every measure of a type); `me` reads nothing, so the
    /// floor's mix has three requests.
    Floor {
        database_url: String,
        tenant: String,
        model: String,
        from: chrono::DateTime<Utc>,
    },
}

/// A [`Light`] target with its connection (an HTTP client, or a pool of a
/// connection per client).
enum Target {
    Gateway {
        client: reqwest::Client,
        url: String,
        key: String,
        variables: Json,
    },
    Floor {
        pool: sea_orm::DatabaseConnection,
        tenant: String,
        model: String,
        from: chrono::DateTime<Utc>,
    },
}

impl Target {
    async fn connect(light: Light, clients: usize) -> anyhow::Result<Self> {
        Ok(match light {
            Light::Gateway {
                url,
                key,
                variables,
            } => Self::Gateway {
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()?,
                url,
                key,
                variables,
            },
            Light::Floor {
                database_url,
                tenant,
                model,
                from,
            } => {
                let mut options = sea_orm::ConnectOptions::new(database_url);
                // Hand-written, tuned: no liveness ping before each use.
                options
                    .max_connections(clients as u32)
                    .min_connections(clients as u32)
                    .test_before_acquire(false)
                    // sqlx's idle/lifetime sweep can spin forever (sqlx#3645).
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .sqlx_logging(false);
                Self::Floor {
                    pool: sea_orm::Database::connect(options).await?,
                    tenant,
                    model,
                    from,
                }
            }
        })
    }

    /// Request `i` of the mix: `None`, or what went wrong.
    async fn request(&self, i: usize) -> Option<String> {
        match self {
            Self::Gateway {
                client,
                url,
                key,
                variables,
            } => {
                let query = LIGHT[i % LIGHT.len()];
                match client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"query": query, "variables": variables}))
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status();
                        let body: Json = response.json().await.unwrap_or(Json::Null);
                        (!(status.is_success()
                            && body.get("errors").is_none()
                            && body["data"].is_object()))
                        .then(|| format!("HTTP {status}: {body}"))
                    }
                    Err(e) => Some(e.to_string()),
                }
            }
            Self::Floor {
                pool,
                tenant,
                model,
                from,
            } => floor_request(pool, tenant, model, *from, i)
                .await
                .err()
                .map(|e| e.to_string()),
        }
    }
}

/// The floor's request `i`: the light mix's reads, in one transaction.
async fn floor_request(
    pool: &sea_orm::DatabaseConnection,
    tenant: &str,
    model: &str,
    from: chrono::DateTime<Utc>,
    i: usize,
) -> anyhow::Result<()> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    let sql = |sql: &str, values: Vec<sea_orm::Value>| {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    };
    let txn = pool.begin().await?;
    // `mlgate_gateway`: migration::GATEWAY_ROLE, the non-owner role RLS binds.
    txn.execute_raw(sql(
        "SELECT set_config('role', 'mlgate_gateway', true), set_config('app.tenant_id', $1, true)",
        vec![tenant.into()],
    ))
    .await?;
    let rows = match i % 3 {
        0 => {
            txn.query_all_raw(sql("SELECT count(*) FROM ml_models", vec![]))
                .await?;
            txn.query_all_raw(sql(
                "SELECT model_id, status FROM ml_models
                  ORDER BY created_at DESC NULLS LAST, model_id DESC LIMIT 21",
                vec![],
            ))
            .await?
        }
        1 => {
            txn.query_all_raw(sql(
                "SELECT prediction_id, violation_probability::float8 FROM ml_predictions
                  WHERE risk_level = 'critical' AND prediction_timestamp >= $1
                  ORDER BY prediction_timestamp DESC, prediction_id DESC LIMIT 20",
                vec![from.into()],
            ))
            .await?
        }
        _ => {
            txn.query_all_raw(sql(
                "SELECT drift_type, count(*) FROM ml_drift_metrics
                  WHERE model_id = $1 AND measured_at >= $2 GROUP BY drift_type",
                vec![model.into(), from.into()],
            ))
            .await?
        }
    };
    txn.commit().await?;
    anyhow::ensure!(
        !i.is_multiple_of(3) || !rows.is_empty(),
        "the floor saw no models"
    );
    Ok(())
}

/// The light tenant's clients: each sends the next request of the mix,
/// records its latency (after a warm-up of a fifth of `duration`), pauses,
/// and goes on until `duration` has passed. Failures are counted, not fatal.
///
/// They run on a runtime (and connections) of their own thread. The light
/// tenant's dashboards are other programs than the noisy tenant's workers:
/// on the workers' executor, a light answer would also wait for the bench
/// to serialise 2 MB attack bodies and parse heavy answers, which is the
/// bench's queueing, not the gateway's.
async fn paced(
    light: Light,
    clients: usize,
    duration: Duration,
    errors: Arc<AtomicU64>,
    label: &'static str,
) -> anyhow::Result<Samples> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let measured = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| {
                runtime.block_on(async {
                    let target = Target::connect(light, clients).await?;
                    let samples = clients_of(&target, clients, duration, &errors, label).await;
                    if let Target::Floor { pool, .. } = target {
                        pool.close().await?;
                    }
                    Ok(samples)
                })
            });
        let _ = tx.send(measured);
    });
    let mut all = rx
        .await
        .map_err(|_| anyhow::anyhow!("the light clients' thread ({label}) panicked"))??;
    all.elapsed = duration;
    anyhow::ensure!(all.len() > 0, "the light tenant completed no request");
    Ok(all)
}

/// [`paced`]'s clients, concurrently on the current task.
async fn clients_of(
    target: &Target,
    clients: usize,
    duration: Duration,
    errors: &AtomicU64,
    label: &'static str,
) -> Samples {
    let start = Instant::now();
    let measured_from = start + duration / 5;
    let end = measured_from + duration;
    let workers = (0..clients).map(|worker| async move {
        let mut samples = Samples::default();
        let mut i = worker;
        while Instant::now() < end {
            let began = Instant::now();
            let failure = target.request(i).await;
            i += 1;
            if began >= measured_from {
                samples.push(began.elapsed());
            }
            if let Some(failure) = failure {
                if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("light tenant error ({label}): {failure}");
                }
            }
            // A dashboard, not a load generator.
            tokio::time::sleep(LIGHT_PAUSE).await;
        }
        samples
    });
    let mut all = Samples::default();
    for samples in futures_util::future::join_all(workers).await {
        all.extend(samples);
    }
    all
}

pub struct NoisyNeighbour {
    pub idle: Samples,
    pub noisy: Samples,
    /// The floor's light mix alone and beside the noise, when asked for.
    pub floor: Option<(Samples, Samples)>,
    pub light_errors: u64,
    /// The noisy tenant's answers, by outcome (e.g. `200`, `200 RATE_LIMITED`, `429`).
    pub heavy_outcomes: BTreeMap<String, u64>,
    /// Amplification attempts by attack and outcome.
    pub attack_outcomes: BTreeMap<String, u64>,
    pub rss_idle_kib: u64,
    pub rss_max_kib: u64,
}

/// Sends `body` and labels the answer: its status plus the first error
/// code, if any.
async fn send(client: &reqwest::Client, url: &str, key: &str, body: Json) -> String {
    match client.post(url).bearer_auth(key).json(&body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Json = response.json().await.unwrap_or(Json::Null);
            match body["errors"][0]["extensions"]["code"].as_str() {
                Some(code) => format!("{status} {code}"),
                None => status.to_string(),
            }
        }
        Err(e) => format!("transport error: {e}"),
    }
}

pub struct Keys {
    pub light: String,
    pub noisy: String,
}

pub async fn run(
    gateway: &Gateway,
    keys: &Keys,
    model: &str,
    light_concurrency: usize,
    noisy_concurrency: usize,
    duration: Duration,
    floor: Option<Light>,
) -> anyhow::Result<NoisyNeighbour> {
    let url = format!("{}/graphql", gateway.base);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()?;
    let now = Utc::now();
    let light_variables = json!({
        "from": (now - chrono::Duration::days(1)).to_rfc3339(),
        "model": model,
    });
    let light_errors = Arc::new(AtomicU64::new(0));
    let light = |label: &'static str| {
        paced(
            Light::Gateway {
                url: url.clone(),
                key: keys.light.clone(),
                variables: light_variables.clone(),
            },
            light_concurrency,
            duration,
            light_errors.clone(),
            label,
        )
    };
    let floor_errors = Arc::new(AtomicU64::new(0));
    let floor_light = |label: &'static str| {
        let floor = floor.clone();
        let errors = floor_errors.clone();
        async move {
            match floor {
                Some(floor) => {
                    Some(paced(floor, light_concurrency, duration, errors, label).await).transpose()
                }
                None => Ok(None),
            }
        }
    };

    let idle = light("idle").await?;
    let idle_errors = light_errors.swap(0, Ordering::Relaxed);
    let floor_idle = floor_light("floor, idle").await?;
    let rss_idle_kib = gateway.rss_kib()?;

    // The noise: heavy analytics from several workers, amplification from
    // one more, memory sampled every 50 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let heavy_outcomes = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let attack_outcomes = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let heavy_variables = json!({
        "from": (now - chrono::Duration::days(30)).to_rfc3339(),
        "to": now.to_rfc3339(),
    });
    let mut tasks = Vec::new();
    for worker in 0..noisy_concurrency {
        let (client, url, key, stop, outcomes, variables) = (
            client.clone(),
            url.clone(),
            keys.noisy.clone(),
            stop.clone(),
            heavy_outcomes.clone(),
            heavy_variables.clone(),
        );
        let documents = heavy(model);
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let query = &documents[i % documents.len()];
                i += 1;
                let label = send(
                    &client,
                    &url,
                    &key,
                    json!({"query": query, "variables": variables}),
                )
                .await;
                *outcomes.lock().unwrap().entry(label).or_default() += 1;
            }
        }));
    }
    {
        let (client, url, key, stop, outcomes) = (
            client.clone(),
            url.clone(),
            keys.noisy.clone(),
            stop.clone(),
            attack_outcomes.clone(),
        );
        let attacks = attacks();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (name, query) = &attacks[i % attacks.len()];
                i += 1;
                let label = send(&client, &url, &key, json!({"query": query})).await;
                *outcomes
                    .lock()
                    .unwrap()
                    .entry(format!("{name}: {label}"))
                    .or_default() += 1;
            }
        }));
    }
    let rss_max = Arc::new(AtomicU64::new(rss_idle_kib));
    let sampler = {
        let (stop, rss_max) = (stop.clone(), rss_max.clone());
        let pid_rss = gateway.rss_probe()?;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(rss) = pid_rss() {
                    rss_max.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let noisy = light("noisy").await;
    let floor_noisy = match &noisy {
        Ok(_) => floor_light("floor, beside the noise").await,
        Err(_) => Ok(None),
    };
    // Stopped before any error is returned: the noise would otherwise go on
    // against a gateway that is about to stop.
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let _ = sampler.await;
    let (noisy, floor_noisy) = (noisy?, floor_noisy?);
    anyhow::ensure!(
        floor_errors.load(Ordering::Relaxed) == 0,
        "the floor's light mix failed"
    );
    Ok(NoisyNeighbour {
        idle,
        noisy,
        floor: floor_idle.zip(floor_noisy),
        light_errors: idle_errors + light_errors.load(Ordering::Relaxed),
        heavy_outcomes: Arc::try_unwrap(heavy_outcomes)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_default(),
        attack_outcomes: Arc::try_unwrap(attack_outcomes)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_default(),
        rss_idle_kib,
        rss_max_kib: rss_max.load(Ordering::Relaxed),
    })
}

/// One row of the light tenant's table.
fn row(
    out: &mut String,
    gateway: &str,
    phase: &str,
    samples: &Samples,
    errors: &str,
    rss: &str,
) -> std::fmt::Result {
    writeln!(
        out,
        "| {gateway} | {phase} | {} | {} | {} | {} | {errors} | {rss} |",
        samples.len(),
        ms(samples.p50()),
        ms(samples.p95()),
        ms(samples.p99()),
    )
}

pub(crate) async fn noisy_neighbour(args: &Args, tenants: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    anyhow::ensure!(
        tenants.len() >= 2,
        "the noisy-neighbour scenario needs two tenants"
    );
    let (noisy, light) = (&tenants[0], &tenants[1]);
    let db = server::db::Database::connect(&args.database_url, 2).await?;
    let keys = Keys {
        noisy: server::ops::keys::create_for_tenant(&db, noisy, Role::Viewer, "bench")
            .await?
            .secret,
        light: server::ops::keys::create_for_tenant(&db, light, Role::Viewer, "bench")
            .await?
            .secret,
    };
    db.close().await?;
    let light_concurrency = 2;
    let pool_size = args.pool_size.to_string();
    let base = [
        "--no-migrate",
        "--playground",
        "false",
        "--db-max-connections",
        pool_size.as_str(),
    ];
    // The same noise twice: with the default protections, and with the
    // tenant shares (pool and in-flight) turned off, for contrast.
    let mut results = Vec::new();
    let floor = Light::Floor {
        database_url: args.database_url.clone(),
        tenant: light.clone(),
        model: "ensemble-risk-03".into(),
        from: Utc::now() - chrono::Duration::days(1),
    };
    for (label, extra, floor) in [
        ("default protections", vec![], Some(floor)),
        (
            "tenant shares off",
            vec![
                "--tenant-db-share",
                "100",
                "--tenant-analytics-share",
                "100",
                "--tenant-max-in-flight",
                "0",
            ],
            None,
        ),
    ] {
        let flags: Vec<&str> = base.iter().copied().chain(extra).collect();
        let gateway =
            crate::process::Gateway::start(&args.mlgate_bin, &args.database_url, &flags).await?;
        let result = run(
            &gateway,
            &keys,
            "ensemble-risk-03",
            light_concurrency,
            args.noisy_concurrency,
            Duration::from_secs(args.seconds.max(1)),
            floor,
        )
        .await;
        gateway.stop().await;
        results.push((label, result?));
    }
    let (_, protected) = &results[0];
    let ratio = protected.noisy.p50() / protected.idle.p50();
    writeln!(out, "## Noisy neighbour\n")?;
    writeln!(out, "`{}` processes on the loaded database, pool of {} connections. Tenant `{noisy}` runs {} workers of the heaviest analytics its limits let through \
              (25 aliased SHAP importances over 30 days, model performance with percentiles and outcomes, predictions per risk level per hour over 30 days) \
              and one worker cycling through amplification attempts; tenant `{light}` runs a light dashboard mix (model list, a page of critical predictions, a drift summary, `me`) \
              from {light_concurrency} clients, each pausing 25 ms between requests: alone first, then beside the noise. Latency is each request's, pauses excluded. \
              The light clients run on a thread and runtime of their own, apart from the noisy workers. \
              The floor answers the same questions with hand-written SQL that reads only what each answer needs (each in a transaction as the gateway's role with the tenant set; `me` reads nothing, so its mix has three requests) from {light_concurrency} clients of its own, alone and beside the same noise, right after mlgate's light tenant. \
              First with the default protections ({} connections per tenant, {} of them for analytics, 32 requests in flight per tenant, rates, budgets and document limits at their defaults), \
              then with the tenant shares off (`--tenant-db-share 100 --tenant-analytics-share 100 --tenant-max-in-flight 0`) for contrast.\n",
        args.mlgate_bin.display(), args.pool_size, args.noisy_concurrency, args.pool_size.div_ceil(2), (args.pool_size * 20).div_ceil(100))?;
    writeln!(out, "| gateway | light tenant | requests | p50 (ms) | p95 | p99 (ms) | errors | gateway RSS idle → max (MiB) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for (label, result) in &results {
        let rss = format!(
            "{:.1} → {:.1}",
            result.rss_idle_kib as f64 / 1024.0,
            result.rss_max_kib as f64 / 1024.0
        );
        let errors = result.light_errors.to_string();
        row(&mut out, label, "alone", &result.idle, "—", "—")?;
        let beside = "beside the noisy tenant";
        row(&mut out, label, beside, &result.noisy, &errors, &rss)?;
        if let Some((alone, beside_floor)) = &result.floor {
            let floor = "floor: hand-written SQL, no gateway";
            row(&mut out, floor, "alone", alone, "0", "—")?;
            row(&mut out, floor, beside, beside_floor, "0", "—")?;
        }
    }
    writeln!(out, "\nWith the default protections the light tenant's p50 beside the noise is **{ratio:.2}×** its p50 alone (target ≤ 3×), its p99 {:.1}× its p50 alone; errors: **{}** (target 0). \
              The gateway's resident set peaked at **{:.1} MiB** under the noise and the amplification attempts (sampled every 50 ms; stated bound 256 MiB).",
        protected.noisy.p99() / protected.idle.p50(), protected.light_errors, protected.rss_max_kib as f64 / 1024.0)?;
    if let Some((alone, beside)) = &protected.floor {
        writeln!(out, "The floor beside the same noise: p50 {:.2}× and p99 {:.1}× its p50 alone; mlgate's p99 beside the noise is {:.2}× the floor's.",
            beside.p50() / alone.p50(), beside.p99() / alone.p50(), protected.noisy.p99() / beside.p99())?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| noisy tenant's answers, default protections (HTTP status, first error code) | count |"
    )?;
    writeln!(out, "|---|---|")?;
    for (outcome, count) in &protected.heavy_outcomes {
        writeln!(out, "| {outcome} | {count} |")?;
    }
    writeln!(
        out,
        "\n| amplification attempt, default protections: answer | count |"
    )?;
    writeln!(out, "|---|---|")?;
    for (outcome, count) in &protected.attack_outcomes {
        writeln!(out, "| {outcome} | {count} |")?;
    }
    writeln!(out)?;
    anyhow::ensure!(
        protected.light_errors == 0,
        "the light tenant got {} errors beside the noisy one",
        protected.light_errors
    );
    anyhow::ensure!(
        !protected
            .attack_outcomes
            .keys()
            .any(|k| k.contains("transport error") || k.contains(" 500")),
        "an amplification attempt broke the gateway: {:?}",
        protected.attack_outcomes
    );
    Ok(out)
}
