//! Raising drift alerts: the outbox events, written in the transaction that
//! stores the metrics (see `store::alerts` for reading them).

use entity::{alert_event, alert_sequence};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{DbErr, EntityTrait, QueryTrait, Set};

use super::insert_many;
use crate::db::ScopedTxn;
use crate::store::now;

/// Writes one event per metric id, in the given order, numbered after the
/// tenant's last event; returns the numbers. The sequence row's lock is held
/// until commit, so concurrent writers of one tenant number their events in
/// commit order and a reader resuming after number n misses nothing.
pub(crate) async fn raise(txn: &ScopedTxn, metric_ids: &[&str]) -> Result<Vec<i64>, DbErr> {
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
