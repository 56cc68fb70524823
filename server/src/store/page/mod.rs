//! Keyset pagination shared by every list: validated page windows from Relay
//! arguments, opaque cursors bound to the tenant and the ordering that minted
//! them, and the SQL for one page (root lists) or one page per parent in a
//! single statement (nested lists, via `ROW_NUMBER() OVER (PARTITION BY …)`).
//!
//! Orderings always end in a column unique per tenant, so every row has one
//! position and a cursor names a place in the order rather than an offset:
//! rows inserted while a client pages shift nothing it has not seen yet.
//! NULLs sort last going forward, on both backends.

mod cursor;
mod keyset;
mod window;

use std::collections::HashMap;
use std::hash::Hash;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IdenStatic, ModelTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, TryGetable, Value,
};

use crate::db::ScopedTxn;
use crate::error::ApiResult;
use cursor::{decode_window_cursor, encode_fingerprinted, tenant_fingerprint};
use keyset::{keyset_condition, lateral_pages, numbered_pages, query_order};

pub use cursor::{decode_position, encode_position};
pub use keyset::number_value;
pub use window::{PageArgs, PageLimits, Window};

/// What a connection's selection needs: rows (edges, nodes, page info)
/// and/or the total count. Neither query runs unless selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Want {
    pub rows: bool,
    pub count: bool,
}

/// An ordering of `E`'s rows: columns with directions, the last one unique
/// per tenant. `tag` names it inside cursors.
pub struct Sort<E: EntityTrait> {
    tag: String,
    keys: Vec<(E::Column, Order)>,
}

