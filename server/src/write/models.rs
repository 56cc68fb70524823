//! The model registry's writes: registration, metadata changes and the
//! lifecycle (`training → active → retired`, `→ failed`).

use base64::Engine;
use chrono::{DateTime, Utc};
use entity::{model, training_job};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::{
    commit, create_one, locked_row, not_found, save_changes, Check, Checker, Fingerprint,
    Idempotent, Writer, MAX_ID_CHARS,
};
use crate::domain::{ModelStatus, Vocabulary};
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::{keyed_rows, now};

/// Registered metrics that are rates, so must lie in 0–1 when given.
const RATE_METRICS: [&str; 5] = ["accuracy", "precision", "recall", "f1_score", "auc_roc"];

/// A model to register. Vocabularies arrive as domain enums.
#[derive(Clone, Debug)]
pub struct RegisterModel {
    pub model_id: String,
    pub model_name: String,
    pub model_type: String,
    pub version: String,
    pub parameters: Json,
    pub metrics: Json,
    pub model_path: Option<String>,
    /// The encrypted artefact, base64-encoded; stored as bytes, never returned.
    pub encrypted_model: Option<String>,
    pub encryption_key_id: Option<String>,
    /// `training` or `active` (the default).
    pub status: Option<ModelStatus>,
    /// The business id of the training job that produced the model.
    pub training_job_id: Option<String>,
}

/// Changes to a model's metadata: `None` leaves a field as it is;
/// `Some(None)` clears a clearable one.
#[derive(Clone, Debug, Default)]
pub struct ModelChanges {
    pub model_name: Option<String>,
    pub model_type: Option<String>,
    pub version: Option<String>,
    pub parameters: Option<Json>,
    pub metrics: Option<Json>,
    pub model_path: Option<Option<String>>,
    pub encrypted_model: Option<Option<String>>,
    pub encryption_key_id: Option<Option<String>>,
    pub training_job_id: Option<Option<String>>,
}

impl Idempotent for model::Entity {
    fn key_column() -> model::Column {
        model::Column::ModelId
    }

    /// What registration sets. The lifecycle fields belong to
    /// `transitionModel` and are not compared.
    fn fingerprint(row: &model::Model) -> Fingerprint {
        Fingerprint::new()
            .text("modelName", &row.model_name)
            .text("modelType", &row.model_type)
            .text("version", &row.version)
            .json("parameters", Some(&row.parameters))
            .json("metrics", Some(&row.metrics))
            .opt_text("modelPath", row.model_path.as_deref())
            .opt_text(
                "encryptedModel",
                row.encrypted_model.as_deref().map(sha256_hex).as_deref(),
            )
            .opt_text("encryptionKeyId", row.encryption_key_id.as_deref())
            .opt_text(
                "trainingJobId",
                row.training_job_id.map(|id| id.to_string()).as_deref(),
            )
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_name_and_type(check: &mut Check<'_>, name: Option<&str>, model_type: Option<&str>) {
    if let Some(name) = name {
        check.required_text("modelName", name, MAX_ID_CHARS);
    }
    if let Some(model_type) = model_type {
        check.required_text("modelType", model_type, 50);
    }
}

fn check_version(check: &mut Check<'_>, version: &str) {
    check.required_text("version", version, 20);
}

fn check_parameters(check: &mut Check<'_>, parameters: &Json) {
    check.json_object("parameters", parameters);
}

/// Metrics are an object; the well-known rates among them are numbers in 0–1.
fn check_metrics(check: &mut Check<'_>, metrics: &Json) {
    let Some(object) = metrics.as_object() else {
        check.problem("metrics", "must be a JSON object");
        return;
    };
    for name in RATE_METRICS {
        match object.get(name) {
            None | Some(Json::Null) => {}
            Some(value) if value.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)) => {}
            Some(_) => check.problem(&format!("metrics.{name}"), "must be a number from 0 to 1"),
        }
    }
}

