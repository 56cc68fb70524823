//! Bulk loads of predictions: the one engine behind `POST
//! /ingest/predictions` (a stream of lines) and `recordPredictions` (a
//! GraphQL list), so both share validation, idempotency and SQL.
//!
//! Items arrive one at a time and are checked as they come (every problem
//! of every item is collected, ids must be distinct within the load). Then:
//! - **PostgreSQL**: valid rows are encoded in PostgreSQL's binary `COPY`
//!   format and sent in chunks of about [`CHUNK_BYTES`] into a per-session
//!   temporary staging table, inside the load's one tenant-scoped
//!   transaction (so memory stays bounded whatever the load's size, and a
//!   slow database slows the reader down). At the end, one `INSERT … SELECT
//!   … ON CONFLICT DO NOTHING` moves them (in id order: concurrent loads of
//!   the same ids take the unique index's locks in one order), so the
//!   rollup triggers fire once, over all of them; the staged rows that
//!   found their id taken are then read beside the stored ones and compared
//!   as every idempotent create compares them ([`conflict`]).
//! - **SQLite**: rows are kept and written at the end in multi-row inserts,
//!   in one transaction through the process's single writer.
//!
//! Anything wrong refuses the whole load and writes nothing: invalid items
//! (`BAD_USER_INPUT`), unknown models (`NOT_FOUND`), an id stored with other
//! content (`CONFLICT`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::prediction;
use futures_util::TryStreamExt;
use sea_orm::{DbBackend, FromQueryResult};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::copy::CopyChunk;
use super::predictions::check_prediction;
use super::validate::{refuse, Checker};
use super::{conflict, create_idempotent_at, referenced_models, Items, NewRow, Writer};
use crate::db::BulkTxn;
use crate::error::{ApiError, ApiResult, InputProblem, Refusal};
use crate::identity::can;
use crate::store::now;
use crate::telemetry::metrics::{metrics, Ingested};

pub use super::predictions::PredictionInput;

/// About how much `COPY` data is sent at once: small enough that a batch of
/// a thousand predictions makes a few chunks, so checking the next lines
/// overlaps the database taking the last ones (see [`Copier`]).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The most problems a refusal lists; the rest are counted.
pub const MAX_LISTED_PROBLEMS: usize = 1_000;

/// The per-session staging table. `ON COMMIT DELETE ROWS` (and rollback)
/// empties it, so a pooled connection carries no rows to the next load;
/// keeping the table spares the catalog a create and drop per load.
/// Decimals travel as their exact text (already rounded to the column's
/// scale); `model_version` is null where the line left it to the model.
const STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS mlgate_staged_predictions (
    line bigint NOT NULL,
    id uuid NOT NULL,
    prediction_id text NOT NULL,
    resource_id text NOT NULL,
    model_id text NOT NULL,
    model_version text,
    violation_probability text NOT NULL,
    time_to_violation_hours text,
    confidence_score text NOT NULL,
    confidence_interval_lower text,
    confidence_interval_upper text,
    risk_level text NOT NULL,
    risk_score text,
    impact_factors jsonb,
    uncertainty_sources jsonb,
    recommendations text[],
    features_used jsonb,
    shap_values jsonb,
    attention_weights jsonb,
    inference_time_ms text NOT NULL,
    prediction_timestamp timestamptz NOT NULL,
    time_given boolean NOT NULL,
    expires_at timestamptz,
    remediation_status text,
    remediation_id uuid
) ON COMMIT DELETE ROWS";

/// The staging table's columns, in order.
const STAGED_FIELDS: i16 = 25;

const COPY: &str = "COPY mlgate_staged_predictions FROM STDIN (FORMAT binary)";

const UNKNOWN_MODELS: &str = "SELECT s.line, s.prediction_id, s.model_id \
FROM mlgate_staged_predictions s \
WHERE NOT EXISTS (SELECT 1 FROM ml_models m WHERE m.tenant_id = $1 AND m.model_id = s.model_id) \
ORDER BY s.line LIMIT 1001";

