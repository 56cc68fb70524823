//! Per-request DataLoaders. One `DataLoader<DbLoader>` is created for each
//! request (or WebSocket operation) around that request's [`Scoped`] handle,
//! and every key carries the tenant it was made for: a key of another tenant
//! is refused, so a loader can never answer across tenants even if one were
//! shared by mistake.
//!
//! Single rows load by business id; nested lists load one page per parent,
//! grouped by identical list arguments, in one statement per group.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{drift_metric, feedback, model, prediction, training_job};

use super::batch::BatchSpawner;
use crate::db::Scoped;
use crate::error::{ApiError, ApiResult};
use crate::store::analytics::performance::{self, ModelPerformance, PerformanceOptions};
use crate::store::drift::DriftQuery;
use crate::store::feedback::FeedbackQuery;
use crate::store::models::ModelQuery;
use crate::store::predictions::PredictionQuery;
use crate::store::{self, Columns, Page};

/// The largest batch one load may carry. Page caps and the complexity limit
/// keep real batches far below it; it only bounds the statement size.
const MAX_BATCH: usize = 10_000;

pub type Loaders = DataLoader<DbLoader>;

/// The loaders of one request, whose batches run on `spawner`'s executor
/// once the operation waits (see `batch.rs`), so no delay is needed.
pub fn loaders(scoped: Scoped, spawner: BatchSpawner) -> Loaders {
    let loader = DbLoader {
        scoped,
        joined_models: std::sync::Mutex::default(),
    };
    DataLoader::new(loader, move |task| spawner.spawn(task))
        .max_batch_size(MAX_BATCH)
        .delay(std::time::Duration::ZERO)
}

pub struct DbLoader {
    scoped: Scoped,
    /// Models read along with predictions (by model id), for this request.
    joined_models: std::sync::Mutex<HashMap<String, model::Model>>,
}

/// A failed load, shared by every key of its batch.
pub type LoadError = Arc<ApiError>;

impl DbLoader {
    /// Refuses keys minted for another tenant (fail closed).
    fn check_tenant<'a>(
        &self,
        tenants: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), LoadError> {
        for tenant in tenants {
            if tenant != self.scoped.tenant() {
                return Err(fail(ApiError::Internal(anyhow::anyhow!(
                    "a loader key of another tenant reached this request's loader"
                ))));
            }
        }
        Ok(())
    }
}

/// Logs an internal failure once per batch and shares it.
fn fail(error: ApiError) -> LoadError {
    if let ApiError::Internal(cause) = &error {
        tracing::error!(error = ?cause, "batched load failed");
    }
    Arc::new(error)
}

/// A single row by business id, for one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowKey<K> {
    pub tenant: Arc<str>,
    pub id: K,
}

/// One page of children of `parent`, for one tenant and one set of list arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey<P, Q> {
    pub tenant: Arc<str>,
    pub parent: P,
    pub query: Arc<Q>,
}

/// Marker types telling the relations apart where parent and child types coincide.
macro_rules! relation_keys {
    ($($name:ident($parent:ty, $query:ty);)*) => {
        $(
            #[derive(Clone, Debug, PartialEq, Eq, Hash)]
            pub struct $name(pub PageKey<$parent, $query>);
        )*
    };
}

