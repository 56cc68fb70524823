//! HTTP and WebSocket transport: routes, protocol rules, limits.

mod http;
pub mod playground;
mod ws;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::{extract::State, Router};

use crate::auth::Authenticator;
use crate::config::ServeArgs;
use crate::db::Database;
use crate::events::Events;
use crate::graphql::AppSchema;

/// What every handler shares. Nothing here is tenant-bearing.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub db: Database,
    pub auth: Authenticator,
    pub events: Events,
    pub settings: Arc<ServeArgs>,
}

/// The application's routes, ready to serve (tests call this directly).
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route(
            "/graphql",
            get(http::graphql_get)
                .post(http::graphql_post)
                .fallback(http::method_not_allowed),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route("/health", get(health))
        .route("/ready", get(ready));
    if state.settings.playground {
        router = router
            .route("/", get(playground::page))
            .route("/playground/{*path}", get(playground::asset));
    }
    router.with_state(state)
}

/// Liveness: the process answers.
async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "database unavailable" })),
            )
        }
    }
}