/// Moves the staged rows into `ml_predictions` (those of unknown models
/// are left out, and refuse the load) and, in the same round trip, names
/// each staged model with its registered version (null: the tenant has no
/// such model), every row carrying the count inserted.
const INSERT: &str = "WITH inserted AS (\
INSERT INTO ml_predictions (id, prediction_id, resource_id, tenant_id, \
model_id, model_version, violation_probability, time_to_violation_hours, confidence_score, \
confidence_interval_lower, confidence_interval_upper, risk_level, risk_score, impact_factors, \
uncertainty_sources, recommendations, features_used, shap_values, attention_weights, \
inference_time_ms, prediction_timestamp, expires_at, remediation_status, remediation_id) \
SELECT s.id, s.prediction_id, s.resource_id, m.tenant_id, s.model_id, \
COALESCE(s.model_version, m.version), s.violation_probability::numeric, \
s.time_to_violation_hours::numeric, s.confidence_score::numeric, \
s.confidence_interval_lower::numeric, s.confidence_interval_upper::numeric, s.risk_level, \
s.risk_score::numeric, s.impact_factors, s.uncertainty_sources, s.recommendations, \
s.features_used, s.shap_values, s.attention_weights, s.inference_time_ms::numeric, \
s.prediction_timestamp, s.expires_at, s.remediation_status, s.remediation_id \
FROM mlgate_staged_predictions s \
JOIN ml_models m ON m.tenant_id = $1 AND m.model_id = s.model_id \
ORDER BY s.prediction_id \
ON CONFLICT (tenant_id, prediction_id) DO NOTHING \
RETURNING 1) \
SELECT (SELECT count(*) FROM inserted), s.model_id, m.version \
FROM (SELECT DISTINCT model_id FROM mlgate_staged_predictions) s \
LEFT JOIN ml_models m ON m.tenant_id = $1 AND m.model_id = s.model_id";

/// The staged rows whose id was taken, each beside the stored row: `p__*`
/// as stored, `s__*` as staged (the tenant's own, decimals as numbers).
static TAKEN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use sea_orm::{ColumnTrait, IdenStatic, Iterable};
    let mut columns = vec![
        "s.line".to_owned(),
        "s.model_version IS NULL AS version_defaulted".to_owned(),
        "NOT s.time_given AS time_defaulted".to_owned(),
    ];
    for column in prediction::Column::iter() {
        let name = column.as_str();
        columns.push(format!("p.{name} AS p__{name}"));
        let staged = match name {
            "tenant_id" => "$1::text".to_owned(),
            "model_version" => "COALESCE(s.model_version, p.model_version)".to_owned(),
            _ if matches!(
                column.def().get_column_type(),
                sea_orm::ColumnType::Decimal(_)
            ) =>
            {
                format!("s.{name}::numeric")
            }
            _ => format!("s.{name}"),
        };
        columns.push(format!("{staged} AS s__{name}"));
    }
    format!(
        "SELECT {} FROM mlgate_staged_predictions s \
         JOIN ml_predictions p ON p.tenant_id = $1 AND p.prediction_id = s.prediction_id \
         WHERE p.id <> s.id ORDER BY s.line",
        columns.join(", ")
    )
});

/// What a finished load did.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Items in the load.
    pub items: usize,
    /// Items this load wrote.
    pub inserted: usize,
    /// Items stored before with the same content (retries), not written again.
    pub duplicates: usize,
    /// With [`PredictionLoad::keeping_rows`]: every item's row as it is
    /// now stored, in item order.
    pub rows: Option<Vec<prediction::Model>>,
}

/// A bulk load in progress.
pub struct PredictionLoad {
    writer: Writer<can::Ingest>,
    items: Items<'static>,
    recorded_at: DateTime<Utc>,
    /// Each id's first item, to refuse repeats within the load.
    seen: HashMap<String, usize>,
    refusals: Refusals,
    count: usize,
    /// Rows as built, for a caller that wants them back (PostgreSQL; SQLite
    /// keeps them anyway).
    kept: Option<Vec<NewRow<prediction::Model>>>,
    sink: Sink,
}

