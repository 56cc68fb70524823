//! `POST /ingest/predictions` and `POST /ingest/drift-metrics`: bulk
//! ingestion for services, outside GraphQL's per-value validation but with
//! the same credentials, role (`service` or `admin`), tenant scope, rate
//! limits and in-flight slots.
//!
//! The body is newline-delimited JSON (`Content-Type: application/x-ndjson`,
//! optionally gzip- or zstd-encoded), one item per line spelled like
//! GraphQL's `PredictionInput` or `DriftMetricInput`. It is read as it
//! arrives and never held whole: each prediction is checked and staged by
//! the bulk engine ([`PredictionLoad`]), which on PostgreSQL streams it into
//! the load's transaction with `COPY`; reading waits while the database is
//! busy (the backpressure). Drift metrics are checked as they arrive and
//! held (within [`DriftLimits`]) until the end ([`DriftLoad`]).
//! Bounded: at most `max_bytes` (decompressed) and `max_line_bytes` a
//! line, no pause longer than `read_timeout` between chunks, the whole load
//! within `deadline`.
//!
//! All or nothing, idempotent: any invalid line (every one is reported
//! with its number), unknown model or changed payload writes nothing; a
//! body cut off before its end writes nothing; lines whose id is stored
//! with the same content are retries and are counted, not written again.

mod line;
mod lines;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value as Json};
use tracing::Instrument;

use super::http::{authenticate, client_address, request_id};
use super::observed;
use super::AppState;
use crate::error::{code, ApiError, InputProblem};
use crate::identity::can;
use crate::telemetry::metrics::{metrics, Operation, Outcome, Transport};
use crate::write::bulk::PredictionLoad;
use crate::write::drift::{DriftLimits, DriftLoad};
use crate::write::{Items, Writer};
use lines::{Line, Lines};

/// The bulk endpoint's bounds, built once in the composition root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestSettings {
    /// Largest body read, after decompression (then 413, nothing written).
    pub max_bytes: usize,
    /// Longest line (then that line is refused).
    pub max_line_bytes: usize,
    /// What one drift load may hold (then the load is refused).
    pub drift: DriftLimits,
    /// Longest pause between two chunks of the body (then 408).
    pub read_timeout: Duration,
    /// Longest a whole load may take (then 504, nothing written).
    pub deadline: Duration,
}

impl IngestSettings {
    pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;
    pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            drift: DriftLimits::default(),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        }
    }
}

/// Media types taken for newline-delimited JSON.
const NDJSON: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
];

/// What a load takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Predictions,
    DriftMetrics,
}

pub async fn predictions(State(state): State<AppState>, request: Request) -> Response {
    endpoint(state, request, Kind::Predictions).await
}

pub async fn drift_metrics(State(state): State<AppState>, request: Request) -> Response {
    endpoint(state, request, Kind::DriftMetrics).await
}

