//! Batched POSTs (Apollo's `BatchHttpLink`, urql's batch exchange): the body
//! is a JSON array of requests, the answer an array of their answers in the
//! same order. Each operation goes through the whole single-request path
//! (its document's limits, credentials, rates, a slot, its own deadline and
//! metrics), one after the other, so a batch of n costs what n requests
//! cost and holds one slot at a time. At most `--max-batch-operations`; under
//! `require` trusted documents a batch runs only if every document is
//! trusted (or the caller is an exempt admin, decided per operation).

use std::net::IpAddr;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{body_error, document_refused, execute, MediaType, Members, Prepared, Rejection};
use super::{AppState, DocumentRefused, Gate};

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
        Ok(document) => state.documents.gate(document) == Gate::Refused,
        Err(refused) => *refused == DocumentRefused::NotTrusted,
    });
    if untrusted {
        let request_id = super::request_id(&headers);
        return document_refused(&state, media, &DocumentRefused::NotTrusted, &request_id);
    }

    let mut bodies = Vec::with_capacity(prepared.len());
    let mut statuses = Vec::with_capacity(prepared.len());
    let mut retry_after: Option<u64> = None;
    for operation in prepared {
        let response = execute(
            state.clone(),
            client,
            headers.clone(),
            Method::POST,
            operation,
            media,
        )
        .await;
        statuses.push(response.status());
        if let Some(after) = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        {
            retry_after = Some(retry_after.map_or(after, |a| a.max(after)));
        }
        // The answer is already serialized, within the response limits.
        match axum::body::to_bytes(response.into_body(), usize::MAX).await {
            Ok(bytes) => bodies.push(bytes),
            Err(e) => {
                tracing::error!(error = %e, "reading a batched answer");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
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
