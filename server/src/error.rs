//! The API's error type: what went wrong, the code a client branches on and
//! the message it reads. `graphql::error` maps it to GraphQL errors (the one
//! place), the transport to HTTP statuses.
//!
//! Internal causes are logged (inside the request's span, so with its
//! request id) and replaced by a generic message; SQL and stack text never
//! reach a client.

use crate::db::{classify, Failure};

/// Error codes clients can branch on.
pub mod code {
    /// Declares each code as a constant spelled as its name, and [`ALL`].
    macro_rules! codes {
        ($($(#[$doc:meta])* $name:ident,)*) => {
            $($(#[$doc])* pub const $name: &str = stringify!($name);)*

            /// Every code.
            pub const ALL: &[&str] = &[$($name),*];
        };
    }

    codes! {
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        BAD_USER_INPUT,
        CONFLICT,
        INTERNAL,
        /// The document does not parse.
        GRAPHQL_PARSE_FAILED,
        /// The document does not validate against the schema, or its variables do not fit.
        GRAPHQL_VALIDATION_FAILED,
        /// The operation nests deeper than the configured limit.
        QUERY_TOO_DEEP,
        /// The operation's complexity (page sizes multiplied down nested lists) is above the limit.
        QUERY_TOO_COMPLEX,
        /// The document has more lexical tokens than allowed.
        TOO_MANY_TOKENS,
        /// An input value nests lists or objects deeper than allowed.
        VALUE_TOO_DEEP,
        /// The document has more aliases than allowed.
        TOO_MANY_ALIASES,
        /// The document has more directives than allowed.
        TOO_MANY_DIRECTIVES,
        /// An operation selects more root fields than allowed.
        TOO_MANY_ROOT_FIELDS,
        /// More errors occurred than are listed; the last error says how many.
        TOO_MANY_ERRORS,
        /// A WebSocket connection already runs as many operations as allowed.
        TOO_MANY_SUBSCRIPTIONS,
        /// The answer would be larger than the response-size ceiling.
        RESPONSE_TOO_LARGE,
        /// A statement, lock wait or the whole request ran past its time budget.
        TIMEOUT,
        /// The caller (its credential or tenant) is over a rate or its share;
        /// HTTP 429 with `Retry-After`.
        RATE_LIMITED,
        /// The server has no capacity left right now; HTTP 503 with `Retry-After`.
        OVERLOADED,
        /// A dependency (the database) cannot be reached; HTTP 503 with `Retry-After`.
        UNAVAILABLE,
        /// An APQ hash no document is registered under: send the document
        /// with its hash (Apollo's links do so by themselves).
        PERSISTED_QUERY_NOT_FOUND,
        /// Automatic persisted queries are off: send the document itself.
        PERSISTED_QUERY_NOT_SUPPORTED,
        /// Only trusted documents run here (`--trusted-documents-mode require`).
        TRUSTED_DOCUMENT_REQUIRED,
    }

    /// What a metric label says for a code that is none of ours.
    pub const OTHER: &str = "OTHER";

    /// `code` as one of ours, or `OTHER` (a metric label must come from a
    /// closed set whatever an error carries).
    pub fn known(code: &str) -> &'static str {
        ALL.iter().copied().find(|c| *c == code).unwrap_or(OTHER)
    }
}

/// Deliberately not `Display`: async-graphql converts any `Display` type into
/// an error without a code, and `?` would pick that conversion silently.
/// Outside GraphQL (the command line) it converts into `anyhow::Error`.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    /// What was not found, e.g. `model "m-1"`.
    NotFound(String),
    BadUserInput {
        message: String,
        field: Option<String>,
    },
    Conflict(String),
    /// An input refused as a whole, with every problem found in it: each
    /// names its item (for lists) and field, e.g. `input[3].riskScore`.
    Refused {
        code: Refusal,
        problems: Vec<InputProblem>,
    },
    /// A time budget ran out (a statement, a lock wait, the request).
    Timeout(String),
    /// The caller is over a rate or its tenant's share: come back in
    /// `retry_after` seconds (HTTP 429).
    RateLimited {
        message: String,
        retry_after: u64,
    },
    /// The server has no capacity right now (HTTP 503).
    Overloaded {
        message: String,
        retry_after: u64,
    },
    /// The database cannot be reached (HTTP 503).
    Unavailable {
        message: String,
        retry_after: u64,
    },
    Internal(anyhow::Error),
}

/// Why an input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A value is invalid.
    BadUserInput,
    /// A reference names nothing in the caller's tenant.
    NotFound,
    /// An id is taken by different content.
    Conflict,
}

/// One problem of a refused input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputProblem {
    /// The item's position, for list inputs.
    pub index: Option<usize>,
    /// The item's id, when it has one.
    pub id: Option<String>,
    /// The path of the offending field, e.g. `input[3].riskScore`.
    pub field: String,
    pub message: String,
}

