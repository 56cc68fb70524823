//! PostgreSQL `LISTEN` for the notifications of migration 000009, on one
//! pooled connection per gateway process. A notification only says which
//! tenant to wake; after a lost connection every feed is woken, since
//! notifications sent meanwhile are gone (the feeds read from their
//! position, so nothing is lost or repeated).

use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use serde::Deserialize;

use super::Events;
use crate::db::Database;

const ALERTS_CHANNEL: &str = "mlgate_alerts";
const JOBS_CHANNEL: &str = "mlgate_jobs";
const KEYS_CHANNEL: &str = "mlgate_keys";

#[derive(Deserialize)]
struct JobChange {
    tenant: String,
    job: String,
}

/// Listens until the pool closes (the server stops).
pub(super) fn spawn(db: &Database, events: Events) {
    let pool = db.unscoped().get_postgres_connection_pool().clone();
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
                .listen_all([ALERTS_CHANNEL, JOBS_CHANNEL, KEYS_CHANNEL])
                .await
            {
                tracing::warn!(error = %e, "cannot LISTEN; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            tracing::info!("listening for alert, job and key notifications");
            // Anything committed before LISTEN took effect was not notified.
            events.wake_all();
            events.key_revoked(None);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => match notification.channel() {
                        ALERTS_CHANNEL => events.wake_alerts(notification.payload()),
                        JOBS_CHANNEL => {
                            match serde_json::from_str::<JobChange>(notification.payload()) {
                                Ok(change) => events.job_changed(&change.tenant, &change.job),
                                Err(e) => tracing::warn!(error = %e, "malformed job notification"),
                            }
                        }
                        KEYS_CHANNEL => match notification.payload().parse() {
                            Ok(key) => events.key_revoked(Some(key)),
                            Err(e) => {
                                tracing::warn!(error = %e, "malformed key notification");
                                events.key_revoked(None);
                            }
                        },
                        other => tracing::debug!(channel = other, "notification ignored"),
                    },
                    // The connection was lost and has been re-established.
                    Ok(None) => {
                        tracing::warn!("notification connection lost; waking every feed");
                        events.wake_all();
                        events.key_revoked(None);
                    }
                    Err(e) => {
                        if pool.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, "notification listener failed; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    });
}
