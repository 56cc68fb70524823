//! The tenant-scoped transaction of a bulk load (PostgreSQL).
//!
//! SeaORM cannot stream `COPY FROM STDIN`, and its transaction does not
//! hand out the connection underneath, so a bulk load opens its own sqlx
//! transaction on the same pool, bound exactly like a [`ScopedTxn`]: the
//! tenant's share of the pool first, then the gateway's non-owner role, the
//! tenant and the time budgets set locally (`SCOPE_SQL`), so row-level
//! security checks every row it writes. Its statements are counted and
//! traced like SeaORM's.
//!
//! [`ScopedTxn`]: super::ScopedTxn

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use sea_orm::sqlx::postgres::{PgConnection, PgCopyIn};
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{DbBackend, DbErr, QueryResult, RuntimeErr};

use super::scoped::{observe_acquire, Permits, Timed, BULK_SCOPE_SQL};
use super::{observe_statement, Scoped, Shared, TxnKind};
use crate::telemetry::metrics::{metrics, Metrics, Pool};

/// A transaction running as the tenant of the [`Scoped`] that began it,
/// for statements SeaORM cannot send. Rolled back unless committed.
pub struct BulkTxn {
    txn: sqlx::Transaction<'static, Postgres>,
    shared: Arc<Shared>,
    _permits: Permits,
    _timed: Timed,
}

impl Scoped {
    /// Begins a bulk load's transaction (PostgreSQL only), with the
    /// [`TxnKind::Ingest`] budgets.
    pub async fn begin_bulk(&self) -> Result<BulkTxn, DbErr> {
        if self.backend() != DbBackend::Postgres {
            return Err(DbErr::Custom(
                "bulk transactions need PostgreSQL".to_owned(),
            ));
        }
        let kind = TxnKind::Ingest;
        let asked = Instant::now();
        let begun = async {
            let _waiting = Metrics::hold(&metrics().db_waiting);
            // PostgreSQL has no process-wide write lock to take.
            let (permits, _) = self.acquire(kind).await?;
            let pool = self.connection().get_postgres_connection_pool();
            let shared = self.shared_arc();
            let txn = shared
                .on_live(Pool::Main, || async {
                    // Not connecting (retried by nobody), only the `BEGIN`.
                    let conn = pool.acquire().await.map_err(acquire_error)?;
                    sqlx::Transaction::begin(conn, None)
                        .await
                        .map_err(query_error)
                })
                .await?;
            shared.transactions.fetch_add(1, Ordering::Relaxed);
            let mut bulk = BulkTxn {
                txn,
                shared,
                _permits: permits,
                _timed: Timed::start(kind),
            };
            let values = self.scope_values(kind);
            bulk.execute(BULK_SCOPE_SQL, &values.each_ref().map(String::as_str))
                .await?;
            Ok(bulk)
        }
        .await;
        observe_acquire(kind, asked);
        begun
    }
}

/// A failure to get a connection as SeaORM reports it (its mapping is
/// private): a pool timeout or a closed pool, else a failed connect.
fn acquire_error(error: sqlx::Error) -> DbErr {
    match error {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => {
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed)
        }
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

/// A database error as SeaORM would report it, for the same classification
/// (unavailable, timeout, overloaded) and write-error mapping.
fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))
}

impl BulkTxn {
    fn observe(&self, sql: &str, started: Instant) {
        observe_statement(
            &self.shared.statements,
            "postgresql",
            sql,
            started.elapsed(),
        );
    }

    /// Runs `sql` with text parameters; returns the rows it affected.
    pub async fn execute(&mut self, sql: &'static str, binds: &[&str]) -> Result<u64, DbErr> {
        let started = Instant::now();
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        let done = query.execute(&mut *self.txn).await.map_err(query_error);
        self.observe(sql, started);
        Ok(done?.rows_affected())
    }

    /// Runs `sql`, one statement without parameters, unprepared (DDL).
    pub async fn execute_script(&mut self, sql: &'static str) -> Result<(), DbErr> {
        let started = Instant::now();
        let done = sqlx::raw_sql(sql)
            .execute(&mut *self.txn)
            .await
            .map_err(query_error);
        self.observe(sql, started);
        done.map(|_| ())
    }

    /// Runs `sql` with text parameters and streams its rows (a result read
    /// as it arrives, never held whole).
    pub fn fetch<'a>(
        &'a mut self,
        sql: &'static str,
        binds: &'a [&'a str],
    ) -> impl Stream<Item = Result<QueryResult, DbErr>> + 'a {
        let started = Instant::now();
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        let shared = self.shared.clone();
        let rows = query.fetch(&mut *self.txn);
        let mut observed = Some((shared, started));
        rows.map(|row| row.map(QueryResult::from).map_err(query_error))
            .chain(futures_util::stream::poll_fn(move |_| {
                if let Some((shared, started)) = observed.take() {
                    observe_statement(&shared.statements, "postgresql", sql, started.elapsed());
                }
                std::task::Poll::Ready(None)
            }))
    }

    /// Starts `COPY … FROM STDIN` (`sql`); nothing else runs on this
    /// transaction until the copy is finished or aborted.
    pub async fn copy_in(&mut self, sql: &'static str) -> Result<CopyIn<'_>, DbErr> {
        let started = Instant::now();
        let copy = self.txn.copy_in_raw(sql).await.map_err(query_error)?;
        Ok(CopyIn {
            copy,
            shared: self.shared.clone(),
            sql,
            started,
        })
    }

    /// Commits (not counted as a statement: like SeaORM's, it counts as
    /// the transaction's end).
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await.map_err(query_error)
    }
}

/// A `COPY FROM STDIN` in progress. Dropped unfinished, it fails the copy
/// (and with it the transaction).
pub struct CopyIn<'a> {
    copy: PgCopyIn<&'a mut PgConnection>,
    shared: Arc<Shared>,
    sql: &'static str,
    started: Instant,
}

impl CopyIn<'_> {
    /// Sends `data` (whole rows of the copy's format); waits while the
    /// database is not taking more, which is the load's backpressure.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), DbErr> {
        self.copy.send(data).await.map_err(query_error)?;
        Ok(())
    }

    /// Ends the copy; returns the rows it wrote.
    pub async fn finish(self) -> Result<u64, DbErr> {
        let rows = self.copy.finish().await.map_err(query_error);
        observe_statement(
            &self.shared.statements,
            "postgresql",
            self.sql,
            self.started.elapsed(),
        );
        rows
    }
}
