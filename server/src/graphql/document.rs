//! Document limits, checked before a request costs anything.
//!
//! async-graphql parses with a recursive-descent parser whose recursion
//! guard covers selection sets but not value literals: a list literal nested
//! a few thousand deep overflows the stack and aborts the process. So every
//! document first goes through [`scan`], an iterative tokenizer that counts
//! tokens and measures the nesting of selections and of values (literals,
//! variable defaults, variable types) without recursing; only a document
//! within the limits reaches the parser. The parsed document is then counted
//! for aliases (fragments expanded), directives and root fields, and its
//! strings and the request's variables are checked for values no backend
//! stores (NUL). Each refusal names its limit, the maximum and what the
//! document had.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Name, ServerError, Value, Variables};

use super::limits::{limit_error, QueryLimits};
use crate::error::code;

/// What an admitted document carries besides itself.
pub struct Admitted {
    pub document: ExecutableDocument,
    /// Whether any operation selects `__schema` or `__type`.
    pub introspective: bool,
}

/// Checks `query` and `variables` against `limits`, then parses the query.
/// Nothing recursive runs on input that is not yet known to be bounded.
pub fn admit(
    query: &str,
    operation_name: Option<&str>,
    variables: Option<&Variables>,
    limits: &QueryLimits,
) -> Result<Admitted, ServerError> {
    let shape = scan(query, limits)?;
    if let Some(variables) = variables {
        check_variables(variables, limits)?;
    }
    debug_assert!(shape.selection_depth <= selection_nesting_cap(limits));
    let document = async_graphql::parser::parse_query(query).map_err(ServerError::from)?;
    let counts = count(&document);
    let checks = [
        (
            counts.aliases,
            limits.max_aliases,
            code::TOO_MANY_ALIASES,
            "aliases",
            "aliases (fragments expanded)",
        ),
        (
            counts.directives,
            limits.max_directives,
            code::TOO_MANY_DIRECTIVES,
            "directives",
            "directives",
        ),
        (
            counts.root_fields,
            limits.max_root_fields,
            code::TOO_MANY_ROOT_FIELDS,
            "rootFields",
            "root fields in one operation",
        ),
    ];
    for (actual, max, code, limit, what) in checks {
        if actual > max {
            return Err(limit_error(
                format!("{actual} {what} are above the limit of {max}"),
                code,
                limit,
                max,
                Some(actual),
            ));
        }
    }
    check_literals(&document)?;
    check_required_variables(&document, operation_name, variables)?;
    Ok(Admitted {
        document,
        introspective: counts.introspective,
    })
}

/// The deepest nesting of selection sets the scanner lets through: above
/// the depth limit (so that validation, which follows fragments, reports
/// the exact depth) but far below what could exhaust a stack.
fn selection_nesting_cap(limits: &QueryLimits) -> usize {
    limits.max_depth.max(30) + 2
}

/// What the tokenizer measured.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    tokens: usize,
    selection_depth: usize,
    value_depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// Arguments or variable definitions: what opens inside is a value.
    Paren,
    /// A list value or a list type.
    Bracket,
    /// An object value.
    Object,
    /// A selection set.
    Selection,
}

