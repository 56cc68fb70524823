//! Model performance for one tenant many times larger than the others.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use server::auth::Role;
use server::config::DemoArgs;

use crate::args::Args;
use crate::common::{count, in_process, ms, one_query, pool, Target};
use crate::reads::{Query, Windows};

/// Model performance for a tenant holding `scale_factor` times the
/// predictions of the others: the per-tenant size of a database that many
/// times larger (queries read one tenant's rows).
pub(crate) async fn scale(args: &Args) -> anyhow::Result<String> {
    let mut out = String::new();
    let (tenant, stored, loaded) = large_tenant(args).await?;
    let raw = pool(&args.database_url, 1).await?;

    let server = in_process(args).await?;
    let key = server::ops::keys::create_for_tenant(&server.db, &tenant, Role::Viewer, "bench")
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

/// The tenant holding `scale_factor` times the predictions of the others,
/// loaded when it is not yet: (name, predictions, time the load took).
pub(crate) async fn large_tenant(args: &Args) -> anyhow::Result<(String, i64, Duration)> {
    let tenant = server::ops::demo::tenant_names(args.tenants + 1)
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no tenant name"))?;
    let predictions = args.predictions * args.scale_factor;
    let db = server::db::Database::connect(&args.database_url, args.pool_size).await?;
    let started = Instant::now();
    // Seeds only tenants without models: the others are left as they are.
    server::ops::demo::seed(
        &db,
        &DemoArgs {
            tenants: args.tenants + 1,
            models: args.models,
            predictions,
            seed: 43,
            days: args.days,
            new_keys: true,
        },
        None,
        &server::ops::demo::ProgressBar::hidden(),
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

    Ok((tenant, stored, loaded))
}
