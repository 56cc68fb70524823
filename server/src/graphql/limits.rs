//! Query limits, enforced before anything runs: depth, complexity (page
//! sizes multiply down nested lists) and the page-size cap, including on
//! nested lists whose resolvers would only run after their parents' SQL.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};
use async_graphql_value::Value as DocumentValue;

use crate::error::code;
use crate::store::PageLimits;

/// The limits every operation must respect. The document limits (tokens,
/// value nesting, aliases, directives, root fields) are checked before the
/// parser runs (see `document.rs`); depth, complexity and page sizes after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub page: PageLimits,
    /// Lexical tokens in the document (punctuators, names, values).
    pub max_tokens: usize,
    /// Lists and objects nested in one input value (literal, default or variable).
    pub max_value_depth: usize,
    /// Aliased fields, fragments counted where spread.
    pub max_aliases: usize,
    /// Directives in the document.
    pub max_directives: usize,
    /// Fields on the root type of one operation.
    pub max_root_fields: usize,
}

impl QueryLimits {
    pub const MAX_DEPTH: usize = 15;
    pub const MAX_COMPLEXITY: usize = 250_000;
    pub const MAX_TOKENS: usize = 15_000;
    pub const MAX_VALUE_DEPTH: usize = 32;
    pub const MAX_ALIASES: usize = 30;
    pub const MAX_DIRECTIVES: usize = 50;
    pub const MAX_ROOT_FIELDS: usize = 25;
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_depth: Self::MAX_DEPTH,
            max_complexity: Self::MAX_COMPLEXITY,
            page: PageLimits::default(),
            max_tokens: Self::MAX_TOKENS,
            max_value_depth: Self::MAX_VALUE_DEPTH,
            max_aliases: Self::MAX_ALIASES,
            max_directives: Self::MAX_DIRECTIVES,
            max_root_fields: Self::MAX_ROOT_FIELDS,
        }
    }
}

/// Limits on writes: the most items one batch mutation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteLimits {
    pub max_batch: usize,
}

impl WriteLimits {
    pub const MAX_BATCH: usize = crate::write::predictions::DEFAULT_MAX_BATCH;
}

impl WriteLimits {
    /// The limits the schema was built with.
    pub fn of(ctx: &async_graphql::Context<'_>) -> Self {
        ctx.data_opt::<Self>().copied().unwrap_or_default()
    }
}

impl Default for WriteLimits {
    fn default() -> Self {
        Self {
            max_batch: Self::MAX_BATCH,
        }
    }
}

/// The extension checking [`QueryLimits`] after parsing and validation, on
/// the twin schema that explains a refusal of the built-in limits (see
/// `run.rs`): it runs nothing.
pub(super) struct Limits(pub QueryLimits);

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension(self.0))
    }
}

struct LimitsExtension(QueryLimits);

/// A refusal for going over `limit`: `extensions` carry the code, the
/// limit's name, its maximum and what the request had (when it was counted
/// to the end: scans stop at the limit).
pub(super) fn limit_error(
    message: String,
    code: &str,
    limit: &str,
    max: usize,
    actual: Option<usize>,
) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    extensions.set("limit", limit);
    extensions.set("max", max as u64);
    if let Some(actual) = actual {
        extensions.set("actual", actual as u64);
    }
    error.extensions = Some(extensions);
    error
}

/// The refusal of a query deeper than `max`.
pub(super) fn depth_refusal(max: usize, actual: Option<usize>) -> ServerError {
    let message = match actual {
        Some(actual) => format!("query depth {actual} is above the limit of {max}"),
        None => format!("query depth is above the limit of {max}"),
    };
    limit_error(message, code::QUERY_TOO_DEEP, "depth", max, actual)
}

/// The refusal of a query nested past the parser's guard (set above the
/// depth limit `max`, so that limit is the one a client meets).
pub(super) fn nesting_refusal(max: usize) -> ServerError {
    limit_error(
        format!("query nesting is far above the depth limit of {max}"),
        code::QUERY_TOO_DEEP,
        "depth",
        max,
        None,
    )
}

