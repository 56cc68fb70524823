//! The tenant-scoped handle.
//!
//! A [`Scoped`] carries the caller's tenant and can only be opened from a
//! `Principal` (which only `auth` creates). Every statement runs inside a
//! [`ScopedTxn`]; on PostgreSQL that transaction first switches to the
//! gateway's non-owner role and sets `app.tenant_id` locally, so row-level
//! security checks every row even if a query forgot its tenant filter. The
//! store still filters by [`ScopedTxn::tenant`] on both backends: SQLite
//! has no RLS, and the filter lets the planner use the per-tenant indexes.

use std::sync::Arc;
use std::time::Instant;

use sea_orm::sea_query::{ArrayType, Value, Values};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::OwnedSemaphorePermit;

use migration::GATEWAY_ROLE;

use super::failure::{TENANT_SHARE_IN_USE, WRITE_QUEUE_TIMEOUT};
use super::session::{OperationEnd, Session, Txn};
use super::sqlite_deadline::Armed;
use super::{Share, Shared, TxnKind};
use crate::telemetry::metrics::{metrics, KindLabels, Metrics, Pool};

#[derive(Clone, Debug)]
pub struct Scoped {
    conn: DatabaseConnection,
    tenant: Arc<str>,
    /// The tenant's share of the pool: a transaction holds one permit (an
    /// analytics transaction one more, of the analytics share).
    share: Arc<Share>,
    shared: Arc<Shared>,
    /// A query operation's shared read transaction (PostgreSQL).
    session: Option<Arc<Session>>,
}

