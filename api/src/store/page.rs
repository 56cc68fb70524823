//! Keyset pagination shared by every list: validated page windows from Relay
//! arguments, opaque cursors bound to the tenant and the ordering that minted
//! them, and the SQL for one page (root lists) or one page per parent in a
//! single statement (nested lists, via `ROW_NUMBER() OVER (PARTITION BY …)`).
//!
//! Orderings always end in a column unique per tenant, so every row has one
//! position and a cursor names a place in the order rather than an offset:
//! rows inserted while a client pages shift nothing it has not seen yet.
//! NULLs sort last going forward, on both backends.

use std::collections::HashMap;
use std::hash::Hash;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::{Alias, Asterisk, Condition, Expr, ExprTrait, NullOrdering, Order, Query};
use sea_orm::{
    ColumnTrait, ColumnType, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IdenStatic,
    ModelTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
    Statement, TryGetable, Value,
};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::db::ScopedTxn;
use crate::error::{ApiError, ApiResult};

/// Page sizes: the size used when a client names none, and the most a
/// client may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimits {
    pub default_size: u64,
    pub max_size: u64,
}

impl PageLimits {
    pub const DEFAULT_SIZE: u64 = 20;
    pub const MAX_SIZE: u64 = 100;
}

impl Default for PageLimits {
    fn default() -> Self {
        Self {
            default_size: Self::DEFAULT_SIZE,
            max_size: Self::MAX_SIZE,
        }
    }
}

/// Relay arguments as the client sent them.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// A validated page request. Cursors stay opaque strings until a query
/// decodes them against its tenant and ordering.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    Forward { limit: u64, after: Option<String> },
    Backward { limit: u64, before: Option<String> },
}

impl Window {
    pub fn new(args: PageArgs, limits: PageLimits) -> ApiResult<Self> {
        let size = |name: &str, value: i32| -> ApiResult<u64> {
            if value < 0 {
                return Err(bad_input(name, format!("`{name}` cannot be negative")));
            }
            let value = value as u64;
            if value > limits.max_size {
                return Err(bad_input(
                    name,
                    format!(
                        "`{name}` is {value}, above the page size limit of {}",
                        limits.max_size
                    ),
                ));
            }
            Ok(value)
        };
        match args {
            PageArgs {
                first: Some(_),
                last: Some(_),
                ..
            } => Err(bad_input(
                "last",
                "pass `first` (with `after`) or `last` (with `before`), not both",
            )),
            PageArgs {
                last: Some(last),
                after: None,
                before,
                ..
            } => Ok(Window::Backward {
                limit: size("last", last)?,
                before,
            }),
            PageArgs {
                last: None,
                before: Some(before),
                after: None,
                first: None,
            } => Ok(Window::Backward {
                limit: limits.default_size,
                before: Some(before),
            }),
            PageArgs {
                first,
                after,
                before: None,
                last: None,
            } => Ok(Window::Forward {
                limit: match first {
                    Some(first) => size("first", first)?,
                    None => limits.default_size,
                },
                after,
            }),
            _ => Err(bad_input(
                "before",
                "`after` pages forward and `before` pages backward: pass one of them",
            )),
        }
    }

    fn limit(&self) -> u64 {
        match self {
            Window::Forward { limit, .. } | Window::Backward { limit, .. } => *limit,
        }
    }

    fn cursor(&self) -> Option<&str> {
        match self {
            Window::Forward { after, .. } => after.as_deref(),
            Window::Backward { before, .. } => before.as_deref(),
        }
    }

    fn is_forward(&self) -> bool {
        matches!(self, Window::Forward { .. })
    }
}

fn bad_input(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadUserInput {
        message: message.into(),
        field: Some(field.to_owned()),
    }
}

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

