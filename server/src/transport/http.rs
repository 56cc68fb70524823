//! GraphQL over HTTP, following the GraphQL-over-HTTP specification:
//! - `POST` must be `Content-Type: application/json`; anything else (including
//!   the form and text types browsers send cross-site without a preflight) is
//!   refused with 415 before anything runs. Bodies are capped (413).
//! - `GET` takes the parameters from the query string and never runs a mutation (405).
//! - The response type follows `Accept`: `application/graphql-response+json`
//!   (request errors get 400 and no `data`) or `application/json` (200).
//! - No or bad credentials: 401 with a GraphQL error body; credentials that
//!   cannot be checked (the database is down or busy): 503 with `Retry-After`.
//! - Before anything runs, in this order: the document's limits (before
//!   credentials, so anonymous input is bounded too), the client address's
//!   refused-credential throttle, credentials, introspection rights, the
//!   credential's and tenant's request rates, and a slot among the tenant's
//!   requests in flight. The request then runs under an overall deadline.
//! - Documents may be named instead of sent (APQ, trusted documents: see
//!   `documents.rs`); a JSON-array body is a batch (`batch.rs`); a request
//!   accepting `text/event-stream` is answered as an event stream (`sse.rs`).

use std::net::IpAddr;
use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Value, Variables};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};
use tracing::Instrument;

use super::documents::{Gate, Refused as DocumentRefused, Registration, Requested, Resolved};
use super::observed::{self, Answered};
use super::response::{cap_errors, retry_of, retry_status, serialize_within};
use super::serve::ClientAddress;
use super::ws;
use super::{graphql_request, AppState};
use crate::auth::AuthError;
use crate::error::{code, ApiError};
use crate::graphql::error::{default_code, fill_missing_codes, is_request_error};
use crate::graphql::{admit, introspection_refused, operation_type, RequestContext};
use crate::identity::{Principal, Role};
use crate::telemetry::metrics::{metrics, Operation, Outcome, Transport};
use crate::telemetry::traces;

mod batch;
mod sse;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

/// The response media type chosen from `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaType {
    GraphQLResponseJson,
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphQLResponseJson => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response type: the acceptable type with the highest quality,
/// the client's order breaking ties. No `Accept` means `application/json`
/// (what pre-standard clients expect), and so do wildcards, as the
/// specification recommends.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    if accept.trim().is_empty() {
        return Some(MediaType::Json);
    }
    let mut best: Option<(f32, MediaType)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut quality = 1.0f32;
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    quality = value.trim().parse().unwrap_or(0.0);
                }
            }
        }
        let media = match essence.as_str() {
            GRAPHQL_RESPONSE_JSON => MediaType::GraphQLResponseJson,
            APPLICATION_JSON => MediaType::Json,
            "*/*" | "application/*" => MediaType::Json,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, media));
        }
    }
    best.map(|(_, media)| media)
}

/// The parameters of one GraphQL request, as sent.
#[derive(Debug, Default)]
struct GraphQLParams {
    /// The document's text: absent when it is named instead (by
    /// `documentId` or an APQ hash in `extensions`).
    query: Option<String>,
    document_id: Option<String>,
    operation_name: Option<String>,
    variables: Option<Variables>,
    extensions: Option<Map<String, Json>>,
}

/// A request ready to run: its document found (or why not).
struct Prepared {
    document: Result<Resolved, DocumentRefused>,
    operation_name: Option<String>,
    variables: Option<Variables>,
}

impl Prepared {
    /// Finds the request's document: cheap (a lookup, at most one hash of
    /// the text), before anything is parsed.
    fn new(state: &AppState, params: GraphQLParams) -> Self {
        let persisted = params
            .extensions
            .and_then(|mut extensions| extensions.remove("persistedQuery"));
        let document = state.documents.resolve(Requested {
            query: params.query,
            document_id: params.document_id,
            persisted,
        });
        Self {
            document,
            operation_name: params.operation_name,
            variables: params.variables,
        }
    }
}