/// The decoded artefact, if it is valid base64.
fn decode_artefact(check: &mut Check<'_>, encoded: &str) -> Option<Vec<u8>> {
    match base64::engine::general_purpose::STANDARD.decode(encoded.trim()) {
        Ok(bytes) if !bytes.is_empty() => Some(bytes),
        Ok(_) => {
            check.problem("encryptedModel", "must not be empty");
            None
        }
        Err(_) => {
            check.problem(
                "encryptedModel",
                "must be base64 (standard alphabet, padded)",
            );
            None
        }
    }
}

/// An encrypted artefact without the id of its key could never be decrypted.
fn check_artefact_key(check: &mut Check<'_>, has_artefact: bool, key_id: Option<&str>) {
    if let Some(key_id) = key_id {
        check.id("encryptionKeyId", key_id);
    }
    if has_artefact && key_id.is_none() {
        check.problem(
            "encryptionKeyId",
            "is required while an encrypted model is stored",
        );
    }
}

/// The row key of the tenant's training job `job_id` (`NOT_FOUND` otherwise).
async fn training_job_key(txn: &crate::db::ScopedTxn, job_id: &str) -> ApiResult<uuid::Uuid> {
    let jobs = keyed_rows::<training_job::Entity, _>(
        txn,
        training_job::Column::JobId,
        &[job_id.to_owned()],
        |job| job.job_id.clone(),
    )
    .await?;
    jobs.get(job_id)
        .map(|job| job.id)
        .ok_or_else(|| not_found("input.trainingJobId", "training job", job_id))
}

/// Registers a model. Registering a model id again with the same content
/// returns the registered model (a retry); with other content it is
/// `CONFLICT` (change a model with `updateModel`).
pub async fn register(
    writer: &Writer<can::ManageModels>,
    input: RegisterModel,
) -> ApiResult<model::Model> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    check.id("modelId", &input.model_id);
    check_name_and_type(&mut check, Some(&input.model_name), Some(&input.model_type));
    check_version(&mut check, &input.version);
    check_parameters(&mut check, &input.parameters);
    check_metrics(&mut check, &input.metrics);
    check.opt_text("modelPath", input.model_path.as_deref(), 4_000);
    let artefact = input
        .encrypted_model
        .as_deref()
        .and_then(|encoded| decode_artefact(&mut check, encoded));
    check_artefact_key(
        &mut check,
        input.encrypted_model.is_some(),
        input.encryption_key_id.as_deref(),
    );
    let status = input.status.unwrap_or(ModelStatus::DEFAULT);
    if !ModelStatus::REGISTERED.contains(&status) {
        check.problem(
            "status",
            "a model is registered as TRAINING or ACTIVE; use transitionModel afterwards",
        );
    }
    if let Some(job_id) = &input.training_job_id {
        check.id("trainingJobId", job_id);
    }
    checker.finish()?;

    let txn = writer.begin().await?;
    let training_job_id = match &input.training_job_id {
        Some(job_id) => Some(training_job_key(&txn, job_id).await?),
        None => None,
    };
    let registered_at = now();
    let row = model::Model {
        id: uuid::Uuid::new_v4(),
        model_id: input.model_id,
        tenant_id: txn.tenant().to_owned(),
        model_name: input.model_name,
        model_type: input.model_type,
        version: input.version,
        parameters: input.parameters,
        metrics: input.metrics,
        model_path: input.model_path,
        encrypted_model: artefact,
        encryption_key_id: input.encryption_key_id,
        status: Some(status.as_db().to_owned()),
        training_job_id,
        created_at: Some(registered_at),
        updated_at: Some(registered_at),
        deployed_at: (status == ModelStatus::Active).then_some(registered_at),
        retired_at: None,
    };
    create_one::<model::Entity>(txn, row, Vec::new()).await
}

