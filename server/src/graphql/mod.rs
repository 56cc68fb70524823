//! The GraphQL schema, one module per domain, merged into one root.

mod alerts;
mod analytics;
mod api_keys;
mod batch;
mod common;
mod configurations;
mod cost;
mod document;
mod drift;
pub(crate) mod error;
mod explain;
mod features;
mod feedback;
mod field_order;
mod limits;
mod loaders;
mod me;
mod models;
mod monitors;
mod predictions;
mod resume;
mod run;
mod training;

use std::sync::Arc;

use async_graphql::{Context, MergedObject, Schema};

use crate::db::Scoped;
use crate::error::{ApiError, ApiResult};
use crate::events::Events;
use crate::identity::can::Capability;
use crate::identity::{Principal, Role};
use crate::write::Writer;

pub use batch::BatchExecutor;
pub use document::{admit, operation_type, Admitted};
pub use limits::{QueryLimits, WriteLimits};
pub use resume::StreamPositions;
pub use run::AppSchema;

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
    monitors::MonitorsQuery,
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
    monitors::MonitorsMutation,
);

/// Who may introspect the schema (`__schema`, `__type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Introspection {
    /// Everyone; field suggestions ("Did you mean …") are shown too.
    #[default]
    On,
    /// Nobody.
    Off,
    /// Admin credentials only.
    Admin,
}

impl Introspection {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Introspection::On => true,
            Introspection::Off => false,
            Introspection::Admin => role == Role::Admin,
        }
    }
}

/// Builds the schema with `limits`. It holds nothing tenant-bearing: each
/// request brings its own [`RequestContext`]. Suggestions, which name
/// fields, are only given when everyone may introspect anyway.
pub fn build_schema(
    limits: QueryLimits,
    writes: WriteLimits,
    introspection: Introspection,
) -> AppSchema {
    let build = |explains: bool| {
        let builder = Schema::build(Query::default(), Mutation::default(), alerts::Subscription)
            .data(limits.page)
            .data(writes)
            // The parser's nesting guard stays above the depth limit, so that
            // limit is the one clients meet (documents reach the parser only
            // after `document::admit` bounded their nesting).
            .limit_recursive_depth(limits.max_depth.max(30) + 2);
        // Only the twin that explains refusals has an extension (see run.rs).
        let builder = if explains {
            builder.extension(limits::Limits(limits))
        } else {
            builder
                .limit_depth(limits.max_depth)
                .limit_complexity(limits.max_complexity)
        };
        let builder = match introspection {
            Introspection::On => builder,
            Introspection::Admin => builder.disable_suggestions(),
            Introspection::Off => builder.disable_suggestions().disable_introspection(),
        };
        builder.finish()
    };
    AppSchema::new(build(false), build(true), limits)
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(
        QueryLimits::default(),
        WriteLimits::default(),
        Introspection::On,
    )
    .sdl()
}

/// The refusal of an introspection query from a caller who may not introspect.
pub fn introspection_refused() -> async_graphql::ServerError {
    let mut error =
        async_graphql::ServerError::new("introspection is disabled for this caller", None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", crate::error::code::GRAPHQL_VALIDATION_FAILED);
    error.extensions = Some(extensions);
    error
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

    /// The caller's write handle for capability `C`: `FORBIDDEN` unless the
    /// caller's role holds its permission.
    pub fn writer<C: Capability>(&self) -> ApiResult<Writer<C>> {
        Writer::authorize(&self.principal, &self.scoped, &self.events)
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
