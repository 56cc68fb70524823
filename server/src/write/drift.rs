//! Recording drift metrics (idempotent batches). A metric whose alert
//! triggered also becomes a drift-alert event in the same transaction.

use chrono::{DateTime, Utc};
use entity::drift_metric;
use serde_json::Value as Json;

use std::collections::HashMap;
use std::mem::size_of;

use super::alerts;
use super::bulk::{listed, Refusals};
use super::footprint;
use super::shape::{self, FeatureValue};
use super::validate::Checker;
use super::{
    check_batch, commit, create_idempotent_at, referenced_models, Created, DecimalSpec,
    Fingerprint, Idempotent, Items, NewRow, Writer,
};
use crate::domain::{AlertLevel, DriftType, Vocabulary};
use crate::error::{ApiError, ApiResult, InputProblem};
use crate::identity::can;
use crate::store::thresholds::{self, DriftThresholds};
use crate::store::{now, truncate_to_micros};
use crate::telemetry::metrics::{self as telemetry, AlertLevel as Level, Ingested};

/// `DECIMAL(10,6)` Kolmogorov–Smirnov statistics: 0–1.
const KS: DecimalSpec = DecimalSpec {
    scale: 6,
    min: 0.0,
    max: 1.0,
};

/// One drift measurement as a service reports it. Vocabularies arrive as
/// domain enums.
#[derive(Clone, Debug)]
pub struct DriftMetricInput {
    pub metric_id: String,
    pub resource_id: Option<String>,
    pub model_id: Option<String>,
    pub drift_type: DriftType,
    pub drift_score: f64,
    pub drift_velocity: Option<f64>,
    pub reconstruction_error: Option<f64>,
    pub psi_score: Option<f64>,
    pub ks_statistic: Option<f64>,
    pub wasserstein_distance: Option<f64>,
    /// Derived from the tenant's thresholds when absent.
    pub alert_triggered: Option<bool>,
    /// Derived from the tenant's thresholds when absent.
    pub alert_level: Option<AlertLevel>,
    pub time_to_violation_hours: Option<f64>,
    /// When it was measured; the time of recording when absent.
    pub measured_at: Option<DateTime<Utc>>,
    pub baseline_comparison: Option<Json>,
    pub feature_contributions: Option<Vec<FeatureValue>>,
}

/// What a batch stored, and the drift-alert events its new rows raised.
pub struct RecordedMetrics {
    pub metrics: Created<drift_metric::Model>,
    /// Event numbers (per tenant, in commit order) of the alerts raised by
    /// this call's new rows; empty for a retry.
    pub alert_events: Vec<i64>,
}

impl Idempotent for drift_metric::Entity {
    fn key_column() -> drift_metric::Column {
        drift_metric::Column::MetricId
    }

    fn fingerprint(row: &drift_metric::Model) -> Fingerprint {
        Fingerprint::new()
            .opt_text("resourceId", row.resource_id.as_deref())
            .opt_text("modelId", row.model_id.as_deref())
            .text("driftType", &row.drift_type)
            .decimal("driftScore", &row.drift_score, 4)
            .opt_decimal("driftVelocity", row.drift_velocity.as_ref(), 6)
            .opt_decimal("reconstructionError", row.reconstruction_error.as_ref(), 6)
            .opt_decimal("psiScore", row.psi_score.as_ref(), 6)
            .opt_decimal("ksStatistic", row.ks_statistic.as_ref(), 6)
            .opt_decimal("wassersteinDistance", row.wasserstein_distance.as_ref(), 6)
            .value("alertTriggered", row.alert_triggered)
            .opt_text("alertLevel", row.alert_level.as_deref())
            .opt_decimal(
                "timeToViolationHours",
                row.time_to_violation_hours.as_ref(),
                2,
            )
            .time("measuredAt", row.measured_at)
            .json("baselineComparison", row.baseline_comparison.as_ref())
            .json("featureContributions", row.feature_contributions.as_ref())
    }
}

