//! Answers in the order the query asked for, as the GraphQL spec requires.
//! async-graphql 7.2 resolves an object's fields concurrently and keeps them
//! in the order they *finish* (`FuturesUnordered` in `do_resolve_container`),
//! so a field behind a DataLoader (a prediction's `model`) lands after its
//! siblings. This extension puts every object of an answer back in document
//! order (aliases, fragments and repeated fields merged as CollectFields
//! merges them), for queries, mutations and each subscription event, so every
//! transport serialises the same order.
//!
//! Type conditions are not evaluated (an answer does not carry each object's
//! type): where two fragments on different types order the same keys
//! differently, the first fragment's order is used. This schema has no
//! interfaces or unions, so that case cannot arise here.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextSubscribe,
};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Name, Request, Response, ServerResult, Value, Variables};
use futures_util::stream::{BoxStream, StreamExt};

pub(super) struct FieldOrder;

impl ExtensionFactory for FieldOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldOrderExtension::default())
    }
}

/// One request's document and operation, kept from parsing to the answer.
#[derive(Default)]
struct FieldOrderExtension {
    operation_name: Mutex<Option<String>>,
    document: Mutex<Option<Arc<ExecutableDocument>>>,
}

impl FieldOrderExtension {
    fn order(&self) -> Option<(Arc<ExecutableDocument>, Option<String>)> {
        let document = self.document.lock().ok()?.clone()?;
        let operation = self.operation_name.lock().ok()?.clone();
        Some((document, operation))
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for FieldOrderExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
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
        if let Ok(mut kept) = self.document.lock() {
            *kept = Some(Arc::new(document.clone()));
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
        if let Some((document, _)) = self.order() {
            in_document_order(&document, operation_name, &mut response.data);
        }
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let order = self.order();
        let stream = next.run(ctx, stream);
        match order {
            Some((document, operation)) => stream
                .map(move |mut response| {
                    in_document_order(&document, operation.as_deref(), &mut response.data);
                    response
                })
                .boxed(),
            None => stream,
        }
    }
}

/// Reorders `data`, the answer to `operation_name` of `document`.
pub(crate) fn in_document_order(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    data: &mut Value,
) {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => match operations.get(name) {
            Some(operation) => operation,
            None => return,
        },
        (DocumentOperations::Multiple(_), None) => return,
    };
    reorder(document, &[&operation.node.selection_set.node], data);
}

/// Puts `value`'s keys in the order `sets` select them (lists element by element).
fn reorder(document: &ExecutableDocument, sets: &[&SelectionSet], value: &mut Value) {
    match value {
        Value::List(items) => items
            .iter_mut()
            .for_each(|item| reorder(document, sets, item)),
        Value::Object(object) => {
            let mut keys: Vec<(&Name, Vec<&SelectionSet>)> = Vec::new();
            for set in sets {
                collect(document, set, &mut keys, 0);
            }
            let mut rest = std::mem::take(object);
            let mut ordered = IndexMap::with_capacity(rest.len());
            for (key, subsets) in keys {
                if let Some((name, mut child)) = rest.shift_remove_entry(key.as_str()) {
                    reorder(document, &subsets, &mut child);
                    ordered.insert(name, child);
                }
            }
            // Nothing else is expected; anything that is keeps its place after.
            ordered.extend(rest);
            *object = ordered;
        }
        _ => {}
    }
}

/// The response keys `set` selects, in document order, each with the
/// selection sets of every field answering under it. Fragment depth is
/// bounded (validation already refused cycles; this is a second guard).
fn collect<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut Vec<(&'a Name, Vec<&'a SelectionSet>)>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = &field.node.response_key().node;
                let subset = &field.node.selection_set.node;
                match keys.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, subsets)) => subsets.push(subset),
                    None => keys.push((key, vec![subset])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    collect(document, &fragment.node.selection_set.node, keys, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(document, &inline.node.selection_set.node, keys, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered(query: &str, operation: Option<&str>, answer: &str) -> String {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let mut data: Value = serde_json::from_str(answer).unwrap();
        in_document_order(&document, operation, &mut data);
        serde_json::to_string(&data).unwrap()
    }

    #[test]
    fn objects_follow_the_document_through_lists_aliases_and_fragments() {
        assert_eq!(
            ordered(
                "{ list { b a: x ...F ... on T { c d { z y } } } } fragment F on T { e c }",
                None,
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
                r#"{"n":null,"m":{"p":1,"q":2}}"#,
            ),
            r#"{"m":{"q":2,"p":1},"n":null}"#
        );
        // A repeated field merges its selections in order.
        assert_eq!(
            ordered(
                "{ m { q } m { p q r } }",
                None,
                r#"{"m":{"r":1,"p":2,"q":3}}"#
            ),
            r#"{"m":{"q":3,"p":2,"r":1}}"#
        );
    }
}
