//! Alert fan-out: many WebSocket subscribers spread over the tenants, drift
//! alerts written at a steady rate, each subscriber checked to receive exactly
//! its own tenant's alerts, once. Latency is from the start of the write to
//! the subscriber reading the alert (the write's own time included); memory
//! is the gateway's resident set before and after the subscribers connected.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use server::auth::Role;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::args::Args;
use crate::common::ms;
use crate::process::Gateway;
use crate::stats::Samples;

/// A tenant's keys: a viewer's to subscribe, a service's to write.
#[derive(Clone, Debug)]
pub struct TenantKeys {
    pub tenant: String,
    pub viewer: String,
    pub service: String,
}

pub struct FanOut {
    pub subscribers: usize,
    pub deliveries: usize,
    pub latency: Samples,
    pub rss_before_kib: u64,
    pub rss_subscribed_kib: u64,
    pub connect_time: Duration,
}

impl FanOut {
    /// The gateway's memory per connected subscriber, in bytes.
    pub fn bytes_per_subscriber(&self) -> f64 {
        (self.rss_subscribed_kib.saturating_sub(self.rss_before_kib) * 1024) as f64
            / self.subscribers as f64
    }
}

const SUBSCRIPTION: &str =
    "subscription($since: String) { driftAlerts(since: $since, minLevel: WARNING) { metricId } }";
const RECORD: &str =
    "mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }";

async fn graphql(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    query: &str,
    variables: Json,
) -> anyhow::Result<Json> {
    let body: Json = client
        .post(format!("{base}/graphql"))
        .bearer_auth(key)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(body.get("errors").is_none(), "{body}");
    Ok(body["data"].clone())
}

/// Connects `subscribers`, writes `alerts` at `per_second`, and waits for
/// every delivery (failing if any subscriber misses or repeats one).
pub async fn run(
    gateway: &Gateway,
    tenants: &[TenantKeys],
    subscribers: usize,
    alerts: usize,
    per_second: f64,
) -> anyhow::Result<FanOut> {
    let client = reqwest::Client::new();
    let rss_before_kib = gateway.rss_kib()?;
    let clock = Instant::now();
    let ws_url = format!(
        "{}/graphql/ws",
        gateway.base.replacen("http://", "ws://", 1)
    );

    let mut cursors = Vec::new();
    for keys in tenants {
        let data = graphql(
            &client,
            &gateway.base,
            &keys.viewer,
            "{ driftAlertCursor }",
            json!({}),
        )
        .await?;
        cursors.push(data["driftAlertCursor"].clone());
    }

    // Each subscriber counts what it receives; latencies go to one list.
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(
        subscribers * alerts / tenants.len().max(1),
    )));
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..subscribers).map(|_| AtomicU64::new(0)).collect());
    let connected = Instant::now();
    let (ready_tx, mut ready_rx) =
        tokio::sync::mpsc::channel::<anyhow::Result<()>>(subscribers.max(1));
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    for i in 0..subscribers {
        let tenant = i % tenants.len();
        let key = tenants[tenant].viewer.clone();
        let since = cursors[tenant].clone();
        let url = ws_url.clone();
        let latencies = latencies.clone();
        let received = received.clone();
        let ready = ready_tx.clone();
        let limit = limit.clone();
        tokio::spawn(async move {
            let permit = limit.acquire_owned().await;
            let socket = async {
                let mut request = url.into_client_request()?;
                request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
                let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
                socket
                    .send(Message::Text(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}}).to_string().into()))
                    .await?;
                match socket.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("connection_ack") => {}
                    other => anyhow::bail!("no connection_ack: {other:?}"),
                }
                socket
                    .send(Message::Text(json!({"id": "a", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {"since": since}}}).to_string().into()))
                    .await?;
                anyhow::Ok(socket)
            }
            .await;
            drop(permit);
            let mut socket = match socket {
                Ok(socket) => {
                    let _ = ready.send(Ok(())).await;
                    socket
                }
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    return;
                }
            };
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(message) = serde_json::from_str::<Json>(&text) else {
                    continue;
                };
                let Some(metric) = message["payload"]["data"]["driftAlerts"]["metricId"].as_str()
                else {
                    continue;
                };
                // fanout-<tenant>-<k>-<micros since the clock started>
                if let Some(sent) = metric
                    .rsplit('-')
                    .next()
                    .and_then(|m| m.parse::<u64>().ok())
                {
                    let latency = clock.elapsed().saturating_sub(Duration::from_micros(sent));
                    latencies.lock().expect("latencies").push(latency);
                }
                received[i].fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    drop(ready_tx);
    for _ in 0..subscribers {
        ready_rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("a subscriber vanished"))??;
    }
    let connect_time = connected.elapsed();
    // Let every subscription reach its tenant's feed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_subscribed_kib = gateway.rss_kib()?;

    let interval = Duration::from_secs_f64(1.0 / per_second.max(0.001));
    let mut expected = vec![0u64; tenants.len()];
    let mut next_write = Instant::now();
    for k in 0..alerts {
        let tenant = k % tenants.len();
        tokio::time::sleep_until(next_write.into()).await;
        next_write += interval;
        let sent = clock.elapsed().as_micros();
        let metric_id = format!("fanout-{tenant}-{k}-{sent}");
        let input = json!([{"metricId": metric_id, "driftType": "DATA", "driftScore": 0.9, "psiScore": 0.9}]);
        let data = graphql(
            &client,
            &gateway.base,
            &tenants[tenant].service,
            RECORD,
            json!({"input": input}),
        )
        .await?;
        anyhow::ensure!(
            data["recordDriftMetrics"]["alertsTriggered"] == 1,
            "the alert did not trigger: {data}"
        );
        expected[tenant] += 1;
    }

    let total: u64 = (0..subscribers).map(|i| expected[i % tenants.len()]).sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: u64 = received.iter().map(|r| r.load(Ordering::Relaxed)).sum();
        if got >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, count) in received.iter().enumerate() {
        let want = expected[i % tenants.len()];
        let got = count.load(Ordering::Relaxed);
        anyhow::ensure!(
            got == want,
            "subscriber {i} of {} received {got} alerts, not {want}",
            tenants[i % tenants.len()].tenant
        );
    }
    let mut latency = Samples::default();
    for sample in latencies.lock().expect("latencies").drain(..) {
        latency.push(sample);
    }
    latency.elapsed = interval * alerts as u32;
    Ok(FanOut {
        subscribers,
        deliveries: total as usize,
        latency,
        rss_before_kib,
        rss_subscribed_kib,
        connect_time,
    })
}

