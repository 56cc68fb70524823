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

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(cause) = &e {
            tracing::error!(error = ?cause, "internal error");
        }
        let code = e.code();
        let field = match &e {
            ApiError::BadUserInput { field, .. } => field.clone(),
            _ => None,
        };
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
