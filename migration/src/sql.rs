//! Helpers shared by the migrations: run a script of `;`-separated statements
//! for the connected backend.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The non-owner, non-superuser role the gateway switches to for every request
/// on PostgreSQL, so that row-level security applies even when the pool logs in
/// as the table owner or a superuser.
pub const GATEWAY_ROLE: &str = "mlgate_gateway";

/// The ML tables, in dependency order (referenced tables first).
pub const ML_TABLES: [&str; 7] = [
    "ml_configurations",
    "ml_training_jobs",
    "ml_models",
    "ml_predictions",
    "ml_feedback",
    "ml_feature_store",
    "ml_drift_metrics",
];

/// Runs `script` one statement at a time. Statements are separated by a line
/// holding only `;;` so that PL/pgSQL bodies and SQLite trigger bodies, which
/// contain `;`, stay whole.
pub async fn run_script(manager: &SchemaManager<'_>, script: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in script.split("\n;;") {
        let statement = statement.trim();
        if statement.is_empty() {
            continue;
        }
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

/// Runs `script` on PostgreSQL; nothing on SQLite (for what only PostgreSQL
/// has: row-level security, notifications, the rollups and their triggers).
pub async fn run_on_postgres(manager: &SchemaManager<'_>, script: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    run_script(manager, script).await
}

/// Picks the script for the connected backend.
pub async fn run_for_backend(
    manager: &SchemaManager<'_>,
    postgres: &str,
    sqlite: &str,
) -> Result<(), DbErr> {
    match manager.get_database_backend() {
        DbBackend::Postgres => run_script(manager, postgres).await,
        DbBackend::Sqlite => run_script(manager, sqlite).await,
        other => Err(DbErr::Migration(format!(
            "mlgate supports PostgreSQL and SQLite, not {other:?}"
        ))),
    }
}

/// SQLite's spelling of the PostgreSQL DDL in these migrations. The tables are
/// written once, for PostgreSQL; SQLite gets the nearest storage types:
/// UUID → BLOB (SeaORM binds UUIDs as 16-byte blobs there), JSONB and TEXT[]
/// → TEXT holding JSON, DECIMAL → REAL (SeaORM binds decimals as text and reads
/// them as f64; REAL affinity stores them as numbers so SQL aggregates work),
/// BYTEA → BLOB, TIMESTAMPTZ → TEXT in the RFC 3339 UTC form sqlx writes, which
/// sorts chronologically as text.
pub fn sqlite_dialect(postgres: &str) -> String {
    let mut out = postgres
        .replace("CREATE EXTENSION IF NOT EXISTS pgcrypto\n;;", "")
        .replace(
            "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
            "BLOB PRIMARY KEY NOT NULL DEFAULT (randomblob(16))",
        )
        .replace("UUID", "BLOB")
        .replace("JSONB", "TEXT")
        .replace("TEXT[]", "TEXT")
        .replace("BYTEA", "BLOB")
        .replace("DEFAULT false", "DEFAULT 0")
        .replace(
            "DEFAULT now()",
            "DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
        )
        .replace("TIMESTAMPTZ", "TEXT");
    while let Some(start) = out.find("DECIMAL(") {
        let end = start + out[start..].find(')').expect("DECIMAL(p,s) is closed") + 1;
        out.replace_range(start..end, "REAL");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sqlite_dialect;

    #[test]
    fn sqlite_dialect_maps_every_postgres_only_type() {
        let sqlite = sqlite_dialect(
            "CREATE EXTENSION IF NOT EXISTS pgcrypto\n;;\nCREATE TABLE t (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), \
             j JSONB, a TEXT[], b BYTEA, d DECIMAL(5,4), e DECIMAL(10,2), f BOOLEAN DEFAULT false, \
             c TIMESTAMPTZ DEFAULT now(), u TIMESTAMPTZ, r UUID, n TIMESTAMPTZ NOT NULL DEFAULT now())",
        );
        for pg_only in [
            "UUID",
            "JSONB",
            "[]",
            "BYTEA",
            "DECIMAL",
            "TIMESTAMPTZ",
            "now()",
            "EXTENSION",
            "false",
        ] {
            assert!(!sqlite.contains(pg_only), "{pg_only} left in {sqlite}");
        }
        assert!(sqlite.contains("id BLOB PRIMARY KEY NOT NULL DEFAULT (randomblob(16))"));
        assert!(sqlite.contains("d REAL, e REAL"));
        assert!(sqlite.contains("n TEXT NOT NULL DEFAULT (strftime("));
    }
}
