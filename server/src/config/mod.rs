//! Configuration: command-line flags, each with an environment fallback
//! and a configuration-file entry (`file.rs`); `reference.rs` renders the
//! effective configuration and the README's reference table.

mod file;
mod reference;

pub use file::FileSettings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use std::time::Duration;

use crate::auth::{AuthSettings, JwksSettings, JwtSettings, Role};
use crate::db::{Budgets, DbSettings};
use crate::graphql::{Introspection, QueryLimits, WriteLimits};
pub use crate::ops::demo::DemoArgs;
use crate::store::PageLimits;
pub use crate::telemetry::traces::OtlpSettings;
pub use crate::telemetry::LogFormat;
use crate::transport::{
    AdmissionSettings, CorsSettings, DocumentSettings, HttpSettings, IngestSettings, Rate,
    ResponseLimits, TransportSettings, TrustMode, TrustedDocuments, WsSettings,
    DEFAULT_MAX_BODY_BYTES,
};
use crate::write::drift::DriftLimits;

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

    /// `mlgate` alone serves: these are `serve`'s settings, from flags or
    /// `MLGATE_*` variables exactly as for `mlgate serve`. Given with a
    /// subcommand they are refused ([`Cli::parse_checked`]), never ignored.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Log output format.
    #[arg(long, env = "MLGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// A TOML file of settings named like the flags (`bind = ":8080"`);
    /// flags and `MLGATE_*` variables override it.
    #[arg(long, env = "MLGATE_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// What `mlgate config` prints: the effective settings, secrets redacted.
    #[arg(skip)]
    pub effective: String,
}

impl Cli {
    /// Parses the command line. `serve`'s flags belong after `serve` or
    /// alone (`mlgate --bind :8080`); before another subcommand (or before
    /// `serve`, which has its own) they would be silently unused, so they are
    /// refused.
    pub fn parse_checked() -> Self {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        Self::try_parse_checked(args).unwrap_or_else(|e| e.exit())
    }

    /// The README's reference table of every setting (a test keeps the
    /// README's copy equal to it).
    pub fn reference_table() -> String {
        use clap::CommandFactory;
        reference::reference_table(&Cli::command())
    }

    /// [`Cli::parse_checked`] on `args`, with the configuration file they
    /// (or `MLGATE_CONFIG`) name.
    pub fn try_parse_checked(args: Vec<std::ffi::OsString>) -> Result<Self, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Cli::command();
        let file = match file::path_from(&args) {
            Some(path) => {
                let file = FileSettings::read(&path)
                    .and_then(|file| {
                        command = file.apply(command.clone())?;
                        Ok(file)
                    })
                    .map_err(|e| command.error(clap::error::ErrorKind::InvalidValue, e))?;
                Some(file)
            }
            None => None,
        };
        let matches = command.try_get_matches_from_mut(args)?;
        if let Some((name, _)) = matches.subcommand() {
            let serve_flags = ServeArgs::augment_args(clap::Command::new("serve"));
            for arg in serve_flags.get_arguments() {
                let id = arg.get_id().as_str();
                if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                    let after = if name == "config" { "config" } else { "serve" };
                    return Err(command.error(
                        clap::error::ErrorKind::ArgumentConflict,
                        format!(
                            "--{} is a setting of `serve`: give it after `{after}`, or with no subcommand",
                            arg.get_long().unwrap_or(id)
                        ),
                    ));
                }
            }
        }
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let Some(("config", shown)) = matches.subcommand() {
            // In definition order: the file's defaults reordered `command`.
            cli.effective = reference::effective(&Cli::command(), shown, file.as_ref());
        }
        Ok(cli)
    }
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
    /// Print the settings `mlgate serve` would run with (these flags,
    /// variables, file and defaults), each with where it came from; secrets
    /// redacted. The output is a valid configuration file.
    Config(Box<ServeArgs>),
    /// Apply or roll back schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Check the database against the schema mlgate requires; exits non-zero on any gap.
    VerifySchema {
        /// Also compare every rollup with a fresh aggregation of each
        /// tenant's rows (PostgreSQL; reads every row).
        #[arg(long)]
        deep: bool,
    },
    /// PostgreSQL's analytics rollups.
    Rollups {
        #[command(subcommand)]
        action: RollupsAction,
    },
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