/// A request that cannot be run, answered without executing anything.
#[derive(Debug)]
pub(super) struct Rejection {
    status: StatusCode,
    message: String,
    code: &'static str,
    extra_headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Rejection {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code,
            extra_headers: Vec::new(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::BAD_USER_INPUT, message)
    }

    /// A request refused before it ran, for an error that says why: rate
    /// limits (429), overload or an unreachable database (503), both with
    /// `Retry-After`; a deadline (504).
    fn of(error: &ApiError) -> Self {
        let status = retry_status(error.code()).unwrap_or(match error.code() {
            code::TIMEOUT => StatusCode::GATEWAY_TIMEOUT,
            code::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
            code::INTERNAL => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        });
        let mut rejection = Self::new(status, error.code(), error.message());
        if let Some(after) = error.retry_after() {
            rejection
                .extra_headers
                .push((header::RETRY_AFTER, HeaderValue::from(after)));
        }
        rejection
    }

    /// The error's code (`UNAUTHENTICATED`, `RATE_LIMITED`, …).
    pub(super) fn code(&self) -> &'static str {
        self.code
    }

    /// The refusal as a plain JSON answer (for endpoints other than GraphQL).
    pub(super) fn into_response_json(self) -> Response {
        self.into_response(MediaType::Json)
    }

    fn into_response(self, media: MediaType) -> Response {
        let body = serde_json::json!({
            "errors": [{ "message": self.message, "extensions": { "code": self.code } }]
        });
        let mut response = json_response(self.status, media, &body);
        for (name, value) in self.extra_headers {
            response.headers_mut().insert(name, value);
        }
        response
            .extensions_mut()
            .insert(Answered::refused(self.code));
        response
    }
}

fn json_response(status: StatusCode, media: MediaType, body: &Json) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON values serialize");
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(media.as_str()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}

pub async fn method_not_allowed() -> Response {
    let mut rejection = Rejection::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::BAD_USER_INPUT,
        "GraphQL requests are sent with GET or POST",
    );
    rejection
        .extra_headers
        .push((header::ALLOW, HeaderValue::from_static("GET, POST")));
    rejection.into_response(MediaType::Json)
}

pub async fn graphql_get(State(state): State<AppState>, request: Request) -> Response {
    if is_websocket_upgrade(request.headers()) {
        // Most clients look for the WebSocket endpoint on /graphql itself.
        return ws::serve(state, request).await;
    }
    if is_event_stream(&request) {
        let params = match params_from_query_string(request.uri().query().unwrap_or_default()) {
            Ok(params) => params,
            Err(rejection) => return sse::refused(rejection),
        };
        let client = client_address(&request);
        let prepared = Prepared::new(&state, params);
        let headers = request.headers().clone();
        return sse::execute(state, client, headers, Method::GET, prepared).await;
    }
    let Some(media) = negotiate(request.headers()) else {
        return not_acceptable();
    };
    let params = match params_from_query_string(request.uri().query().unwrap_or_default()) {
        Ok(params) => params,
        Err(rejection) => return rejection.into_response(media),
    };
    let client = client_address(&request);
    let prepared = Prepared::new(&state, params);
    execute(
        state,
        client,
        request.headers().clone(),
        Method::GET,
        prepared,
        media,
    )
    .await
}

pub(super) fn client_address(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ClientAddress>()
        .map(|address| address.0)
}