/// The alert level of a measurement under `thresholds`: the most severe of
/// the levels its PSI, KS and Wasserstein scores fall in; `None` when it
/// has none of them.
pub fn derived_level(
    thresholds: &DriftThresholds,
    psi: Option<f64>,
    ks: Option<f64>,
    wasserstein: Option<f64>,
) -> Option<AlertLevel> {
    [
        psi.map(|v| thresholds.psi.level(v)),
        ks.map(|v| thresholds.ks.level(v)),
        wasserstein.map(|v| thresholds.wasserstein.level(v)),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// Records a batch of drift metrics in one transaction, all or nothing,
/// with the same refusals and retry rule as predictions. Alert fields the
/// caller leaves out are derived from the tenant's thresholds; every new
/// row with an alert triggered gets its drift-alert event.
pub async fn record(
    writer: &Writer<can::Ingest>,
    inputs: Vec<DriftMetricInput>,
    max_batch: usize,
) -> ApiResult<RecordedMetrics> {
    let checked = check_batch(
        inputs,
        max_batch,
        "drift metrics",
        "metricId",
        |input| &input.metric_id,
        check_metric,
    )?;
    let checked = checked.into_iter().enumerate().collect();
    store(writer, checked, Items::List("input")).await
}

/// Writes checked metrics (each with its item's position) in one
/// transaction: the body of [`record`] and of [`DriftLoad::finish`].
async fn store(
    writer: &Writer<can::Ingest>,
    checked: Vec<(usize, (DriftMetricInput, Values))>,
    items: Items<'_>,
) -> ApiResult<RecordedMetrics> {
    if checked.is_empty() {
        return Ok(RecordedMetrics {
            metrics: Created::default(),
            alert_events: Vec::new(),
        });
    }
    let txn = writer.begin().await?;
    referenced_models(
        &txn,
        items,
        checked
            .iter()
            .map(|(i, (input, _))| (*i, input.metric_id.as_str(), input.model_id.as_deref())),
    )
    .await?;
    let thresholds = thresholds::for_tenant(&txn).await?;
    let recorded_at = now();
    let rows = checked
        .into_iter()
        .map(|(index, (input, values))| {
            let row = into_row(input, values, txn.tenant(), &thresholds, recorded_at);
            (index, row)
        })
        .collect();
    let metrics = create_idempotent_at::<drift_metric::Entity>(&txn, rows, items).await?;
    let alerting: Vec<&str> = metrics
        .rows
        .iter()
        .zip(&metrics.inserted)
        .filter(|(row, inserted)| **inserted && row.alert_triggered == Some(true))
        .map(|(row, _)| row.metric_id.as_str())
        .collect();
    let alert_events = alerts::raise(&txn, &alerting)
        .await
        .map_err(ApiError::from_write)?;
    commit(txn).await?;
    if !alert_events.is_empty() {
        writer.events().alerts_committed(writer.tenant());
    }
    count_ingested(&metrics);
    tracing::info!(
        batch = metrics.rows.len(),
        inserted = metrics.inserted_count(),
        alerts = alert_events.len(),
        "drift metrics recorded"
    );
    Ok(RecordedMetrics {
        metrics,
        alert_events,
    })
}

/// How much one drift load may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriftLimits {
    /// Most metrics (a load of more is refused).
    pub max_items: usize,
    /// Most memory its checked metrics may take, estimated from above from
    /// their parsed form (a load past it is refused). Writing them costs a
    /// small multiple more for a moment: the insert statement's copy of a
    /// chunk, and the stored rows read back for retries.
    pub max_held_bytes: usize,
}

impl DriftLimits {
    pub const DEFAULT_MAX_ITEMS: usize = 100_000;
    pub const DEFAULT_MAX_HELD_BYTES: usize = 64 * 1024 * 1024;
}

impl Default for DriftLimits {
    fn default() -> Self {
        Self {
            max_items: Self::DEFAULT_MAX_ITEMS,
            max_held_bytes: Self::DEFAULT_MAX_HELD_BYTES,
        }
    }
}

/// A bulk load of drift metrics (`POST /ingest/drift-metrics`): items are
/// checked as they arrive, every problem of every item collected and ids
/// distinct within the load, then written as [`record`] writes a batch.
/// Unlike predictions, checked metrics are held until the end, bounded by
/// [`DriftLimits`] in count and in memory: they are windowed summaries, far
/// fewer than predictions, and their thresholds and alerts are decided over
/// the whole load in one transaction.
pub struct DriftLoad {
    writer: Writer<can::Ingest>,
    items: Items<'static>,
    limits: DriftLimits,
    seen: HashMap<String, usize>,
    checked: Vec<(usize, (DriftMetricInput, Values))>,
    /// Estimated bytes `seen` and `checked` hold.
    held: usize,
    refusals: Refusals,
    count: usize,
}

impl DriftLoad {
    pub fn new(writer: &Writer<can::Ingest>, items: Items<'static>, limits: DriftLimits) -> Self {
        Self {
            writer: writer.clone(),
            items,
            limits,
            seen: HashMap::new(),
            checked: Vec::new(),
            held: 0,
            refusals: Refusals::default(),
            count: 0,
        }
    }

    /// Records `problems` of the load (see [`Refusals`]); a refused load
    /// stops holding items.
    pub fn note(&mut self, problems: Vec<InputProblem>) {
        self.refusals.note(problems);
        if self.refusals.any() {
            self.checked = Vec::new();
        }
    }

    /// Checks item `index` and holds it.
    pub fn push(&mut self, index: usize, input: DriftMetricInput) {
        self.count += 1;
        let mut checker = Checker::new();
        let id = input.metric_id.clone();
        let max_items = self.limits.max_items;
        if Some(self.count) == max_items.checked_add(1) {
            self.items.check(&mut checker, index, &id).problem(
                "",
                format!("a load holds at most {max_items} drift metrics; split it"),
            );
        }
        let held_before = self.held;
        if let Some(&first) = self.seen.get(&id) {
            let first = self.items.name(first);
            self.items.check(&mut checker, index, &id).problem(
                "metricId",
                format!("`{id}` occurs more than once in this load (first at {first})"),
            );
        } else if self.count <= max_items {
            self.held += SEEN_ENTRY_BYTES + id.capacity();
            self.seen.insert(id.clone(), index);
        }
        let checked = check_metric(&mut self.items.check(&mut checker, index, &id), input);
        self.held += held_bytes(&checked);
        let max_bytes = self.limits.max_held_bytes;
        if self.held > max_bytes && held_before <= max_bytes {
            self.items.check(&mut checker, index, &id).problem(
                "",
                format!(
                    "a load holds at most {max_bytes} bytes of parsed drift metrics, \
                     and this one passes that here; split it"
                ),
            );
        }
        let problems = checker.into_problems();
        if !problems.is_empty() || self.refusals.any() {
            self.note(problems);
            return;
        }
        self.checked.push((index, checked));
    }

    /// Refuses the load if any item was refused; else writes it whole and
    /// commits.
    pub async fn finish(mut self) -> ApiResult<DriftLoaded> {
        self.refusals.finish()?;
        let recorded = store(&self.writer, self.checked, self.items)
            .await
            .map_err(listed)?;
        let inserted = recorded.metrics.inserted_count();
        Ok(DriftLoaded {
            items: self.count,
            inserted,
            duplicates: self.count - inserted,
            alerts: recorded.alert_events.len(),
        })
    }
}

/// An id's entry in a load's `seen` map, besides the id's own bytes: the
/// key, the value and the table's control byte, at the table's worst load.
const SEEN_ENTRY_BYTES: usize = 2 * (size_of::<String>() + size_of::<usize>() + 1);

/// Estimated bytes a checked metric held by a load takes.
fn held_bytes((input, values): &(DriftMetricInput, Values)) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
    let json = |j: &Option<Json>| j.as_ref().map_or(0, footprint::json);
    size_of::<(usize, (DriftMetricInput, Values))>()
        + input.metric_id.capacity()
        + text(&input.resource_id)
        + text(&input.model_id)
        + json(&input.baseline_comparison)
        + json(&values.feature_contributions)
}

