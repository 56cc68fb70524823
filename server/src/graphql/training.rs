//! Training jobs.

use async_graphql::{Context, Enum, InputObject, Json, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use entity::training_job;

use super::common::order_input;
use super::common::page;
use super::common::{
    clearable, domain_values, float_opt, list_query, node, page_complexity, time_range, vocab,
    vocabulary, FloatRange, OrderDirection,
};
use super::loaders::child_page;
use super::loaders::row_by_id;
use super::loaders::{ModelsOfTrainingJob, TrainingJobById};
use super::models::{ModelConnection, ModelFilter, ModelOrder};
use super::request_context;
use crate::identity::can;
use crate::store::training::{self as store, TrainingJobOrderField as DataOrderField};
use crate::write::training as write;

vocabulary!(
    /// Where a training job stands.
    JobStatus {
        Queued,
        Running,
        Completed,
        Failed,
        Cancelled,
    }
);

vocabulary!(
    /// Why a training job was started.
    TriggerReason {
        Scheduled,
        DriftDetected,
        Manual,
        FeedbackThreshold,
    }
);

/// Which training jobs a list holds. All conditions must hold.
#[derive(InputObject, Default, Debug)]
pub struct TrainingJobFilter {
    pub job_ids: Option<Vec<String>>,
    pub statuses: Option<Vec<JobStatus>>,
    pub trigger_reasons: Option<Vec<TriggerReason>>,
    pub model_types: Option<Vec<String>>,
    pub created_by: Option<Vec<String>>,
    pub cost_estimate: Option<FloatRange>,
    /// Created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Created before this time.
    pub to: Option<DateTime<Utc>>,
}

impl From<TrainingJobFilter> for store::TrainingJobFilter {
    fn from(filter: TrainingJobFilter) -> Self {
        store::TrainingJobFilter {
            job_ids: filter.job_ids,
            statuses: domain_values(filter.statuses),
            trigger_reasons: domain_values(filter.trigger_reasons),
            model_types: filter.model_types,
            created_by: filter.created_by,
            cost_estimate: filter.cost_estimate.map(Into::into),
            created_at: time_range(filter.from, filter.to),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::store::training::TrainingJobOrderField")]
pub enum TrainingJobOrderField {
    #[default]
    CreatedAt,
    StartedAt,
    CompletedAt,
    CostEstimate,
    JobId,
}

/// How a training job list is ordered; ties are broken by `jobId`.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct TrainingJobOrder {
    #[graphql(default)]
    pub field: TrainingJobOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

order_input!(TrainingJobOrder => DataOrderField);

node!(
    /// A (re)training run.
    TrainingJob(training_job::Model),
    TrainingJobConnection,
    TrainingJobEdge
);

/// A (re)training run.
#[Object]
impl TrainingJob {
    async fn job_id(&self) -> &str {
        &self.0.job_id
    }

    async fn model_type(&self) -> &str {
        &self.0.model_type
    }

    async fn trigger_reason(&self) -> async_graphql::Result<TriggerReason> {
        vocab(&self.0.trigger_reason)
    }

    async fn status(&self) -> async_graphql::Result<JobStatus> {
        vocab(&self.0.status)
    }

    async fn training_config(&self) -> Json<&serde_json::Value> {
        Json(&self.0.training_config)
    }

    async fn hyperparameters(&self) -> Option<Json<&serde_json::Value>> {
        self.0.hyperparameters.as_ref().map(Json)
    }

    async fn dataset_info(&self) -> Option<Json<&serde_json::Value>> {
        self.0.dataset_info.as_ref().map(Json)
    }

    async fn metrics(&self) -> Option<Json<&serde_json::Value>> {
        self.0.metrics.as_ref().map(Json)
    }

    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }

    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }

    async fn estimated_completion(&self) -> Option<DateTime<Utc>> {
        self.0.estimated_completion
    }

    async fn created_at(&self) -> Option<DateTime<Utc>> {
        self.0.created_at
    }

    async fn created_by(&self) -> Option<&str> {
        self.0.created_by.as_deref()
    }

    /// CPU, memory and GPU used.
    async fn resource_usage(&self) -> Option<Json<&serde_json::Value>> {
        self.0.resource_usage.as_ref().map(Json)
    }

    async fn cost_estimate(&self) -> Option<f64> {
        float_opt(&self.0.cost_estimate)
    }

    /// The models this job produced.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn models(
        &self,
        ctx: &Context<'_>,
        filter: Option<ModelFilter>,
        order_by: Option<ModelOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<ModelConnection> {
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        child_page(ctx, ModelsOfTrainingJob, self.0.id, query).await
    }
}

#[derive(Default)]
pub struct TrainingQuery;

#[Object]
impl TrainingQuery {
    /// One training job by id; null if the tenant has none with this id.
    async fn training_job(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<Option<TrainingJob>> {
        row_by_id(ctx, TrainingJobById, job_id).await
    }

    /// Training jobs, newest first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn training_jobs(
        &self,
        ctx: &Context<'_>,
        filter: Option<TrainingJobFilter>,
        order_by: Option<TrainingJobOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<TrainingJobConnection> {
        let rc = request_context(ctx)?;
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        Ok(store::list(rc.scoped(), &query).await?.into())
    }
}

/// A training job to create. The tenant and `createdBy` come from the credentials.
#[derive(InputObject, Debug)]
pub struct CreateTrainingJobInput {
    /// The client's id for the job: send one to make retries safe (a fresh
    /// `job-…` id is generated when absent).
    pub job_id: Option<String>,
    pub model_type: String,
    pub trigger_reason: TriggerReason,
    /// `QUEUED` (the default) or `RUNNING` (sets `startedAt`).
    pub status: Option<JobStatus>,
    /// An object.
    pub training_config: Json<serde_json::Value>,
    pub hyperparameters: Option<Json<serde_json::Value>>,
    pub dataset_info: Option<Json<serde_json::Value>>,
    pub estimated_completion: Option<DateTime<Utc>>,
    /// CPU, memory and GPU (an object).
    pub resource_usage: Option<Json<serde_json::Value>>,
    /// ≥ 0, stored to 2 decimal places.
    pub cost_estimate: Option<f64>,
}

/// A running job's progress. Absent fields stay as they are.
#[derive(InputObject, Debug)]
pub struct UpdateTrainingJobInput {
    pub status: Option<JobStatus>,
    /// Replaces the job's metrics (an object).
    pub metrics: Option<Json<serde_json::Value>>,
    /// `null` clears it.
    #[graphql(default)]
    pub error_message: MaybeUndefined<String>,
    pub resource_usage: Option<Json<serde_json::Value>>,
    pub cost_estimate: Option<f64>,
    pub estimated_completion: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct TrainingMutation;

#[Object]
impl TrainingMutation {
    /// Creates a training job (`service`, `admin`). The same `jobId` with the
    /// same content is a retry; with other content, `CONFLICT`.
    async fn create_training_job(
        &self,
        ctx: &Context<'_>,
        input: CreateTrainingJobInput,
    ) -> async_graphql::Result<TrainingJob> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::Ingest>()?;
        let input = write::CreateTrainingJob {
            job_id: input.job_id,
            model_type: input.model_type,
            trigger_reason: input.trigger_reason.into(),
            status: input.status.map(Into::into),
            training_config: input.training_config.0,
            hyperparameters: input.hyperparameters.map(|j| j.0),
            dataset_info: input.dataset_info.map(|j| j.0),
            estimated_completion: input.estimated_completion,
            resource_usage: input.resource_usage.map(|j| j.0),
            cost_estimate: input.cost_estimate,
        };
        Ok(TrainingJob::from(write::create(&writer, input).await?))
    }

    /// Reports a job's progress (`service`, `admin`). Status moves follow
    /// `QUEUED → RUNNING → COMPLETED`, `→ FAILED`, `→ CANCELLED`; finished
    /// jobs stay finished (`BAD_USER_INPUT`). `→ RUNNING` sets `startedAt`,
    /// a finish sets `completedAt`. Reporting the current status again
    /// changes nothing.
    async fn update_training_job(
        &self,
        ctx: &Context<'_>,
        job_id: String,
        input: UpdateTrainingJobInput,
    ) -> async_graphql::Result<TrainingJob> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::Ingest>()?;
        let changes = write::TrainingJobChanges {
            status: input.status.map(Into::into),
            metrics: input.metrics.map(|j| j.0),
            error_message: clearable(input.error_message),
            resource_usage: input.resource_usage.map(|j| j.0),
            cost_estimate: input.cost_estimate,
            estimated_completion: input.estimated_completion,
        };
        Ok(TrainingJob::from(
            write::update(&writer, &job_id, changes).await?,
        ))
    }
}
