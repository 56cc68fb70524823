//! The command line of `mlgate-bench`.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "mlgate-bench",
    about = "Benchmarks mlgate on PostgreSQL and prints the tables of BENCHMARKS.md"
)]
pub struct Args {
    /// The PostgreSQL database to measure (created when --reset).
    #[arg(long, env = "BENCH_DATABASE_URL")]
    pub database_url: String,
    /// Drop and recreate the database, then load the data.
    #[arg(long)]
    pub reset: bool,
    /// Demo tenants to load.
    #[arg(long, default_value_t = 20)]
    pub tenants: u32,
    /// Models per tenant.
    #[arg(long, default_value_t = 4)]
    pub models: u32,
    /// Predictions per tenant (20 × 50 000 = 1M).
    #[arg(long, default_value_t = 50_000)]
    pub predictions: u32,
    /// Days the data spans.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Measured seconds per load level (after a warm-up of a fifth of it).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrency levels of the read mix and ingestion.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,
    /// Database connections of the gateway's pool and of the SQL floor's.
    #[arg(long, default_value_t = 10)]
    pub pool_size: u32,
    /// The scale scenario's tenant holds this many times `--predictions`.
    #[arg(long, default_value_t = 10)]
    pub scale_factor: u32,
    /// Subscriber counts of the fan-out runs.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub subscribers: Vec<usize>,
    /// Alerts written per fan-out run, and how many per second.
    #[arg(long, default_value_t = 100)]
    pub alerts: usize,
    #[arg(long, default_value_t = 20.0)]
    pub alerts_per_second: f64,
    /// Percent of the pool one tenant holds in the in-process gateway of the
    /// read mix, scale and ingestion scenarios (mlgate's `--tenant-db-share`).
    #[arg(long, default_value_t = server::db::DbSettings::DEFAULT_TENANT_SHARE_PERCENT)]
    pub tenant_db_share: u32,
    /// Percent of the pool one tenant's analytics hold there (`--tenant-analytics-share`).
    #[arg(long, default_value_t = server::db::DbSettings::DEFAULT_TENANT_ANALYTICS_PERCENT)]
    pub tenant_analytics_share: u32,
    /// Workers of the noisy tenant's heavy analytics (noisy-neighbour scenario).
    #[arg(long, default_value_t = 8)]
    pub noisy_concurrency: usize,
    /// MiB of the one body streamed to the bulk endpoint (ingestion).
    #[arg(long, default_value_t = 100)]
    pub ingest_stream_mb: usize,
    /// The mlgate binary measured as a process (fan-out, memory, start-up).
    #[arg(long, default_value = "target/release/mlgate")]
    pub mlgate_bin: PathBuf,
    /// Scenarios to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "reads,postgraphile,light,scale,dashboard,ingest,fanout,noisy,idle"
    )]
    pub scenarios: Vec<String>,
}
