//! GraphQL over HTTP, following the GraphQL-over-HTTP specification:
//! - `POST` must be `Content-Type: application/json`; anything else (including
//!   the form and text types browsers send cross-site without a preflight) is
//!   refused with 415 before anything runs. Bodies are capped (413).
//! - `GET` takes the parameters from the query string and never runs a mutation (405).
//! - The response type follows `Accept`: `application/graphql-response+json`
//!   (request errors get 400 and no `data`) or `application/json` (200).
//! - No or bad credentials: 401 with a GraphQL error body.

use std::time::Instant;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{ServerError, Value, Variables};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};
use tracing::Instrument;

use super::ws;
use super::AppState;
use crate::auth::AuthError;
use crate::error::{code, default_code, fill_missing_codes, is_request_error};
use crate::graphql::RequestContext;

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

/// The parameters of one GraphQL request.
#[derive(Debug, Default)]
struct GraphQLParams {
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Json>>,
    extensions: Option<Map<String, Json>>,
}

/// A request that cannot be run, answered without executing anything.
struct Rejection {
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

    fn into_response(self, media: MediaType) -> Response {
        let body = serde_json::json!({
            "errors": [{ "message": self.message, "extensions": { "code": self.code } }]
        });
        let mut response = json_response(self.status, media, &body);
        for (name, value) in self.extra_headers {
            response.headers_mut().insert(name, value);
        }
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
    let Some(media) = negotiate(request.headers()) else {
        return not_acceptable();
    };
    let params = match params_from_query_string(request.uri().query().unwrap_or_default()) {
        Ok(params) => params,
        Err(rejection) => return rejection.into_response(media),
    };
    execute(state, request.headers().clone(), Method::GET, params, media).await
}

pub async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    let Some(media) = negotiate(request.headers()) else {
        return not_acceptable();
    };
    if let Err(rejection) = check_json_content_type(request.headers()) {
        return rejection.into_response(media);
    }
    let headers = request.headers().clone();
    let limit = state.settings.max_body_bytes;
    let body = match read_body(request.into_body(), limit).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(media),
    };
    let params = match params_from_json_body(&body) {
        Ok(params) => params,
        Err(rejection) => return rejection.into_response(media),
    };
    execute(state, headers, Method::POST, params, media).await
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

