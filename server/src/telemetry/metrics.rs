//! The Prometheus metrics, in one process-wide registry (as Prometheus
//! clients do: one process is one scrape target). Every layer records into
//! [`metrics()`]; the transport serves the text exposition on the metrics
//! listener.
//!
//! Labels are bounded vocabularies only: no tenant, operation name, id or
//! free text is ever a label, so a hostile client cannot grow the series.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label vocabulary: an enum whose values are written in snake case.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $value:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            #[allow(dead_code)]
            pub const ALL: &[Self] = &[$(Self::$variant,)*];
        }

        impl $name {
            #[allow(dead_code)]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value,)*
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                use std::fmt::Write;
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_values! {
    /// How a request reached the server.
    Transport {
        Http => "http",
        Ws => "ws",
        Sse => "sse",
    }
}

label_values! {
    /// The GraphQL operation type, `unknown` when the document never got far
    /// enough to have one (refused before or while parsing).
    Operation {
        Query => "query",
        Mutation => "mutation",
        Subscription => "subscription",
        Ingest => "ingest",
        Unknown => "unknown",
    }
}

label_values! {
    /// How a request ended: `ok` with no error, `error` with GraphQL errors
    /// (partial data included), `refused` when it never ran (credentials,
    /// limits, rates, overload).
    Outcome {
        Ok => "ok",
        Error => "error",
        Refused => "refused",
    }
}

label_values! {
    /// The kind of a database transaction (each has its own time budget).
    TxnLabel {
        Read => "read",
        Analytics => "analytics",
        Write => "write",
        Ingest => "ingest",
    }
}

label_values! {
    /// Which connection pool.
    Pool {
        Main => "main",
        Auth => "auth",
    }
}

label_values! {
    /// Whether a pooled connection is busy.
    ConnectionState {
        Idle => "idle",
        InUse => "in_use",
    }
}

label_values! {
    /// What was ingested.
    Ingested {
        Predictions => "predictions",
        DriftMetrics => "drift_metrics",
    }
}

label_values! {
    /// A drift alert's level.
    AlertLevel {
        Warning => "warning",
        Critical => "critical",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub transport: Transport,
    pub operation: Operation,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub transport: Transport,
    pub operation: Operation,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// One of the server's own error codes (`extensions.code`).
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: TxnLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: Pool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolStateLabels {
    pub pool: Pool,
    pub state: ConnectionState,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionLabels {
    /// The subscription field (`driftAlerts`, `trainingJobUpdates`).
    pub field: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestedLabels {
    pub kind: Ingested,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    pub level: AlertLevel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request latencies: 1 ms to about 65 s.
fn request_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 17,
    ))
}

/// Database waits and statements: 0.1 ms to about 26 s.
fn database_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 19,
    ))
}

