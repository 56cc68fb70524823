//! What the scenarios share: pools, GraphQL requests, the gateway in
//! process, one query timed against the floor, and number formatting.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{json, Value as Json};
use server::config::Config;

use crate::args::Args;
use crate::load::closed_loop;
use crate::reads::{Query, Windows};
use crate::stats::Samples;

pub(crate) fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

pub(crate) async fn pool(url: &str, size: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(size)
        .min_connections(size)
        // sqlx's idle/lifetime sweep can spin forever (sqlx#3645).
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    Ok(sea_orm::Database::connect(options).await?)
}

pub(crate) async fn count(pool: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = pool
        .query_one_raw(Statement::from_string(pool.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row for {sql}"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Sends a GraphQL request (`request` carries the URL and the caller's
/// credentials) and returns `data`, failing on any error.
pub(crate) async fn post_graphql(
    request: reqwest::RequestBuilder,
    query: &str,
    variables: &Json,
) -> anyhow::Result<Json> {
    let response = request
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?;
    let status = response.status();
    let body: Json = response.json().await?;
    anyhow::ensure!(
        status.is_success() && body.get("errors").is_none(),
        "HTTP {status}: {body}"
    );
    Ok(body["data"].clone())
}

/// An mlgate request with an API key.
pub(crate) async fn graphql(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    query: &str,
    variables: &Json,
) -> anyhow::Result<Json> {
    post_graphql(client.post(url).bearer_auth(key), query, variables).await
}

/// The read mix through mlgate: `concurrency` workers each cycling through
/// the five queries.
pub(crate) async fn mlgate_mix(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    windows: &Arc<Windows>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Samples> {
    let (client, url, key, windows) = (
        client.clone(),
        url.to_owned(),
        key.to_owned(),
        windows.clone(),
    );
    closed_loop(concurrency, duration / 5, duration, move |worker, i| {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        let query = Query::ALL[(worker + i as usize) % Query::ALL.len()];
        let (document, variables) = crate::reads::graphql(query, &windows);
        async move {
            graphql(&client, &url, &key, document, &variables)
                .await
                .map(|_| ())
        }
    })
    .await
}

pub(crate) struct InProcess {
    pub(crate) url: String,
    pub(crate) db: server::db::Database,
    pub(crate) stop: tokio::sync::oneshot::Sender<()>,
    pub(crate) handle: tokio::task::JoinHandle<()>,
}

pub(crate) async fn in_process(args: &Args) -> anyhow::Result<InProcess> {
    in_process_with(args, true).await
}

/// The gateway in process, answering analytics from the rollups or not.
pub(crate) async fn in_process_with(args: &Args, rollups: bool) -> anyhow::Result<InProcess> {
    let mut config = Config::for_database(&args.database_url);
    config.database.db_max_connections = args.pool_size;
    config.serve.bind = "127.0.0.1:0".parse()?;
    config.serve.no_migrate = true;
    config.serve.monitor_poll_ms = 0;
    // These scenarios measure capacity from one key at up to 64 clients;
    // request-rate limits would measure themselves instead (the
    // noisy-neighbour scenario runs with them).
    config.serve.admission.credential_rate = 0;
    config.serve.admission.tenant_rate = 0;
    config.serve.db.tenant_db_share = args.tenant_db_share;
    config.serve.db.tenant_analytics_share = args.tenant_analytics_share;
    if !rollups {
        config.serve.db.analytics_rollups = server::config::Switch::Off;
    }
    let app = server::Application::build(config).await?;
    let url = format!("http://{}/graphql", app.local_addr());
    let db = app.database();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(InProcess {
        url,
        db,
        stop,
        handle,
    })
}

/// Where one query is sent: the gateway (with a key of `tenant`) and the floor.
pub(crate) struct Target<'a> {
    pub(crate) client: &'a reqwest::Client,
    pub(crate) url: &'a str,
    pub(crate) key: &'a str,
    pub(crate) floor_pool: &'a DatabaseConnection,
    pub(crate) tenant: &'a str,
    pub(crate) windows: &'a Arc<Windows>,
}

/// One query alone at concurrency 1, mlgate then the floor, after checking
/// that both give the same answer: (statements per request, mlgate, floor).
pub(crate) async fn one_query(
    target: &Target<'_>,
    db: &server::db::Database,
    query: Query,
    duration: Duration,
) -> anyhow::Result<(u64, Samples, Samples)> {
    let (document, variables) = crate::reads::graphql(query, target.windows);
    let before = db.statements_executed();
    let answer = graphql(target.client, target.url, target.key, document, &variables).await?;
    let statements = db.statements_executed() - before;
    let floor_answer =
        crate::reads::floor(target.floor_pool, target.tenant, query, target.windows).await?;
    crate::reads::same_results(query, &answer, &floor_answer)?;
    let mine = timed(
        target.client,
        target.url,
        target.key,
        (document, variables),
        duration,
    )
    .await?;
    let theirs = {
        let (floor_pool, windows, tenant) = (
            target.floor_pool.clone(),
            target.windows.clone(),
            target.tenant.to_owned(),
        );
        closed_loop(1, duration / 5, duration, move |_, _| {
            let (floor_pool, windows, tenant) =
                (floor_pool.clone(), windows.clone(), tenant.clone());
            async move {
                crate::reads::floor(&floor_pool, &tenant, query, &windows)
                    .await
                    .map(|_| ())
            }
        })
        .await?
    };
    Ok((statements, mine, theirs))
}

/// `document` with `variables` on `url`, at concurrency 1.
pub(crate) async fn timed(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    (document, variables): (&'static str, Json),
    duration: Duration,
) -> anyhow::Result<Samples> {
    let (client, url, key) = (client.clone(), url.to_owned(), key.to_owned());
    closed_loop(1, duration / 5, duration, move |_, _| {
        let (client, url, key, variables) =
            (client.clone(), url.clone(), key.clone(), variables.clone());
        async move {
            graphql(&client, &url, &key, document, &variables)
                .await
                .map(|_| ())
        }
    })
    .await
}