/// What a drift load did.
#[derive(Debug, PartialEq, Eq)]
pub struct DriftLoaded {
    pub items: usize,
    pub inserted: usize,
    /// Items stored before with the same content (retries).
    pub duplicates: usize,
    /// Drift-alert events the new rows raised.
    pub alerts: usize,
}

/// Counts what was written, and the alerts it raised by level.
fn count_ingested(metrics: &Created<drift_metric::Model>) {
    let m = telemetry::metrics();
    m.ingested(Ingested::DriftMetrics, metrics.inserted_count() as u64);
    let raised = metrics
        .rows
        .iter()
        .zip(&metrics.inserted)
        .filter(|(row, inserted)| **inserted && row.alert_triggered == Some(true));
    for (row, _) in raised {
        match row.alert_level.as_deref().and_then(AlertLevel::from_db) {
            Some(AlertLevel::Critical) => m.alert_raised(Level::Critical),
            Some(AlertLevel::Warning) => m.alert_raised(Level::Warning),
            // Triggered metrics are at WARNING or above.
            Some(AlertLevel::Info) | None => {}
        }
    }
}

/// A metric's numbers at column precision.
struct Values {
    drift_score: rust_decimal::Decimal,
    drift_velocity: Option<rust_decimal::Decimal>,
    reconstruction_error: Option<rust_decimal::Decimal>,
    psi_score: Option<rust_decimal::Decimal>,
    ks_statistic: Option<rust_decimal::Decimal>,
    wasserstein_distance: Option<rust_decimal::Decimal>,
    time_to_violation_hours: Option<rust_decimal::Decimal>,
    feature_contributions: Option<Json>,
}

