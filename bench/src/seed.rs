//! `--reset`: a fresh benchmark database with the demo data.

use std::fmt::Write as _;
use std::time::Instant;

use sea_orm::ConnectionTrait;
use server::config::DemoArgs;

use crate::args::Args;
use crate::common::{count, pool};

/// Recreates the database, migrates it and loads the demo data; reports the load rate.
pub(crate) async fn load(args: &Args) -> anyhow::Result<String> {
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
    let admin = pool(&format!("{server}/postgres"), 1).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    let db = server::db::Database::connect(&args.database_url, args.pool_size).await?;
    db.migrate_up().await?;
    let demo = DemoArgs {
        tenants: args.tenants,
        models: args.models,
        predictions: args.predictions,
        seed: 42,
        days: args.days,
        new_keys: true,
    };
    let started = Instant::now();
    let bar = server::ops::demo::ProgressBar::hidden();
    let summary = server::ops::demo::seed(&db, &demo, None, &bar).await?;
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
