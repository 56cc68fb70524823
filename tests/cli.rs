//! The command line: demo data, keys, cleanup — run as the real binary.

mod common;

use std::process::{Command, Output};

use common::{count, TestDb, TestServer};

fn mlgate(test_db: &TestDb, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mlgate"))
        .args(args)
        .env("DATABASE_URL", &test_db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("mlgate runs");
    assert!(
        output.status.success(),
        "mlgate {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `tenant role key` lines of the demo output.
fn demo_keys(stdout: &str) -> Vec<(String, String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            (parts.len() == 3 && parts[2].starts_with("mlg_")).then(|| {
                (
                    parts[0].to_owned(),
                    parts[1].to_owned(),
                    parts[2].to_owned(),
                )
            })
        })
        .collect()
}

/// The id of the key whose secret is `secret` (by its listed prefix).
async fn key_id(test_db: &TestDb, secret: &str) -> String {
    let listed = mlgate(test_db, &["keys", "list", "--tenant", "acme-cloud"]);
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find(|line| {
            !line.contains("revoked")
                && line
                    .split_whitespace()
                    .nth(2)
                    .is_some_and(|prefix| secret.starts_with(prefix.trim_end_matches('…')))
        })
        .and_then(|line| line.split_whitespace().next())
        .expect("the key is listed")
        .to_owned()
}

backend_tests! {
    async fn demo_seeds_two_tenants_and_prints_working_keys(test_db: TestDb) {
        let output = mlgate(&test_db, &["demo", "--predictions", "120"]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(stdout.contains("tenant acme-cloud: 4 models, 5 training jobs, 120 predictions"), "{stdout}");
        assert!(stdout.contains("tenant globex-ops: 4 models"), "{stdout}");
        let keys = demo_keys(&stdout);
        assert_eq!(keys.len(), 8, "{stdout}");

        let raw = test_db.raw().await;
        assert_eq!(count(&raw, "SELECT COUNT(*) FROM ml_predictions").await, 240);
        for table in ["ml_models", "ml_feedback", "ml_drift_metrics", "ml_training_jobs", "ml_feature_store", "ml_configurations"] {
            let n = count(&raw, &format!("SELECT COUNT(DISTINCT tenant_id) FROM {table}")).await;
            assert_eq!(n, 2, "{table} has rows for both tenants");
        }
        // Rich rows: SHAP values on every prediction, attention on the transformer's.
        assert_eq!(count(&raw, "SELECT COUNT(*) FROM ml_predictions WHERE shap_values IS NULL").await, 0);
        assert!(count(&raw, "SELECT COUNT(*) FROM ml_predictions WHERE attention_weights IS NOT NULL").await > 0);
        let triggered = count(&raw, "SELECT COUNT(*) FROM ml_drift_metrics WHERE alert_triggered").await;
        assert!(triggered > 0);
        // Each triggered alert has its outbox event, numbered 1… per tenant.
        assert_eq!(count(&raw, "SELECT COUNT(*) FROM mlgate_alert_events").await, triggered);
        assert_eq!(
            count(&raw, "SELECT COUNT(*) FROM mlgate_alert_events e JOIN ml_drift_metrics m \
                         ON m.tenant_id = e.tenant_id AND m.metric_id = e.metric_id WHERE m.alert_triggered").await,
            triggered
        );
        assert_eq!(
            count(&raw, "SELECT CAST(SUM(last_seq) AS BIGINT) FROM mlgate_alert_sequences").await,
            triggered,
            "numbers start at 1 in each tenant and leave no gaps"
        );

        let server = TestServer::start(test_db.config()).await;
        for (tenant, role, key) in &keys {
            let (status, body) = server.graphql(key, "{ me { tenant role } }").await;
            assert_eq!(status, 200);
            assert_eq!(body["data"]["me"]["tenant"], tenant.as_str());
            assert_eq!(body["data"]["me"]["role"], role.to_uppercase());
        }
        // Running it again keeps the data and the keys (a signed-in
        // playground stays signed in).
        let again = mlgate(&test_db, &["demo", "--predictions", "120"]);
        let again = String::from_utf8_lossy(&again.stdout).into_owned();
        assert!(again.contains("tenant acme-cloud: demo data already present"), "{again}");
        assert!(again.contains("the keys kept in"), "{again}");
        assert_eq!(count(&raw, "SELECT COUNT(*) FROM ml_predictions").await, 240);
        assert_eq!(demo_keys(&again), keys, "the same keys");
        let (status, _) = server.graphql(&keys[0].2, "{ me { tenant } }").await;
        assert_eq!(status, 200);
        // --new-keys replaces them, revoking the old ones.
        let renewed = mlgate(&test_db, &["demo", "--new-keys"]);
        let renewed = demo_keys(&String::from_utf8_lossy(&renewed.stdout));
        assert_eq!(renewed.len(), 8);
        assert_ne!(renewed[0].2, keys[0].2);
        let (status, _) = server.graphql(&keys[0].2, "{ me { tenant } }").await;
        assert_eq!(status, 401, "the previous demo key is revoked");
        let (status, _) = server.graphql(&renewed[0].2, "{ me { tenant } }").await;
        assert_eq!(status, 200);
        // A key revoked behind its back is not shown again: fresh keys instead.
        mlgate(&test_db, &["keys", "revoke", &key_id(&test_db, &renewed[0].2).await]);
        let after_revoke = mlgate(&test_db, &["demo"]);
        let after_revoke = demo_keys(&String::from_utf8_lossy(&after_revoke.stdout));
        assert_ne!(after_revoke[0].2, renewed[0].2);
        let (status, _) = server.graphql(&after_revoke[0].2, "{ me { tenant } }").await;
        assert_eq!(status, 200);
        server.stop().await;
        if let Some(file) = server::ops::demo::key_file_for(&test_db.url) {
            let kept = std::fs::read_to_string(&file).unwrap();
            assert!(kept.contains(&after_revoke[0].2));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "only the operator reads the key file");
            }
            std::fs::remove_file(file).ok();
        }
    }

    async fn cleanup_deletes_only_the_named_tenant(test_db: TestDb) {
        mlgate(&test_db, &["demo", "--predictions", "50"]);
        if let Some(file) = server::ops::demo::key_file_for(&test_db.url) {
            std::fs::remove_file(file).ok();
        }
        let output = mlgate(&test_db, &["cleanup", "--tenant", "acme-cloud", "--yes"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("ml_predictions: 50 rows deleted"), "{stdout}");
        let raw = test_db.raw().await;
        for table in ["ml_models", "ml_predictions", "ml_feedback", "ml_drift_metrics", "ml_training_jobs", "ml_feature_store", "ml_configurations", "mlgate_api_keys", "mlgate_alert_events", "mlgate_alert_sequences"] {
            assert_eq!(count(&raw, &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = 'acme-cloud'")).await, 0, "{table}");
            assert!(count(&raw, &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = 'globex-ops'")).await > 0, "{table}");
        }
        // Without --yes and without a terminal, nothing is deleted.
        let refused = Command::new(env!("CARGO_BIN_EXE_mlgate"))
            .args(["cleanup", "--tenant", "globex-ops"])
            .env("DATABASE_URL", &test_db.url)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!refused.status.success());
        assert!(count(&raw, "SELECT COUNT(*) FROM ml_predictions WHERE tenant_id = 'globex-ops'").await > 0);
    }

    async fn keys_are_created_listed_and_revoked(test_db: TestDb) {
        // A tenant with nothing yet is likely a typo: asked, refused without a terminal.
        let refused = Command::new(env!("CARGO_BIN_EXE_mlgate"))
            .args(["keys", "create", "--tenant", "acme", "--role", "service"])
            .env("DATABASE_URL", &test_db.url)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("has no models and no keys yet") && said.contains("pass --yes"), "{said}");
        assert!(String::from_utf8_lossy(&mlgate(&test_db, &["keys", "list", "--tenant", "acme"]).stdout).is_empty());
        let created = mlgate(&test_db, &["keys", "create", "--tenant", "acme", "--role", "service", "--name", "ingest", "--yes"]);
        let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
        let field = |name: &str| stdout.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_owned();
        let (id, key) = (field("id:"), field("key:"));
        let server = TestServer::start(test_db.config()).await;
        let (status, body) = server.graphql(&key, "{ me { tenant role } }").await;
        assert_eq!((status, body["data"]["me"]["role"].as_str()), (200, Some("SERVICE")));
        let listed = mlgate(&test_db, &["keys", "list", "--tenant", "acme"]);
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        assert!(listed.contains(&id) && listed.contains("ingest") && !listed.contains(&key), "{listed}");
        mlgate(&test_db, &["keys", "revoke", &id]);
        let (status, _) = server.graphql(&key, "{ me { tenant } }").await;
        assert_eq!(status, 401);
        server.stop().await;
    }

    async fn drift_thresholds_are_shown_and_set_band_by_band(test_db: TestDb) {
        let shown = mlgate(&test_db, &["drift-thresholds", "--tenant", "acme"]);
        let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
        assert!(shown.contains("hellinger       warning 0.1 critical 0.2") && shown.contains("(defaults"), "{shown}");
        let set = mlgate(&test_db, &["drift-thresholds", "--tenant", "acme", "--set", "--hellinger-warning", "0.3", "--hellinger-critical", "0.6"]);
        let set = String::from_utf8_lossy(&set.stdout).into_owned();
        assert!(set.contains("hellinger       warning 0.3 critical 0.6"), "{set}");
        assert!(set.contains("psi             warning 0.1 critical 0.25") && set.contains("set at"), "{set}");
        // A band needs both ends; an inverted band is refused and nothing changes.
        for args in [
            &["drift-thresholds", "--tenant", "acme", "--set", "--ks-warning", "0.3"][..],
            &["drift-thresholds", "--tenant", "acme", "--set", "--ks-warning", "0.3", "--ks-critical", "0.2"][..],
        ] {
            let refused = Command::new(env!("CARGO_BIN_EXE_mlgate")).args(args).env("DATABASE_URL", &test_db.url).output().unwrap();
            assert!(!refused.status.success(), "{args:?}");
        }
        let shown = mlgate(&test_db, &["drift-thresholds", "--tenant", "acme"]);
        let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
        assert!(shown.contains("ks              warning 0.1 critical 0.2"), "{shown}");
        assert!(shown.contains("hellinger       warning 0.3 critical 0.6"), "{shown}");
        let other = mlgate(&test_db, &["drift-thresholds", "--tenant", "other"]);
        assert!(String::from_utf8_lossy(&other.stdout).contains("hellinger       warning 0.1 critical 0.2"));
    }

    async fn mlgate_alone_serves_with_its_environment_and_keeps_json_logs_json(test_db: TestDb) {
        // No subcommand: the MLGATE_* settings apply as for `serve`.
        let gateway = common::Gateway::launch(
            &test_db.url,
            &["--log-format", "json"],
            "",
            &[("MLGATE_BIND", ":0"), ("MLGATE_PLAYGROUND", "false"), ("MLGATE_MAX_TOKENS", "50")],
        )
        .await;
        let ready = gateway.logs.lock().unwrap().clone();
        assert!(ready.contains("\"address\":\"0.0.0.0:"), "`:0` binds every interface: {ready}");
        let client = reqwest::Client::new();
        let playground = client.get(format!("{}/", gateway.base)).send().await.unwrap();
        assert_eq!(playground.status(), 404, "MLGATE_PLAYGROUND=false applies");
        let long = format!("{{ {} }}", "me { tenant } ".repeat(20));
        let answer = gateway.post(None, &long, serde_json::json!({})).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], "TOO_MANY_TOKENS", "MLGATE_MAX_TOKENS applies: {answer}");
        // Every line on standard output is JSON, the "listening" line included, and no colour escapes.
        let logs = gateway.logs.lock().unwrap().clone();
        for line in logs.lines().filter(|l| !l.trim().is_empty()) {
            assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "not JSON: {line}");
            assert!(!line.contains('\u{1b}'), "colour escape: {line}");
        }
    }

    async fn a_configuration_file_sets_what_flags_and_variables_do_not(test_db: TestDb) {
        let file = std::env::temp_dir().join(format!("mlgate-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(
            &file,
            "log-format = 'json'\nbind = '127.0.0.1:0'\nplayground = false\nmax-tokens = 50\nmetrics-bind = '127.0.0.1:0'\n",
        )
        .unwrap();
        // The variable beats the file: the playground is served after all.
        let gateway = common::Gateway::launch(
            &test_db.url,
            &["--config", file.to_str().unwrap()],
            "",
            &[("MLGATE_PLAYGROUND", "true")],
        )
        .await;
        let client = reqwest::Client::new();
        let playground = client.get(format!("{}/", gateway.base)).send().await.unwrap();
        assert_eq!(playground.status(), 200, "MLGATE_PLAYGROUND beats the file");
        let long = format!("{{ {} }}", "me { tenant } ".repeat(20));
        let answer = gateway.post(None, &long, serde_json::json!({})).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], "TOO_MANY_TOKENS", "max-tokens from the file: {answer}");
        let logs = gateway.logs.lock().unwrap().clone();
        assert!(logs.contains("\"metrics\":\"127.0.0.1:"), "metrics-bind from the file: {logs}");
        drop(gateway);

        // `mlgate config` says where each value came from.
        let shown = Command::new(env!("CARGO_BIN_EXE_mlgate"))
            .args(["--config", file.to_str().unwrap(), "config", "--max-aliases", "3"])
            .env("DATABASE_URL", &test_db.url)
            .env("MLGATE_PLAYGROUND", "true")
            .output()
            .unwrap();
        std::fs::remove_file(&file).ok();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.contains("max-tokens = 50  # file"), "{shown}");
        assert!(shown.contains("playground = true  # env MLGATE_PLAYGROUND"), "{shown}");
        assert!(shown.contains("max-aliases = 3  # flag"), "{shown}");
        assert!(shown.contains("database-url = ") && shown.contains("# env DATABASE_URL"), "{shown}");
    }

    async fn destructive_migrations_ask_first_and_migrate_up_says_what_it_did(test_db: TestDb) {
        let up = mlgate(&test_db, &["migrate", "up"]);
        assert!(String::from_utf8_lossy(&up.stdout).contains("nothing to apply"), "{}", String::from_utf8_lossy(&up.stdout));
        mlgate(&test_db, &["keys", "create", "--tenant", "acme", "--role", "viewer", "--yes"]);
        // Without --yes and without a terminal: refused, nothing dropped.
        for args in [&["migrate", "fresh"][..], &["migrate", "down", "--steps", "2"][..]] {
            let refused = Command::new(env!("CARGO_BIN_EXE_mlgate"))
                .args(args)
                .env("DATABASE_URL", &test_db.url)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert!(!refused.status.success(), "{args:?}");
            assert!(String::from_utf8_lossy(&refused.stderr).contains("pass --yes"), "{args:?}");
            let listed = mlgate(&test_db, &["keys", "list", "--tenant", "acme"]);
            assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 1, "the key survives {args:?}");
        }
        // With --yes: done, and said.
        let down = mlgate(&test_db, &["migrate", "down", "--steps", "1", "--yes"]);
        assert!(String::from_utf8_lossy(&down.stdout).starts_with("rolled back m"), "{}", String::from_utf8_lossy(&down.stdout));
        let up = mlgate(&test_db, &["migrate", "up"]);
        assert!(String::from_utf8_lossy(&up.stdout).starts_with("applied m"), "{}", String::from_utf8_lossy(&up.stdout));
        // Twice: a fresh schema can be made fresh again (on PostgreSQL the
        // migrations' functions are dropped with the tables).
        for _ in 0..2 {
            let fresh = mlgate(&test_db, &["migrate", "fresh", "--yes"]);
            assert!(String::from_utf8_lossy(&fresh.stdout).contains("dropped everything"));
            let listed = mlgate(&test_db, &["keys", "list", "--tenant", "acme"]);
            assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 0, "fresh dropped the key");
            let verified = mlgate(&test_db, &["verify-schema"]);
            assert!(verified.status.success());
        }
    }
}