fn params_from_json_body(body: &[u8]) -> Result<GraphQLParams, Rejection> {
    let value: Json = serde_json::from_slice(body)
        .map_err(|e| Rejection::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Json::Object(mut object) = value else {
        return Err(Rejection::bad_request("request body must be a JSON object"));
    };
    let query = match object.remove("query") {
        Some(Json::String(query)) => query,
        Some(_) => return Err(Rejection::bad_request("`query` must be a string")),
        None => return Err(Rejection::bad_request("`query` is required")),
    };
    Ok(GraphQLParams {
        query,
        operation_name: optional_string(object.remove("operationName"), "operationName")?,
        variables: optional_object(object.remove("variables"), "variables")?,
        extensions: optional_object(object.remove("extensions"), "extensions")?,
    })
}

fn params_from_query_string(query_string: &str) -> Result<GraphQLParams, Rejection> {
    let mut params = GraphQLParams::default();
    let mut query = None;
    for (name, value) in form_urlencoded_pairs(query_string) {
        match name.as_str() {
            "query" => query = Some(value),
            "operationName" if !value.is_empty() => params.operation_name = Some(value),
            "variables" if !value.is_empty() => {
                let parsed = serde_json::from_str(&value).map_err(|_| {
                    Rejection::bad_request("`variables` must be a JSON-encoded object")
                })?;
                params.variables = optional_object(Some(parsed), "variables")?;
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
    params.query = query.ok_or_else(|| Rejection::bad_request("`query` is required"))?;
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

/// The operation a document would run, if it can be determined.
fn operation_type(
    request: &mut async_graphql::Request,
) -> Result<Option<OperationType>, ServerError> {
    let name = request.operation_name.clone();
    let document = request.parsed_query()?;
    Ok(match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name.as_str()).map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    })
}

async fn execute(
    state: AppState,
    headers: HeaderMap,
    method: Method,
    params: GraphQLParams,
    media: MediaType,
) -> Response {
    let request_id = request_id(&headers);
    let span = tracing::info_span!(
        "graphql",
        request_id = %request_id,
        operation = params.operation_name.as_deref().unwrap_or(""),
        tenant = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = execute_in_span(state, headers, method, params, media, &request_id)
        .instrument(span.clone())
        .await;
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
    headers: HeaderMap,
    method: Method,
    params: GraphQLParams,
    media: MediaType,
    request_id: &str,
) -> Response {
    let mut request = async_graphql::Request::new(params.query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        request = request.variables(Variables::from_json(Json::Object(variables)));
    }
    // `extensions` is validated (an object or null) but no extension is implemented yet.
    let _ = params.extensions;

    match operation_type(&mut request) {
        Err(parse_error) => {
            return graphql_response(
                media,
                None,
                vec![parse_error],
                code::GRAPHQL_PARSE_FAILED,
                request_id,
            );
        }
        Ok(Some(OperationType::Mutation | OperationType::Subscription))
            if method == Method::GET =>
        {
            let mut rejection = Rejection::new(
                StatusCode::METHOD_NOT_ALLOWED,
                code::BAD_USER_INPUT,
                "mutations and subscriptions cannot be sent with GET; use POST",
            );
            rejection
                .extra_headers
                .push((header::ALLOW, HeaderValue::from_static("POST")));
            return rejection.into_response(media);
        }
        Ok(_) => {}
    }

    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match state.auth.authenticate_header(authorization).await {
        Ok(principal) => principal,
        Err(e) => return unauthenticated(e, media),
    };
    tracing::Span::current().record("tenant", principal.tenant());
    let scoped = state.db.scoped(&principal);
    let (context, mut batches) = RequestContext::new(principal, scoped, state.events.clone());
    let request = request.data(context);

    let response = batches.run(state.schema.execute(request)).await;
    let request_error = is_request_error(&response);
    let data = (!request_error).then(|| response.data.into_json().unwrap_or(Json::Null));
    graphql_response(
        media,
        data,
        response.errors,
        default_code(request_error),
        request_id,
    )
}

/// Serializes a GraphQL response. Errors lacking a code get `default_code`;
/// internal errors carry the request id, by which the logs find their cause.
fn graphql_response(
    media: MediaType,
    data: Option<Json>,
    mut errors: Vec<ServerError>,
    default_code: &'static str,
    request_id: &str,
) -> Response {
    fill_missing_codes(&mut errors, default_code);
    for extensions in errors.iter_mut().filter_map(|e| e.extensions.as_mut()) {
        if matches!(extensions.get("code"), Some(Value::String(c)) if c == code::INTERNAL) {
            extensions.set("requestId", request_id);
        }
    }
    let status = if data.is_none() && media == MediaType::GraphQLResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut body = Map::new();
    if let Some(data) = data {
        body.insert("data".into(), data);
    }
    if !errors.is_empty() {
        body.insert(
            "errors".into(),
            serde_json::to_value(&errors).expect("errors serialize"),
        );
    }
    json_response(status, media, &Json::Object(body))
}

fn unauthenticated(error: AuthError, media: MediaType) -> Response {
    if let AuthError::Internal(cause) = &error {
        tracing::error!(error = ?cause, "authentication failed internally");
    }
    let mut rejection = Rejection::new(
        StatusCode::UNAUTHORIZED,
        code::UNAUTHENTICATED,
        error.to_string(),
    );
    rejection
        .extra_headers
        .push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    rejection.into_response(media)
}

/// The caller's request id if it is a sane token, else a fresh one.
fn request_id(headers: &HeaderMap) -> String {
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