async fn endpoint(state: AppState, request: Request, kind: Kind) -> Response {
    let request_id = request_id(request.headers());
    let span = tracing::info_span!(
        "ingest",
        request_id = %request_id,
        tenant = tracing::field::Empty,
        otel.name = match kind {
            Kind::Predictions => "ingest predictions",
            Kind::DriftMetrics => "ingest drift metrics",
        },
        otel.kind = "server",
    );
    let started = Instant::now();
    let (mut response, outcome, error_code) = ingest(state, request, kind, &request_id)
        .instrument(span.clone())
        .await;
    observed::count_errors(&error_code.into_iter().collect::<Vec<_>>());
    metrics().request(
        Transport::Http,
        Operation::Ingest,
        outcome,
        started.elapsed(),
    );
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "ingest request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Why a load stopped before the engine could finish it.
enum Stopped {
    TooLarge,
    ReadTimeout,
    /// The body broke off (the client went away, or sent fewer bytes than
    /// it announced).
    Incomplete,
    Failed(ApiError),
}

async fn ingest(
    state: AppState,
    request: Request,
    kind: Kind,
    request_id: &str,
) -> (Response, Outcome, Option<&'static str>) {
    let settings = state.settings.ingest;
    let refused = |status, code: &'static str, message: String| {
        (
            error_response(status, code, message, None, request_id),
            Outcome::Refused,
            Some(code),
        )
    };
    if !is_ndjson(request.headers()) {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_USER_INPUT,
            "send newline-delimited JSON: Content-Type: application/x-ndjson".into(),
        );
    }
    let client = client_address(&request);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authenticated = tokio::time::timeout(
        state.settings.http.request_timeout,
        authenticate(&state, client, authorization.as_deref()),
    )
    .await;
    let principal = match authenticated {
        Ok(Ok(principal)) => principal,
        Ok(Err(rejection)) => {
            let code = rejection.code();
            return (rejection.into_response_json(), Outcome::Refused, Some(code));
        }
        Err(_) => {
            let unavailable = ApiError::Unavailable {
                message: "credentials cannot be checked now; retry shortly".into(),
                retry_after: 2,
            };
            return api_error(&unavailable, request_id, Outcome::Refused);
        }
    };
    tracing::Span::current().record("tenant", principal.tenant());
    let scoped = state.db.scoped(&principal);
    let writer = match Writer::<can::Ingest>::authorize(&principal, &scoped, &state.events) {
        Ok(writer) => writer,
        Err(error) => return api_error(&error, request_id, Outcome::Refused),
    };
    if let Err(error) = state.admission.check_rates(&principal) {
        return api_error(&error, request_id, Outcome::Refused);
    }
    let _slot = match state.admission.enter(&principal).await {
        Ok(slot) => slot,
        Err(error) => return api_error(&error, request_id, Outcome::Refused),
    };
    let sink = match kind {
        Kind::Predictions => Sink::Predictions(PredictionLoad::new(&writer, Items::Lines)),
        Kind::DriftMetrics => Sink::Drift(DriftLoad::new(&writer, Items::Lines, settings.drift)),
    };
    let loaded = tokio::time::timeout(
        settings.deadline,
        load(sink, request.into_body(), &settings),
    )
    .await;
    match loaded {
        Ok(Ok(answer)) => (json_response(StatusCode::OK, &answer), Outcome::Ok, None),
        Ok(Err(Stopped::Failed(error))) => api_error(&error, request_id, Outcome::Error),
        Ok(Err(Stopped::TooLarge)) => refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BAD_USER_INPUT,
            format!(
                "nothing was written: the body is larger than {} bytes; split it into several loads",
                settings.max_bytes
            ),
        ),
        Ok(Err(Stopped::ReadTimeout)) => refused(
            StatusCode::REQUEST_TIMEOUT,
            code::BAD_USER_INPUT,
            format!(
                "nothing was written: the body paused for more than {} s",
                settings.read_timeout.as_secs()
            ),
        ),
        Ok(Err(Stopped::Incomplete)) => refused(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "nothing was written: the body ended before it was complete".into(),
        ),
        Err(_) => {
            tracing::warn!(
                deadline_ms = settings.deadline.as_millis() as u64,
                "ingest deadline passed"
            );
            let timeout = ApiError::Timeout(format!(
                "nothing was written: the load did not finish within {} s",
                settings.deadline.as_secs()
            ));
            api_error(&timeout, request_id, Outcome::Error)
        }
    }
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            NDJSON
                .iter()
                .any(|t| t.eq_ignore_ascii_case(essence.trim()))
        })
}

/// The load a body goes into.
enum Sink {
    Predictions(PredictionLoad),
    Drift(DriftLoad),
}

impl Sink {
    fn note(&mut self, problem: InputProblem) {
        match self {
            Sink::Predictions(load) => load.note(vec![problem]),
            Sink::Drift(load) => load.note(vec![problem]),
        }
    }

    /// Reads line `number` into the load.
    async fn take(&mut self, number: usize, text: &[u8]) -> Result<(), Stopped> {
        let unreadable = match self {
            Sink::Predictions(load) => match line::parse(text) {
                Ok(input) => return load.push(number, input).await.map_err(Stopped::Failed),
                Err(unreadable) => unreadable,
            },
            Sink::Drift(load) => match line::parse_drift(text) {
                Ok(input) => {
                    load.push(number, input);
                    return Ok(());
                }
                Err(unreadable) => unreadable,
            },
        };
        self.note(InputProblem {
            index: Some(number),
            id: unreadable.id,
            field: unreadable.field,
            message: unreadable.message,
        });
        Ok(())
    }

