//! A tenant's monitors (admin): created, changed, deleted, listed. What a
//! monitor watches is fixed at creation (a signal's drift statistic, or a
//! quality measure, and its windows); its thresholds, noise control,
//! schedule and actions change.

use chrono::{DateTime, Utc};
use entity::monitor;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

use super::{commit, Writer};
use crate::domain::drift::monitor::Direction;
use crate::domain::drift::{Method, Quality, ReferenceKind, SignalKind, ThresholdKind};
use crate::domain::Vocabulary;
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::filter::invalid;
use crate::store::{now, tenant_rows};

/// The most monitors a tenant keeps.
pub const MAX_MONITORS: u64 = 100;
/// The longest window, span or interval: a year.
const MAX_SECONDS: i64 = 366 * 24 * 3600;

/// What a monitor compares its current window with.
#[derive(Clone, Debug)]
pub enum Reference {
    Fixed {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// The `seconds` right before the current window.
    Rolling { seconds: i64 },
    /// This version's predictions in the current window.
    Version { version: String },
}

/// What a monitor measures in each window.
#[derive(Clone, Debug)]
pub enum Measure {
    /// A drift statistic of a signal, current window against reference.
    Drift {
        signal: SignalKind,
        /// The feature of a `Shap` signal.
        feature: Option<String>,
        method: Method,
    },
    /// A quality measure observed through feedback, in the current window.
    Quality {
        quality: Quality,
        /// A prediction decides "violation" at or above it (precision,
        /// recall, F1).
        decision_threshold: f64,
        /// A window with fewer predictions with an outcome is not measured.
        minimum_outcomes: i32,
    },
}

impl Measure {
    fn direction(&self) -> Direction {
        match self {
            Measure::Drift { .. } => Direction::Above,
            Measure::Quality { quality, .. } => quality.direction(),
        }
    }
}

/// The most outcomes a quality monitor may ask a window for.
const MAX_MINIMUM_OUTCOMES: i32 = 1_000_000;

#[derive(Clone, Copy, Debug)]
pub struct ThresholdSpec {
    pub kind: ThresholdKind,
    /// Fixed values, or `k` of `mean ± k·σ` for `Sigma`.
    pub warning: f64,
    pub critical: f64,
    /// Reference chunks `Sigma` measures the variability over.
    pub chunks: i32,
}

#[derive(Clone, Copy, Debug)]
pub struct NoiseSpec {
    pub breaches_to_fire: i32,
    pub keep_firing: i32,
    pub cooldown_seconds: i64,
}

#[derive(Clone, Copy, Debug)]
pub struct TrainingSpec {
    pub queue: bool,
    pub cooldown_seconds: i64,
}

#[derive(Clone, Debug)]
pub struct MonitorSpec {
    pub monitor_id: String,
    pub model_id: String,
    pub measure: Measure,
    pub reference: Reference,
    pub current_seconds: i64,
    /// Only this version's predictions in the current window.
    pub current_version: Option<String>,
    pub interval_seconds: i64,
    pub thresholds: ThresholdSpec,
    pub noise: NoiseSpec,
    pub training: TrainingSpec,
    /// Deliver notifications to the tenant's webhook.
    pub notify_webhook: bool,
    pub enabled: bool,
}

/// What `updateMonitor` may change; `None` keeps.
#[derive(Clone, Debug, Default)]
pub struct MonitorChanges {
    pub enabled: Option<bool>,
    pub interval_seconds: Option<i64>,
    pub thresholds: Option<ThresholdSpec>,
    pub noise: Option<NoiseSpec>,
    pub training: Option<TrainingSpec>,
    pub notify_webhook: Option<bool>,
}

fn seconds(field: &str, value: i64) -> ApiResult<()> {
    if (1..=MAX_SECONDS).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("`{field}` must be between 1 and {MAX_SECONDS} seconds"),
        ))
    }
}

