//! The API's error type and its one mapping to GraphQL errors.
//!
//! Every error a client sees carries `extensions.code`. Internal causes are
//! logged (inside the request's span, so with its request id) and replaced by
//! a generic message; SQL and stack text never reach a client.

use async_graphql::ErrorExtensions;

/// Error codes clients can branch on.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const CONFLICT: &str = "CONFLICT";
    pub const INTERNAL: &str = "INTERNAL";
    /// The document does not parse.
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    /// The document does not validate against the schema, or its variables do not fit.
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    /// The operation nests deeper than the configured limit.
    pub const QUERY_TOO_DEEP: &str = "QUERY_TOO_DEEP";
    /// The operation's complexity (page sizes multiplied down nested lists) is above the limit.
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
}

/// Deliberately not `Display`: async-graphql converts any `Display` type into
/// an error without a code, and `?` would pick that conversion silently.
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
    Internal(anyhow::Error),
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
            ApiError::Internal(_) => code::INTERNAL,
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ApiError {
    /// The GraphQL error a client sees: message and `extensions.code` (and
    /// the offending `field` for bad input). Logs nothing; see the `From` impl.
    pub fn to_graphql(&self) -> async_graphql::Error {
        let code = self.code();
        let field = match self {
            ApiError::BadUserInput { field, .. } => field.clone(),
            _ => None,
        };
        async_graphql::Error::new(self.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
        })
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(cause) = &e {
            tracing::error!(error = ?cause, "internal error");
        }
        e.to_graphql()
    }
}

/// A batched load's error, shared by the keys of its batch (and logged once
/// by the loader).
pub fn shared(e: std::sync::Arc<ApiError>) -> async_graphql::Error {
    e.to_graphql()
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Whether a response is a request error: the operation never started
/// (parse, validation, variables, limits), so `data` is null and no error has
/// a path. A field error on a non-null root also nulls `data`, but has a path.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    matches!(response.data, async_graphql::Value::Null)
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Gives every error that lacks `extensions.code` the code its kind implies,
/// so that no error reaches a client without one.
pub fn fill_missing_codes(errors: &mut [async_graphql::ServerError], default_code: &'static str) {
    for error in errors {
        let code = if is_argument_error(&error.message) {
            code::BAD_USER_INPUT
        } else {
            default_code
        };
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code);
        }
    }
}

/// async-graphql's own errors for an argument value that does not fit its
/// type (raised while resolving the field, so they carry a path): bad input,
/// not an internal failure.
fn is_argument_error(message: &str) -> bool {
    const PREFIXES: [&str; 3] = [
        "Failed to parse ",
        "Expected input type ",
        "Invalid value for argument ",
    ];
    PREFIXES.iter().any(|prefix| message.starts_with(prefix))
}

/// The code for errors lacking one: request errors are validation failures,
/// anything else is internal.
pub fn default_code(request_error: bool) -> &'static str {
    if request_error {
        code::GRAPHQL_VALIDATION_FAILED
    } else {
        code::INTERNAL
    }
}
