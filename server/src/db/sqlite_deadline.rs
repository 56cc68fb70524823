//! Statement budgets on SQLite, which has no `statement_timeout`.
//!
//! Every pooled SQLite connection gets a progress handler when it opens: every
//! few thousand virtual-machine steps it compares the clock with the
//! connection's deadline and interrupts the statement once it has passed
//! (`SQLITE_INTERRUPT`, answered as `TIMEOUT`). A scoped transaction finds
//! its connection's deadline through a temporary table holding the
//! connection's number (temporary tables are private to their connection)
//! and sets it for its lifetime. Only reads get deadlines: SQLite rolls
//! back a whole transaction whose *write* statement is interrupted, which
//! would leave the pool's transaction bookkeeping wrong; writes are bounded
//! by the busy timeout and the batch caps instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::Executor;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};

/// Virtual-machine steps between two looks at the clock.
const STEPS_PER_CHECK: i32 = 4_000;

/// Milliseconds since the process's first use of deadlines (0: none).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// The deadlines of one pool's connections, by connection number.
#[derive(Default, Debug)]
pub struct Deadlines {
    next: AtomicU64,
    connections: Mutex<HashMap<u64, Weak<AtomicU64>>>,
}

impl Deadlines {
    /// Prepares a newly opened connection: numbers it, and installs the
    /// progress handler that interrupts it past its deadline.
    pub async fn install(&self, conn: &mut SqliteConnection) -> Result<(), sea_orm::sqlx::Error> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS mlgate_connection (id INTEGER NOT NULL)")
            .await?;
        conn.execute("DELETE FROM temp.mlgate_connection").await?;
        conn.execute(
            sea_orm::sqlx::query("INSERT INTO temp.mlgate_connection (id) VALUES (?)")
                .bind(id as i64),
        )
        .await?;
        let deadline = Arc::new(AtomicU64::new(0));
        {
            let mut connections = self.connections.lock().expect("deadlines lock");
            connections.retain(|_, d| d.strong_count() > 0);
            connections.insert(id, Arc::downgrade(&deadline));
        }
        conn.lock_handle()
            .await?
            .set_progress_handler(STEPS_PER_CHECK, move || {
                let at = deadline.load(Ordering::Relaxed);
                at == 0 || now_ms() < at
            });
        Ok(())
    }

    /// Sets the deadline of the connection `txn` runs on, `budget` from now,
    /// until the returned guard is dropped.
    pub async fn arm(
        &self,
        txn: &DatabaseTransaction,
        budget: Duration,
    ) -> Result<Option<Armed>, DbErr> {
        let row = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT id FROM temp.mlgate_connection",
            ))
            .await?;
        let Some(id) = row.and_then(|r| r.try_get_by_index::<i64>(0).ok()) else {
            return Ok(None);
        };
        let deadline = self
            .connections
            .lock()
            .expect("deadlines lock")
            .get(&(id as u64))
            .and_then(Weak::upgrade);
        Ok(deadline.map(|deadline| {
            let at = now_ms() + budget.as_millis().max(1) as u64;
            deadline.store(at, Ordering::Relaxed);
            Armed { deadline, at }
        }))
    }
}

/// A connection's deadline, cleared when the transaction ends (unless
/// another transaction on that connection has set its own by then).
#[derive(Debug)]
pub struct Armed {
    deadline: Arc<AtomicU64>,
    at: u64,
}

impl Drop for Armed {
    fn drop(&mut self) {
        let _ = self
            .deadline
            .compare_exchange(self.at, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}