pub async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    let stream = is_event_stream(&request);
    // An event stream's refusals before it starts are plain JSON (bad
    // input: an error event, see `sse::refused`).
    let media = if stream {
        Some(MediaType::Json)
    } else {
        negotiate(request.headers())
    };
    let Some(media) = media else {
        return not_acceptable();
    };
    if let Err(rejection) = check_json_content_type(request.headers()) {
        return rejection.into_response(media);
    }
    let headers = request.headers().clone();
    let client = client_address(&request);
    let http = state.settings.http;
    let read = read_body(request.into_body(), http.max_body_bytes);
    let body = match tokio::time::timeout(http.body_timeout, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(rejection)) => return rejection.into_response(media),
        Err(_) => {
            let mut rejection = Rejection::new(
                StatusCode::REQUEST_TIMEOUT,
                code::BAD_USER_INPUT,
                format!(
                    "the request body did not arrive within {} s",
                    http.body_timeout.as_secs()
                ),
            );
            rejection
                .extra_headers
                .push((header::CONNECTION, HeaderValue::from_static("close")));
            return rejection.into_response(media);
        }
    };
    if is_batch(&body) && !stream {
        return batch::execute_batch(state, client, headers, &body, media).await;
    }
    let params = match params_from_json_body(&body) {
        Ok(params) => params,
        Err(rejection) if stream => return sse::refused(rejection),
        Err(rejection) => return rejection.into_response(media),
    };
    let prepared = Prepared::new(&state, params);
    if stream {
        return sse::execute(state, client, headers, Method::POST, prepared).await;
    }
    execute(state, client, headers, Method::POST, prepared, media).await
}

/// Whether a request is answered with an event stream (`graphql-sse`): on
/// `/graphql/stream`, or on `/graphql` when it accepts `text/event-stream`.
fn is_event_stream(request: &Request) -> bool {
    request.uri().path().ends_with("/stream") || sse::wants_event_stream(request.headers())
}

/// A body that is a JSON array: a batch of operations.
fn is_batch(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn not_acceptable() -> Response {
    Rejection::new(
        StatusCode::NOT_ACCEPTABLE,
        code::BAD_USER_INPUT,
        format!("Accept must allow {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}"),
    )
    .into_response(MediaType::Json)
}

/// Only `application/json` (optionally `; charset=utf-8`) is executed.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let unsupported = || {
        Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_USER_INPUT,
            "POST bodies must be sent as Content-Type: application/json",
        )
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsupported)?;
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(APPLICATION_JSON) {
        return Err(unsupported());
    }
    for param in parts {
        if let Some((name, value)) = param.split_once('=') {
            let value = value.trim().trim_matches('"');
            if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
                return Err(unsupported());
            }
        }
    }
    Ok(())
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Rejection> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large =
            std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |err| {
                err.source()
            })
            .any(|err| err.is::<http_body_util::LengthLimitError>());
        if too_large {
            Rejection::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::BAD_USER_INPUT,
                format!("request body is larger than {limit} bytes"),
            )
        } else {
            Rejection::bad_request("could not read the request body")
        }
    })
}

/// Why a body did not read: not JSON at all, or JSON of the wrong shape.
fn body_error(e: serde_json::Error) -> Rejection {
    match e.classify() {
        serde_json::error::Category::Data => {
            Rejection::bad_request(format!("request body is not a GraphQL request: {e}"))
        }
        _ => Rejection::bad_request(format!("request body is not valid JSON: {e}")),
    }
}

fn params_from_json_body(body: &[u8]) -> Result<GraphQLParams, Rejection> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(body_error)?;
        return Err(Rejection::bad_request("request body must be a JSON object"));
    }
    let members: Members = serde_json::from_slice(body).map_err(body_error)?;
    members.into_params()
}

impl Members {
    fn into_params(self) -> Result<GraphQLParams, Rejection> {
        let members = self;
        let query = match members.query {
            Some(Json::String(query)) => Some(query),
            Some(_) => return Err(Rejection::bad_request("`query` must be a string")),
            None => None,
        };
        let document_id = optional_string(members.document_id, "documentId")?;
        let operation_name = optional_string(members.operation_name, "operationName")?;
        let variables = match members.variables {
            None | Some(Value::Null) => None,
            Some(object @ Value::Object(_)) => Some(Variables::from_value(object)),
            Some(_) => {
                return Err(Rejection::bad_request(
                    "`variables` must be an object or null",
                ))
            }
        };
        Ok(GraphQLParams {
            query,
            document_id,
            operation_name,
            variables,
            extensions: optional_object(members.extensions, "extensions")?,
        })
    }
}

