//! Database access. The only way to reach tenant data is a [`Scoped`] handle,
//! which only a [`Principal`] can open; see `scoped.rs`.

mod scoped;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

pub use scoped::{Scoped, ScopedTxn};

use crate::auth::Principal;

/// The connection pool. Deliberately offers no query methods of its own:
/// tenant data is reached through [`Database::scoped`]; the few unscoped
/// operations (authentication, migrations, schema checks, readiness) live
/// in this crate's modules that need them, via `pub(crate)` access.
#[derive(Clone, Debug)]
pub struct Database {
    conn: DatabaseConnection,
    statements: Arc<AtomicU64>,
}

/// Statements slower than this are logged (SQL text only, never values).
const SLOW_STATEMENT: Duration = Duration::from_millis(500);

impl Database {
    /// Connects to `url`. SQLite files get their folder created and WAL mode;
    /// an in-memory SQLite database keeps one connection forever, since it
    /// vanishes with its last connection.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections.max(1))
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        let in_memory = url.starts_with("sqlite:") && url.contains(":memory:");
        if in_memory {
            options
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else if let Some(path) = sqlite_file_path(url) {
            if let Some(dir) = Path::new(&path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        let mut conn = sea_orm::Database::connect(options).await?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        conn.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::Relaxed);
            if info.elapsed >= SLOW_STATEMENT {
                tracing::warn!(
                    elapsed_ms = info.elapsed.as_millis() as u64,
                    sql = %info.statement.sql,
                    "slow statement"
                );
            }
        });
        if conn.get_database_backend() == DbBackend::Sqlite && !in_memory {
            conn.execute_unprepared("PRAGMA journal_mode = WAL").await?;
        }
        Ok(Self { conn, statements })
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// SQL statements run through this pool so far (every pool clone shares
    /// the count): what the N+1 tests and benchmarks measure.
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Opens the tenant-scoped handle for `principal`.
    pub fn scoped(&self, principal: &Principal) -> Scoped {
        Scoped::new(self.conn.clone(), principal.tenant().to_owned())
    }

    /// A transaction scoped to `tenant` for the operator's command line
    /// (demo data, keys, cleanup): the tenant is named by whoever runs the
    /// binary, and RLS applies exactly as for an API caller.
    pub(crate) async fn begin_as_operator(&self, tenant: &str) -> anyhow::Result<ScopedTxn> {
        Ok(self.scoped(&Principal::cli(tenant)?).begin().await?)
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn
            .execute_raw(Statement::from_string(self.backend(), "SELECT 1"))
            .await
            .map(|_| ())
    }

    /// The raw pool, for the unscoped maintenance paths of this crate
    /// (migrations, schema verification, API-key authentication).
    pub(crate) fn unscoped(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.conn.close().await
    }
}

/// The file path of an SQLite URL, if it names a file.
fn sqlite_file_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_owned())
}

/// The URL with any password replaced, fit for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://gw:s3cret@db:5432/ml"),
            "postgres://gw:***@db:5432/ml"
        );
        assert_eq!(redact_url("postgres://gw@db/ml"), "postgres://gw@db/ml");
        assert_eq!(
            redact_url("sqlite://data/mlgate.db?mode=rwc"),
            "sqlite://data/mlgate.db?mode=rwc"
        );
    }

    #[test]
    fn finds_sqlite_file_paths() {
        assert_eq!(
            sqlite_file_path("sqlite://data/x.db?mode=rwc").as_deref(),
            Some("data/x.db")
        );
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("postgres://x/y"), None);
    }
}

/// Migration state of one migration, for `mlgate migrate status`.
#[derive(Debug, Clone)]
pub struct MigrationState {
    pub name: String,
    pub applied: bool,
}

impl Database {
    pub async fn migrate_up(&self) -> Result<(), DbErr> {
        use migration::MigratorTrait;
        migration::Migrator::up(&self.conn, None).await
    }

    pub async fn migrate_down(&self, steps: u32) -> Result<(), DbErr> {
        use migration::MigratorTrait;
        migration::Migrator::down(&self.conn, Some(steps)).await
    }

    /// Drops every table (and mlgate's views, which SQLite would otherwise
    /// keep dangling) and applies all migrations again.
    pub async fn migrate_fresh(&self) -> Result<(), DbErr> {
        use migration::MigratorTrait;
        for view in ["v_model_performance", "v_recent_predictions"] {
            self.conn
                .execute_unprepared(&format!("DROP VIEW IF EXISTS {view}"))
                .await?;
        }
        migration::Migrator::fresh(&self.conn).await
    }

    pub async fn migration_status(&self) -> Result<Vec<MigrationState>, DbErr> {
        use migration::MigratorTrait;
        Ok(migration::Migrator::get_migration_with_status(&self.conn)
            .await?
            .into_iter()
            .map(|m| MigrationState {
                name: m.name().to_owned(),
                applied: matches!(m.status(), migration::MigrationStatus::Applied),
            })
            .collect())
    }
}