#[derive(Debug, Subcommand)]
pub enum RollupsAction {
    /// Rebuild the rollups from the rows, hour by hour (writers keep
    /// writing): after a bulk load that bypassed the triggers, or a restore.
    Rebuild {
        /// Only this tenant's (default: every tenant with models).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// A tenant's drift alert thresholds: a score at or above `warning` is a
/// warning, above `critical` a critical drift.
#[derive(Debug, Clone, Args)]
pub struct DriftThresholdArgs {
    /// The tenant whose thresholds are shown or set.
    #[arg(long)]
    pub tenant: String,
    /// Set the bands given below (each band needs both of its flags); the
    /// others keep their values.
    #[arg(long)]
    pub set: bool,
    /// PSI warning threshold (convention 0.1).
    #[arg(long, requires = "psi_critical")]
    pub psi_warning: Option<f64>,
    /// PSI critical threshold (convention 0.25).
    #[arg(long, requires = "psi_warning")]
    pub psi_critical: Option<f64>,
    /// KS statistic warning threshold (default 0.1).
    #[arg(long, requires = "ks_critical")]
    pub ks_warning: Option<f64>,
    /// KS statistic critical threshold (default 0.2).
    #[arg(long, requires = "ks_warning")]
    pub ks_critical: Option<f64>,
    /// Wasserstein distance warning threshold (default 0.1).
    #[arg(long, requires = "wasserstein_critical")]
    pub wasserstein_warning: Option<f64>,
    /// Wasserstein distance critical threshold (default 0.2).
    #[arg(long, requires = "wasserstein_warning")]
    pub wasserstein_critical: Option<f64>,
    /// Jensen–Shannon distance warning threshold (default 0.1).
    #[arg(long, requires = "jensen_shannon_critical")]
    pub jensen_shannon_warning: Option<f64>,
    /// Jensen–Shannon distance critical threshold (default 0.2).
    #[arg(long, requires = "jensen_shannon_warning")]
    pub jensen_shannon_critical: Option<f64>,
    /// Hellinger distance warning threshold (default 0.1).
    #[arg(long, requires = "hellinger_critical")]
    pub hellinger_warning: Option<f64>,
    /// Hellinger distance critical threshold (default 0.2).
    #[arg(long, requires = "hellinger_warning")]
    pub hellinger_critical: Option<f64>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Roll back migrations (the last one unless `--steps` says more).
    Down {
        /// How many of the latest applied migrations to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
        /// Do not ask for confirmation (what the migrations created is dropped).
        #[arg(long)]
        yes: bool,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop everything and apply all migrations again.
    Fresh {
        /// Do not ask for confirmation (every table and its data is dropped).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create an API key; the secret is printed once and stored only as a hash.
    Create {
        /// The tenant the key belongs to (the key can reach only its rows).
        #[arg(long)]
        tenant: String,
        /// What the key may do: viewer reads, analyst also gives feedback,
        /// service also ingests, admin does everything in its tenant.
        #[arg(long, value_parser = ["viewer", "analyst", "service", "admin"])]
        role: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Create it even for a tenant with no models and no keys yet
        /// (otherwise asked, as a likely typo, and refused without a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Revoke an API key by its id.
    Revoke {
        /// The key's id (as `keys create` and `keys list` print it).
        id: uuid::Uuid,
    },
    /// List a tenant's keys (never their secrets).
    List {
        /// The tenant whose keys are listed.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on: `host:port`, or `:port` for every interface
    /// (`:0` or `127.0.0.1:0` picks a free port).
    #[arg(long, env = "MLGATE_BIND", default_value = "127.0.0.1:8080", value_parser = parse_bind)]
    pub bind: SocketAddr,

    /// Do not apply pending migrations at start (`--no-migrate=false`
    /// undoes a `true` from the configuration file).
    #[arg(long, env = "MLGATE_NO_MIGRATE", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_migrate: bool,

    /// Seed demo tenants if the database has none, and print their demo API
    /// keys (kept across restarts; see `mlgate demo --new-keys`).
    #[arg(long, env = "MLGATE_DEMO", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,

    /// Serve the analysts' playground at `/` (turn off in production).
    #[arg(long, env = "MLGATE_PLAYGROUND", default_value_t = true, action = clap::ArgAction::Set)]
    pub playground: bool,

    /// Seconds between looks at the alert outbox for every tenant with
    /// subscribers on this process, notified or not (the safety net for lost
    /// notifications, and for other processes on one SQLite file); 0: never.
    #[arg(long, env = "MLGATE_ALERT_SWEEP_SECS", default_value_t = 3)]
    pub alert_sweep_secs: u64,

    /// Milliseconds between this gateway's looks for due drift monitors (of
    /// every tenant; each slot is evaluated by one gateway); 0: this gateway
    /// evaluates none.
    #[arg(long, env = "MLGATE_MONITOR_POLL_MS", default_value_t = 1000)]
    pub monitor_poll_ms: u64,

    /// Deliver monitor webhooks to private, loopback and link-local
    /// addresses too (an internal receiver; refused by default so that a
    /// tenant's webhook cannot reach the gateway's own network).
    #[arg(long, env = "MLGATE_WEBHOOK_PRIVATE_ADDRESSES", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_private_addresses: bool,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub ws: WsArgs,

    #[command(flatten)]
    pub ingest: IngestArgs,

    #[command(flatten)]
    pub documents: DocumentArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub db: DbBudgetArgs,

    #[command(flatten)]
    pub admission: AdmissionArgs,

    #[command(flatten)]
    pub cors: CorsArgs,

    #[command(flatten)]
    pub observability: ObservabilityArgs,
}

/// Metrics and traces.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Observability")]
pub struct ObservabilityArgs {
    /// Serve Prometheus metrics at `/metrics` on this address (`host:port`
    /// or `:port`), apart from the API; off when not given. Keep it on an
    /// internal interface: it needs no credentials.
    #[arg(long, env = "MLGATE_METRICS_BIND", value_parser = parse_bind)]
    pub metrics_bind: Option<SocketAddr>,

    /// Export traces to this OpenTelemetry collector, over OTLP/HTTP
    /// (`http://collector:4318`; spans go to `/v1/traces`): one span per
    /// GraphQL operation, named by its type, with a child span per SQL
    /// statement. Off when not given.
    #[arg(long, env = "MLGATE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// The `service.name` of the exported traces.
    #[arg(long, env = "MLGATE_OTLP_SERVICE_NAME", default_value = "mlgate")]
    pub otlp_service_name: String,
}

impl ObservabilityArgs {
    /// Where traces go, if anywhere.
    pub fn otlp(&self) -> Option<OtlpSettings> {
        self.otlp_endpoint.as_ref().map(|endpoint| OtlpSettings {
            endpoint: endpoint.clone(),
            service_name: self.otlp_service_name.clone(),
        })
    }
}

/// How credentials are checked.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Credentials")]
pub struct AuthArgs {
    /// HS256 secret for JWTs (claims `sub`, `exp`, and the tenant and role
    /// at --jwt-tenant-claim and --jwt-role-claim).
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

    /// URL of the identity provider's JSON Web Key Set (RS256, ES256 and
    /// EdDSA keys, chosen by the token's `kid`; fetched again when they
    /// expire or a token names an unknown `kid`, which is how rotations
    /// arrive).
    #[arg(long, env = "MLGATE_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// Seconds a fetched key set is kept when its answer has no
    /// `Cache-Control: max-age`.
    #[arg(long, env = "MLGATE_JWT_JWKS_REFRESH_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub jwt_jwks_refresh_secs: u64,

    /// Least seconds between two fetches of the key set (a token naming an
    /// unknown `kid` waits for the next one).
    #[arg(long, env = "MLGATE_JWT_JWKS_MIN_REFRESH_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub jwt_jwks_min_refresh_secs: u64,

    /// Where a JWT carries the tenant: a claim name, a dotted path (quote a
    /// segment holding dots: `"https://hasura.io/jwt/claims".tenant`) or a
    /// JSON pointer (`/https:~1~1example.com~1claims/tenant`).
    #[arg(long, env = "MLGATE_JWT_TENANT_CLAIM", default_value = "tenant_id")]
    pub jwt_tenant_claim: String,

    /// Where a JWT carries the role (a string, or a list of which the most
    /// privileged mapped role counts), written as --jwt-tenant-claim.
    #[arg(long, env = "MLGATE_JWT_ROLE_CLAIM", default_value = "role")]
    pub jwt_role_claim: String,

    /// The identity provider's role names as mlgate roles:
    /// `reader=viewer,ml-engineer=service,org-admin=admin`. Without it the
    /// role claim holds mlgate's names; with it, unmapped roles are refused.
    #[arg(long, env = "MLGATE_JWT_ROLE_MAP", value_parser = parse_role_map)]
    pub jwt_role_map: Option<RoleMap>,

    /// Seconds a verified credential is remembered, on PostgreSQL only
    /// (0: every request looks its API key up). A revocation or deletion
    /// through this process takes effect at once; through another process,
    /// the command line or SQL, within the delay of its `NOTIFY`, and never
    /// later than 3 s after it committed: while the notification listener
    /// has not heard its heartbeat for 3 s, nothing is served from the
    /// cache. Seen only within this time: a role or expiry changed by hand
    /// in SQL (mlgate never changes them), and keys removed without a
    /// trigger firing (`TRUNCATE`, `session_replication_role = replica`).
    #[arg(long, env = "MLGATE_AUTH_CACHE_SECS", default_value_t = 30)]
    pub auth_cache_secs: u64,
}

/// HTTP connection hygiene and the request deadline.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Largest accepted request body, in bytes; larger ones get 413. The
    /// default fits a full ingestion batch (1000 predictions with SHAP values
    /// and attention weights are about 3 MiB).
    #[arg(long, env = "MLGATE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Seconds a client has to send a request's headers; also how long an
    /// idle keep-alive connection is kept.
    #[arg(long, env = "MLGATE_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,

    /// Seconds a client has to send a request's body.
    #[arg(long, env = "MLGATE_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_secs: u64,

    /// Longest a whole request may take, in milliseconds (then: 504, TIMEOUT).
    #[arg(long, env = "MLGATE_REQUEST_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,

    /// Seconds in-flight requests and WebSockets get to finish after SIGTERM
    /// (WebSockets are closed with 1001 at once); then the process exits.
    #[arg(long, env = "MLGATE_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Most open client connections (WebSockets included); lowered to what
    /// the process's file-descriptor limit allows.
    #[arg(long, env = "MLGATE_MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most operations one batched POST (a JSON array) may hold; 0 refuses
    /// batches. Each operation is checked and rate-limited on its own.
    #[arg(long, env = "MLGATE_MAX_BATCH_OPERATIONS", default_value_t = 10)]
    pub max_batch_operations: u32,
}

/// Persisted documents: Apollo's automatic persisted queries and trusted
/// documents.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Persisted documents")]
pub struct DocumentArgs {
    /// Most documents the automatic-persisted-query cache holds (least
    /// recently used go first); 0 turns APQ off (PersistedQueryNotSupported).
    #[arg(long, env = "MLGATE_APQ_MAX_ENTRIES", default_value_t = DocumentSettings::DEFAULT_APQ_ENTRIES as u64)]
    pub apq_max_entries: u64,

    /// Most bytes of document text the automatic-persisted-query cache holds.
    #[arg(long, env = "MLGATE_APQ_MAX_BYTES", default_value_t = DocumentSettings::DEFAULT_APQ_BYTES as u64)]
    pub apq_max_bytes: u64,

    /// A manifest of trusted documents: `{id: document}` (graphql-codegen's
    /// persisted documents, Relay's persisted_queries.json) or Apollo's
    /// persisted query manifest.
    #[arg(long, env = "MLGATE_TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<PathBuf>,

    /// off: the manifest is not used; allow: its documents may be named by
    /// documentId, others run too; require: only its documents run.
    /// Default: require when a manifest is given, else off.
    #[arg(long, env = "MLGATE_TRUSTED_DOCUMENTS_MODE", value_enum)]
    pub trusted_documents_mode: Option<TrustMode>,

    /// Under `require`, let admins run any document (the playground, say).
    #[arg(long, env = "MLGATE_TRUSTED_DOCUMENTS_EXEMPT_ADMINS", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub trusted_documents_exempt_admins: bool,
}

impl DocumentArgs {
    /// The documents' settings, the manifest read and checked.
    pub fn settings(&self) -> anyhow::Result<DocumentSettings> {
        let trusted = match &self.trusted_documents {
            Some(path) => Some(Arc::new(TrustedDocuments::load(path)?)),
            None => None,
        };
        let mode = self.trusted_documents_mode.unwrap_or(if trusted.is_some() {
            TrustMode::Require
        } else {
            TrustMode::Off
        });
        anyhow::ensure!(
            mode == TrustMode::Off || trusted.is_some(),
            "--trusted-documents-mode {mode:?} needs a manifest (--trusted-documents)"
        );
        Ok(DocumentSettings {
            apq: self.apq_max_entries > 0,
            apq_max_entries: self.apq_max_entries as usize,
            apq_max_bytes: self.apq_max_bytes as usize,
            trusted,
            mode,
            exempt_admins: self.trusted_documents_exempt_admins,
        })
    }
}

/// Bulk ingestion (`POST /ingest/predictions`, `/ingest/drift-metrics`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Bulk ingestion")]
pub struct IngestArgs {
    /// Largest body a bulk load may send, in bytes, after decompression
    /// (then 413 and nothing written). Read as it arrives, never held whole.
    #[arg(long, env = "MLGATE_INGEST_MAX_BYTES", default_value_t = IngestSettings::DEFAULT_MAX_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_max_bytes: u64,

    /// Longest line of a bulk load, in bytes (a longer one is refused).
    #[arg(long, env = "MLGATE_INGEST_MAX_LINE_BYTES", default_value_t = IngestSettings::DEFAULT_MAX_LINE_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_max_line_bytes: u64,

    /// Most drift metrics one bulk load may hold (a load of more is refused
    /// whole). Unlike predictions, a drift load is held until its end.
    #[arg(long, env = "MLGATE_INGEST_MAX_DRIFT_METRICS", default_value_t = DriftLimits::DEFAULT_MAX_ITEMS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_max_drift_metrics: u64,

    /// Most memory, in bytes, the checked drift metrics of one bulk load may
    /// hold, estimated from their parsed form, which takes several times
    /// their text (a load past it is refused whole).
    #[arg(long, env = "MLGATE_INGEST_MAX_DRIFT_BYTES", default_value_t = DriftLimits::DEFAULT_MAX_HELD_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_max_drift_bytes: u64,
}

/// The WebSocket transport.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "WebSocket")]
pub struct WsArgs {
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

    /// Most open WebSocket connections per credential (then: close 1008).
    #[arg(long, env = "MLGATE_WS_MAX_SOCKETS_PER_CREDENTIAL", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_max_sockets_per_credential: u32,

    /// Most operations running at once on one WebSocket connection.
    #[arg(long, env = "MLGATE_WS_MAX_SUBSCRIPTIONS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_max_subscriptions: u32,
}

/// Bounds on documents, lists, writes and answers.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Query limits")]
pub struct LimitArgs {
    /// Most items one batch write (`recordPredictions`, `recordDriftMetrics`) takes.
    #[arg(long, env = "MLGATE_MAX_WRITE_BATCH", default_value_t = WriteLimits::MAX_BATCH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_write_batch: usize,

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
    /// fields inside a list (so nested page sizes multiply), times the groups,
    /// features or models an analytics field may return.
    #[arg(long, env = "MLGATE_MAX_QUERY_COMPLEXITY", default_value_t = QueryLimits::MAX_COMPLEXITY)]
    pub max_query_complexity: usize,

    /// Most lexical tokens a document may have (send large inputs as variables).
    #[arg(long, env = "MLGATE_MAX_TOKENS", default_value_t = QueryLimits::MAX_TOKENS)]
    pub max_tokens: usize,

    /// Deepest nesting of lists and objects in one input value (a literal, a
    /// variable's default or a variable).
    #[arg(long, env = "MLGATE_MAX_VALUE_DEPTH", default_value_t = QueryLimits::MAX_VALUE_DEPTH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100))]
    pub max_value_depth: usize,

    /// Most aliased fields in a document (fragments counted where spread).
    #[arg(long, env = "MLGATE_MAX_ALIASES", default_value_t = QueryLimits::MAX_ALIASES)]
    pub max_aliases: usize,

    /// Most directives in a document.
    #[arg(long, env = "MLGATE_MAX_DIRECTIVES", default_value_t = QueryLimits::MAX_DIRECTIVES)]
    pub max_directives: usize,

    /// Most fields one operation selects on its root type.
    #[arg(long, env = "MLGATE_MAX_ROOT_FIELDS", default_value_t = QueryLimits::MAX_ROOT_FIELDS)]
    pub max_root_fields: usize,

    /// Most errors listed in one answer; the rest are counted in one more error.
    #[arg(long, env = "MLGATE_MAX_ERRORS", default_value_t = ResponseLimits::MAX_ERRORS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_errors: usize,

    /// Largest answer (or WebSocket message), in bytes; a larger one is
    /// replaced by a RESPONSE_TOO_LARGE error.
    #[arg(long, env = "MLGATE_MAX_RESPONSE_BYTES", default_value_t = ResponseLimits::MAX_BYTES)]
    pub max_response_bytes: usize,

    /// Who may introspect the schema: `on` (everyone), `off` (nobody) or
    /// `admin` (admin credentials only). Field suggestions ("Did you mean …")
    /// are shown only when `on`. Production: `admin` or `off`.
    #[arg(long, env = "MLGATE_INTROSPECTION", value_enum, default_value_t = IntrospectionArg::On)]
    pub introspection: IntrospectionArg,
}

/// Time budgets, connection shares and limits of the database.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database budgets")]
pub struct DbBudgetArgs {
    /// Time budget of a read transaction's statements, in milliseconds.
    #[arg(long, env = "MLGATE_READ_BUDGET_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_budget_ms: u64,

    /// Time budget of an analytics transaction's statements, in milliseconds.
    #[arg(long, env = "MLGATE_ANALYTICS_BUDGET_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub analytics_budget_ms: u64,

    /// Time budget of a write transaction's statements, in milliseconds.
    #[arg(long, env = "MLGATE_WRITE_BUDGET_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_budget_ms: u64,

    /// Time budget of a bulk load's statements (`/ingest`), in milliseconds:
    /// its `COPY` lasts as long as the upload.
    #[arg(long, env = "MLGATE_INGEST_BUDGET_MS", default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_budget_ms: u64,

    /// Longest wait for a lock (PostgreSQL `lock_timeout`; SQLite's busy
    /// timeout for the write lock), in milliseconds.
    #[arg(long, env = "MLGATE_LOCK_BUDGET_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub lock_budget_ms: u64,

    /// Longest a transaction may stay idle between statements (PostgreSQL), in milliseconds.
    #[arg(long, env = "MLGATE_IDLE_IN_TRANSACTION_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_in_transaction_ms: u64,

    /// SQLite: the most the database file may grow to, in MiB; writes past
    /// it are refused (503 UNAVAILABLE) as on a full disk, and nothing
    /// acknowledged is lost. Unbounded when not given.
    #[arg(long, env = "MLGATE_SQLITE_MAX_SIZE_MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub sqlite_max_size_mb: Option<u64>,

    /// Seconds to keep retrying, with backoff, when the database cannot be
    /// reached at start (then exit with the cause); 0: try once.
    #[arg(long, env = "MLGATE_DB_CONNECT_RETRY_SECS", default_value_t = 30)]
    pub db_connect_retry_secs: u64,

    /// Connections of the separate pool that looks up API keys (0: share the main pool).
    #[arg(long, env = "MLGATE_DB_AUTH_CONNECTIONS", default_value_t = DbSettings::DEFAULT_AUTH_CONNECTIONS)]
    pub db_auth_connections: u32,

    /// Longest time opening one database connection may take, in
    /// milliseconds (a dead network path otherwise hangs a connect for minutes).
    #[arg(long, env = "MLGATE_DB_CONNECT_TIMEOUT_MS", default_value_t = DbSettings::DEFAULT_CONNECT_TIMEOUT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub db_connect_timeout_ms: u64,

    /// A pooled PostgreSQL connection idle for at least this many
    /// milliseconds is pinged before it is handed out (0: always). One used
    /// more recently is not; a statement that finds it broken is sent again
    /// on another connection.
    #[arg(long, env = "MLGATE_DB_PING_IDLE_MS", default_value_t = DbSettings::DEFAULT_CONNECTION_PING_IDLE.as_millis() as u64)]
    pub db_ping_idle_ms: u64,

    /// Longest wait for a database connection, or for the tenant's share of
    /// them, in milliseconds (then: 503 OVERLOADED or 429 RATE_LIMITED).
    #[arg(long, env = "MLGATE_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub db_acquire_timeout_ms: u64,

    /// Most of the database pool one tenant's transactions hold at once, in
    /// percent (rounded up to whole connections, at least one).
    #[arg(long, env = "MLGATE_TENANT_DB_SHARE", default_value_t = DbSettings::DEFAULT_TENANT_SHARE_PERCENT, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub tenant_db_share: u32,

    /// Most of the database pool one tenant's analytics (long scans) hold at
    /// once, in percent (rounded up, at least one): dashboards keep the rest.
    #[arg(long, env = "MLGATE_TENANT_ANALYTICS_SHARE", default_value_t = DbSettings::DEFAULT_TENANT_ANALYTICS_PERCENT, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub tenant_analytics_share: u32,

    /// PostgreSQL: parallel workers each step of a tenant's statement may
    /// start (`max_parallel_workers_per_gather`, within the server's
    /// `max_parallel_workers`). Each takes a core outside the tenant's share
    /// of the pool; raise it on a database server with cores to spare.
    #[arg(long, env = "MLGATE_DB_PARALLEL_WORKERS", default_value_t = DbSettings::DEFAULT_PARALLEL_WORKERS, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub db_parallel_workers: u32,

    /// PostgreSQL: answer analytics from the rollups the triggers keep
    /// (`on`), or scan the rows (`off`, e.g. while rollups a bulk load
    /// bypassed are rebuilt with `mlgate rollups rebuild`).
    #[arg(long, env = "MLGATE_ANALYTICS_ROLLUPS", value_enum, default_value_t = Switch::On)]
    pub analytics_rollups: Switch,
}

/// A feature turned on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Rates, in-flight caps and the failed-authentication throttle.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Admission")]
pub struct AdmissionArgs {
    /// Most requests of one tenant in flight at once (HTTP requests and
    /// WebSocket queries and mutations); 0 for no cap.
    #[arg(long, env = "MLGATE_TENANT_MAX_IN_FLIGHT", default_value_t = AdmissionSettings::DEFAULT_TENANT_IN_FLIGHT)]
    pub tenant_max_in_flight: u32,

    /// Most requests of one credential (API key or JWT subject) in flight at
    /// once, within its tenant's; 0 for no cap.
    #[arg(long, env = "MLGATE_CREDENTIAL_MAX_IN_FLIGHT", default_value_t = AdmissionSettings::DEFAULT_CREDENTIAL_IN_FLIGHT)]
    pub credential_max_in_flight: u32,

    /// How long a request waits for its tenant's in-flight slot before it
    /// is refused (429 RATE_LIMITED), in milliseconds.
    #[arg(long, env = "MLGATE_ADMISSION_WAIT_MS", default_value_t = 2_000)]
    pub admission_wait_ms: u64,

    /// Requests per second one credential (API key or JWT subject) may send
    /// on average; 0 for no limit.
    #[arg(long, env = "MLGATE_CREDENTIAL_RATE", default_value_t = AdmissionSettings::DEFAULT_CREDENTIAL_RATE)]
    pub credential_rate: u32,

    /// Requests one credential may send at once above its rate.
    #[arg(long, env = "MLGATE_CREDENTIAL_BURST", default_value_t = AdmissionSettings::DEFAULT_CREDENTIAL_BURST)]
    pub credential_burst: u32,

    /// Requests per second one tenant (all its credentials) may send on
    /// average; 0 for no limit.
    #[arg(long, env = "MLGATE_TENANT_RATE", default_value_t = AdmissionSettings::DEFAULT_TENANT_RATE)]
    pub tenant_rate: u32,

    /// Requests one tenant may send at once above its rate.
    #[arg(long, env = "MLGATE_TENANT_BURST", default_value_t = AdmissionSettings::DEFAULT_TENANT_BURST)]
    pub tenant_burst: u32,

    /// Refused credentials per second one client address may present on
    /// average before it is answered 429 without a check; 0 for no limit.
    #[arg(long, env = "MLGATE_FAILED_AUTH_RATE", default_value_t = AdmissionSettings::DEFAULT_FAILED_AUTH_RATE)]
    pub failed_auth_rate: u32,

    /// Refused credentials one client address may present at once above that rate.
    #[arg(long, env = "MLGATE_FAILED_AUTH_BURST", default_value_t = AdmissionSettings::DEFAULT_FAILED_AUTH_BURST)]
    pub failed_auth_burst: u32,
}

/// Cross-origin access from browsers (CORS) to `/graphql`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Browsers (CORS)")]
pub struct CorsArgs {
    /// Origins whose pages may call `/graphql` (`https://dash.example.com`;
    /// repeat or separate with commas; `*` alone for any). None by default:
    /// no CORS headers are sent and browsers keep other origins out.
    #[arg(
        long = "cors-origin",
        env = "MLGATE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Methods a cross-origin request may use.
    #[arg(
        long,
        env = "MLGATE_CORS_METHODS",
        value_delimiter = ',',
        default_value = "GET,POST"
    )]
    pub cors_methods: Vec<String>,

    /// Request headers a cross-origin request may send.
    #[arg(
        long,
        env = "MLGATE_CORS_HEADERS",
        value_delimiter = ',',
        default_value = "authorization,content-type,x-request-id"
    )]
    pub cors_headers: Vec<String>,

    /// Let cross-origin requests carry cookies or HTTP authentication (not with `*`).
    #[arg(long, env = "MLGATE_CORS_ALLOW_CREDENTIALS", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub cors_allow_credentials: bool,

    /// Seconds a browser may keep a preflight's answer.
    #[arg(long, env = "MLGATE_CORS_MAX_AGE_SECS", default_value_t = 600)]
    pub cors_max_age_secs: u64,
}

impl CorsArgs {
    /// The CORS settings, checked: `*` with credentials, or a malformed
    /// origin, method or header name, is refused at start.
    pub fn settings(&self) -> anyhow::Result<CorsSettings> {
        let settings = CorsSettings {
            origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            methods: self.cors_methods.clone(),
            headers: self.cors_headers.clone(),
            allow_credentials: self.cors_allow_credentials,
            max_age: Duration::from_secs(self.cors_max_age_secs),
        };
        settings.layer().map_err(anyhow::Error::msg)?;
        Ok(settings)
    }
}

/// A listen address: `host:port`, or `:port` for every interface.
fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    let with_host = match value.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => value.to_owned(),
    };
    with_host.parse().map_err(|_| {
        format!("`{value}` is not `host:port` or `:port` (e.g. 127.0.0.1:8080, :8080)")
    })
}