/// Tokenizes `query` (GraphQL's lexical grammar, loosely: the parser has
/// the last word on validity) without recursion, refusing it as soon as it
/// has more tokens or deeper nesting than `limits` allow. Work is bounded
/// by the token limit, not by the document.
fn scan(query: &str, limits: &QueryLimits) -> Result<Shape, ServerError> {
    let bytes = query.as_bytes();
    let mut shape = Shape::default();
    let mut stack: Vec<Open> = Vec::new();
    let (mut selections, mut values) = (0usize, 0usize);
    let selection_cap = selection_nesting_cap(limits);
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            // Ignored tokens: white space, line terminators, commas, the BOM.
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            0xEF if bytes[i..].starts_with("\u{feff}".as_bytes()) => {
                i += 3;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        shape.tokens += 1;
        if shape.tokens > limits.max_tokens {
            return Err(limit_error(
                format!("the document has more than {} tokens", limits.max_tokens),
                code::TOO_MANY_TOKENS,
                "tokens",
                limits.max_tokens,
                None,
            ));
        }
        match byte {
            b'(' | b'[' | b'{' => {
                let open = match byte {
                    b'(' => Open::Paren,
                    b'[' => Open::Bracket,
                    _ if matches!(
                        stack.last(),
                        Some(Open::Paren | Open::Bracket | Open::Object)
                    ) =>
                    {
                        Open::Object
                    }
                    _ => Open::Selection,
                };
                match open {
                    Open::Selection => selections += 1,
                    Open::Bracket | Open::Object => values += 1,
                    Open::Paren => {}
                }
                stack.push(open);
                shape.selection_depth = shape.selection_depth.max(selections);
                shape.value_depth = shape.value_depth.max(values);
                if selections > selection_cap {
                    return Err(limit_error(
                        format!(
                            "selection sets nest more than {selection_cap} deep; the depth limit is {}",
                            limits.max_depth
                        ),
                        code::QUERY_TOO_DEEP,
                        "depth",
                        limits.max_depth,
                        None,
                    ));
                }
                if values > limits.max_value_depth {
                    return Err(value_too_deep(limits, None));
                }
                if stack.len() > selection_cap + limits.max_value_depth + 2 {
                    // Parentheses cannot nest in valid GraphQL; this only
                    // bounds what the parser would try on garbage.
                    return Err(ServerError::new(
                        "the document nests parentheses too deep to be GraphQL",
                        None,
                    ));
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                match stack.pop() {
                    Some(Open::Selection) => selections -= 1,
                    Some(Open::Bracket | Open::Object) => values -= 1,
                    Some(Open::Paren) | None => {}
                }
                i += 1;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // Block string: up to an unescaped `"""`.
                i += 3;
                loop {
                    if i >= bytes.len() {
                        break;
                    }
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if bytes[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\n' | b'\r' => break,
                        _ => i += 1,
                    }
                }
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'A'..=b'Z' | b'a'..=b'z' => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            _ => {
                // A punctuator, or a character the parser will refuse: one
                // token either way (a whole UTF-8 sequence).
                i += 1;
                while i < bytes.len() && (bytes[i] & 0xC0) == 0x80 {
                    i += 1;
                }
            }
        }
    }
    Ok(shape)
}

fn value_too_deep(limits: &QueryLimits, field: Option<String>) -> ServerError {
    let mut error = limit_error(
        format!(
            "an input value nests more than {} lists or objects deep",
            limits.max_value_depth
        ),
        code::VALUE_TOO_DEEP,
        "valueDepth",
        limits.max_value_depth,
        None,
    );
    if let (Some(field), Some(extensions)) = (field, error.extensions.as_mut()) {
        extensions.set("field", field);
    }
    error
}

fn nul_refusal(field: String) -> ServerError {
    let mut error = ServerError::new(
        format!("`{field}` contains a NUL character (U+0000), which no text may hold"),
        None,
    );
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code::BAD_USER_INPUT);
    extensions.set("field", field);
    error.extensions = Some(extensions);
    error
}

/// Checks the request's variables, iteratively: nesting within the value
/// depth limit (serde_json already stops at 128), and no NUL in any string
/// or object key.
fn check_variables(variables: &Variables, limits: &QueryLimits) -> Result<(), ServerError> {
    if variables.keys().any(|name| name.contains('\0')) {
        return Err(nul_refusal("variables".into()));
    }
    for (name, value) in variables.iter() {
        check_variable(name, value, limits)?;
    }
    Ok(())
}

/// A step on the way to a value inside a variable.
#[derive(Clone, Copy)]
enum Step<'a> {
    Variable(&'a str),
    Index(usize),
    Key(&'a str),
}

/// `$input[3].shapValues`: written only for an error, since a batch's
/// variables hold tens of thousands of values.
fn path_of<'a>(steps: impl Iterator<Item = Step<'a>>) -> String {
    use std::fmt::Write;
    let mut path = String::new();
    for step in steps {
        match step {
            Step::Variable(name) => {
                path.push('$');
                path.push_str(name);
            }
            Step::Index(index) => {
                let _ = write!(path, "[{index}]");
            }
            Step::Key(key) => {
                path.push('.');
                path.push_str(key);
            }
        }
    }
    path
}

/// [`check_variables`] for one variable: depth first, the containers being
/// visited on a stack (each with the next child to visit), so that the
/// stack is also the path to the current value.
fn check_variable(name: &str, value: &Value, limits: &QueryLimits) -> Result<(), ServerError> {
    let mut stack: Vec<(&Value, Step<'_>, usize)> = Vec::new();
    let mut current = Some((value, Step::Variable(name)));
    loop {
        if let Some((value, step)) = current.take() {
            let path = |stack: &[(&Value, Step<'_>, usize)]| {
                path_of(stack.iter().map(|(_, step, _)| *step).chain([step]))
            };
            match value {
                Value::String(s) if s.contains('\0') => return Err(nul_refusal(path(&stack))),
                Value::List(_) | Value::Object(_) => {
                    if stack.len() + 1 > limits.max_value_depth {
                        return Err(value_too_deep(limits, Some(path(&stack))));
                    }
                    if let Value::Object(fields) = value {
                        if fields.keys().any(|key| key.contains('\0')) {
                            return Err(nul_refusal(path(&stack)));
                        }
                    }
                    stack.push((value, step, 0));
                }
                _ => {}
            }
        }
        let Some((container, _, next)) = stack.last_mut() else {
            return Ok(());
        };
        let child = match container {
            Value::List(items) => items.get(*next).map(|item| (item, Step::Index(*next))),
            Value::Object(fields) => fields
                .get_index(*next)
                .map(|(key, item)| (item, Step::Key(key.as_str()))),
            _ => None,
        };
        match child {
            Some(child) => {
                *next += 1;
                current = Some(child);
            }
            None => {
                stack.pop();
            }
        }
    }
}

/// Refuses string literals (arguments, directive arguments, variable
/// defaults) holding NUL. Nesting is bounded by [`scan`] by now.
fn check_literals(document: &ExecutableDocument) -> Result<(), ServerError> {
    fn value(v: &Value, path: &str) -> Result<(), ServerError> {
        match v {
            Value::String(s) if s.contains('\0') => Err(nul_refusal(path.to_owned())),
            Value::List(items) => items.iter().try_for_each(|item| value(item, path)),
            Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
                if key.contains('\0') {
                    return Err(nul_refusal(path.to_owned()));
                }
                value(item, path)
            }),
            _ => Ok(()),
        }
    }
    // Arguments may hold variables (checked with the variables); a literal
    // is what remains with each variable as null.
    macro_rules! literal {
        ($v:expr, $path:expr) => {
            value(
                &$v.clone()
                    .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null))
                    .unwrap_or_default(),
                &$path,
            )
        };
    }
    fn directives(
        list: &[async_graphql::Positioned<async_graphql::parser::types::Directive>],
    ) -> Result<(), ServerError> {
        for directive in list {
            for (name, v) in &directive.node.arguments {
                literal!(
                    v.node,
                    format!("@{}({})", directive.node.name.node, name.node)
                )?;
            }
        }
        Ok(())
    }
    fn selections(set: &SelectionSet) -> Result<(), ServerError> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    for (name, v) in &field.node.arguments {
                        literal!(v.node, format!("{}({})", field.node.name.node, name.node))?;
                    }
                    directives(&field.node.directives)?;
                    selections(&field.node.selection_set.node)?;
                }
                Selection::FragmentSpread(spread) => directives(&spread.node.directives)?,
                Selection::InlineFragment(inline) => {
                    directives(&inline.node.directives)?;
                    selections(&inline.node.selection_set.node)?;
                }
            }
        }
        Ok(())
    }
    for (_, operation) in document.operations.iter() {
        for variable in &operation.node.variable_definitions {
            directives(&variable.node.directives)?;
            if let Some(default) = &variable.node.default_value {
                value(&default.node, &format!("${}", variable.node.name.node))?;
            }
        }
        directives(&operation.node.directives)?;
        selections(&operation.node.selection_set.node)?;
    }
    for fragment in document.fragments.values() {
        directives(&fragment.node.directives)?;
        selections(&fragment.node.selection_set.node)?;
    }
    Ok(())
}

