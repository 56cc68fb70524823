//! The analysts' playground: every saved query in `playground/queries/`
//! runs against demo data without errors (so none rots when the schema
//! changes), the page is served as the built app, never instead of JSON,
//! and an end-to-end run in headless Chromium.

mod common;

use std::path::{Path, PathBuf};

use chrono::{Duration as Days, SecondsFormat, Utc};
use serde_json::{json, Value};
use server::auth::Role;
use server::config::DemoArgs;

use common::ws::{next, open, subscribe};
use common::{TestDb, TestServer};

/// A saved query: its title, its text and its default variables.
struct SavedQuery {
    file: String,
    title: String,
    text: String,
    variables: Value,
}

fn queries_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/queries")
}

/// The placeholders the playground fills in when it loads a query's
/// variables: `{{now}}`, `{{daysAgo:N}}`, `{{hoursAgo:N}}`.
fn fill_placeholders(variables: &str) -> String {
    let now = Utc::now();
    let mut out = variables.replace("{{now}}", &now.to_rfc3339_opts(SecondsFormat::Secs, true));
    for (unit, hours) in [("daysAgo", 24), ("hoursAgo", 1)] {
        while let Some(start) = out.find(&format!("{{{{{unit}:")) {
            let end = start + out[start..].find("}}").expect("closed placeholder") + 2;
            let n: i64 = out[start + unit.len() + 3..end - 2]
                .parse()
                .expect("a number");
            let at = now - Days::hours(n * hours);
            out.replace_range(start..end, &at.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
    }
    out
}

/// The saved queries, parsed as the playground parses them: the first
/// comment line is the title, then the description, then `# variables: {…}`.
fn saved_queries() -> Vec<SavedQuery> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(queries_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "graphql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let header: Vec<&str> = text
                .lines()
                .take_while(|l| l.starts_with('#'))
                .map(|l| l.trim_start_matches('#').trim())
                .collect();
            let variables = header
                .iter()
                .find_map(|l| l.strip_prefix("variables:"))
                .map(|json| {
                    serde_json::from_str(&fill_placeholders(json)).expect("variables are JSON")
                })
                .unwrap_or_else(|| json!({}));
            SavedQuery {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                title: header.first().copied().unwrap_or_default().to_owned(),
                text,
                variables,
            }
        })
        .collect()
}

/// A server over demo data (seeded as `serve --demo` seeds it), with a key
/// per role of `acme-cloud`.
async fn demo_server(test_db: &TestDb) -> (TestServer, String, String) {
    let db = test_db.connect().await;
    server::ops::demo::seed(
        &db,
        &DemoArgs::default(),
        None,
        &server::ops::demo::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    db.close().await.ok();
    let viewer = test_db.key("acme-cloud", Role::Viewer).await;
    let service = test_db.key("acme-cloud", Role::Service).await;
    (TestServer::start(test_db.config()).await, viewer, service)
}

backend_tests! {
    async fn every_saved_query_runs_against_demo_data(test_db: TestDb) {
        let queries = saved_queries();
        let titles: Vec<&str> = queries.iter().map(|q| q.title.as_str()).collect();
        assert!(queries.len() >= 7, "{titles:?}");
        let (server, viewer, service) = demo_server(&test_db).await;
        for query in &queries {
            assert!(!query.title.is_empty(), "{} has no title line", query.file);
            if query.text.contains("subscription ") {
                let cursor = server.data(&viewer, "{ driftAlertCursor }", json!({})).await;
                let mut variables = query.variables.clone();
                variables["since"] = cursor["driftAlertCursor"].clone();
                let mut socket = open(&server, &viewer).await;
                subscribe(&mut socket, "saved", &query.text, variables).await;
                server.data(&service, r#"mutation { recordDriftMetrics(input: [{metricId: "saved-query-check",
                    modelId: "ensemble-risk-03", driftType: DATA, driftScore: 0.4, psiScore: 0.4}]) { count } }"#, json!({})).await;
                let message = next(&mut socket).await.expect("open");
                assert_eq!(message["type"], "next", "{}: {message}", query.file);
                assert!(message["payload"].get("errors").is_none(), "{}: {message}", query.file);
                continue;
            }
            let (status, body) = server.graphql_with(&viewer, &query.text, query.variables.clone()).await;
            assert_eq!(status, 200, "{}: {body}", query.file);
            assert!(body.get("errors").is_none(), "{}: {body}", query.file);
            let data = body["data"].as_object().expect("data");
            assert!(
                data.values().all(|v| !v.is_null() && v != &json!([])),
                "{} answered nothing on demo data: {body}", query.file
            );
        }
        server.stop().await;
    }
}