/// Whether `message` is async-graphql's refusal of a document nested past
/// its recursion guard.
pub(super) fn is_nesting_error(message: &str) -> bool {
    message.starts_with("The recursion depth of the query")
}

/// The refusal of a query more complex than `max`.
pub(super) fn complexity_refusal(max: usize, actual: Option<usize>) -> ServerError {
    let message = match actual {
        Some(actual) => format!(
            "query complexity {actual} is above the limit of {max} (page sizes multiply down nested lists)"
        ),
        None => format!(
            "query complexity is above the limit of {max} (page sizes multiply down nested lists)"
        ),
    };
    limit_error(message, code::QUERY_TOO_COMPLEX, "complexity", max, actual)
}

/// The refusal of a `first`/`last` above the page size cap, anywhere in
/// `document` (literal or variable), before anything runs: nested lists'
/// resolvers would only see theirs after their parents' SQL.
pub(super) fn page_size_refusal(
    document: &ExecutableDocument,
    variables: &Variables,
    limits: &QueryLimits,
) -> Option<ServerError> {
    let (argument, size) = largest_page(document, variables)
        .filter(|(_, size)| *size > limits.page.max_size as i64)?;
    let mut error = limit_error(
        format!(
            "`{argument}: {size}` is above the page size limit of {}",
            limits.page.max_size
        ),
        code::BAD_USER_INPUT,
        "pageSize",
        limits.page.max_size as usize,
        Some(size as usize),
    );
    if let Some(extensions) = error.extensions.as_mut() {
        extensions.set("field", argument);
    }
    Some(error)
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await.map_err(|error| {
            if is_nesting_error(&error.message) {
                nesting_refusal(self.0.max_depth)
            } else {
                error
            }
        })?;
        match page_size_refusal(&document, variables, &self.0) {
            Some(error) => Err(error),
            None => Ok(document),
        }
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.depth > self.0.max_depth {
            return Err(vec![depth_refusal(self.0.max_depth, Some(result.depth))]);
        }
        if result.complexity > self.0.max_complexity {
            return Err(vec![complexity_refusal(
                self.0.max_complexity,
                Some(result.complexity),
            )]);
        }
        Ok(result)
    }

    /// Never reached for a request the built-in limits refused, which is
    /// all this schema is given; should it be, nothing runs.
    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: NextExecute<'_>,
    ) -> Response {
        Response::from_errors(vec![ServerError::new(NOT_EXPLAINED, None)])
    }
}

/// What the twin schema answers when it finds no limit exceeded.
pub(super) const NOT_EXPLAINED: &str = "no limit explains the refusal";

/// The largest `first`/`last` argument anywhere in the document (literal or
/// variable), with its name. Every `first`/`last` in this schema is a page size.
fn largest_page(document: &ExecutableDocument, variables: &Variables) -> Option<(String, i64)> {
    let mut largest: Option<(String, i64)> = None;
    let mut visit = |set: &SelectionSet| walk(set, variables, &mut largest);
    for (_, operation) in document.operations.iter() {
        visit(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        visit(&fragment.node.selection_set.node);
    }
    largest
}

fn walk(set: &SelectionSet, variables: &Variables, largest: &mut Option<(String, i64)>) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                for (name, value) in &field.node.arguments {
                    if name.node != "first" && name.node != "last" {
                        continue;
                    }
                    // Read in place: a literal can be large, and nothing
                    // has checked its type yet.
                    let number = match &value.node {
                        DocumentValue::Number(number) => Some(number),
                        DocumentValue::Variable(variable) => match variables.get(variable) {
                            Some(Value::Number(number)) => Some(number),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(size) = number.and_then(|number| number.as_i64()) {
                        if largest.as_ref().is_none_or(|(_, l)| size > *l) {
                            *largest = Some((name.node.to_string(), size));
                        }
                    }
                }
                walk(&field.node.selection_set.node, variables, largest);
            }
            Selection::InlineFragment(fragment) => {
                walk(&fragment.node.selection_set.node, variables, largest);
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}
