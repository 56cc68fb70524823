//! HTTP and WebSocket transport: routes, protocol rules, limits.

mod admission;
mod browser;
mod documents;
mod http;
mod ingest;
mod metrics;
mod observed;
pub mod playground;
mod response;
mod serve;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use axum::{extract::State, Router};

use crate::auth::Authenticator;
use crate::db::Database;
use crate::events::Events;
use crate::graphql::{AppSchema, Introspection, QueryLimits};

pub use admission::{Admission, AdmissionSettings, Rate};
pub use browser::CorsSettings;
pub use documents::{DocumentSettings, Documents, TrustMode, TrustedDocuments};
pub use ingest::IngestSettings;
pub use metrics::metrics_router;
pub use response::ResponseLimits;
pub use serve::{serve, Shutdown};

/// Request bodies up to 8 MiB are read.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// HTTP connection hygiene and the request deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest request body read (then 413).
    pub max_body_bytes: usize,
    /// Time to send a request's headers; also the idle keep-alive timeout.
    pub header_timeout: Duration,
    /// Time to send a request's body (then 408).
    pub body_timeout: Duration,
    /// Open client connections at most (WebSockets included).
    pub max_connections: usize,
    /// Time one GraphQL request may take in all (then 504, `TIMEOUT`).
    pub request_timeout: Duration,
    /// Time in-flight requests and open WebSockets get to finish once the
    /// server is told to stop.
    pub shutdown_grace: Duration,
    /// Operations one batched POST may hold (0: batches are refused).
    pub max_batch: usize,
    /// Whether open connections count in `mlgate_http_connections` (not
    /// the metrics listener's own scrapes).
    pub counted: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 16_384,
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            max_batch: 10,
            counted: true,
        }
    }
}

/// The WebSocket transport's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsSettings {
    /// Largest message read.
    pub max_message_bytes: usize,
    /// Time to send `connection_init` (then 4408).
    pub init_timeout: Duration,
    /// Interval of the periodic credential re-check.
    pub auth_recheck: Duration,
    /// Time a client may leave its outgoing queue full (then 1013).
    pub slow_consumer: Duration,
    /// Open connections per credential (then 1008).
    pub max_sockets_per_credential: usize,
    /// Operations running at once on one connection.
    pub max_operations: usize,
}

/// What the transport is configured with.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    pub http: HttpSettings,
    pub ws: WsSettings,
    pub ingest: IngestSettings,
    pub documents: DocumentSettings,
    pub limits: QueryLimits,
    pub response: ResponseLimits,
    pub introspection: Introspection,
    pub playground: bool,
    pub cors: CorsSettings,
}

/// What every handler shares. Nothing here is tenant-bearing.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub db: Database,
    pub auth: Authenticator,
    pub events: Events,
    pub admission: Admission,
    pub documents: Arc<Documents>,
    pub sockets: ws::Sockets,
    pub shutdown: Shutdown,
    pub settings: Arc<TransportSettings>,
}

impl AppState {
    pub fn new(
        schema: AppSchema,
        db: Database,
        auth: Authenticator,
        events: Events,
        admission: Admission,
        settings: TransportSettings,
    ) -> Self {
        Self {
            schema,
            db,
            auth,
            events,
            admission,
            documents: Arc::new(Documents::new(settings.documents.clone())),
            sockets: ws::Sockets::default(),
            shutdown: Shutdown::default(),
            settings: Arc::new(settings),
        }
    }
}

/// The async-graphql request for an admitted document: parsed already (by
/// `graphql::admit`, within the limits), with its operation name and
/// variables, and introspection off unless the caller may introspect.
fn graphql_request(
    query: String,
    admitted: crate::graphql::Admitted,
    operation_name: Option<String>,
    variables: Option<async_graphql::Variables>,
    introspection: bool,
) -> async_graphql::Request {
    let mut request = async_graphql::Request::new(query);
    request.set_parsed_query(admitted.document);
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(variables);
    }
    if !introspection {
        request = request.disable_introspection();
    }
    request
}

/// The application's routes, ready to serve (tests call this directly).
/// GraphQL answers and the playground are compressed; CORS, when some
/// origin is allowed, covers `/graphql` only (the WebSocket endpoint is
/// not subject to it, and probes are not for browsers).
pub fn router(state: AppState) -> Router {
    let mut codes = crate::error::code::ALL.to_vec();
    codes.push(crate::error::code::OTHER);
    crate::telemetry::metrics::metrics().know_codes(&codes);
    let cors = state
        .settings
        .cors
        .layer()
        .expect("CORS settings are checked when the configuration is read");
    let mut graphql = Router::new()
        .route(
            "/graphql",
            get(http::graphql_get)
                .post(http::graphql_post)
                .fallback(http::method_not_allowed),
        )
        // GraphQL over Server-Sent Events (also on /graphql by `Accept`);
        // compression leaves event streams alone.
        .route(
            "/graphql/stream",
            get(http::graphql_get)
                .post(http::graphql_post)
                .fallback(http::method_not_allowed),
        )
        .layer(browser::compression());
    if let Some(cors) = cors {
        graphql = graphql.layer(cors);
    }
    let mut router = Router::new()
        .merge(graphql)
        .route("/graphql/ws", get(ws::upgrade))
        .route(
            "/ingest/predictions",
            post(ingest::predictions)
                .fallback(ingest_method_not_allowed)
                // Decoded as read; the body cap counts decoded bytes.
                .layer(tower_http::decompression::RequestDecompressionLayer::new()),
        )
        .route(
            "/ingest/drift-metrics",
            post(ingest::drift_metrics)
                .fallback(ingest_method_not_allowed)
                .layer(tower_http::decompression::RequestDecompressionLayer::new()),
        )
        .route("/health", get(health))
        .route("/ready", get(ready));
    if state.settings.playground {
        router = router.merge(
            Router::new()
                .route("/", get(playground::page))
                .route("/playground/{*path}", get(playground::asset))
                .layer(browser::compression()),
        );
    }
    router.with_state(state)
}

async fn ingest_method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::ALLOW, "POST")],
        Json(serde_json::json!({
            "errors": [{
                "message": "loads are sent with POST",
                "extensions": { "code": crate::error::code::BAD_USER_INPUT }
            }]
        })),
    )
}

/// Liveness: the process answers.
async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long readiness may take: probes give up after about a second.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// Readiness, within a second: the database answers, no migration is
/// pending, and (PostgreSQL) the notification listener hears its heartbeat.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let check = async {
        if let Err(e) = state.db.ping().await {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            return Err("database unavailable".to_owned());
        }
        match state.db.pending_migrations().await {
            Ok(pending) if pending.is_empty() => {}
            Ok(pending) => return Err(format!("migrations pending: {}", pending.join(", "))),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: cannot read the migration state");
                return Err("database unavailable".to_owned());
            }
        }
        if !state.events.notifications_flowing() {
            return Err("notification listener not connected".to_owned());
        }
        Ok(())
    };
    match tokio::time::timeout(READY_WITHIN, check).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Ok(Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": reason })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "database did not answer within 1 s" })),
        ),
    }
}
