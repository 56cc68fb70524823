//! Answers in the order the query asked for, as the GraphQL spec requires.
//! async-graphql 7.2 resolves an object's fields concurrently and keeps them
//! in the order they *finish* (`FuturesUnordered` in `do_resolve_container`),
//! so a field behind a DataLoader (a prediction's `model`) lands after its
//! siblings. This extension puts every object of an answer back in document
//! order (aliases, fragments, repeated fields and `@skip`/`@include` as
//! CollectFields treats them), for queries, mutations and each subscription
//! event, so every transport serialises the same order.
//!
//! Type conditions are not evaluated (an answer does not carry each object's
//! type): where two fragments on different types order the same keys
//! differently, the first fragment's order is used. This schema has no
//! interfaces or unions, so that case cannot arise here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextSubscribe,
};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::parser::Positioned;
use async_graphql::{Name, Request, Response, ServerResult, Value, Variables};
use futures_util::stream::{BoxStream, StreamExt};

pub(super) struct FieldOrder;

impl ExtensionFactory for FieldOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldOrderExtension::default())
    }
}

/// What one request's answers are ordered by, kept from parsing to the
/// answer. Shared with a subscription's stream, which async-graphql wraps
/// before the request is parsed.
#[derive(Default)]
struct Ordering {
    operation_name: Option<String>,
    document: Option<Arc<ExecutableDocument>>,
    /// The variables `@skip`/`@include` read, copied at parse time (only
    /// these: a write's variables can be megabytes).
    flags: HashMap<Name, Value>,
}

impl Ordering {
    /// The order of the answer to `operation_name` (the request's, if none).
    fn plan(&self, operation_name: Option<&str>) -> Option<Plan> {
        let document = self.document.as_ref()?;
        let name = operation_name.or(self.operation_name.as_deref());
        let operation = match &document.operations {
            DocumentOperations::Single(operation) => operation,
            DocumentOperations::Multiple(operations) => match name {
                Some(name) => operations.get(name)?,
                None if operations.len() == 1 => operations.values().next()?,
                None => return None,
            },
        };
        let builder = Builder {
            document,
            operation: &operation.node,
            flags: &self.flags,
        };
        Some(builder.plan(&[&operation.node.selection_set.node], 0))
    }
}

#[derive(Default)]
struct FieldOrderExtension(Arc<Mutex<Ordering>>);

#[async_graphql::async_trait::async_trait]
impl Extension for FieldOrderExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut state) = self.0.lock() {
            state.operation_name.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Ok(mut state) = self.0.lock() {
            state.flags = flag_variables(&document, variables);
            state.document = Some(Arc::new(document.clone()));
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let plan = self.0.lock().ok().and_then(|s| s.plan(operation_name));
        if let Some(plan) = plan {
            plan.apply(&mut response.data);
        }
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Called before the request is parsed: the plan is made at the first event.
        let state = self.0.clone();
        let mut plan: Option<Plan> = None;
        next.run(ctx, stream)
            .map(move |mut response| {
                if plan.is_none() {
                    plan = state.lock().ok().and_then(|s| s.plan(None));
                }
                if let Some(plan) = &plan {
                    plan.apply(&mut response.data);
                }
                response
            })
            .boxed()
    }
}

/// The response keys of one selection, in order, each with the order below it.
#[derive(Debug, Default, PartialEq)]
struct Plan(Vec<(Name, Plan)>);