/// A JSON body's members, each `None` when absent (`null` is present).
/// `variables` is read straight into async-graphql's values: a batch's
/// megabyte of variables is not built twice (as `serde_json::Value`, then
/// converted). Read by hand rather than derived because a member given
/// twice takes its last value, as a JSON object read whole would (derive
/// refuses it), and other members are skipped unread.
#[derive(Default)]
struct Members {
    query: Option<Json>,
    document_id: Option<Json>,
    operation_name: Option<Json>,
    variables: Option<Value>,
    extensions: Option<Json>,
}

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Members::default();
                while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match name.as_ref() {
                        "query" => members.query = Some(map.next_value()?),
                        "documentId" => members.document_id = Some(map.next_value()?),
                        "operationName" => members.operation_name = Some(map.next_value()?),
                        "variables" => members.variables = Some(map.next_value()?),
                        "extensions" => members.extensions = Some(map.next_value()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(members)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn params_from_query_string(query_string: &str) -> Result<GraphQLParams, Rejection> {
    let mut params = GraphQLParams::default();
    for (name, value) in form_urlencoded_pairs(query_string) {
        match name.as_str() {
            "query" => params.query = Some(value),
            "documentId" if !value.is_empty() => params.document_id = Some(value),
            "operationName" if !value.is_empty() => params.operation_name = Some(value),
            "variables" if !value.is_empty() => {
                let parsed = serde_json::from_str(&value).map_err(|_| {
                    Rejection::bad_request("`variables` must be a JSON-encoded object")
                })?;
                params.variables = optional_object(Some(parsed), "variables")?
                    .map(|object| Variables::from_json(Json::Object(object)));
            }
            "extensions" if !value.is_empty() => {
                let parsed = serde_json::from_str(&value).map_err(|_| {
                    Rejection::bad_request("`extensions` must be a JSON-encoded object")
                })?;
                params.extensions = optional_object(Some(parsed), "extensions")?;
            }
            _ => {}
        }
    }
    Ok(params)
}

/// `application/x-www-form-urlencoded` pairs of a query string.
fn form_urlencoded_pairs(query_string: &str) -> Vec<(String, String)> {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|d| d as u8)
    }
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                byte => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query_string
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn optional_string(value: Option<Json>, name: &str) -> Result<Option<String>, Rejection> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(Rejection::bad_request(format!(
            "`{name}` must be a string or null"
        ))),
    }
}

fn optional_object(
    value: Option<Json>,
    name: &str,
) -> Result<Option<Map<String, Json>>, Rejection> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Rejection::bad_request(format!(
            "`{name}` must be an object or null"
        ))),
    }
}

