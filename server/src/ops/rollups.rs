//! Rebuilding and checking the PostgreSQL rollups (migration 000013) for a
//! tenant: after a bulk load that bypassed the triggers, a restore, or to
//! prove they hold what the rows say.
//!
//! A rebuild walks the tenant's hours through `mlgate_rebuild_rollups`
//! (the triggers' own path, then day rows left with no hour removed),
//! [`HOURS_PER_TRANSACTION`] at a time: each transaction locks only the
//! model-days of the hours it rebuilds (migration 000015), so writers keep
//! writing, and a writer of one of those model-days waits for it.

use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{DbBackend, Statement};

use crate::db::Database;

/// Hours rebuilt per transaction: small enough to stay far inside the write
/// budget at hundreds of predictions per model-hour.
pub const HOURS_PER_TRANSACTION: usize = 200;

/// One rollup table's rows that differ from a fresh aggregation of the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub rollup: String,
    pub differing: i64,
}

fn postgres_only(db: &Database) -> anyhow::Result<()> {
    anyhow::ensure!(
        db.backend() == DbBackend::Postgres,
        "rollups exist on PostgreSQL only: SQLite answers from the rows"
    );
    Ok(())
}

/// Rebuilds every rollup hour of `tenant`; `progress` is told the number of
/// hours, then each batch done. Returns the hours rebuilt.
pub async fn rebuild(
    db: &Database,
    tenant: &str,
    progress: impl Fn(Progress),
) -> anyhow::Result<u64> {
    postgres_only(db)?;
    let txn = db.begin_as_operator(tenant).await?;
    let rows = txn
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_rollup_hours()",
        ))
        .await?;
    txn.commit().await?;
    let mut hours = Vec::with_capacity(rows.len());
    for row in rows {
        hours.push((
            row.try_get::<String>("", "tenant_id")?,
            row.try_get::<String>("", "model_id")?,
            row.try_get::<String>("", "model_version")?,
            row.try_get::<chrono::DateTime<chrono::Utc>>("", "hour_start")?,
        ));
    }
    progress(Progress::Hours(hours.len() as u64));
    for batch in hours.chunks(HOURS_PER_TRANSACTION) {
        let strings = |pick: fn(&(String, String, String, _)) -> &String| {
            Value::Array(
                ArrayType::String,
                Some(Box::new(
                    batch.iter().map(|h| Value::from(pick(h).clone())).collect(),
                )),
            )
        };
        let times = Value::Array(
            ArrayType::ChronoDateTimeUtc,
            Some(Box::new(batch.iter().map(|h| Value::from(h.3)).collect())),
        );
        let txn = db.begin_as_operator(tenant).await?;
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT mlgate_rebuild_rollups($1::text[], $2::text[], $3::text[], $4::timestamptz[], true)",
            [strings(|h| &h.0), strings(|h| &h.1), strings(|h| &h.2), times],
        ))
        .await?;
        txn.commit().await?;
        progress(Progress::Done(batch.len() as u64));
    }
    Ok(hours.len() as u64)
}

/// What a rebuild reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// How many hours it is going to rebuild.
    Hours(u64),
    /// This many more are done.
    Done(u64),
}

/// Each rollup's rows that differ from a fresh aggregation of `tenant`'s
/// rows (both ways); all zero when they are consistent.
pub async fn differences(db: &Database, tenant: &str) -> anyhow::Result<Vec<Difference>> {
    postgres_only(db)?;
    let txn = db.begin_as_operator(tenant).await?;
    let rows = txn
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT rollup, differing FROM mlgate_rollup_differences()",
        ))
        .await?;
    txn.commit().await?;
    rows.into_iter()
        .map(|row| {
            Ok(Difference {
                rollup: row.try_get("", "rollup")?,
                differing: row.try_get("", "differing")?,
            })
        })
        .collect()
}