/// The operation a request runs: the only one, or the one named.
pub(super) fn selected<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a async_graphql::Positioned<OperationDefinition>> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The type of the operation a request runs (query, mutation or
/// subscription), when the document determines it.
pub fn operation_type(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<OperationType> {
    selected(document, operation_name).map(|operation| operation.node.ty)
}

/// Refuses a request that gives no value (or null) for a variable of a
/// non-null type without a default: a request error, as the specification's
/// variable coercion has it (async-graphql would only notice while
/// resolving the field, as an error without a code).
fn check_required_variables(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: Option<&Variables>,
) -> Result<(), ServerError> {
    // No such operation, or an ambiguous choice: the executor refuses it.
    let Some(operation) = selected(document, operation_name) else {
        return Ok(());
    };
    for definition in &operation.node.variable_definitions {
        let definition = &definition.node;
        if definition.var_type.node.nullable || definition.default_value.is_some() {
            continue;
        }
        let name = definition.name.node.as_str();
        let given = variables.and_then(|v| v.get(name));
        if given.is_none_or(|value| matches!(value, Value::Null)) {
            let mut error = ServerError::new(
                format!(
                    "variable `${name}` of type `{}` needs a non-null value",
                    definition.var_type.node
                ),
                Some(definition.name.pos),
            );
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", code::GRAPHQL_VALIDATION_FAILED);
            extensions.set("field", format!("${name}"));
            error.extensions = Some(extensions);
            return Err(error);
        }
    }
    Ok(())
}

/// What a parsed document holds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    /// Aliased fields, each fragment counted at every spread (the largest
    /// operation's count).
    aliases: usize,
    /// Directives anywhere in the document, as written.
    directives: usize,
    /// Fields on the root type of the largest operation, fragments expanded.
    root_fields: usize,
    introspective: bool,
}

fn count(document: &ExecutableDocument) -> Counts {
    let mut counts = Counts::default();
    let mut aliases = Expansion::new(document);
    for (_, operation) in document.operations.iter() {
        let set = &operation.node.selection_set.node;
        counts.aliases = counts.aliases.max(aliases.aliases(set));
        let mut roots = RootFields::new(document);
        roots.visit(set);
        counts.root_fields = counts.root_fields.max(roots.count);
        counts.introspective |= roots.introspective;
        counts.directives = counts.directives.saturating_add(
            operation.node.directives.len()
                + operation
                    .node
                    .variable_definitions
                    .iter()
                    .map(|v| v.node.directives.len())
                    .sum::<usize>(),
        );
        counts.directives = counts.directives.saturating_add(directives_in(set));
    }
    for fragment in document.fragments.values() {
        counts.directives = counts.directives.saturating_add(
            fragment.node.directives.len() + directives_in(&fragment.node.selection_set.node),
        );
    }
    // A document without operations is the parser's to refuse.
    if matches!(&document.operations, DocumentOperations::Multiple(ops) if ops.is_empty()) {
        counts.root_fields = 0;
    }
    counts
}

fn directives_in(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => {
                field.node.directives.len() + directives_in(&field.node.selection_set.node)
            }
            Selection::FragmentSpread(spread) => spread.node.directives.len(),
            Selection::InlineFragment(inline) => {
                inline.node.directives.len() + directives_in(&inline.node.selection_set.node)
            }
        })
        .fold(0, usize::saturating_add)
}