async fn execute(
    state: AppState,
    client: Option<IpAddr>,
    headers: HeaderMap,
    method: Method,
    params: Prepared,
    media: MediaType,
) -> Response {
    let request_id = request_id(&headers);
    // Exported as an OpenTelemetry span (with --otlp-endpoint), renamed to
    // the operation type once the document is parsed.
    let span = tracing::info_span!(
        "graphql",
        request_id = %request_id,
        operation = params.operation_name.as_deref().unwrap_or(""),
        tenant = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        graphql.operation.type = tracing::field::Empty,
        graphql.operation.name = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut operation = Operation::Unknown;
    let mut response = execute_in_span(
        state,
        client,
        headers,
        method,
        params,
        media,
        &request_id,
        &mut operation,
    )
    .instrument(span.clone())
    .await;
    traces::rename(&span, operation.as_str());
    span.record("graphql.operation.type", operation.as_str());
    let answered = response.extensions_mut().remove::<Answered>();
    let outcome = match &answered {
        Some(answered) => {
            observed::count_errors(&answered.codes);
            answered.outcome
        }
        None if response.status().is_success() => Outcome::Ok,
        None => Outcome::Refused,
    };
    metrics().request(Transport::Http, operation, outcome, started.elapsed());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "graphql request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn execute_in_span(
    state: AppState,
    client: Option<IpAddr>,
    headers: HeaderMap,
    method: Method,
    params: Prepared,
    media: MediaType,
    request_id: &str,
    operation: &mut Operation,
) -> Response {
    // One deadline for the whole request, the credential check included (a
    // key lookup on a dead network path must not hang it).
    let timeout = state.settings.http.request_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let admitted = admit_operation(
        &state, client, &headers, method, params, operation, deadline, false,
    )
    .await;
    let ready = match admitted {
        Ok(ready) => ready,
        Err(early) => return early.into_response(&state, media, request_id),
    };
    let _slot = match state.admission.enter(&ready.principal).await {
        Ok(slot) => slot,
        Err(refused) => return Rejection::of(&refused).into_response(media),
    };
    let Ready {
        request,
        mut batches,
        end: _end,
        principal,
        mut registration,
        ..
    } = ready;
    let response =
        match tokio::time::timeout_at(deadline, batches.run(state.schema.execute(request))).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(
                    deadline_ms = timeout.as_millis() as u64,
                    "request deadline passed"
                );
                let timeout = ApiError::Timeout(format!(
                    "the request did not finish within its deadline of {} ms",
                    timeout.as_millis()
                ));
                return Rejection::of(&timeout).into_response(media);
            }
        };
    let request_error = is_request_error(&response);
    if !request_error {
        Ready::register(&state, principal.tenant(), &mut registration);
    }
    let async_graphql::Response { data, errors, .. } = response;
    answer(
        &state,
        media,
        (!request_error).then_some(&data),
        errors,
        default_code(request_error),
        request_id,
    )
}

/// Why a request stopped before it ran.
enum Early {
    /// Refused at the HTTP level (401, 405, 429, 503, …).
    Rejected(Rejection),
    /// Answered with GraphQL errors and no data (those without a code get
    /// the one given).
    Errors(Vec<ServerError>, &'static str),
}

impl Early {
    fn into_response(self, state: &AppState, media: MediaType, request_id: &str) -> Response {
        match self {
            Early::Rejected(rejection) => rejection.into_response(media),
            Early::Errors(errors, code) => answer(state, media, None, errors, code, request_id),
        }
    }

