//! Turning a GraphQL result into bytes, within bounds, for both transports:
//! - errors are capped (the rest summed up in one `TOO_MANY_ERRORS` error);
//! - the answer is serialized straight from async-graphql's value, in the
//!   order the fields were requested, into a writer that stops at the
//!   response-size ceiling, so an oversized answer becomes one
//!   `RESPONSE_TOO_LARGE` error instead of a buffer that keeps growing;
//! - errors asking the client to come back later (rate limits, overload, an
//!   unreachable database) decide the HTTP status and `Retry-After`.

use std::io::Write;

use async_graphql::{ErrorExtensionValues, ServerError, Value};
use axum::http::StatusCode;
use serde::Serialize;

use crate::error::code;

/// Bounds on what one answer may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Errors listed in one answer; more are summed up in one more error.
    pub max_errors: usize,
    /// Bytes of one serialized answer (or WebSocket message).
    pub max_bytes: usize,
}

impl ResponseLimits {
    pub const MAX_ERRORS: usize = 100;
    pub const MAX_BYTES: usize = 32 * 1024 * 1024;
}

impl Default for ResponseLimits {
    fn default() -> Self {
        Self {
            max_errors: Self::MAX_ERRORS,
            max_bytes: Self::MAX_BYTES,
        }
    }
}

/// Keeps the first `max` errors and replaces the rest by one error saying
/// how many were left out.
pub fn cap_errors(errors: &mut Vec<ServerError>, max: usize) {
    if errors.len() <= max {
        return;
    }
    let omitted = errors.len() - max;
    errors.truncate(max);
    let mut error = ServerError::new(
        format!("{omitted} more errors were left out (at most {max} are listed)"),
        None,
    );
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code::TOO_MANY_ERRORS);
    extensions.set("limit", "errors");
    extensions.set("max", max as u64);
    extensions.set("actual", (max + omitted) as u64);
    error.extensions = Some(extensions);
    errors.push(error);
}

/// The body of a GraphQL answer, fields in the order requested.
#[derive(Serialize)]
pub struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [ServerError],
}

/// A writer that refuses to grow past its limit.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(std::io::Error::other("response size ceiling"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `value` as JSON, or `None` once it would exceed `limit` bytes.
pub fn to_json_within<T: Serialize + ?Sized>(value: &T, limit: usize) -> Option<Vec<u8>> {
    let mut writer = Bounded {
        bytes: Vec::new(),
        limit,
    };
    serde_json::to_writer(&mut writer, value).ok()?;
    Some(writer.bytes)
}

/// The error that replaces an answer above the ceiling.
pub fn too_large(limits: &ResponseLimits) -> ServerError {
    let mut error = ServerError::new(
        format!(
            "the answer is larger than the response-size ceiling of {} bytes; ask for less (smaller pages, fewer fields or groups)",
            limits.max_bytes
        ),
        None,
    );
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code::RESPONSE_TOO_LARGE);
    extensions.set("limit", "responseBytes");
    extensions.set("max", limits.max_bytes as u64);
    error.extensions = Some(extensions);
    error
}

/// Serializes an answer within `limits`: an oversized one becomes
/// `{"data": null, "errors": [RESPONSE_TOO_LARGE]}` (or no `data` when
/// there was none).
/// Also says whether the answer was replaced (for the metrics).
pub fn serialize_within(
    data: Option<&Value>,
    errors: &[ServerError],
    limits: &ResponseLimits,
) -> (Vec<u8>, bool) {
    if let Some(bytes) = to_json_within(&Body { data, errors }, limits.max_bytes) {
        return (bytes, false);
    }
    let error = [too_large(limits)];
    let body = Body {
        data: data.map(|_| &Value::Null),
        errors: &error,
    };
    (
        serde_json::to_vec(&body).expect("an error body serializes"),
        true,
    )
}