/// Fixed thresholds of a measure bad `Below` run downwards (warning 0.8,
/// critical 0.7); every other band (and every `k`) runs upwards.
fn check_thresholds(t: &ThresholdSpec, direction: Direction) -> ApiResult<()> {
    let finite = t.warning.is_finite() && t.critical.is_finite();
    let ok = if t.kind == ThresholdKind::Fixed && direction == Direction::Below {
        finite && 0.0 <= t.critical && t.critical <= t.warning && t.warning <= 1.0
    } else {
        finite && 0.0 <= t.warning && t.warning <= t.critical && t.critical < 10_000.0
    };
    if !ok {
        let need = if t.kind == ThresholdKind::Fixed && direction == Direction::Below {
            "need 0 ≤ critical ≤ warning ≤ 1 (lower is worse)"
        } else {
            "need 0 ≤ warning ≤ critical < 10000"
        };
        return Err(invalid("thresholds", need.into()));
    }
    if t.kind == ThresholdKind::Sigma && !(2..=50).contains(&t.chunks) {
        return Err(invalid(
            "thresholds.chunks",
            "`chunks` must be between 2 and 50".into(),
        ));
    }
    Ok(())
}

fn check_noise(n: &NoiseSpec) -> ApiResult<()> {
    if !(1..=100).contains(&n.breaches_to_fire) || !(0..=1000).contains(&n.keep_firing) {
        return Err(invalid(
            "noise",
            "`breachesToFire` must be 1–100 and `keepFiring` 0–1000".into(),
        ));
    }
    if !(0..=MAX_SECONDS).contains(&n.cooldown_seconds) {
        return Err(invalid(
            "noise.cooldownSeconds",
            format!("`cooldownSeconds` must be between 0 and {MAX_SECONDS}"),
        ));
    }
    Ok(())
}

fn check_training(t: &TrainingSpec) -> ApiResult<()> {
    if !(0..=MAX_SECONDS).contains(&t.cooldown_seconds) {
        return Err(invalid(
            "training.cooldownSeconds",
            format!("`cooldownSeconds` must be between 0 and {MAX_SECONDS}"),
        ));
    }
    Ok(())
}

fn check_id(field: &str, id: &str, max: usize) -> ApiResult<()> {
    if id.is_empty() || id.len() > max || id.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("`{field}` must be 1 to {max} printable bytes"),
        ));
    }
    Ok(())
}

/// Sigma thresholds chunk the reference in time.
fn sigma_needs_time(kind: ThresholdKind, reference: ReferenceKind) -> ApiResult<()> {
    if kind == ThresholdKind::Sigma && reference == ReferenceKind::Version {
        return Err(invalid(
            "thresholds.kind",
            "`SIGMA` thresholds need a time reference (`fixed` or `rollingSeconds`)".into(),
        ));
    }
    Ok(())
}

fn check(spec: &MonitorSpec) -> ApiResult<()> {
    if let Reference::Version { .. } = spec.reference {
        sigma_needs_time(spec.thresholds.kind, ReferenceKind::Version)?;
    }
    check_id("monitorId", &spec.monitor_id, 255)?;
    check_id("modelId", &spec.model_id, 255)?;
    match &spec.measure {
        Measure::Drift {
            signal, feature, ..
        } => match (signal, feature) {
            (SignalKind::Shap, Some(feature)) => check_id("feature", feature, 255)?,
            (SignalKind::Shap, None) => {
                return Err(invalid(
                    "feature",
                    "a `SHAP` monitor names its `feature`".into(),
                ))
            }
            (_, Some(_)) => {
                return Err(invalid(
                    "feature",
                    "only a `SHAP` monitor names a `feature`".into(),
                ))
            }
            (_, None) => {}
        },
        Measure::Quality {
            decision_threshold,
            minimum_outcomes,
            ..
        } => {
            if !(0.0..=1.0).contains(decision_threshold) {
                return Err(invalid(
                    "quality.decisionThreshold",
                    "`decisionThreshold` must be between 0 and 1".into(),
                ));
            }
            if !(1..=MAX_MINIMUM_OUTCOMES).contains(minimum_outcomes) {
                return Err(invalid(
                    "quality.minimumOutcomes",
                    format!("`minimumOutcomes` must be between 1 and {MAX_MINIMUM_OUTCOMES}"),
                ));
            }
        }
    }
    match &spec.reference {
        Reference::Fixed { from, to } if from >= to => {
            return Err(invalid(
                "reference",
                "`reference.from` must be before `to`".into(),
            ))
        }
        Reference::Rolling { seconds: s } => seconds("reference.rollingSeconds", *s)?,
        Reference::Version { version } => check_id("reference.modelVersion", version, 20)?,
        Reference::Fixed { .. } => {}
    }
    if let Some(version) = &spec.current_version {
        check_id("currentModelVersion", version, 20)?;
    }
    seconds("currentSeconds", spec.current_seconds)?;
    seconds("intervalSeconds", spec.interval_seconds)?;
    check_thresholds(&spec.thresholds, spec.measure.direction())?;
    check_noise(&spec.noise)?;
    check_training(&spec.training)
}

