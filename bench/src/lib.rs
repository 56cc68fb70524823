//! `mlgate-bench`: measures mlgate on a PostgreSQL database and prints the
//! tables of BENCHMARKS.md (`src/main.rs` is the command; `tests/bench.rs`
//! of the workspace runs it small). Every scenario checks what it measures (answers
//! without errors and equal to the SQL floor's, row counts, every alert
//! delivered once) and exits non-zero when a check fails.
//!
//! ```sh
//! cargo build --release -p mlgate -p mlgate-bench
//! target/release/mlgate-bench --database-url postgres://postgres@127.0.0.1:5432/mlgate_bench --reset
//! ```

use std::fmt::Write as _;

mod fanout;
mod ingest;
mod load;
mod noisy;
mod postgraphile;
mod process;
mod reads;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::auth::Role;
use api::config::{Config, DemoArgs};
use clap::Parser;
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{json, Value as Json};

use crate::load::closed_loop;
use crate::reads::{Query, Windows};
use crate::stats::Samples;

#[derive(Debug, Parser)]
#[command(
    name = "mlgate-bench",
    about = "Benchmarks mlgate on PostgreSQL and prints the tables of BENCHMARKS.md"
)]
pub struct Args {
    /// The PostgreSQL database to measure (created when --reset).
    #[arg(long, env = "BENCH_DATABASE_URL")]
    pub database_url: String,
    /// Drop and recreate the database, then load the data.
    #[arg(long)]
    pub reset: bool,
    /// Demo tenants to load.
    #[arg(long, default_value_t = 20)]
    pub tenants: u32,
    /// Models per tenant.
    #[arg(long, default_value_t = 4)]
    pub models: u32,
    /// Predictions per tenant (20 × 50 000 = 1M).
    #[arg(long, default_value_t = 50_000)]
    pub predictions: u32,
    /// Days the data spans.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Measured seconds per load level (after a warm-up of a fifth of it).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrency levels of the read mix and ingestion.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,
    /// Database connections of the gateway's pool and of the SQL floor's.
    #[arg(long, default_value_t = 10)]
    pub pool_size: u32,
    /// The scale scenario's tenant holds this many times `--predictions`.
    #[arg(long, default_value_t = 10)]
    pub scale_factor: u32,
    /// Subscriber counts of the fan-out runs.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub subscribers: Vec<usize>,
    /// Alerts written per fan-out run, and how many per second.
    #[arg(long, default_value_t = 100)]
    pub alerts: usize,
    #[arg(long, default_value_t = 20.0)]
    pub alerts_per_second: f64,
    /// Percent of the pool one tenant holds in the in-process gateway of the
    /// read mix, scale and ingestion scenarios (mlgate's `--tenant-db-share`).
    #[arg(long, default_value_t = api::db::DbSettings::DEFAULT_TENANT_SHARE_PERCENT)]
    pub tenant_db_share: u32,
    /// Percent of the pool one tenant's analytics hold there (`--tenant-analytics-share`).
    #[arg(long, default_value_t = api::db::DbSettings::DEFAULT_TENANT_ANALYTICS_PERCENT)]
    pub tenant_analytics_share: u32,
    /// Workers of the noisy tenant's heavy analytics (noisy-neighbour scenario).
    #[arg(long, default_value_t = 8)]
    pub noisy_concurrency: usize,
    /// The mlgate binary measured as a process (fan-out, memory, start-up).
    #[arg(long, default_value = "target/release/mlgate")]
    pub mlgate_bin: PathBuf,
    /// Scenarios to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "reads,postgraphile,scale,ingest,fanout,noisy,idle"
    )]
    pub scenarios: Vec<String>,
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

async fn pool(url: &str, size: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(size)
        .min_connections(size)
        .sqlx_logging(false);
    Ok(sea_orm::Database::connect(options).await?)
}

