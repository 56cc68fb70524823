//! GraphQL over Server-Sent Events: the `graphql-sse` protocol's distinct
//! connections mode, on `/graphql/stream` and on `/graphql` for a request
//! that accepts `text/event-stream`, by POST (the `graphql-sse` client) or
//! GET (a browser's `EventSource`, subscriptions included).
//!
//! - Every result is a `next` event, the end a `complete` event. Problems
//!   with the document (parse, validation, limits, trust) are `next` events
//!   with errors on an accepted stream, as the protocol asks; refused
//!   credentials, rates and overload keep their HTTP statuses (401, 429,
//!   503 with `Retry-After`), which is what a client must act on.
//! - Each drift alert's event carries `id:` set to its alert cursor. A
//!   client that reconnects with `Last-Event-ID` (`EventSource` does so by
//!   itself) resumes after that alert: none lost, none twice.
//! - The same admission as every GraphQL request (documents, limits,
//!   credentials, rates); queries and mutations hold an in-flight slot and
//!   run under the request deadline; a stream counts among its credential's
//!   connections (`--ws-max-sockets-per-credential`), is re-checked like a
//!   WebSocket (revocations end it at once, `--ws-auth-recheck-secs`, a
//!   JWT's `exp`), ends when the server stops, and ends for a client that
//!   leaves its bounded queue full for `--ws-slow-consumer-secs`. A comment
//!   line every 15 s keeps proxies from timing it out.

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_graphql::parser::types::OperationType;
use async_graphql::ServerError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tracing::Instrument;

use super::super::admission::credential_key;
use super::super::response::{cap_errors, serialize_within};
use super::super::ws::{self, Rechecked};
use super::{admit_operation, request_id, AppState, Early, MediaType, Prepared, Ready, Rejection};
use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::graphql::error::{default_code, fill_missing_codes, is_request_error};
use crate::graphql::StreamPositions;
use crate::identity::Credential;
use crate::telemetry::metrics::{metrics, Operation, Outcome, Transport};

/// Events a stream may have waiting for a slow client.
const QUEUE: usize = 16;
/// Interval of the keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Longest `Last-Event-ID` read.
const MAX_EVENT_ID: usize = 512;

/// Whether a request on `/graphql` asks for an event stream: its `Accept`
/// ranks `text/event-stream` above every JSON type it takes (clients that
/// list it beside JSON, as urql does, get JSON).
pub(super) fn wants_event_stream(headers: &HeaderMap) -> bool {
    let mut event_stream = 0.0f32;
    let mut json = 0.0f32;
    for range in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, value)| value.trim().parse().unwrap_or(0.0));
        match essence.as_str() {
            "text/event-stream" => event_stream = event_stream.max(quality),
            "application/json" | "application/graphql-response+json" | "application/*" | "*/*" => {
                json = json.max(quality)
            }
            _ => {}
        }
    }
    event_stream > 0.0 && event_stream > json
}

