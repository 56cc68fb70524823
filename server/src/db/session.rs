//! One read transaction per query operation (PostgreSQL).
//!
//! Every data call of a read used to be a transaction of its own: `BEGIN`,
//! the `set_config` of role, tenant and budgets, its statements, `COMMIT`.
//! A lookup with one relation was two of them, nine round trips for two
//! statements of work. A query operation's calls now share one
//! transaction: opened by the first call, reused by the next (statements
//! of sibling fields take turns on its connection), committed after the
//! answer is built. The operation holds one connection of its tenant's
//! share from the first read to the end, and waits for no other (an
//! analytic runs on the same connection under its own statement budget),
//! so operations of one tenant can never hold some connections while
//! waiting for more.
//!
//! A call that fails drops the transaction (PostgreSQL aborts a transaction
//! on any error); the next call opens a new one. Writes keep transactions
//! of their own, and mutations and subscriptions do not share: a
//! subscription lives for hours, a mutation must see its own writes.
//! SQLite shares nothing: its calls are in-process, with no round trip to
//! save, and an in-memory database has one connection for everyone.

use std::ops::Deref;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit};

use super::scoped::{Scoped, ScopedTxn};
use super::TxnKind;

/// The transaction an operation's reads share, once opened.
#[derive(Default)]
pub(super) struct Session {
    slot: Arc<Mutex<Option<Open>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

struct Open {
    txn: ScopedTxn,
    /// Whose statement budget is set on it now.
    budget: TxnKind,
}

/// A reading transaction: a data call's own, or its turn on the
/// operation's shared one. Derefs to the [`ScopedTxn`]; dropped without
/// [`Txn::commit`] it is rolled back (a shared one is then discarded, so
/// an aborted transaction never serves another call).
pub struct Txn {
    own: Option<ScopedTxn>,
    turn: Option<Turn>,
}

struct Turn {
    guard: OwnedMutexGuard<Option<Open>>,
    /// An analytic's permit of its tenant's analytics share.
    _analytics: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.done {
            // Rolled back as it drops; the next call opens a new one.
            self.guard.take();
        }
    }
}

impl Deref for Txn {
    type Target = ScopedTxn;

    fn deref(&self) -> &ScopedTxn {
        match (&self.own, &self.turn) {
            (Some(txn), _) => txn,
            (None, Some(turn)) => &turn.guard.as_ref().expect("a turn has a transaction").txn,
            (None, None) => unreachable!("a Txn holds a transaction until it is consumed"),
        }
    }
}

impl Txn {
    pub(super) fn own(txn: ScopedTxn) -> Self {
        Self {
            own: Some(txn),
            turn: None,
        }
    }

    /// Commits a transaction of its own; ends the turn on a shared one,
    /// which is committed when the operation ends.
    pub async fn commit(mut self) -> Result<(), DbErr> {
        if let Some(txn) = self.own.take() {
            return txn.commit().await;
        }
        if let Some(turn) = &mut self.turn {
            turn.done = true;
        }
        Ok(())
    }
}

impl Session {
    /// A turn on the shared transaction for a call of `kind` (a read or an
    /// analytic), opening it first if no call has (or the last one failed).
    /// Waiting for the turn is bounded by the request's deadline, as is
    /// everything the operation does.
    pub(super) async fn turn(&self, scoped: &Scoped, kind: TxnKind) -> Result<Txn, DbErr> {
        let mut guard = self.slot.clone().lock_owned().await;
        if guard.is_none() {
            *guard = Some(Open {
                txn: scoped.begin_as(TxnKind::Read).await?,
                budget: TxnKind::Read,
            });
        }
        // The connection first, then the analytics permit: the order of
        // every transaction's permits (see `Scoped::open`), so no two
        // waiters can each hold what the other waits for.
        let analytics = match kind {
            TxnKind::Analytics => Some(scoped.analytics_permit().await?),
            TxnKind::Read | TxnKind::Write | TxnKind::Ingest => None,
        };
        let open = guard.as_mut().expect("opened above");
        if open.budget != kind {
            let budget = scoped.budgets().statement(kind);
            let set = open
                .txn
                .conn()
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config('statement_timeout', $1, true)",
                    [(budget.as_millis().max(1) as u64).to_string().into()],
                ))
                .await;
            if let Err(error) = set {
                guard.take();
                return Err(error);
            }
            open.budget = kind;
        }
        Ok(Txn {
            own: None,
            turn: Some(Turn {
                guard,
                _analytics: analytics,
                done: false,
            }),
        })
    }

    /// Ends the operation: commits the shared transaction, off the answer's
    /// path (a read-only transaction has nothing to lose; the commit only
    /// returns the connection clean). A call still holding its turn (the
    /// operation was cut short) leaves it to be rolled back when dropped.
    fn finish(&self) {
        let Ok(mut guard) = self.slot.clone().try_lock_owned() else {
            return;
        };
        if let Some(open) = guard.take() {
            drop(guard);
            tokio::spawn(async move {
                if let Err(error) = open.txn.commit().await {
                    tracing::debug!(%error, "committing an operation's read transaction failed");
                }
            });
        }
    }
}

/// Ends a query operation's shared transaction when dropped: at the end of
/// the request, however it ends (answered, timed out, cancelled).
pub struct OperationEnd(pub(super) Option<Arc<Session>>);

impl Drop for OperationEnd {
    fn drop(&mut self) {
        if let Some(session) = &self.0 {
            session.finish();
        }
    }
}
