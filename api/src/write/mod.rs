//! The write side: plain functions over a [`Writer`], one module per domain.
//!
//! A [`Writer`] is a tenant-scoped handle that only a caller whose role holds
//! the write's permission ([`can`](crate::identity::can)) can open, so no write path skips the role
//! check, just as no read path skips the tenant. Every write:
//! - validates its whole input first and refuses it with every problem found
//!   (`BAD_USER_INPUT`, each problem naming its item and field);
//! - resolves references inside the caller's tenant only (`NOT_FOUND` for
//!   anything else, exactly like an id that does not exist);
//! - runs in one transaction (on PostgreSQL under row-level security, whose
//!   `WITH CHECK` refuses any row of another tenant), so it lands whole or
//!   not at all;
//! - is idempotent where a client may retry: creating what exists with the
//!   same content returns it unchanged; the same id with different content
//!   is `CONFLICT`.

pub mod alerts;
pub mod api_keys;
pub mod configurations;
pub mod drift;
pub mod features;
pub mod feedback;
pub mod models;
pub mod predictions;
mod shape;
pub mod tenant;
pub mod thresholds;
pub mod training;

pub use shape::FeatureValue;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter,
    QueryTrait,
};
use serde_json::Value as Json;

use crate::db::{Scoped, ScopedTxn};
use crate::error::{ApiError, ApiResult, InputProblem, Refusal};
use crate::events::Events;
use crate::identity::can::Capability;
use crate::identity::{Principal, Role};
use crate::store::{keyed_rows, TenantOwned};

/// The tenant-scoped handle of a caller allowed one kind of write: `C`, a
/// capability of [`can`](crate::identity::can). Only [`Writer::authorize`]
/// makes one, after the role check, and each write function takes the
/// capability it needs:
///
/// ```no_run
/// # use api::{identity::can, write::Writer};
/// # async fn keys(writer: &Writer<can::ManageKeys>) {
/// let _ = api::write::api_keys::list(writer).await;
/// # }
/// ```
///
/// and another capability does not compile:
///
/// ```compile_fail
/// # use api::{identity::can, write::Writer};
/// # async fn keys(writer: &Writer<can::Ingest>) {
/// let _ = api::write::api_keys::list(writer).await;
/// # }
/// ```
pub struct Writer<C: Capability> {
    scoped: Scoped,
    subject: String,
    role: Role,
    events: Events,
    capability: PhantomData<C>,
}

impl<C: Capability> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Self {
            scoped: self.scoped.clone(),
            subject: self.subject.clone(),
            role: self.role,
            events: self.events.clone(),
            capability: PhantomData,
        }
    }
}

impl<C: Capability> Writer<C> {
    /// Opens the write handle for `principal` if its role holds `C`'s
    /// permission (`FORBIDDEN` otherwise). `scoped` is the principal's own
    /// handle.
    pub(crate) fn authorize(
        principal: &Principal,
        scoped: &Scoped,
        events: &Events,
    ) -> ApiResult<Self> {
        let permission = C::PERMISSION;
        if scoped.tenant() != principal.tenant() {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a write handle was requested with another principal's scope"
            )));
        }
        if !principal.role().allows(permission) {
            return Err(ApiError::Forbidden(format!(
                "role `{}` may not {}; that needs {}",
                principal.role(),
                permission.action(),
                permission.roles()
            )));
        }
        Ok(Self {
            scoped: scoped.clone(),
            subject: principal.subject().to_owned(),
            role: principal.role(),
            events: events.clone(),
            capability: PhantomData,
        })
    }

    /// Where committed writes announce alerts and job changes.
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    pub fn tenant(&self) -> &str {
        self.scoped.tenant()
    }

    /// Who is writing: the JWT subject or `api-key:<prefix>`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Begins the write's transaction, bound to the caller's tenant.
    pub(crate) async fn begin(&self) -> ApiResult<ScopedTxn> {
        Ok(self.scoped.begin_write().await?)
    }
}