    fn document(refused: &DocumentRefused) -> Self {
        match refused {
            DocumentRefused::Bad(message) => {
                Early::Rejected(Rejection::bad_request(message.clone()))
            }
            refused => {
                let (code, message) = refused.code_and_message();
                Early::Errors(vec![ServerError::new(message, None)], code)
            }
        }
    }
}

/// An operation admitted, its caller authenticated and within its rates,
/// ready to run (without an in-flight slot yet: subscriptions take none).
struct Ready {
    request: async_graphql::Request,
    batches: crate::graphql::BatchExecutor,
    kind: Option<OperationType>,
    principal: Principal,
    /// Ends the operation's shared transaction (queries) when dropped.
    end: crate::db::OperationEnd,
    /// An APQ document to remember once the operation ran cleanly.
    registration: Option<Registration>,
}

/// Everything before a GraphQL operation runs, for every HTTP transport
/// (plain answers and event streams), in this order: the document found
/// and trusted, its limits (before credentials, so anonymous input is
/// bounded too; an exempt-admin check authenticates first), the method,
/// credentials, introspection rights and rates.
#[allow(clippy::too_many_arguments)]
async fn admit_operation(
    state: &AppState,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    method: Method,
    params: Prepared,
    operation: &mut Operation,
    deadline: tokio::time::Instant,
    event_stream: bool,
) -> Result<Ready, Early> {
    let settings = &state.settings;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut principal = None;
    let document = match params
        .document
        .map_err(|refused| Early::document(&refused))?
    {
        Resolved::Ready(document) => document,
        // An APQ hash is the caller's tenant's: looked up once it is known.
        Resolved::Cached(hash) => {
            let caller = authenticate_by(state, client, authorization, deadline)
                .await
                .map_err(Early::Rejected)?;
            let document = state
                .documents
                .cached(caller.tenant(), hash)
                .map_err(|refused| Early::document(&refused))?;
            principal = Some(caller);
            document
        }
    };
    // An untrusted document under `require` is refused unparsed; when
    // admins are exempt, the caller is authenticated first to know.
    match state.documents.gate(&document) {
        Gate::Open => {}
        Gate::Refused => return Err(Early::document(&DocumentRefused::NotTrusted)),
        Gate::AdminOnly => {
            let caller = match principal.take() {
                Some(caller) => caller,
                None => authenticate_by(state, client, authorization, deadline)
                    .await
                    .map_err(Early::Rejected)?,
            };
            if caller.role() != Role::Admin {
                return Err(Early::document(&DocumentRefused::NotTrusted));
            }
            principal = Some(caller);
        }
    }
    // The document's limits come first: nothing, not even the parser or
    // the credential check, runs on an unbounded document.
    let admitted = admit(
        &document.query,
        params.operation_name.as_deref(),
        params.variables.as_ref(),
        &settings.limits,
    )
    .map_err(|error| Early::Errors(vec![error], code::GRAPHQL_PARSE_FAILED))?;
    let kind = operation_type(&admitted.document, params.operation_name.as_deref());
    *operation = observed::operation(kind);
    if let Some(name) =
        observed::operation_name(&admitted.document, params.operation_name.as_deref())
    {
        tracing::Span::current().record("graphql.operation.name", name);
    }
    if method == Method::GET
        && matches!(
            kind,
            Some(OperationType::Mutation | OperationType::Subscription)
        )
        // `EventSource` only GETs: an event stream may subscribe by GET.
        && !(event_stream && kind == Some(OperationType::Subscription))
    {
        let mut rejection = Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::BAD_USER_INPUT,
            "mutations and subscriptions cannot be sent with GET; use POST",
        );
        rejection
            .extra_headers
            .push((header::ALLOW, HeaderValue::from_static("POST")));
        return Err(Early::Rejected(rejection));
    }
    let principal = match principal {
        Some(principal) => principal,
        None => authenticate_by(state, client, authorization, deadline)
            .await
            .map_err(Early::Rejected)?,
    };
    tracing::Span::current().record("tenant", principal.tenant());
    let introspection = settings.introspection.allows(principal.role());
    if admitted.introspective && !introspection {
        return Err(Early::Errors(
            vec![introspection_refused()],
            code::GRAPHQL_VALIDATION_FAILED,
        ));
    }
    state
        .admission
        .check_rates(&principal)
        .map_err(|refused| Early::Rejected(Rejection::of(&refused)))?;
    // Remembered (APQ) only once the request ran cleanly: see `register`.
    let registration = document.registration();
    let request = graphql_request(
        document.query,
        admitted,
        params.operation_name,
        params.variables,
        introspection,
    );
    let scoped = state.db.scoped(&principal);
    // A query's reads share one transaction (PostgreSQL), ended with `end`.
    let scoped = match kind {
        Some(OperationType::Query) => scoped.for_query_operation(),
        _ => scoped,
    };
    let end = scoped.operation_end();
    let (context, batches) = RequestContext::new(principal.clone(), scoped, state.events.clone());
    Ok(Ready {
        request: request.data(context),
        batches,
        kind,
        principal,
        end,
        registration,
    })
}

