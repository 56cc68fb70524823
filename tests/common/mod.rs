//! Test support: a fresh database per test on each backend, built by the real
//! migrations, and a real server on a free port.
//!
//! SQLite always runs. PostgreSQL runs when `TEST_DATABASE_URL` names a server
//! (each test gets its own database there); when `MLGATE_REQUIRE_POSTGRES=1`
//! a missing or unreachable server fails the test instead of skipping it.
#![allow(dead_code)]

pub mod fixtures;
pub mod ws;

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use server::auth::Role;
use server::config::Config;
use server::db::Database;

/// Runs each listed test once per backend: `mod sqlite { … }` and `mod postgres { … }`.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($db:ident: TestDb) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $db = $crate::common::TestDb::sqlite().await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some($db) = $crate::common::TestDb::postgres().await else { return };
                    $body
                }
            )*
        }
    };
}

pub struct TestDb {
    pub url: String,
    pub backend: DbBackend,
    /// PostgreSQL: the server URL and the database to drop afterwards.
    cleanup: Option<(String, String)>,
    /// SQLite: the file to delete afterwards.
    file: Option<std::path::PathBuf>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let path =
            std::env::temp_dir().join(format!("mlgate-test-{}.db", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = Self {
            url,
            backend: DbBackend::Sqlite,
            cleanup: None,
            file: Some(path),
        };
        db.migrate().await;
        db
    }

    /// A fresh PostgreSQL database, or `None` (skipped) when none is configured
    /// and none is required.
    pub async fn postgres() -> Option<Self> {
        let required = std::env::var("MLGATE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
            assert!(
                !required,
                "MLGATE_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
            );
            eprintln!("skipping PostgreSQL test: TEST_DATABASE_URL is not set");
            return None;
        };
        let admin = match plain_connection(&server, 1, 0).await {
            Ok(admin) => admin,
            Err(e) if !required => {
                eprintln!("skipping PostgreSQL test: cannot reach TEST_DATABASE_URL: {e}");
                return None;
            }
            Err(e) => panic!("MLGATE_REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {e}"),
        };
        let name = format!("mlgate_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = with_database(&server, &name);
        let db = Self {
            url,
            backend: DbBackend::Postgres,
            cleanup: Some((server, name)),
            file: None,
        };
        db.migrate().await;
        Some(db)
    }

    async fn migrate(&self) {
        let db = self.connect().await;
        db.migrate_up().await.expect("migrations apply");
        db.close().await.ok();
    }

    pub async fn connect(&self) -> Database {
        Database::connect(&self.url, 5)
            .await
            .expect("connect to test database")
    }

    /// A raw SeaORM connection, for hand-written SQL that bypasses mlgate.
    /// One pooled connection, so `BEGIN … ROLLBACK` scripts stay on one session.
    pub async fn raw(&self) -> sea_orm::DatabaseConnection {
        plain_connection(&self.url, 1, 1)
            .await
            .expect("raw connection")
    }

    /// The rows of `table` that `tenant` owns, counted past mlgate.
    pub async fn rows(&self, table: &str, tenant: &str) -> i64 {
        let raw = self.raw().await;
        let n = count(
            &raw,
            &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = '{tenant}'"),
        )
        .await;
        raw.close().await.ok();
        n
    }

    /// The defaults, on a free port, without the credential cache: tests
    /// count each request's statements, and the cache (on by default on
    /// PostgreSQL) would take the key lookup out of some requests and not
    /// others, as its heartbeats come and go. `tests/credential_cache.rs`
    /// turns it on.
    pub fn config(&self) -> Config {
        let mut config = Config::for_database(&self.url);
        config.serve.bind = "127.0.0.1:0".parse().unwrap();
        config.serve.auth.auth_cache_secs = 0;
        // Statement counts must see only the request's own statements:
        // monitor tests turn the evaluator back on.
        config.serve.monitor_poll_ms = 0;
        config
    }

    pub async fn key(&self, tenant: &str, role: Role) -> String {
        let db = self.connect().await;
        let key = server::ops::keys::create_for_tenant(&db, tenant, role, "test")
            .await
            .expect("create key");
        db.close().await.ok();
        key.secret
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
        if let Some((server, name)) = self.cleanup.take() {
            // Drop runs outside any runtime we may block on: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    if let Ok(admin) = plain_connection(&server, 1, 0).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        admin.close().await.ok();
                    }
                });
            })
            .join();
        }
    }
}

/// `server` with its database path replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

