//! The metrics listener's one route. It is served on its own address
//! (`--metrics-bind`), never on the API's: no CORS, no credentials, and
//! only whoever can reach that address scrapes it.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::db::Database;
use crate::telemetry::metrics::metrics;

/// `GET /metrics` in the OpenMetrics text format (Prometheus reads it).
pub fn metrics_router(db: Database) -> Router {
    Router::new()
        .route("/metrics", get(exposition))
        .with_state(db)
}

async fn exposition(State(db): State<Database>) -> impl IntoResponse {
    db.record_pool_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics().encode(),
    )
}