impl Scoped {
    pub(super) fn new(
        conn: DatabaseConnection,
        tenant: Arc<str>,
        share: Arc<Share>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            conn,
            tenant,
            share,
            shared,
            session: None,
        }
    }

    /// This handle for one query operation: on PostgreSQL its reads share
    /// one transaction (see `session.rs`), committed when the
    /// [`Scoped::operation_end`] guard drops. Elsewhere the same handle.
    pub fn for_query_operation(&self) -> Scoped {
        let mut scoped = self.clone();
        if self.backend() == DbBackend::Postgres {
            scoped.session = Some(Arc::default());
        }
        scoped
    }

    /// A guard ending the operation this handle was made for when it
    /// drops (a no-op for other handles).
    pub fn operation_end(&self) -> OperationEnd {
        OperationEnd(self.session.clone())
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Begins a reading transaction bound to this tenant (in a query
    /// operation on PostgreSQL: takes a turn on the operation's).
    pub async fn begin(&self) -> Result<Txn, DbErr> {
        self.begin_reading(TxnKind::Read).await
    }

    /// Begins a transaction for an aggregate over many rows (a longer
    /// budget, a permit of the tenant's analytics share).
    pub async fn begin_analytics(&self) -> Result<Txn, DbErr> {
        self.begin_reading(TxnKind::Analytics).await
    }

    async fn begin_reading(&self, kind: TxnKind) -> Result<Txn, DbErr> {
        match &self.session {
            Some(session) => session.turn(self, kind).await,
            None => Ok(Txn::own(self.begin_as(kind).await?)),
        }
    }

    /// A permit of the tenant's analytics share, for an analytic on a
    /// transaction that already holds its connection.
    pub(super) async fn analytics_permit(&self) -> Result<OwnedSemaphorePermit, DbErr> {
        tokio::time::timeout(
            self.shared.acquire_timeout,
            self.share.analytics.clone().acquire_owned(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| DbErr::Custom(TENANT_SHARE_IN_USE.into()))
    }

    pub(super) fn budgets(&self) -> &super::Budgets {
        &self.shared.budgets
    }

    /// Begins a transaction bound to this tenant that is going to write. On
    /// SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred
    /// transaction that reads first and writes later fails with `SQLITE_BUSY`
    /// when another writer committed in between, which the busy timeout
    /// cannot wait out. PostgreSQL needs nothing special.
    pub async fn begin_write(&self) -> Result<ScopedTxn, DbErr> {
        self.begin_as(TxnKind::Write).await
    }

    /// Begins a transaction of `kind`: first a permit of the tenant's share
    /// of the pool (and, for analytics, of its analytics share), waiting at
    /// most the acquire timeout in all, then a connection, then the tenant,
    /// role and time budgets, set locally in one round trip.
    pub async fn begin_as(&self, kind: TxnKind) -> Result<ScopedTxn, DbErr> {
        let asked = Instant::now();
        let begun = self.open(kind).await;
        observe_acquire(kind, asked);
        begun
    }

    /// [`Scoped::begin_as`] without its acquire-time observation.
    async fn open(&self, kind: TxnKind) -> Result<ScopedTxn, DbErr> {
        let waiting = Metrics::hold(&metrics().db_waiting);
        let (permits, write_lock) = self.acquire(kind).await?;
        let options = match kind {
            TxnKind::Write | TxnKind::Ingest => TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            },
            TxnKind::Read | TxnKind::Analytics => TransactionOptions::default(),
        };
        // A `BEGIN` on a connection that broke while idle is sent again on
        // another (see `live.rs`).
        let txn = self
            .shared
            .on_live(Pool::Main, || self.conn.begin_with_options(options))
            .await?;
        self.shared
            .transactions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(waiting);
        let statement = self.shared.budgets.statement(kind);
        let mut armed = None;
        match self.backend() {
            DbBackend::Postgres => {
                let values = self.scope_values(kind).map(sea_orm::Value::from);
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    SCOPE_SQL,
                    values,
                ))
                .await?;
            }
            DbBackend::Sqlite if !matches!(kind, TxnKind::Write | TxnKind::Ingest) => {
                if let Some(deadlines) = &self.shared.deadlines {
                    armed = deadlines.arm(&txn, statement).await?;
                }
            }
            _ => {}
        }
        Ok(ScopedTxn {
            txn,
            tenant: self.tenant.clone(),
            rollups: self.shared.rollups,
            _armed: armed,
            _write_lock: write_lock,
            _permits: permits,
            _timed: Timed::start(kind),
        })
    }

    /// The permits a transaction of `kind` holds: a connection of the
    /// tenant's share (and, for analytics, of its analytics share), waiting
    /// at most the acquire timeout in all; on SQLite, for a write, the
    /// process's write lock too (at most the lock budget).
    pub(super) async fn acquire(
        &self,
        kind: TxnKind,
    ) -> Result<(Permits, Option<OwnedSemaphorePermit>), DbErr> {
        let share = self.share.clone();
        let permits = tokio::time::timeout(self.shared.acquire_timeout, async move {
            // The connection first, then the analytics permit, in every
            // transaction (and turn on a shared one): one order, no cycle.
            let connection = share.connections.clone().acquire_owned().await.ok()?;
            let analytics = match kind {
                TxnKind::Analytics => Some(share.analytics.clone().acquire_owned().await.ok()?),
                TxnKind::Read | TxnKind::Write | TxnKind::Ingest => None,
            };
            Some(Permits {
                _connection: connection,
                _analytics: analytics,
            })
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| DbErr::Custom(TENANT_SHARE_IN_USE.into()))?;
        let write_lock = match (&self.shared.writer, kind) {
            (Some(writer), TxnKind::Write | TxnKind::Ingest) => Some(
                tokio::time::timeout(self.shared.budgets.lock, writer.clone().acquire_owned())
                    .await
                    .map_err(|_| DbErr::Custom(WRITE_QUEUE_TIMEOUT.into()))?
                    .map_err(|_| DbErr::Custom(WRITE_QUEUE_TIMEOUT.into()))?,
            ),
            _ => None,
        };
        Ok((permits, write_lock))
    }

    /// The values of [`SCOPE_SQL`] for a transaction of `kind`.
    pub(super) fn scope_values(&self, kind: TxnKind) -> [String; 6] {
        let budgets = &self.shared.budgets;
        let ms = |d: std::time::Duration| (d.as_millis().max(1) as u64).to_string();
        [
            GATEWAY_ROLE.to_owned(),
            self.tenant.to_string(),
            ms(budgets.statement(kind)),
            ms(budgets.lock),
            ms(budgets.idle_in_transaction),
            self.shared.parallel_workers.to_string(),
        ]
    }

    pub(super) fn shared_arc(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    pub(super) fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }
}

/// Observes how long beginning a transaction of `kind` took, whether it
/// succeeded or gave up: the waits that end in OVERLOADED or RATE_LIMITED
/// are the saturation this shows.
pub(super) fn observe_acquire(kind: TxnKind, asked: Instant) {
    metrics()
        .db_acquire
        .get_or_create(&KindLabels { kind: kind.label() })
        .observe(asked.elapsed().as_secs_f64());
}