/// Commits `txn`, mapping a refusal at commit (deferred constraints) like
/// any other failed write.
pub(crate) async fn commit(txn: ScopedTxn) -> ApiResult<()> {
    txn.commit().await.map_err(ApiError::from_write)
}

/// Collects every problem of an input before anything is written.
#[derive(Debug, Default)]
pub struct Checker {
    problems: Vec<InputProblem>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks for a single input object at `path` (e.g. `input`).
    pub fn object(&mut self, path: &str) -> Check<'_> {
        Check {
            problems: &mut self.problems,
            path: path.to_owned(),
            index: None,
            id: None,
        }
    }

    /// Checks for item `index` of a list input at `path`, known by `id`.
    pub fn item(&mut self, path: &str, index: usize, id: Option<&str>) -> Check<'_> {
        Check {
            problems: &mut self.problems,
            path: format!("{path}[{index}]"),
            index: Some(index),
            id: id.map(str::to_owned),
        }
    }

    /// Refuses ids that occur twice in one list input.
    pub fn unique_ids<'a>(
        &mut self,
        path: &str,
        field: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) {
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (index, id) in ids.into_iter().enumerate() {
            if let Some(first) = first_seen.insert(id, index) {
                first_seen.insert(id, first);
                self.item(path, index, Some(id)).problem(
                    field,
                    format!("`{id}` occurs more than once in this list (first at {path}[{first}])"),
                );
            }
        }
    }

    /// Refuses the input if any problem was found.
    pub fn finish(self) -> ApiResult<()> {
        refuse(Refusal::BadUserInput, self.problems)
    }
}

/// Checks a list input (`input`) before anything runs: at most `max_batch`
/// items, ids distinct, and each item by `check_item`. Every problem of
/// every item is reported at once.
pub fn check_batch<I, C>(
    inputs: Vec<I>,
    max_batch: usize,
    what: &str,
    id_field: &str,
    id_of: impl Fn(&I) -> &str,
    mut check_item: impl FnMut(&mut Check<'_>, I) -> C,
) -> ApiResult<Vec<C>> {
    if inputs.len() > max_batch {
        return Err(ApiError::BadUserInput {
            message: format!(
                "at most {max_batch} {what} per call (got {}); split the batch",
                inputs.len()
            ),
            field: Some("input".into()),
        });
    }
    let mut checker = Checker::new();
    checker.unique_ids("input", id_field, inputs.iter().map(&id_of));
    let mut checked = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let id = id_of(&input).to_owned();
        checked.push(check_item(
            &mut checker.item("input", index, Some(&id)),
            input,
        ));
    }
    checker.finish()?;
    Ok(checked)
}

/// The tenant's models that the items of a list input name, by id. Items
/// are `(item id, model id)`; any model the tenant does not have refuses
/// the whole input with `NOT_FOUND`, one problem per item naming it.
pub(crate) async fn referenced_models<'a>(
    txn: &ScopedTxn,
    items: impl Iterator<Item = (&'a str, Option<&'a str>)> + Clone,
) -> ApiResult<HashMap<String, entity::model::Model>> {
    use entity::model;
    let model_ids: Vec<String> = items
        .clone()
        .filter_map(|(_, model_id)| model_id.map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let models =
        keyed_rows::<model::Entity, String>(txn, model::Column::ModelId, &model_ids, |m| {
            m.model_id.clone()
        })
        .await?;
    let missing = items
        .enumerate()
        .filter_map(|(index, (id, model_id))| {
            let model_id = model_id?;
            (!models.contains_key(model_id)).then(|| InputProblem {
                index: Some(index),
                id: Some(id.to_owned()),
                field: format!("input[{index}].modelId"),
                message: format!("model `{model_id}` not found"),
            })
        })
        .collect();
    refuse(Refusal::NotFound, missing)?;
    Ok(models)
}

/// `Ok` when there are no problems; else the input is refused with them all.
pub fn refuse(code: Refusal, problems: Vec<InputProblem>) -> ApiResult<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Refused { code, problems })
    }
}