impl Ready {
    /// Remembers an APQ document the request sent whole, for its tenant,
    /// once its answer shows no request error: a caller refused or a
    /// document that did not validate fills no cache.
    fn register(state: &AppState, tenant: &str, registration: &mut Option<Registration>) {
        if let Some(registration) = registration.take() {
            state.documents.register(tenant, registration);
        }
    }
}

/// [`authenticate`] within the request's deadline: past it, 503.
async fn authenticate_by(
    state: &AppState,
    client: Option<IpAddr>,
    authorization: Option<&str>,
    deadline: tokio::time::Instant,
) -> Result<Principal, Rejection> {
    match tokio::time::timeout_at(deadline, authenticate(state, client, authorization)).await {
        Ok(checked) => checked,
        Err(_) => {
            tracing::warn!("authentication did not finish within the request deadline");
            let unavailable = ApiError::Unavailable {
                message: "credentials cannot be checked now; retry shortly".into(),
                retry_after: 2,
            };
            Err(Rejection::of(&unavailable))
        }
    }
}

/// The caller's principal, or the answer refusing it: 401 for refused
/// credentials (which spend the client address's budget), 429 for an
/// address over that budget, 503 when credentials cannot be checked.
pub(super) async fn authenticate(
    state: &AppState,
    client: Option<IpAddr>,
    authorization: Option<&str>,
) -> Result<Principal, Rejection> {
    let known = authorization
        .and_then(crate::auth::bearer_token)
        .is_some_and(|token| state.auth.is_known(token));
    if !known {
        state
            .admission
            .check_address(client)
            .map_err(|refused| Rejection::of(&refused))?;
    }
    match state.auth.authenticate_header(authorization).await {
        Ok(principal) => Ok(principal),
        Err(error) if error.is_refusal() => {
            state.admission.credential_refused(client);
            Err(unauthenticated(error))
        }
        Err(error) => {
            let unavailable = match &error {
                AuthError::Busy(cause) => {
                    tracing::warn!(cause = %format!("{cause:#}"), "authentication waited too long for the database");
                    ApiError::Overloaded {
                        message: error.to_string(),
                        retry_after: 1,
                    }
                }
                // `is_refusal` is false only for the two kinds above.
                other => {
                    let cause = match other {
                        AuthError::Internal(cause) => format!("{cause:#}"),
                        other => other.to_string(),
                    };
                    tracing::warn!(cause = %cause, "credentials cannot be checked: the key store is unavailable");
                    ApiError::Unavailable {
                        message: error.to_string(),
                        retry_after: 2,
                    }
                }
            };
            Err(Rejection::of(&unavailable))
        }
    }
}