enum Sink {
    Postgres {
        copier: Option<Copier>,
        chunk: CopyChunk,
    },
    Sqlite {
        rows: Vec<(usize, NewRow<prediction::Model>)>,
    },
}

impl PredictionLoad {
    /// A load for `writer`'s tenant whose items are named by `items`.
    pub fn new(writer: &Writer<can::Ingest>, items: Items<'static>) -> Self {
        let sink = match writer.scoped().backend() {
            DbBackend::Postgres => Sink::Postgres {
                copier: None,
                chunk: CopyChunk::new(CHUNK_BYTES + CHUNK_BYTES / 4),
            },
            _ => Sink::Sqlite { rows: Vec::new() },
        };
        Self {
            writer: writer.clone(),
            items,
            recorded_at: now(),
            seen: HashMap::new(),
            refusals: Refusals::default(),
            count: 0,
            kept: None,
            sink,
        }
    }

    /// Keeps every item's row, returned by [`PredictionLoad::finish`].
    pub fn keeping_rows(mut self) -> Self {
        self.kept = Some(Vec::new());
        self
    }

    /// Whether some item was refused already (nothing will be written).
    pub fn refused(&self) -> bool {
        self.refusals.any()
    }

    /// Records `problems` of the load, listing the first
    /// [`MAX_LISTED_PROBLEMS`].
    pub fn note(&mut self, problems: Vec<InputProblem>) {
        self.refusals.note(problems);
        if self.refused() {
            // Nothing will be written: stop staging and keeping rows.
            self.kept = None;
            match &mut self.sink {
                Sink::Postgres { copier, chunk } => {
                    // Dropped, the copier ends its chunk and rolls back.
                    *copier = None;
                    *chunk = CopyChunk::new(0);
                }
                Sink::Sqlite { rows } => *rows = Vec::new(),
            }
        }
    }

    /// Checks item `index` and stages it. Fails only when the database
    /// does (a refused item is noted, and the load goes on checking).
    pub async fn push(&mut self, index: usize, input: PredictionInput) -> ApiResult<()> {
        self.count += 1;
        let mut checker = Checker::new();
        let id = input.prediction_id.clone();
        if let Some(&first) = self.seen.get(&id) {
            let first = self.items.name(first);
            let what = match self.items {
                Items::Lines => "load",
                _ => "list",
            };
            self.items.check(&mut checker, index, &id).problem(
                "predictionId",
                format!("`{id}` occurs more than once in this {what} (first at {first})"),
            );
        } else {
            self.seen.insert(id.clone(), index);
        }
        let checked = check_prediction(&mut self.items.check(&mut checker, index, &id), input);
        let problems = checker.into_problems();
        if !problems.is_empty() || self.refused() {
            self.note(problems);
            return Ok(());
        }
        let new = checked.into_row(self.writer.tenant(), None, self.recorded_at);
        match &mut self.sink {
            Sink::Postgres { chunk, .. } => {
                stage(chunk, index, &new);
                if let Some(kept) = &mut self.kept {
                    kept.push(new);
                }
                if chunk.bytes() >= CHUNK_BYTES {
                    self.flush().await?;
                }
            }
            Sink::Sqlite { rows } => rows.push((index, new)),
        }
        Ok(())
    }

