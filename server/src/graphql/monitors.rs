//! Monitors (`admin`): standing drift analyses or feedback quality
//! measures the gateways evaluate on a schedule; each evaluation is an
//! `ml_drift_metrics` row, and a notification is an alert (`driftAlerts`)
//! and, when asked, a webhook delivery and a queued training job.

use async_graphql::{Context, Enum, InputObject, Object, OneofObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::monitor;

use super::analytics::{DriftMethod, DriftSignal};
use super::drift::AlertLevel;
use super::request_context;
use crate::domain::drift::{Method, Quality, ReferenceKind, SignalKind, ThresholdKind as Kind};
use crate::domain::Vocabulary;
use crate::error::ApiError;
use crate::identity::can;
use crate::store::filter::invalid;
use crate::write::monitors::{self as write, Measure, MonitorChanges, MonitorSpec, Reference};
use crate::write::webhooks;

/// Where a monitor's thresholds come from.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum ThresholdKind {
    /// `warning` and `critical` are the measure's values. For precision,
    /// recall and F1 lower is worse: `warning ≥ critical` (e.g. 0.8 and
    /// 0.7), a value at or below `warning` is a `WARNING`, below
    /// `critical` a `CRITICAL`.
    Fixed,
    /// `warning` and `critical` are `k` in `mean ± k·σ` over reference
    /// chunks (each as long as the current window, the last `chunks` of
    /// them), as NannyML derives thresholds: for a drift statistic, each
    /// chunk's statistic against the whole reference (`mean + k·σ`); for a
    /// quality measure, each chunk's own value (`mean − k·σ` for precision,
    /// recall and F1, `+` for calibration error). Needs a time reference
    /// (not `modelVersion`).
    Sigma,
}

/// A model quality measure observed through feedback (each prediction's
/// outcome from its latest feedback, as in `modelPerformance`).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum QualityMeasure {
    /// TP / (TP + FP) at the decision threshold. Lower is worse.
    Precision,
    /// TP / (TP + FN). Lower is worse.
    Recall,
    /// 2TP / (2TP + FP + FN). Lower is worse.
    F1,
    /// Expected calibration error over ten equal-width bins (as
    /// `Calibration.expectedCalibrationError`). Higher is worse.
    CalibrationError,
}

impl From<QualityMeasure> for Quality {
    fn from(q: QualityMeasure) -> Self {
        match q {
            QualityMeasure::Precision => Quality::Precision,
            QualityMeasure::Recall => Quality::Recall,
            QualityMeasure::F1 => Quality::F1,
            QualityMeasure::CalibrationError => Quality::CalibrationError,
        }
    }
}

impl From<Quality> for QualityMeasure {
    fn from(q: Quality) -> Self {
        match q {
            Quality::Precision => QualityMeasure::Precision,
            Quality::Recall => QualityMeasure::Recall,
            Quality::F1 => QualityMeasure::F1,
            Quality::CalibrationError => QualityMeasure::CalibrationError,
        }
    }
}

/// What a quality monitor watches in its current window: predictions made
/// in it that have an outcome by the time of the evaluation. A window where
/// the measure is undefined (precision with no "violation" decision, recall
/// with no violation, either below `minimumOutcomes`) is not measured: no
/// metric, no breach.
#[derive(InputObject, Clone, Copy, Debug)]
#[graphql(name = "QualityMonitorInput")]
pub struct QualityInput {
    pub measure: QualityMeasure,
    /// A prediction decides "violation" at or above it.
    #[graphql(default = 0.5)]
    pub decision_threshold: f64,
    /// A window with fewer predictions with an outcome is not measured
    /// (no metric, no breach): small samples make noisy rates.
    #[graphql(default = 30)]
    pub minimum_outcomes: i32,
}

#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct QualityMonitor {
    pub measure: QualityMeasure,
    pub decision_threshold: f64,
    pub minimum_outcomes: i32,
}

#[derive(InputObject, Clone, Copy, Debug)]
pub struct MonitorThresholdsInput {
    pub kind: ThresholdKind,
    pub warning: f64,
    pub critical: f64,
    /// Reference chunks for `SIGMA` (2–50).
    #[graphql(default = 10)]
    pub chunks: i32,
}

