//! The benchmark harness (`bench/`), run small against PostgreSQL with the
//! real `mlgate` binary: every scenario completes its own checks (answers
//! equal to the SQL floor's, committed row counts, each alert delivered once
//! to each subscriber), so a broken scenario fails here rather than being
//! timed in BENCHMARKS.md.

mod common;

use common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_harness_runs_every_scenario_small() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    // PostGraphile (npm) runs beside mlgate when installed; CI installs it
    // and requires it, so there its absence fails the run.
    let postgraphile = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/postgraphile/node_modules")
        .is_dir()
        || std::env::var("CI").is_ok_and(|v| v == "true");
    let mut scenarios = vec![
        "reads",
        "scale",
        "dashboard",
        "ingest",
        "fanout",
        "noisy",
        "idle",
    ];
    if postgraphile {
        scenarios.extend(["postgraphile", "light"]);
    } else {
        eprintln!(
            "PostGraphile not installed (npm ci --prefix bench/postgraphile): its scenarios skipped"
        );
    }
    let args = mlgate_bench::Args {
        database_url: test_db.url.clone(),
        reset: true,
        tenants: 2,
        models: 4,
        predictions: 400,
        days: 30,
        seconds: 1,
        concurrency: vec![1, 4],
        pool_size: 4,
        scale_factor: 2,
        subscribers: vec![20],
        alerts: 6,
        alerts_per_second: 20.0,
        noisy_concurrency: 2,
        tenant_db_share: server::db::DbSettings::DEFAULT_TENANT_SHARE_PERCENT,
        tenant_analytics_share: server::db::DbSettings::DEFAULT_TENANT_ANALYTICS_PERCENT,
        ingest_stream_mb: 2,
        mlgate_bin: env!("CARGO_BIN_EXE_mlgate").into(),
        scenarios: scenarios.into_iter().map(String::from).collect(),
    };
    let mut report = String::new();
    mlgate_bench::run(&args, |section| report.push_str(&section))
        .await
        .unwrap_or_else(|e| panic!("a scenario failed its checks: {e:#}\n{report}"));
    eprintln!("{report}");
    for section in [
        "## Data",
        "## Read mix",
        "## Model performance at 2× the data",
        "## Dashboard analytics at two tenant sizes",
        "## Ingestion",
        "## Alert fan-out",
        "## Noisy neighbour",
        "## Idle memory",
    ] {
        assert!(report.contains(section), "{section} missing:\n{report}");
    }
    if postgraphile {
        assert!(report.contains("## Beside PostGraphile"), "{report}");
        assert!(
            report.contains("## Light queries beside PostGraphile"),
            "{report}"
        );
        // Four light queries at two levels each.
        assert_eq!(
            report
                .matches("| 3 models × 10 predictions × 5 feedback |")
                .count(),
            2
        );
    }
    // Four ingestion paths at two levels, every row counted; one streamed body.
    assert_eq!(report.matches("| plain `COPY` (floor) |").count(), 2);
    assert_eq!(
        report
            .matches("| mlgate `POST /ingest/predictions` (NDJSON) |")
            .count(),
        2
    );
    assert!(report.contains("One streamed body of"), "{report}");
    // 2 tenants × 400 predictions; one table row per query and per level.
    assert!(report.contains("800 predictions over 30 days"), "{report}");
    assert_eq!(report.matches("| 3-level nested list |").count(), 1);
    assert!(
        report.contains("errors: **0**"),
        "the light tenant had no errors beside the noisy one:\n{report}"
    );
    // The floor's light mix (hand-written SQL) ran alone and beside the noise.
    assert_eq!(
        report
            .matches("| floor: hand-written SQL, no gateway |")
            .count(),
        2,
        "{report}"
    );
    assert!(
        report.contains("The floor beside the same noise"),
        "{report}"
    );
    assert!(
        report.contains("| 20 | 60 |"),
        "20 subscribers × 3 alerts each:\n{report}"
    );
}