impl<E: EntityTrait> Sort<E> {
    /// Orders by `column` in `order`, ties broken by `unique` in the same order.
    pub fn by(column: E::Column, order: Order, unique: E::Column) -> Self {
        let mut keys = vec![(column, order.clone())];
        if column.as_str() != unique.as_str() {
            keys.push((unique, order.clone()));
        }
        let direction = if matches!(order, Order::Asc) {
            "asc"
        } else {
            "desc"
        };
        let tag = format!(
            "{}:{}:{direction}",
            E::default().table_name(),
            keys.iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        Self { tag, keys }
    }
}

/// One page of rows, each with its cursor.
#[derive(Clone, Debug)]
pub struct Page<M> {
    pub edges: Vec<(String, M)>,
    pub has_next: bool,
    pub has_previous: bool,
    /// Rows matching the filter, ignoring the window; `None` when not asked for.
    pub total: Option<u64>,
}

impl<M> Page<M> {
    pub fn empty(total: Option<u64>) -> Self {
        Self {
            edges: Vec::new(),
            has_next: false,
            has_previous: false,
            total,
        }
    }
}

/// One page of `base` (already filtered to the tenant and the client's filter).
pub async fn fetch_page<E>(
    txn: &ScopedTxn,
    base: Select<E>,
    sort: &Sort<E>,
    window: &Window,
    want: Want,
) -> ApiResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + ModelTrait<Entity = E> + Sized + Send + Sync,
{
    let total = if want.count {
        Some(base.clone().count(txn.conn()).await?)
    } else {
        None
    };
    if !want.rows {
        return Ok(Page::empty(total));
    }
    let cursor = decode_window_cursor(txn, sort, window)?;
    let rows = one_window(base, sort, window, cursor.as_deref())
        .all(txn.conn())
        .await?;
    Ok(into_page(
        txn.tenant(),
        sort,
        window,
        cursor.is_some(),
        rows,
        total,
    ))
}

/// The rows of `base` in the window: after (or before) the cursor, in the
/// window's order, one more than the page holds (to tell if there is more).
fn one_window<E: EntityTrait>(
    base: Select<E>,
    sort: &Sort<E>,
    window: &Window,
    cursor: Option<&[Option<Value>]>,
) -> Select<E> {
    let mut query = base;
    if let Some(values) = cursor {
        query = query.filter(keyset_condition(&sort.keys, values, window.is_forward()));
    }
    for (column, order) in &sort.keys {
        let (order, nulls) = query_order(column, order, window.is_forward());
        query = match nulls {
            Some(nulls) => query.order_by_with_nulls(*column, order, nulls),
            None => query.order_by(*column, order),
        };
    }
    query.limit(window.limit() + 1)
}

/// For each parent key, one page of the rows of `base` whose `parent`
/// column equals it: one statement for all parents (plus one for the counts
/// if asked), whatever their number.
pub async fn fetch_child_pages<E, C, P>(
    txn: &ScopedTxn,
    base: Select<E>,
    parent: C,
    parents: &[P],
    sort: &Sort<E>,
    window: &Window,
    want: Want,
) -> ApiResult<HashMap<P, Page<E::Model>>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + ModelTrait<Entity = E> + Sized + Send + Sync,
    C: ColumnTrait,
    P: Into<Value> + TryGetable + Eq + Hash + Clone,
{
    let mut totals: HashMap<P, u64> = HashMap::new();
    if want.count && !parents.is_empty() {
        let mut counts = base.clone().into_query();
        counts
            .clear_selects()
            .expr_as(Expr::col(parent.as_column_ref()), Alias::new("_parent"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("_count"))
            .and_where(Expr::col(parent.as_column_ref()).is_in(parents.iter().cloned()))
            .group_by_col(parent.as_column_ref());
        let statement = txn.backend().build(&counts);
        for row in txn.conn().query_all_raw(statement).await? {
            let key: P = row.try_get("", "_parent")?;
            let count: i64 = row.try_get("", "_count")?;
            totals.insert(key, count as u64);
        }
    }
    let total_of = |key: &P| want.count.then(|| totals.get(key).copied().unwrap_or(0));
    if !want.rows || parents.is_empty() {
        return Ok(parents
            .iter()
            .map(|p| (p.clone(), Page::empty(total_of(p))))
            .collect());
    }

    let cursor = decode_window_cursor(txn, sort, window)?;
    let statement = if txn.backend() == DbBackend::Postgres {
        lateral_pages(
            one_window(base, sort, window, cursor.as_deref()),
            &parent,
            parents,
        )
    } else {
        numbered_pages(base, &parent, parents, sort, window, cursor.as_deref())
    };

    let mut grouped: HashMap<P, Vec<E::Model>> = HashMap::new();
    for row in txn.conn().query_all_raw(statement).await? {
        let key: P = row.try_get("", "_parent")?;
        let model = E::Model::from_query_result(&row, "")?;
        grouped.entry(key).or_default().push(model);
    }
    Ok(parents
        .iter()
        .map(|p| {
            let rows = grouped.remove(p).unwrap_or_default();
            let page = into_page(
                txn.tenant(),
                sort,
                window,
                cursor.is_some(),
                rows,
                total_of(p),
            );
            (p.clone(), page)
        })
        .collect())
}

fn into_page<E>(
    tenant: &str,
    sort: &Sort<E>,
    window: &Window,
    had_cursor: bool,
    mut rows: Vec<E::Model>,
    total: Option<u64>,
) -> Page<E::Model>
where
    E: EntityTrait,
    E::Model: ModelTrait<Entity = E>,
{
    let limit = window.limit() as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let (has_next, has_previous) = if window.is_forward() {
        (more, had_cursor)
    } else {
        rows.reverse();
        (had_cursor, more)
    };
    let fingerprint = tenant_fingerprint(tenant);
    let edges = rows
        .into_iter()
        .map(|row| {
            let values = sort.keys.iter().map(|(c, _)| row.get(*c)).collect();
            (
                encode_fingerprinted(fingerprint.clone(), &sort.tag, values),
                row,
            )
        })
        .collect();
    Page {
        edges,
        has_next,
        has_previous,
        total,
    }
}