    /// Hands the staged chunk to the copier (PostgreSQL), opening the load's
    /// transaction and staging table with the first one.
    async fn flush(&mut self) -> ApiResult<()> {
        let Sink::Postgres { copier, chunk } = &mut self.sink else {
            return Ok(());
        };
        if chunk.rows() == 0 {
            return Ok(());
        }
        let data = std::mem::replace(chunk, CopyChunk::new(CHUNK_BYTES + CHUNK_BYTES / 4)).finish();
        if copier.is_none() {
            let mut begun = self
                .writer
                .scoped()
                .begin_bulk()
                .await
                .map_err(ApiError::from_write)?;
            begun.execute_script(STAGING).await.map_err(|e| {
                // Not the client's doing unless the database is failing: a
                // gateway role without TEMP is a deployment to fix
                // (`verify-schema` names it), not a refused write.
                if crate::db::classify(&e).is_some() {
                    ApiError::from_write(e)
                } else {
                    ApiError::Internal(anyhow::Error::new(e).context(
                        "cannot create the bulk staging table (does the gateway role have TEMP?)",
                    ))
                }
            })?;
            *copier = Some(Copier::start(begun));
        }
        let sending = copier.as_mut().expect("started above");
        if sending.chunks.send(data).await.is_err() {
            // The copier stopped on an error: that is the load's.
            let stopped = copier.take().expect("started above");
            return Err(match stopped.finish().await {
                Err(error) => error,
                Ok(_) => ApiError::Internal(anyhow::anyhow!("the copier stopped early")),
            });
        }
        Ok(())
    }

    /// Ends the load: refuses it with every problem noted, or writes it
    /// whole and commits.
    pub async fn finish(mut self) -> ApiResult<Loaded> {
        self.refusals.finish()?;
        let items = self.count;
        let loaded = match &self.sink {
            Sink::Postgres { .. } => self.finish_postgres().await?,
            Sink::Sqlite { .. } => self.finish_sqlite().await?,
        };
        metrics().ingested(Ingested::Predictions, loaded.inserted as u64);
        tracing::info!(
            items,
            inserted = loaded.inserted,
            duplicates = loaded.duplicates,
            "predictions loaded"
        );
        Ok(loaded)
    }

    async fn finish_postgres(mut self) -> ApiResult<Loaded> {
        self.flush().await?;
        let items = self.items;
        let count = self.count;
        let tenant = self.writer.tenant().to_owned();
        let kept = self.kept.take();
        let Sink::Postgres {
            copier: Some(copier),
            ..
        } = self.sink
        else {
            // Nothing was staged: an empty load.
            return Ok(Loaded {
                rows: kept.map(|_| Vec::new()),
                ..Loaded::default()
            });
        };
        let mut txn = copier.finish().await?;
        let binds = [tenant.as_str()];
        let mut inserted = 0;
        let mut versions = HashMap::new();
        {
            let mut rows = std::pin::pin!(txn.fetch(INSERT, &binds));
            while let Some(row) = rows.try_next().await.map_err(ApiError::from_write)? {
                inserted = row.try_get_by_index::<i64>(0)? as usize;
                let model: String = row.try_get_by_index(1)?;
                let version: Option<String> = row.try_get_by_index(2)?;
                versions.insert(model, version);
            }
        }
        if versions.values().any(Option::is_none) {
            let mut missing = Vec::new();
            let mut rows = std::pin::pin!(txn.fetch(UNKNOWN_MODELS, &binds));
            while let Some(row) = rows.try_next().await.map_err(ApiError::from_write)? {
                let line: i64 = row.try_get_by_index(0)?;
                let id: String = row.try_get_by_index(1)?;
                let model: String = row.try_get_by_index(2)?;
                missing.push(items.problem(
                    line as usize,
                    &id,
                    "modelId",
                    format!("model `{model}` not found"),
                ));
            }
            capped(Refusal::NotFound, missing, 0)?;
        }
        let mut stored = HashMap::new();
        let mut conflicts = Vec::new();
        let mut unlisted = 0;
        let mut duplicates = 0;
        if inserted < count {
            let mut rows = std::pin::pin!(txn.fetch(TAKEN.as_str(), &binds));
            while let Some(row) = rows.try_next().await.map_err(ApiError::from_write)? {
                let line: i64 = row.try_get("", "line")?;
                let mut defaulted = Vec::new();
                if row.try_get::<bool>("", "version_defaulted")? {
                    defaulted.push("modelVersion");
                }
                if row.try_get::<bool>("", "time_defaulted")? {
                    defaulted.push("predictionTimestamp");
                }
                let old = prediction::Model::from_query_result(&row, "p__")?;
                let new = prediction::Model::from_query_result(&row, "s__")?;
                match conflict::<prediction::Entity>(items, line as usize, &new, &defaulted, &old) {
                    Some(problem) if conflicts.len() < MAX_LISTED_PROBLEMS => {
                        conflicts.push(problem)
                    }
                    Some(_) => unlisted += 1,
                    None => {
                        duplicates += 1;
                        if kept.is_some() {
                            stored.insert(old.prediction_id.clone(), old);
                        }
                    }
                }
            }
        }
        capped(Refusal::Conflict, conflicts, unlisted)?;
        if inserted + duplicates != count {
            // Neither written nor found: only a concurrent delete between
            // the two statements could do that.
            return Err(ApiError::Internal(anyhow::anyhow!(
                "{count} staged predictions: {inserted} inserted, {duplicates} found stored"
            )));
        }
        txn.commit().await.map_err(ApiError::from_write)?;
        let rows = kept.map(|kept| {
            kept.into_iter()
                .map(|new| match stored.remove(&new.row.prediction_id) {
                    Some(old) => old,
                    None => {
                        let mut row = new.row;
                        if new.defaulted.contains(&"modelVersion") {
                            if let Some(Some(version)) = versions.get(&row.model_id) {
                                row.model_version = version.clone();
                            }
                        }
                        row
                    }
                })
                .collect()
        });
        Ok(Loaded {
            items: count,
            inserted,
            duplicates,
            rows,
        })
    }