relation_keys! {
    PredictionsOfModel(String, PredictionQuery);
    DriftOfModel(String, DriftQuery);
    FeedbackOfModel(String, FeedbackQuery);
    FeedbackOfPrediction(String, FeedbackQuery);
    ModelsOfTrainingJob(uuid::Uuid, ModelQuery);
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelById(pub RowKey<String>);
/// A prediction by id, reading the optional columns given (a batch reads
/// the union of its keys').
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PredictionById(pub RowKey<String>, pub Columns);
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrainingJobByKey(pub RowKey<uuid::Uuid>);
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrainingJobById(pub RowKey<String>);

/// Loads rows by id: `fetch` gets the tenant's rows for the ids; absent ids stay absent.
async fn load_rows<W, K, M: Clone, F, Fut>(
    loader: &DbLoader,
    keys: &[W],
    key: impl Fn(&W) -> &RowKey<K>,
    fetch: F,
) -> Result<HashMap<W, M>, LoadError>
where
    W: Clone + Eq + Hash,
    K: Clone + Eq + Hash,
    F: FnOnce(Scoped, Vec<K>) -> Fut,
    Fut: std::future::Future<Output = ApiResult<HashMap<K, M>>>,
{
    loader.check_tenant(keys.iter().map(|k| &*key(k).tenant))?;
    let ids: Vec<K> = keys.iter().map(|k| key(k).id.clone()).collect();
    let rows = fetch(loader.scoped.clone(), ids).await.map_err(fail)?;
    // Cloned, not moved: keys differing in what they read share an id.
    Ok(keys
        .iter()
        .filter_map(|k| rows.get(&key(k).id).map(|row| (k.clone(), row.clone())))
        .collect())
}

/// Loads a value per parent (a child page, a model's performance): one
/// fetch per distinct query, for all its parents.
async fn load_pages<W, P, Q, V, F, Fut>(
    loader: &DbLoader,
    keys: &[W],
    key: impl Fn(&W) -> &PageKey<P, Q>,
    fetch: F,
) -> Result<HashMap<W, V>, LoadError>
where
    W: Clone + Eq + Hash,
    P: Clone + Eq + Hash,
    Q: Eq + Hash,
    F: Fn(Scoped, Vec<P>, Arc<Q>) -> Fut,
    Fut: std::future::Future<Output = ApiResult<HashMap<P, V>>>,
{
    loader.check_tenant(keys.iter().map(|k| &*key(k).tenant))?;
    let mut groups: HashMap<&Arc<Q>, Vec<&W>> = HashMap::new();
    for k in keys {
        groups.entry(&key(k).query).or_default().push(k);
    }
    let mut out = HashMap::with_capacity(keys.len());
    for (query, members) in groups {
        let parents: Vec<P> = members.iter().map(|k| key(k).parent.clone()).collect();
        let mut pages = fetch(loader.scoped.clone(), parents, query.clone())
            .await
            .map_err(fail)?;
        for k in members {
            if let Some(page) = pages.remove(&key(k).parent) {
                out.insert(k.clone(), page);
            }
        }
    }
    Ok(out)
}

/// `impl Loader<$key>`: rows by id through `load_rows`, pages by parent
/// through `load_pages`, each with the store function that fetches them.
macro_rules! loader {
    (rows $key:ident => $value:ty, $fetch:path) => {
        impl Loader<$key> for DbLoader {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, LoadError> {
                load_rows(
                    self,
                    keys,
                    |k| &k.0,
                    |scoped, ids| async move { $fetch(&scoped, &ids).await },
                )
                .await
            }
        }
    };
    (pages $key:ident => $row:ty, $fetch:path) => {
        impl Loader<$key> for DbLoader {
            type Value = Page<$row>;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Page<$row>>, LoadError> {
                load_pages(
                    self,
                    keys,
                    |k| &k.0,
                    |scoped, parents, query| async move { $fetch(&scoped, &parents, &query).await },
                )
                .await
            }
        }
    };
}

/// Models come from those a prediction load joined in (see below) when
/// they are there, else from one statement for the rest.
impl Loader<ModelById> for DbLoader {
    type Value = model::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ModelById],
    ) -> Result<HashMap<ModelById, model::Model>, LoadError> {
        let joined = &self.joined_models;
        load_rows(
            self,
            keys,
            |k| &k.0,
            |scoped, ids| async move {
                let (mut found, missing) = {
                    let joined = joined.lock().expect("joined models lock");
                    let mut found = HashMap::new();
                    let mut missing = Vec::new();
                    for id in ids {
                        match joined.get(&id) {
                            Some(model) => {
                                found.insert(id, model.clone());
                            }
                            None => missing.push(id),
                        }
                    }
                    (found, missing)
                };
                if !missing.is_empty() {
                    found.extend(store::models::by_ids(&scoped, &missing).await?);
                }
                Ok(found)
            },
        )
        .await
    }
}