/// Answers a GraphQL request with an event stream.
pub(super) async fn execute(
    state: AppState,
    client: Option<IpAddr>,
    headers: HeaderMap,
    method: Method,
    params: Prepared,
) -> Response {
    let request_id = request_id(&headers);
    let span = tracing::info_span!(
        "graphql",
        transport = "sse",
        request_id = %request_id,
        tenant = tracing::field::Empty,
        otel.kind = "server",
        graphql.operation.name = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut operation = Operation::Unknown;
    let response = start(state, client, headers, method, params, &mut operation)
        .instrument(span)
        .await;
    let outcome = if response.status().is_success() {
        Outcome::Ok
    } else {
        Outcome::Refused
    };
    metrics().request(Transport::Sse, operation, outcome, started.elapsed());
    let mut response = response;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn start(
    state: AppState,
    client: Option<IpAddr>,
    headers: HeaderMap,
    method: Method,
    params: Prepared,
    operation: &mut Operation,
) -> Response {
    let settings = state.settings.clone();
    let deadline = tokio::time::Instant::now() + settings.http.request_timeout;
    let resume_from = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(id)) if id.trim().is_empty() => None,
        Some(Ok(id)) if id.trim().len() <= MAX_EVENT_ID => Some(id.trim().to_owned()),
        Some(_) => {
            return refused(Rejection::bad_request(
                "Last-Event-ID is not a cursor of this tenant's alerts",
            ))
        }
    };
    // Subscribed before the credentials are checked: no revocation after
    // the check is missed.
    let revocations = state.events.revocations();
    let admitted = admit_operation(
        &state, client, &headers, method, params, operation, deadline, true,
    )
    .await;
    let ready = match admitted {
        Ok(ready) => ready,
        Err(Early::Rejected(rejection)) => return refused(rejection),
        Err(Early::Errors(errors, default)) => return errors_only(&state, errors, default),
    };
    let max = settings.ws.max_sockets_per_credential;
    let Some(open) = state.sockets.open(&credential_key(&ready.principal), max) else {
        let refused = ApiError::RateLimited {
            message: format!(
                "this credential has {max} streams and WebSockets open; close one first"
            ),
            retry_after: 5,
        };
        return Rejection::of(&refused).into_response(MediaType::Json);
    };
    let single_result = ready.kind != Some(OperationType::Subscription);
    let slot = if single_result {
        match state.admission.enter(&ready.principal).await {
            Ok(slot) => Some(slot),
            Err(refused) => return Rejection::of(&refused).into_response(MediaType::Json),
        }
    } else {
        None
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned)
        .unwrap_or_default();
    let (sender, mut receiver) = mpsc::channel::<Bytes>(QUEUE);
    let stream = EventStream {
        state,
        ready,
        positions: StreamPositions::resuming(resume_from),
        single_result,
        deadline,
        token,
        sender,
    };
    let span = tracing::Span::current();
    tokio::spawn(
        async move {
            let _open = open;
            let _slot = slot;
            stream.run(revocations).await;
        }
        .instrument(span),
    );
    let body =
        futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(Ok::<_, Infallible>);
    stream_response(Body::from_stream(body))
}

/// One running stream.
struct EventStream {
    state: AppState,
    ready: Ready,
    positions: StreamPositions,
    single_result: bool,
    /// The request's deadline (queries and mutations).
    deadline: tokio::time::Instant,
    /// The bearer token, re-checked while the stream is open.
    token: String,
    sender: mpsc::Sender<Bytes>,
}

