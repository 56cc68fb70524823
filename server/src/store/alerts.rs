//! The drift-alert outbox: one event per stored drift metric whose alert
//! triggered, numbered 1, 2, 3, … per tenant in commit order (see migration
//! 000008), read by number, which is what makes delivery resumable and
//! exactly-once. Written by `write::alerts`.

use entity::alert_event;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::db::Scoped;
use crate::error::ApiResult;

/// A drift-alert event with the metric that raised it.
#[derive(Clone, Debug)]
pub struct AlertEvent {
    /// The event's number within its tenant.
    pub seq: i64,
    pub raised_at: chrono::DateTime<chrono::Utc>,
    pub metric: entity::drift_metric::Model,
}

/// The tenant's events numbered after `after`, oldest first, at most
/// `limit` of them.
pub async fn after(scoped: &Scoped, after: i64, limit: u64) -> ApiResult<Vec<AlertEvent>> {
    let txn = scoped.begin().await?;
    let rows = super::tenant_rows::<alert_event::Entity>(&txn)
        .filter(alert_event::Column::Seq.gt(after))
        .order_by_asc(alert_event::Column::Seq)
        .limit(limit)
        .find_also_related(entity::drift_metric::Entity)
        .all(txn.conn())
        .await?;
    txn.commit().await?;
    Ok(rows
        .into_iter()
        // The foreign key cascades, so an event always has its metric.
        .filter_map(|(event, metric)| {
            Some(AlertEvent {
                seq: event.seq,
                raised_at: event.created_at,
                metric: metric?,
            })
        })
        .collect())
}

/// The number of the tenant's last committed event (0 before the first).
pub async fn last_seq(scoped: &Scoped) -> ApiResult<i64> {
    let txn = scoped.begin().await?;
    let last: Option<Option<i64>> = super::tenant_rows::<alert_event::Entity>(&txn)
        .select_only()
        .column_as(alert_event::Column::Seq.max(), "last")
        .into_tuple()
        .one(txn.conn())
        .await?;
    txn.commit().await?;
    Ok(last.flatten().unwrap_or(0))
}
