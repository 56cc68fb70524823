//! Configuration: command-line flags, each with an environment fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::data::PageLimits;
use crate::graphql::{QueryLimits, WriteLimits};

/// The embedded default: an SQLite file under `./data/`, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/mlgate.db?mode=rwc";

#[derive(Debug, Parser)]
#[command(
    name = "mlgate",
    version,
    about = "GraphQL analytics gateway for ML monitoring data"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Log output format.
    #[arg(long, env = "MLGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database to serve: `postgres://user@host/db` or `sqlite://path?mode=rwc`
    /// (`sqlite::memory:` for a throw-away database).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(
        long,
        env = "MLGATE_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP/WebSocket server (the default).
    Serve(Box<ServeArgs>),
    /// Apply or roll back schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Check the database against the schema mlgate requires; exits non-zero on any gap.
    VerifySchema,
    /// Create demo tenants with realistic data and print one API key per role per tenant.
    Demo(DemoArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Show a tenant's drift alert thresholds, or set them (give all six values).
    DriftThresholds(DriftThresholdArgs),
    /// Delete every row of one tenant.
    Cleanup {
        /// The tenant whose data is deleted.
        #[arg(long)]
        tenant: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// A tenant's drift alert thresholds: a score at or above `warning` is a
/// warning, above `critical` a critical drift.
#[derive(Debug, Clone, Args)]
pub struct DriftThresholdArgs {
    /// The tenant whose thresholds are shown or set.
    #[arg(long)]
    pub tenant: String,
    /// Set the thresholds to these values (all six flags below are required).
    #[arg(long, requires_all = ["psi_warning", "psi_critical", "ks_warning", "ks_critical", "wasserstein_warning", "wasserstein_critical"])]
    pub set: bool,
    /// PSI warning threshold (convention 0.1).
    #[arg(long)]
    pub psi_warning: Option<f64>,
    /// PSI critical threshold (convention 0.25).
    #[arg(long)]
    pub psi_critical: Option<f64>,
    /// KS statistic warning threshold (default 0.1).
    #[arg(long)]
    pub ks_warning: Option<f64>,
    /// KS statistic critical threshold (default 0.2).
    #[arg(long)]
    pub ks_critical: Option<f64>,
    /// Wasserstein distance warning threshold (default 0.1).
    #[arg(long)]
    pub wasserstein_warning: Option<f64>,
    /// Wasserstein distance critical threshold (default 0.2).
    #[arg(long)]
    pub wasserstein_critical: Option<f64>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Roll back migrations (the last one unless `--steps` says more).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop everything and apply all migrations again.
    Fresh,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create an API key; the secret is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["viewer", "analyst", "service", "admin"])]
        role: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Revoke an API key by its id.
    Revoke { id: uuid::Uuid },
    /// List a tenant's keys (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Number of demo tenants.
    #[arg(long, default_value_t = 2)]
    pub tenants: u32,
    /// Models per tenant.
    #[arg(long, default_value_t = 4)]
    pub models: u32,
    /// Predictions per tenant.
    #[arg(long, default_value_t = 500)]
    pub predictions: u32,
    /// Random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days the predictions and the hourly drift metrics span, up to now.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            tenants: 2,
            models: 4,
            predictions: 500,
            seed: 42,
            days: 7,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "MLGATE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Do not apply pending migrations at start.
    #[arg(long, env = "MLGATE_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Seed demo tenants if the database has none, and print fresh demo API keys.
    #[arg(long)]
    pub demo: bool,

    /// HS256 secret for JWTs (claims `sub`, `tenant_id`, `role`, `exp`).
    #[arg(long, env = "MLGATE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM file with the RS256 public key for JWTs.
    #[arg(long, env = "MLGATE_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Required `iss` claim of JWTs, if set.
    #[arg(long, env = "MLGATE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim of JWTs, if set.
    #[arg(long, env = "MLGATE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Largest accepted request body, in bytes; larger ones get 413. The
    /// default fits a full ingestion batch (1000 predictions with SHAP values
    /// and attention weights are about 3 MiB).
    #[arg(long, env = "MLGATE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Most items one batch write (`recordPredictions`, `recordDriftMetrics`) takes.
    #[arg(long, env = "MLGATE_MAX_WRITE_BATCH", default_value_t = WriteLimits::MAX_BATCH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_write_batch: usize,

    /// Serve the analysts' playground at `/` (turn off in production).
    #[arg(long, env = "MLGATE_PLAYGROUND", default_value_t = true, action = clap::ArgAction::Set)]
    pub playground: bool,

    /// Seconds a WebSocket client has to send `connection_init` (then: close 4408).
    #[arg(long, env = "MLGATE_WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,

    /// Seconds between re-checks of a WebSocket connection's credentials; a
    /// revoked key ends the connection at the next one (close 4403).
    #[arg(long, env = "MLGATE_WS_AUTH_RECHECK_SECS", default_value_t = 30)]
    pub ws_auth_recheck_secs: u64,

    /// Seconds a WebSocket client may leave its outgoing queue full before it
    /// is disconnected as too slow (close 1013; it resumes with `since`).
    #[arg(long, env = "MLGATE_WS_SLOW_CONSUMER_SECS", default_value_t = 10)]
    pub ws_slow_consumer_secs: u64,

    /// Items per page when a list query names no `first`/`last`.
    #[arg(long, env = "MLGATE_DEFAULT_PAGE_SIZE", default_value_t = PageLimits::DEFAULT_SIZE, value_parser = clap::value_parser!(u64).range(1..))]
    pub default_page_size: u64,

    /// Largest `first`/`last` a list accepts; larger ones are refused before anything runs.
    #[arg(long, env = "MLGATE_MAX_PAGE_SIZE", default_value_t = PageLimits::MAX_SIZE, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_page_size: u64,

    /// Deepest nesting of fields an operation may have.
    #[arg(long, env = "MLGATE_MAX_QUERY_DEPTH", default_value_t = QueryLimits::MAX_DEPTH)]
    pub max_query_depth: usize,

    /// Largest operation complexity: one per field, times the page size for
    /// fields inside a list (so nested page sizes multiply).
    #[arg(long, env = "MLGATE_MAX_QUERY_COMPLEXITY", default_value_t = QueryLimits::MAX_COMPLEXITY)]
    pub max_query_complexity: usize,
}