impl EventStream {
    async fn run(
        self,
        mut revocations: tokio::sync::broadcast::Receiver<crate::events::Revocation>,
    ) {
        let EventStream {
            state,
            ready,
            positions,
            single_result,
            deadline,
            token,
            sender,
        } = self;
        let settings = state.settings.clone();
        let Ready {
            request,
            mut batches,
            principal,
            end,
            mut registration,
            ..
        } = ready;
        let mut end = Some(end);
        let request = request.data(positions.clone());
        let mut responses = state.schema.execute_stream(request);
        let slow_consumer = settings.ws.slow_consumer;
        let send = |bytes: Vec<u8>| {
            let sender = sender.clone();
            async move {
                // A client that leaves the queue full this long is dropped;
                // it reconnects and resumes from its last event.
                matches!(
                    tokio::time::timeout(slow_consumer, sender.send(Bytes::from(bytes))).await,
                    Ok(Ok(()))
                )
            }
        };
        let deadline = tokio::time::sleep_until(if single_result {
            deadline
        } else {
            tokio::time::Instant::now() + Duration::MAX / 4
        });
        tokio::pin!(deadline);
        let expiry = principal
            .expires_at()
            .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::MAX / 4);
        let expiry = tokio::time::sleep(expiry);
        tokio::pin!(expiry);
        let mut recheck = tokio::time::interval(settings.ws.auth_recheck);
        recheck.reset();
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.reset();
        let stopping = state.shutdown.begun();
        tokio::pin!(stopping);
        let key = match principal.credential() {
            Credential::ApiKey { key_id } => Some(*key_id),
            _ => None,
        };
        loop {
            tokio::select! {
                next = batches.run(responses.next()) => {
                    let Some(mut response) = next else {
                        send(COMPLETE.to_vec()).await;
                        return;
                    };
                    // A query's one answer exists: end its transaction now.
                    if single_result {
                        drop(end.take());
                    }
                    let request_error = is_request_error(&response);
                    if !request_error {
                        Ready::register(&state, principal.tenant(), &mut registration);
                    }
                    fill_missing_codes(&mut response.errors, default_code(request_error));
                    let data = (!request_error).then_some(&response.data);
                    let id = positions.take_last();
                    let bytes = event(&state, data, &response.errors, id.as_deref());
                    if !send(bytes).await {
                        return;
                    }
                    if request_error {
                        send(COMPLETE.to_vec()).await;
                        return;
                    }
                }
                () = &mut deadline => {
                    let timeout = ApiError::Timeout(format!(
                        "the operation did not finish within its deadline of {} ms",
                        settings.http.request_timeout.as_millis()
                    ));
                    let mut bytes = event(&state, None, &[timeout.to_server_error()], None);
                    bytes.extend_from_slice(COMPLETE);
                    send(bytes).await;
                    return;
                }
                () = &mut expiry => {
                    tracing::info!("event stream ends: its credentials expired");
                    return;
                }
                () = &mut stopping => return,
                revoked = revocations.recv() => {
                    let recheck_now = match revoked {
                        // This stream's key: it ends now, whether or not the
                        // key store can be reached to confirm.
                        Ok(Some(revoked)) if key == Some(revoked) => {
                            tracing::info!("event stream ends: its API key was revoked");
                            return;
                        }
                        Ok(Some(_)) => false,
                        // Revocations may have been missed: check again.
                        Ok(None) | Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => false,
                    };
                    if recheck_now && !still_valid(&state, &token, &principal, true).await {
                        return;
                    }
                }
                // The client went away: stop the work (and free the slot,
                // the transaction and the credential's stream count) now.
                () = sender.closed() => return,
                _ = recheck.tick() => {
                    if !still_valid(&state, &token, &principal, false).await {
                        return;
                    }
                }
                _ = keep_alive.tick() => {
                    if !send(b": keep-alive\n\n".to_vec()).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Whether the stream's credentials still hold, as for a WebSocket.
async fn still_valid(
    state: &AppState,
    token: &str,
    principal: &crate::identity::Principal,
    fresh: bool,
) -> bool {
    match ws::recheck(state, token, principal, fresh).await {
        Rechecked::Valid => true,
        Rechecked::Changed => {
            tracing::info!("event stream ends: its credentials changed");
            false
        }
        Rechecked::Refused(e) => {
            tracing::info!(error = %e, "event stream ends: its credentials were refused");
            false
        }
    }
}

const COMPLETE: &[u8] = b"event: complete\ndata:\n\n";

/// A request refused before its stream: bad input is reported on an
/// accepted stream, as the protocol asks (an `EventSource` shows nothing
/// of a 400); refused credentials, rates, overload and a wrong method keep
/// their statuses.
pub(super) fn refused(rejection: Rejection) -> Response {
    if rejection.status != StatusCode::BAD_REQUEST {
        return rejection.into_response(MediaType::Json);
    }
    let mut error = ServerError::new(rejection.message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", rejection.code);
    error.extensions = Some(extensions);
    let json = serde_json::to_vec(&super::super::response::Body {
        data: None,
        errors: &[error],
    })
    .expect("an error serializes");
    let mut body = next_event(&json, None);
    body.extend_from_slice(COMPLETE);
    stream_response(Body::from(body))
}

/// A stream of one `next` event with `errors`, then `complete`.
fn errors_only(state: &AppState, mut errors: Vec<ServerError>, default: &'static str) -> Response {
    fill_missing_codes(&mut errors, default);
    let mut body = event(state, None, &errors, None);
    body.extend_from_slice(COMPLETE);
    stream_response(Body::from(body))
}

/// A `next` event (with `id:` when given) carrying an execution result
/// within the response limits.
fn event(
    state: &AppState,
    data: Option<&async_graphql::Value>,
    errors: &[ServerError],
    id: Option<&str>,
) -> Vec<u8> {
    let limits = state.settings.response;
    let mut errors = errors.to_vec();
    cap_errors(&mut errors, limits.max_errors);
    let (json, _) = serialize_within(data, &errors, &limits);
    next_event(&json, id)
}

/// A `next` event carrying `json`.
fn next_event(json: &[u8], id: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 64);
    out.extend_from_slice(b"event: next\n");
    if let Some(id) = id {
        // Cursors are base64url: no line breaks to escape.
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Compact JSON escapes line breaks inside strings: one data line.
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    out
}

fn stream_response(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Proxies (nginx) must not buffer the stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_event_stream_requests() {
        let accept = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, value.parse().unwrap());
            wants_event_stream(&headers)
        };
        assert!(accept("text/event-stream"));
        assert!(accept("text/event-stream, application/json;q=0.5"));
        assert!(!accept("application/json, text/event-stream;q=0.5"));
        // urql's default: JSON first, event streams as well, all at q=1.
        assert!(!accept("application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"));
        assert!(!accept("text/event-stream;q=0"));
        assert!(!accept("application/json"));
        assert!(!wants_event_stream(&HeaderMap::new()));
    }
}
