//! Answers in the order the query asked for, as the GraphQL spec requires.
//! async-graphql 7.2 resolves an object's fields concurrently and keeps them
//! in the order they *finish* (`FuturesUnordered` in `do_resolve_container`),
//! so a field behind a DataLoader (a prediction's `model`) lands after its
//! siblings. A [`Plan`], made from the document before it runs, puts every
//! object of an answer back in document order (aliases, fragments, repeated
//! fields and `@skip`/`@include` as CollectFields treats them); the schema
//! applies it to queries, mutations and each subscription event (see
//! `run.rs`), so every transport serialises the same order.
//!
//! Type conditions are not evaluated (an answer does not carry each object's
//! type): where two fragments on different types order the same keys
//! differently, the first fragment's order is used. This schema has no
//! interfaces or unions, so that case cannot arise here.

use std::cell::Cell;
use std::collections::HashMap;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::parser::Positioned;
use async_graphql::{Name, Value, Variables};
use async_graphql_value::Value as DocumentValue;

/// The most selections a plan visits (fragments counted where spread, each
/// visit constant time: nothing is copied, keys are found by hash). The plan
/// is made before validation, so this bounds what a hostile document costs;
/// a valid answer larger than this keeps async-graphql's order.
const MAX_VISITS: usize = 250_000;

/// The order of the answer to `operation_name` of `document` (the only
/// operation, if none is named), or `None` when there is no such operation
/// or it expands past [`MAX_VISITS`].
pub(super) fn plan(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Option<Plan> {
    let operation = super::document::selected(document, operation_name)?;
    let defaults = operation
        .node
        .variable_definitions
        .iter()
        .filter_map(|d| match d.node.default_value.as_ref().map(|v| &v.node) {
            Some(Value::Boolean(b)) => Some((&d.node.name.node, *b)),
            _ => None,
        })
        .collect();
    let builder = Builder {
        document,
        variables,
        defaults,
        visits: Cell::new(MAX_VISITS),
        exhausted: Cell::new(false),
    };
    let plan = builder.plan(&[&operation.node.selection_set.node], 0);
    (!builder.exhausted.get()).then_some(plan)
}

/// The response keys of one selection, in order, each with the order below it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Plan(Vec<(Name, Plan)>);

impl Plan {
    /// Puts `value`'s objects in this order (lists element by element).
    pub(super) fn apply(&self, value: &mut Value) {
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

/// Makes a [`Plan`] from a document, visiting at most [`MAX_VISITS`]
/// selections.
struct Builder<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// The operation's Boolean variable defaults, by name.
    defaults: HashMap<&'a Name, bool>,
    visits: Cell<usize>,
    exhausted: Cell<bool>,
}

impl<'a> Builder<'a> {
    fn plan(&self, sets: &[&'a SelectionSet], depth: usize) -> Plan {
        let mut keys = Keys::default();
        for set in sets {
            self.collect(set, &mut keys, depth);
        }
        Plan(
            keys.order
                .into_iter()
                .map(|(key, below)| (key.clone(), self.plan(&below, depth + 1)))
                .collect(),
        )
    }

    /// The response keys `set` selects, in document order, each with the
    /// selection sets of every field answering under it.
    fn collect(&self, set: &'a SelectionSet, keys: &mut Keys<'a>, depth: usize) {
        // Fragment cycles and deep documents are refused by validation,
        // which has not run yet.
        if depth > 128 {
            return;
        }
        for selection in &set.items {
            match self.visits.get().checked_sub(1) {
                Some(left) => self.visits.set(left),
                None => return self.exhausted.set(true),
            }
            if !self.included(selection.node.directives()) {
                continue;
            }
            match &selection.node {
                Selection::Field(field) => {
                    keys.add(
                        &field.node.response_key().node,
                        &field.node.selection_set.node,
                    );
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

    /// `@skip(if:)` and `@include(if:)`, from literals, variables or their
    /// defaults; a condition that is not a Boolean (validation refuses it
    /// later) counts as absent.
    fn included(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().all(|directive| {
            let condition = directive
                .node
                .get_argument("if")
                .and_then(|value| self.boolean(&value.node));
            match (directive.node.name.node.as_str(), condition) {
                ("skip", Some(skip)) => !skip,
                ("include", Some(include)) => include,
                _ => true,
            }
        })
    }

    /// A Boolean literal, or the Boolean a variable (or its default) holds.
    fn boolean(&self, value: &DocumentValue) -> Option<bool> {
        match value {
            DocumentValue::Boolean(b) => Some(*b),
            DocumentValue::Variable(name) => match self.variables.get(name) {
                Some(Value::Boolean(b)) => Some(*b),
                Some(_) => None,
                None => self.defaults.get(name).copied(),
            },
            _ => None,
        }
    }
}

/// The response keys of one selection in order, found by hash (a document
/// may name thousands of fields that do not exist: validation comes later).
#[derive(Default)]
struct Keys<'a> {
    order: Vec<(&'a Name, Vec<&'a SelectionSet>)>,
    index: HashMap<&'a Name, usize>,
}

impl<'a> Keys<'a> {
    fn add(&mut self, key: &'a Name, below: &'a SelectionSet) {
        match self.index.get(key) {
            Some(&at) => self.order[at].1.push(below),
            None => {
                self.index.insert(key, self.order.len());
                self.order.push((key, vec![below]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered(query: &str, operation: Option<&str>, variables: &str, answer: &str) -> String {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(serde_json::from_str(variables).unwrap());
        let mut data: Value = serde_json::from_str(answer).unwrap();
        plan(&document, operation, &variables)
            .unwrap()
            .apply(&mut data);
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

    #[test]
    fn a_condition_that_is_not_a_boolean_counts_as_absent() {
        // Validation refuses it later; the plan, made before, reads it in place.
        let query = "query($v: Boolean) { b @skip(if: $v) a @include(if: \"yes\") }";
        assert_eq!(
            ordered(query, None, r#"{"v": "not a boolean"}"#, r#"{"a":1,"b":2}"#),
            r#"{"b":2,"a":1}"#
        );
    }

    #[test]
    fn a_document_expanding_past_the_budget_gets_no_plan() {
        // Each fragment spreads the next twice: 2^40 selections expanded.
        let mut query = String::from("{ ...F0 }");
        for i in 0..40 {
            query.push_str(&format!(
                " fragment F{i} on Query {{ a ...F{n} b: a ...F{n} }}",
                n = i + 1
            ));
        }
        query.push_str(" fragment F40 on Query { a }");
        let document = async_graphql::parser::parse_query(&query).unwrap();
        assert!(plan(&document, None, &Variables::default()).is_none());
    }
}