/// A running server on a free port, stopped when dropped.
pub struct TestServer {
    pub base: String,
    /// The server's pool, for its statement count.
    pub db: Database,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        // Server logs go to the test's captured output: shown when it fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,server=info")
            .with_test_writer()
            .try_init();
        let app = server::Application::build(config)
            .await
            .expect("server builds");
        let base = format!("http://{}", app.local_addr());
        let db = app.database();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        let server = Self {
            base,
            db,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            stop: Some(stop),
            handle: Some(handle),
        };
        server.wait_ready().await;
        server
    }

    /// Waits until `/ready` says so. On PostgreSQL the notification listener
    /// connects in the background, and its first connect makes every open
    /// WebSocket re-check its credential: a test that counts statements must
    /// not start before that.
    async fn wait_ready(&self) {
        // Its own client, keeping no connection open: a test may cap them.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let status = client
                .get(self.url("/ready"))
                .send()
                .await
                .map(|r| r.status());
            if matches!(status, Ok(s) if s.is_success()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server is not ready within 15 s: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a GraphQL query with `key` and returns (status, body).
    pub async fn graphql(&self, key: &str, query: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url("/graphql"))
            .bearer_auth(key)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// POSTs a GraphQL query with variables and returns (status, body).
    pub async fn graphql_with(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url("/graphql"))
            .bearer_auth(key)
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// The tenant's current drift-alert cursor (`key`'s tenant): where a
    /// subscription that misses nothing starts.
    pub async fn alert_cursor(&self, key: &str) -> String {
        self.data(key, "{ driftAlertCursor }", serde_json::json!({}))
            .await["driftAlertCursor"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `data` of a successful query; panics with the errors otherwise.
    pub async fn data(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let (status, body) = self.graphql_with(key, query, variables).await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "query failed ({status}): {body}"
        );
        body["data"].clone()
    }

    /// The number of SQL statements `query` runs (nothing else may use the
    /// server meanwhile).
    pub async fn statements_for(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> (u64, serde_json::Value) {
        let before = self.db.statements_executed();
        let (_, body) = self.graphql_with(key, query, variables).await;
        (self.db.statements_executed() - before, body)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task ends cleanly");
        }
    }
}

/// A SeaORM pool outside mlgate (administration, hand-written SQL), with
/// sqlx's idle/lifetime sweep off as mlgate's own pools have it: that task
/// can spin a runtime thread forever (sqlx#3645) and hang a test.
pub async fn plain_connection(
    url: &str,
    max: u32,
    min: u32,
) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options
        .max_connections(max)
        .min_connections(min)
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    sea_orm::Database::connect(options).await
}

/// `tests/clients`, where the off-the-shelf npm clients the tests drive are
/// installed (`npm ci --prefix tests/clients`), if `package` is there and
/// Node runs. CI provides both and requires them: there a missing client
/// fails the test instead of skipping it.
pub fn node_clients(package: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let ready = dir.join("node_modules").join(package).exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok();
    if ready {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI must run the {package} client: run `npm ci --prefix tests/clients`"
    );
    eprintln!("skipping: node or tests/clients/node_modules/{package} missing (npm ci --prefix tests/clients)");
    None
}

pub async fn count(conn: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("count query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("an integer")
}

#[test]
fn replaces_the_database_of_a_url() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://u@h:5432", "x"),
        "postgres://u@h:5432/x"
    );
}