/// Request bodies up to 8 MiB are read.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

impl ServeArgs {
    /// The write limits these settings describe.
    pub fn write_limits(&self) -> WriteLimits {
        WriteLimits {
            max_batch: self.max_write_batch,
        }
    }

    /// The query limits these settings describe.
    pub fn query_limits(&self) -> QueryLimits {
        QueryLimits {
            max_depth: self.max_query_depth,
            max_complexity: self.max_query_complexity,
            page: PageLimits {
                default_size: self.default_page_size.min(self.max_page_size),
                max_size: self.max_page_size,
            },
        }
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".parse().expect("valid address"),
            no_migrate: false,
            demo: false,
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_issuer: None,
            jwt_audience: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_write_batch: WriteLimits::MAX_BATCH,
            playground: true,
            ws_init_timeout_secs: 10,
            ws_auth_recheck_secs: 30,
            ws_slow_consumer_secs: 10,
            default_page_size: PageLimits::DEFAULT_SIZE,
            max_page_size: PageLimits::MAX_SIZE,
            max_query_depth: QueryLimits::MAX_DEPTH,
            max_query_complexity: QueryLimits::MAX_COMPLEXITY,
        }
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseArgs,
    pub serve: ServeArgs,
    pub demo: DemoArgs,
}

impl Config {
    /// A configuration for `database_url` with every other setting at its default.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database: DatabaseArgs {
                database_url: database_url.into(),
                db_max_connections: 10,
            },
            serve: ServeArgs::default(),
            demo: DemoArgs::default(),
        }
    }
}