pub(crate) async fn fan_out(args: &Args, tenants: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    let db = server::db::Database::connect(&args.database_url, 2).await?;
    let mut keys = Vec::new();
    for tenant in tenants {
        keys.push(TenantKeys {
            tenant: tenant.clone(),
            viewer: server::ops::keys::create_for_tenant(&db, tenant, Role::Viewer, "bench")
                .await?
                .secret,
            service: server::ops::keys::create_for_tenant(&db, tenant, Role::Service, "bench")
                .await?
                .secret,
        });
    }
    writeln!(out, "## Alert fan-out\n")?;
    writeln!(out, "A `{}` process on the same PostgreSQL database; subscribers spread over the {} tenants \
              (`driftAlerts` from the tenant's cursor), {} alerts written at {}/s round-robin over the tenants. \
              Latency: from the start of the write to the subscriber reading the alert. Memory: the process's resident set.\n",
        args.mlgate_bin.display(), tenants.len(), args.alerts, args.alerts_per_second)?;
    writeln!(out, "| subscribers | deliveries | connect all (s) | p50 | p99 | max (ms) | RSS before → with subscribers (MiB) | per subscriber (KiB) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for &subscribers in &args.subscribers {
        // One viewer key per tenant stands for all of the tenant's
        // dashboards: thousands of sockets and subscribes per key, past the
        // per-credential defaults meant for one client.
        let gateway = crate::process::Gateway::start(
            &args.mlgate_bin,
            &args.database_url,
            &[
                "--no-migrate",
                "--playground",
                "false",
                "--ws-max-sockets-per-credential",
                "1000000",
                "--credential-rate",
                "0",
                "--tenant-rate",
                "0",
            ],
        )
        .await?;
        let result = run(
            &gateway,
            &keys,
            subscribers,
            args.alerts,
            args.alerts_per_second,
        )
        .await?;
        writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} | {} | {:.1} → {:.1} | {:.1} |",
            result.subscribers,
            result.deliveries,
            result.connect_time.as_secs_f64(),
            ms(result.latency.p50()),
            ms(result.latency.p99()),
            ms(result.latency.quantile_ms(1.0)),
            result.rss_before_kib as f64 / 1024.0,
            result.rss_subscribed_kib as f64 / 1024.0,
            result.bytes_per_subscriber() / 1024.0
        )?;
        gateway.stop().await;
    }
    writeln!(out)?;
    Ok(out)
}
