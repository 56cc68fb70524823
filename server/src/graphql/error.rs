//! The one mapping of [`ApiError`] to GraphQL errors, and the codes of
//! errors async-graphql raises itself.
//!
//! Every error a client sees carries `extensions.code`.

use async_graphql::ErrorExtensions;

use crate::error::{code, ApiError, InputProblem};

/// The most problems listed in one error's extensions.
const MAX_LISTED_PROBLEMS: usize = 100;

impl ApiError {
    /// The GraphQL error a client sees: message and `extensions.code` (and
    /// the offending `field` for bad input). Logs nothing; see the `From` impl.
    pub fn to_graphql(&self) -> async_graphql::Error {
        let code = self.code();
        let field = match self {
            ApiError::BadUserInput { field, .. } => field.clone(),
            ApiError::Refused { problems, .. } => problems.first().map(|p| p.field.clone()),
            _ => None,
        };
        async_graphql::Error::new(self.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(after) = self.retry_after() {
                ext.set("retryAfter", after);
            }
            if let ApiError::Refused { problems, .. } = self {
                ext.set("problemCount", problems.len());
                ext.set(
                    "problems",
                    async_graphql::Value::List(
                        problems
                            .iter()
                            .take(MAX_LISTED_PROBLEMS)
                            .map(problem_value)
                            .collect(),
                    ),
                );
            }
        })
    }
}

impl ApiError {
    /// The same error as a request-level GraphQL error (no path), for
    /// refusals answered before an operation runs.
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        let error = self.to_graphql();
        let mut server_error = async_graphql::ServerError::new(error.message, None);
        server_error.extensions = error.extensions;
        server_error
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

fn problem_value(problem: &InputProblem) -> async_graphql::Value {
    let mut object = async_graphql::indexmap::IndexMap::new();
    if let Some(index) = problem.index {
        object.insert(async_graphql::Name::new("index"), index.into());
    }
    if let Some(id) = &problem.id {
        object.insert(async_graphql::Name::new("id"), id.clone().into());
    }
    object.insert(
        async_graphql::Name::new("field"),
        problem.field.clone().into(),
    );
    object.insert(
        async_graphql::Name::new("message"),
        problem.message.clone().into(),
    );
    async_graphql::Value::Object(object)
}

/// A batched load's error, shared by the keys of its batch (and logged once
/// by the loader).
pub fn shared(e: std::sync::Arc<ApiError>) -> async_graphql::Error {
    e.to_graphql()
}

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
