//! The data layer: plain functions over a tenant-scoped handle. Each call
//! runs in one transaction of its own (on PostgreSQL: under RLS for the
//! caller's tenant), so count and page of one list see the same snapshot.

pub mod configurations;
pub mod drift;
pub mod features;
pub mod feedback;
pub mod filter;
pub mod models;
pub mod page;
pub mod predictions;
pub mod tenant;
pub mod training;

use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, SubsecRound, Utc};

pub use filter::{Direction, NumberRange, OrderBy, TimeRange};
pub use page::{Page, PageArgs, PageLimits, Want, Window};

/// The current time at the precision both backends store (microseconds), so
/// a value written and read back compares equal on PostgreSQL and SQLite.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// One list request: filter, ordering, page window and what is selected.
/// Equal requests compare equal (by their rendering, since filters hold
/// floats), which is what lets a DataLoader batch the parents of one
/// nested list into one statement.
#[derive(Clone, Debug)]
pub struct ListQuery<F, O> {
    pub filter: F,
    pub order: OrderBy<O>,
    pub window: Window,
    pub want: Want,
    identity: String,
}

impl<F: Debug, O: Debug> ListQuery<F, O> {
    pub fn new(filter: F, order: OrderBy<O>, window: Window, want: Want) -> Self {
        let identity = format!("{filter:?}|{order:?}|{window:?}|{want:?}");
        Self {
            filter,
            order,
            window,
            want,
            identity,
        }
    }
}

impl<F, O> PartialEq for ListQuery<F, O> {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}

impl<F, O> Eq for ListQuery<F, O> {}

impl<F, O> Hash for ListQuery<F, O> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity.hash(state);
    }
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
