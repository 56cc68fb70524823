//! The server crate's architecture, checked from its source: imports flow
//! one way through declared layers (so the module graph has no cycle), and
//! the operator's unscoped access is used only by the operator's paths.
//!
//! A module's dependencies are the top-level modules it names: as
//! `crate::<module>` or `$crate::<module>` (in `use` lines, groups
//! `use crate::{a, b::c}` and paths in code), through `super::` paths that
//! climb to the crate root, and through the root's re-exports (`crate::Config`
//! is `config`'s). Comments are ignored; string literals are not mistaken for
//! comments.

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
    // The schema; the operator's paths (demo data, keys, cleanup, verify);
    // drift monitors evaluated by the gateway.
    &["graphql", "ops", "monitors"],
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

/// `text` without `//` comments (doc comments included). A `//` inside a
/// string literal (`"http://…"`) is not a comment.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut previous = '\0';
        let mut end = line.len();
        for (at, c) in line.char_indices() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
            } else if c == '"' && previous != '\'' {
                in_string = true;
            } else if c == '/' && previous == '/' {
                end = at - 1;
                break;
            }
            previous = c;
        }
        out.push_str(&line[..end]);
        out.push('\n');
    }
    out
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

/// The first segment of each item of a group `{a, b::{c, d}, e}` (the
/// text after its `{`).
fn group_items(group: &str, found: &mut BTreeSet<String>) {
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
}

/// The top-level modules `code` names from the crate root: through
/// `crate::`/`$crate::`, and through `super::` paths that climb to the root
/// from `depth` (1 for `config.rs` or `store/mod.rs`, 2 for
/// `store/page/mod.rs`, …).
fn references(code: &str, depth: usize) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let from_root = |rest: &str, found: &mut BTreeSet<String>| {
        if let Some(group) = rest.strip_prefix('{') {
            group_items(group, found);
        } else {
            found.insert(identifier_at(rest));
        }
    };
    for (at, _) in code.match_indices("crate::") {
        from_root(&code[at + "crate::".len()..], &mut found);
    }
    for (at, _) in code.match_indices("super::") {
        // Only the start of a chain `super::super::…`.
        if code[..at].ends_with("::") {
            continue;
        }
        let mut rest = &code[at..];
        let mut climbs = 0;
        while let Some(next) = rest.strip_prefix("super::") {
            rest = next;
            climbs += 1;
        }
        if climbs >= depth {
            from_root(rest, &mut found);
        }
    }
    found
}

/// How deep a file's module sits below the crate root: `config.rs` and
/// `store/mod.rs` are 1, `store/filter.rs` and `store/page/mod.rs` 2, …
fn depth_of(relative: &str) -> usize {
    let parts: Vec<&str> = relative.split('/').collect();
    let last = *parts.last().unwrap();
    if last == "mod.rs" {
        parts.len() - 1
    } else {
        parts.len()
    }
}

/// The crate root's re-exports: name → the module it comes from
/// (`pub use config::{Cli, Config};`).
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in code(lib).lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        let mut items = BTreeSet::new();
        match rest.strip_prefix('{') {
            Some(group) => group_items(group, &mut items),
            None => {
                items.insert(
                    rest.trim_end_matches(';')
                        .rsplit("::")
                        .next()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        for item in items {
            names.insert(item, module.to_owned());
        }
    }
    names
}

/// Module → the modules it depends on.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(path, _)| module_of(path))
        .collect();
    let lib = files
        .iter()
        .find(|(path, _)| path == "lib.rs")
        .map(|(_, text)| text.clone())
        .unwrap_or_default();
    let reexports = root_reexports(&lib);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let Some(module) = module_of(path) else {
            continue;
        };
        let entry = graph.entry(module.clone()).or_default();
        for target in references(&code(text), depth_of(path)) {
            let target = reexports.get(&target).cloned().unwrap_or(target);
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
fn the_parser_finds_every_way_of_naming_a_module() {
    let names = |text: &str, depth: usize| -> Vec<String> {
        references(&code(text), depth).into_iter().collect()
    };
    assert_eq!(
        names("use crate::{db::Scoped, store::{self, Page}, error};\nlet x = crate::write::thing(); // crate::app", 1),
        ["db", "error", "store", "write"]
    );
    // `super::` that reaches the root, from a top-level file and from below.
    assert_eq!(names("use super::app::Application;", 1), ["app"]);
    assert_eq!(
        names("use super::super::config::Config;\nuse super::sibling;", 2),
        ["config"]
    );
    // Macros name modules with `$crate::`.
    assert_eq!(names("$crate::write::insert_many(txn, rows)", 1), ["write"]);
    // A `//` in a string is not a comment.
    assert_eq!(
        names("let url = \"http://x\"; crate::ops::demo::seed();", 1),
        ["ops"]
    );
    let reexports = root_reexports("pub use config::{Cli, Config};\npub use graphql::sdl;");
    assert_eq!(reexports.get("Config").map(String::as_str), Some("config"));
    assert_eq!(reexports.get("sdl").map(String::as_str), Some("graphql"));
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
    // A monitor's evaluator: its tenant is the due monitor row's own.
    assert_only_in("Principal::monitor(", &["monitors/"]);
}

#[test]
fn operator_access_is_used_only_by_the_operators_paths() {
    // Method calls and `Database::…(&db)` alike; the definitions are in db/.
    assert_only_in("begin_as_operator(", &["ops/", "db/"]);
    // Unscoped SQL: the operator's paths, and the pool's own LISTEN.
    assert_only_in("unscoped(", &["ops/", "db/", "events/listener.rs"]);
}
