//! The GraphQL schema, one module per domain, merged into one root.

mod alerts;
mod analytics;
mod api_keys;
mod batch;
mod common;
mod configurations;
mod drift;
mod explain;
mod features;
mod feedback;
mod limits;
mod loaders;
mod me;
mod models;
mod predictions;
mod training;

use std::sync::Arc;

use async_graphql::{Context, MergedObject, Schema};

use crate::auth::{Permission, Principal};
use crate::db::Scoped;
use crate::error::{ApiError, ApiResult};
use crate::events::Events;
use crate::service::Writer;

pub use batch::BatchExecutor;
pub use limits::{QueryLimits, WriteLimits};
pub use me::Me;

#[derive(MergedObject, Default)]
pub struct Query(
    me::MeQuery,
    models::ModelsQuery,
    predictions::PredictionsQuery,
    feedback::FeedbackQueryRoot,
    training::TrainingQuery,
    features::FeaturesQuery,
    configurations::ConfigurationsQuery,
    drift::DriftQueryRoot,
    analytics::AnalyticsQuery,
    api_keys::ApiKeysQuery,
    alerts::AlertsQuery,
);

/// Every write, one object per domain. Each resolver opens a [`Writer`]
/// for the permission it needs, so a caller whose role lacks it gets
/// `FORBIDDEN` before anything is read or written.
#[derive(MergedObject, Default)]
pub struct Mutation(
    models::ModelsMutation,
    predictions::PredictionsMutation,
    feedback::FeedbackMutation,
    drift::DriftMutation,
    training::TrainingMutation,
    features::FeaturesMutation,
    configurations::ConfigurationsMutation,
    api_keys::ApiKeysMutation,
);

pub type AppSchema = Schema<Query, Mutation, alerts::Subscription>;

/// Builds the schema with `limits`. It holds nothing tenant-bearing: each
/// request brings its own [`RequestContext`].
pub fn build_schema(limits: QueryLimits, writes: WriteLimits) -> AppSchema {
    Schema::build(Query::default(), Mutation::default(), alerts::Subscription)
        .data(limits.page)
        .data(writes)
        .extension(limits::Limits(limits))
        // The parser's nesting guard stays above the depth limit, so that
        // limit is the one clients meet.
        .limit_recursive_depth(limits.max_depth.max(30) + 2)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(QueryLimits::default(), WriteLimits::default()).sdl()
}

/// What one request (or one WebSocket operation) carries into resolvers:
/// who is calling, the handle scoped to their tenant, and the request's own
/// DataLoaders around that handle.
pub struct RequestContext {
    principal: Principal,
    scoped: Scoped,
    tenant: Arc<str>,
    loaders: loaders::Loaders,
    events: Events,
}

impl RequestContext {
    /// The context of one operation, and the executor its batched loads run
    /// on: the operation must be driven through [`BatchExecutor::run`].
    pub fn new(principal: Principal, scoped: Scoped, events: Events) -> (Self, BatchExecutor) {
        let (spawner, executor) = batch::batch_executor();
        let context = Self {
            tenant: Arc::from(scoped.tenant()),
            loaders: loaders::loaders(scoped.clone(), spawner),
            principal,
            scoped,
            events,
        };
        (context, executor)
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn scoped(&self) -> &Scoped {
        &self.scoped
    }

    /// The caller's write handle for `permission`: `FORBIDDEN` unless the
    /// caller's role holds it.
    pub fn writer(&self, permission: Permission) -> ApiResult<Writer> {
        Writer::authorize(&self.principal, &self.scoped, &self.events, permission)
    }

    /// The process's live-event hub, for subscriptions.
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    /// The tenant, for loader keys.
    pub(crate) fn tenant(&self) -> Arc<str> {
        self.tenant.clone()
    }

    pub(crate) fn loaders(&self) -> &loaders::Loaders {
        &self.loaders
    }
}

/// The request context; its absence means the transport let an
/// unauthenticated request through, which must fail closed.
pub fn request_context<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext, ApiError> {
    ctx.data_opt::<RequestContext>()
        .ok_or_else(|| ApiError::Unauthenticated("not authenticated".into()))
}
