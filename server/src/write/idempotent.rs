//! Idempotent creates: a retried create is recognised by its business id
//! and fingerprint, and answered with what it stored the first time.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, FromQueryResult, IntoActiveModel, QueryTrait};
use serde_json::Value as Json;

use super::commit;
use super::validate::{refuse, round, Check, Checker};
use crate::db::{ScopedTxn, MAX_BOUND_PARAMETERS};
use crate::error::{ApiError, ApiResult, InputProblem, Refusal};
use crate::store::{keyed_rows, TenantOwned};

/// A row's client-given content in a comparable form: field name (as the
/// API spells it) → normalized value. Two writes with the same id are the
/// same write when their fingerprints agree.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fingerprint(BTreeMap<&'static str, Json>);

impl Fingerprint {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, field: &'static str, value: &str) -> Self {
        self.0.insert(field, Json::String(value.to_owned()));
        self
    }

    pub fn opt_text(mut self, field: &'static str, value: Option<&str>) -> Self {
        self.0
            .insert(field, value.map_or(Json::Null, |v| Json::String(v.into())));
        self
    }

    /// A decimal at its column's scale, whatever the backend returned
    /// (PostgreSQL keeps the scale, SQLite stores binary floats).
    pub fn decimal(self, field: &'static str, value: &Decimal, scale: u32) -> Self {
        self.opt_decimal(field, Some(value), scale)
    }

    pub fn opt_decimal(mut self, field: &'static str, value: Option<&Decimal>, scale: u32) -> Self {
        let value = value.map_or(Json::Null, |d| {
            Json::String(round(*d, scale).normalize().to_string())
        });
        self.0.insert(field, value);
        self
    }

    pub fn json(mut self, field: &'static str, value: Option<&Json>) -> Self {
        self.0.insert(field, value.cloned().unwrap_or(Json::Null));
        self
    }

    pub fn time(mut self, field: &'static str, value: Option<DateTime<Utc>>) -> Self {
        let value = value.map_or(Json::Null, |t| {
            Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        });
        self.0.insert(field, value);
        self
    }

    pub fn value(mut self, field: &'static str, value: impl Into<Json>) -> Self {
        self.0.insert(field, value.into());
        self
    }

    /// Leaves out fields the server filled in because the client did not
    /// give them (a default timestamp, say): a retry cannot repeat those.
    pub fn without(mut self, fields: &[&'static str]) -> Self {
        for field in fields {
            self.0.remove(field);
        }
        self
    }

    /// The fields of `self` (the new write) whose value `stored` does not share.
    pub fn differences(&self, stored: &Fingerprint) -> Vec<&'static str> {
        self.0
            .iter()
            .filter(|(field, value)| stored.0.get(*field) != Some(value))
            .map(|(field, _)| *field)
            .collect()
    }
}

/// A table whose rows a client creates under a business id it chooses, so a
/// retried create can be recognised.
pub trait Idempotent: TenantOwned
where
    Self::Model: FromQueryResult + Sized + Send + Sync + IntoActiveModel<Self::ActiveModel>,
{
    /// The business id column, unique per tenant.
    fn key_column() -> Self::Column;

    /// A row's business id.
    fn key(row: &Self::Model) -> String {
        match sea_orm::ModelTrait::get(row, Self::key_column()) {
            sea_orm::Value::String(Some(key)) => key,
            other => unreachable!("business ids are text, not {other:?}"),
        }
    }

    /// The content a retry must repeat to be the same write.
    fn fingerprint(row: &Self::Model) -> Fingerprint;
}

