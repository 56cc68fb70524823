//! How the pools are sized and how long each kind of transaction may take.

use std::time::Duration;

use crate::telemetry::metrics::TxnLabel;

/// The database's settings, built once in the composition root.
#[derive(Clone, Debug)]
pub struct DbSettings {
    pub url: String,
    /// Connections of the pool tenant transactions run on.
    pub max_connections: u32,
    /// Connections of the separate pool that looks up API keys, so that
    /// authentication never waits behind tenant queries. Zero shares the
    /// main pool (an in-memory SQLite database always does: it has one).
    pub auth_connections: u32,
    /// How long a transaction waits for a connection, or for its tenant's
    /// share of them, before it is refused.
    pub acquire_timeout: Duration,
    /// How long opening one connection may take (a dead network path hangs
    /// a TCP connect for minutes otherwise).
    pub connect_timeout: Duration,
    /// The most connections of the pool one tenant's transactions hold at
    /// once, in percent of `max_connections` (rounded up, at least one).
    pub tenant_share_percent: u32,
    /// The most of those one tenant's analytics transactions hold at once,
    /// in percent of `max_connections` (rounded up, at least one).
    pub tenant_analytics_percent: u32,
    /// PostgreSQL: the parallel workers one statement of a tenant
    /// transaction may start (`max_parallel_workers_per_gather`, set locally).
    /// Each is a backend burning a core, outside the tenant's share of the
    /// pool; zero keeps a tenant's statements to the connections it holds.
    pub parallel_workers: u32,
    /// PostgreSQL: analytics read the rollups where they can answer.
    pub rollups: bool,
    pub budgets: Budgets,
    /// SQLite: the most pages (of 4 KiB by default) the database file may
    /// grow to; a write past it fails as if the disk were full.
    pub sqlite_max_pages: Option<u64>,
    /// A pooled connection older than this is closed instead of being
    /// handed out (server-side memory and a moved server's address are not
    /// kept forever). Not applied to an in-memory SQLite database.
    pub connection_lifetime: Duration,
    /// A pooled connection idle for longer than this is closed instead of
    /// being handed out.
    pub connection_idle: Duration,
    /// A pooled connection idle for at least this long is pinged before it
    /// is handed out; one in use more recently is handed out as it is (see
    /// `live.rs` for what happens when it broke in between).
    pub connection_ping_idle: Duration,
}

impl DbSettings {
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    pub const DEFAULT_AUTH_CONNECTIONS: u32 = 2;
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_TENANT_SHARE_PERCENT: u32 = 50;
    pub const DEFAULT_TENANT_ANALYTICS_PERCENT: u32 = 20;
    pub const DEFAULT_PARALLEL_WORKERS: u32 = 0;
    pub const DEFAULT_CONNECTION_LIFETIME: Duration = Duration::from_secs(30 * 60);
    pub const DEFAULT_CONNECTION_IDLE: Duration = Duration::from_secs(10 * 60);
    pub const DEFAULT_CONNECTION_PING_IDLE: Duration = Duration::from_secs(1);

    /// `url` with every other setting at its default.
    pub fn new(url: impl Into<String>, max_connections: u32) -> Self {
        Self {
            url: url.into(),
            max_connections,
            auth_connections: Self::DEFAULT_AUTH_CONNECTIONS,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            tenant_share_percent: Self::DEFAULT_TENANT_SHARE_PERCENT,
            tenant_analytics_percent: Self::DEFAULT_TENANT_ANALYTICS_PERCENT,
            parallel_workers: Self::DEFAULT_PARALLEL_WORKERS,
            rollups: true,
            budgets: Budgets::default(),
            sqlite_max_pages: None,
            connection_lifetime: Self::DEFAULT_CONNECTION_LIFETIME,
            connection_idle: Self::DEFAULT_CONNECTION_IDLE,
            connection_ping_idle: Self::DEFAULT_CONNECTION_PING_IDLE,
        }
    }

    /// The connections one tenant may hold at once.
    pub fn tenant_connections(&self, pool_size: u32) -> usize {
        percent_of(pool_size, self.tenant_share_percent)
    }

    /// The connections one tenant's analytics may hold at once.
    pub fn tenant_analytics(&self, pool_size: u32) -> usize {
        percent_of(pool_size, self.tenant_analytics_percent)
    }
}

/// `percent` of `pool_size` connections, rounded up, at least one.
fn percent_of(pool_size: u32, percent: u32) -> usize {
    let share = u64::from(pool_size) * u64::from(percent.clamp(1, 100));
    (share.div_ceil(100) as usize).max(1)
}

/// What a transaction does, which decides its time budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnKind {
    /// Pages, lookups, loaders, authentication-adjacent reads.
    Read,
    /// Aggregates over many rows.
    Analytics,
    /// Mutations.
    Write,
    /// A bulk load streamed from a client (`/ingest`): a write whose one
    /// `COPY` lasts as long as the upload.
    Ingest,
}

impl TxnKind {
    /// Its metric label.
    pub fn label(self) -> TxnLabel {
        match self {
            Self::Read => TxnLabel::Read,
            Self::Analytics => TxnLabel::Analytics,
            Self::Write => TxnLabel::Write,
            Self::Ingest => TxnLabel::Ingest,
        }
    }
}

/// Time budgets, enforced by the database itself: on PostgreSQL as
/// `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`
/// set locally in every scoped transaction; on SQLite as an interrupt of a
/// read statement past its budget and as the busy timeout for locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    pub read: Duration,
    pub analytics: Duration,
    pub write: Duration,
    /// A bulk load's statements, its `COPY` (the whole upload) included.
    pub ingest: Duration,
    /// Longest wait for a row or table lock (SQLite: for the write lock).
    pub lock: Duration,
    /// Longest a transaction may sit idle between statements.
    pub idle_in_transaction: Duration,
}

impl Budgets {
    pub fn statement(&self, kind: TxnKind) -> Duration {
        match kind {
            TxnKind::Read => self.read,
            TxnKind::Analytics => self.analytics,
            TxnKind::Write => self.write,
            TxnKind::Ingest => self.ingest,
        }
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            read: Duration::from_secs(5),
            analytics: Duration::from_secs(30),
            write: Duration::from_secs(30),
            ingest: Duration::from_secs(300),
            lock: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_share_is_rounded_up_and_never_zero() {
        let mut settings = DbSettings::new("sqlite::memory:", 10);
        assert_eq!(settings.tenant_connections(10), 5);
        settings.tenant_share_percent = 33;
        assert_eq!(settings.tenant_connections(10), 4);
        assert_eq!(settings.tenant_connections(1), 1);
        settings.tenant_share_percent = 0;
        assert_eq!(settings.tenant_connections(10), 1);
        settings.tenant_share_percent = 100;
        assert_eq!(settings.tenant_connections(10), 10);
        assert_eq!(settings.tenant_analytics(10), 2);
        assert_eq!(settings.tenant_analytics(4), 1);
    }
}
