//! Runs admitted requests on a schema without extensions. As soon as an
//! async-graphql schema has one, every field of every answer takes a slower
//! path (an extension call and registry lookups per field: about a tenth of
//! a light page's CPU here). So the limits are checked by the schema's
//! built-in depth and complexity limits and, for page sizes, here before
//! anything runs, and answers are put in document order here. A refusal of
//! the built-in limits says only "too complex": the request is then given
//! to a twin schema with the limits extension, which validates it again and
//! explains the refusal (code, limit, maximum, actual) without running it.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{IntrospectionMode, Request, Response, Schema, ServerError, Value, Variables};
use futures_util::stream::{self, BoxStream, StreamExt};

use super::field_order::{self, Plan};
use super::limits::{self, QueryLimits};
use super::{alerts, Mutation, Query};

type Inner = Schema<Query, Mutation, alerts::Subscription>;

/// The schema requests run on (cheap to clone).
#[derive(Clone)]
pub struct AppSchema {
    fast: Inner,
    /// The same schema with the limits extension, for explaining refusals.
    diagnosis: Inner,
    limits: QueryLimits,
}

/// What a request is run with besides itself.
struct Run {
    plan: Option<Plan>,
    /// The request again, for the twin schema.
    retry: Retry,
}

struct Retry {
    query: String,
    operation_name: Option<String>,
    /// The variables light enough to copy for a refusal that is rare (see
    /// [`AppSchema::explain`]), and whether that is all of them.
    variables: Variables,
    complete: bool,
    introspection_mode: IntrospectionMode,
}

/// A variable weighing more than this (a value each, and a string's bytes
/// over 64 more) is not copied for [`Retry`]: a read's weigh a few, a batch
/// write's input can weigh hundreds of thousands.
const MAX_RETRY_WEIGHT: usize = 1_000;

impl AppSchema {
    pub(super) fn new(fast: Inner, diagnosis: Inner, limits: QueryLimits) -> Self {
        Self {
            fast,
            diagnosis,
            limits,
        }
    }

    /// Runs `request`, whose document the transport parsed and admitted
    /// (`Request::set_parsed_query`).
    pub async fn execute(&self, request: Request) -> Response {
        let (request, run) = match self.prepare(request) {
            Ok(prepared) => prepared,
            Err(refused) => return Response::from_errors(vec![refused]),
        };
        let response = self.fast.execute(request).await;
        self.finish(response, run.retry, run.plan.as_ref()).await
    }

    /// Runs `request` as a stream of answers (a subscription's events, or
    /// one answer), as [`AppSchema::execute`] does.
    pub fn execute_stream(&self, request: Request) -> BoxStream<'static, Response> {
        let (request, run) = match self.prepare(request) {
            Ok(prepared) => prepared,
            Err(refused) => {
                return stream::once(async move { Response::from_errors(vec![refused]) }).boxed()
            }
        };
        let this = self.clone();
        let plan = run.plan.map(Arc::new);
        // Only the first answer can be a refusal of the limits.
        let mut retry = Some(run.retry);
        self.fast
            .execute_stream(request)
            .then(move |response| {
                let retry = retry.take();
                let this = this.clone();
                let plan = plan.clone();
                async move {
                    match retry {
                        Some(retry) => this.finish(response, retry, plan.as_deref()).await,
                        None => ordered(response, plan.as_deref()),
                    }
                }
            })
            .boxed()
    }

    /// The schema in SDL.
    pub fn sdl(&self) -> String {
        self.fast.sdl()
    }

    /// The checks due before `request` runs, and its [`Run`].
    fn prepare(&self, mut request: Request) -> Result<(Request, Run), ServerError> {
        // Variables and name are set aside while the document is borrowed.
        let variables = std::mem::take(&mut request.variables);
        let operation_name = request.operation_name.take();
        let checked = request
            .parsed_query()
            .map(|document| self.check(document, operation_name.as_deref(), &variables));
        request.variables = variables;
        request.operation_name = operation_name;
        let plan = checked??;
        let mut variables = Variables::default();
        let mut complete = true;
        for (name, value) in request.variables.iter() {
            if weight(value, MAX_RETRY_WEIGHT) <= MAX_RETRY_WEIGHT {
                variables.insert(name.clone(), value.clone());
            } else {
                complete = false;
            }
        }
        let retry = Retry {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables,
            complete,
            introspection_mode: request.introspection_mode,
        };
        Ok((request, Run { plan, retry }))
    }

    /// The page-size cap, then the answer's order.
    fn check(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<Option<Plan>, ServerError> {
        if let Some(refused) = limits::page_size_refusal(document, variables, &self.limits) {
            return Err(refused);
        }
        Ok(field_order::plan(document, operation_name, variables))
    }

    /// `response` in document order, or the explained refusal.
    async fn finish(&self, response: Response, retry: Retry, plan: Option<&Plan>) -> Response {
        match self.refusal(&response) {
            Some(unexplained) => self.explain(unexplained, retry).await,
            None => ordered(response, plan),
        }
    }

    /// Whether `response` is a refusal of the built-in limits, and what it
    /// says without the twin schema's explanation.
    fn refusal(&self, response: &Response) -> Option<ServerError> {
        let [error] = response.errors.as_slice() else {
            return None;
        };
        if response.data != Value::Null || !error.path.is_empty() {
            return None;
        }
        let (depth, complexity) = (self.limits.max_depth, self.limits.max_complexity);
        match error.message.as_str() {
            "Query is nested too deep." => Some(limits::depth_refusal(depth, None)),
            "Query is too complex." => Some(limits::complexity_refusal(complexity, None)),
            message if limits::is_nesting_error(message) => Some(limits::nesting_refusal(depth)),
            _ => None,
        }
    }

    /// The twin schema's explanation of a refusal, or `unexplained`. It
    /// validates the request again, so validation errors come first and
    /// depth before complexity, as clients have always seen them. Without
    /// a heavy variable (not copied) it still finds the document's errors
    /// and its depth, but not the complexity that variable drives, nor
    /// anything an argument needs it for: such an answer is not used, and
    /// the refusal is given without its actual value.
    async fn explain(&self, unexplained: ServerError, retry: Retry) -> Response {
        let complete = retry.complete;
        let mut request = Request::new(retry.query).variables(retry.variables);
        request.operation_name = retry.operation_name;
        request.introspection_mode = retry.introspection_mode;
        let explained = self.diagnosis.execute(request).await;
        let incomplete = |e: &ServerError| {
            !complete
                && (e.message.ends_with("is not defined.")
                    || e.extensions
                        .as_ref()
                        .and_then(|x| x.get("limit"))
                        .is_some_and(|limit| *limit == Value::from("complexity")))
        };
        if explained.errors.is_empty()
            || explained
                .errors
                .iter()
                .any(|e| e.message == limits::NOT_EXPLAINED || incomplete(e))
        {
            return Response::from_errors(vec![unexplained]);
        }
        explained
    }
}

/// `response` with its objects in `plan`'s order.
fn ordered(mut response: Response, plan: Option<&Plan>) -> Response {
    if let Some(plan) = plan {
        plan.apply(&mut response.data);
    }
    response
}

/// The weight of `value` (a value each, a string's bytes over 64 more),
/// counted up to just past `cap`.
fn weight(value: &Value, cap: usize) -> usize {
    let mut weight = 0;
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        weight += 1;
        match value {
            Value::List(items) => pending.extend(items),
            Value::Object(fields) => pending.extend(fields.values()),
            Value::String(text) => weight += text.len() / 64,
            _ => {}
        }
        if weight > cap {
            break;
        }
    }
    weight
}