/// Checks a metric; the checked contributions replace the input's.
fn check_metric(
    check: &mut super::Check<'_>,
    mut input: DriftMetricInput,
) -> (DriftMetricInput, Values) {
    check.id("metricId", &input.metric_id);
    if let Some(resource_id) = &input.resource_id {
        check.id("resourceId", resource_id);
    }
    if let Some(model_id) = &input.model_id {
        check.id("modelId", model_id);
    }
    let values = Values {
        drift_score: check.decimal("driftScore", input.drift_score, DecimalSpec::DRIFT_SCORE),
        drift_velocity: check.opt_decimal(
            "driftVelocity",
            input.drift_velocity,
            DecimalSpec::SIGNED_MEASURE,
        ),
        reconstruction_error: check.opt_decimal(
            "reconstructionError",
            input.reconstruction_error,
            DecimalSpec::MEASURE,
        ),
        psi_score: check.opt_decimal("psiScore", input.psi_score, DecimalSpec::MEASURE),
        ks_statistic: check.opt_decimal("ksStatistic", input.ks_statistic, KS),
        wasserstein_distance: check.opt_decimal(
            "wassersteinDistance",
            input.wasserstein_distance,
            DecimalSpec::MEASURE,
        ),
        time_to_violation_hours: check.opt_decimal(
            "timeToViolationHours",
            input.time_to_violation_hours,
            DecimalSpec::AMOUNT,
        ),
        feature_contributions: input
            .feature_contributions
            .take()
            .map(|values| shape::contributions(check, "featureContributions", &values, None)),
    };
    (input, values)
}