#[test]
fn an_unmigrated_database_gets_a_hint() {
    let dir = std::env::temp_dir().join(format!("mlgate-unmigrated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("empty.db");
    let output = Command::new(env!("CARGO_BIN_EXE_mlgate"))
        .args(["keys", "list", "--tenant", "acme"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", file.display()),
        )
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("run `mlgate migrate up`"), "{stderr}");
}

#[test]
fn serve_flags_before_a_subcommand_are_refused_not_ignored() {
    let output = Command::new(env!("CARGO_BIN_EXE_mlgate"))
        .args(["--bind", ":9", "migrate", "status"])
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--bind is a setting of `serve`"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The README's reference table is the one the flags themselves give:
/// every setting, its variable, default and help. Regenerate with
/// `UPDATE_README=1 cargo test --test cli readme`.
#[test]
fn the_readme_reference_covers_every_setting() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- settings:begin -->\n", "<!-- settings:end -->");
    let start = readme.find(begin).expect("README has the settings markers") + begin.len();
    let stop = readme.find(end).expect("README has the settings markers");
    let expected = server::Cli::reference_table();
    if readme[start..stop] != expected {
        if std::env::var("UPDATE_README").is_ok() {
            let updated = format!("{}{expected}{}", &readme[..start], &readme[stop..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!(
                "the README's settings table differs from the flags; run UPDATE_README=1 cargo test --test cli readme\n\nexpected:\n{expected}"
            );
        }
    }
    for env in expected.lines().filter_map(|l| l.split('|').nth(2)) {
        assert!(
            !env.contains("MLGATE_") || env.trim().starts_with("`MLGATE_"),
            "{env}"
        );
    }
}