/// How the items of a write are named in its problems.
#[derive(Clone, Copy, Debug)]
pub enum Items<'a> {
    /// One input object at this path (`input`).
    One(&'a str),
    /// A list input at this path (`input[3]`).
    List(&'a str),
    /// The lines of a bulk load, numbered from 1: fields are named as in
    /// the line.
    Lines,
}

impl Items<'_> {
    /// The checks of item `index`, known by `id`.
    pub fn check<'c>(&self, checker: &'c mut Checker, index: usize, id: &str) -> Check<'c> {
        match *self {
            Items::One(path) => checker.object(path),
            Items::List(path) => checker.item(path, index, Some(id)),
            Items::Lines => checker.line(index, Some(id)),
        }
    }

    /// A problem with `field` of item `index`.
    pub fn problem(&self, index: usize, id: &str, field: &str, message: String) -> InputProblem {
        let (index, field) = match *self {
            Items::One(path) => (None, format!("{path}.{field}")),
            Items::List(path) => (Some(index), format!("{path}[{index}].{field}")),
            Items::Lines => (Some(index), field.to_owned()),
        };
        InputProblem {
            index,
            id: Some(id.to_owned()),
            field,
            message,
        }
    }

    /// Where item `index` is, for a message (`input[3]`, `line 3`).
    pub fn name(&self, index: usize) -> String {
        match *self {
            Items::One(path) => path.to_owned(),
            Items::List(path) => format!("{path}[{index}]"),
            Items::Lines => format!("line {index}"),
        }
    }
}

/// `CONFLICT` for item `index`, whose id `key` is stored already with other
/// content, or `None` when the stored row is the same write (a retry). The
/// fields in `defaulted` were filled in by the server and are not compared.
pub(crate) fn conflict<E>(
    items: Items<'_>,
    index: usize,
    new: &E::Model,
    defaulted: &[&'static str],
    stored: &E::Model,
) -> Option<InputProblem>
where
    E: Idempotent,
    E::Model: FromQueryResult + Sized + Send + Sync + IntoActiveModel<E::ActiveModel>,
{
    let differing = E::fingerprint(new)
        .without(defaulted)
        .differences(&E::fingerprint(stored));
    let first = differing.first()?;
    let key = E::key(new);
    Some(items.problem(
        index,
        &key,
        first,
        format!(
            "`{key}` already exists with different content (differs in {})",
            differing.join(", ")
        ),
    ))
}

/// A row to create, with the fields the server filled in for it.
pub struct NewRow<M> {
    pub row: M,
    /// Fields left to server defaults, not compared on a retry.
    pub defaulted: Vec<&'static str>,
}

/// What an idempotent create stored: each row as it now is, in input order,
/// and whether this call inserted it.
pub struct Created<M> {
    pub rows: Vec<M>,
    pub inserted: Vec<bool>,
}

impl<M> Default for Created<M> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            inserted: Vec::new(),
        }
    }
}

impl<M> Created<M> {
    pub fn inserted_count(&self) -> usize {
        self.inserted.iter().filter(|i| **i).count()
    }
}

/// Creates `rows` (whose ids the caller checked are distinct) in `txn`: a
/// multi-row `INSERT … ON CONFLICT (tenant, id) DO NOTHING RETURNING id`,
/// then a read of the rows that already existed. An existing row whose
/// fingerprint matches is the same write made before (a retry) and is
/// returned as stored; one that differs refuses the whole input with
/// `CONFLICT`, naming the differing fields, its items named by `items`.
///
/// Concurrent creates of the same ids are safe: on PostgreSQL the second
/// waits on the unique index for the first to commit and then skips the row;
/// on SQLite write transactions do not overlap at all.
pub(crate) async fn create_idempotent<E>(
    txn: &ScopedTxn,
    rows: Vec<NewRow<E::Model>>,
    items: Items<'_>,
) -> ApiResult<Created<E::Model>>
where
    E: Idempotent,
    E::Model: FromQueryResult + Sized + Send + Sync + IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    create_idempotent_at::<E>(txn, rows.into_iter().enumerate().collect(), items).await
}