impl Plan {
    /// Puts `value`'s objects in this order (lists element by element).
    fn apply(&self, value: &mut Value) {
        match value {
            Value::List(items) => items.iter_mut().for_each(|item| self.apply(item)),
            Value::Object(object) => {
                if !self.holds_order_of(object) {
                    let mut rest = std::mem::take(object);
                    let mut ordered = IndexMap::with_capacity(rest.len());
                    for (key, _) in &self.0 {
                        if let Some((name, child)) = rest.swap_remove_entry(key.as_str()) {
                            ordered.insert(name, child);
                        }
                    }
                    // Nothing else is expected; anything that is comes after.
                    ordered.extend(rest);
                    *object = ordered;
                }
                for (key, below) in &self.0 {
                    if let (false, Some(child)) = (below.0.is_empty(), object.get_mut(key)) {
                        below.apply(child);
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether `object`'s keys already come in this order (the common case).
    fn holds_order_of(&self, object: &IndexMap<Name, Value>) -> bool {
        let mut keys = self.0.iter();
        object
            .keys()
            .all(|present| keys.any(|(key, _)| key == present))
    }
}

/// Makes a [`Plan`] from the validated document (fragment expansion is
/// bounded by the depth and complexity limits by then).
struct Builder<'a> {
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    flags: &'a HashMap<Name, Value>,
}

impl<'a> Builder<'a> {
    fn plan(&self, sets: &[&'a SelectionSet], depth: usize) -> Plan {
        let mut keys: Vec<(&'a Name, Vec<&'a SelectionSet>)> = Vec::new();
        for set in sets {
            self.collect(set, &mut keys, depth);
        }
        Plan(
            keys.into_iter()
                .map(|(key, below)| (key.clone(), self.plan(&below, depth + 1)))
                .collect(),
        )
    }

    /// The response keys `set` selects, in document order, each with the
    /// selection sets of every field answering under it.
    fn collect(
        &self,
        set: &'a SelectionSet,
        keys: &mut Vec<(&'a Name, Vec<&'a SelectionSet>)>,
        depth: usize,
    ) {
        // Validation refused cycles and deep documents; a second guard.
        if depth > 128 {
            return;
        }
        for selection in &set.items {
            if !self.included(selection.node.directives()) {
                continue;
            }
            match &selection.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    let below = &field.node.selection_set.node;
                    match keys.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, sets)) => sets.push(below),
                        None => keys.push((key, vec![below])),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.collect(&fragment.node.selection_set.node, keys, depth + 1);
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.collect(&inline.node.selection_set.node, keys, depth + 1);
                }
            }
        }
    }

    /// `@skip(if:)` and `@include(if:)`, from literals, variables or their defaults.
    fn included(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().all(|directive| {
            let condition = directive.node.get_argument("if").and_then(|value| {
                let value = value.node.clone().into_const_with(|name| {
                    Ok::<_, Infallible>(self.flag(&name).unwrap_or(Value::Null))
                });
                match value {
                    Ok(Value::Boolean(b)) => Some(b),
                    _ => None,
                }
            });
            match (directive.node.name.node.as_str(), condition) {
                ("skip", Some(skip)) => !skip,
                ("include", Some(include)) => include,
                _ => true,
            }
        })
    }

    /// A variable's value, or its default in the operation.
    fn flag(&self, name: &Name) -> Option<Value> {
        self.flags.get(name).cloned().or_else(|| {
            self.operation
                .variable_definitions
                .iter()
                .find(|d| d.node.name.node == *name)
                .and_then(|d| d.node.default_value.as_ref().map(|v| v.node.clone()))
        })
    }
}

/// The variables named by any `@skip`/`@include` of `document`.
fn flag_variables(document: &ExecutableDocument, variables: &Variables) -> HashMap<Name, Value> {
    fn visit(set: &SelectionSet, variables: &Variables, out: &mut HashMap<Name, Value>) {
        for selection in &set.items {
            for directive in selection.node.directives() {
                if let Some(condition) = directive.node.get_argument("if") {
                    let _ = condition.node.clone().into_const_with(|name| {
                        if let Some(value) = variables.get(&name) {
                            out.insert(name, value.clone());
                        }
                        Ok::<_, Infallible>(Value::Null)
                    });
                }
            }
            match &selection.node {
                Selection::Field(field) => visit(&field.node.selection_set.node, variables, out),
                Selection::InlineFragment(inline) => {
                    visit(&inline.node.selection_set.node, variables, out)
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut out = HashMap::new();
    for (_, operation) in document.operations.iter() {
        visit(&operation.node.selection_set.node, variables, &mut out);
    }
    for fragment in document.fragments.values() {
        visit(&fragment.node.selection_set.node, variables, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered(query: &str, operation: Option<&str>, variables: &str, answer: &str) -> String {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(serde_json::from_str(variables).unwrap());
        let state = Ordering {
            operation_name: None,
            flags: flag_variables(&document, &variables),
            document: Some(Arc::new(document)),
        };
        let mut data: Value = serde_json::from_str(answer).unwrap();
        state.plan(operation).unwrap().apply(&mut data);
        serde_json::to_string(&data).unwrap()
    }

    #[test]
    fn objects_follow_the_document_through_lists_aliases_and_fragments() {
        assert_eq!(
            ordered(
                "{ list { b a: x ...F ... on T { c d { z y } } } } fragment F on T { e c }",
                None,
                "{}",
                r#"{"list":[{"d":{"y":1,"z":2},"c":3,"e":4,"a":5,"b":6},{"e":1,"b":2}]}"#,
            ),
            r#"{"list":[{"b":6,"a":5,"e":4,"c":3,"d":{"z":2,"y":1}},{"b":2,"e":1}]}"#
        );
    }

    #[test]
    fn the_named_operation_orders_and_null_objects_keep_their_place() {
        assert_eq!(
            ordered(
                "query A { x } query B { m { q p } n }",
                Some("B"),
                "{}",
                r#"{"n":null,"m":{"p":1,"q":2}}"#,
            ),
            r#"{"m":{"q":2,"p":1},"n":null}"#
        );
        // One named operation, no name given.
        assert_eq!(
            ordered("query B { n m }", None, "{}", r#"{"m":1,"n":2}"#),
            r#"{"n":2,"m":1}"#
        );
        // A repeated field merges its selections in order.
        assert_eq!(
            ordered(
                "{ m { q } m { p q r } }",
                None,
                "{}",
                r#"{"m":{"r":1,"p":2,"q":3}}"#
            ),
            r#"{"m":{"q":3,"p":2,"r":1}}"#
        );
    }

    #[test]
    fn skipped_fields_do_not_take_a_place() {
        let query = "query Q($no: Boolean!, $yes: Boolean = true) {
            b @include(if: $no) a b c @skip(if: false) ...F @include(if: $yes) }
            fragment F on Query { d }";
        assert_eq!(
            ordered(
                query,
                None,
                r#"{"no": false}"#,
                r#"{"d":1,"c":2,"b":3,"a":4}"#
            ),
            r#"{"a":4,"b":3,"c":2,"d":1}"#
        );
    }
}