/// The real `mlgate serve` binary as a child process on `database_url`,
/// with JSON logs collected; killed when dropped.
pub struct Gateway {
    pub base: String,
    pub child: tokio::process::Child,
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Gateway {
    /// Starts it through `sh -c` with `shell_prefix` run first (e.g. a
    /// `trap`) and `env` set, then waits for its "mlgate ready" line.
    pub async fn start(
        database_url: &str,
        args: &[&str],
        shell_prefix: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command_line = vec![
            "--log-format",
            "json",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--playground",
            "false",
        ];
        command_line.extend_from_slice(args);
        Self::launch(database_url, &command_line, shell_prefix, env).await
    }

    /// Starts `mlgate` with exactly `command_line` (which must ask for JSON
    /// logs) and waits for its "mlgate ready" line.
    pub async fn launch(
        database_url: &str,
        command_line: &[&str],
        shell_prefix: &str,
        env: &[(&str, &str)],
    ) -> Self {
        use tokio::io::AsyncReadExt;
        let script = format!("{shell_prefix} exec \"$0\" \"$@\"");
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_mlgate"))
            .args(command_line)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mlgate starts");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipes: [Box<dyn tokio::io::AsyncRead + Unpin + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut pipe in pipes {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    logs.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
        }
        let started = std::time::Instant::now();
        let base = loop {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "mlgate never became ready:\n{}",
                logs.lock().unwrap()
            );
            let ready = logs
                .lock()
                .unwrap()
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|line| line["fields"]["message"] == "mlgate ready");
            if let Some(line) = ready {
                // An address on every interface is reached on the loopback.
                let address = line["fields"]["address"]
                    .as_str()
                    .unwrap()
                    .replace("0.0.0.0:", "127.0.0.1:");
                break format!("http://{address}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self { base, child, logs }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    /// Starts `mlgate serve` on `database_url` with `args`, and waits until
    /// `/ready` says 200 (migrated and, on PostgreSQL, listening): for tests
    /// of several gateways on one database.
    pub async fn serving(database_url: &str, args: &[&str]) -> Self {
        let gateway = Self::start(database_url, args, "", &[]).await;
        let client = reqwest::Client::new();
        for _ in 0..100 {
            let ready = client.get(format!("{}/ready", gateway.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return gateway;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} never became ready:\n{}",
            gateway.base,
            gateway.logs.lock().unwrap()
        );
    }

    /// The `data` of a query that must not fail.
    pub async fn data(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let body = self.post(Some(key), query, variables).await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// POSTs `query` (with `key`, if any) and returns the answer's JSON,
    /// whatever its status.
    pub async fn post(
        &self,
        key: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap().json().await.unwrap()
    }
}

/// `url` with its host and port, and that address.
pub fn via_port(url: &str, port: u16) -> (String, std::net::SocketAddr) {
    let at = url.find('@').expect("a user in the URL") + 1;
    let end = at + url[at..].find('/').expect("a database in the URL");
    let target = url[at..end].parse().expect("an IP address and a port");
    (
        format!("{}127.0.0.1:{port}{}", &url[..at], &url[end..]),
        target,
    )
}

/// A TCP proxy between mlgate and its database, for faults. It forwards;
/// or blackholes (drops every byte both ways and keeps the connections open,
/// as a network path that silently stops forwarding); or is down (closes
/// every connection and refuses new ones at once, as a stopped server).
pub struct Proxy {
    pub port: u16,
    /// 0 forwards, 1 blackholes, 2 is down.
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

const FORWARD: u8 = 0;
const BLACKHOLE: u8 = 1;
const DOWN: u8 = 2;

impl Proxy {
    /// Listens on `port` (0: any free one) and forwards to `target`.
    pub async fn start(port: u16, target: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("proxy port");
        let port = listener.local_addr().unwrap().port();
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(FORWARD));
        let flag = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) == DOWN {
                    continue; // dropped: the client sees the connection closed
                }
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (mut from, mut to, flag) in [
                    (
                        Box::new(client_read) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                        Box::new(server_write) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                        flag.clone(),
                    ),
                    (Box::new(server_read), Box::new(client_write), flag.clone()),
                ] {
                    tokio::spawn(async move {
                        let mut buffer = [0u8; 16 * 1024];
                        loop {
                            let read = tokio::select! {
                                read = from.read(&mut buffer) => read,
                                // Going down ends idle connections too.
                                () = async { while flag.load(Ordering::SeqCst) != DOWN { tokio::time::sleep(std::time::Duration::from_millis(20)).await } } => break,
                            };
                            match read {
                                Ok(0) | Err(_) => break,
                                Ok(n) => match flag.load(Ordering::SeqCst) {
                                    BLACKHOLE => continue,
                                    DOWN => break,
                                    _ => {
                                        if to.write_all(&buffer[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                },
                            }
                        }
                        let _ = to.shutdown().await;
                    });
                }
            }
        });
        Self { port, mode, task }
    }

    /// A proxy to the database of `url` (on any free port), and `url`
    /// through it.
    pub async fn in_front_of(url: &str) -> (Self, String) {
        let proxy = Self::start(0, via_port(url, 0).1).await;
        let (through, _) = via_port(url, proxy.port);
        (proxy, through)
    }

    pub fn blackhole(&self) {
        self.mode
            .store(BLACKHOLE, std::sync::atomic::Ordering::SeqCst);
    }

    /// Closes every connection and refuses new ones until `forward`.
    pub fn down(&self) {
        self.mode.store(DOWN, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn forward(&self) {
        self.mode
            .store(FORWARD, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Asks `state_query` (listing `monitors { monitorId state { evaluations … } }`)
/// until monitor `id` has at least `n` evaluations; returns its entry.
pub async fn monitor_after(
    ask: impl AsyncFn(&str) -> serde_json::Value,
    state_query: &str,
    id: &str,
    n: i64,
) -> serde_json::Value {
    for _ in 0..300 {
        let data = ask(state_query).await;
        let monitor = data["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["monitorId"] == id)
            .cloned()
            .expect("the monitor is listed");
        if monitor["state"]["evaluations"].as_i64().unwrap() >= n {
            return monitor;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("monitor {id} never reached {n} evaluations");
}