/// Creates a monitor, first due one interval from now.
pub async fn create(
    writer: &Writer<can::ManageMonitors>,
    spec: MonitorSpec,
) -> ApiResult<monitor::Model> {
    check(&spec)?;
    let txn = writer.begin().await?;
    let model = tenant_rows::<entity::model::Entity>(&txn)
        .filter(entity::model::Column::ModelId.eq(spec.model_id.as_str()))
        .count(txn.conn())
        .await?;
    if model == 0 {
        return Err(invalid(
            "modelId",
            format!("no model `{}` in this tenant", spec.model_id),
        ));
    }
    let existing = tenant_rows::<monitor::Entity>(&txn)
        .count(txn.conn())
        .await?;
    if tenant_rows::<monitor::Entity>(&txn)
        .filter(monitor::Column::MonitorId.eq(spec.monitor_id.as_str()))
        .count(txn.conn())
        .await?
        > 0
    {
        return Err(ApiError::Conflict(format!(
            "monitor `{}` already exists",
            spec.monitor_id
        )));
    }
    if existing >= MAX_MONITORS {
        return Err(invalid(
            "monitorId",
            format!("a tenant keeps at most {MAX_MONITORS} monitors"),
        ));
    }
    let created = now();
    let (kind, from, to, rolling, version) = match spec.reference {
        Reference::Fixed { from, to } => (ReferenceKind::Fixed, Some(from), Some(to), None, None),
        Reference::Rolling { seconds } => (ReferenceKind::Rolling, None, None, Some(seconds), None),
        Reference::Version { version } => (ReferenceKind::Version, None, None, None, Some(version)),
    };
    let (signal, feature, method, quality, decision_threshold, minimum_outcomes) =
        match spec.measure {
            Measure::Drift {
                signal,
                feature,
                method,
            } => (
                Some(signal.as_db().to_owned()),
                feature,
                Some(method.as_db().to_owned()),
                None,
                None,
                None,
            ),
            Measure::Quality {
                quality,
                decision_threshold,
                minimum_outcomes,
            } => (
                None,
                None,
                None,
                Some(quality.as_db().to_owned()),
                Some(decision_threshold),
                Some(minimum_outcomes),
            ),
        };
    let row = monitor::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        tenant_id: Set(txn.tenant().to_owned()),
        monitor_id: Set(spec.monitor_id),
        model_id: Set(spec.model_id),
        signal: Set(signal),
        feature: Set(feature),
        method: Set(method),
        quality: Set(quality),
        decision_threshold: Set(decision_threshold),
        minimum_outcomes: Set(minimum_outcomes),
        reference_kind: Set(kind.as_db().to_owned()),
        reference_from: Set(from),
        reference_to: Set(to),
        reference_seconds: Set(rolling),
        reference_version: Set(version),
        current_version: Set(spec.current_version),
        current_seconds: Set(spec.current_seconds),
        interval_seconds: Set(spec.interval_seconds),
        threshold_kind: Set(spec.thresholds.kind.as_db().to_owned()),
        warning: Set(spec.thresholds.warning),
        critical: Set(spec.thresholds.critical),
        reference_chunks: Set(spec.thresholds.chunks),
        breaches_to_fire: Set(spec.noise.breaches_to_fire),
        keep_firing: Set(spec.noise.keep_firing),
        cooldown_seconds: Set(spec.noise.cooldown_seconds),
        queue_training: Set(spec.training.queue),
        notify_webhook: Set(spec.notify_webhook),
        training_cooldown_seconds: Set(spec.training.cooldown_seconds),
        enabled: Set(spec.enabled),
        next_due_at: Set(created + chrono::TimeDelta::seconds(spec.interval_seconds)),
        evaluations: Set(0),
        consecutive_breaches: Set(0),
        firing_left: Set(0),
        firing: Set(false),
        last_value: Set(None),
        last_level: Set(None),
        last_evaluated_at: Set(None),
        last_notified_at: Set(None),
        last_training_at: Set(None),
        created_at: Set(created),
        updated_at: Set(created),
    };
    let model = row.insert(txn.conn()).await.map_err(ApiError::from_write)?;
    commit(txn).await?;
    Ok(model)
}