/// Aliases with fragments expanded where spread, memoised per fragment so a
/// chain of fragments spreading each other twice costs linear time (the
/// count itself saturates). A cycle counts nothing; validation refuses it.
struct Expansion<'a> {
    document: &'a ExecutableDocument,
    memo: HashMap<&'a Name, usize>,
    visiting: HashSet<&'a Name>,
}

impl<'a> Expansion<'a> {
    fn new(document: &'a ExecutableDocument) -> Self {
        Self {
            document,
            memo: HashMap::new(),
            visiting: HashSet::new(),
        }
    }

    fn aliases(&mut self, set: &'a SelectionSet) -> usize {
        let mut total = 0usize;
        for selection in &set.items {
            let here = match &selection.node {
                Selection::Field(field) => usize::from(field.node.alias.is_some())
                    .saturating_add(self.aliases(&field.node.selection_set.node)),
                Selection::InlineFragment(inline) => self.aliases(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            total = total.saturating_add(here);
        }
        total
    }

    fn fragment(&mut self, name: &'a Name) -> usize {
        if let Some(count) = self.memo.get(name) {
            return *count;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        if !self.visiting.insert(name) {
            return 0;
        }
        let count = self.aliases(&fragment.node.selection_set.node);
        self.visiting.remove(name);
        self.memo.insert(name, count);
        count
    }
}

/// The fields an operation selects on its root type (through fragments),
/// and whether any of them is an introspection root.
struct RootFields<'a> {
    document: &'a ExecutableDocument,
    visited: HashSet<&'a Name>,
    count: usize,
    introspective: bool,
}

impl<'a> RootFields<'a> {
    fn new(document: &'a ExecutableDocument) -> Self {
        Self {
            document,
            visited: HashSet::new(),
            count: 0,
            introspective: false,
        }
    }

    fn visit(&mut self, set: &'a SelectionSet) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        self.introspective = true;
                    }
                    self.count = self.count.saturating_add(1);
                }
                Selection::InlineFragment(inline) => self.visit(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    // A fragment spread twice at the root selects the same
                    // fields (they merge); count it once.
                    if self.visited.insert(name) {
                        if let Some(fragment) = self.document.fragments.get(name) {
                            self.visit(&fragment.node.selection_set.node);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits::default()
    }

    fn code_of(error: &ServerError) -> String {
        match error.extensions.as_ref().and_then(|e| e.get("code")) {
            Some(Value::String(code)) => code.clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn counts_tokens_and_nesting_without_recursing() {
        let shape = scan(
            "query Q($a: [[Int!]] = [[1]]) { me(x: {a: [1, 2]}) { tenant } } # { [ (",
            &limits(),
        )
        .unwrap();
        assert_eq!(shape.selection_depth, 2);
        // `{a: [1, 2]}` inside the arguments: an object holding a list.
        assert_eq!(shape.value_depth, 2);
        let strings = scan(r#"{ a(s: "{[(", b: """ { \""" [ """) }"#, &limits()).unwrap();
        assert_eq!(strings.selection_depth, 1);
        assert_eq!(strings.value_depth, 0);
        assert_eq!(strings.tokens, 11);
    }

    #[test]
    fn deep_literals_are_refused_before_parsing() {
        let deep = format!(
            "{{ me(x: {}1{}) {{ tenant }} }}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let error = admit(&deep, None, None, &limits()).err().unwrap();
        assert_eq!(code_of(&error), code::VALUE_TOO_DEEP);
        let objects = format!(
            "{{ me(x: {}1{}) {{ tenant }} }}",
            "{a: ".repeat(50_000),
            "}".repeat(50_000)
        );
        assert_eq!(
            code_of(&admit(&objects, None, None, &limits()).err().unwrap()),
            code::VALUE_TOO_DEEP
        );
        let default = format!(
            "query($x: JSON = {}1{}) {{ me {{ tenant }} }}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(
            code_of(&admit(&default, None, None, &limits()).err().unwrap()),
            code::VALUE_TOO_DEEP
        );
        let types = format!(
            "query($x: {}Int{}) {{ me {{ tenant }} }}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(
            code_of(&admit(&types, None, None, &limits()).err().unwrap()),
            code::VALUE_TOO_DEEP
        );
        let selections = format!("{}{}", "{ a ".repeat(10_000), "}".repeat(10_000));
        assert_eq!(
            code_of(&admit(&selections, None, None, &limits()).err().unwrap()),
            code::QUERY_TOO_DEEP
        );
        // Within the limit, nesting parses.
        let fine = format!(
            "{{ me(x: {}1{}) {{ tenant }} }}",
            "[".repeat(32),
            "]".repeat(32)
        );
        assert!(admit(&fine, None, None, &limits()).is_ok());
    }

    #[test]
    fn tokens_are_capped() {
        let many = format!("{{ {} }}", "a ".repeat(20_000));
        let error = admit(&many, None, None, &limits()).err().unwrap();
        assert_eq!(code_of(&error), code::TOO_MANY_TOKENS);
    }

    #[test]
    fn aliases_are_counted_through_fragments() {
        let doc = "{ ...A ...A b: me { tenant } } fragment A on Query { x: me { tenant } y: me { tenant } }";
        let parsed = async_graphql::parser::parse_query(doc).unwrap();
        let counts = count(&parsed);
        assert_eq!(counts.aliases, 5);
        assert_eq!(counts.root_fields, 3);
        // A chain of fragments each spreading the next twice: 2^40 aliases,
        // counted in linear time.
        let mut chain = String::from("{ ...F0 }");
        for i in 0..40 {
            chain.push_str(&format!(
                " fragment F{i} on Query {{ ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        chain.push_str(" fragment F40 on Query { a: me { tenant } }");
        let parsed = async_graphql::parser::parse_query(&chain).unwrap();
        assert_eq!(count(&parsed).aliases, 1usize << 40);
        let cyclic = async_graphql::parser::parse_query(
            "{ ...A } fragment A on Query { a: me { tenant } ...A }",
        )
        .unwrap();
        assert_eq!(count(&cyclic).aliases, 1);
    }

    #[test]
    fn strings_with_nul_are_refused() {
        let error = admit(
            "{ model(modelId: \"a\\u0000b\") { modelId } }",
            None,
            None,
            &limits(),
        )
        .err()
        .unwrap();
        assert_eq!(code_of(&error), code::BAD_USER_INPUT);
        let variables = vars(r#"{"f": {"ids": ["ok", "a\u0000"]}}"#);
        let error = admit("{ me { tenant } }", None, Some(&variables), &limits())
            .err()
            .unwrap();
        assert_eq!(code_of(&error), code::BAD_USER_INPUT);
        assert!(error.message.contains("$f.ids[1]"), "{}", error.message);
        let key = vars(r#"{"a": 1, "f": [{"ok": 1}, {"b\u0000": 2}]}"#);
        let error = admit("{ me { tenant } }", None, Some(&key), &limits())
            .err()
            .unwrap();
        assert!(error.message.contains("`$f[1]`"), "{}", error.message);
    }

    fn vars(json: &str) -> Variables {
        Variables::from_json(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn deep_variables_are_refused_with_their_path() {
        let max = limits().max_value_depth;
        let fine = format!(
            r#"{{"v": [1, {}2{}]}}"#,
            "[".repeat(max - 1),
            "]".repeat(max - 1)
        );
        assert!(admit("{ me { tenant } }", None, Some(&vars(&fine)), &limits()).is_ok());
        let deep = format!(r#"{{"v": [1, {}2{}]}}"#, "[".repeat(max), "]".repeat(max));
        let error = admit("{ me { tenant } }", None, Some(&vars(&deep)), &limits())
            .err()
            .unwrap();
        assert_eq!(code_of(&error), code::VALUE_TOO_DEEP);
        let field = error.extensions.as_ref().unwrap().get("field").cloned();
        let expected = format!("$v[1]{}", "[0]".repeat(max - 1));
        assert_eq!(field, Some(Value::String(expected)));
    }

    #[test]
    fn required_variables_must_be_given() {
        let query = "query Q($id: String!, $opt: String, $def: Int! = 1) { model(modelId: $id) { modelId } }";
        let error = admit(query, None, None, &limits()).err().unwrap();
        assert_eq!(code_of(&error), code::GRAPHQL_VALIDATION_FAILED);
        assert!(error.message.contains("$id"), "{}", error.message);
        let null = vars(r#"{"id": null}"#);
        assert!(admit(query, None, Some(&null), &limits()).is_err());
        let given = vars(r#"{"id": "m"}"#);
        assert!(admit(query, Some("Q"), Some(&given), &limits()).is_ok());
    }

    #[test]
    fn introspection_is_noticed_through_fragments() {
        let parsed = async_graphql::parser::parse_query(
            "{ ...I } fragment I on Query { __schema { queryType { name } } }",
        )
        .unwrap();
        assert!(count(&parsed).introspective);
        let parsed = async_graphql::parser::parse_query("{ me { __typename } }").unwrap();
        assert!(!count(&parsed).introspective);
    }
}