/// [`create_idempotent`] of items at the given positions (the lines of a
/// bulk load, which skips none but numbers them its own way).
pub(crate) async fn create_idempotent_at<E>(
    txn: &ScopedTxn,
    rows: Vec<(usize, NewRow<E::Model>)>,
    items: Items<'_>,
) -> ApiResult<Created<E::Model>>
where
    E: Idempotent,
    E::Model: FromQueryResult + Sized + Send + Sync + IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if rows.is_empty() {
        return Ok(Created::default());
    }
    let new_rows: Vec<&E::Model> = rows.iter().map(|(_, new)| &new.row).collect();
    let inserted_keys = insert_new::<E>(txn, &new_rows).await?;

    let existing_keys: Vec<String> = rows
        .iter()
        .map(|(_, new)| E::key(&new.row))
        .filter(|key| !inserted_keys.contains(key))
        .collect();
    let mut existing =
        keyed_rows::<E, String>(txn, E::key_column(), &existing_keys, E::key).await?;

    let mut conflicts = Vec::new();
    let mut out = Created {
        rows: Vec::with_capacity(rows.len()),
        inserted: Vec::with_capacity(rows.len()),
    };
    for (index, new) in rows {
        let key = E::key(&new.row);
        if inserted_keys.contains(&key) {
            out.rows.push(new.row);
            out.inserted.push(true);
            continue;
        }
        let Some(stored) = existing.remove(&key) else {
            // Neither inserted nor readable: only another tenant's row could
            // do that, which the key (it carries the tenant) rules out.
            return Err(ApiError::Internal(anyhow::anyhow!(
                "row {key:?} was neither inserted nor found"
            )));
        };
        match conflict::<E>(items, index, &new.row, &new.defaulted, &stored) {
            None => {
                out.rows.push(stored);
                out.inserted.push(false);
            }
            Some(problem) => conflicts.push(problem),
        }
    }
    refuse(Refusal::Conflict, conflicts)?;
    Ok(out)
}

/// [`create_idempotent`] of one input object at `input`, committing `txn`.
pub(crate) async fn create_one<E>(
    txn: ScopedTxn,
    row: E::Model,
    defaulted: Vec<&'static str>,
) -> ApiResult<E::Model>
where
    E: Idempotent,
    E::Model: FromQueryResult + Sized + Send + Sync + IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let mut created =
        create_idempotent::<E>(&txn, vec![NewRow { row, defaulted }], Items::One("input")).await?;
    commit(txn).await?;
    created
        .rows
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a create returned no row")))
}

/// Inserts the `rows` whose business id the tenant does not have yet
/// (multi-row `INSERT … ON CONFLICT (tenant, id) DO NOTHING RETURNING id`,
/// in id order) and returns the ids it inserted.
pub(crate) async fn insert_new<E>(txn: &ScopedTxn, rows: &[&E::Model]) -> ApiResult<HashSet<String>>
where
    E: Idempotent,
    E::Model: FromQueryResult + Sized + Send + Sync + IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    use sea_orm::Iterable;
    let columns = E::Column::iter().count().max(1);
    let chunk = (MAX_BOUND_PARAMETERS / columns).max(1);
    // In key order: concurrent batches sharing ids then take the unique
    // index's row locks in one order and cannot deadlock on PostgreSQL.
    let mut rows = rows.to_vec();
    rows.sort_by_cached_key(|row| E::key(row));
    let mut inserted = HashSet::with_capacity(rows.len());
    for batch in rows.chunks(chunk) {
        let active: Vec<E::ActiveModel> = batch
            .iter()
            .map(|row| (*row).clone().into_active_model().reset_all())
            .collect();
        let mut insert = E::insert_many(active);
        insert.query().on_conflict(
            OnConflict::columns([E::tenant_column(), E::key_column()])
                .do_nothing()
                .to_owned(),
        );
        insert.query().returning_col(E::key_column());
        let statement = insert.build(txn.backend());
        for returned in txn
            .query_all(statement)
            .await
            .map_err(ApiError::from_write)?
        {
            inserted.insert(returned.try_get_by_index::<String>(0)?);
        }
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use rust_decimal::prelude::FromPrimitive;

    #[test]
    fn fingerprints_compare_decimals_at_column_scale_and_skip_defaults() {
        let pg = Fingerprint::new()
            .decimal("p", &Decimal::new(81000, 5), 4)
            .time("at", Some(Utc::now()));
        let sqlite = Fingerprint::new()
            .decimal("p", &Decimal::from_f64(0.8100000000000001).unwrap(), 4)
            .time("at", None);
        assert_eq!(
            pg.clone().without(&["at"]).differences(&sqlite),
            Vec::<&str>::new()
        );
        assert_eq!(pg.differences(&sqlite), vec!["at"]);
    }
}