/// The HTTP status of the codes that ask a client to come back later:
/// 429 for the caller's own excess, 503 for the server's or the database's.
pub fn retry_status(code: &str) -> Option<StatusCode> {
    match code {
        code::RATE_LIMITED => Some(StatusCode::TOO_MANY_REQUESTS),
        code::OVERLOADED | code::UNAVAILABLE => Some(StatusCode::SERVICE_UNAVAILABLE),
        _ => None,
    }
}

/// How an error asks the client to come back: its status and the seconds
/// to wait, for the codes that do.
pub fn retry_of(errors: &[ServerError]) -> Option<(StatusCode, u64)> {
    let mut worst: Option<(StatusCode, u64)> = None;
    for error in errors {
        let Some(extensions) = &error.extensions else {
            continue;
        };
        let status = match extensions.get("code") {
            Some(Value::String(c)) => match retry_status(c) {
                Some(status) => status,
                None => continue,
            },
            _ => continue,
        };
        let after = match extensions.get("retryAfter") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(1),
            _ => 1,
        }
        .max(1);
        // 503 (the server) outranks 429 (the caller); the longest wait wins.
        worst = Some(match worst {
            None => (status, after),
            Some((s, a)) => (
                if s == StatusCode::SERVICE_UNAVAILABLE {
                    s
                } else {
                    status
                },
                a.max(after),
            ),
        });
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(code: &str, retry_after: Option<u64>) -> ServerError {
        let mut error = ServerError::new("x", None);
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", code);
        if let Some(after) = retry_after {
            extensions.set("retryAfter", after);
        }
        error.extensions = Some(extensions);
        error
    }

    #[test]
    fn caps_errors_with_a_summary() {
        let mut errors: Vec<ServerError> = (0..250).map(|_| ServerError::new("e", None)).collect();
        cap_errors(&mut errors, 100);
        assert_eq!(errors.len(), 101);
        let last = errors.last().unwrap().extensions.as_ref().unwrap();
        assert_eq!(last.get("code"), Some(&Value::from(code::TOO_MANY_ERRORS)));
        assert_eq!(last.get("actual"), Some(&Value::from(250u64)));
        let mut few = vec![ServerError::new("e", None)];
        cap_errors(&mut few, 100);
        assert_eq!(few.len(), 1);
    }

    #[test]
    fn oversized_answers_become_one_error() {
        let limits = ResponseLimits {
            max_errors: 10,
            max_bytes: 64,
        };
        let big = Value::List((0..100).map(Value::from).collect());
        let body: serde_json::Value =
            serde_json::from_slice(&serialize_within(Some(&big), &[], &limits).0).unwrap();
        assert_eq!(body["data"], serde_json::Value::Null);
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            code::RESPONSE_TOO_LARGE
        );
        let small = Value::from(1);
        assert_eq!(
            serialize_within(Some(&small), &[], &limits).0,
            b"{\"data\":1}"
        );
    }

    #[test]
    fn answers_keep_the_requested_order() {
        let mut object = async_graphql::indexmap::IndexMap::new();
        object.insert(async_graphql::Name::new("zeta"), Value::from(1));
        object.insert(async_graphql::Name::new("alpha"), Value::from(2));
        let data = Value::Object(object);
        let bytes = serialize_within(Some(&data), &[], &ResponseLimits::default()).0;
        assert_eq!(bytes, br#"{"data":{"zeta":1,"alpha":2}}"#);
    }

    #[test]
    fn retry_statuses() {
        assert_eq!(retry_of(&[coded(code::BAD_USER_INPUT, None)]), None);
        assert_eq!(
            retry_of(&[coded(code::RATE_LIMITED, Some(3))]),
            Some((StatusCode::TOO_MANY_REQUESTS, 3))
        );
        assert_eq!(
            retry_of(&[
                coded(code::RATE_LIMITED, Some(3)),
                coded(code::OVERLOADED, None)
            ]),
            Some((StatusCode::SERVICE_UNAVAILABLE, 3))
        );
    }
}