/// The checks of one input object (or one list item).
pub struct Check<'a> {
    problems: &'a mut Vec<InputProblem>,
    path: String,
    index: Option<usize>,
    id: Option<String>,
}

/// The range and scale of a `DECIMAL` column: values are rounded to `scale`
/// places (as PostgreSQL stores them) and must lie in `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct DecimalSpec {
    pub scale: u32,
    pub min: f64,
    pub max: f64,
}

impl DecimalSpec {
    /// `DECIMAL(5,4)` probabilities, confidences and scores: 0–1.
    pub const UNIT: Self = Self::new(4, 0.0, 1.0);
    /// `DECIMAL(3,2)` quality scores and completeness: 0–1.
    pub const UNIT_2DP: Self = Self::new(2, 0.0, 1.0);
    /// `DECIMAL(3,2)` accuracy ratings: 0–5.
    pub const RATING: Self = Self::new(2, 0.0, 5.0);
    /// `DECIMAL(10,2)` non-negative amounts: hours, milliseconds, cost.
    pub const AMOUNT: Self = Self::new(2, 0.0, 99_999_999.99);
    /// `DECIMAL(10,4)` drift scores.
    pub const DRIFT_SCORE: Self = Self::new(4, -999_999.999_9, 999_999.999_9);
    /// `DECIMAL(10,6)` signed measures (drift velocity).
    pub const SIGNED_MEASURE: Self = Self::new(6, -9_999.999_999, 9_999.999_999);
    /// `DECIMAL(10,6)` non-negative measures (PSI, Wasserstein, errors).
    pub const MEASURE: Self = Self::new(6, 0.0, 9_999.999_999);

    const fn new(scale: u32, min: f64, max: f64) -> Self {
        Self { scale, min, max }
    }

    fn describe(&self) -> String {
        format!("a number from {} to {}", self.min, self.max)
    }
}

/// The longest business id, name or other `VARCHAR(255)` value.
pub const MAX_ID_CHARS: usize = 255;

impl Check<'_> {
    /// Records a problem with `field` of this item.
    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(InputProblem {
            index: self.index,
            id: self.id.clone(),
            field: format!("{}.{field}", self.path),
            message: message.into(),
        });
    }

    /// A business id: 1–255 characters, no control characters, no spaces at
    /// either end (ids are compared exactly).
    pub fn id(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.problem(field, "must not be empty");
        } else if value.trim() != value {
            self.problem(field, "must not start or end with whitespace");
        } else {
            self.text(field, value, MAX_ID_CHARS);
        }
    }

    /// Free text of at most `max_chars` characters, without control
    /// characters other than tab and newlines.
    pub fn text(&mut self, field: &str, value: &str, max_chars: usize) {
        if value.chars().count() > max_chars {
            self.problem(field, format!("must be at most {max_chars} characters"));
        } else if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            self.problem(field, "must not contain control characters");
        }
    }

    /// Like [`Check::text`], and not empty.
    pub fn required_text(&mut self, field: &str, value: &str, max_chars: usize) {
        if value.trim().is_empty() {
            self.problem(field, "must not be empty");
        } else {
            self.text(field, value, max_chars);
        }
    }

    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max_chars: usize) {
        if let Some(value) = value {
            self.text(field, value, max_chars);
        }
    }

    /// A number for a `DECIMAL` column, rounded to the column's scale. A
    /// refused value yields zero; the input is refused as a whole anyway.
    pub fn decimal(&mut self, field: &str, value: f64, spec: DecimalSpec) -> Decimal {
        let rounded = value
            .is_finite()
            .then(|| Decimal::from_f64(value))
            .flatten()
            .map(|d| round(d, spec.scale));
        match rounded {
            Some(d) if (spec.min..=spec.max).contains(&value) && in_range(d, spec) => d,
            _ => {
                self.problem(field, format!("must be {}", spec.describe()));
                Decimal::ZERO
            }
        }
    }

    pub fn opt_decimal(
        &mut self,
        field: &str,
        value: Option<f64>,
        spec: DecimalSpec,
    ) -> Option<Decimal> {
        value.map(|v| self.decimal(field, v, spec))
    }

    /// A finite number (GraphQL floats always are; JSON-derived ones too,
    /// but the check keeps the rule where it is stated).
    pub fn finite(&mut self, field: &str, value: f64) {
        if !value.is_finite() {
            self.problem(field, "must be a finite number");
        }
    }

    /// The caller's subject, stored as `field` (`userId`, `createdBy`): a
    /// `VARCHAR(255)` like every id.
    pub fn caller<C: Capability>(&mut self, field: &str, writer: &Writer<C>) {
        if writer.subject().chars().count() > MAX_ID_CHARS {
            self.problem(field, "the caller's subject is longer than 255 characters");
        }
    }

    /// A JSON value that must be an object.
    pub fn json_object(&mut self, field: &str, value: &Json) {
        if !value.is_object() {
            self.problem(field, "must be a JSON object");
        }
    }
}