/// Who may introspect the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntrospectionArg {
    On,
    Off,
    Admin,
}

impl ServeArgs {
    /// How this gateway evaluates drift monitors.
    pub fn monitors(&self) -> crate::monitors::MonitorSettings {
        crate::monitors::MonitorSettings {
            poll: (self.monitor_poll_ms > 0).then(|| Duration::from_millis(self.monitor_poll_ms)),
            webhooks: crate::monitors::webhooks::DeliverySettings {
                private_addresses: self.webhook_private_addresses,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// How often live alert feeds look at the outbox unprompted.
    pub fn alert_sweep(&self) -> Duration {
        Duration::from_secs(self.alert_sweep_secs)
    }

    /// What the transport is configured with; refuses CORS settings that
    /// would open the API wider than meant.
    pub fn transport(&self) -> anyhow::Result<TransportSettings> {
        Ok(TransportSettings {
            http: self.http.settings(),
            ws: self.ws.settings(self.http.max_body_bytes),
            ingest: IngestSettings {
                max_bytes: self.ingest.ingest_max_bytes as usize,
                max_line_bytes: self.ingest.ingest_max_line_bytes as usize,
                drift: DriftLimits {
                    max_items: self.ingest.ingest_max_drift_metrics as usize,
                    max_held_bytes: self.ingest.ingest_max_drift_bytes as usize,
                },
                // A pause of the body as long as a whole body may take elsewhere.
                read_timeout: Duration::from_secs(self.http.body_timeout_secs),
                deadline: Duration::from_millis(self.db.ingest_budget_ms),
            },
            documents: self.documents.settings()?,
            limits: self.limits.query(),
            response: self.limits.response(),
            introspection: self.limits.introspection(),
            playground: self.playground,
            cors: self.cors.settings()?,
        })
    }
}

/// `--jwt-role-map`: provider role → mlgate role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleMap(pub Vec<(String, Role)>);

fn parse_role_map(text: &str) -> Result<RoleMap, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not `provider-role=mlgate-role`"))?;
            let from = from.trim();
            if from.is_empty() {
                return Err(format!("`{pair}` names no provider role"));
            }
            Ok((from.to_owned(), to.trim().parse::<Role>()?))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(RoleMap)
}

impl AuthArgs {
    /// How credentials are checked.
    pub fn settings(&self) -> AuthSettings {
        AuthSettings {
            jwt: JwtSettings {
                secret: self.jwt_secret.clone(),
                public_key_file: self.jwt_public_key_file.clone(),
                jwks: self.jwt_jwks_url.clone().map(|url| JwksSettings {
                    url,
                    ttl: Duration::from_secs(self.jwt_jwks_refresh_secs),
                    min_refresh: Duration::from_secs(self.jwt_jwks_min_refresh_secs),
                }),
                issuer: self.jwt_issuer.clone(),
                audience: self.jwt_audience.clone(),
                tenant_claim: self.jwt_tenant_claim.clone(),
                role_claim: self.jwt_role_claim.clone(),
                role_map: self
                    .jwt_role_map
                    .as_ref()
                    .map(|map| map.0.clone())
                    .unwrap_or_default(),
            },
            cache_ttl: Duration::from_secs(self.auth_cache_secs),
        }
    }
}

impl HttpArgs {
    /// HTTP connection hygiene and the request deadline.
    pub fn settings(&self) -> HttpSettings {
        HttpSettings {
            max_body_bytes: self.max_body_bytes,
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_connections: self.max_connections as usize,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            max_batch: self.max_batch_operations as usize,
            counted: true,
        }
    }
}

impl WsArgs {
    /// The WebSocket transport's settings; a message may be as large as a
    /// request body.
    pub fn settings(&self, max_message_bytes: usize) -> WsSettings {
        WsSettings {
            max_message_bytes,
            init_timeout: Duration::from_secs(self.ws_init_timeout_secs.max(1)),
            auth_recheck: Duration::from_secs(self.ws_auth_recheck_secs.max(1)),
            slow_consumer: Duration::from_secs(self.ws_slow_consumer_secs.max(1)),
            max_sockets_per_credential: self.ws_max_sockets_per_credential as usize,
            max_operations: self.ws_max_subscriptions as usize,
        }
    }
}

impl LimitArgs {
    /// The write limits.
    pub fn writes(&self) -> WriteLimits {
        WriteLimits {
            max_batch: self.max_write_batch,
        }
    }

    /// The query limits.
    pub fn query(&self) -> QueryLimits {
        QueryLimits {
            max_depth: self.max_query_depth,
            max_complexity: self.max_query_complexity,
            page: PageLimits {
                default_size: self.default_page_size.min(self.max_page_size),
                max_size: self.max_page_size,
            },
            max_tokens: self.max_tokens,
            max_value_depth: self.max_value_depth,
            max_aliases: self.max_aliases,
            max_directives: self.max_directives,
            max_root_fields: self.max_root_fields,
        }
    }

    /// The bounds on answers.
    pub fn response(&self) -> ResponseLimits {
        ResponseLimits {
            max_errors: self.max_errors,
            max_bytes: self.max_response_bytes,
        }
    }

    /// Who may introspect.
    pub fn introspection(&self) -> Introspection {
        match self.introspection {
            IntrospectionArg::On => Introspection::On,
            IntrospectionArg::Off => Introspection::Off,
            IntrospectionArg::Admin => Introspection::Admin,
        }
    }
}

impl DbBudgetArgs {
    /// The database settings for `database`, with these budgets and shares.
    pub fn settings(&self, database: &DatabaseArgs) -> DbSettings {
        let ms = Duration::from_millis;
        DbSettings {
            url: database.database_url.clone(),
            max_connections: database.db_max_connections,
            auth_connections: self.db_auth_connections,
            acquire_timeout: ms(self.db_acquire_timeout_ms),
            connect_timeout: ms(self.db_connect_timeout_ms),
            tenant_share_percent: self.tenant_db_share,
            tenant_analytics_percent: self.tenant_analytics_share,
            parallel_workers: self.db_parallel_workers,
            rollups: self.analytics_rollups == Switch::On,
            budgets: Budgets {
                read: ms(self.read_budget_ms),
                analytics: ms(self.analytics_budget_ms),
                write: ms(self.write_budget_ms),
                ingest: ms(self.ingest_budget_ms),
                lock: ms(self.lock_budget_ms),
                idle_in_transaction: ms(self.idle_in_transaction_ms),
            },
            // SQLite's default page size is 4 KiB.
            sqlite_max_pages: self.sqlite_max_size_mb.map(|mb| mb * 256),
            connection_lifetime: DbSettings::DEFAULT_CONNECTION_LIFETIME,
            connection_idle: DbSettings::DEFAULT_CONNECTION_IDLE,
            connection_ping_idle: ms(self.db_ping_idle_ms),
        }
    }

    /// How long to keep retrying an unreachable database at start.
    pub fn connect_retry(&self) -> Duration {
        Duration::from_secs(self.db_connect_retry_secs)
    }
}

impl AdmissionArgs {
    /// Rate limits, in-flight caps and the failed-authentication throttle.
    pub fn settings(&self) -> AdmissionSettings {
        AdmissionSettings {
            tenant_in_flight: self.tenant_max_in_flight,
            credential_in_flight: self.credential_max_in_flight,
            wait: Duration::from_millis(self.admission_wait_ms),
            credential: Rate::new(self.credential_rate, self.credential_burst),
            tenant: Rate::new(self.tenant_rate, self.tenant_burst),
            failed_auth: Rate::new(self.failed_auth_rate, self.failed_auth_burst),
        }
    }
}

/// The flags' own defaults, the environment ignored: each default is
/// written once, in its `#[arg]`.
fn flag_defaults<T: Args + FromArgMatches>() -> T {
    let command =
        T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None::<&str>));
    let matches = command
        .try_get_matches_from(["defaults"])
        .expect("every flag has a default");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

macro_rules! defaults_from_flags {
    ($($args:ty),*) => {$(
        impl Default for $args {
            fn default() -> Self {
                flag_defaults()
            }
        }
    )*};
}

defaults_from_flags!(
    ServeArgs,
    AuthArgs,
    HttpArgs,
    WsArgs,
    LimitArgs,
    DbBudgetArgs,
    AdmissionArgs,
    CorsArgs,
    ObservabilityArgs
);

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, MutexGuard};

    /// Parsing reads the environment, and one test sets a variable: the
    /// tests that parse take turns (setting a variable while another thread
    /// reads the environment is a data race).
    static ENVIRONMENT: Mutex<()> = Mutex::new(());

    fn environment() -> MutexGuard<'static, ()> {
        ENVIRONMENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn serve(args: &[&str]) -> ServeArgs {
        let _turn = environment();
        parse(args)
    }

    fn parse(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["mlgate", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Some(Command::Serve(serve)) => *serve,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_flags_defaults_and_ignore_the_environment() {
        // The only test of this crate that sets this variable.
        let turn = environment();
        std::env::set_var("MLGATE_MAX_TOKENS", "7");
        let parsed = parse(&[]);
        let defaults = ServeArgs::default();
        std::env::remove_var("MLGATE_MAX_TOKENS");
        drop(turn);
        assert_eq!(
            parsed.limits.max_tokens, 7,
            "the command line reads the environment"
        );
        assert_eq!(defaults.limits.max_tokens, QueryLimits::MAX_TOKENS);
        assert_eq!(
            defaults.bind,
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert!(defaults.playground);
        assert_eq!(defaults.limits.introspection, IntrospectionArg::On);
        assert_eq!(defaults.http.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(
            defaults.admission.tenant_rate,
            AdmissionSettings::DEFAULT_TENANT_RATE
        );
        assert_eq!(
            defaults.db.tenant_db_share,
            DbSettings::DEFAULT_TENANT_SHARE_PERCENT
        );
        assert_eq!(defaults.auth.jwt_secret, None);
    }

    #[test]
    fn bind_takes_host_and_port_or_a_bare_port() {
        assert_eq!(
            serve(&["--bind", ":8080"]).bind,
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            serve(&["--bind", "127.0.0.1:9"]).bind,
            "127.0.0.1:9".parse().unwrap()
        );
        let _turn = environment();
        assert!(Cli::try_parse_from(["mlgate", "serve", "--bind", "8080"]).is_err());
    }

    #[test]
    fn mlgate_alone_takes_the_serve_flags() {
        let _turn = environment();
        let cli = Cli::try_parse_from(["mlgate", "--bind", ":0", "--playground", "false"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.bind, "0.0.0.0:0".parse().unwrap());
        assert!(!cli.serve.playground);
    }

    #[test]
    fn grouped_flags_keep_their_names() {
        let args = serve(&[
            "--max-tokens",
            "9",
            "--ws-max-subscriptions",
            "3",
            "--tenant-db-share",
            "40",
        ]);
        assert_eq!(args.limits.max_tokens, 9);
        assert_eq!(args.ws.ws_max_subscriptions, 3);
        assert_eq!(args.db.tenant_db_share, 40);
    }

    /// A configuration file in the temp folder, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(text: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "mlgate-config-{}.toml",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn checked(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_checked(args.iter().map(std::ffi::OsString::from).collect())
    }

    /// The server settings `args` run with: `mlgate` alone or `mlgate serve`.
    fn served(args: &[&str]) -> ServeArgs {
        let cli = checked(args).unwrap();
        match cli.command {
            None => cli.serve,
            Some(Command::Serve(serve)) => *serve,
            other => panic!("does not serve: {other:?}"),
        }
    }

    #[test]
    fn flag_beats_variable_beats_file_beats_default_alone_and_with_serve() {
        let _turn = environment();
        let file = TempFile::new(
            "max-tokens = 7\nmax_aliases = 8\nmax-directives = 9\nbind = ':9100'\nplayground = false\ndemo = true\ncors-origin = ['https://a.example', 'https://b.example']\n",
        );
        let path = file.0.to_str().unwrap();
        std::env::set_var("MLGATE_MAX_ALIASES", "80");
        std::env::set_var("MLGATE_MAX_DIRECTIVES", "90");
        let alone = served(&["mlgate", "--config", path, "--max-directives", "900"]);
        let serve = served(&[
            "mlgate",
            "--config",
            path,
            "serve",
            "--max-directives",
            "900",
        ]);
        std::env::remove_var("MLGATE_MAX_ALIASES");
        std::env::remove_var("MLGATE_MAX_DIRECTIVES");
        std::env::set_var("MLGATE_CONFIG", path);
        let by_variable = served(&["mlgate", "serve"]);
        std::env::remove_var("MLGATE_CONFIG");
        let without = served(&["mlgate"]);
        for args in [&alone, &serve] {
            assert_eq!(args.limits.max_tokens, 7, "file over default");
            assert_eq!(args.limits.max_aliases, 80, "variable over file");
            assert_eq!(args.limits.max_directives, 900, "flag over variable");
            assert_eq!(args.bind, "0.0.0.0:9100".parse().unwrap());
            assert!(!args.playground);
            assert!(args.demo, "a switch can be turned on in the file");
            assert_eq!(
                args.cors.cors_origins,
                ["https://a.example", "https://b.example"]
            );
        }
        assert_eq!(
            by_variable.limits.max_tokens, 7,
            "MLGATE_CONFIG names the file"
        );
        assert_eq!(by_variable.limits.max_aliases, 8);
        assert_eq!(without.limits.max_tokens, QueryLimits::MAX_TOKENS);
        assert!(without.playground && !without.demo);
    }

    #[test]
    fn a_file_with_an_unknown_or_invalid_setting_is_refused() {
        let _turn = environment();
        let typo = TempFile::new("max-tokenz = 7\n");
        let error = checked(&["mlgate", "--config", typo.0.to_str().unwrap()]).unwrap_err();
        assert!(
            error.to_string().contains("`max-tokenz` is not a setting"),
            "{error}"
        );
        let invalid = TempFile::new("max-tokens = 'many'\n");
        let error =
            checked(&["mlgate", "--config", invalid.0.to_str().unwrap(), "serve"]).unwrap_err();
        assert!(error.to_string().contains("many"), "{error}");
        let missing = checked(&["mlgate", "--config", "/nonexistent/mlgate.toml"]).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }

    #[test]
    fn config_shows_each_value_with_its_source_and_hides_secrets() {
        let _turn = environment();
        let file = TempFile::new("max-tokens = 7\njwt-secret = 'hunter2'\n");
        std::env::set_var("MLGATE_MAX_ALIASES", "80");
        let cli = checked(&[
            "mlgate",
            "--config",
            file.0.to_str().unwrap(),
            "--database-url",
            "postgres://app:pw@db/mlgate",
            "config",
            "--max-directives",
            "900",
        ])
        .unwrap();
        std::env::remove_var("MLGATE_MAX_ALIASES");
        let shown = cli.effective;
        assert!(shown.contains("max-tokens = 7  # file"), "{shown}");
        assert!(
            shown.contains("max-aliases = 80  # env MLGATE_MAX_ALIASES"),
            "{shown}"
        );
        assert!(shown.contains("max-directives = 900  # flag"), "{shown}");
        assert!(shown.contains("max-root-fields = 25  # default"), "{shown}");
        assert!(
            shown.contains("# jwt-secret = <redacted>  # file"),
            "{shown}"
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains(":pw@"),
            "{shown}"
        );
        // What it prints is a configuration file that gives the same settings.
        let again =
            TempFile::new(&shown.replace("postgres://app:***@db/mlgate", "sqlite::memory:"));
        let reread = served(&["mlgate", "--config", again.0.to_str().unwrap()]);
        assert_eq!(reread.limits.max_directives, 900);
        assert_eq!(reread.limits.max_aliases, 80);
    }
}