/// Predictions by id. When a selection also asks for their model, the
/// models are joined into the same statement and kept for the model loader,
/// which then needs no statement of its own.
impl Loader<PredictionById> for DbLoader {
    type Value = prediction::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PredictionById],
    ) -> Result<HashMap<PredictionById, prediction::Model>, LoadError> {
        let columns = keys
            .iter()
            .fold(Columns::NONE, |columns, key| columns.union(key.1));
        let joined = &self.joined_models;
        load_rows(
            self,
            keys,
            |k| &k.0,
            |scoped, ids| async move {
                if !columns.has(store::predictions::optional::WITH_MODEL) {
                    return store::predictions::by_ids(&scoped, &ids, columns).await;
                }
                let found = store::predictions::by_ids_with_models(&scoped, &ids, columns).await?;
                // At most the models of one request's predictions.
                joined
                    .lock()
                    .expect("joined models lock")
                    .extend(found.models);
                Ok(found.predictions)
            },
        )
        .await
    }
}
loader!(rows TrainingJobByKey => training_job::Model, store::training::by_keys);
loader!(rows TrainingJobById => training_job::Model, store::training::by_job_ids);
loader!(pages PredictionsOfModel => prediction::Model, store::predictions::pages_by_model);
loader!(pages DriftOfModel => drift_metric::Model, store::drift::pages_by_model);
loader!(pages FeedbackOfModel => feedback::Model, store::feedback::pages_by_model);
loader!(pages FeedbackOfPrediction => feedback::Model, store::feedback::pages_by_prediction);
loader!(pages ModelsOfTrainingJob => model::Model, store::models::pages_by_training_job);

/// A model's performance under one set of options, for one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PerformanceOfModel(pub PageKey<String, PerformanceOptions>);

/// One measurement per distinct set of options, for all its models.
impl Loader<PerformanceOfModel> for DbLoader {
    type Value = ModelPerformance;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PerformanceOfModel],
    ) -> Result<HashMap<PerformanceOfModel, ModelPerformance>, LoadError> {
        load_pages(
            self,
            keys,
            |k| &k.0,
            |scoped, model_ids, options| async move {
                performance::for_models(&scoped, &model_ids, None, &options).await
            },
        )
        .await
    }
}

/// Loads one child page through the request's loader.
pub async fn load_page<K, M>(
    loaders: &Loaders,
    key: K,
    want: store::Want,
) -> async_graphql::Result<Page<M>>
where
    DbLoader: Loader<K, Value = Page<M>, Error = LoadError>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
{
    Ok(loaders
        .load_one(key)
        .await
        .map_err(super::error::shared)?
        .unwrap_or_else(|| Page::empty(want.count.then_some(0))))
}

/// A child list field's page: `relation` names the parent-to-children
/// relation, whose loader fetches the pages of every parent asking for the
/// same list arguments at once.
pub async fn child_page<K, P, F, O, M, C>(
    ctx: &async_graphql::Context<'_>,
    relation: impl FnOnce(PageKey<P, store::ListQuery<F, O>>) -> K,
    parent: P,
    query: store::ListQuery<F, O>,
) -> async_graphql::Result<C>
where
    DbLoader: Loader<K, Value = Page<M>, Error = LoadError>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
    C: From<Page<M>>,
{
    let rc = super::request_context(ctx)?;
    let want = query.want();
    let key = relation(PageKey {
        tenant: rc.tenant(),
        parent,
        query: Arc::new(query),
    });
    Ok(load_page(rc.loaders(), key, want).await?.into())
}

/// A row field's node by its id (or key), through the request's loader:
/// `relation` names the kind of row; `None` when the tenant has none.
pub async fn row_by_id<K, I, M, N>(
    ctx: &async_graphql::Context<'_>,
    relation: impl FnOnce(RowKey<I>) -> K,
    id: I,
) -> async_graphql::Result<Option<N>>
where
    DbLoader: Loader<K, Value = M, Error = LoadError>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
    N: From<M>,
{
    let rc = super::request_context(ctx)?;
    let key = relation(RowKey {
        tenant: rc.tenant(),
        id,
    });
    Ok(load_row(rc.loaders(), key).await?.map(N::from))
}

/// Loads one row through the request's loader; `None` when the tenant has no such row.
pub async fn load_row<K, M>(loaders: &Loaders, key: K) -> async_graphql::Result<Option<M>>
where
    DbLoader: Loader<K, Value = M, Error = LoadError>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
{
    loaders.load_one(key).await.map_err(super::error::shared)
}
