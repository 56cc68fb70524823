//! Drift monitors evaluated by the gateways themselves. Every gateway polls
//! for due monitors of every tenant (as the pool's own role: the monitor
//! table's tenant policy is not forced, like the API keys'), then evaluates
//! each in a transaction scoped to the monitor's tenant, which claims it
//! first (`evaluate.rs`). With several gateways on one database each slot
//! is evaluated once: the claim skips a monitor another gateway holds, and
//! the slot moves on in the transaction that writes its result. Webhook
//! deliveries queued by notifications are sent from the same loop
//! (`webhooks.rs`).

mod evaluate;
pub mod webhooks;

use std::time::Duration;

use chrono::Utc;

use crate::db::Database;
use crate::events::Events;
use crate::identity::Principal;

/// How the gateway evaluates monitors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorSettings {
    /// How often it looks for due monitors; `None`: it evaluates none.
    pub poll: Option<Duration>,
    /// The most monitors (and webhook deliveries) it takes per look.
    pub batch: u64,
    pub webhooks: webhooks::DeliverySettings,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            poll: Some(Duration::from_secs(1)),
            batch: 32,
            webhooks: webhooks::DeliverySettings::default(),
        }
    }
}

/// The running evaluation loop; dropping it stops the loop.
#[derive(Debug)]
pub struct Evaluator(tokio::task::JoinHandle<()>);

impl Drop for Evaluator {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the evaluation loop (when enabled).
pub fn start(db: Database, events: Events, settings: MonitorSettings) -> Option<Evaluator> {
    let poll = settings.poll?;
    let client = webhooks::client(settings.webhooks);
    Some(Evaluator(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            evaluate_due(&db, &events, settings.batch).await;
            webhooks::deliver_due(&db, &client, settings.webhooks, settings.batch).await;
        }
    })))
}

/// One look: every due monitor found, evaluated (errors logged; the slot
/// stays due and is tried at the next look).
pub async fn evaluate_due(db: &Database, events: &Events, batch: u64) -> usize {
    let now = crate::store::now();
    let due = match db.due_monitors(now, batch).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "looking for due monitors failed");
            return 0;
        }
    };
    let mut evaluated = 0;
    for (tenant, monitor_id) in due {
        let Ok(principal) = Principal::monitor(&tenant) else {
            continue;
        };
        let scoped = db.scoped(&principal);
        match evaluate::run(&scoped, &monitor_id, Utc::now()).await {
            Ok(Some(outcome)) => {
                evaluated += 1;
                if outcome.alerted {
                    events.alerts_committed(&tenant);
                }
                if let Some(job_id) = &outcome.job_id {
                    events.job_committed(&tenant, job_id);
                }
                tracing::info!(tenant, monitor = monitor_id, alerted = outcome.alerted, job = ?outcome.job_id, webhook = outcome.webhook, "monitor evaluated");
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(
                    tenant,
                    monitor = monitor_id,
                    ?error,
                    "monitor evaluation failed"
                );
            }
        }
    }
    evaluated
}
