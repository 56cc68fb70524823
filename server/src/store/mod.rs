//! The read side (the store): plain functions over a tenant-scoped handle. Each call
//! runs in one transaction (on PostgreSQL: under RLS for the caller's tenant;
//! within a query operation, the operation's shared one, see `db/session.rs`),
//! with the tenant and time budgets set once for the transaction.

pub mod alerts;
pub mod analytics;
pub mod api_keys;
pub mod configurations;
pub mod drift;
pub mod features;
pub mod feedback;
pub mod filter;
pub mod models;
pub mod page;
pub mod predictions;
pub mod thresholds;
pub mod training;

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, ModelTrait, QueryFilter,
    QueryResult, QueryTrait, Select, TryGetable, Value,
};

pub use filter::{Direction, NumberRange, OrderBy, TimeRange};
pub use page::{Page, PageArgs, PageLimits, Want, Window};

use crate::db::{Scoped, ScopedTxn};
use crate::error::ApiResult;
use page::Sort;

/// A table whose rows belong to a tenant.
pub trait TenantOwned: EntityTrait {
    fn tenant_column() -> Self::Column;
}

macro_rules! tenant_owned {
    ($($module:ident),*) => {
        $(impl TenantOwned for entity::$module::Entity {
            fn tenant_column() -> Self::Column {
                entity::$module::Column::TenantId
            }
        })*
    };
}

tenant_owned!(
    configuration,
    training_job,
    model,
    prediction,
    feedback,
    feature_set,
    drift_metric,
    drift_threshold,
    api_key,
    alert_event,
    alert_sequence,
    monitor,
    webhook,
    webhook_delivery
);

/// The transaction's tenant's rows of `E`: where every query of tenant data
/// starts. (On PostgreSQL, RLS enforces the same underneath.)
pub fn tenant_rows<E: TenantOwned>(txn: &ScopedTxn) -> Select<E> {
    E::find().filter(E::tenant_column().eq(txn.tenant()))
}

/// The tenant's rows of `E` whose `column` is one of `keys`, by key; keys it
/// does not have are absent.
pub async fn rows_by_key<E, K>(
    scoped: &Scoped,
    column: E::Column,
    keys: &[K],
    key_of: impl Fn(&E::Model) -> K,
) -> ApiResult<HashMap<K, E::Model>>
where
    E: TenantOwned,
    K: Into<Value> + Clone + Eq + Hash,
{
    rows_by_key_reading::<E, K>(scoped, column, keys, key_of, |select, _| select).await
}

/// [`rows_by_key`] with the query shaped by `reading` (the columns it reads).
pub async fn rows_by_key_reading<E, K>(
    scoped: &Scoped,
    column: E::Column,
    keys: &[K],
    key_of: impl Fn(&E::Model) -> K,
    reading: impl Fn(Select<E>, sea_orm::DbBackend) -> Select<E>,
) -> ApiResult<HashMap<K, E::Model>>
where
    E: TenantOwned,
    K: Into<Value> + Clone + Eq + Hash,
{
    let txn = scoped.begin().await?;
    let found = keyed_rows_reading::<E, K>(&txn, column, keys, key_of, reading).await?;
    txn.commit().await?;
    Ok(found)
}

/// The tenant's rows of `E` whose `column` is one of `keys`, each handed to
/// `each` as it was read: `reading` shapes the query (another table joined
/// in, say) and `each` says what a row becomes (a joined row repeated down
/// the rows decoded once, say).
pub async fn rows_by_key_with<E, K>(
    scoped: &Scoped,
    column: E::Column,
    keys: &[K],
    reading: impl Fn(Select<E>, sea_orm::DbBackend) -> Select<E>,
    each: impl FnMut(QueryResult) -> Result<(), DbErr>,
) -> ApiResult<()>
where
    E: TenantOwned,
    K: Into<Value> + Clone,
{
    let txn = scoped.begin().await?;
    keyed_rows_with::<E, K>(&txn, column, keys, reading, each).await?;
    txn.commit().await?;
    Ok(())
}

/// [`rows_by_key`] inside an open transaction (a write resolving the
/// references of its input), in statements of at most [`MAX_KEYS`] keys.
pub async fn keyed_rows<E, K>(
    txn: &ScopedTxn,
    column: E::Column,
    keys: &[K],
    key_of: impl Fn(&E::Model) -> K,
) -> ApiResult<HashMap<K, E::Model>>
where
    E: TenantOwned,
    K: Into<Value> + Clone + Eq + Hash,
{
    keyed_rows_reading::<E, K>(txn, column, keys, key_of, |select, _| select).await
}

/// [`keyed_rows`] with each query shaped by `reading`.
async fn keyed_rows_reading<E, K>(
    txn: &ScopedTxn,
    column: E::Column,
    keys: &[K],
    key_of: impl Fn(&E::Model) -> K,
    reading: impl Fn(Select<E>, sea_orm::DbBackend) -> Select<E>,
) -> ApiResult<HashMap<K, E::Model>>
where
    E: TenantOwned,
    K: Into<Value> + Clone + Eq + Hash,
{
    let mut found = HashMap::with_capacity(keys.len());
    keyed_rows_with::<E, K>(txn, column, keys, reading, |row| {
        let model = E::Model::from_query_result(&row, "")?;
        found.insert(key_of(&model), model);
        Ok(())
    })
    .await?;
    Ok(found)
}