    async fn finish_sqlite(self) -> ApiResult<Loaded> {
        let Sink::Sqlite { mut rows } = self.sink else {
            unreachable!("called for SQLite loads only");
        };
        let items = self.items;
        let count = self.count;
        let keep = self.kept.is_some();
        if rows.is_empty() {
            return Ok(Loaded {
                rows: keep.then(Vec::new),
                ..Loaded::default()
            });
        }
        let txn = self.writer.begin().await?;
        let models = referenced_models(
            &txn,
            items,
            rows.iter().map(|(index, new)| {
                (
                    *index,
                    new.row.prediction_id.as_str(),
                    Some(new.row.model_id.as_str()),
                )
            }),
        )
        .await
        .map_err(listed)?;
        for (_, new) in &mut rows {
            if new.defaulted.contains(&"modelVersion") {
                new.row.model_version = models[&new.row.model_id].version.clone();
            }
        }
        let created = create_idempotent_at::<prediction::Entity>(&txn, rows, items)
            .await
            .map_err(listed)?;
        super::commit(txn).await?;
        let inserted = created.inserted_count();
        Ok(Loaded {
            items: count,
            inserted,
            duplicates: count - inserted,
            rows: keep.then_some(created.rows),
        })
    }
}

/// A refusal with `problems` listing the first [`MAX_LISTED_PROBLEMS`] and
/// counting the rest (`unlisted` of them dropped already).
pub(super) fn capped(
    code: Refusal,
    mut problems: Vec<InputProblem>,
    mut unlisted: usize,
) -> ApiResult<()> {
    if problems.len() > MAX_LISTED_PROBLEMS {
        unlisted += problems.len() - MAX_LISTED_PROBLEMS;
        problems.truncate(MAX_LISTED_PROBLEMS);
    }
    if unlisted > 0 {
        problems.push(InputProblem {
            index: None,
            id: None,
            field: String::new(),
            message: format!("{unlisted} more problems are not listed"),
        });
    }
    refuse(code, problems)
}

/// `error`, its problems capped as [`capped`] does.
pub(super) fn listed(error: ApiError) -> ApiError {
    match error {
        ApiError::Refused { code, problems } => match capped(code, problems, 0) {
            Err(error) => error,
            Ok(()) => ApiError::Refused {
                code,
                problems: Vec::new(),
            },
        },
        other => other,
    }
}

/// The problems of a load's items: the first [`MAX_LISTED_PROBLEMS`]
/// listed, the rest counted. Any problem refuses the whole load.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    listed: Vec<InputProblem>,
    unlisted: usize,
}

