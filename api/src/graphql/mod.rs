//! The GraphQL schema, one module per domain, merged into one root.

mod me;

use async_graphql::{Context, EmptyMutation, EmptySubscription, MergedObject, Schema};

use crate::auth::Principal;
use crate::db::Scoped;
use crate::error::ApiError;

pub use me::Me;

#[derive(MergedObject, Default)]
pub struct Query(me::MeQuery);

pub type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the schema. It holds nothing tenant-bearing: each request brings
/// its own [`RequestContext`].
pub fn build_schema() -> AppSchema {
    Schema::build(Query::default(), EmptyMutation, EmptySubscription).finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema().sdl()
}

/// What one request (or one WebSocket connection) carries into resolvers:
/// who is calling and the handle scoped to their tenant.
#[derive(Clone)]
pub struct RequestContext {
    principal: Principal,
    scoped: Scoped,
}

impl RequestContext {
    pub fn new(principal: Principal, scoped: Scoped) -> Self {
        Self { principal, scoped }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn scoped(&self) -> &Scoped {
        &self.scoped
    }
}

/// The request context; its absence means the transport let an
/// unauthenticated request through, which must fail closed.
pub fn request_context<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext, ApiError> {
    ctx.data_opt::<RequestContext>()
        .ok_or_else(|| ApiError::Unauthenticated("not authenticated".into()))
}