/// Rounds as PostgreSQL's `numeric` does: halves away from zero.
fn round(value: Decimal, scale: u32) -> Decimal {
    value.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

fn in_range(value: Decimal, spec: DecimalSpec) -> bool {
    let min = Decimal::from_f64(spec.min).unwrap_or(Decimal::MIN);
    let max = Decimal::from_f64(spec.max).unwrap_or(Decimal::MAX);
    (min..=max).contains(&value)
}

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

/// Bound parameters per `INSERT`, under both backends' limits.
const PARAMETERS_PER_STATEMENT: usize = crate::store::MAX_KEYS;

/// Creates `rows` (whose ids the caller checked are distinct) in `txn`: a
/// multi-row `INSERT … ON CONFLICT (tenant, id) DO NOTHING RETURNING id`,
/// then a read of the rows that already existed. An existing row whose
/// fingerprint matches is the same write made before (a retry) and is
/// returned as stored; one that differs refuses the whole input with
/// `CONFLICT`, naming the differing fields. `path` names the input (`input`
/// for one object, `input[i]` for lists when `list` is set).
///
/// Concurrent creates of the same ids are safe: on PostgreSQL the second
/// waits on the unique index for the first to commit and then skips the row;
/// on SQLite write transactions do not overlap at all.
pub(crate) async fn create_idempotent<E>(
    txn: &ScopedTxn,
    rows: Vec<NewRow<E::Model>>,
    path: &str,
    list: bool,
) -> ApiResult<Created<E::Model>>
where
    E: Idempotent,
    E::Model: FromQueryResult + Sized + Send + Sync + IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if rows.is_empty() {
        return Ok(Created::default());
    }
    let new_rows: Vec<&E::Model> = rows.iter().map(|new| &new.row).collect();
    let inserted_keys = insert_new::<E>(txn, &new_rows).await?;

    let existing_keys: Vec<String> = rows
        .iter()
        .map(|new| E::key(&new.row))
        .filter(|key| !inserted_keys.contains(key))
        .collect();
    let mut existing =
        keyed_rows::<E, String>(txn, E::key_column(), &existing_keys, E::key).await?;

    let mut conflicts = Vec::new();
    let mut out = Created {
        rows: Vec::with_capacity(rows.len()),
        inserted: Vec::with_capacity(rows.len()),
    };
    for (index, new) in rows.into_iter().enumerate() {
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
        let differing = E::fingerprint(&new.row)
            .without(&new.defaulted)
            .differences(&E::fingerprint(&stored));
        if differing.is_empty() {
            out.rows.push(stored);
            out.inserted.push(false);
        } else {
            conflicts.push(InputProblem {
                index: list.then_some(index),
                id: Some(key.clone()),
                field: if list {
                    format!("{path}[{index}].{}", differing[0])
                } else {
                    format!("{path}.{}", differing[0])
                },
                message: format!(
                    "`{key}` already exists with different content (differs in {})",
                    differing.join(", ")
                ),
            });
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
        create_idempotent::<E>(&txn, vec![NewRow { row, defaulted }], "input", false).await?;
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
    let chunk = (PARAMETERS_PER_STATEMENT / columns).max(1);
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

/// The one row of the tenant's `E` whose `column` is `key`, locked for this
/// transaction on PostgreSQL (SQLite's write transaction already excludes
/// other writers).
pub(crate) async fn locked_row<E>(
    txn: &ScopedTxn,
    column: E::Column,
    key: impl Into<sea_orm::Value>,
) -> ApiResult<Option<E::Model>>
where
    E: TenantOwned,
    E::Model: FromQueryResult + Sized + Send + Sync,
{
    use sea_orm::QuerySelect;
    Ok(crate::store::tenant_rows::<E>(txn)
        .filter(column.eq(key.into()))
        .lock_exclusive()
        .one(txn.conn())
        .await?)
}

/// Writes `changed`, a modified copy of the stored `row`: only the columns
/// that differ are updated. `row` must have been read in `txn` (through the
/// tenant's rows), which is what makes its primary key safe to update by.
pub(crate) async fn save_changes<E>(
    txn: &ScopedTxn,
    row: E::Model,
    changed: E::Model,
) -> ApiResult<E::Model>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + sea_orm::ActiveModelBehavior + Send,
{
    use sea_orm::Iterable;
    let stored = row.into_active_model();
    let mut active = changed.into_active_model();
    for column in E::Column::iter() {
        let value = active.get(column).into_value();
        if value != stored.get(column).into_value() {
            if let Some(value) = value {
                active.set(column, value);
            }
        }
    }
    active
        .update(txn.conn())
        .await
        .map_err(ApiError::from_write)
}

/// `NOT_FOUND` for a reference the tenant does not have, named like the
/// input field that holds it.
pub fn not_found(field: impl Into<String>, what: &str, id: &str) -> ApiError {
    ApiError::Refused {
        code: Refusal::NotFound,
        problems: vec![InputProblem {
            index: None,
            id: Some(id.to_owned()),
            field: field.into(),
            message: format!("{what} `{id}` not found"),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_rounded_to_their_column_and_range_checked() {
        let mut checker = Checker::new();
        let mut check = checker.object("input");
        assert_eq!(
            check.decimal("p", 0.81236, DecimalSpec::UNIT),
            Decimal::new(8124, 4)
        );
        assert_eq!(check.decimal("p", 1.0, DecimalSpec::UNIT), Decimal::ONE);
        // Halves round away from zero, as PostgreSQL's numeric does.
        assert_eq!(
            check.decimal("cost", 12.345, DecimalSpec::AMOUNT),
            Decimal::new(1235, 2)
        );
        check.decimal("low", -0.0001, DecimalSpec::UNIT);
        check.decimal("high", 1.00001, DecimalSpec::UNIT);
        check.decimal("inf", f64::INFINITY, DecimalSpec::AMOUNT);
        check.decimal("overflow", 99_999_999.996, DecimalSpec::AMOUNT);
        let fields: Vec<String> = checker.problems.iter().map(|p| p.field.clone()).collect();
        assert_eq!(
            fields,
            ["input.low", "input.high", "input.inf", "input.overflow"]
        );
    }

    #[test]
    fn ids_and_text_are_bounded() {
        let mut checker = Checker::new();
        let mut check = checker.item("input", 2, Some("x"));
        check.id("a", "ok-1");
        check.id("b", "");
        check.id("c", " padded");
        check.id("d", &"x".repeat(256));
        check.text("e", "tab\tok\nfine", 20);
        check.text("f", "bell\u{7}", 20);
        let fields: Vec<&str> = checker.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["input[2].b", "input[2].c", "input[2].d", "input[2].f"]
        );
        assert!(checker.problems.iter().all(|p| p.index == Some(2)));
    }

    #[test]
    fn duplicate_ids_in_a_list_are_named_with_their_first_position() {
        let mut checker = Checker::new();
        checker.unique_ids("input", "predictionId", ["a", "b", "a", "a"]);
        let problems = checker.problems;
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].field, "input[2].predictionId");
        assert!(problems[0].message.contains("first at input[0]"));
        assert_eq!(problems[1].field, "input[3].predictionId");
    }

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
