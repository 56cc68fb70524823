//! Live events for subscriptions: drift alerts and training-job changes.
//!
//! The drift-alert outbox (`mlgate_alert_events`, numbered per tenant in
//! commit order) is the source of truth; everything here only decides when
//! to read it. A write wakes the tenant's [`Feed`] — through PostgreSQL
//! `NOTIFY`, so every gateway process wakes (see `listener.rs`), or directly
//! on SQLite, which has one process. The feed reads the new events once,
//! under the tenant's scope, and broadcasts them to the tenant's
//! subscriptions on this process; each subscription delivers the events
//! after its own cursor, reading any gap itself (see `streams.rs`). So an
//! alert reaches every matching subscriber exactly once and in order,
//! whatever notifications are lost, repeated or coalesced, and a backlog
//! waits in the database rather than in memory.

mod hearing;
mod listener;
pub mod streams;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sea_orm::DbBackend;
use tokio::sync::{broadcast, Notify};
use tokio::task::AbortHandle;

use crate::db::{Database, Scoped};
use crate::keyed::Keyed;
use crate::store::alerts::{self, AlertEvent};
use crate::telemetry::metrics::{metrics, Held, Metrics, SubscriptionLabels};

/// How recently the listener must have heard its heartbeat for this process
/// to count as knowing every other process's revocations: one heartbeat
/// period and a second for its round trip.
pub const REVOCATIONS_CURRENT_WITHIN: Duration =
    Duration::from_secs(listener::HEARTBEAT.as_secs() + 1);

/// Events read from the outbox per query.
const READ_PAGE: u64 = 500;

/// Batches a feed keeps for subscriptions that are behind; one further
/// behind reads what it missed from the database.
const FEED_CAPACITY: usize = 64;

/// The process's live-event hub. Cheap to clone; holds nothing tenant-bearing
/// beyond the feeds of tenants that have subscribers right now.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    backend: DbBackend,
    feeds: Keyed<Feed>,
    connections: AtomicUsize,
    subscriptions: AtomicUsize,
    /// Revoked API keys (`None`: revocations may have been missed).
    revocations: broadcast::Sender<Revocation>,
    /// Called at once, before a revocation is broadcast.
    revocation_hooks: Mutex<Vec<RevocationHook>>,
    /// PostgreSQL: whether, and when last, the notification listener heard
    /// its own heartbeat.
    hearing: Arc<hearing::Hearing>,
}

/// An API key that was revoked or deleted; `None` when revocations may have
/// been missed (the notification connection was lost), so every credential
/// must be checked again.
pub type Revocation = Option<uuid::Uuid>;

type RevocationHook = Arc<dyn Fn(Revocation) + Send + Sync>;

/// Revocations a slow WebSocket may fall behind by before it re-checks its
/// credentials instead (a lagged receiver cannot know which it missed).
const REVOCATION_CAPACITY: usize = 256;

/// New drift-alert events of one tenant: those numbered `after + 1 ..= to`.
#[derive(Debug)]
pub struct AlertBatch {
    pub after: i64,
    pub to: i64,
    pub events: Vec<AlertEvent>,
}

/// One tenant's live events on this process, shared by its subscriptions
/// and dropped with the last of them.
pub struct Feed {
    alerts: broadcast::Sender<Arc<AlertBatch>>,
    jobs: broadcast::Sender<Arc<str>>,
    wake: Arc<Notify>,
    /// The last event number the reader has read (-1 until it started).
    position: Arc<AtomicI64>,
    reader: AbortHandle,
    _gauge: Held,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Feed {
    pub fn alerts(&self) -> broadcast::Receiver<Arc<AlertBatch>> {
        self.alerts.subscribe()
    }

    pub fn jobs(&self) -> broadcast::Receiver<Arc<str>> {
        self.jobs.subscribe()
    }

    /// The last event number the feed has read, once it started. It is
    /// published before the batch holding it is sent, so a subscription that
    /// subscribed first and reads it afterwards gets every later batch.
    pub fn position(&self) -> Option<i64> {
        Some(self.position.load(Ordering::SeqCst)).filter(|p| *p >= 0)
    }
}

impl Events {
    /// The hub of a server on `db`; on PostgreSQL it also starts listening
    /// for other writers' notifications. Every `sweep_every` (unless zero)
    /// each live feed looks at the outbox whether or not it was notified:
    /// the safety net for notifications lost on a dead connection, and on
    /// SQLite for alerts written by another process on the same file.
    pub fn start(db: &Database, sweep_every: Duration) -> Self {
        metrics().know_subscriptions(&[streams::DRIFT_ALERTS, streams::TRAINING_JOB_UPDATES]);
        let events = Self {
            inner: Arc::new(Inner {
                backend: db.backend(),
                feeds: Keyed::default(),
                connections: AtomicUsize::new(0),
                subscriptions: AtomicUsize::new(0),
                revocations: broadcast::channel(REVOCATION_CAPACITY).0,
                revocation_hooks: Mutex::default(),
                hearing: Arc::new(hearing::Hearing::new()),
            }),
        };
        if db.backend() == DbBackend::Postgres {
            listener::spawn(db, events.clone());
        }
        if !sweep_every.is_zero() {
            tokio::spawn(sweep(Arc::downgrade(&events.inner), sweep_every));
        }
        events
    }

