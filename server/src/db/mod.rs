//! Database access. The only way to reach tenant data is a [`Scoped`] handle,
//! which only a [`Principal`] can open; see `scoped.rs`.

mod bulk;
mod failure;
mod live;
mod reaper;
mod scoped;
mod session;
mod settings;
mod sqlite_deadline;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::Connection as _;
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::Semaphore;

pub use bulk::BulkTxn;
pub use failure::{classify, Failure};
pub use scoped::{Scoped, ScopedTxn};
pub use session::{OperationEnd, Txn};
pub use settings::{Budgets, DbSettings, TxnKind};

use crate::identity::Principal;
use crate::keyed::Keyed;
use crate::telemetry::metrics::{metrics, ConnectionState, Pool, PoolLabels, PoolStateLabels};
use crate::telemetry::traces;
use sqlite_deadline::Deadlines;

/// The most parameters one statement binds (an `IN` list, a multi-row
/// `INSERT`), well under both backends' limits (PostgreSQL 65535, SQLite
/// 32766).
pub const MAX_BOUND_PARAMETERS: usize = 30_000;

/// The connection pools. Deliberately offers no query methods of its own:
/// tenant data is reached through [`Database::scoped`]; the few unscoped
/// operations (authentication, migrations, schema checks, readiness) live
/// in this crate's modules that need them, via `pub(crate)` access.
#[derive(Clone, Debug)]
pub struct Database {
    conn: DatabaseConnection,
    /// The pool API-key lookups use (a clone of the main pool when it has
    /// none of its own).
    auth: DatabaseConnection,
    own_auth_pool: bool,
    shared: Arc<Shared>,
}

/// What every scoped handle of one pool shares.
#[derive(Debug)]
pub(crate) struct Shared {
    budgets: Budgets,
    acquire_timeout: Duration,
    tenant_connections: usize,
    tenant_analytics: usize,
    /// PostgreSQL: `max_parallel_workers_per_gather` in tenant transactions.
    parallel_workers: u32,
    /// Analytics read the rollups (PostgreSQL only).
    rollups: bool,
    /// Each tenant's share of the pool, while it has handles.
    shares: Keyed<Share>,
    /// SQLite: per-connection statement deadlines.
    deadlines: Option<Arc<Deadlines>>,
    /// SQLite: its one write lock, as a queue. Writers of this process wait
    /// here in order (at most the lock budget) instead of polling the
    /// database's busy handler, where some could starve.
    writer: Option<Arc<Semaphore>>,
    /// Transactions begun through scoped handles (each one a `BEGIN` and a
    /// `COMMIT` or `ROLLBACK` round trip besides its statements).
    transactions: AtomicU64,
    /// Statements run through either pool (bulk loads count theirs here
    /// too: they run outside SeaORM).
    statements: Arc<AtomicU64>,
    /// Tries of a first statement on the main pool and on the auth pool
    /// (see `live.rs`), and the broken connections they found.
    tries: u32,
    auth_tries: u32,
    broken: AtomicU64,
    /// Each pool's reaper, stopped with the last handle.
    _reapers: Vec<reaper::Reaper>,
}

/// One tenant's share of the pool: the connections its transactions hold
/// at once, and within them the analytics (long scans, which would
/// otherwise take every core from the tenant's own dashboards and from
/// other tenants).
#[derive(Debug)]
pub(crate) struct Share {
    connections: Arc<Semaphore>,
    analytics: Arc<Semaphore>,
}

/// Statements slower than this are logged (SQL text only, never values).
const SLOW_STATEMENT: Duration = Duration::from_millis(500);

