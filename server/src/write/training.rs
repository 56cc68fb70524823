//! Training jobs: creation and their status as they run.

use chrono::{DateTime, Utc};
use entity::training_job;
use serde_json::Value as Json;

use super::{
    commit, create_one, locked_row, not_found, save_changes, Check, Checker, DecimalSpec,
    Fingerprint, Idempotent, Writer,
};
use crate::domain::{JobStatus, TriggerReason, Vocabulary};
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::{now, truncate_to_micros};

/// The longest error message kept.
const MAX_ERROR_MESSAGE_CHARS: usize = 20_000;

/// A training job to create. Vocabularies arrive as domain enums.
#[derive(Clone, Debug)]
pub struct CreateTrainingJob {
    /// The client's id for the job, which makes a retry safe; a fresh one is
    /// generated when absent.
    pub job_id: Option<String>,
    pub model_type: String,
    pub trigger_reason: TriggerReason,
    /// `queued` (the default) or `running`.
    pub status: Option<JobStatus>,
    pub training_config: Json,
    pub hyperparameters: Option<Json>,
    pub dataset_info: Option<Json>,
    pub estimated_completion: Option<DateTime<Utc>>,
    pub resource_usage: Option<Json>,
    pub cost_estimate: Option<f64>,
}

/// What a running job reports: `None` leaves a field as it is;
/// `error_message: Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct TrainingJobChanges {
    pub status: Option<JobStatus>,
    pub metrics: Option<Json>,
    pub error_message: Option<Option<String>>,
    pub resource_usage: Option<Json>,
    pub cost_estimate: Option<f64>,
    pub estimated_completion: Option<DateTime<Utc>>,
}

impl Idempotent for training_job::Entity {
    fn key_column() -> training_job::Column {
        training_job::Column::JobId
    }

    /// What creation alone sets; progress fields belong to `updateTrainingJob`.
    fn fingerprint(row: &training_job::Model) -> Fingerprint {
        Fingerprint::new()
            .text("modelType", &row.model_type)
            .text("triggerReason", &row.trigger_reason)
            .json("trainingConfig", Some(&row.training_config))
            .json("hyperparameters", row.hyperparameters.as_ref())
            .json("datasetInfo", row.dataset_info.as_ref())
            .opt_text("createdBy", row.created_by.as_deref())
    }
}

fn check_object(check: &mut Check<'_>, field: &str, value: Option<&Json>) {
    if let Some(value) = value {
        check.json_object(field, value);
    }
}

/// Creates a training job, `queued` unless created `running`;
/// `createdBy` is the caller. Creating a job id again with the same
/// content returns the job (a retry); other content is `CONFLICT`.
pub async fn create(
    writer: &Writer<can::Ingest>,
    input: CreateTrainingJob,
) -> ApiResult<training_job::Model> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    if let Some(job_id) = &input.job_id {
        check.id("jobId", job_id);
    }
    check.required_text("modelType", &input.model_type, 50);
    check.json_object("trainingConfig", &input.training_config);
    check_object(
        &mut check,
        "hyperparameters",
        input.hyperparameters.as_ref(),
    );
    check_object(&mut check, "datasetInfo", input.dataset_info.as_ref());
    check_object(&mut check, "resourceUsage", input.resource_usage.as_ref());
    let cost_estimate = check.opt_decimal("costEstimate", input.cost_estimate, DecimalSpec::AMOUNT);
    let status = input.status.unwrap_or(JobStatus::Queued);
    if !JobStatus::CREATED.contains(&status) {
        check.problem(
            "status",
            "a job is created QUEUED or RUNNING; report the rest with updateTrainingJob",
        );
    }
    check.caller("createdBy", writer);
    checker.finish()?;

    let txn = writer.begin().await?;
    let created_at = now();
    let mut defaulted = Vec::new();
    let job_id = input.job_id.unwrap_or_else(|| {
        defaulted.push("jobId");
        format!("job-{}", uuid::Uuid::new_v4().simple())
    });
    let row = training_job::Model {
        id: uuid::Uuid::new_v4(),
        job_id,
        tenant_id: txn.tenant().to_owned(),
        model_type: input.model_type,
        trigger_reason: input.trigger_reason.as_db().to_owned(),
        status: status.as_db().to_owned(),
        training_config: input.training_config,
        hyperparameters: input.hyperparameters,
        dataset_info: input.dataset_info,
        metrics: None,
        error_message: None,
        started_at: (status == JobStatus::Running).then_some(created_at),
        completed_at: None,
        estimated_completion: input.estimated_completion.map(truncate_to_micros),
        created_at: Some(created_at),
        created_by: Some(writer.subject().to_owned()),
        resource_usage: input.resource_usage,
        cost_estimate,
    };
    let job = create_one::<training_job::Entity>(txn, row, defaulted).await?;
    writer.events().job_committed(writer.tenant(), &job.job_id);
    Ok(job)
}