/// Changes a model's metadata, metrics or parameters. Only the given fields
/// change; a call that changes nothing writes nothing (and leaves
/// `updatedAt` alone), so a retry is harmless.
pub async fn update(
    writer: &Writer<can::ManageModels>,
    model_id: &str,
    changes: ModelChanges,
) -> ApiResult<model::Model> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    check_name_and_type(
        &mut check,
        changes.model_name.as_deref(),
        changes.model_type.as_deref(),
    );
    if let Some(version) = &changes.version {
        check_version(&mut check, version);
    }
    if let Some(parameters) = &changes.parameters {
        check_parameters(&mut check, parameters);
    }
    if let Some(metrics) = &changes.metrics {
        check_metrics(&mut check, metrics);
    }
    if let Some(Some(path)) = &changes.model_path {
        check.text("modelPath", path, 4_000);
    }
    let artefact = match &changes.encrypted_model {
        Some(Some(encoded)) => Some(decode_artefact(&mut check, encoded)),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(Some(job_id)) = &changes.training_job_id {
        check.id("trainingJobId", job_id);
    }
    checker.finish()?;

    let txn = writer.begin().await?;
    let row = locked_row::<model::Entity>(&txn, model::Column::ModelId, model_id)
        .await?
        .ok_or_else(|| not_found("modelId", "model", model_id))?;
    let training_job_id = match &changes.training_job_id {
        Some(Some(job_id)) => Some(Some(training_job_key(&txn, job_id).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let mut changed = row.clone();
    macro_rules! apply {
        ($($field:ident = $value:expr;)*) => {
            $(if let Some(value) = $value {
                changed.$field = value;
            })*
        };
    }
    apply! {
        model_name = changes.model_name;
        model_type = changes.model_type;
        version = changes.version;
        parameters = changes.parameters;
        metrics = changes.metrics;
        model_path = changes.model_path;
        encrypted_model = artefact;
        encryption_key_id = changes.encryption_key_id;
        training_job_id = training_job_id;
    }
    let mut checker = Checker::new();
    check_artefact_key(
        &mut checker.object("input"),
        changed.encrypted_model.is_some(),
        changed.encryption_key_id.as_deref(),
    );
    checker.finish()?;
    if changed == row {
        return Ok(row);
    }
    changed.updated_at = Some(now());
    let row = save_changes::<model::Entity>(&txn, row, changed).await?;
    commit(txn).await?;
    Ok(row)
}

/// Moves a model through its lifecycle. `→ active` sets `deployedAt` (and
/// clears `retiredAt`), `→ retired` sets `retiredAt`. Moving to the status
/// the model already has changes nothing (a retry); any move the lifecycle
/// does not allow is `BAD_USER_INPUT`, naming the allowed ones.
pub async fn transition(
    writer: &Writer<can::ManageModels>,
    model_id: &str,
    to: ModelStatus,
) -> ApiResult<model::Model> {
    let txn = writer.begin().await?;
    let row = locked_row::<model::Entity>(&txn, model::Column::ModelId, model_id)
        .await?
        .ok_or_else(|| not_found("modelId", "model", model_id))?;
    // A status outside the vocabulary (another tool wrote it) may move nowhere.
    let from_db = row
        .status
        .clone()
        .unwrap_or_else(|| ModelStatus::DEFAULT.as_db().to_owned());
    let from = ModelStatus::from_db(&from_db);
    if from == Some(to) {
        return Ok(row);
    }
    let allowed = from.map(ModelStatus::next).unwrap_or_default();
    if !allowed.contains(&to) {
        return Err(ApiError::BadUserInput {
            message: format!(
                "model `{model_id}` cannot move from {} to {}; from {} it may move to {}",
                from_db.to_uppercase(),
                to.api_name(),
                from_db.to_uppercase(),
                if allowed.is_empty() {
                    "nothing".to_owned()
                } else {
                    allowed
                        .iter()
                        .map(|s| s.api_name())
                        .collect::<Vec<_>>()
                        .join(" or ")
                }
            ),
            field: Some("to".into()),
        });
    }
    let at: DateTime<Utc> = now();
    let mut changed = row.clone();
    changed.status = Some(to.as_db().to_owned());
    changed.updated_at = Some(at);
    match to {
        ModelStatus::Active => {
            changed.deployed_at = Some(at);
            changed.retired_at = None;
        }
        ModelStatus::Retired => changed.retired_at = Some(at),
        ModelStatus::Training | ModelStatus::Failed => {}
    }
    let row = save_changes::<model::Entity>(&txn, row, changed).await?;
    commit(txn).await?;
    tracing::info!(model = model_id, from = %from_db, to = to.as_db(), "model transitioned");
    Ok(row)
}