impl Database {
    /// Connects to `url` with default settings (the command line's maintenance
    /// commands and tests).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        Self::connect_with(&DbSettings::new(url, max_connections)).await
    }

    /// Opens one connection to `url` outside any pool and closes it, to learn
    /// why a database cannot be reached: a pool only says it timed out.
    pub async fn probe(url: &str, within: Duration) -> Result<(), String> {
        use sea_orm::sqlx::ConnectOptions as _;
        if !url.starts_with("postgres") {
            return Ok(());
        }
        let options: sea_orm::sqlx::postgres::PgConnectOptions =
            url.parse().map_err(|e| format!("{e}"))?;
        match tokio::time::timeout(within, options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", within.as_secs())),
        }
    }

    /// Connects with `settings`. SQLite files get their folder created and
    /// WAL mode; an in-memory SQLite database keeps one connection forever,
    /// since it vanishes with its last connection (and authenticates on it).
    pub async fn connect_with(settings: &DbSettings) -> Result<Self, DbErr> {
        let url = settings.url.as_str();
        let in_memory = url.starts_with("sqlite:") && url.contains(":memory:");
        let sqlite = url.starts_with("sqlite:");
        let deadlines = sqlite.then(|| Arc::new(Deadlines::default()));
        let (mut options, uses) =
            pool_options(url, settings.max_connections, settings, deadlines.clone());
        if in_memory {
            options.min_connections(1).max_connections(1);
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
        count_statements(&mut conn, &statements);
        if conn.get_database_backend() == DbBackend::Sqlite && !in_memory {
            conn.execute_unprepared("PRAGMA journal_mode = WAL").await?;
        }
        let pool_size = if in_memory {
            1
        } else {
            settings.max_connections.max(1)
        };
        let mut reapers = Vec::new();
        if !in_memory {
            reapers.push(reaper::spawn(&conn, uses, settings.connection_idle));
        }
        let own_auth_pool = !(in_memory || settings.auth_connections == 0);
        let auth = if !own_auth_pool {
            conn.clone()
        } else {
            let (mut options, auth_uses) =
                pool_options(url, settings.auth_connections, settings, None);
            options.min_connections(0);
            let mut auth = sea_orm::Database::connect(options).await?;
            count_statements(&mut auth, &statements);
            reapers.push(reaper::spawn(&auth, auth_uses, settings.connection_idle));
            auth
        };
        Ok(Self {
            conn,
            auth,
            own_auth_pool,
            shared: Arc::new(Shared {
                budgets: settings.budgets,
                acquire_timeout: settings.acquire_timeout,
                tenant_connections: settings.tenant_connections(pool_size),
                tenant_analytics: settings.tenant_analytics(pool_size),
                parallel_workers: settings.parallel_workers,
                rollups: settings.rollups && !sqlite,
                shares: Keyed::default(),
                deadlines,
                writer: sqlite.then(|| Arc::new(Semaphore::new(1))),
                transactions: AtomicU64::new(0),
                statements,
                tries: live::tries_for(pool_size),
                auth_tries: live::tries_for(if own_auth_pool {
                    settings.auth_connections
                } else {
                    pool_size
                }),
                broken: AtomicU64::new(0),
                _reapers: reapers,
            }),
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// SQL statements run through this pool so far (every pool clone shares
    /// the count): what the N+1 tests and benchmarks measure.
    pub fn statements_executed(&self) -> u64 {
        self.shared.statements.load(Ordering::Relaxed)
    }

    /// Transactions begun through scoped handles so far. With
    /// [`Database::statements_executed`] it gives the round trips: a
    /// statement each, and a `BEGIN` and an end each transaction.
    pub fn transactions_begun(&self) -> u64 {
        self.shared.transactions.load(Ordering::Relaxed)
    }

    /// Pooled connections found broken by the first statement sent on them
    /// (which then ran on another; see `live.rs`).
    pub fn broken_connections(&self) -> u64 {
        self.shared.broken.load(Ordering::Relaxed)
    }

    /// The connections of the main pool idle in it now.
    pub fn connections_idle(&self) -> u32 {
        pool_counts(&self.conn).1
    }

    /// Runs `attempt`, a first statement on the auth pool, again on another
    /// connection while the one it got was broken (see `live.rs`).
    pub(crate) async fn on_live_auth_connection<T, F, Fut>(&self, attempt: F) -> Result<T, DbErr>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DbErr>>,
    {
        self.shared.on_live(Pool::Auth, attempt).await
    }

    /// Opens the tenant-scoped handle for `principal`.
    pub fn scoped(&self, principal: &Principal) -> Scoped {
        let tenant: Arc<str> = Arc::from(principal.tenant());
        let share = self.shared.shares.get_or_insert_with(&tenant, || Share {
            connections: Arc::new(Semaphore::new(self.shared.tenant_connections)),
            analytics: Arc::new(Semaphore::new(self.shared.tenant_analytics)),
        });
        Scoped::new(self.conn.clone(), tenant, share, self.shared.clone())
    }

    /// A transaction scoped to `tenant` for the operator's command line
    /// (demo data, keys, cleanup): the tenant is named by whoever runs the
    /// binary, and RLS applies exactly as for an API caller.
    pub(crate) async fn begin_as_operator(&self, tenant: &str) -> anyhow::Result<ScopedTxn> {
        Ok(self
            .scoped(&Principal::cli(tenant)?)
            .begin_as(TxnKind::Write)
            .await?)
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.shared
            .on_live(Pool::Main, || {
                self.conn
                    .execute_raw(Statement::from_string(self.backend(), "SELECT 1"))
            })
            .await
            .map(|_| ())
    }

    /// The raw pool, for the unscoped maintenance paths of this crate
    /// (migrations, schema verification, notifications).
    pub(crate) fn unscoped(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// The (tenant, monitor id) of enabled drift monitors due at `now`, of
    /// every tenant, most overdue first: the one cross-tenant read of the
    /// monitor evaluator, which then claims and evaluates each under its
    /// tenant's scope. Runs as the pool's own role, which the monitors'
    /// unforced tenant policy lets see every row (as for API keys).
    pub(crate) async fn due_monitors(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> Result<Vec<(String, String)>, DbErr> {
        use entity::monitor;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
        monitor::Entity::find()
            .select_only()
            .columns([monitor::Column::TenantId, monitor::Column::MonitorId])
            .filter(monitor::Column::Enabled.eq(true))
            .filter(monitor::Column::NextDueAt.lte(now))
            .order_by_asc(monitor::Column::NextDueAt)
            .limit(limit)
            .into_tuple::<(String, String)>()
            .all(&self.conn)
            .await
    }

    /// The (tenant, delivery id) of webhook deliveries due at `now`, of
    /// every tenant, most overdue first: the deliverer's one cross-tenant
    /// read (the deliveries' tenant policy is not forced either).
    pub(crate) async fn due_deliveries(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> Result<Vec<(String, String)>, DbErr> {
        use entity::webhook_delivery as d;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
        d::Entity::find()
            .select_only()
            .columns([d::Column::TenantId, d::Column::DeliveryId])
            .filter(d::Column::Status.eq("pending"))
            .filter(d::Column::NextAttemptAt.lte(now))
            .order_by_asc(d::Column::NextAttemptAt)
            .limit(limit)
            .into_tuple::<(String, String)>()
            .all(&self.conn)
            .await
    }

    /// The pool API keys are looked up on: its own, so that authentication
    /// never queues behind tenant transactions.
    pub(crate) fn auth_pool(&self) -> &DatabaseConnection {
        &self.auth
    }

    /// The connections the main pool holds open, idle or in use.
    pub fn connections_open(&self) -> u32 {
        pool_counts(&self.conn).0
    }

    /// Sets the pool gauges to what the pools hold now (at each scrape).
    pub fn record_pool_metrics(&self) {
        let pools = [(Pool::Main, &self.conn)]
            .into_iter()
            .chain(self.own_auth_pool.then_some((Pool::Auth, &self.auth)));
        let m = metrics();
        for (pool, conn) in pools {
            let (size, idle, max) = pool_counts(conn);
            let idle = i64::from(idle);
            let state = |state| PoolStateLabels { pool, state };
            m.pool_connections
                .get_or_create(&state(ConnectionState::Idle))
                .set(idle);
            m.pool_connections
                .get_or_create(&state(ConnectionState::InUse))
                .set((i64::from(size) - idle).max(0));
            m.pool_max
                .get_or_create(&PoolLabels { pool })
                .set(i64::from(max));
        }
    }

    pub async fn close(self) -> Result<(), DbErr> {
        if self.own_auth_pool {
            self.auth.close_by_ref().await?;
        }
        self.conn.close().await
    }
}

/// Whether a connection coming back to the pool may be used again: not when
/// the driver still counts an open transaction, i.e. its `COMMIT` or
/// `ROLLBACK` failed (SQLite rolls a transaction back by itself on
/// `SQLITE_FULL`, after which `ROLLBACK` fails). Reused, such a connection
/// would turn every later transaction into a savepoint of one nobody
/// commits: writes acknowledged, never stored, and the write lock held.
fn released_cleanly(in_transaction: bool) -> bool {
    if in_transaction {
        tracing::warn!("closing a pooled connection whose transaction did not end cleanly");
    }
    !in_transaction
}

/// Counts `conn`'s statements into `statements` and logs slow ones.
fn count_statements(conn: &mut DatabaseConnection, statements: &Arc<AtomicU64>) {
    let counter = statements.clone();
    let backend = match conn.get_database_backend() {
        DbBackend::Postgres => "postgresql",
        DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    };
    conn.set_metric_callback(move |info| {
        observe_statement(&counter, backend, &info.statement.sql, info.elapsed);
    });
}

/// The connections `conn`'s pool holds open, how many of them are idle, and
/// its maximum. sqlx's idle count can be read mid-update (transiently
/// wrapped): it is clamped to the open ones.
fn pool_counts(conn: &DatabaseConnection) -> (u32, u32, u32) {
    match conn.get_database_backend() {
        DbBackend::Postgres => counts_of(conn.get_postgres_connection_pool()),
        _ => counts_of(conn.get_sqlite_connection_pool()),
    }
}

/// [`pool_counts`] of a typed pool.
fn counts_of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> (u32, u32, u32) {
    let size = pool.size();
    let idle = pool.num_idle().min(size as usize) as u32;
    (size, idle, pool.options().get_max_connections())
}

/// Counts one statement into `statements` and the metrics, traces it, and
/// logs it (SQL text only) when it was slow.
fn observe_statement(statements: &AtomicU64, backend: &'static str, sql: &str, elapsed: Duration) {
    let sql = abbreviated(sql, STATEMENT_TEXT);
    traces::statement(backend, &sql, elapsed);
    statements.fetch_add(1, Ordering::Relaxed);
    let m = metrics();
    m.db_statements.inc();
    m.db_statement.observe(elapsed.as_secs_f64());
    if elapsed >= SLOW_STATEMENT {
        tracing::warn!(
            elapsed_ms = elapsed.as_millis() as u64,
            sql = %sql,
            "slow statement"
        );
    }
}

/// The most of a statement's text a log line or trace span carries: a
/// batch insert's text runs to 100 KB and more of placeholders.
const STATEMENT_TEXT: usize = 1_000;

/// `sql` cut to at most `max` bytes (at a character boundary), saying how
/// much was left out.
fn abbreviated(sql: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if sql.len() <= max {
        return sql.into();
    }
    let mut end = max;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &sql[..end], sql.len() - end).into()
}

/// Options of one pool of `size` connections. SQLite connections wait for
/// the write lock at most the lock budget, and (when `deadlines` is given)
/// get the progress handler that enforces statement budgets.
fn pool_options(
    url: &str,
    size: u32,
    settings: &DbSettings,
    deadlines: Option<Arc<Deadlines>>,
) -> (ConnectOptions, Arc<AtomicU64>) {
    let mut options = ConnectOptions::new(url.to_owned());
    // sqlx's own idle/lifetime sweep is off: its task can read a transiently
    // wrapped idle count and then spin, never yielding, holding a runtime
    // thread at 100 % for good (sqlx#3645, fixed upstream by sqlx#4289,
    // not in 0.9.0; seen here as a hung test). The same limits are applied
    // when a connection is handed out instead (`before_acquire`), and
    // `reaper.rs` closes the connections a pool no longer needs. sqlx's
    // ping at every hand-out is off too: `before_acquire` pings only a
    // PostgreSQL connection that idled (see `live.rs`).
    options
        .max_connections(size.max(1))
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    // An in-memory SQLite database vanishes with its connection: never retired.
    let retire = Retire {
        enabled: !url.contains(":memory:"),
        lifetime: settings.connection_lifetime,
        idle: settings.connection_idle,
        ping_idle: settings.connection_ping_idle,
        uses: Arc::new(AtomicU64::new(0)),
    };
    let uses = retire.uses.clone();
    if url.starts_with("sqlite:") {
        let lock = settings.budgets.lock;
        let max_pages = settings.sqlite_max_pages;
        options.map_sqlx_sqlite_opts(move |opts| {
            let opts = opts.busy_timeout(lock);
            match max_pages {
                Some(pages) => opts.pragma("max_page_count", pages.to_string()),
                None => opts,
            }
        });
        options.map_sqlx_sqlite_pool_opts(move |pool| {
            let (acquired, connected) = (retire.clone(), retire.clone());
            let deadlines = deadlines.clone();
            pool.after_release(|conn, _| {
                let clean = released_cleanly(conn.is_in_transaction());
                Box::pin(async move { Ok(clean) })
            })
            // An in-process connection has no peer to lose: no ping.
            .test_before_acquire(false)
            .before_acquire(move |_, meta| {
                let keep = acquired.hands_out(&meta);
                Box::pin(async move { Ok(keep) })
            })
            .after_connect(move |conn, _| {
                connected.opened();
                let deadlines = deadlines.clone();
                Box::pin(async move {
                    match deadlines {
                        Some(deadlines) => deadlines.install(conn).await,
                        None => Ok(()),
                    }
                })
            })
        });
    } else {
        options.map_sqlx_postgres_pool_opts(move |pool| {
            let (acquired, connected) = (retire.clone(), retire.clone());
            pool.after_release(|conn, _| {
                let clean = released_cleanly(conn.is_in_transaction());
                Box::pin(async move { Ok(clean) })
            })
            // Not SeaORM's `test_before_acquire_if_idle_for`: it would ping
            // a connection about to be retired. A failed ping closes the
            // connection as a retired one (an error would be a warning per
            // connection after every restart).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let keep = acquired.hands_out(&meta);
                let ping = keep && acquired.pings(&meta);
                Box::pin(async move { Ok(keep && (!ping || conn.ping().await.is_ok())) })
            })
            .after_connect(move |_, _| {
                connected.opened();
                Box::pin(async { Ok(()) })
            })
        });
    }
    (options, uses)
}

/// When a pooled connection is closed rather than handed out, and when it
/// is pinged first; counts the connections handed out (for `reaper.rs`).
#[derive(Clone, Debug)]
struct Retire {
    enabled: bool,
    lifetime: Duration,
    idle: Duration,
    ping_idle: Duration,
    uses: Arc<AtomicU64>,
}

impl Retire {
    /// Whether an idle connection described by `meta` is handed out.
    fn hands_out(&self, meta: &sea_orm::sqlx::pool::PoolConnectionMetadata) -> bool {
        let keep = !self.enabled || (meta.age < self.lifetime && meta.idle_for < self.idle);
        if keep {
            self.uses.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }

    /// Whether a connection kept by [`Retire::hands_out`] is pinged first.
    fn pings(&self, meta: &sea_orm::sqlx::pool::PoolConnectionMetadata) -> bool {
        meta.idle_for >= self.ping_idle
    }

    /// A new connection, about to be handed out.
    fn opened(&self) {
        self.uses.fetch_add(1, Ordering::Relaxed);
    }
}

/// The file path of an SQLite URL, if it names a file.
pub fn sqlite_file_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_owned())
}

/// The URL with any password replaced, fit for logs.
pub fn redact_url(url: &str) -> String {
    // A `password=` query parameter (libpq's URI form) is masked too.
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &base[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &base[..scheme_end + 3],
                    &credentials[..colon],
                    &base[at..]
                ),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
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
            redact_url("postgres://gw@db/ml?sslmode=require&password=s3cret"),
            "postgres://gw@db/ml?sslmode=require&password=***"
        );
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

    #[test]
    fn long_statement_texts_are_cut_at_a_character() {
        assert_eq!(abbreviated("SELECT 1", 8), "SELECT 1");
        assert_eq!(abbreviated("SELECT 1", 6), "SELECT… (2 more bytes)");
        // "é" is two bytes: a cut inside it moves before it.
        assert_eq!(abbreviated("ab\u{e9}cd", 3), "ab… (4 more bytes)");
        let insert = format!("INSERT INTO t VALUES {}", "($1, $2), ".repeat(10_000));
        let cut = abbreviated(&insert, STATEMENT_TEXT);
        assert!(cut.len() < STATEMENT_TEXT + 40, "{}", cut.len());
        assert!(cut.ends_with(&format!("({} more bytes)", insert.len() - STATEMENT_TEXT)));
    }

    #[test]
    fn no_pool_runs_sqlxs_idle_and_lifetime_sweep() {
        // Its task can spin a runtime thread forever (sqlx#3645); the
        // limits are applied on acquire instead (a test in tests/faults.rs).
        for url in [
            "postgres://gw@db/ml",
            "sqlite://data/x.db?mode=rwc",
            "sqlite::memory:",
        ] {
            let (options, _) = pool_options(url, 4, &DbSettings::new(url, 4), None);
            assert_eq!(options.get_idle_timeout(), Some(None), "{url}");
            assert_eq!(options.get_max_lifetime(), Some(None), "{url}");
        }
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
    /// keep dangling; on PostgreSQL the schema's functions too, which the
    /// migrations create without `OR REPLACE` where they must not silently
    /// replace another's) and applies all migrations again.
    pub async fn migrate_fresh(&self) -> Result<(), DbErr> {
        use migration::MigratorTrait;
        let postgres = self.backend() == DbBackend::Postgres;
        for view in ["v_model_performance", "v_recent_predictions"] {
            let cascade = if postgres { " CASCADE" } else { "" };
            self.conn
                .execute_unprepared(&format!("DROP VIEW IF EXISTS {view}{cascade}"))
                .await?;
        }
        if postgres {
            // Functions of the current schema that no extension owns.
            let functions = self
                .conn
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT p.oid::regprocedure::text AS f FROM pg_proc p \
                     JOIN pg_namespace n ON n.oid = p.pronamespace \
                     WHERE n.nspname = current_schema() AND NOT EXISTS \
                     (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
                ))
                .await?;
            for row in functions {
                let function: String = row.try_get("", "f")?;
                self.conn
                    .execute_unprepared(&format!("DROP FUNCTION IF EXISTS {function} CASCADE"))
                    .await?;
            }
        }
        migration::Migrator::fresh(&self.conn).await
    }

    /// Applies the next pending migration, if any, and returns its name.
    pub async fn migrate_up_one(&self) -> Result<Option<String>, DbErr> {
        use migration::MigratorTrait;
        let Some(next) = self.pending_migrations().await?.into_iter().next() else {
            return Ok(None);
        };
        migration::Migrator::up(&self.conn, Some(1)).await?;
        Ok(Some(next))
    }

    /// The migrations not applied yet, by name.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, DbErr> {
        // Readiness asks right after its ping, maybe on another connection.
        Ok(self
            .shared
            .on_live(Pool::Main, || self.migration_status())
            .await?
            .into_iter()
            .filter(|m| !m.applied)
            .map(|m| m.name)
            .collect())
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