/// The one tenant-scoped keyed read under all of the above.
async fn keyed_rows_with<E, K>(
    txn: &ScopedTxn,
    column: E::Column,
    keys: &[K],
    reading: impl Fn(Select<E>, sea_orm::DbBackend) -> Select<E>,
    mut each: impl FnMut(QueryResult) -> Result<(), DbErr>,
) -> ApiResult<()>
where
    E: TenantOwned,
    K: Into<Value> + Clone,
{
    let backend = txn.backend();
    for chunk in keys.chunks(MAX_KEYS) {
        let select = tenant_rows::<E>(txn).filter(column.is_in(chunk.iter().cloned()));
        let statement = reading(select, backend).build(backend);
        for row in txn.conn().query_all_raw(statement).await? {
            each(row)?;
        }
    }
    Ok(())
}

/// The most keys bound in one `IN` list.
pub const MAX_KEYS: usize = crate::db::MAX_BOUND_PARAMETERS;

/// One page of a list in a transaction of its own: `base` gives the
/// tenant's rows matching the query's filter, `sort` its ordering.
pub async fn list_page<E, F, O>(
    scoped: &Scoped,
    query: &ListQuery<F, O>,
    base: impl FnOnce(&ScopedTxn, &F) -> ApiResult<Select<E>>,
    sort: impl FnOnce(OrderBy<O>) -> Sort<E>,
) -> ApiResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + ModelTrait<Entity = E> + Sized + Send + Sync,
    O: Copy,
{
    let txn = scoped.begin().await?;
    let base = base(&txn, &query.filter)?;
    let page = page::fetch_page(&txn, base, &sort(query.order), &query.window, query.want).await?;
    txn.commit().await?;
    Ok(page)
}

/// One page of a list per parent (rows whose `parent` column equals it), for
/// all `parents` at once, in a transaction of its own.
pub async fn child_pages<E, F, O, C, P>(
    scoped: &Scoped,
    query: &ListQuery<F, O>,
    base: impl FnOnce(&ScopedTxn, &F) -> ApiResult<Select<E>>,
    sort: impl FnOnce(OrderBy<O>) -> Sort<E>,
    parent: C,
    parents: &[P],
) -> ApiResult<HashMap<P, Page<E::Model>>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + ModelTrait<Entity = E> + Sized + Send + Sync,
    O: Copy,
    C: ColumnTrait,
    P: Into<Value> + TryGetable + Eq + Hash + Clone,
{
    let txn = scoped.begin().await?;
    let base = base(&txn, &query.filter)?;
    let pages = page::fetch_child_pages(
        &txn,
        base,
        parent,
        parents,
        &sort(query.order),
        &query.window,
        query.want,
    )
    .await?;
    txn.commit().await?;
    Ok(pages)
}

/// The current time at the precision both backends store (microseconds), so
/// a value written and read back compares equal on PostgreSQL and SQLite.
pub fn now() -> DateTime<Utc> {
    truncate_to_micros(Utc::now())
}

/// `time` at the precision both backends store (microseconds).
pub fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// One list request: filter, ordering, page window and what is selected.
/// Equal requests compare equal (by their rendering, since filters hold
/// floats), which is what lets a DataLoader batch the parents of one
/// nested list into one statement.
#[derive(Clone, Debug)]
pub struct ListQuery<F, O> {
    filter: F,
    order: OrderBy<O>,
    window: Window,
    want: Want,
    columns: Columns,
    identity: String,
}

impl<F: Debug, O: Debug> ListQuery<F, O> {
    pub fn new(filter: F, order: OrderBy<O>, window: Window, want: Want) -> Self {
        let mut query = Self {
            filter,
            order,
            window,
            want,
            columns: Columns::ALL,
            identity: String::new(),
        };
        query.identity = query.render();
        query
    }

    /// The same list reading only `columns` of the optional ones.
    pub fn with_columns(mut self, columns: Columns) -> Self {
        self.columns = columns;
        self.identity = self.render();
        self
    }

    fn render(&self) -> String {
        let Self {
            filter,
            order,
            window,
            want,
            columns,
            ..
        } = self;
        format!("{filter:?}|{order:?}|{window:?}|{want:?}|{columns:?}")
    }
}

impl<F, O> ListQuery<F, O> {
    pub fn filter(&self) -> &F {
        &self.filter
    }

    pub fn want(&self) -> Want {
        self.want
    }

    pub fn columns(&self) -> Columns {
        self.columns
    }
}

/// Which of a table's optional columns (large JSON, arrays) a selection
/// reads, as bits its store module defines; the others come back NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Columns(pub u16);

impl Columns {
    pub const ALL: Columns = Columns(u16::MAX);
    pub const NONE: Columns = Columns(0);

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    pub fn with(self, bit: u16) -> Columns {
        Columns(self.0 | bit)
    }

    pub fn union(self, other: Columns) -> Columns {
        Columns(self.0 | other.0)
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
