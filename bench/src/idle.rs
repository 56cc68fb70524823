//! The gateway idle: start-up time and resident memory.

use std::fmt::Write as _;
use std::time::Duration;

use crate::args::Args;

pub(crate) async fn idle(args: &Args) -> anyhow::Result<String> {
    let mut out = String::new();
    let dir = std::env::temp_dir().join(format!("mlgate-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("idle.db").display());
    writeln!(out, "## Idle memory and start-up\n")?;
    writeln!(
        out,
        "`{} serve`, measured from spawning the process to `/ready` answering; memory 2 s after.\n",
        args.mlgate_bin.display()
    )?;
    writeln!(out, "| database | start-to-ready (ms) | idle RSS (MiB) |")?;
    writeln!(out, "|---|---|---|")?;
    let mut runs = vec![("SQLite, new file (migrations run)", sqlite.clone(), vec![])];
    runs.push(("SQLite, migrated", sqlite.clone(), vec!["--no-migrate"]));
    runs.push((
        "PostgreSQL (the loaded database), migrated",
        args.database_url.clone(),
        vec!["--no-migrate"],
    ));
    for (label, url, extra) in runs {
        let gateway = crate::process::Gateway::start(&args.mlgate_bin, &url, &extra).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = gateway.rss_kib()?;
        writeln!(
            out,
            "| {label} | {:.0} | {:.1} |",
            gateway.start_to_ready.as_secs_f64() * 1000.0,
            rss as f64 / 1024.0
        )?;
        gateway.stop().await;
    }
    writeln!(out)?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(out)
}