/// PostgreSQL: each parent's window as a `LATERAL` subquery, ordered and
/// limited like a single page, so it walks the keyset index and stops after
/// a page (rather than numbering every child row of every parent). Rows come
/// out parent by parent, each parent's in the window's order.
fn lateral_pages<E, C, P>(window: Select<E>, parent: &C, parents: &[P]) -> Statement
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
fn numbered_pages<E, C, P>(
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

fn qualified<C: ColumnTrait>(column: &C) -> String {
    format!("\"{}\".\"{}\"", column.entity_name(), column.as_str())
}

/// The SQL order for a key: forward is the list's order with NULLs last;
/// backward reads the same order in reverse. NOT NULL columns get no NULLS
/// clause, so the backend's default matches the keyset indexes (a
/// PostgreSQL index cannot serve `id DESC NULLS LAST` when built `id DESC`).
fn query_order<C: ColumnTrait>(
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
fn keyset_condition<C: ColumnTrait>(
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
    let edges = rows
        .into_iter()
        .map(|row| {
            let values = sort.keys.iter().map(|(c, _)| row.get(*c)).collect();
            (encode_cursor(tenant, &sort.tag, values), row)
        })
        .collect();
    Page {
        edges,
        has_next,
        has_previous,
        total,
    }
}

/// The cursor's JSON before base64: tenant fingerprint, ordering tag, key values.
#[derive(serde::Serialize, serde::Deserialize)]
struct CursorBody {
    t: String,
    o: String,
    k: Vec<Json>,
}

/// A short fingerprint of the tenant: a cursor minted for one tenant is
/// refused for any other, exactly like a malformed one.
fn tenant_fingerprint(tenant: &str) -> String {
    let digest = Sha256::digest(format!("mlgate-cursor\0{tenant}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn encode_cursor(tenant: &str, tag: &str, values: Vec<Value>) -> String {
    let body = CursorBody {
        t: tenant_fingerprint(tenant),
        o: tag.to_owned(),
        k: values.into_iter().map(value_to_json).collect(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).expect("cursor serializes"))
}

/// An opaque cursor for a position in one of a tenant's streams (`tag`
/// names the stream), in the format of page cursors.
pub fn encode_position(tenant: &str, tag: &str, position: i64) -> String {
    encode_cursor(tenant, tag, vec![Value::BigInt(Some(position))])
}

/// The position of a cursor made by [`encode_position`] for this tenant and
/// stream; `None` for anything else.
pub fn decode_position(cursor: &str, tenant: &str, tag: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let body: CursorBody = serde_json::from_slice(&bytes).ok()?;
    if body.t != tenant_fingerprint(tenant) || body.o != tag {
        return None;
    }
    match body.k.as_slice() {
        [position] => position.as_i64().filter(|p| *p >= 0),
        _ => None,
    }
}

fn value_to_json(value: Value) -> Json {
    match value {
        Value::String(Some(s)) => Json::String(s),
        Value::ChronoDateTimeUtc(Some(t)) => {
            // Full precision: on SQLite the comparison is textual, so the bound value
            // must render exactly as the stored one.
            Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        Value::Decimal(Some(d)) => Json::String(d.normalize().to_string()),
        Value::Uuid(Some(u)) => Json::String(u.to_string()),
        Value::Int(Some(i)) => Json::from(i),
        Value::BigInt(Some(i)) => Json::from(i),
        Value::Double(Some(f)) => Json::from(f),
        _ => Json::Null,
    }
}

fn decode_window_cursor<E: EntityTrait>(
    txn: &ScopedTxn,
    sort: &Sort<E>,
    window: &Window,
) -> ApiResult<Option<Vec<Option<Value>>>> {
    let Some(cursor) = window.cursor() else {
        return Ok(None);
    };
    let field = if window.is_forward() {
        "after"
    } else {
        "before"
    };
    decode_cursor(cursor, txn.tenant(), sort, txn.backend())
        .map(Some)
        .ok_or_else(|| {
            bad_input(
                field,
                format!("`{field}` is not a cursor of this list and ordering"),
            )
        })
}

fn decode_cursor<E: EntityTrait>(
    cursor: &str,
    tenant: &str,
    sort: &Sort<E>,
    backend: DbBackend,
) -> Option<Vec<Option<Value>>> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let body: CursorBody = serde_json::from_slice(&bytes).ok()?;
    if body.t != tenant_fingerprint(tenant) || body.o != sort.tag || body.k.len() != sort.keys.len()
    {
        return None;
    }
    sort.keys
        .iter()
        .zip(body.k)
        .map(|((column, _), json)| json_to_value(json, column.def().get_column_type(), backend))
        .collect()
}

/// A cursor value back as the column's type; `Some(None)` is SQL NULL and
/// `None` a value that does not fit the column (a forged cursor).
fn json_to_value(
    json: Json,
    column_type: &ColumnType,
    backend: DbBackend,
) -> Option<Option<Value>> {
    if let Json::Null = json {
        return Some(None);
    }
    let value = match column_type {
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => {
            Value::from(json.as_str()?.to_owned())
        }
        ColumnType::TimestampWithTimeZone | ColumnType::Timestamp | ColumnType::DateTime => {
            let time: DateTime<Utc> = DateTime::parse_from_rfc3339(json.as_str()?)
                .ok()?
                .with_timezone(&Utc);
            Value::from(time)
        }
        ColumnType::Decimal(_) | ColumnType::Money(_) => {
            let decimal: rust_decimal::Decimal = json.as_str()?.parse().ok()?;
            number_value(decimal, backend)
        }
        ColumnType::Uuid => Value::from(uuid::Uuid::parse_str(json.as_str()?).ok()?),
        ColumnType::Integer => Value::from(i32::try_from(json.as_i64()?).ok()?),
        ColumnType::BigInteger => Value::from(json.as_i64()?),
        _ => return None,
    };
    Some(Some(value))
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

#[cfg(test)]
mod tests {
    use super::*;
    use entity::prediction;

    #[test]
    fn positions_are_bound_to_their_tenant_and_stream() {
        let cursor = encode_position("alpha", "alerts", 42);
        assert_eq!(decode_position(&cursor, "alpha", "alerts"), Some(42));
        assert_eq!(decode_position(&cursor, "beta", "alerts"), None);
        assert_eq!(decode_position(&cursor, "alpha", "jobs"), None);
        assert_eq!(decode_position("garbage", "alpha", "alerts"), None);
        let negative = encode_position("alpha", "alerts", -1);
        assert_eq!(decode_position(&negative, "alpha", "alerts"), None);
    }

    fn limits() -> PageLimits {
        PageLimits {
            default_size: 20,
            max_size: 100,
        }
    }

    fn args(
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
    ) -> PageArgs {
        PageArgs {
            first,
            after: after.map(str::to_owned),
            last,
            before: before.map(str::to_owned),
        }
    }

    #[test]
    fn windows_follow_relay_arguments() {
        assert_eq!(
            Window::new(args(None, None, None, None), limits()).unwrap(),
            Window::Forward {
                limit: 20,
                after: None
            }
        );
        assert_eq!(
            Window::new(args(Some(5), Some("c"), None, None), limits()).unwrap(),
            Window::Forward {
                limit: 5,
                after: Some("c".into())
            }
        );
        assert_eq!(
            Window::new(args(None, None, Some(3), Some("c")), limits()).unwrap(),
            Window::Backward {
                limit: 3,
                before: Some("c".into())
            }
        );
        assert_eq!(
            Window::new(args(Some(100), None, None, None), limits()).unwrap(),
            Window::Forward {
                limit: 100,
                after: None
            }
        );
        for bad in [
            args(Some(101), None, None, None),
            args(Some(-1), None, None, None),
            args(Some(1), None, Some(1), None),
            args(Some(1), None, None, Some("c")),
            args(None, Some("c"), Some(1), None),
        ] {
            let error = Window::new(bad, limits()).unwrap_err();
            assert_eq!(error.code(), "BAD_USER_INPUT");
        }
    }

    #[test]
    fn cursors_are_bound_to_tenant_and_ordering() {
        let sort = Sort::<prediction::Entity>::by(
            prediction::Column::PredictionTimestamp,
            Order::Desc,
            prediction::Column::PredictionId,
        );
        let time: DateTime<Utc> = "2026-11-26T10:00:00.123456Z".parse().unwrap();
        let cursor = encode_cursor(
            "acme",
            &sort.tag,
            vec![Value::from(time), Value::from("pred-1".to_owned())],
        );
        let values = decode_cursor(&cursor, "acme", &sort, DbBackend::Postgres).unwrap();
        assert_eq!(
            values,
            vec![
                Some(Value::from(time)),
                Some(Value::from("pred-1".to_owned()))
            ]
        );
        assert!(decode_cursor(&cursor, "globex", &sort, DbBackend::Postgres).is_none());
        let other = Sort::<prediction::Entity>::by(
            prediction::Column::PredictionTimestamp,
            Order::Asc,
            prediction::Column::PredictionId,
        );
        assert!(decode_cursor(&cursor, "acme", &other, DbBackend::Postgres).is_none());
        assert!(decode_cursor("not-a-cursor", "acme", &sort, DbBackend::Postgres).is_none());
        let null_time = encode_cursor(
            "acme",
            &sort.tag,
            vec![
                Value::ChronoDateTimeUtc(None),
                Value::from("pred-2".to_owned()),
            ],
        );
        assert_eq!(
            decode_cursor(&null_time, "acme", &sort, DbBackend::Sqlite).unwrap()[0],
            None
        );
    }
}