async fn find(txn: &crate::db::ScopedTxn, monitor_id: &str) -> ApiResult<Option<monitor::Model>> {
    Ok(tenant_rows::<monitor::Entity>(txn)
        .filter(monitor::Column::MonitorId.eq(monitor_id))
        .one(txn.conn())
        .await?)
}

/// Which side of its thresholds a stored monitor's value is bad on.
pub fn direction_of(m: &monitor::Model) -> Direction {
    m.quality
        .as_deref()
        .and_then(Quality::from_db)
        .map_or(Direction::Above, Quality::direction)
}

/// Changes a monitor (`NOT_FOUND` when the tenant has none by that id). A
/// new interval applies from the next evaluation.
pub async fn update(
    writer: &Writer<can::ManageMonitors>,
    monitor_id: &str,
    changes: MonitorChanges,
) -> ApiResult<monitor::Model> {
    if let Some(s) = changes.interval_seconds {
        seconds("intervalSeconds", s)?;
    }
    if let Some(n) = &changes.noise {
        check_noise(n)?;
    }
    if let Some(t) = &changes.training {
        check_training(t)?;
    }
    let txn = writer.begin().await?;
    let Some(current) = find(&txn, monitor_id).await? else {
        return Err(ApiError::NotFound(format!("no monitor `{monitor_id}`")));
    };
    let reference_kind = current.reference_kind.clone();
    let direction = direction_of(&current);
    let mut row: monitor::ActiveModel = current.into();
    if let Some(enabled) = changes.enabled {
        row.enabled = Set(enabled);
    }
    if let Some(s) = changes.interval_seconds {
        row.interval_seconds = Set(s);
    }
    if let Some(t) = changes.thresholds {
        check_thresholds(&t, direction)?;
        let reference = ReferenceKind::from_db(&reference_kind).unwrap_or(ReferenceKind::Fixed);
        sigma_needs_time(t.kind, reference)?;
        row.threshold_kind = Set(t.kind.as_db().to_owned());
        row.warning = Set(t.warning);
        row.critical = Set(t.critical);
        row.reference_chunks = Set(t.chunks);
    }
    if let Some(n) = changes.noise {
        row.breaches_to_fire = Set(n.breaches_to_fire);
        row.keep_firing = Set(n.keep_firing);
        row.cooldown_seconds = Set(n.cooldown_seconds);
    }
    if let Some(t) = changes.training {
        row.queue_training = Set(t.queue);
        row.training_cooldown_seconds = Set(t.cooldown_seconds);
    }
    if let Some(notify) = changes.notify_webhook {
        row.notify_webhook = Set(notify);
    }
    row.updated_at = Set(now());
    let updated = row.update(txn.conn()).await.map_err(ApiError::from_write)?;
    commit(txn).await?;
    Ok(updated)
}

/// Deletes a monitor; false when the tenant had none by that id. The drift
/// metrics it wrote stay.
pub async fn delete(writer: &Writer<can::ManageMonitors>, monitor_id: &str) -> ApiResult<bool> {
    let txn = writer.begin().await?;
    let deleted = monitor::Entity::delete_many()
        .filter(monitor::Column::TenantId.eq(txn.tenant()))
        .filter(monitor::Column::MonitorId.eq(monitor_id))
        .exec(txn.conn())
        .await?;
    commit(txn).await?;
    Ok(deleted.rows_affected > 0)
}

/// The tenant's monitors, by id.
pub async fn list(writer: &Writer<can::ManageMonitors>) -> ApiResult<Vec<monitor::Model>> {
    use sea_orm::QueryOrder;
    let txn = writer.scoped().begin().await?;
    let rows = tenant_rows::<monitor::Entity>(&txn)
        .order_by_asc(monitor::Column::MonitorId)
        .all(txn.conn())
        .await?;
    txn.commit().await?;
    Ok(rows)
}