#[test]
fn placeholders_are_filled_like_the_playground_fills_them() {
    let filled =
        fill_placeholders(r#"{"from": "{{daysAgo:7}}", "to": "{{now}}", "h": "{{hoursAgo:3}}"}"#);
    let value: Value = serde_json::from_str(&filled).unwrap();
    let at =
        |key: &str| chrono::DateTime::parse_from_rfc3339(value[key].as_str().unwrap()).unwrap();
    assert_eq!((at("to") - at("from")).num_hours(), 7 * 24);
    assert_eq!((at("to") - at("h")).num_hours(), 3);
}

/// The built app at `/` and its assets under `/playground/` (strict CSP,
/// hashed assets cached for good); `/graphql` answers a browser with JSON,
/// never the page; `--playground false` serves neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_the_built_app_and_never_replaces_json() {
    let test_db = TestDb::sqlite().await;
    let server = TestServer::start(test_db.config()).await;
    let page = server.client.get(server.url("/")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    if server::playground::is_built() {
        assert!(html.contains(r#"<div id="root">"#), "{html}");
        assert!(policy.contains("script-src 'self';"), "{policy}");
        let asset = html
            .split('"')
            .find(|s| s.starts_with("/playground/assets/") && s.ends_with(".js"))
            .expect("the page loads its script from this server");
        let script = server.client.get(server.url(asset)).send().await.unwrap();
        assert_eq!(script.status(), 200);
        assert!(script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert!(script.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let missing = server
            .client
            .get(server.url("/playground/assets/nope.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must build the playground: npm is needed when server/build.rs runs"
        );
        assert!(
            html.contains("mlgate playground"),
            "the fallback page: {html}"
        );
    }
    // What a browser sends when it opens /graphql: JSON comes back, not the page.
    let browser = server
        .client
        .get(server.url("/graphql"))
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    assert!(browser.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(!browser.text().await.unwrap().contains("<html"));
    server.stop().await;

    let mut config = test_db.config();
    config.serve.playground = false;
    let server = TestServer::start(config).await;
    for path in ["/", "/playground/assets/index.js"] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    server.stop().await;
}

/// Debian's Chromium, headless, driven through the playground against demo
/// data (tests/clients/playground-e2e.mjs) at 1366×768 and 1920×1080:
/// sign-in and a refused key; every saved query answered with its table in
/// query order and the chart its shape calls for; a list cell expanded; a
/// sorted table with a hidden column exported as exactly those CSV rows; a
/// share link reopened in a fresh context; a parse error shown cleanly; a
/// drift alert written meanwhile in the feed and the subscription's table;
/// dark mode in the results pane; no request leaving the server. Leaves its
/// screenshots in target/playground-e2e/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_works_in_headless_chromium() {
    let Some(clients) = common::node_clients("playwright-core") else {
        return;
    };
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        assert!(std::env::var("CI").is_err(), "CI must install chromium");
        eprintln!("skipping: {chromium} not found (apt-get install chromium)");
        return;
    }
    assert!(
        server::playground::is_built(),
        "the playground was not built into this binary (npm missing when server/build.rs ran?)"
    );
    let test_db = TestDb::sqlite().await;
    let (server, viewer, service) = demo_server(&test_db).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/playground-e2e");
    let _ = std::fs::remove_dir_all(&shots);
    let output = tokio::process::Command::new("node")
        .arg(clients.join("playground-e2e.mjs"))
        .args([server.base.as_str(), &viewer, &service])
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or_default();
    assert!(
        output.status.success() && summary["ok"] == true,
        "playground e2e failed: {stdout}"
    );
    assert_eq!(
        summary["foreign"],
        json!([]),
        "every request stays on the server"
    );
    assert_eq!(summary["consoleErrors"], json!([]));
    assert!(summary["websockets"].as_u64().unwrap() >= 2);
    // Every saved query but the subscription, each with its chart kind.
    let queries = summary["queries"].as_object().unwrap();
    assert_eq!(queries.len(), saved_queries().len() - 1, "{summary}");
    for (id, kind) in [
        ("shap-importance", "bar"),
        ("latency-percentiles", "band"),
        ("calibration", "reliability"),
        ("daily-volume-by-model", "timeseries"),
        ("drift-analysis", "distribution"),
        ("model-performance", "risk"),
        ("drift-summary", "timeseries"),
    ] {
        assert_eq!(queries[id]["chart"], kind, "{id}: {}", queries[id]);
    }
    let legend = queries["daily-volume-by-model"]["legend"].as_str().unwrap();
    for model in ["ensemble-risk-03", "lstm-risk-02", "transformer-risk-01"] {
        assert!(legend.contains(model), "{legend}");
    }
    // The table's rows when it was exported (the 24-hour window moves between
    // the two viewport passes, so not the query's count from the second one).
    assert_eq!(
        summary["csv"]["rows"], summary["csv"]["tableRows"],
        "{summary}"
    );
    assert!(summary["parseError"]
        .as_str()
        .unwrap()
        .contains("GRAPHQL_PARSE_FAILED"));
    assert!(
        summary["liveAlert"].as_str().unwrap().contains("CRITICAL"),
        "{summary}"
    );
    assert!(summary["subscriptionRows"].as_u64().unwrap() >= 1);
    for width in ["1366", "1920"] {
        let size = &summary["sizes"][width];
        let width: f64 = width.parse().unwrap();
        assert!(
            size["editorWidth"].as_f64().unwrap() > 0.55 * width,
            "{size}"
        );
    }
    let screenshots = summary["screenshots"].as_array().unwrap();
    assert!(screenshots.len() >= 15, "{summary}");
    for shot in screenshots {
        assert!(std::fs::metadata(shot.as_str().unwrap()).unwrap().len() > 10_000);
    }
    server.stop().await;
}