fn into_row(
    input: DriftMetricInput,
    values: Values,
    tenant: &str,
    thresholds: &DriftThresholds,
    recorded_at: DateTime<Utc>,
) -> NewRow<drift_metric::Model> {
    use rust_decimal::prelude::ToPrimitive;
    let mut defaulted = Vec::new();
    let derived = derived_level(
        thresholds,
        values.psi_score.and_then(|d| d.to_f64()),
        values.ks_statistic.and_then(|d| d.to_f64()),
        values.wasserstein_distance.and_then(|d| d.to_f64()),
    );
    // Derived values follow the thresholds of the moment; a retry after the
    // tenant changed them is still the same write.
    let alert_level = input.alert_level.or_else(|| {
        defaulted.push("alertLevel");
        derived
    });
    let alert_triggered = input.alert_triggered.unwrap_or_else(|| {
        defaulted.push("alertTriggered");
        matches!(
            alert_level,
            Some(AlertLevel::Warning | AlertLevel::Critical)
        )
    });
    let measured_at = input.measured_at.unwrap_or_else(|| {
        defaulted.push("measuredAt");
        recorded_at
    });
    NewRow {
        row: drift_metric::Model {
            id: uuid::Uuid::new_v4(),
            metric_id: input.metric_id,
            resource_id: input.resource_id,
            tenant_id: tenant.to_owned(),
            model_id: input.model_id,
            drift_type: input.drift_type.as_db().to_owned(),
            drift_score: values.drift_score,
            drift_velocity: values.drift_velocity,
            reconstruction_error: values.reconstruction_error,
            psi_score: values.psi_score,
            ks_statistic: values.ks_statistic,
            wasserstein_distance: values.wasserstein_distance,
            alert_triggered: Some(alert_triggered),
            alert_level: alert_level.map(|l| l.as_db().to_owned()),
            time_to_violation_hours: values.time_to_violation_hours,
            measured_at: Some(truncate_to_micros(measured_at)),
            baseline_comparison: input.baseline_comparison,
            feature_contributions: values.feature_contributions,
        },
        defaulted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(features: usize) -> (DriftMetricInput, Values) {
        let input = DriftMetricInput {
            metric_id: "drift-2026-11-20-cpu-0001".into(),
            resource_id: Some("res-0001".into()),
            model_id: Some("compliance-risk-v3".into()),
            drift_type: DriftType::Data,
            drift_score: 0.25,
            drift_velocity: None,
            reconstruction_error: None,
            psi_score: Some(0.3),
            ks_statistic: Some(0.01),
            wasserstein_distance: None,
            alert_triggered: None,
            alert_level: None,
            time_to_violation_hours: None,
            measured_at: None,
            baseline_comparison: None,
            feature_contributions: Some(
                (0..features)
                    .map(|i| FeatureValue {
                        feature: format!("feature_{i}"),
                        value: 0.01 * i as f64,
                    })
                    .collect(),
            ),
        };
        let mut checker = Checker::new();
        let checked = check_metric(&mut Items::Lines.check(&mut checker, 1, "d"), input);
        assert!(checker.into_problems().is_empty());
        checked
    }

    #[test]
    fn default_limits_agree_for_plain_metrics() {
        // A load at the count cap of metrics without contributions fits the
        // memory budget; one with 20 contributions each reaches it first.
        let plain = held_bytes(&checked(0)) + SEEN_ENTRY_BYTES;
        let with_20 = held_bytes(&checked(20)) + SEEN_ENTRY_BYTES;
        let limits = DriftLimits::default();
        assert!(plain * limits.max_items <= limits.max_held_bytes, "{plain}");
        assert!(
            with_20 * limits.max_items > limits.max_held_bytes,
            "{with_20}"
        );
        // The input's contributions were dropped once checked.
        assert!(checked(20).0.feature_contributions.is_none());
    }

    #[test]
    fn the_most_severe_banded_score_sets_the_level() {
        let t = DriftThresholds::default();
        assert_eq!(derived_level(&t, None, None, None), None);
        assert_eq!(
            derived_level(&t, Some(0.05), None, None),
            Some(AlertLevel::Info)
        );
        assert_eq!(
            derived_level(&t, Some(0.05), Some(0.15), None),
            Some(AlertLevel::Warning)
        );
        assert_eq!(
            derived_level(&t, Some(0.3), Some(0.15), Some(0.0)),
            Some(AlertLevel::Critical)
        );
        // PSI 0.25 is still moderate: critical starts above it.
        assert_eq!(
            derived_level(&t, Some(0.25), None, None),
            Some(AlertLevel::Warning)
        );
    }
}