    /// Whether notifications reach this process: on PostgreSQL, the listener
    /// heard its own heartbeat lately; SQLite (one process, woken directly)
    /// always.
    pub fn notifications_flowing(&self) -> bool {
        self.inner.backend != DbBackend::Postgres || self.inner.hearing.listening()
    }

    /// A test of whether every revocation committed by another process more
    /// than [`REVOCATIONS_CURRENT_WITHIN`] ago has reached this process: on
    /// PostgreSQL, the listener heard its own heartbeat within that time
    /// (see `hearing.rs`); SQLite has no other process to hear. It holds no
    /// reference to the hub, so whoever keeps it keeps no feed alive.
    pub fn revocations_current(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let hearing = self.inner.hearing.clone();
        let postgres = self.inner.backend == DbBackend::Postgres;
        move || !postgres || hearing.heard_within(REVOCATIONS_CURRENT_WITHIN)
    }

    /// The listener is listening anew, caught up as of now.
    pub(crate) fn listener_heard(&self) {
        self.heartbeat_heard(self.clock_ms());
    }

    /// The listener heard its own heartbeat, sent at `sent_ms`.
    pub(crate) fn heartbeat_heard(&self, sent_ms: u64) {
        if !self.inner.hearing.beat(sent_ms) {
            tracing::info!("notification listener hears its heartbeat");
        }
    }

    /// The process's heartbeat clock (see `hearing.rs`).
    pub(crate) fn clock_ms(&self) -> u64 {
        self.inner.hearing.now_ms()
    }

    /// The listener is being replaced.
    pub(crate) fn listener_lost(&self) {
        self.inner.hearing.lost();
    }

    /// The feed of `scoped`'s tenant, started if it has none on this process.
    pub fn feed(&self, scoped: &Scoped) -> Arc<Feed> {
        self.inner.feeds.get_or_insert_with(scoped.tenant(), || {
            let (alerts, _) = broadcast::channel(FEED_CAPACITY);
            let (jobs, _) = broadcast::channel(FEED_CAPACITY);
            let wake = Arc::new(Notify::new());
            let position = Arc::new(AtomicI64::new(-1));
            let reader = tokio::spawn(read_alerts(
                scoped.clone(),
                wake.clone(),
                position.clone(),
                alerts.clone(),
            ));
            Feed {
                alerts,
                jobs,
                wake,
                position,
                reader: reader.abort_handle(),
                _gauge: Metrics::hold(&metrics().alert_feeds),
            }
        })
    }

    fn live_feed(&self, tenant: &str) -> Option<Arc<Feed>> {
        self.inner.feeds.get(tenant)
    }

    /// New drift-alert events of `tenant` were committed.
    pub fn wake_alerts(&self, tenant: &str) {
        if let Some(feed) = self.live_feed(tenant) {
            feed.wake.notify_one();
        }
    }

    /// A training job of `tenant` was created or changed status.
    pub fn job_changed(&self, tenant: &str, job_id: &str) {
        if let Some(feed) = self.live_feed(tenant) {
            let _ = feed.jobs.send(Arc::from(job_id));
        }
    }

    /// Wakes every feed (notifications may have been lost).
    pub fn wake_all(&self) {
        for feed in self.inner.feeds.values() {
            feed.wake.notify_one();
        }
    }

    /// The write path committed drift-alert events for `tenant`. On
    /// PostgreSQL the table's trigger notifies every process, this one
    /// included; on SQLite this process is the only one and is woken here.
    pub fn alerts_committed(&self, tenant: &str) {
        if self.inner.backend != DbBackend::Postgres {
            self.wake_alerts(tenant);
        }
    }

    /// The write path created or moved a training job (see [`Events::alerts_committed`]).
    pub fn job_committed(&self, tenant: &str, job_id: &str) {
        if self.inner.backend != DbBackend::Postgres {
            self.job_changed(tenant, job_id);
        }
    }

