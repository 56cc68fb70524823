//! A gateway as its own `mlgate serve` process on a free port (for tests of
//! several processes on one database), killed when dropped.

use std::time::Duration;

use serde_json::{json, Value};

pub struct Gateway {
    pub base: String,
    _child: tokio::process::Child,
}

impl Gateway {
    /// Starts `mlgate serve` on `database_url` with `args` besides the port
    /// (the playground off); returns once `/ready` answers.
    pub async fn start(database_url: &str, args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bind = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mlgate"))
            .args(["serve", "--bind", &bind, "--playground", "false"])
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mlgate starts");
        let base = format!("http://{bind}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{base}/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self {
                    base,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gateway on port {port} never became ready");
    }

    /// The `data` of a query that must not fail.
    pub async fn data(&self, key: &str, query: &str, variables: Value) -> Value {
        let body: Value = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .bearer_auth(key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }
}
