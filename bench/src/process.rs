//! The real `mlgate` binary as a child process: its start-up time and its
//! memory (resident set size, from `/proc`).

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub struct Gateway {
    pub base: String,
    child: Child,
    /// From spawning the process to `/ready` answering 200.
    pub start_to_ready: Duration,
}

impl Gateway {
    /// Starts `binary serve` on `database_url` with `extra` arguments and
    /// waits until it is ready.
    pub async fn start(binary: &Path, database_url: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("serve")
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", binary.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        loop {
            if client
                .get(format!("{base}/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "mlgate never became ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            base,
            start_to_ready: started.elapsed(),
            child,
        })
    }

    /// The process's resident set size, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        (self.rss_probe()?)()
    }

    /// Reads the process's resident set size (KiB) each time it is called.
    pub fn rss_probe(&self) -> anyhow::Result<impl Fn() -> anyhow::Result<u64> + Send + 'static> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("mlgate exited"))?;
        Ok(move || {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
        })
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