async fn count(pool: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = pool
        .query_one_raw(Statement::from_string(pool.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row for {sql}"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Recreates the database, migrates it and loads the demo data; reports the load rate.
async fn load(args: &Args) -> anyhow::Result<String> {
    let mut out = String::new();
    let (server, name) = args
        .database_url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("the URL names no database"))?;
    let name = name.split('?').next().unwrap_or(name);
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "unusual database name {name}"
    );
    let admin = sea_orm::Database::connect(format!("{server}/postgres")).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    let db = api::db::Database::connect(&args.database_url, args.pool_size).await?;
    db.migrate_up().await?;
    let demo = DemoArgs {
        tenants: args.tenants,
        models: args.models,
        predictions: args.predictions,
        seed: 42,
        days: args.days,
    };
    let started = Instant::now();
    let summary = api::ops::demo::seed(&db, &demo).await?;
    let elapsed = started.elapsed();
    let rows: usize = summary
        .tenants
        .iter()
        .map(|t| {
            t.models
                + t.training_jobs
                + t.predictions
                + t.feedback
                + t.drift_metrics
                + t.feature_sets
                + t.configurations
        })
        .sum();
    let predictions: usize = summary.tenants.iter().map(|t| t.predictions).sum();
    let raw = pool(&args.database_url, 1).await?;
    let stored = count(&raw, "SELECT count(*) FROM ml_predictions").await?;
    anyhow::ensure!(
        stored as usize == predictions,
        "{stored} predictions stored, {predictions} generated"
    );
    // What autovacuum does to a table after bulk inserts: statistics, and
    // the visibility map that lets index-only scans skip the heap.
    raw.execute_unprepared("VACUUM ANALYZE").await?;
    writeln!(out, "## Data\n")?;
    writeln!(out,
        "{} tenants × {} models, {predictions} predictions over {} days ({rows} rows in all: feedback, hourly drift metrics, jobs, feature sets, configurations). \
         Generated and loaded by `mlgate demo` in {:.1} s: {:.0} predictions/s, {:.0} rows/s.\n",
        args.tenants,
        args.models,
        args.days,
        elapsed.as_secs_f64(),
        predictions as f64 / elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    )?;
    Ok(out)
}

/// Sends a GraphQL request (`request` carries the URL and the caller's
/// credentials) and returns `data`, failing on any error.
async fn post_graphql(
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
async fn graphql(
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
async fn mlgate_mix(
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
        let (document, variables) = reads::graphql(query, &windows);
        async move {
            graphql(&client, &url, &key, document, &variables)
                .await
                .map(|_| ())
        }
    })
    .await
}

struct InProcess {
    url: String,
    db: api::db::Database,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

async fn in_process(args: &Args) -> anyhow::Result<InProcess> {
    let mut config = Config::for_database(&args.database_url);
    config.database.db_max_connections = args.pool_size;
    config.serve.bind = "127.0.0.1:0".parse()?;
    config.serve.no_migrate = true;
    // These scenarios measure capacity from one key at up to 64 clients;
    // request-rate limits would measure themselves instead (the
    // noisy-neighbour scenario runs with them).
    config.serve.credential_rate = 0;
    config.serve.tenant_rate = 0;
    config.serve.tenant_db_share = args.tenant_db_share;
    config.serve.tenant_analytics_share = args.tenant_analytics_share;
    let app = api::Application::build(config).await?;
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
struct Target<'a> {
    client: &'a reqwest::Client,
    url: &'a str,
    key: &'a str,
    floor_pool: &'a DatabaseConnection,
    tenant: &'a str,
    windows: &'a Arc<Windows>,
}

/// One query alone at concurrency 1, mlgate then the floor, after checking
/// that both give the same answer: (statements per request, mlgate, floor).
async fn one_query(
    target: &Target<'_>,
    db: &api::db::Database,
    query: Query,
    duration: Duration,
) -> anyhow::Result<(u64, Samples, Samples)> {
    let (document, variables) = reads::graphql(query, target.windows);
    let before = db.statements_executed();
    let answer = graphql(target.client, target.url, target.key, document, &variables).await?;
    let statements = db.statements_executed() - before;
    let floor_answer =
        reads::floor(target.floor_pool, target.tenant, query, target.windows).await?;
    reads::same_results(query, &answer, &floor_answer)?;
    let mine = {
        let (client, url, key) = (
            target.client.clone(),
            target.url.to_owned(),
            target.key.to_owned(),
        );
        closed_loop(1, duration / 5, duration, move |_, _| {
            let (client, url, key, variables) =
                (client.clone(), url.clone(), key.clone(), variables.clone());
            async move {
                graphql(&client, &url, &key, document, &variables)
                    .await
                    .map(|_| ())
            }
        })
        .await?
    };
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
                reads::floor(&floor_pool, &tenant, query, &windows)
                    .await
                    .map(|_| ())
            }
        })
        .await?
    };
    Ok((statements, mine, theirs))
}

