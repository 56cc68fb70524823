//! Closes the pooled connections a pool no longer needs. sqlx's own idle
//! sweep is off: its loop can read a transiently wrapped idle count and spin
//! a runtime thread forever (sqlx#3645, not fixed in 0.9.0). This task does
//! its job without that loop: once per idle period it closes the idle
//! connections beyond the most that were in use at once during the period
//! (at least one if any was handed out), the longest idle first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// The task of one pool; dropping it (with the last handle of the
/// database) stops it.
#[derive(Debug)]
pub(super) struct Reaper(AbortHandle);

impl Drop for Reaper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts reaping `conn`'s pool every `idle`; `uses` counts the
/// connections it hands out (the pool's hooks add to it).
pub(super) fn spawn(conn: &DatabaseConnection, uses: Arc<AtomicU64>, idle: Duration) -> Reaper {
    let task = match conn.get_database_backend() {
        DbBackend::Postgres => {
            tokio::spawn(run(conn.get_postgres_connection_pool().clone(), uses, idle))
        }
        _ => tokio::spawn(run(conn.get_sqlite_connection_pool().clone(), uses, idle)),
    };
    Reaper(task.abort_handle())
}

async fn run<DB: sea_orm::sqlx::Database>(
    pool: sea_orm::sqlx::Pool<DB>,
    uses: Arc<AtomicU64>,
    idle: Duration,
) {
    // How often the connections in use are sampled.
    let tick = (idle / 8).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut peak = 0;
    let mut seen = uses.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while !pool.is_closed() {
        tokio::time::sleep(tick).await;
        peak = peak.max(in_use(&pool));
        if since.elapsed() < idle {
            continue;
        }
        let used = uses.load(Ordering::Relaxed);
        let keep = peak.max(u32::from(used != seen));
        for _ in keep..pool.size() {
            // The longest idle first; none idle: the rest are in use.
            match pool.try_acquire() {
                Some(conn) => {
                    let _ = conn.close().await;
                }
                None => break,
            }
        }
        peak = in_use(&pool);
        seen = used;
        since = Instant::now();
    }
}

/// The connections of `pool` in use now.
fn in_use<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> u32 {
    let (size, idle, _) = super::counts_of(pool);
    size - idle
}