/// Binds a PostgreSQL transaction to a tenant: the gateway's non-owner
/// role, the tenant, the time budgets and the parallel workers a statement
/// may start (which would otherwise let one tenant's scans take more cores
/// than the connections of its share). `set_config(…, true)` is
/// `SET LOCAL`, undone at commit or rollback, so a pooled connection never
/// keeps a tenant.
macro_rules! scope_sql {
    ($($more:literal)?) => {
        concat!(
            "SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true), ",
            "set_config('statement_timeout', $3, true), set_config('lock_timeout', $4, true), ",
            "set_config('idle_in_transaction_session_timeout', $5, true), ",
            "set_config('max_parallel_workers_per_gather', $6, true)",
            $($more)?
        )
    };
}
pub(super) const SCOPE_SQL: &str = scope_sql!();
/// [`SCOPE_SQL`] for a bulk load, whose staging table's `CREATE … IF NOT
/// EXISTS` would otherwise log a notice per load.
pub(super) const BULK_SCOPE_SQL: &str =
    scope_sql!(", set_config('client_min_messages', 'warning', true)");

/// A transaction running as the tenant of the [`Scoped`] that began it.
/// Fields drop in order: the transaction (rolled back unless committed,
/// its connection back in the pool), then the deadline, then the permits.
pub struct ScopedTxn {
    txn: DatabaseTransaction,
    tenant: Arc<str>,
    rollups: bool,
    _armed: Option<Armed>,
    _write_lock: Option<OwnedSemaphorePermit>,
    _permits: Permits,
    _timed: Timed,
}

/// Observes how long a transaction was open when it ends.
pub(super) struct Timed {
    kind: TxnKind,
    opened: Instant,
}

impl Timed {
    pub(super) fn start(kind: TxnKind) -> Self {
        Self {
            kind,
            opened: Instant::now(),
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        metrics()
            .db_transaction
            .get_or_create(&KindLabels {
                kind: self.kind.label(),
            })
            .observe(self.opened.elapsed().as_secs_f64());
    }
}

/// The permits a transaction holds of its tenant's share, given back when
/// it ends.
pub(super) struct Permits {
    _connection: OwnedSemaphorePermit,
    _analytics: Option<OwnedSemaphorePermit>,
}

impl ScopedTxn {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    /// Whether analytics may read the rollups (PostgreSQL, not turned off).
    pub fn reads_rollups(&self) -> bool {
        self.rollups
    }

    /// The transaction, for SeaORM queries. Statements holding array values
    /// must go through [`ScopedTxn::execute`] instead (SQLite cannot bind
    /// them). Dropping an uncommitted `ScopedTxn` rolls it back.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Executes `statement`, first rewriting array values as JSON text when
    /// the backend is SQLite (where `TEXT[]` columns are stored as JSON).
    pub async fn execute(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(adapt_for_backend(statement)).await
    }

    /// Runs `statement` and returns its rows, with the same array rewriting
    /// as [`ScopedTxn::execute`] (for `INSERT … RETURNING`).
    pub async fn query_all(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(adapt_for_backend(statement)).await
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

fn adapt_for_backend(mut statement: Statement) -> Statement {
    if statement.db_backend == DbBackend::Sqlite {
        if let Some(Values(values)) = statement.values.take() {
            statement.values = Some(Values(values.into_iter().map(array_as_json).collect()));
        }
    }
    statement
}

fn array_as_json(value: Value) -> Value {
    match value {
        Value::Array(ArrayType::String, items) => Value::String(items.map(|items| {
            let strings: Vec<String> = items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(s) => s,
                    _ => None,
                })
                .collect();
            serde_json::to_string(&strings).expect("strings serialize")
        })),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_statements_carry_string_arrays_as_json() {
        let list: Value = entity::StringList(vec!["a".into(), "b \"c\"".into()]).into();
        let statement = Statement::from_sql_and_values(DbBackend::Sqlite, "X", [list.clone()]);
        let adapted = adapt_for_backend(statement);
        assert_eq!(
            adapted.values.unwrap().0,
            vec![Value::String(Some(r#"["a","b \"c\""]"#.into()))]
        );
        let pg = adapt_for_backend(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "X",
            [list.clone()],
        ));
        assert_eq!(pg.values.unwrap().0, vec![list]);
    }
}
