//! Handing out live connections without a round trip per hand-out.
//!
//! sqlx pings a pooled connection every time it hands one out: a round trip
//! on the path of every transaction, which is every request. A PostgreSQL
//! connection is now pinged only once it has idled for
//! `DbSettings::connection_ping_idle` (`pool_options`), the way sqlx's own
//! documentation suggests. One that broke in that while (the server
//! restarted, an administrator ended the session) fails the first
//! statement sent on it, and a caller whose first statement that was (a
//! `BEGIN`, a read) sends it again on another connection. sqlx pings a
//! connection as it comes back to the pool and closes a broken one, so each
//! try gets a different connection, and a pool of n connections needs at
//! most n + 1 tries, all within one acquire timeout.
//!
//! Not covered: the notification listener's `LISTEN` (it reconnects after
//! a second, as after any loss) and the background sweeps (monitors,
//! webhooks: their next tick). A peer that vanished without closing the
//! socket within that second leaves the first statement waiting on TCP
//! until the request's deadline, where the hand-out ping waited for the
//! acquire timeout.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::DbErr;

use super::failure::is_broken_connection;
use super::Shared;
use crate::telemetry::metrics::{metrics, Pool};

/// Tries of one statement for a pool of `size` connections.
pub(super) fn tries_for(size: u32) -> u32 {
    size.max(1) + 1
}

impl Shared {
    /// Runs `attempt`, a first statement on `pool`, again on another
    /// connection while the one it got was broken, within the acquire
    /// timeout (see [`on_live_connection`]).
    pub(super) async fn on_live<T, F, Fut>(&self, pool: Pool, attempt: F) -> Result<T, DbErr>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DbErr>>,
    {
        let tries = match pool {
            Pool::Main => self.tries,
            Pool::Auth => self.auth_tries,
        };
        on_live_connection(tries, self.acquire_timeout, &self.broken, attempt).await
    }
}

/// Runs `attempt` until it does not fail on a broken connection, at most
/// `tries` times and not once `within` has passed; counts each broken
/// connection in `broken`. `attempt` must be safe to repeat even if the
/// server ran it (a failed read may have run): a `BEGIN`, a read.
async fn on_live_connection<T, F, Fut>(
    tries: u32,
    within: Duration,
    broken: &AtomicU64,
    mut attempt: F,
) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbErr>>,
{
    let until = Instant::now() + within;
    let mut left = tries.max(1);
    loop {
        match attempt().await {
            Err(error) if left > 1 && Instant::now() < until && is_broken_connection(&error) => {
                left -= 1;
                broken.fetch_add(1, Ordering::Relaxed);
                metrics().db_broken_connections.inc();
                tracing::info!(%error, "a pooled connection was broken; trying another");
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::RuntimeErr;

    use super::*;

    fn broken() -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(
            sea_orm::sqlx::Error::WorkerCrashed,
        )))
    }

    #[tokio::test]
    async fn broken_connections_are_tried_again_within_a_bound() {
        let replaced = AtomicU64::new(0);
        let mut calls = 0;
        let answer = on_live_connection(3, Duration::from_secs(5), &replaced, || {
            calls += 1;
            let result = if calls < 3 { Err(broken()) } else { Ok(calls) };
            async move { result }
        })
        .await;
        assert_eq!(answer.unwrap(), 3);
        assert_eq!(replaced.load(Ordering::Relaxed), 2);
        // Every connection broken: the last failure is the answer.
        let mut calls = 0;
        let answer: Result<(), DbErr> =
            on_live_connection(3, Duration::from_secs(5), &replaced, || {
                calls += 1;
                async { Err(broken()) }
            })
            .await;
        assert!(is_broken_connection(&answer.unwrap_err()));
        assert_eq!(calls, 3);
        // Any other failure is not tried again.
        let mut calls = 0;
        let answer: Result<(), DbErr> =
            on_live_connection(3, Duration::from_secs(5), &replaced, || {
                calls += 1;
                async { Err(DbErr::Custom("no".into())) }
            })
            .await;
        assert!(answer.is_err());
        assert_eq!(calls, 1);
        // Past the time given: no further try.
        let mut calls = 0;
        let answer: Result<(), DbErr> = on_live_connection(3, Duration::ZERO, &replaced, || {
            calls += 1;
            async { Err(broken()) }
        })
        .await;
        assert!(answer.is_err());
        assert_eq!(calls, 1);
    }
}
