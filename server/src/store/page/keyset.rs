//! The keyset SQL: the condition after (or before) a cursor, the order,
//! and one page per parent in one statement, the place where PostgreSQL
//! (`LATERAL`) and SQLite (`ROW_NUMBER()`) differ.

use sea_orm::sea_query::{Alias, Asterisk, Condition, Expr, ExprTrait, NullOrdering, Order, Query};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryTrait, Select, Statement, Value};

use super::*;

/// PostgreSQL: each parent's window as a `LATERAL` subquery, ordered and
/// limited like a single page, so it walks the keyset index and stops after
/// a page (rather than numbering every child row of every parent). Rows come
/// out parent by parent, each parent's in the window's order.
pub(super) fn lateral_pages<E, C, P>(window: Select<E>, parent: &C, parents: &[P]) -> Statement
where
    E: EntityTrait,
    C: ColumnTrait,
    P: Into<Value> + Clone,
{
    let mut inner = window.into_query();
    inner.and_where(Expr::cust(format!(
        "{} = \"_p\".\"_parent\"",
        qualified(parent)
    )));
    let inner = DbBackend::Postgres.build(&inner);
    let mut values = inner.values.map(|v| v.0).unwrap_or_default();
    let first = values.len() + 1;
    let rows = (first..first + parents.len())
        .map(|n| format!("(${n})"))
        .collect::<Vec<_>>()
        .join(", ");
    values.extend(parents.iter().cloned().map(Into::into));
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT \"_w\".*, \"_p\".\"_parent\" AS \"_parent\" FROM (VALUES {rows}) AS \"_p\"(\"_parent\") \
             CROSS JOIN LATERAL ({}) AS \"_w\"",
            inner.sql
        ),
        values,
    )
}

/// SQLite (no `LATERAL`): the parents' rows numbered per parent in the
/// window's order, the first page's worth of each kept.
pub(super) fn numbered_pages<E, C, P>(
    base: Select<E>,
    parent: &C,
    parents: &[P],
    sort: &Sort<E>,
    window: &Window,
    cursor: Option<&[Option<Value>]>,
) -> Statement
where
    E: EntityTrait,
    C: ColumnTrait,
    P: Into<Value> + Clone,
{
    let mut inner = base.into_query();
    inner.and_where(Expr::col(parent.as_column_ref()).is_in(parents.iter().cloned()));
    if let Some(values) = cursor {
        inner.cond_where(keyset_condition(&sort.keys, values, window.is_forward()));
    }
    let order_sql = sort
        .keys
        .iter()
        .map(|(column, order)| {
            let (order, nulls) = query_order(column, order, window.is_forward());
            format!(
                "{} {}{}",
                qualified(column),
                if matches!(order, Order::Asc) {
                    "ASC"
                } else {
                    "DESC"
                },
                match nulls {
                    Some(NullOrdering::Last) => " NULLS LAST",
                    Some(NullOrdering::First) => " NULLS FIRST",
                    None => "",
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    inner
        .expr_as(Expr::col(parent.as_column_ref()), Alias::new("_parent"))
        .expr_as(
            Expr::cust(format!(
                "ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {order_sql})",
                qualified(parent)
            )),
            Alias::new("_rn"),
        );
    let mut outer = Query::select();
    outer
        .column(Asterisk)
        .from_subquery(inner, Alias::new("_window"))
        .and_where(Expr::col(Alias::new("_rn")).lte((window.limit() + 1) as i64))
        .order_by(Alias::new("_parent"), Order::Asc)
        .order_by(Alias::new("_rn"), Order::Asc);
    DbBackend::Sqlite.build(&outer)
}

pub(super) fn qualified<C: ColumnTrait>(column: &C) -> String {
    format!("\"{}\".\"{}\"", column.entity_name(), column.as_str())
}

/// The SQL order for a key: forward is the list's order with NULLs last;
/// backward reads the same order in reverse. NOT NULL columns get no NULLS
/// clause, so the backend's default matches the keyset indexes (a
/// PostgreSQL index cannot serve `id DESC NULLS LAST` when built `id DESC`).
pub(super) fn query_order<C: ColumnTrait>(
    column: &C,
    order: &Order,
    forward: bool,
) -> (Order, Option<NullOrdering>) {
    let (order, nulls) = match (order, forward) {
        (Order::Asc, true) => (Order::Asc, NullOrdering::Last),
        (_, true) => (Order::Desc, NullOrdering::Last),
        (Order::Asc, false) => (Order::Desc, NullOrdering::First),
        (_, false) => (Order::Asc, NullOrdering::First),
    };
    (order, column.def().is_null().then_some(nulls))
}

/// Rows strictly after (`forward`) or before the cursor position, in the
/// list's order with NULLs last:
/// `k1 beyond v1 OR (k1 = v1 AND k2 beyond v2) OR …`.
pub(super) fn keyset_condition<C: ColumnTrait>(
    keys: &[(C, Order)],
    values: &[Option<Value>],
    forward: bool,
) -> Condition {
    let mut any = Condition::any();
    let mut terms = 0;
    for i in 0..keys.len() {
        let mut all = Condition::all();
        for ((column, _), value) in keys[..i].iter().zip(values) {
            let col = Expr::col(column.as_column_ref());
            all = all.add(match value {
                Some(v) => col.eq(v.clone()),
                None => col.is_null(),
            });
        }
        let (column, order) = &keys[i];
        let col = Expr::col(column.as_column_ref());
        let nullable = column.def().is_null();
        let ascending = matches!(order, Order::Asc);
        let step = match (&values[i], forward) {
            // Nothing sorts after NULL going forward (NULLs are last).
            (None, true) => continue,
            // Every non-NULL sorts before a NULL.
            (None, false) => Condition::all().add(col.is_not_null()),
            (Some(v), true) => {
                let beyond = if ascending {
                    col.clone().gt(v.clone())
                } else {
                    col.clone().lt(v.clone())
                };
                if nullable {
                    Condition::any().add(beyond).add(col.is_null())
                } else {
                    Condition::all().add(beyond)
                }
            }
            (Some(v), false) => Condition::all().add(if ascending {
                col.lt(v.clone())
            } else {
                col.gt(v.clone())
            }),
        };
        any = any.add(all.add(step));
        terms += 1;
    }
    if terms == 0 {
        Condition::all().add(Expr::cust("1 = 0"))
    } else {
        any
    }
}

/// A decimal bound for comparison with a DECIMAL column: exact on
/// PostgreSQL; on SQLite, where such columns are REAL, as the same double.
pub fn number_value(decimal: rust_decimal::Decimal, backend: DbBackend) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    match backend {
        DbBackend::Sqlite => Value::from(decimal.to_f64().unwrap_or(f64::NAN)),
        _ => Value::from(decimal),
    }
}