/// Reports a job's progress. A status change must follow the lifecycle
/// (`queued → running → completed`, `→ failed`, `→ cancelled`; finished jobs
/// stay finished): `→ running` sets `startedAt`, a finish sets
/// `completedAt`. Reporting the current status again changes nothing.
pub async fn update(
    writer: &Writer<can::Ingest>,
    job_id: &str,
    changes: TrainingJobChanges,
) -> ApiResult<training_job::Model> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    check_object(&mut check, "metrics", changes.metrics.as_ref());
    check_object(&mut check, "resourceUsage", changes.resource_usage.as_ref());
    if let Some(Some(message)) = &changes.error_message {
        check.text("errorMessage", message, MAX_ERROR_MESSAGE_CHARS);
    }
    let cost_estimate =
        check.opt_decimal("costEstimate", changes.cost_estimate, DecimalSpec::AMOUNT);
    checker.finish()?;

    let txn = writer.begin().await?;
    let row = locked_row::<training_job::Entity>(&txn, training_job::Column::JobId, job_id)
        .await?
        .ok_or_else(|| not_found("jobId", "training job", job_id))?;
    let mut changed = row.clone();
    let at = now();
    if let Some(to) = changes.status.filter(|to| to.as_db() != row.status) {
        // A status outside the vocabulary (another tool wrote it) may move nowhere.
        let allowed = JobStatus::from_db(&row.status)
            .map(JobStatus::next)
            .unwrap_or_default();
        if !allowed.contains(&to) {
            return Err(ApiError::BadUserInput {
                message: format!(
                    "training job `{job_id}` cannot move from {} to {}{}",
                    row.status.to_uppercase(),
                    to.api_name(),
                    if allowed.is_empty() {
                        "; it has finished".to_owned()
                    } else {
                        format!(
                            "; it may move to {}",
                            allowed
                                .iter()
                                .map(|s| s.api_name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
                field: Some("input.status".into()),
            });
        }
        changed.status = to.as_db().to_owned();
        if to == JobStatus::Running {
            changed.started_at = changed.started_at.or(Some(at));
        } else {
            changed.completed_at = Some(at);
        }
    }
    if let Some(metrics) = changes.metrics {
        changed.metrics = Some(metrics);
    }
    if let Some(message) = changes.error_message {
        changed.error_message = message;
    }
    if let Some(usage) = changes.resource_usage {
        changed.resource_usage = Some(usage);
    }
    if cost_estimate.is_some() {
        changed.cost_estimate = cost_estimate;
    }
    if let Some(eta) = changes.estimated_completion {
        changed.estimated_completion = Some(truncate_to_micros(eta));
    }
    if changed == row {
        return Ok(row);
    }
    let updated = save_changes::<training_job::Entity>(&txn, row.clone(), changed).await?;
    commit(txn).await?;
    if updated.status != row.status {
        tracing::info!(job = job_id, from = %row.status, to = %updated.status, "training job moved");
        writer.events().job_committed(writer.tenant(), job_id);
    }
    Ok(updated)
}
