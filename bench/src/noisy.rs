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

/// The light tenant's clients: each sends the next request of the mix,
/// records its latency (after a warm-up of a fifth of `duration`), pauses,
/// and goes on until `duration` has passed. Failures are counted, not fatal.
#[allow(clippy::too_many_arguments)]
async fn paced(
    clients: usize,
    duration: Duration,
    client: reqwest::Client,
    url: String,
    key: String,
    variables: Json,
    errors: Arc<AtomicU64>,
    label: &'static str,
) -> anyhow::Result<Samples> {
    let start = Instant::now();
    let measured_from = start + duration / 5;
    let end = measured_from + duration;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (client, url, key, variables, errors) = (
                client.clone(),
                url.clone(),
                key.clone(),
                variables.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut i = worker;
                while Instant::now() < end {
                    let query = LIGHT[i % LIGHT.len()];
                    i += 1;
                    let began = Instant::now();
                    let failure = match client
                        .post(&url)
                        .bearer_auth(&key)
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
                    };
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
            })
        })
        .collect();
    let mut all = Samples::default();
    for worker in workers {
        all.extend(worker.await?);
    }
    all.elapsed = duration;
    anyhow::ensure!(all.len() > 0, "the light tenant completed no request");
    Ok(all)
}

pub struct NoisyNeighbour {
    pub idle: Samples,
    pub noisy: Samples,
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
            light_concurrency,
            duration,
            client.clone(),
            url.clone(),
            keys.light.clone(),
            light_variables.clone(),
            light_errors.clone(),
            label,
        )
    };

    let idle = light("idle").await?;
    let idle_errors = light_errors.swap(0, Ordering::Relaxed);
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
    let noisy = light("noisy").await?;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let _ = sampler.await;
    Ok(NoisyNeighbour {
        idle,
        noisy,
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
    for (label, extra) in [
        ("default protections", vec![]),
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
              First with the default protections ({} connections per tenant, {} of them for analytics, 32 requests in flight per tenant, rates, budgets and document limits at their defaults), \
              then with the tenant shares off (`--tenant-db-share 100 --tenant-analytics-share 100 --tenant-max-in-flight 0`) for contrast.\n",
        args.mlgate_bin.display(), args.pool_size, args.noisy_concurrency, args.pool_size.div_ceil(2), (args.pool_size * 20).div_ceil(100))?;
    writeln!(out, "| gateway | light tenant | requests | p50 (ms) | p95 | p99 (ms) | errors | gateway RSS idle → max (MiB) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for (label, result) in &results {
        for (phase, samples, errors) in [
            ("alone", &result.idle, None),
            (
                "beside the noisy tenant",
                &result.noisy,
                Some(result.light_errors),
            ),
        ] {
            writeln!(
                out,
                "| {label} | {phase} | {} | {} | {} | {} | {} | {} |",
                samples.len(),
                ms(samples.p50()),
                ms(samples.p95()),
                ms(samples.p99()),
                errors.map_or("—".to_owned(), |e| e.to_string()),
                if errors.is_some() {
                    format!(
                        "{:.1} → {:.1}",
                        result.rss_idle_kib as f64 / 1024.0,
                        result.rss_max_kib as f64 / 1024.0
                    )
                } else {
                    "—".into()
                }
            )?;
        }
    }
    writeln!(out, "\nWith the default protections the light tenant's p50 beside the noise is **{ratio:.2}×** its p50 alone (target ≤ 3×), p99 {:.2}×; errors: **{}** (target 0). \
              The gateway's resident set peaked at **{:.1} MiB** under the noise and the amplification attempts (sampled every 50 ms; stated bound 256 MiB).\n",
        protected.noisy.p99() / protected.idle.p99(), protected.light_errors, protected.rss_max_kib as f64 / 1024.0)?;
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