/// Model performance for a tenant holding `scale_factor` times the
/// predictions of the others: the per-tenant size of a database that many
/// times larger (queries read one tenant's rows).
async fn scale(args: &Args) -> anyhow::Result<String> {
    let mut out = String::new();
    let tenant = api::ops::demo::tenant_names(args.tenants + 1)
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no tenant name"))?;
    let predictions = args.predictions * args.scale_factor;
    let db = api::db::Database::connect(&args.database_url, args.pool_size).await?;
    let started = Instant::now();
    // Seeds only tenants without models: the others are left as they are.
    api::ops::demo::seed(
        &db,
        &DemoArgs {
            tenants: args.tenants + 1,
            models: args.models,
            predictions,
            seed: 43,
            days: args.days,
        },
    )
    .await?;
    let loaded = started.elapsed();
    let raw = pool(&args.database_url, 1).await?;
    raw.execute_unprepared("VACUUM ANALYZE").await?;
    let stored = count(
        &raw,
        &format!("SELECT count(*) FROM ml_predictions WHERE tenant_id = '{tenant}'"),
    )
    .await?;
    anyhow::ensure!(
        stored as u32 == predictions,
        "{stored} predictions stored for {tenant}, {predictions} generated"
    );

    let server = in_process(args).await?;
    let key = api::ops::keys::create_for_tenant(&server.db, &tenant, Role::Viewer, "bench")
        .await?
        .secret;
    let client = reqwest::Client::new();
    let windows = Arc::new(Windows::at(chrono::Utc::now(), "ensemble-risk-03"));
    let target = Target {
        client: &client,
        url: &server.url,
        key: &key,
        floor_pool: &raw,
        tenant: &tenant,
        windows: &windows,
    };
    let (statements, mine, theirs) = one_query(
        &target,
        &server.db,
        Query::Performance,
        Duration::from_secs(args.seconds.max(1)),
    )
    .await?;
    writeln!(
        out,
        "## Model performance at {}× the data
",
        args.scale_factor
    )?;
    writeln!(out, "Tenant `{tenant}` holds {stored} predictions over {} days (loaded in {:.1} s), the share of one tenant in a database of {} predictions across {} tenants. \
              The last week's performance of its active models, alone at concurrency 1; the floor is the same scan as in the read mix.\n",
        args.days, loaded.as_secs_f64(), stored as u64 * (args.tenants as u64 + 1), args.tenants + 1)?;
    writeln!(out, "| statements per request (mlgate) | p50 mlgate (ms) | p95 | p50 floor (ms) | p95 | ratio |")?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    writeln!(
        out,
        "| {statements} | {} | {} | {} | {} | {:.2}× |\n",
        ms(mine.p50()),
        ms(mine.p95()),
        ms(theirs.p50()),
        ms(theirs.p95()),
        mine.p50() / theirs.p50()
    )?;
    let _ = server.stop.send(());
    let _ = server.handle.await;
    Ok(out)
}

