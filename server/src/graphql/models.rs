//! The model registry.

use async_graphql::{Context, Enum, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::model;

use super::analytics::{model_performance, ModelPerformance};
use super::common::order_input;
use super::common::page;
use super::common::{
    clearable, domain_values, list_query, node, page_complexity, vocab_opt, vocabulary,
    OrderDirection, TimeRange,
};
use super::drift::{DriftMetricConnection, DriftMetricFilter, DriftMetricOrder};
use super::feedback::{FeedbackConnection, FeedbackFilter, FeedbackOrder};
use super::loaders::child_page;
use super::loaders::row_by_id;
use super::loaders::{
    DriftOfModel, FeedbackOfModel, ModelById, PredictionsOfModel, TrainingJobByKey,
};
use super::predictions::{PredictionConnection, PredictionFilter, PredictionOrder};
use super::request_context;
use super::training::TrainingJob;
use crate::identity::can;
use crate::store::models::{self as store, ModelOrderField as DataOrderField};
use crate::write::models as write;

vocabulary!(
    /// Where a model is in its lifecycle.
    ModelStatus {
        Active,
        Training,
        Retired,
        Failed,
    }
);

/// Which models a list holds. All conditions must hold.
#[derive(InputObject, Default, Debug)]
pub struct ModelFilter {
    pub model_ids: Option<Vec<String>>,
    pub statuses: Option<Vec<ModelStatus>>,
    /// `lstm`, `ensemble`, `vae`, `prophet`, … (an open vocabulary).
    pub model_types: Option<Vec<String>>,
    pub versions: Option<Vec<String>>,
    pub created_at: Option<TimeRange>,
    pub deployed_at: Option<TimeRange>,
}

impl From<ModelFilter> for store::ModelFilter {
    fn from(filter: ModelFilter) -> Self {
        store::ModelFilter {
            model_ids: filter.model_ids,
            statuses: domain_values(filter.statuses),
            model_types: filter.model_types,
            versions: filter.versions,
            created_at: filter.created_at.map(Into::into),
            deployed_at: filter.deployed_at.map(Into::into),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::store::models::ModelOrderField")]
pub enum ModelOrderField {
    #[default]
    CreatedAt,
    UpdatedAt,
    DeployedAt,
    ModelId,
    ModelName,
}

/// How a model list is ordered; ties are broken by `modelId`.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct ModelOrder {
    #[graphql(default)]
    pub field: ModelOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

order_input!(ModelOrder => DataOrderField);

/// The registered quality metrics of a model.
#[derive(SimpleObject)]
pub struct ModelMetrics {
    pub accuracy: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1_score: Option<f64>,
    pub auc_roc: Option<f64>,
    /// Every stored metric, including the ones above.
    pub raw: Json<serde_json::Value>,
}

impl ModelMetrics {
    pub fn of(model: &model::Model) -> Self {
        let metric = |name: &str| model.metrics.get(name).and_then(serde_json::Value::as_f64);
        Self {
            accuracy: metric("accuracy"),
            precision: metric("precision"),
            recall: metric("recall"),
            f1_score: metric("f1_score"),
            auc_roc: metric("auc_roc"),
            raw: Json(model.metrics.clone()),
        }
    }
}

node!(
    /// A registered model version.
    Model(model::Model),
    ModelConnection,
    ModelEdge
);

/// A registered model version.
#[Object]
impl Model {
    async fn model_id(&self) -> &str {
        &self.0.model_id
    }

    async fn model_name(&self) -> &str {
        &self.0.model_name
    }

    /// `lstm`, `ensemble`, `vae`, `prophet`, …
    async fn model_type(&self) -> &str {
        &self.0.model_type
    }

    async fn version(&self) -> &str {
        &self.0.version
    }

    async fn parameters(&self) -> Json<&serde_json::Value> {
        Json(&self.0.parameters)
    }

    async fn metrics(&self) -> ModelMetrics {
        ModelMetrics::of(&self.0)
    }

    /// This model's performance over predictions made in `window` (all time
    /// when omitted); see `Query.modelPerformance`.
    async fn performance(
        &self,
        ctx: &Context<'_>,
        window: Option<TimeRange>,
        #[graphql(
            desc = "Probability at or above which the model decided \"violation\" (default 0.5)."
        )]
        decision_threshold: Option<f64>,
    ) -> async_graphql::Result<ModelPerformance> {
        model_performance(ctx, &self.0, window, decision_threshold).await
    }

    /// Where the model artefact is stored.
    async fn model_path(&self) -> Option<&str> {
        self.0.model_path.as_deref()
    }

    /// Whether an encrypted model artefact is stored (its bytes are never served).
    async fn has_encrypted_model(&self) -> bool {
        self.0.encrypted_model.is_some()
    }

    /// The key the stored artefact is encrypted with (an id, not the key).
    async fn encryption_key_id(&self) -> Option<&str> {
        self.0.encryption_key_id.as_deref()
    }

    async fn status(&self) -> async_graphql::Result<Option<ModelStatus>> {
        vocab_opt(self.0.status.as_deref())
    }

    async fn created_at(&self) -> Option<DateTime<Utc>> {
        self.0.created_at
    }

    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.updated_at
    }

    async fn deployed_at(&self) -> Option<DateTime<Utc>> {
        self.0.deployed_at
    }

    async fn retired_at(&self) -> Option<DateTime<Utc>> {
        self.0.retired_at
    }

    /// The training job that produced this model.
    async fn training_job(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TrainingJob>> {
        let Some(job_key) = self.0.training_job_id else {
            return Ok(None);
        };
        row_by_id(ctx, TrainingJobByKey, job_key).await
    }

    /// This model's predictions, newest first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn predictions(
        &self,
        ctx: &Context<'_>,
        filter: Option<PredictionFilter>,
        order_by: Option<PredictionOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<PredictionConnection> {
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?
            .with_columns(super::predictions::connection_columns(&ctx.look_ahead()));
        child_page(ctx, PredictionsOfModel, self.0.model_id.clone(), query).await
    }

    /// This model's drift metrics, most recent first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn drift_metrics(
        &self,
        ctx: &Context<'_>,
        filter: Option<DriftMetricFilter>,
        order_by: Option<DriftMetricOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<DriftMetricConnection> {
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        child_page(ctx, DriftOfModel, self.0.model_id.clone(), query).await
    }

    /// Feedback on this model's predictions, newest first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn feedback(
        &self,
        ctx: &Context<'_>,
        filter: Option<FeedbackFilter>,
        order_by: Option<FeedbackOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<FeedbackConnection> {
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        child_page(ctx, FeedbackOfModel, self.0.model_id.clone(), query).await
    }
}

#[derive(Default)]
pub struct ModelsQuery;

#[Object]
impl ModelsQuery {
    /// One model by id; null if the tenant has none with this id.
    async fn model(
        &self,
        ctx: &Context<'_>,
        model_id: String,
    ) -> async_graphql::Result<Option<Model>> {
        row_by_id(ctx, ModelById, model_id).await
    }

    /// Models, newest first unless ordered otherwise.
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
        let rc = request_context(ctx)?;
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        Ok(store::list(rc.scoped(), &query).await?.into())
    }
}

/// A model to register. The tenant comes from the credentials.
#[derive(InputObject, Debug)]
pub struct RegisterModelInput {
    /// The client's id for the model, unique in the tenant; registering it
    /// again with the same content is a harmless retry.
    pub model_id: String,
    pub model_name: String,
    /// `lstm`, `ensemble`, `vae`, `prophet`, … (at most 50 characters).
    pub model_type: String,
    /// At most 20 characters.
    pub version: String,
    /// Hyperparameters and settings (an object; `{}` when absent).
    pub parameters: Option<Json<serde_json::Value>>,
    /// Registered quality metrics (an object; `{}` when absent).
    /// `accuracy`, `precision`, `recall`, `f1_score` and `auc_roc` must be 0–1.
    pub metrics: Option<Json<serde_json::Value>>,
    /// Where the artefact is stored.
    pub model_path: Option<String>,
    /// The encrypted artefact, base64-encoded. Write-only: it is never
    /// returned, only `hasEncryptedModel` and `encryptionKeyId`.
    pub encrypted_model: Option<String>,
    /// The id of the key the artefact is encrypted with (required with `encryptedModel`).
    pub encryption_key_id: Option<String>,
    /// `TRAINING` or `ACTIVE` (the default; sets `deployedAt`).
    pub status: Option<ModelStatus>,
    /// The `jobId` of the tenant's training job that produced the model.
    pub training_job_id: Option<String>,
}

/// Changes to a model. Absent fields stay as they are; `null` clears a
/// clearable one.
#[derive(InputObject, Debug)]
pub struct UpdateModelInput {
    pub model_name: Option<String>,
    pub model_type: Option<String>,
    pub version: Option<String>,
    /// Replaces the parameters.
    pub parameters: Option<Json<serde_json::Value>>,
    /// Replaces the registered metrics.
    pub metrics: Option<Json<serde_json::Value>>,
    #[graphql(default)]
    pub model_path: MaybeUndefined<String>,
    /// A new encrypted artefact (base64), or `null` to remove it.
    #[graphql(default)]
    pub encrypted_model: MaybeUndefined<String>,
    #[graphql(default)]
    pub encryption_key_id: MaybeUndefined<String>,
    /// The `jobId` of a training job of the tenant, or `null`.
    #[graphql(default)]
    pub training_job_id: MaybeUndefined<String>,
}

#[derive(Default)]
pub struct ModelsMutation;

#[Object]
impl ModelsMutation {
    /// Registers a model (`admin`). The same model id with other content is
    /// `CONFLICT`: change a registered model with `updateModel`.
    async fn register_model(
        &self,
        ctx: &Context<'_>,
        input: RegisterModelInput,
    ) -> async_graphql::Result<Model> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageModels>()?;
        let input = write::RegisterModel {
            model_id: input.model_id,
            model_name: input.model_name,
            model_type: input.model_type,
            version: input.version,
            parameters: input.parameters.map_or_else(empty_object, |j| j.0),
            metrics: input.metrics.map_or_else(empty_object, |j| j.0),
            model_path: input.model_path,
            encrypted_model: input.encrypted_model,
            encryption_key_id: input.encryption_key_id,
            status: input.status.map(Into::into),
            training_job_id: input.training_job_id,
        };
        Ok(Model::from(write::register(&writer, input).await?))
    }

    /// Changes a model's metadata, metrics or parameters (`admin`). A call
    /// that changes nothing leaves `updatedAt` alone.
    async fn update_model(
        &self,
        ctx: &Context<'_>,
        model_id: String,
        input: UpdateModelInput,
    ) -> async_graphql::Result<Model> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageModels>()?;
        let changes = write::ModelChanges {
            model_name: input.model_name,
            model_type: input.model_type,
            version: input.version,
            parameters: input.parameters.map(|j| j.0),
            metrics: input.metrics.map(|j| j.0),
            model_path: clearable(input.model_path),
            encrypted_model: clearable(input.encrypted_model),
            encryption_key_id: clearable(input.encryption_key_id),
            training_job_id: clearable(input.training_job_id),
        };
        Ok(Model::from(
            write::update(&writer, &model_id, changes).await?,
        ))
    }

    /// Moves a model through its lifecycle (`admin`): `TRAINING → ACTIVE |
    /// FAILED`, `ACTIVE → RETIRED | FAILED`, `RETIRED → ACTIVE` (a rollback),
    /// `FAILED → TRAINING`. `→ ACTIVE` sets `deployedAt`, `→ RETIRED` sets
    /// `retiredAt`. Moving to the current status changes nothing; any other
    /// move is `BAD_USER_INPUT`.
    async fn transition_model(
        &self,
        ctx: &Context<'_>,
        model_id: String,
        to: ModelStatus,
    ) -> async_graphql::Result<Model> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageModels>()?;
        Ok(Model::from(
            write::transition(&writer, &model_id, to.into()).await?,
        ))
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}