    /// Runs `hook` on every revocation, synchronously, before it is broadcast
    /// (the credential cache forgets the key this way).
    pub fn on_revocation(&self, hook: impl Fn(Revocation) + Send + Sync + 'static) {
        self.inner
            .revocation_hooks
            .lock()
            .expect("hooks lock")
            .push(Arc::new(hook));
    }

    /// API key `key` was revoked (or `None`: revocations may have been
    /// missed). Called by this process's revoking write, and on PostgreSQL
    /// by the listener for every process's revocations.
    pub fn key_revoked(&self, key: Revocation) {
        let hooks: Vec<RevocationHook> = self
            .inner
            .revocation_hooks
            .lock()
            .expect("hooks lock")
            .clone();
        for hook in hooks {
            hook(key);
        }
        let _ = self.inner.revocations.send(key);
    }

    /// Revocations from now on, for an open WebSocket connection.
    pub fn revocations(&self) -> broadcast::Receiver<Revocation> {
        self.inner.revocations.subscribe()
    }

    /// Counts an open WebSocket connection until the guard is dropped.
    pub fn connection_opened(&self, tenant: &str) -> Counted {
        let connections = self.inner.connections.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            tenant,
            connections,
            subscriptions = self.inner.subscriptions.load(Ordering::Relaxed),
            "websocket connection opened"
        );
        Counted {
            events: self.clone(),
            kind: Kind::Connection,
            _gauge: Metrics::hold(&metrics().ws_connections),
        }
    }

    /// Counts a running subscription until the guard is dropped.
    pub fn subscription_started(&self, field: &'static str) -> Counted {
        let subscriptions = self.inner.subscriptions.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            field,
            subscriptions,
            connections = self.inner.connections.load(Ordering::Relaxed),
            "subscription started"
        );
        Counted {
            events: self.clone(),
            kind: Kind::Subscription,
            _gauge: Metrics::hold(
                &metrics()
                    .subscriptions
                    .get_or_create(&SubscriptionLabels { field }),
            ),
        }
    }
}

enum Kind {
    Connection,
    Subscription,
}

/// Keeps a connection or subscription counted while it lives.
pub struct Counted {
    events: Events,
    kind: Kind,
    _gauge: Held,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let inner = &self.events.inner;
        let (connections, subscriptions) = match self.kind {
            Kind::Connection => (
                inner.connections.fetch_sub(1, Ordering::Relaxed) - 1,
                inner.subscriptions.load(Ordering::Relaxed),
            ),
            Kind::Subscription => (
                inner.connections.load(Ordering::Relaxed),
                inner.subscriptions.fetch_sub(1, Ordering::Relaxed) - 1,
            ),
        };
        let what = match self.kind {
            Kind::Connection => "websocket connection closed",
            Kind::Subscription => "subscription ended",
        };
        tracing::info!(connections, subscriptions, "{what}");
    }
}

/// Wakes every live feed every `every`, while the hub lives.
async fn sweep(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        Events { inner }.wake_all();
    }
}

/// A feed's reader: on each wake, reads the tenant's events after the last
/// one it read and broadcasts them. It starts after the tenant's latest event
/// and says so with an empty batch: a subscription whose cursor is older
/// (events committed while the feed started) then reads the gap itself.
/// Subscriptions joining a running feed subscribe before reading their
/// cursor, so nothing the feed read earlier is after it.
async fn read_alerts(
    scoped: Scoped,
    wake: Arc<Notify>,
    published: Arc<AtomicI64>,
    alerts: broadcast::Sender<Arc<AlertBatch>>,
) {
    let mut position = loop {
        match alerts::last_seq(&scoped).await {
            Ok(position) => break position,
            Err(e) => {
                tracing::warn!(error = ?e, "alert feed cannot read its position; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    published.store(position, Ordering::SeqCst);
    let _ = alerts.send(Arc::new(AlertBatch {
        after: position,
        to: position,
        events: Vec::new(),
    }));
    loop {
        wake.notified().await;
        loop {
            match alerts::after(&scoped, position, READ_PAGE).await {
                Ok(events) => {
                    let Some(to) = events.last().map(|e| e.seq) else {
                        break;
                    };
                    let full = events.len() as u64 == READ_PAGE;
                    metrics().outbox_read.inc_by(events.len() as u64);
                    published.store(to, Ordering::SeqCst);
                    // No receivers is fine: subscriptions come and go.
                    let _ = alerts.send(Arc::new(AlertBatch {
                        after: position,
                        to,
                        events,
                    }));
                    position = to;
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "alert feed cannot read new events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    wake.notify_one();
                    break;
                }
            }
        }
    }
}
