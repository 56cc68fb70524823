//! One evaluation of one monitor, in one transaction scoped to its tenant:
//! claim the monitor if it is due (on PostgreSQL `FOR UPDATE SKIP LOCKED`,
//! so another gateway evaluating it skips it), measure, decide (thresholds,
//! noise control), write the `ml_drift_metrics` row with its alert event
//! and, when it notifies and may, a queued training job, and move the
//! monitor to its next slot. All of it commits or none does: a gateway
//! killed mid-evaluation leaves the slot due for the next one, and a slot
//! is never written twice (its metric id is derived from the monitor and
//! the slot; a second writer would also fail on the unique key).

use chrono::{DateTime, TimeDelta, Utc};
use entity::{drift_metric, monitor, training_job};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use sea_orm::sea_query::LockBehavior;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbBackend, QueryFilter, QuerySelect, Set};
use serde_json::json;

use crate::db::{Scoped, ScopedTxn};
use crate::domain::drift::monitor::{band, step, Band, Direction, NoiseControl, State, Thresholds};
use crate::domain::drift::{Comparison, Method, Quality, ReferenceKind, SignalKind, ThresholdKind};
use crate::domain::{AlertLevel, DriftType, TriggerReason, Vocabulary};
use crate::error::{ApiError, ApiResult};
use crate::store::analytics::drift_analysis::{sample, Sample, Signal};
use crate::store::analytics::measure;
use crate::store::analytics::performance::outcomes_in;
use crate::store::{tenant_rows, TimeRange};
use crate::write::alerts;

/// What a committed evaluation announces.
#[derive(Debug, Default)]
pub struct Outcome {
    /// An alert event was raised.
    pub alerted: bool,
    /// A training job was queued.
    pub job_id: Option<String>,
    /// A webhook delivery was queued.
    pub webhook: bool,
}

fn internal(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("monitor row: {what}"))
}

/// Evaluates `monitor_id` if it is due at `now`; `None` when it is not
/// (or another gateway holds it).
pub async fn run(
    scoped: &Scoped,
    monitor_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Option<Outcome>> {
    let txn = scoped.begin_write().await?;
    let mut claim = tenant_rows::<monitor::Entity>(&txn)
        .filter(monitor::Column::MonitorId.eq(monitor_id))
        .filter(monitor::Column::Enabled.eq(true))
        .filter(monitor::Column::NextDueAt.lte(now));
    if txn.backend() == DbBackend::Postgres {
        claim = claim.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            LockBehavior::SkipLocked,
        );
    }
    let Some(m) = claim.one(txn.conn()).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    let outcome = evaluate(&txn, m, now).await?;
    crate::write::commit(txn).await?;
    Ok(Some(outcome))
}

/// The windows of the slot due at `due`: (reference, current).
fn samples(m: &monitor::Model, due: DateTime<Utc>) -> ApiResult<(Sample, Sample)> {
    let current_from = due - TimeDelta::seconds(m.current_seconds);
    let current = Sample {
        window: TimeRange {
            from: Some(current_from),
            to: Some(due),
        },
        model_version: m.current_version.clone(),
    };
    let kind = ReferenceKind::from_db(&m.reference_kind).ok_or_else(|| internal("reference"))?;
    let reference = match kind {
        ReferenceKind::Fixed => Sample {
            window: TimeRange {
                from: m.reference_from,
                to: m.reference_to,
            },
            model_version: None,
        },
        ReferenceKind::Rolling => {
            let span = TimeDelta::seconds(m.reference_seconds.ok_or_else(|| internal("span"))?);
            Sample {
                window: TimeRange {
                    from: Some(current_from - span),
                    to: Some(current_from),
                },
                model_version: None,
            }
        }
        ReferenceKind::Version => Sample {
            window: current.window,
            model_version: m.reference_version.clone(),
        },
    };
    Ok((reference, current))
}

/// The reference cut into chunks as long as the current window (the last
/// `reference_chunks` of them), so that each chunk's statistic against the
/// whole reference varies as a stationary current window's would.
fn chunks(m: &monitor::Model, reference: &Sample) -> Vec<Sample> {
    let (Some(from), Some(to)) = (reference.window.from, reference.window.to) else {
        return Vec::new();
    };
    let step = TimeDelta::seconds(m.current_seconds);
    let mut out = Vec::new();
    let mut end = to;
    while end - step >= from && out.len() < m.reference_chunks.max(0) as usize {
        out.push(Sample {
            window: TimeRange {
                from: Some(end - step),
                to: Some(end),
            },
            model_version: reference.model_version.clone(),
        });
        end -= step;
    }
    out
}

