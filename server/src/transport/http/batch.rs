//! Batched POSTs (Apollo's `BatchHttpLink`, urql's batch exchange): the body
//! is a JSON array of requests, the answer an array of their answers in the
//! same order. Each operation goes through the whole single-request path
//! (its document's limits, credentials, rates, a slot, its own deadline and
//! metrics), one after the other, so a batch of n costs what n requests
//! cost and holds one slot at a time. The batch as a whole has one
//! request deadline and one response-size ceiling: operations past either
//! are answered `TIMEOUT` or `RESPONSE_TOO_LARGE` in their place, unrun.
//! At most `--max-batch-operations`; under
//! `require` trusted documents a batch runs only if every document is
//! trusted (or the caller is an exempt admin, decided per operation).

use std::net::IpAddr;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::response::{too_large, Body};
use super::{body_error, execute, Early, MediaType, Members, Prepared, Rejection};
use super::{AppState, DocumentRefused, Gate, Resolved};
use crate::error::ApiError;

/// An answer holding only `error`.
fn error_body(error: async_graphql::ServerError) -> Vec<u8> {
    serde_json::to_vec(&Body {
        data: None,
        errors: &[error],
    })
    .expect("an error serializes")
}

pub(super) async fn execute_batch(
    state: AppState,
    client: Option<IpAddr>,
    headers: HeaderMap,
    body: &[u8],
    media: MediaType,
) -> Response {
    let max = state.settings.http.max_batch;
    if max == 0 {
        return Rejection::bad_request(
            "batched requests are off here: send one operation per request",
        )
        .into_response(media);
    }
    let entries: Vec<Members> = match serde_json::from_slice(body) {
        Ok(entries) => entries,
        Err(e) => return body_error(e).into_response(media),
    };
    if entries.is_empty() {
        return Rejection::bad_request("a batch needs at least one operation").into_response(media);
    }
    if entries.len() > max {
        return Rejection::bad_request(format!(
            "a batch holds at most {max} operations; this one has {}",
            entries.len()
        ))
        .into_response(media);
    }
    let mut prepared = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        match entry.into_params() {
            Ok(params) => prepared.push(Prepared::new(&state, params)),
            Err(mut rejection) => {
                rejection.message = format!("operation {i}: {}", rejection.message);
                return rejection.into_response(media);
            }
        }
    }
    let untrusted = prepared.iter().any(|p| match &p.document {
        Ok(Resolved::Ready(document)) => state.documents.gate(document) == Gate::Refused,
        // Untrusted, run only by an exempt admin: decided per operation.
        Ok(Resolved::Cached(_)) => false,
        Err(refused) => *refused == DocumentRefused::NotTrusted,
    });
    if untrusted {
        let request_id = super::request_id(&headers);
        return Early::document(&DocumentRefused::NotTrusted).into_response(
            &state,
            media,
            &request_id,
        );
    }

    let settings = state.settings.clone();
    let deadline = tokio::time::Instant::now() + settings.http.request_timeout;
    let limits = settings.response;
    let mut bodies = Vec::with_capacity(prepared.len());
    let mut statuses = Vec::with_capacity(prepared.len());
    let mut retry_after: Option<u64> = None;
    let mut size = 2;
    for operation in prepared {
        // Past the deadline, the rest are not started.
        let ran = if tokio::time::Instant::now() < deadline {
            let run = execute(
                state.clone(),
                client,
                headers.clone(),
                Method::POST,
                operation,
                media,
            );
            tokio::time::timeout_at(deadline, run).await.ok()
        } else {
            None
        };
        let Some(response) = ran else {
            let timeout = ApiError::Timeout(format!(
                "the batch did not finish within its deadline of {} ms",
                settings.http.request_timeout.as_millis()
            ));
            statuses.push(StatusCode::GATEWAY_TIMEOUT);
            bodies.push(Bytes::from(error_body(timeout.to_server_error())));
            continue;
        };
        statuses.push(response.status());
        if let Some(after) = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        {
            retry_after = Some(retry_after.map_or(after, |a| a.max(after)));
        }
        // The answer is already serialized, within the response limits;
        // the batch's answers together are held to them too.
        match axum::body::to_bytes(response.into_body(), limits.max_bytes).await {
            Ok(bytes) if size + bytes.len() < limits.max_bytes => {
                size += bytes.len() + 1;
                bodies.push(bytes);
            }
            Ok(_) | Err(_) => {
                let error = error_body(too_large(&limits));
                size += error.len() + 1;
                bodies.push(Bytes::from(error));
            }
        }
    }
    let mut out = Vec::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, body) in bodies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(body);
    }
    out.push(b']');
    // One status for all: theirs when they agree (every one refused the
    // same way), else 200 with each answer saying its own.
    let status = match statuses.first() {
        Some(first) if statuses.iter().all(|s| s == first) => *first,
        _ => StatusCode::OK,
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
        out,
    )
        .into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(after));
    }
    response
}