/// Every metric mlgate exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Histograms<LatencyLabels>,
    pub errors: Family<CodeLabels, Counter>,
    pub http_connections: Gauge,
    pub ws_connections: Gauge,
    pub subscriptions: Family<SubscriptionLabels, Gauge>,
    pub pool_connections: Family<PoolStateLabels, Gauge>,
    pub pool_max: Family<PoolLabels, Gauge>,
    pub db_waiting: Gauge,
    pub db_acquire: Histograms<KindLabels>,
    pub db_transaction: Histograms<KindLabels>,
    pub db_statement: Histogram,
    pub db_statements: Counter,
    pub db_broken_connections: Counter,
    pub alert_delivery_lag: Histogram,
    pub alerts_delivered: Counter,
    pub outbox_read: Counter,
    pub alert_feeds: Gauge,
    pub alerts_raised: Family<LevelLabels, Counter>,
    pub ingested: Family<IngestedLabels, Counter>,
    pub build: Family<BuildLabels, Gauge>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("mlgate");
        let metrics = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(request_buckets),
            errors: Family::default(),
            http_connections: Gauge::default(),
            ws_connections: Gauge::default(),
            subscriptions: Family::default(),
            pool_connections: Family::default(),
            pool_max: Family::default(),
            db_waiting: Gauge::default(),
            db_acquire: Family::new_with_constructor(database_buckets),
            db_transaction: Family::new_with_constructor(database_buckets),
            db_statement: database_buckets(),
            db_statements: Counter::default(),
            db_broken_connections: Counter::default(),
            alert_delivery_lag: request_buckets(),
            alerts_delivered: Counter::default(),
            outbox_read: Counter::default(),
            alert_feeds: Gauge::default(),
            alerts_raised: Family::default(),
            ingested: Family::default(),
            build: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "GraphQL requests (HTTP requests; WebSocket operations), by outcome",
            metrics.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to answer a GraphQL request (WebSocket: queries and mutations)",
            metrics.request_duration.clone(),
        );
        r.register(
            "graphql_errors",
            "Errors in answers, by extensions.code (refusals included: RATE_LIMITED, OVERLOADED, limits)",
            metrics.errors.clone(),
        );
        r.register(
            "http_connections",
            "Open client connections of the API (WebSockets included; not the metrics listener's)",
            metrics.http_connections.clone(),
        );
        r.register(
            "ws_connections",
            "Open WebSocket connections that passed connection_init",
            metrics.ws_connections.clone(),
        );
        r.register(
            "subscriptions",
            "Running subscriptions, by field",
            metrics.subscriptions.clone(),
        );
        r.register(
            "db_pool_connections",
            "Database connections of a pool, idle or in use",
            metrics.pool_connections.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "Most connections a pool opens",
            metrics.pool_max.clone(),
        );
        r.register(
            "db_waiting_transactions",
            "Transactions waiting for their tenant's share of the pool or a connection",
            metrics.db_waiting.clone(),
        );
        r.register(
            "db_acquire_seconds",
            "Time from asking for a transaction to having it (share, connection, BEGIN, tenant set) or giving up",
            metrics.db_acquire.clone(),
        );
        r.register(
            "db_transaction_seconds",
            "Time a tenant transaction is open, by kind",
            metrics.db_transaction.clone(),
        );
        r.register(
            "db_statement_seconds",
            "Time of each SQL statement",
            metrics.db_statement.clone(),
        );
        r.register(
            "db_statements",
            "SQL statements run",
            metrics.db_statements.clone(),
        );
        r.register(
            "db_broken_connections",
            "Pooled connections found broken by the first statement sent on them (the statement then ran on another)",
            metrics.db_broken_connections.clone(),
        );
        r.register(
            "alert_delivery_lag_seconds",
            "Time from a drift alert's commit to its delivery to a subscriber",
            metrics.alert_delivery_lag.clone(),
        );
        r.register(
            "alerts_delivered",
            "Drift alerts delivered to subscribers",
            metrics.alerts_delivered.clone(),
        );
        // Outbox events are numbered per tenant, so this process's progress
        // is a count of what it has read, not one event number.
        r.register(
            "alert_outbox_events_read",
            "Alert outbox events this process has read, by its live feeds and by subscribers catching up (an event may be read by both)",
            metrics.outbox_read.clone(),
        );
        r.register(
            "alert_feeds",
            "Tenants with a live alert feed on this process",
            metrics.alert_feeds.clone(),
        );
        r.register(
            "alerts_raised",
            "Drift alerts raised by writes through this process, by level",
            metrics.alerts_raised.clone(),
        );
        r.register(
            "ingested_rows",
            "Rows ingested (retried duplicates not counted), by kind",
            metrics.ingested.clone(),
        );
        r.register(
            "build_info",
            "Always 1; the running version as a label",
            metrics.build.clone(),
        );
        // Every series of a closed label set exists from the start at zero,
        // so that `rate()` and absence alerts see it before its first event.
        for &transport in Transport::ALL {
            for &operation in Operation::ALL {
                for &outcome in Outcome::ALL {
                    let _ = metrics.requests.get_or_create(&RequestLabels {
                        transport,
                        operation,
                        outcome,
                    });
                }
                let _ = metrics.request_duration.get_or_create(&LatencyLabels {
                    transport,
                    operation,
                });
            }
        }
        for &kind in TxnLabel::ALL {
            let _ = metrics.db_acquire.get_or_create(&KindLabels { kind });
            let _ = metrics.db_transaction.get_or_create(&KindLabels { kind });
        }
        for &kind in Ingested::ALL {
            let _ = metrics.ingested.get_or_create(&IngestedLabels { kind });
        }
        for &level in AlertLevel::ALL {
            let _ = metrics.alerts_raised.get_or_create(&LevelLabels { level });
        }
        metrics
            .build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        Self {
            registry,
            ..metrics
        }
    }

    /// The text exposition format (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }

    /// Counts one finished request, without timing it (a subscription's
    /// lifetime is not a latency).
    pub fn count_request(&self, transport: Transport, operation: Operation, outcome: Outcome) {
        self.requests
            .get_or_create(&RequestLabels {
                transport,
                operation,
                outcome,
            })
            .inc();
    }

    /// Counts one finished request and times it.
    pub fn request(
        &self,
        transport: Transport,
        operation: Operation,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        self.count_request(transport, operation, outcome);
        self.request_duration
            .get_or_create(&LatencyLabels {
                transport,
                operation,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Creates the error series of every code at zero (the codes are the
    /// error layer's, above this one).
    pub fn know_codes(&self, codes: &[&'static str]) {
        for &code in codes {
            let _ = self.errors.get_or_create(&CodeLabels { code });
        }
    }

    /// Creates the series of each subscription field at zero.
    pub fn know_subscriptions(&self, fields: &[&'static str]) {
        for &field in fields {
            let _ = self
                .subscriptions
                .get_or_create(&SubscriptionLabels { field });
        }
    }

    /// Counts one error of an answer.
    pub fn error(&self, code: &'static str) {
        self.errors.get_or_create(&CodeLabels { code }).inc();
    }

    pub fn ingested(&self, kind: Ingested, rows: u64) {
        if rows > 0 {
            self.ingested
                .get_or_create(&IngestedLabels { kind })
                .inc_by(rows);
        }
    }

    pub fn alert_raised(&self, level: AlertLevel) {
        self.alerts_raised
            .get_or_create(&LevelLabels { level })
            .inc();
    }

    /// Keeps `gauge` one higher until the guard is dropped.
    pub fn hold(gauge: &Gauge) -> Held {
        gauge.inc();
        Held(gauge.clone())
    }
}

/// One count of a gauge, taken back on drop.
pub struct Held(Gauge);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}