/// A value for a `DECIMAL(10, places)` column.
fn column(value: f64, places: u32) -> Option<Decimal> {
    let max = 10f64.powi(10 - places as i32) - 10f64.powi(-(places as i32));
    Decimal::from_f64(value.clamp(-max, max)).map(|d| d.round_dp(places))
}

/// One window's measurement and what it is judged against.
struct Measurement {
    value: Option<f64>,
    error_bound: f64,
    p_value: Option<f64>,
    /// The value of each reference chunk, for sigma thresholds.
    chunk_values: Vec<f64>,
    direction: Direction,
    /// What the metric row and the webhook body say about it.
    details: serde_json::Map<String, serde_json::Value>,
}

fn thresholds_of(m: &monitor::Model) -> Thresholds {
    match ThresholdKind::from_db(&m.threshold_kind) {
        Some(ThresholdKind::Sigma) => Thresholds::Sigma {
            warning_k: m.warning,
            critical_k: m.critical,
        },
        _ => Thresholds::Fixed {
            warning: m.warning,
            critical: m.critical,
        },
    }
}

/// A drift statistic of a signal: current window against the reference.
async fn drift(
    txn: &ScopedTxn,
    m: &monitor::Model,
    reference: &Sample,
    current: &Sample,
    sigma: bool,
) -> ApiResult<Measurement> {
    let kind = m
        .signal
        .as_deref()
        .and_then(SignalKind::from_db)
        .ok_or_else(|| internal("signal"))?;
    let signal = match kind {
        SignalKind::ViolationProbability => Signal::ViolationProbability,
        SignalKind::ConfidenceScore => Signal::ConfidenceScore,
        SignalKind::RiskScore => Signal::RiskScore,
        SignalKind::InferenceTime => Signal::InferenceTime,
        SignalKind::Shap => Signal::Shap(m.feature.clone().ok_or_else(|| internal("feature"))?),
    };
    let method = m
        .method
        .as_deref()
        .and_then(Method::from_db)
        .ok_or_else(|| internal("method"))?;
    let reference_cells = sample(txn, &m.model_id, reference, &signal).await?;
    let current_cells = sample(txn, &m.model_id, current, &signal).await?;
    let comparison = Comparison::new(&reference_cells, &current_cells, signal.scale());
    let estimate = comparison
        .comparable()
        .then(|| comparison.statistic(method));
    let mut chunk_values = Vec::new();
    if sigma && estimate.is_some() {
        for chunk in chunks(m, reference) {
            let cells = sample(txn, &m.model_id, &chunk, &signal).await?;
            let c = Comparison::new(&reference_cells, &cells, signal.scale());
            if c.comparable() {
                chunk_values.push(c.statistic(method).value);
            }
        }
    }
    let p_value = estimate
        .filter(|_| method == Method::Ks)
        .map(|e| measure(comparison.ks_p_value(e.value)));
    let mut details = serde_json::Map::new();
    details.insert("signal".into(), json!(m.signal));
    details.insert("feature".into(), json!(m.feature));
    details.insert("method".into(), json!(m.method));
    details.insert("referenceCount".into(), json!(comparison.reference_count()));
    details.insert("currentCount".into(), json!(comparison.current_count()));
    Ok(Measurement {
        value: estimate.map(|e| e.value),
        error_bound: estimate.map_or(0.0, |e| e.error_bound),
        p_value,
        chunk_values,
        direction: Direction::Above,
        details,
    })
}

/// A quality measure of one window, when it holds enough outcomes.
async fn quality_of(
    txn: &ScopedTxn,
    m: &monitor::Model,
    quality: Quality,
    window: &Sample,
) -> ApiResult<(Option<f64>, u64)> {
    let threshold = m
        .decision_threshold
        .ok_or_else(|| internal("decision threshold"))?;
    let (confusion, calibration) = outcomes_in(
        txn,
        &m.model_id,
        window.model_version.as_deref(),
        window.window,
        threshold,
    )
    .await?;
    let outcomes = confusion.labelled();
    if outcomes < m.minimum_outcomes.unwrap_or(1).max(1) as u64 {
        return Ok((None, outcomes));
    }
    let value = match quality {
        Quality::Precision => confusion.precision(),
        Quality::Recall => confusion.recall(),
        Quality::F1 => confusion.f1_score(),
        Quality::CalibrationError => calibration.expected_error(),
    };
    Ok((value, outcomes))
}

