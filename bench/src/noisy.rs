//! Noisy neighbour: one tenant saturates the gateway with expensive
//! analytics and amplification attempts while another runs a light
//! dashboard mix. The light tenant's latency is measured alone first, then
//! under the noise, against the real `mlgate` binary with its default
//! protections; the gateway's resident set is sampled throughout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value as Json};

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