/// Serializes a GraphQL answer within the response limits. Errors lacking
/// a code get `default_code`; internal errors carry the request id, by
/// which the logs find their cause. Rate-limit, overload and unavailability
/// errors set the status (429/503) and `Retry-After`.
fn answer(
    state: &AppState,
    media: MediaType,
    data: Option<&Value>,
    mut errors: Vec<ServerError>,
    default_code: &'static str,
    request_id: &str,
) -> Response {
    let limits = state.settings.response;
    fill_missing_codes(&mut errors, default_code);
    for extensions in errors.iter_mut().filter_map(|e| e.extensions.as_mut()) {
        if matches!(extensions.get("code"), Some(Value::String(c)) if c == code::INTERNAL) {
            extensions.set("requestId", request_id);
        }
    }
    cap_errors(&mut errors, limits.max_errors);
    let retry = retry_of(&errors);
    let mut status = if data.is_none() && media == MediaType::GraphQLResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    if let Some((retry_status, _)) = retry {
        status = retry_status;
    }
    let (bytes, replaced) = serialize_within(data, &errors, &limits);
    let answered = if replaced {
        Answered {
            outcome: Outcome::Error,
            codes: vec![code::RESPONSE_TOO_LARGE],
        }
    } else {
        Answered::with_errors(data.is_some(), &errors)
    };
    let mut response = (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(media.as_str()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response();
    if let Some((_, after)) = retry {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(after));
    }
    response.extensions_mut().insert(answered);
    response
}

fn unauthenticated(error: AuthError) -> Rejection {
    let mut rejection = Rejection::new(
        StatusCode::UNAUTHORIZED,
        code::UNAUTHENTICATED,
        error.to_string(),
    );
    rejection
        .extra_headers
        .push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    rejection
}

/// The caller's request id if it is a sane token, else a fresh one.
pub(super) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_a_json_body() {
        let refused = |body: &str| match params_from_json_body(body.as_bytes()) {
            Err(rejection) => rejection.message,
            Ok(params) => panic!("{body} was accepted: {params:?}"),
        };
        assert_eq!(refused(" [1]"), "request body must be a JSON object");
        assert!(refused("{").starts_with("request body is not valid JSON"));
        assert!(refused("[1").starts_with("request body is not valid JSON"));
        assert_eq!(refused(r#"{"query": null}"#), "`query` must be a string");
        // No `query`: the document may be named (documents.rs decides).
        let named = params_from_json_body(br#"{"documentId": "d", "variables": {}}"#).unwrap();
        assert_eq!(
            (named.query, named.document_id.as_deref()),
            (None, Some("d"))
        );
        assert!(refused(r#"{"query": "q", "documentId": 1}"#).contains("documentId"));
        assert_eq!(
            refused(r#"{"query": "{ me { tenant } }", "variables": [1]}"#),
            "`variables` must be an object or null"
        );
        assert_eq!(
            refused(r#"{"query": "{ me { tenant } }", "operationName": 1}"#),
            "`operationName` must be a string or null"
        );
        let params = params_from_json_body(
            br#" {"query": "q", "other": [1], "variables": {"n": 1.5, "s": ["a", {"k": null}]}, "extensions": null}"#,
        )
        .unwrap();
        assert_eq!(params.query.as_deref(), Some("q"));
        let variables = params.variables.unwrap().into_value();
        let expected = Value::from_json(serde_json::json!({"n": 1.5, "s": ["a", {"k": null}]}));
        assert_eq!(variables, expected.unwrap());
        let params = params_from_json_body(br#"{"query": "q", "variables": null}"#).unwrap();
        assert!(params.variables.is_none() && params.operation_name.is_none());
        // A member given twice takes its last value, as an object read whole.
        let params = params_from_json_body(
            br#"{"query": 1, "variables": [2], "query": "b", "\u0076ariables": {"n": 1}}"#,
        )
        .unwrap();
        assert_eq!(params.query.as_deref(), Some("b"));
        assert_eq!(
            params.variables.unwrap().into_value(),
            Value::from_json(serde_json::json!({"n": 1})).unwrap()
        );
        // Members are checked in the order the spec lists them.
        assert_eq!(
            refused(r#"{"variables": 1, "operationName": 1, "query": "q"}"#),
            "`operationName` must be a string or null"
        );
    }

    #[test]
    fn negotiates_the_response_type() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept("application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }

    #[test]
    fn decodes_query_strings() {
        let pairs = form_urlencoded_pairs("query=%7B%20me%20%7D&operationName=&x=a+b&bad=%zz");
        assert_eq!(pairs[0], ("query".into(), "{ me }".into()));
        assert_eq!(pairs[1], ("operationName".into(), "".into()));
        assert_eq!(pairs[2], ("x".into(), "a b".into()));
        assert_eq!(pairs[3], ("bad".into(), "%zz".into()));
    }

    #[test]
    fn only_json_bodies_are_accepted() {
        let with = |ct: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            check_json_content_type(&headers).is_ok()
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("Application/JSON;charset=\"UTF-8\""));
        assert!(!with("application/json; charset=latin1"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("multipart/form-data; boundary=x"));
        assert!(check_json_content_type(&HeaderMap::new()).is_err());
    }
}