    /// Finishes the load; the answer's counts.
    async fn finish(self) -> Result<Json, ApiError> {
        Ok(match self {
            Sink::Predictions(load) => {
                let loaded = load.finish().await?;
                json!({
                    "predictions": loaded.items,
                    "inserted": loaded.inserted,
                    "duplicates": loaded.duplicates,
                })
            }
            Sink::Drift(load) => {
                let loaded = load.finish().await?;
                json!({
                    "driftMetrics": loaded.items,
                    "inserted": loaded.inserted,
                    "duplicates": loaded.duplicates,
                    "alerts": loaded.alerts,
                })
            }
        })
    }
}

/// Reads the body line by line into a load, then finishes it. Dropped
/// early (a deadline, an error), the load rolls back.
async fn load(mut sink: Sink, body: Body, settings: &IngestSettings) -> Result<Json, Stopped> {
    let mut lines = Lines::new(settings.max_line_bytes);
    let mut stream = body.into_data_stream();
    let mut received = 0usize;
    loop {
        let next = tokio::time::timeout(settings.read_timeout, stream.next())
            .await
            .map_err(|_| Stopped::ReadTimeout)?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|_| Stopped::Incomplete)?;
        received += chunk.len();
        if received > settings.max_bytes {
            return Err(Stopped::TooLarge);
        }
        for line in lines.feed(&chunk) {
            take(&mut sink, line, settings).await?;
        }
    }
    if let Some(line) = lines.end() {
        take(&mut sink, line, settings).await?;
    }
    sink.finish().await.map_err(Stopped::Failed)
}

async fn take(sink: &mut Sink, line: Line, settings: &IngestSettings) -> Result<(), Stopped> {
    match line {
        Line::TooLong(number) => {
            sink.note(InputProblem {
                index: Some(number),
                id: None,
                field: String::new(),
                message: format!("the line is longer than {} bytes", settings.max_line_bytes),
            });
            Ok(())
        }
        Line::Text(number, text) => sink.take(number, &text).await,
    }
}

/// The answer for `error`: its status (400 bad input, 403, 404 unknown
/// model, 409 changed payload, 429/503 with `Retry-After`, 504), and the
/// problems by line.
fn api_error(
    error: &ApiError,
    request_id: &str,
    outcome: Outcome,
) -> (Response, Outcome, Option<&'static str>) {
    let code = error.code();
    let status = match code {
        code::BAD_USER_INPUT => StatusCode::BAD_REQUEST,
        code::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
        code::FORBIDDEN => StatusCode::FORBIDDEN,
        code::NOT_FOUND => StatusCode::NOT_FOUND,
        code::CONFLICT => StatusCode::CONFLICT,
        code::TIMEOUT => StatusCode::GATEWAY_TIMEOUT,
        _ => super::response::retry_status(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let (message, problems) = match error {
        ApiError::Refused { problems, .. } => {
            let first = problems.first().map_or(String::new(), |p| {
                let at = p
                    .index
                    .map_or(String::new(), |line| format!("line {line}: "));
                let field = if p.field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", p.field)
                };
                format!(": {at}{field}{}", p.message)
            });
            let more = match problems.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more, see extensions.problems)", n - 1),
            };
            (format!("nothing was written{first}{more}"), Some(problems))
        }
        ApiError::Internal(cause) => {
            tracing::error!(error = ?cause, "internal error");
            (error.message(), None)
        }
        _ => (error.message(), None),
    };
    let mut response = error_response(
        status,
        code,
        message,
        problems.map(Vec::as_slice),
        request_id,
    );
    if let Some(after) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(after));
    }
    (response, outcome, Some(code))
}

fn error_response(
    status: StatusCode,
    code: &'static str,
    message: String,
    problems: Option<&[InputProblem]>,
    request_id: &str,
) -> Response {
    let mut extensions = json!({ "code": code });
    if code == code::INTERNAL {
        extensions["requestId"] = request_id.into();
    }
    if let Some(problems) = problems {
        extensions["problemCount"] = problems.len().into();
        extensions["problems"] = problems
            .iter()
            .map(|p| {
                let mut problem = json!({ "field": p.field, "message": p.message });
                if let Some(line) = p.index {
                    problem["line"] = line.into();
                }
                if let Some(id) = &p.id {
                    problem["id"] = id.clone().into();
                }
                problem
            })
            .collect::<Vec<Json>>()
            .into();
    }
    json_response(
        status,
        &json!({ "errors": [{ "message": message, "extensions": extensions }] }),
    )
}

fn json_response(status: StatusCode, body: &Json) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON values serialize");
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}