impl ApiError {
    /// The message a client sees.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated(m) | ApiError::Forbidden(m) | ApiError::Conflict(m) => {
                m.clone()
            }
            ApiError::NotFound(what) => format!("{what} not found"),
            ApiError::BadUserInput { message, .. } => message.clone(),
            ApiError::Refused { problems, .. } => refusal_message(problems),
            ApiError::Timeout(m) => m.clone(),
            ApiError::RateLimited { message, .. }
            | ApiError::Overloaded { message, .. }
            | ApiError::Unavailable { message, .. } => message.clone(),
            ApiError::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => code::UNAUTHENTICATED,
            ApiError::Forbidden(_) => code::FORBIDDEN,
            ApiError::NotFound(_) => code::NOT_FOUND,
            ApiError::BadUserInput { .. } => code::BAD_USER_INPUT,
            ApiError::Conflict(_) => code::CONFLICT,
            ApiError::Refused { code: refusal, .. } => match refusal {
                Refusal::BadUserInput => code::BAD_USER_INPUT,
                Refusal::NotFound => code::NOT_FOUND,
                Refusal::Conflict => code::CONFLICT,
            },
            ApiError::Timeout(_) => code::TIMEOUT,
            ApiError::RateLimited { .. } => code::RATE_LIMITED,
            ApiError::Overloaded { .. } => code::OVERLOADED,
            ApiError::Unavailable { .. } => code::UNAVAILABLE,
            ApiError::Internal(_) => code::INTERNAL,
        }
    }

    /// Seconds a client should wait before trying again, for the errors
    /// that ask it to.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. }
            | ApiError::Overloaded { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The error a client sees for a database failure it can act on.
    pub fn from_failure(failure: Failure) -> ApiError {
        match failure {
            Failure::Timeout => ApiError::Timeout(
                "the database did not finish within this request's time budget".into(),
            ),
            Failure::TenantShare => ApiError::RateLimited {
                message:
                    "your tenant is using its whole share of database connections; retry shortly"
                        .into(),
                retry_after: 1,
            },
            Failure::Overloaded => ApiError::Overloaded {
                message: "the database is busy; retry shortly".into(),
                retry_after: 1,
            },
            Failure::Unavailable => ApiError::Unavailable {
                message: "the database is unavailable; retry shortly".into(),
                retry_after: 2,
            },
            Failure::Full => ApiError::Unavailable {
                message: "the database has no room to write; nothing of this request was stored, retry later".into(),
                retry_after: 10,
            },
        }
    }

    /// Maps a failed write. Every statement mlgate writes is validated first,
    /// so this is the safety net: a constraint the database enforces becomes
    /// the code a client can act on (the raw error, which may quote SQL, is
    /// only logged), anything else is internal.
    pub fn from_write(e: sea_orm::DbErr) -> ApiError {
        use sea_orm::sqlx::error::ErrorKind;
        if let Some(failure) = classify(&e) {
            tracing::warn!(error = %e, ?failure, "write failed");
            return ApiError::from_failure(failure);
        }
        let database_error = match &e {
            sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(inner))
            | sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(inner)) => {
                inner.as_database_error()
            }
            _ => None,
        };
        let Some(database_error) = database_error else {
            return ApiError::Internal(e.into());
        };
        let sql_state = database_error.code().unwrap_or_default();
        let mapped = match database_error.kind() {
            ErrorKind::UniqueViolation => {
                ApiError::Conflict("a row with this id already exists".into())
            }
            ErrorKind::ForeignKeyViolation => ApiError::NotFound("a referenced row".into()),
            ErrorKind::NotNullViolation | ErrorKind::CheckViolation => ApiError::BadUserInput {
                message: "a value is outside what its column accepts".into(),
                field: None,
            },
            // PostgreSQL's class 22 (data exceptions): too long, out of range, malformed.
            _ if sql_state.starts_with("22") => ApiError::BadUserInput {
                message: "a value does not fit its column".into(),
                field: None,
            },
            // Row-level security refused the row: a tenant mismatch.
            _ if sql_state == "42501" => {
                ApiError::Forbidden("the write was refused by row-level security".into())
            }
            _ => return ApiError::Internal(e.into()),
        };
        tracing::warn!(error = %e, code = mapped.code(), "database refused a write");
        mapped
    }
}

/// What a client reads of a refusal: the first problem, and how many more
/// are listed in `extensions.problems`.
fn refusal_message(problems: &[InputProblem]) -> String {
    let mut message = String::from("nothing was written");
    if let Some(first) = problems.first() {
        message.push_str(&format!(": {}: {}", first.field, first.message));
    }
    if problems.len() > 1 {
        message.push_str(&format!(
            " (and {} more, see extensions.problems)",
            problems.len() - 1
        ));
    }
    message
}

/// A conversion that cannot fail (`From` seen as `TryFrom`).
impl From<std::convert::Infallible> for ApiError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        match classify(&e) {
            Some(failure) => {
                tracing::warn!(error = %e, ?failure, "database failure");
                ApiError::from_failure(failure)
            }
            None => ApiError::Internal(e.into()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// For the command line: the client's message, or the internal cause.
impl From<ApiError> for anyhow::Error {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Internal(cause) => cause,
            other => anyhow::Error::msg(other.message()),
        }
    }
}
