//! The data layer: plain functions over a tenant-scoped transaction.

pub mod tenant;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision both backends store (microseconds), so
/// a value written and read back compares equal on PostgreSQL and SQLite.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Inserts rows in multi-row statements sized to stay under both backends'
/// bound-parameter limits.
pub async fn insert_many<A>(txn: &crate::db::ScopedTxn, rows: Vec<A>) -> Result<(), sea_orm::DbErr>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    use sea_orm::{EntityTrait, QueryTrait};
    const PARAMETERS_PER_STATEMENT: usize = 30_000;
    use sea_orm::Iterable;
    if rows.is_empty() {
        return Ok(());
    }
    let columns = <A::Entity as EntityTrait>::Column::iter().count().max(1);
    let chunk = (PARAMETERS_PER_STATEMENT / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<A> = rows.by_ref().take(chunk).collect();
        let statement = <A::Entity as EntityTrait>::insert_many(batch).build(txn.backend());
        txn.execute(statement).await?;
    }
    Ok(())
}
