//! The drift-alert outbox: one event per stored drift metric whose alert
//! triggered, numbered 1, 2, 3, … per tenant in commit order (see migration
//! 000008). Written in the transaction that stores the metrics; read by
//! number, which is what makes delivery resumable and exactly-once.

use entity::{alert_event, alert_sequence};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};

use super::{insert_many, now};
use crate::db::{Scoped, ScopedTxn};
use crate::error::ApiResult;

/// Writes one event per metric id, in the given order, numbered after the
/// tenant's last event; returns the numbers. The sequence row's lock is held
/// until commit, so concurrent writers of one tenant number their events in
/// commit order and a reader resuming after number n misses nothing.
pub async fn raise(txn: &ScopedTxn, metric_ids: &[&str]) -> Result<Vec<i64>, DbErr> {
    if metric_ids.is_empty() {
        return Ok(Vec::new());
    }
    let count = metric_ids.len() as i64;
    let mut claim = alert_sequence::Entity::insert(alert_sequence::ActiveModel {
        tenant_id: Set(txn.tenant().to_owned()),
        last_seq: Set(count),
    });
    claim.query().on_conflict(
        OnConflict::column(alert_sequence::Column::TenantId)
            .value(
                alert_sequence::Column::LastSeq,
                Expr::col((alert_sequence::Entity, alert_sequence::Column::LastSeq)).add(count),
            )
            .to_owned(),
    );
    claim.query().returning_col(alert_sequence::Column::LastSeq);
    let returned = txn.query_all(claim.build(txn.backend())).await?;
    let last: i64 = returned
        .first()
        .ok_or_else(|| DbErr::Custom("the alert sequence returned no row".into()))?
        .try_get_by_index(0)?;
    let first = last - count + 1;
    let created_at = now();
    let events: Vec<alert_event::ActiveModel> = metric_ids
        .iter()
        .zip(first..)
        .map(|(metric_id, seq)| alert_event::ActiveModel {
            tenant_id: Set(txn.tenant().to_owned()),
            seq: Set(seq),
            metric_id: Set((*metric_id).to_owned()),
            created_at: Set(created_at),
        })
        .collect();
    insert_many(txn, events).await?;
    Ok((first..=last).collect())
}

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
