//! The server crate's architecture, checked from its source: imports flow
//! one way through declared layers (so the module graph has no cycle), and
//! the operator's unscoped access is used only by the operator's paths.
//!
//! A module's dependencies are the top-level modules it names as
//! `crate::<module>` (in `use` lines, groups `use crate::{a, b::c}` and paths
//! in code). Comments are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The server crate's top-level modules, lowest layer first. A module may
/// depend only on modules of lower layers.
const LAYERS: &[&[&str]] = &[
    // Vocabulary and utilities: depend on nothing in the crate.
    &["identity", "domain", "keyed", "telemetry"],
    // The pool and the tenant-scoped handle.
    &["db"],
    // The error every layer above answers with.
    &["error"],
    // Reads.
    &["store"],
    // Credentials → principals; alert and job feeds.
    &["auth", "events"],
    // Writes, capability-typed.
    &["write"],
    // The schema; the operator's paths (demo data, keys, cleanup, verify).
    &["graphql", "ops"],
    // HTTP and WebSocket.
    &["transport"],
    // Command-line flags and per-component settings.
    &["config"],
    // The composition root.
    &["app"],
    // The command line's entry point.
    &["cli"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("server/src")
}

/// Every `.rs` file under `dir`, with its path relative to `server/src`.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((relative, text));
        }
    }
}

/// `text` without `//` comments (doc comments included).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal is rare enough in this crate to
            // cut the line there; a missed reference would show as a
            // missing edge, never a false cycle.
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to (`lib` and `main` belong to none).
fn module_of(relative: &str) -> Option<String> {
    let first = relative.split('/').next().unwrap().trim_end_matches(".rs");
    (first != "lib" && first != "main").then(|| first.to_owned())
}

fn identifier_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules `code` names through `crate::`.
fn references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        // `server::crate::` cannot occur; skip `$crate::` in macros.
        if code[..at].ends_with('$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first segment of each item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(identifier_at(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(identifier_at(rest));
        }
    }
    found
}

/// Module → the modules it depends on.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(path, _)| module_of(path))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let Some(module) = module_of(path) else {
            continue;
        };
        let entry = graph.entry(module.clone()).or_default();
        for target in references(&code(text)) {
            // Crate-root re-exports (`crate::Application`) belong to their module.
            let target = if target == "Application" {
                "app".to_owned()
            } else {
                target
            };
            if target != module && modules.contains(&target) {
                entry.insert(target);
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn the_parser_finds_grouped_and_inline_references() {
    let found = references(&code(
        "use crate::{db::Scoped, store::{self, Page}, error};\nlet x = crate::write::thing(); // crate::app",
    ));
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(names, ["db", "error", "store", "write"]);
}

#[test]
fn every_module_has_a_layer_and_imports_only_downwards() {
    let graph = graph();
    assert!(
        graph.len() >= 10,
        "the crate's modules were not found: {graph:?}"
    );
    let mut problems = Vec::new();
    for (module, targets) in &graph {
        let Some(own) = layer_of(module) else {
            problems.push(format!("`{module}` is in no layer: add it to LAYERS"));
            continue;
        };
        for target in targets {
            match layer_of(target) {
                Some(layer) if layer < own => {}
                _ => problems.push(format!(
                    "`{module}` imports `{target}`, which is not below it"
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    // Implied by the layers; checked on its own so a cycle is named even if
    // the layers are edited carelessly.
    let graph = graph();
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            let mut cycle: Vec<String> = path[at..].iter().map(|m| m.to_string()).collect();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for target in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(target, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

/// Files (relative to `server/src`) whose code contains `needle`.
fn users_of(needle: &str) -> BTreeSet<String> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    files
        .into_iter()
        .filter(|(_, text)| code(text).contains(needle))
        .map(|(path, _)| path)
        .collect()
}

fn assert_only_in(needle: &str, allowed: &[&str]) {
    let users = users_of(needle);
    let strays: Vec<&String> = users
        .iter()
        .filter(|path| !allowed.iter().any(|prefix| path.starts_with(prefix)))
        .collect();
    assert!(
        strays.is_empty(),
        "`{needle}` is used outside {allowed:?}: {strays:?}"
    );
}

#[test]
fn only_auth_makes_principals_from_credentials() {
    assert_only_in("Principal::authenticated(", &["auth/"]);
    // The operator's principal: made where the operator's transaction opens.
    assert_only_in("Principal::cli(", &["db/"]);
}

#[test]
fn operator_access_is_used_only_by_the_operators_paths() {
    assert_only_in(".begin_as_operator(", &["ops/"]);
    // Unscoped SQL: the operator's paths, and the pool's own LISTEN.
    assert_only_in(".unscoped()", &["ops/", "db/", "events/listener.rs"]);
}