/// A quality measure observed through feedback in the current window; the
/// reference's value is reported beside it, and sigma thresholds come from
/// the reference chunks' own values.
async fn quality(
    txn: &ScopedTxn,
    m: &monitor::Model,
    quality: Quality,
    reference: &Sample,
    current: &Sample,
    sigma: bool,
) -> ApiResult<Measurement> {
    let (value, current_outcomes) = quality_of(txn, m, quality, current).await?;
    let (reference_value, reference_outcomes) = quality_of(txn, m, quality, reference).await?;
    let mut chunk_values = Vec::new();
    if sigma && value.is_some() {
        for chunk in chunks(m, reference) {
            if let (Some(v), _) = quality_of(txn, m, quality, &chunk).await? {
                chunk_values.push(v);
            }
        }
    }
    let mut details = serde_json::Map::new();
    details.insert("quality".into(), json!(quality.as_db()));
    details.insert("decisionThreshold".into(), json!(m.decision_threshold));
    details.insert("minimumOutcomes".into(), json!(m.minimum_outcomes));
    details.insert("referenceValue".into(), json!(reference_value));
    details.insert("referenceOutcomes".into(), json!(reference_outcomes));
    details.insert("currentOutcomes".into(), json!(current_outcomes));
    Ok(Measurement {
        value,
        error_bound: 0.0,
        p_value: None,
        chunk_values,
        direction: quality.direction(),
        details,
    })
}