/// A fixed reference window.
#[derive(InputObject, Clone, Debug)]
pub struct FixedWindowInput {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// What the current window is compared with: exactly one of these.
#[derive(OneofObject, Clone, Debug)]
pub enum MonitorReferenceInput {
    /// A fixed time window.
    Fixed(FixedWindowInput),
    /// The span of this many seconds right before the current window.
    RollingSeconds(i64),
    /// This model version's predictions in the current window (champion
    /// against the current window's challenger).
    ModelVersion(String),
}

#[derive(InputObject, Clone, Copy, Debug)]
pub struct NoiseControlInput {
    /// Consecutive breaches (at least `warning`) before the monitor fires.
    #[graphql(default = 1)]
    pub breaches_to_fire: i32,
    /// Evaluations it keeps firing after the breaches stop.
    #[graphql(default = 0)]
    pub keep_firing: i32,
    /// Least seconds between two notifications.
    #[graphql(default = 0)]
    pub cooldown_seconds: i64,
}

impl Default for NoiseControlInput {
    fn default() -> Self {
        Self {
            breaches_to_fire: 1,
            keep_firing: 0,
            cooldown_seconds: 0,
        }
    }
}

#[derive(InputObject, Clone, Copy, Debug)]
pub struct RetrainingInput {
    /// Queue a training job when the monitor notifies (`DRIFT_DETECTED`,
    /// or `FEEDBACK_THRESHOLD` for a quality monitor).
    pub queue: bool,
    /// Least seconds between two queued jobs (default a day).
    #[graphql(default = 86400)]
    pub cooldown_seconds: i64,
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateMonitorInput {
    pub monitor_id: String,
    pub model_id: String,
    /// The signal of a drift monitor (with `method`; not with `quality`).
    pub signal: Option<DriftSignal>,
    /// The feature, for a `SHAP` monitor.
    pub feature: Option<String>,
    /// The statistic of a drift monitor (with `signal`).
    pub method: Option<DriftMethod>,
    /// What a quality monitor watches (instead of `signal` and `method`).
    pub quality: Option<QualityInput>,
    pub reference: MonitorReferenceInput,
    /// The current window: the seconds before each evaluation.
    pub current_seconds: i64,
    /// Only this version's predictions in the current window.
    pub current_model_version: Option<String>,
    /// Seconds between evaluations; the first is one interval after creation.
    pub interval_seconds: i64,
    pub thresholds: MonitorThresholdsInput,
    pub noise: Option<NoiseControlInput>,
    pub retraining: Option<RetrainingInput>,
    /// Deliver each notification to the tenant's webhook (`setWebhook`).
    #[graphql(default = false)]
    pub notify_webhook: bool,
    #[graphql(default = true)]
    pub enabled: bool,
}

#[derive(InputObject, Clone, Debug)]
pub struct UpdateMonitorInput {
    pub monitor_id: String,
    pub enabled: Option<bool>,
    pub interval_seconds: Option<i64>,
    pub thresholds: Option<MonitorThresholdsInput>,
    pub noise: Option<NoiseControlInput>,
    pub retraining: Option<RetrainingInput>,
    pub notify_webhook: Option<bool>,
}

fn signal_kind(s: DriftSignal) -> SignalKind {
    match s {
        DriftSignal::ViolationProbability => SignalKind::ViolationProbability,
        DriftSignal::ConfidenceScore => SignalKind::ConfidenceScore,
        DriftSignal::RiskScore => SignalKind::RiskScore,
        DriftSignal::InferenceTime => SignalKind::InferenceTime,
        DriftSignal::Shap => SignalKind::Shap,
    }
}

fn drift_signal(s: SignalKind) -> DriftSignal {
    match s {
        SignalKind::ViolationProbability => DriftSignal::ViolationProbability,
        SignalKind::ConfidenceScore => DriftSignal::ConfidenceScore,
        SignalKind::RiskScore => DriftSignal::RiskScore,
        SignalKind::InferenceTime => DriftSignal::InferenceTime,
        SignalKind::Shap => DriftSignal::Shap,
    }
}

fn thresholds(t: MonitorThresholdsInput) -> write::ThresholdSpec {
    write::ThresholdSpec {
        kind: match t.kind {
            ThresholdKind::Fixed => Kind::Fixed,
            ThresholdKind::Sigma => Kind::Sigma,
        },
        warning: t.warning,
        critical: t.critical,
        chunks: t.chunks,
    }
}

fn noise(n: NoiseControlInput) -> write::NoiseSpec {
    write::NoiseSpec {
        breaches_to_fire: n.breaches_to_fire,
        keep_firing: n.keep_firing,
        cooldown_seconds: n.cooldown_seconds,
    }
}

fn training(t: RetrainingInput) -> write::TrainingSpec {
    write::TrainingSpec {
        queue: t.queue,
        cooldown_seconds: t.cooldown_seconds,
    }
}

/// A monitor's reference, as configured.
#[derive(SimpleObject)]
pub struct MonitorReference {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub rolling_seconds: Option<i64>,
    pub model_version: Option<String>,
}

#[derive(SimpleObject)]
pub struct MonitorThresholds {
    pub kind: ThresholdKind,
    pub warning: f64,
    pub critical: f64,
    pub chunks: i32,
}

#[derive(SimpleObject)]
pub struct NoiseControl {
    pub breaches_to_fire: i32,
    pub keep_firing: i32,
    pub cooldown_seconds: i64,
}

#[derive(SimpleObject)]
pub struct Retraining {
    pub queue: bool,
    pub cooldown_seconds: i64,
}

/// Where a monitor stands.
#[derive(SimpleObject)]
pub struct MonitorState {
    pub next_due_at: DateTime<Utc>,
    pub evaluations: i64,
    pub consecutive_breaches: i32,
    pub firing: bool,
    pub last_value: Option<f64>,
    pub last_level: Option<AlertLevel>,
    pub last_evaluated_at: Option<DateTime<Utc>>,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub last_training_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct Monitor {
    pub monitor_id: String,
    pub model_id: String,
    /// A drift monitor's signal (null for a quality monitor).
    pub signal: Option<DriftSignal>,
    pub feature: Option<String>,
    /// A drift monitor's statistic (null for a quality monitor).
    pub method: Option<DriftMethod>,
    /// A quality monitor's measure (null for a drift monitor).
    pub quality: Option<QualityMonitor>,
    pub reference: MonitorReference,
    pub current_seconds: i64,
    pub current_model_version: Option<String>,
    pub interval_seconds: i64,
    pub thresholds: MonitorThresholds,
    pub noise: NoiseControl,
    pub retraining: Retraining,
    pub notify_webhook: bool,
    pub enabled: bool,
    pub state: MonitorState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<monitor::Model> for Monitor {
    type Error = ApiError;

    fn try_from(m: monitor::Model) -> Result<Self, ApiError> {
        let bad = |what: &str| ApiError::Internal(anyhow::anyhow!("stored monitor {what}"));
        let signal = match m.signal.as_deref() {
            Some(s) => Some(SignalKind::from_db(s).ok_or_else(|| bad("signal"))?),
            None => None,
        };
        let method = match m.method.as_deref() {
            Some(s) => Some(Method::from_db(s).ok_or_else(|| bad("method"))?),
            None => None,
        };
        let quality = match m.quality.as_deref() {
            Some(q) => Some(QualityMonitor {
                measure: Quality::from_db(q).ok_or_else(|| bad("quality"))?.into(),
                decision_threshold: m.decision_threshold.ok_or_else(|| bad("threshold"))?,
                minimum_outcomes: m.minimum_outcomes.ok_or_else(|| bad("outcomes"))?,
            }),
            None => None,
        };
        let kind = ReferenceKind::from_db(&m.reference_kind).ok_or_else(|| bad("reference"))?;
        let level = m
            .last_level
            .as_deref()
            .and_then(crate::domain::AlertLevel::from_db)
            .map(AlertLevel::from);
        Ok(Self {
            monitor_id: m.monitor_id,
            model_id: m.model_id,
            signal: signal.map(drift_signal),
            feature: m.feature,
            method: method.map(Into::into),
            quality,
            reference: MonitorReference {
                from: m.reference_from,
                to: m.reference_to,
                rolling_seconds: (kind == ReferenceKind::Rolling)
                    .then_some(m.reference_seconds)
                    .flatten(),
                model_version: m.reference_version,
            },
            current_seconds: m.current_seconds,
            current_model_version: m.current_version,
            interval_seconds: m.interval_seconds,
            thresholds: MonitorThresholds {
                kind: if m.threshold_kind == Kind::Sigma.as_db() {
                    ThresholdKind::Sigma
                } else {
                    ThresholdKind::Fixed
                },
                warning: m.warning,
                critical: m.critical,
                chunks: m.reference_chunks,
            },
            noise: NoiseControl {
                breaches_to_fire: m.breaches_to_fire,
                keep_firing: m.keep_firing,
                cooldown_seconds: m.cooldown_seconds,
            },
            retraining: Retraining {
                queue: m.queue_training,
                cooldown_seconds: m.training_cooldown_seconds,
            },
            notify_webhook: m.notify_webhook,
            enabled: m.enabled,
            state: MonitorState {
                next_due_at: m.next_due_at,
                evaluations: m.evaluations,
                consecutive_breaches: m.consecutive_breaches,
                firing: m.firing,
                last_value: m.last_value,
                last_level: level,
                last_evaluated_at: m.last_evaluated_at,
                last_notified_at: m.last_notified_at,
                last_training_at: m.last_training_at,
            },
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// The tenant's webhook: never its secret.
#[derive(SimpleObject)]
pub struct Webhook {
    pub url: String,
    pub updated_at: DateTime<Utc>,
}

impl From<webhooks::WebhookInfo> for Webhook {
    fn from(w: webhooks::WebhookInfo) -> Self {
        Self {
            url: w.url,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `nextAttemptAt`.
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

/// One notification's delivery to the tenant's webhook.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    /// Sent as the `Idempotency-Key` header on every attempt: the drift
    /// metric's id.
    pub delivery_id: String,
    pub monitor_id: String,
    pub url: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<i32>,
    /// Why the last attempt failed (no secret or body text).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<entity::webhook_delivery::Model> for WebhookDelivery {
    fn from(d: entity::webhook_delivery::Model) -> Self {
        let status = match d.status.as_str() {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        };
        Self {
            delivery_id: d.delivery_id,
            monitor_id: d.monitor_id,
            url: d.url,
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Default)]
pub struct MonitorsQuery;

#[Object]
impl MonitorsQuery {
    /// The tenant's drift monitors, by id (`admin`).
    async fn monitors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Monitor>> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        let rows = write::list(&writer).await?;
        Ok(rows
            .into_iter()
            .map(Monitor::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// The tenant's webhook, if set (`admin`).
    async fn webhook(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Webhook>> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        Ok(webhooks::get(&writer).await?.map(Webhook::from))
    }

    /// The latest webhook deliveries, newest first (`admin`; `first` at
    /// most 200).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<WebhookDelivery>> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        if !(1..=webhooks::MAX_LISTED as i32).contains(&first) {
            return Err(crate::store::filter::invalid(
                "first",
                format!("`first` must be between 1 and {}", webhooks::MAX_LISTED),
            )
            .into());
        }
        Ok(webhooks::deliveries(&writer, first as u64)
            .await?
            .into_iter()
            .map(WebhookDelivery::from)
            .collect())
    }
}

#[derive(Default)]
pub struct MonitorsMutation;

#[Object]
impl MonitorsMutation {
    /// Creates a monitor (`admin`; at most 100 per tenant). Every
    /// `intervalSeconds` a gateway measures the model's predictions of the
    /// last `currentSeconds`: a drift monitor (`signal` and `method`)
    /// compares them with the reference (as `driftAnalysis` does); a
    /// quality monitor (`quality`) measures precision, recall, F1 or
    /// calibration error through their feedback, and reports the
    /// reference's value beside it. The result is written as a drift
    /// metric (`CONCEPT` for quality); a notification is a drift alert
    /// (and, when asked, a webhook delivery and a queued training job:
    /// `DRIFT_DETECTED`, or `FEEDBACK_THRESHOLD` for quality).
    async fn create_monitor(
        &self,
        ctx: &Context<'_>,
        input: CreateMonitorInput,
    ) -> async_graphql::Result<Monitor> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        let reference = match input.reference {
            MonitorReferenceInput::Fixed(w) => Reference::Fixed {
                from: w.from,
                to: w.to,
            },
            MonitorReferenceInput::RollingSeconds(seconds) => Reference::Rolling { seconds },
            MonitorReferenceInput::ModelVersion(version) => Reference::Version { version },
        };
        let measure = match (input.signal, input.method, input.quality) {
            (Some(signal), Some(method), None) => Measure::Drift {
                signal: signal_kind(signal),
                feature: input.feature,
                method: method.into(),
            },
            (None, None, Some(q)) if input.feature.is_none() => Measure::Quality {
                quality: q.measure.into(),
                decision_threshold: q.decision_threshold,
                minimum_outcomes: q.minimum_outcomes,
            },
            _ => {
                return Err(invalid(
                    "quality",
                    "give either `signal` and `method` (a drift monitor) or `quality` alone".into(),
                )
                .into())
            }
        };
        let spec = MonitorSpec {
            monitor_id: input.monitor_id,
            model_id: input.model_id,
            measure,
            reference,
            current_seconds: input.current_seconds,
            current_version: input.current_model_version,
            interval_seconds: input.interval_seconds,
            thresholds: thresholds(input.thresholds),
            noise: noise(input.noise.unwrap_or_default()),
            training: input.retraining.map_or(
                write::TrainingSpec {
                    queue: false,
                    cooldown_seconds: 86_400,
                },
                training,
            ),
            notify_webhook: input.notify_webhook,
            enabled: input.enabled,
        };
        Ok(write::create(&writer, spec).await?.try_into()?)
    }

    /// Changes a monitor's schedule, thresholds, noise control or
    /// retraining, or turns it off (`admin`).
    async fn update_monitor(
        &self,
        ctx: &Context<'_>,
        input: UpdateMonitorInput,
    ) -> async_graphql::Result<Monitor> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        let changes = MonitorChanges {
            enabled: input.enabled,
            interval_seconds: input.interval_seconds,
            thresholds: input.thresholds.map(thresholds),
            noise: input.noise.map(noise),
            training: input.retraining.map(training),
            notify_webhook: input.notify_webhook,
        };
        Ok(write::update(&writer, &input.monitor_id, changes)
            .await?
            .try_into()?)
    }

    /// Deletes a monitor (`admin`); false when there was none. Its drift
    /// metrics stay.
    async fn delete_monitor(
        &self,
        ctx: &Context<'_>,
        monitor_id: String,
    ) -> async_graphql::Result<bool> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        Ok(write::delete(&writer, &monitor_id).await?)
    }

    /// Sets where monitor notifications are delivered (`admin`): each is
    /// POSTed as JSON with `X-Mlgate-Signature: sha256=<hex HMAC-SHA256 of
    /// the body with secret>`, `Idempotency-Key` (stable across retries)
    /// and `X-Mlgate-Attempt`; a non-2xx answer or no answer within 10 s is
    /// retried with exponential backoff (1 s doubling, at most 10 minutes
    /// apart, 8 attempts). The secret is never shown again.
    async fn set_webhook(
        &self,
        ctx: &Context<'_>,
        url: String,
        #[graphql(desc = "16 to 256 bytes.")] secret: String,
    ) -> async_graphql::Result<Webhook> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        Ok(webhooks::set(&writer, &url, &secret).await?.into())
    }

    /// Removes the tenant's webhook (`admin`); false when there was none.
    async fn delete_webhook(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ManageMonitors>()?;
        Ok(webhooks::delete(&writer).await?)
    }
}