impl Refusals {
    /// Whether some item was refused (nothing will be written).
    pub(super) fn any(&self) -> bool {
        !self.listed.is_empty() || self.unlisted > 0
    }

    pub(super) fn note(&mut self, problems: Vec<InputProblem>) {
        for problem in problems {
            if self.listed.len() < MAX_LISTED_PROBLEMS {
                self.listed.push(problem);
            } else {
                self.unlisted += 1;
            }
        }
    }

    /// `Err` (`BAD_USER_INPUT`, the problems capped) when any item was refused.
    pub(super) fn finish(&mut self) -> ApiResult<()> {
        if !self.any() {
            return Ok(());
        }
        capped(
            Refusal::BadUserInput,
            std::mem::take(&mut self.listed),
            self.unlisted,
        )
    }
}

/// The load's transaction, copying chunks on a task of its own, so that
/// checking the next lines overlaps the database taking the last ones. The
/// channel holds one chunk: a slow database slows the reader down. Dropped
/// (the load refused or abandoned), the task ends its chunk and the
/// transaction rolls back.
struct Copier {
    chunks: mpsc::Sender<Vec<u8>>,
    task: tokio::task::JoinHandle<ApiResult<BulkTxn>>,
}

impl Copier {
    fn start(mut txn: BulkTxn) -> Self {
        let (chunks, mut received) = mpsc::channel::<Vec<u8>>(1);
        let task = tokio::spawn(
            async move {
                while let Some(data) = received.recv().await {
                    let mut copy = txn.copy_in(COPY).await.map_err(ApiError::from_write)?;
                    copy.send(&data).await.map_err(ApiError::from_write)?;
                    copy.finish().await.map_err(ApiError::from_write)?;
                }
                Ok(txn)
            }
            .instrument(tracing::Span::current()),
        );
        Self { chunks, task }
    }

    /// Waits for every chunk sent to be copied; the transaction, or why not.
    async fn finish(self) -> ApiResult<BulkTxn> {
        drop(self.chunks);
        self.task
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("the copier failed: {e}")))?
    }
}

/// Writes `new` (item `index`) as a row of the staging table.
fn stage(chunk: &mut CopyChunk, index: usize, new: &NewRow<prediction::Model>) {
    let p = &new.row;
    let decimal = |d: &rust_decimal::Decimal| d.to_string();
    let opt_decimal = |d: &Option<rust_decimal::Decimal>| d.as_ref().map(decimal);
    let mut row = chunk.row(STAGED_FIELDS);
    row.int8(index as i64);
    row.uuid(&p.id);
    row.text(&p.prediction_id);
    row.text(&p.resource_id);
    row.text(&p.model_id);
    row.opt_text((!new.defaulted.contains(&"modelVersion")).then_some(p.model_version.as_str()));
    row.text(&decimal(&p.violation_probability));
    row.opt_text(opt_decimal(&p.time_to_violation_hours).as_deref());
    row.text(&decimal(&p.confidence_score));
    row.opt_text(opt_decimal(&p.confidence_interval_lower).as_deref());
    row.opt_text(opt_decimal(&p.confidence_interval_upper).as_deref());
    row.text(&p.risk_level);
    row.opt_text(opt_decimal(&p.risk_score).as_deref());
    row.jsonb(p.impact_factors.as_ref());
    row.jsonb(p.uncertainty_sources.as_ref());
    row.text_array(p.recommendations.as_ref().map(|list| list.0.as_slice()));
    row.jsonb(p.features_used.as_ref());
    row.jsonb(p.shap_values.as_ref());
    row.jsonb(p.attention_weights.as_ref());
    row.text(&decimal(&p.inference_time_ms));
    row.timestamptz(
        p.prediction_timestamp
            .expect("a staged prediction has its time"),
    );
    row.bool(!new.defaulted.contains(&"predictionTimestamp"));
    row.opt_timestamptz(p.expires_at);
    row.opt_text(p.remediation_status.as_deref());
    row.opt_uuid(p.remediation_id.as_ref());
}
