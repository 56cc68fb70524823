//! PostgreSQL `LISTEN` for the notifications of migrations 000009 and
//! 000012, on one pooled connection per gateway process. A notification
//! only says which tenant to wake (or which key was revoked); after a lost
//! connection every feed is woken and every credential re-checked, since
//! notifications sent meanwhile are gone (the feeds read from their
//! position, so nothing is lost or repeated).
//!
//! A connection can also die silently (a network path that stops
//! forwarding, with no reset). So the process notifies itself every
//! [`HEARTBEAT`] on a channel of its own, through the ordinary pool; a
//! listener that hears nothing for [`SILENCE`] is dropped and opened anew,
//! and until it hears its own heartbeat again `/ready` says so. Meanwhile
//! the periodic outbox sweep (see `Events::start`) keeps alerts flowing.

use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::sqlx::PgPool;
use serde::Deserialize;

use super::Events;
use crate::db::Database;

const ALERTS_CHANNEL: &str = "mlgate_alerts";
const JOBS_CHANNEL: &str = "mlgate_jobs";
const KEYS_CHANNEL: &str = "mlgate_keys";
const HEARTBEAT_CHANNEL: &str = "mlgate_heartbeat";

/// How often the process notifies itself.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a listener may hear nothing, not even its own heartbeat,
/// before it counts as dead.
pub(super) const SILENCE: Duration = Duration::from_secs(6);

#[derive(Deserialize)]
struct JobChange {
    tenant: String,
    job: String,
}

/// Listens until the pool closes (the server stops), and sends the heartbeat.
pub(super) fn spawn(db: &Database, events: Events) {
    let pool = db.unscoped().get_postgres_connection_pool().clone();
    // Each process hears only its own heartbeat. It goes through the
    // authentication pool: tenant load on the main pool must not delay it
    // (a late heartbeat turns the credential cache off, see `hearing.rs`).
    let beat = uuid::Uuid::new_v4().simple().to_string();
    tokio::spawn(heartbeat(
        db.auth_pool().get_postgres_connection_pool().clone(),
        beat.clone(),
        events.clone(),
    ));
    tokio::spawn(async move {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(e) if pool.is_closed() => {
                    tracing::debug!(error = %e, "notification listener stops with the pool");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the notification listener; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener
                .listen_all([
                    ALERTS_CHANNEL,
                    JOBS_CHANNEL,
                    KEYS_CHANNEL,
                    HEARTBEAT_CHANNEL,
                ])
                .await
            {
                tracing::warn!(error = %e, "cannot LISTEN; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            tracing::info!("listening for alert, job and key notifications");
            // Anything committed before LISTEN took effect was not notified.
            // Caught up before readiness says the listener is heard.
            events.wake_all();
            events.key_revoked(None);
            events.listener_heard();
            let mut heard = tokio::time::Instant::now();
            loop {
                let received = tokio::select! {
                    received = listener.try_recv() => received,
                    () = tokio::time::sleep_until(heard + SILENCE) => {
                        // Dropped, not reused: a receive cut short may have
                        // left the connection mid-message.
                        tracing::warn!(silent_secs = SILENCE.as_secs(), "notification listener heard nothing, not even its heartbeat; reconnecting");
                        events.listener_lost();
                        break;
                    }
                };
                match received {
                    Ok(Some(notification)) => {
                        heard = tokio::time::Instant::now();
                        match notification.channel() {
                            ALERTS_CHANNEL => events.wake_alerts(notification.payload()),
                            JOBS_CHANNEL => {
                                match serde_json::from_str::<JobChange>(notification.payload()) {
                                    Ok(change) => events.job_changed(&change.tenant, &change.job),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "malformed job notification")
                                    }
                                }
                            }
                            KEYS_CHANNEL => match notification.payload().parse() {
                                Ok(key) => events.key_revoked(Some(key)),
                                Err(e) => {
                                    tracing::warn!(error = %e, "malformed key notification");
                                    events.key_revoked(None);
                                }
                            },
                            HEARTBEAT_CHANNEL => {
                                if let Some(sent) = sent_at(notification.payload(), &beat) {
                                    events.heartbeat_heard(sent);
                                }
                            }
                            other => tracing::debug!(channel = other, "notification ignored"),
                        }
                    }
                    // The connection was lost and has been re-established.
                    Ok(None) => {
                        tracing::warn!("notification connection lost; waking every feed");
                        heard = tokio::time::Instant::now();
                        events.wake_all();
                        events.key_revoked(None);
                    }
                    Err(e) => {
                        if pool.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, "notification listener failed; reconnecting");
                        events.listener_lost();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    });
}

/// When this process sent a heartbeat `payload` (`<beat>:<ms>`), if it is
/// one of its own.
fn sent_at(payload: &str, beat: &str) -> Option<u64> {
    payload.strip_prefix(beat)?.strip_prefix(':')?.parse().ok()
}

/// Notifies this process's own listener every [`HEARTBEAT`], through
/// `pool`, until the pool closes. Each carries the time it was sent, taken
/// before it waits for a connection: a heartbeat heard vouches only for the
/// notifications committed before it was sent (see `hearing.rs`).
async fn heartbeat(pool: PgPool, beat: String, events: Events) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let payload = format!("{beat}:{}", events.clock_ms());
        let sent = tokio::time::timeout(
            HEARTBEAT,
            sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
                .bind(HEARTBEAT_CHANNEL)
                .bind(&payload)
                .execute(&pool),
        )
        .await;
        if !matches!(sent, Ok(Ok(_))) {
            tracing::debug!("listener heartbeat not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sent_at;

    #[test]
    fn only_its_own_heartbeats_count() {
        assert_eq!(sent_at("abc:1234", "abc"), Some(1234));
        assert_eq!(sent_at("abd:1234", "abc"), None);
        assert_eq!(sent_at("abc1234", "abc"), None);
        assert_eq!(sent_at("abc:", "abc"), None);
    }
}