async fn evaluate(txn: &ScopedTxn, m: monitor::Model, now: DateTime<Utc>) -> ApiResult<Outcome> {
    let due = m.next_due_at;
    let (reference, current) = samples(&m, due)?;
    let thresholds = thresholds_of(&m);
    let sigma = matches!(thresholds, Thresholds::Sigma { .. });
    let watched = m.quality.as_deref().map(Quality::from_db);
    let measured = match watched {
        None => drift(txn, &m, &reference, &current, sigma).await?,
        Some(Some(q)) => quality(txn, &m, q, &reference, &current, sigma).await?,
        Some(None) => return Err(internal("quality")),
    };
    let value = measured.value;
    let band: Option<Band> = band(thresholds, measured.direction, &measured.chunk_values);
    let level = match (value, band) {
        (Some(v), Some(b)) => Some(b.level(v)),
        _ => None,
    };
    let breached = matches!(level, Some(AlertLevel::Warning | AlertLevel::Critical));
    let control = NoiseControl {
        breaches_to_fire: m.breaches_to_fire.max(1) as u32,
        keep_firing: m.keep_firing.max(0) as u32,
        cooldown: TimeDelta::seconds(m.cooldown_seconds),
    };
    let before = State {
        consecutive_breaches: m.consecutive_breaches.max(0) as u32,
        firing_left: m.firing_left.max(0) as u32,
        firing: m.firing,
        last_notified_at: m.last_notified_at,
    };
    let decided = step(control, before, breached, due);

    let mut outcome = Outcome::default();
    let window = |s: &Sample| json!({"from": s.window.from, "to": s.window.to, "modelVersion": s.model_version});
    let metric_id = format!("monitor-{}-{}", m.id.simple(), due.timestamp());
    let is_quality = watched.is_some();
    let method = m.method.as_deref().and_then(Method::from_db);
    if let Some(v) = value {
        let mut baseline = measured.details.clone();
        for (key, field) in [
            ("monitorId", json!(m.monitor_id)),
            ("value", json!(measure(v))),
            ("errorBound", json!(measure(measured.error_bound))),
            ("pValue", json!(measured.p_value)),
            ("warning", json!(band.map(|b| measure(b.warning)))),
            ("critical", json!(band.map(|b| measure(b.critical)))),
            ("firing", json!(decided.firing)),
            ("reference", window(&reference)),
            ("current", window(&current)),
        ] {
            baseline.insert(key.into(), field);
        }
        let row = drift_metric::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            metric_id: Set(metric_id.clone()),
            resource_id: Set(None),
            tenant_id: Set(txn.tenant().to_owned()),
            model_id: Set(Some(m.model_id.clone())),
            // A quality drop is concept drift: the inputs' relation to the
            // outcome changed.
            drift_type: Set(if is_quality {
                DriftType::Concept
            } else if m.signal.as_deref() == Some(SignalKind::Shap.as_db()) {
                DriftType::Data
            } else {
                DriftType::Prediction
            }
            .as_db()
            .to_owned()),
            drift_score: Set(column(v, 4).unwrap_or_default()),
            drift_velocity: Set(None),
            reconstruction_error: Set(None),
            psi_score: Set((method == Some(Method::Psi))
                .then(|| column(v, 6))
                .flatten()),
            ks_statistic: Set((method == Some(Method::Ks)).then(|| column(v, 6)).flatten()),
            wasserstein_distance: Set((method == Some(Method::Wasserstein))
                .then(|| column(v, 6))
                .flatten()),
            alert_triggered: Set(Some(decided.notify)),
            alert_level: Set(level.map(|l| l.as_db().to_owned())),
            time_to_violation_hours: Set(None),
            measured_at: Set(Some(due)),
            baseline_comparison: Set(Some(serde_json::Value::Object(baseline))),
            feature_contributions: Set(None),
        };
        row.insert(txn.conn()).await.map_err(ApiError::from_write)?;
        if decided.notify {
            alerts::raise(txn, &[metric_id.as_str()])
                .await
                .map_err(ApiError::from_write)?;
            outcome.alerted = true;
            if m.notify_webhook {
                let mut body = json!({
                    "event": if is_quality { "quality.alert" } else { "drift.alert" },
                    "deliveryId": metric_id,
                    "monitorId": m.monitor_id,
                    "modelId": m.model_id,
                    "value": measure(v),
                    "level": level.map(|l| l.as_db()),
                    "measuredAt": due,
                    "reference": window(&reference),
                    "current": window(&current),
                });
                if let Some(body) = body.as_object_mut() {
                    for (key, field) in &measured.details {
                        body.insert(key.clone(), field.clone());
                    }
                }
                outcome.webhook =
                    super::webhooks::enqueue(txn, &metric_id, &m.monitor_id, &body).await?;
            }
        }
    }

    let mut last_training_at = m.last_training_at;
    let cooled = m
        .last_training_at
        .is_none_or(|last| due - last >= TimeDelta::seconds(m.training_cooldown_seconds));
    if decided.notify && m.queue_training && cooled {
        let model_type = tenant_rows::<entity::model::Entity>(txn)
            .filter(entity::model::Column::ModelId.eq(m.model_id.as_str()))
            .one(txn.conn())
            .await?
            .map(|model| model.model_type)
            .unwrap_or_else(|| "unknown".into());
        let (prefix, reason) = if is_quality {
            ("quality", TriggerReason::FeedbackThreshold)
        } else {
            ("drift", TriggerReason::DriftDetected)
        };
        let job_id = format!("{prefix}-{}-{}", m.id.simple(), due.timestamp());
        training_job::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            job_id: Set(job_id.clone()),
            tenant_id: Set(txn.tenant().to_owned()),
            model_type: Set(model_type),
            trigger_reason: Set(reason.as_db().into()),
            status: Set("queued".into()),
            training_config: Set(json!({"modelId": m.model_id, "monitorId": m.monitor_id})),
            hyperparameters: Set(None),
            dataset_info: Set(Some(json!({
                "reference": window(&reference),
                "current": window(&current),
                "driftMetricId": metric_id,
            }))),
            metrics: Set(None),
            error_message: Set(None),
            started_at: Set(None),
            completed_at: Set(None),
            estimated_completion: Set(None),
            created_at: Set(Some(crate::store::now())),
            created_by: Set(Some("monitor".into())),
            resource_usage: Set(None),
            cost_estimate: Set(None),
        }
        .insert(txn.conn())
        .await
        .map_err(ApiError::from_write)?;
        last_training_at = Some(due);
        outcome.job_id = Some(job_id);
    }

    // The next slot after now: a gateway that was down skips the missed
    // slots instead of evaluating each.
    let interval = TimeDelta::seconds(m.interval_seconds);
    let mut next = due + interval;
    if next <= now {
        let missed = (now - due).num_seconds() / m.interval_seconds.max(1);
        next = due + interval * (missed as i32 + 1);
    }
    let evaluations = m.evaluations + 1;
    let mut row: monitor::ActiveModel = m.into();
    row.next_due_at = Set(next);
    row.evaluations = Set(evaluations);
    row.consecutive_breaches = Set(decided.state.consecutive_breaches as i32);
    row.firing_left = Set(decided.state.firing_left as i32);
    row.firing = Set(decided.state.firing);
    row.last_notified_at = Set(decided.state.last_notified_at);
    row.last_training_at = Set(last_training_at);
    row.last_value = Set(value.map(measure));
    row.last_level = Set(level.map(|l| l.as_db().to_owned()));
    row.last_evaluated_at = Set(Some(due));
    row.update(txn.conn()).await.map_err(ApiError::from_write)?;
    Ok(outcome)
}