/// A PostGraphile request: the tenant rides in a header its `pgSettings` read.
async fn postgraphile_request(
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

/// The read mix through mlgate and through PostGraphile v4 (started here
/// from `bench/postgraphile`, pool of the same size), same client, same
/// closed loop.
async fn versus_postgraphile(args: &Args, tenant: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("postgraphile");
    anyhow::ensure!(
        dir.join("node_modules").is_dir(),
        "PostGraphile is not installed: run `npm ci --prefix bench/postgraphile`"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _postgraphile = tokio::process::Command::new("node")
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
    let theirs_url = format!("http://127.0.0.1:{port}/graphql");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let started = Instant::now();
    while postgraphile_request(&client, &theirs_url, tenant, "{ __typename }", &json!({}))
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

    let server = in_process(args).await?;
    let key = api::ops::keys::create_for_tenant(&server.db, tenant, Role::Viewer, "bench")
        .await?
        .secret;
    let floor_pool = pool(&args.database_url, args.pool_size).await?;
    let windows = Arc::new(Windows::at(chrono::Utc::now(), "ensemble-risk-03"));
    for query in Query::ALL {
        let floor = reads::floor(&floor_pool, tenant, query, &windows).await?;
        let (document, variables) = reads::graphql(query, &windows);
        let mine = graphql(&client, &server.url, &key, document, &variables).await?;
        reads::same_results(query, &mine, &floor)?;
        let (document, variables) = postgraphile::graphql(query, &windows);
        let theirs =
            postgraphile_request(&client, &theirs_url, tenant, document, &variables).await?;
        postgraphile::same_results(query, &theirs, &floor)?;
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
                let (document, variables) = postgraphile::graphql(query, &windows);
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

async fn reads(args: &Args, tenant: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let server = in_process(args).await?;
    let key = api::ops::keys::create_for_tenant(&server.db, tenant, Role::Viewer, "bench")
        .await?
        .secret;
    let floor_pool = pool(&args.database_url, args.pool_size).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let windows = Arc::new(Windows::at(chrono::Utc::now(), "ensemble-risk-03"));
    let tenant_predictions = count(
        &floor_pool,
        &format!("SELECT count(*) FROM ml_predictions WHERE tenant_id = '{tenant}'"),
    )
    .await?;

    writeln!(out, "## Read mix\n")?;
    writeln!(out, "Tenant `{tenant}` ({tenant_predictions} predictions); gateway pool and SQL-floor pool of {} connections each; \
              the tenant may hold {} % of the gateway's pool, {} % for analytics (`--tenant-db-share`, `--tenant-analytics-share`). \
              The floor is hand-written SQL returning the same results (checked before timing), run over its own pool from the harness.\n", args.pool_size, args.tenant_db_share, args.tenant_analytics_share)?;
    writeln!(
        out,
        "| query | statements per request (mlgate) | p50 mlgate (ms) | p50 floor (ms) | ratio |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    let per_query = Duration::from_secs((args.seconds / 2).max(1));
    let target = Target {
        client: &client,
        url: &server.url,
        key: &key,
        floor_pool: &floor_pool,
        tenant,
        windows: &windows,
    };
    for query in Query::ALL {
        let (statements, mine, theirs) = one_query(&target, &server.db, query, per_query).await?;
        writeln!(
            out,
            "| {} | {statements} | {} | {} | {:.2}× |",
            query.name(),
            ms(mine.p50()),
            ms(theirs.p50()),
            mine.p50() / theirs.p50()
        )?;
    }

    writeln!(
        out,
        "\nThe five queries in turn, each worker cycling through them:\n"
    )?;
    writeln!(out, "| concurrency | mlgate req/s | p50 | p95 | p99 (ms) | floor req/s | p50 | p95 | p99 (ms) | p50 ratio |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
    let duration = Duration::from_secs(args.seconds);
    for &concurrency in &args.concurrency {
        let mine = mlgate_mix(&client, &server.url, &key, &windows, concurrency, duration).await?;
        let theirs = {
            let (floor_pool, windows, tenant) =
                (floor_pool.clone(), windows.clone(), tenant.to_owned());
            closed_loop(concurrency, duration / 5, duration, move |worker, i| {
                let (floor_pool, windows, tenant) =
                    (floor_pool.clone(), windows.clone(), tenant.clone());
                let query = Query::ALL[(worker + i as usize) % Query::ALL.len()];
                async move {
                    reads::floor(&floor_pool, &tenant, query, &windows)
                        .await
                        .map(|_| ())
                }
            })
            .await?
        };
        writeln!(
            out,
            "| {concurrency} | {:.0} | {} | {} | {} | {:.0} | {} | {} | {} | {:.2}× |",
            mine.throughput(),
            ms(mine.p50()),
            ms(mine.p95()),
            ms(mine.p99()),
            theirs.throughput(),
            ms(theirs.p50()),
            ms(theirs.p95()),
            ms(theirs.p99()),
            mine.p50() / theirs.p50()
        )?;
    }
    writeln!(out)?;
    let _ = server.stop.send(());
    let _ = server.handle.await;
    Ok(out)
}

async fn ingest(args: &Args, tenants: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    let server = in_process(args).await?;
    let mut keys = Vec::new();
    for tenant in tenants {
        keys.push(
            api::ops::keys::create_for_tenant(&server.db, tenant, Role::Service, "bench")
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
                let batch =
                    ingest::batch(&prefix, 1000, &models[tenant], (worker as u64) << 32 | i);
                let (client, url, key, attempted) = (
                    client.clone(),
                    url.clone(),
                    keys[tenant].clone(),
                    attempted.clone(),
                );
                async move {
                    attempted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let data = graphql(
                        &client,
                        &url,
                        &key,
                        ingest::RECORD,
                        &json!({"input": batch}),
                    )
                    .await?;
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

async fn fan_out(args: &Args, tenants: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    let db = api::db::Database::connect(&args.database_url, 2).await?;
    let mut keys = Vec::new();
    for tenant in tenants {
        keys.push(fanout::TenantKeys {
            tenant: tenant.clone(),
            viewer: api::ops::keys::create_for_tenant(&db, tenant, Role::Viewer, "bench")
                .await?
                .secret,
            service: api::ops::keys::create_for_tenant(&db, tenant, Role::Service, "bench")
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
        let gateway = process::Gateway::start(
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
        let result = fanout::run(
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

async fn noisy_neighbour(args: &Args, tenants: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    anyhow::ensure!(
        tenants.len() >= 2,
        "the noisy-neighbour scenario needs two tenants"
    );
    let (noisy, light) = (&tenants[0], &tenants[1]);
    let db = api::db::Database::connect(&args.database_url, 2).await?;
    let keys = noisy::Keys {
        noisy: api::ops::keys::create_for_tenant(&db, noisy, Role::Viewer, "bench")
            .await?
            .secret,
        light: api::ops::keys::create_for_tenant(&db, light, Role::Viewer, "bench")
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
        let gateway = process::Gateway::start(&args.mlgate_bin, &args.database_url, &flags).await?;
        let result = noisy::run(
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

async fn idle(args: &Args) -> anyhow::Result<String> {
    let mut out = String::new();
    let dir = std::env::temp_dir().join(format!("mlgate-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("idle.db").display());
    writeln!(out, "## Idle memory and start-up\n")?;
    writeln!(
        out,
        "`{} serve`, measured from spawning the process to `/ready` answering; memory 2 s after.\n",
        args.mlgate_bin.display()
    )?;
    writeln!(out, "| database | start-to-ready (ms) | idle RSS (MiB) |")?;
    writeln!(out, "|---|---|---|")?;
    let mut runs = vec![("SQLite, new file (migrations run)", sqlite.clone(), vec![])];
    runs.push(("SQLite, migrated", sqlite.clone(), vec!["--no-migrate"]));
    runs.push((
        "PostgreSQL (the loaded database), migrated",
        args.database_url.clone(),
        vec!["--no-migrate"],
    ));
    for (label, url, extra) in runs {
        let gateway = process::Gateway::start(&args.mlgate_bin, &url, &extra).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = gateway.rss_kib()?;
        writeln!(
            out,
            "| {label} | {:.0} | {:.1} |",
            gateway.start_to_ready.as_secs_f64() * 1000.0,
            rss as f64 / 1024.0
        )?;
        gateway.stop().await;
    }
    writeln!(out)?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(out)
}

/// Runs the scenarios `args` asks for, handing each finished Markdown
/// section to `emit` (the run can take minutes).
pub async fn run(args: &Args, mut emit: impl FnMut(String)) -> anyhow::Result<()> {
    let wants = |name: &str| args.scenarios.iter().any(|s| s == name);
    emit(format!(
        "# mlgate benchmark run\n\n{} · {} cores\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    ));
    if args.reset {
        emit(load(args).await?);
    }
    let tenants = api::ops::demo::tenant_names(args.tenants);
    if wants("reads") {
        emit(reads(args, &tenants[0]).await?);
    }
    if wants("postgraphile") {
        emit(versus_postgraphile(args, &tenants[0]).await?);
    }
    if wants("scale") {
        emit(scale(args).await?);
    }
    if wants("ingest") {
        emit(ingest(args, &tenants).await?);
    }
    if wants("fanout") {
        emit(fan_out(args, &tenants).await?);
    }
    if wants("noisy") {
        emit(noisy_neighbour(args, &tenants).await?);
    }
    if wants("idle") {
        emit(idle(args).await?);
    }
    Ok(())
}
