//! Building and running the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::db::{redact_url, Database, DbSettings};
use crate::events::Events;
use crate::graphql::build_schema;
use crate::ops::demo::{self, DemoSummary};
use crate::transport::{
    metrics_router, router, serve, Admission, AppState, HttpSettings, Shutdown,
};

pub struct Application {
    listener: TcpListener,
    /// The metrics listener, when `--metrics-bind` asks for one.
    metrics: Option<TcpListener>,
    router: Router,
    db: Database,
    http: HttpSettings,
    shutdown: Shutdown,
    demo: Option<DemoSummary>,
    /// Evaluates due drift monitors until the application stops.
    monitors: Option<crate::monitors::Evaluator>,
}

impl Application {
    /// Connects, migrates (unless turned off), seeds demo data if asked, and
    /// binds the listening socket. The server answers once `run_*` is awaited.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let started = Instant::now();
        // Settings first: a refused one must not wait for the database.
        let transport = config.serve.transport()?;
        let db = connect(
            &config.serve.db.settings(&config.database),
            config.serve.db.connect_retry(),
        )
        .await?;
        if !config.serve.no_migrate {
            db.migrate_up().await?;
        } else {
            // Serving a schema older than the code fails later, field by
            // field, as INTERNAL errors: refuse now, with the cause.
            let pending = db.pending_migrations().await?;
            anyhow::ensure!(
                pending.is_empty(),
                "--no-migrate, but {} migrations are pending ({}): run `mlgate migrate up` first",
                pending.len(),
                pending.join(", ")
            );
        }
        let demo = if config.serve.demo {
            let key_file = demo::key_file_for(&config.database.database_url);
            let bar = indicatif::ProgressBar::hidden();
            Some(demo::seed(&db, &config.demo, key_file.as_deref(), &bar).await?)
        } else {
            None
        };
        let events = Events::start(&db, config.serve.alert_sweep());
        let monitors = crate::monitors::start(db.clone(), events.clone(), config.serve.monitors());
        let auth = Authenticator::new(
            db.clone(),
            &config.serve.auth.settings(),
            events.revocations_current(),
        )?;
        // A revoked key leaves the credential cache before the revoking
        // answer is sent (and, via notifications, on every other process).
        let forget = auth.clone();
        events.on_revocation(move |key| match key {
            Some(key) => forget.forget_key(key),
            None => forget.forget_all(),
        });
        let state = AppState::new(
            build_schema(
                transport.limits,
                config.serve.limits.writes(),
                transport.introspection,
            ),
            db.clone(),
            auth,
            events,
            Admission::new(config.serve.admission.settings()),
            transport.clone(),
        );
        let listener = TcpListener::bind(config.serve.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.serve.bind))?;
        let metrics = match config.serve.observability.metrics_bind {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {address}: {e}"))?,
            ),
            None => None,
        };
        let metrics_address = match &metrics {
            Some(listener) => listener.local_addr()?.to_string(),
            None => "off".to_owned(),
        };
        tracing::info!(
            address = %listener.local_addr()?,
            metrics = %metrics_address,
            database = %redact_url(&config.database.database_url),
            backend = ?db.backend(),
            startup_ms = started.elapsed().as_millis() as u64,
            "mlgate ready"
        );
        Ok(Self {
            shutdown: state.shutdown.clone(),
            router: router(state),
            listener,
            metrics,
            db,
            http: transport.http,
            demo,
            monitors,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// Where `/metrics` is served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(|l| l.local_addr().expect("a bound socket has an address"))
    }

    /// The database pool the server uses (for its statement count).
    pub fn database(&self) -> Database {
        self.db.clone()
    }

    /// What `--demo` created, with the demo API keys.
    pub fn demo(&self) -> Option<&DemoSummary> {
        self.demo.as_ref()
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then finishes in-flight requests. All
    /// of the stopping (connections, the metrics listener, the pool) fits in
    /// the shutdown grace period: what is not done by then is left to exit.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.http.shutdown_grace;
        let stopping_since = Arc::new(std::sync::OnceLock::new());
        let stop = {
            let since = stopping_since.clone();
            async move {
                stop.await;
                let _ = since.set(Instant::now());
            }
        };
        let left = move || {
            stopping_since.get().map_or(grace, |since: &Instant| {
                grace.saturating_sub(since.elapsed())
            })
        };
        // The metrics listener stops with the API's, after it.
        let (stopped, stopping) = tokio::sync::watch::channel(false);
        let metrics = self.metrics.map(|listener| {
            let settings = HttpSettings {
                max_connections: 64,
                shutdown_grace: Duration::from_secs(1),
                counted: false,
                ..HttpSettings::default()
            };
            let mut stopping = stopping.clone();
            tokio::spawn(serve(
                listener,
                metrics_router(self.db.clone()),
                settings,
                Shutdown::default(),
                async move {
                    let _ = stopping.wait_for(|stopped| *stopped).await;
                },
            ))
        });
        serve(self.listener, self.router, self.http, self.shutdown, stop).await?;
        drop(self.monitors);
        stopped.send_replace(true);
        if let Some(metrics) = metrics {
            let _ = tokio::time::timeout(left(), metrics).await;
        }
        tracing::info!("mlgate stopped");
        // Connections stuck on a dead network path would keep the pool from
        // closing: it gets what is left of the grace period, then the process
        // exits regardless.
        if tokio::time::timeout(left(), self.db.close()).await.is_err() {
            tracing::warn!("database connections still busy at exit; leaving them");
        }
        Ok(())
    }
}

/// Connects, retrying with backoff while the database is not reachable for
/// up to `retry_for` (a gateway often starts before its database), then
/// gives up with the real cause ("connection refused", a DNS failure, …).
pub(crate) async fn connect(
    settings: &DbSettings,
    retry_for: Duration,
) -> anyhow::Result<Database> {
    let url = redact_url(&settings.url);
    let started = Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        // The pool only says it timed out; a direct connection says why.
        let attempt = match Database::connect_with(settings).await {
            Ok(db) => Ok(db),
            Err(e) => Err(Database::probe(&settings.url, settings.connect_timeout)
                .await
                .err()
                .unwrap_or_else(|| e.to_string())),
        };
        match attempt {
            Ok(db) => return Ok(db),
            Err(cause) if started.elapsed() + pause < retry_for => {
                tracing::warn!(database = %url, cause = %cause, retry_in_ms = pause.as_millis() as u64, "database not reachable yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(cause) => anyhow::bail!("cannot connect to {url}: {cause}"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
