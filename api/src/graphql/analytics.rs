//! Analytics: model performance, grouped prediction statistics, SHAP
//! importance, drift summaries and model comparison. Resolvers only turn
//! arguments into data-layer requests; every aggregate is computed in SQL
//! (see `store::analytics`). Measures are rounded to 9 decimal places.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Lookahead, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::model;

use super::common::{vocab, vocab_opt};
use super::drift::{AlertLevel, DriftType};
use super::loaders::{load_row, PageKey, PerformanceOfModel};
use super::models::{Model, ModelFilter, ModelMetrics};
use super::predictions::{PredictionFilter, RemediationStatus, RiskLevel};
use super::{common, request_context};
use crate::error::{ApiError, ApiResult};
use crate::store::analytics::{
    self as store, drift as drift_data, performance as perf, shap, stats, Bucketing,
};
use crate::store::filter::invalid;
use crate::store::thresholds::{Band, DriftThresholds as DataThresholds};

/// `shapImportance`'s `top` when none is given.
pub const DEFAULT_TOP_FEATURES: i32 = 10;

/// The largest `top` of `shapImportance`.
pub const MAX_TOP_FEATURES: i32 = 500;

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::store::analytics::BucketUnit")]
pub enum BucketUnit {
    Hour,
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
}

/// Calendar buckets: a unit, on the wall clock of a time zone.
#[derive(InputObject, Clone, Debug)]
pub struct BucketInput {
    pub unit: BucketUnit,
    /// IANA time zone name, e.g. `Europe/Berlin`. Days, weeks and months
    /// start at local midnight (a day across a DST change lasts 23 or 25 hours).
    #[graphql(default = "UTC")]
    pub timezone: String,
}

impl BucketInput {
    fn bucketing(&self) -> ApiResult<Bucketing> {
        Bucketing::new(self.unit.into(), Some(&self.timezone), "bucket.timezone")
    }
}

/// What `predictionStats` groups by (besides the bucket).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::store::analytics::stats::StatsDimension")]
pub enum PredictionGroupBy {
    Model,
    ModelVersion,
    RiskLevel,
    Resource,
    RemediationStatus,
}

/// A model and, optionally, one version of its predictions.
#[derive(InputObject, Clone, Debug)]
pub struct ModelVersionInput {
    pub model_id: String,
    /// Only predictions made by this `modelVersion`; all when omitted.
    pub version: Option<String>,
}

/// Average, smallest and largest value; null when there are no values.
#[derive(SimpleObject, Clone, Copy)]
pub struct Spread {
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl From<store::Spread> for Spread {
    fn from(s: store::Spread) -> Self {
        Self {
            avg: s.avg,
            min: s.min,
            max: s.max,
        }
    }
}

/// A latency distribution in milliseconds. Percentiles are continuous
/// (linear interpolation between ranks, as PostgreSQL's `percentile_cont`).
#[derive(SimpleObject, Clone, Copy)]
pub struct LatencyStats {
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// True when the percentiles are estimated rather than exact: model
    /// performance on PostgreSQL over more than 5000 predictions of a model
    /// reads them from hourly histograms, within 1 % of the exact value.
    pub percentiles_estimated: bool,
}

impl From<store::Latency> for LatencyStats {
    fn from(l: store::Latency) -> Self {
        Self {
            avg: l.spread.avg,
            min: l.spread.min,
            max: l.spread.max,
            p50: l.p50,
            p95: l.p95,
            p99: l.p99,
            percentiles_estimated: l.estimated,
        }
    }
}

/// Predictions per risk level.
#[derive(SimpleObject, Clone, Copy)]
pub struct RiskDistribution {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl From<store::RiskCounts> for RiskDistribution {
    fn from(r: store::RiskCounts) -> Self {
        Self {
            critical: r.critical,
            high: r.high,
            medium: r.medium,
            low: r.low,
        }
    }
}

/// Measures of a set of predictions.
#[derive(SimpleObject, Clone, Copy)]
pub struct PredictionMeasures {
    pub count: u64,
    pub violation_probability: Spread,
    pub confidence_score: Spread,
    pub inference_time_ms: LatencyStats,
    pub risk_distribution: RiskDistribution,
    /// Predictions at risk level `high` or `critical`.
    pub high_or_critical_count: u64,
}

impl From<store::PredictionMeasures> for PredictionMeasures {
    fn from(m: store::PredictionMeasures) -> Self {
        Self {
            count: m.count,
            violation_probability: m.violation_probability.into(),
            confidence_score: m.confidence_score.into(),
            inference_time_ms: m.inference_time_ms.into(),
            risk_distribution: m.risk.into(),
            high_or_critical_count: m.risk.high_or_critical(),
        }
    }
}

/// Feedback on a model's predictions.
#[derive(SimpleObject, Clone, Copy)]
pub struct FeedbackCoverage {
    /// Feedback entries.
    pub count: u64,
    /// Predictions with at least one feedback entry.
    pub predictions_with_feedback: u64,
    /// Share of the predictions that have feedback; null without predictions.
    pub coverage: Option<f64>,
    /// Mean `accuracyRating` (0–5) of the feedback that has one.
    pub mean_accuracy_rating: Option<f64>,
}

/// Quality observed through feedback. A prediction's outcome is its latest
/// feedback's `correctLabel`, or else implied by its `feedbackType`
/// (`FALSE_POSITIVE` → no violation, `FALSE_NEGATIVE` → violation, `CORRECT` →
/// as decided, `INCORRECT` → the opposite). The model decided "violation"
/// when `violationProbability ≥ decisionThreshold`. Rates are null when
/// their denominator is zero.
#[derive(SimpleObject, Clone, Copy)]
pub struct ObservedQuality {
    pub decision_threshold: f64,
    /// Predictions with an outcome.
    pub labelled: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
    pub accuracy: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1_score: Option<f64>,
    /// FP / (FP + TN).
    pub false_positive_rate: Option<f64>,
    /// FN / (FN + TP).
    pub false_negative_rate: Option<f64>,
}

impl ObservedQuality {
    fn new(c: perf::Confusion, decision_threshold: f64) -> Self {
        Self {
            decision_threshold,
            labelled: c.labelled(),
            true_positives: c.true_positives,
            false_positives: c.false_positives,
            true_negatives: c.true_negatives,
            false_negatives: c.false_negatives,
            accuracy: c.accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            f1_score: c.f1_score(),
            false_positive_rate: c.false_positive_rate(),
            false_negative_rate: c.false_negative_rate(),
        }
    }
}

/// Predictions with an outcome whose probability lies in `[lower, upper)`
/// (the last bin includes 1).
#[derive(SimpleObject, Clone, Copy)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean `violationProbability` in the bin.
    pub mean_predicted: Option<f64>,
    /// Share of the bin's predictions whose outcome was a violation.
    pub observed_rate: Option<f64>,
}

/// How well probabilities match outcomes, over the predictions with one.
#[derive(SimpleObject, Clone)]
pub struct Calibration {
    pub outcomes: u64,
    /// Mean of (probability − outcome)²; 0 is perfect. Null without outcomes.
    pub brier_score: Option<f64>,
    /// Ten equal-width reliability bins over [0, 1].
    pub bins: Vec<CalibrationBin>,
}

impl From<perf::Calibration> for Calibration {
    fn from(c: perf::Calibration) -> Self {
        Self {
            outcomes: c.outcomes,
            brier_score: c.brier_score,
            bins: c
                .bins
                .into_iter()
                .map(|b| CalibrationBin {
                    lower: b.lower,
                    upper: b.upper,
                    count: b.count,
                    mean_predicted: b.mean_predicted,
                    observed_rate: b.observed_rate,
                })
                .collect(),
        }
    }
}

/// A model's performance over a window.
pub struct ModelPerformance {
    model: model::Model,
    version: Option<String>,
    measured: perf::ModelPerformance,
    decision_threshold: f64,
}

impl ModelPerformance {
    pub fn new(
        model: model::Model,
        version: Option<String>,
        measured: perf::ModelPerformance,
        decision_threshold: f64,
    ) -> Self {
        Self {
            model,
            version,
            measured,
            decision_threshold,
        }
    }
}

/// A model's performance over a window: its registered metrics beside what
/// its predictions and their feedback show.
#[Object]
impl ModelPerformance {
    async fn model(&self) -> Model {
        Model::from(self.model.clone())
    }

    /// The prediction version measured; null when all versions are.
    async fn model_version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The metrics registered with the model (from training).
    async fn registered_metrics(&self) -> ModelMetrics {
        ModelMetrics::of(&self.model)
    }

    async fn prediction_count(&self) -> u64 {
        self.measured.predictions.count
    }

    async fn avg_confidence(&self) -> Option<f64> {
        self.measured.predictions.confidence_score.avg
    }

    async fn avg_inference_time_ms(&self) -> Option<f64> {
        self.measured.predictions.inference_time_ms.spread.avg
    }

    async fn inference_time_ms(&self) -> LatencyStats {
        self.measured.predictions.inference_time_ms.into()
    }

    async fn risk_distribution(&self) -> RiskDistribution {
        self.measured.predictions.risk.into()
    }

    /// All prediction measures.
    async fn predictions(&self) -> PredictionMeasures {
        self.measured.predictions.into()
    }

    async fn feedback(&self) -> FeedbackCoverage {
        let f = self.measured.feedback;
        FeedbackCoverage {
            count: f.count,
            predictions_with_feedback: f.predictions_with_feedback,
            coverage: store::ratio(f.predictions_with_feedback, self.measured.predictions.count),
            mean_accuracy_rating: f.mean_accuracy_rating,
        }
    }

    async fn observed(&self) -> ObservedQuality {
        ObservedQuality::new(self.measured.confusion, self.decision_threshold)
    }

    async fn calibration(&self) -> Calibration {
        self.measured.calibration.clone().into()
    }
}

/// `b − a` for the measures a champion/challenger decision looks at; null
/// where either side has no value.
#[derive(SimpleObject)]
pub struct PerformanceDifference {
    pub prediction_count: i64,
    pub avg_confidence: Option<f64>,
    pub p50_inference_time_ms: Option<f64>,
    pub p95_inference_time_ms: Option<f64>,
    pub p99_inference_time_ms: Option<f64>,
    pub accuracy: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1_score: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub false_negative_rate: Option<f64>,
    pub brier_score: Option<f64>,
}

impl PerformanceDifference {
    fn between(a: &perf::ModelPerformance, b: &perf::ModelPerformance) -> Self {
        let diff = |x: Option<f64>, y: Option<f64>| Some(store::measure(y? - x?));
        let (la, lb) = (
            a.predictions.inference_time_ms,
            b.predictions.inference_time_ms,
        );
        let (ca, cb) = (a.confusion, b.confusion);
        Self {
            prediction_count: b.predictions.count as i64 - a.predictions.count as i64,
            avg_confidence: diff(
                a.predictions.confidence_score.avg,
                b.predictions.confidence_score.avg,
            ),
            p50_inference_time_ms: diff(la.p50, lb.p50),
            p95_inference_time_ms: diff(la.p95, lb.p95),
            p99_inference_time_ms: diff(la.p99, lb.p99),
            accuracy: diff(ca.accuracy(), cb.accuracy()),
            precision: diff(ca.precision(), cb.precision()),
            recall: diff(ca.recall(), cb.recall()),
            f1_score: diff(ca.f1_score(), cb.f1_score()),
            false_positive_rate: diff(ca.false_positive_rate(), cb.false_positive_rate()),
            false_negative_rate: diff(ca.false_negative_rate(), cb.false_negative_rate()),
            brier_score: diff(a.calibration.brier_score, b.calibration.brier_score),
        }
    }
}

/// Two models (or versions) side by side over the same window.
#[derive(SimpleObject)]
pub struct ModelComparison {
    pub a: ModelPerformance,
    pub b: ModelPerformance,
    pub difference: PerformanceDifference,
}

/// The key of a statistics group: the bucket start when bucketed and the
/// value of each grouped dimension (null for dimensions not grouped by).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PredictionStatsKey {
    pub bucket_start: Option<DateTime<Utc>>,
    pub model_id: Option<String>,
    pub model_version: Option<String>,
    pub resource_id: Option<String>,
    #[graphql(skip)]
    risk_level: Option<String>,
    #[graphql(skip)]
    remediation_status: Option<String>,
}

#[ComplexObject]
impl PredictionStatsKey {
    async fn risk_level(&self) -> async_graphql::Result<Option<RiskLevel>> {
        vocab_opt(self.risk_level.as_deref())
    }

    /// Null also for predictions without a remediation status.
    async fn remediation_status(&self) -> async_graphql::Result<Option<RemediationStatus>> {
        vocab_opt(self.remediation_status.as_deref())
    }
}

#[derive(SimpleObject)]
pub struct PredictionStatsGroup {
    pub key: PredictionStatsKey,
    pub measures: PredictionMeasures,
}

/// Grouped prediction statistics. When bucketed, every series has a group
/// for every bucket of the window (zero counts where it had no predictions);
/// the first and last bucket may extend beyond the window.
#[derive(SimpleObject)]
pub struct PredictionStats {
    /// Ordered by the grouped dimensions (in `groupBy` order), then by bucket.
    pub groups: Vec<PredictionStatsGroup>,
}

#[derive(SimpleObject)]
pub struct FeatureImportance {
    pub feature: String,
    /// Mean |SHAP value| over the predictions the feature appears in.
    pub mean_abs_value: f64,
    /// Mean signed SHAP value (positive pushes towards a violation).
    pub mean_value: f64,
    /// Predictions the feature has a SHAP value in.
    pub prediction_count: u64,
}

#[derive(SimpleObject)]
pub struct ShapImportance {
    /// Predictions in the window with SHAP values.
    pub prediction_count: u64,
    /// Distinct features seen.
    pub feature_count: u64,
    /// The top features by mean |SHAP|, ties by name.
    pub features: Vec<FeatureImportance>,
}

/// Which score a threshold band applies to.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum ThresholdScore {
    Psi,
    Ks,
    Wasserstein,
}

/// Scores at or above `warning` are a `WARNING` drift, above `critical` a `CRITICAL` one.
#[derive(SimpleObject, Clone, Copy)]
pub struct ThresholdBand {
    pub warning: f64,
    pub critical: f64,
}

impl From<Band> for ThresholdBand {
    fn from(b: Band) -> Self {
        Self {
            warning: b.warning,
            critical: b.critical,
        }
    }
}

/// The tenant's drift alert thresholds. Defaults (the conventions): PSI
/// 0.1 / 0.25 (< 0.1 no drift, 0.1–0.25 moderate, > 0.25 significant), KS and
/// Wasserstein 0.1 / 0.2.
pub struct DriftThresholds(DataThresholds);

impl From<DataThresholds> for DriftThresholds {
    fn from(thresholds: DataThresholds) -> Self {
        Self(thresholds)
    }
}

#[Object]
impl DriftThresholds {
    async fn psi(&self) -> ThresholdBand {
        self.0.psi.into()
    }

    async fn ks(&self) -> ThresholdBand {
        self.0.ks.into()
    }

    async fn wasserstein(&self) -> ThresholdBand {
        self.0.wasserstein.into()
    }

    /// Whether the tenant set its own thresholds (false: the defaults apply).
    async fn custom(&self) -> bool {
        self.0.updated_at.is_some()
    }

    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.updated_at
    }

    /// The alert level `value` of `score` falls in.
    async fn level_of(
        &self,
        score: ThresholdScore,
        value: f64,
    ) -> async_graphql::Result<AlertLevel> {
        if !value.is_finite() {
            return Err(invalid("value", "`value` must be a finite number".into()).into());
        }
        Ok(band(&self.0, score).level(value).into())
    }
}

fn band(thresholds: &DataThresholds, score: ThresholdScore) -> Band {
    match score {
        ThresholdScore::Psi => thresholds.psi,
        ThresholdScore::Ks => thresholds.ks,
        ThresholdScore::Wasserstein => thresholds.wasserstein,
    }
}

/// Latest, largest and average of a score, with the alert level of the
/// latest and largest value under the tenant's thresholds (when banded).
#[derive(SimpleObject)]
pub struct ScoreSummary {
    /// The latest metric's value (null if the latest metric has none).
    pub latest: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub latest_level: Option<AlertLevel>,
    pub max_level: Option<AlertLevel>,
}

impl ScoreSummary {
    fn new(s: drift_data::ScoreSummary, band: Option<Band>) -> Self {
        let level = |value: Option<f64>| Some(AlertLevel::from(band?.level(value?)));
        Self {
            latest: s.latest,
            max: s.max,
            avg: s.avg,
            latest_level: level(s.latest),
            max_level: level(s.max),
        }
    }
}

/// Metrics with an alert triggered, by level.
#[derive(SimpleObject)]
pub struct AlertCounts {
    pub total: u64,
    pub info: u64,
    pub warning: u64,
    pub critical: u64,
}

#[derive(SimpleObject)]
pub struct DriftTrendPoint {
    pub bucket_start: DateTime<Utc>,
    pub metric_count: u64,
    pub avg_drift_score: Option<f64>,
    pub max_drift_score: Option<f64>,
    pub max_psi: Option<f64>,
    pub max_ks: Option<f64>,
    pub max_wasserstein: Option<f64>,
    /// Metrics in the bucket with an alert triggered.
    pub alerts: u64,
}

#[derive(SimpleObject)]
pub struct DriftTypeSummary {
    pub drift_type: DriftType,
    pub metric_count: u64,
    pub latest_metric_id: Option<String>,
    pub latest_measured_at: Option<DateTime<Utc>>,
    pub drift_score: ScoreSummary,
    pub psi: ScoreSummary,
    pub ks: ScoreSummary,
    pub wasserstein: ScoreSummary,
    pub alerts: AlertCounts,
    /// One point per bucket of the window when `bucket` is given (zero where
    /// nothing was measured), else empty.
    pub trend: Vec<DriftTrendPoint>,
}

#[derive(SimpleObject)]
pub struct DriftSummary {
    pub thresholds: DriftThresholds,
    /// One entry per drift type measured in the window.
    pub types: Vec<DriftTypeSummary>,
}

impl DriftSummary {
    fn new(summary: drift_data::DriftSummary) -> async_graphql::Result<Self> {
        let t = summary.thresholds;
        let mut types = Vec::with_capacity(summary.types.len());
        for s in summary.types {
            types.push(DriftTypeSummary {
                drift_type: vocab(&s.drift_type)?,
                metric_count: s.metrics,
                latest_metric_id: s.latest_metric_id,
                latest_measured_at: s.latest_measured_at,
                drift_score: ScoreSummary::new(s.drift_score, None),
                psi: ScoreSummary::new(s.psi, Some(t.psi)),
                ks: ScoreSummary::new(s.ks, Some(t.ks)),
                wasserstein: ScoreSummary::new(s.wasserstein, Some(t.wasserstein)),
                alerts: AlertCounts {
                    total: s.alerts.total,
                    info: s.alerts.info,
                    warning: s.alerts.warning,
                    critical: s.alerts.critical,
                },
                trend: s
                    .trend
                    .into_iter()
                    .map(|p| DriftTrendPoint {
                        bucket_start: p.bucket_start.unwrap_or_default(),
                        metric_count: p.metrics,
                        avg_drift_score: p.avg_drift_score,
                        max_drift_score: p.max_drift_score,
                        max_psi: p.max_psi,
                        max_ks: p.max_ks,
                        max_wasserstein: p.max_wasserstein,
                        alerts: p.alerts,
                    })
                    .collect(),
            });
        }
        Ok(Self {
            thresholds: DriftThresholds(t),
            types,
        })
    }
}

/// The performance options of a field's arguments, measuring `measured`.
pub fn performance_options(
    window: Option<common::TimeRange>,
    decision_threshold: Option<f64>,
    measured: perf::Measured,
) -> ApiResult<Arc<perf::PerformanceOptions>> {
    Ok(Arc::new(
        perf::PerformanceOptions::new(window.map(Into::into), decision_threshold)?
            .measuring(measured),
    ))
}

/// Whether the selection under a `LatencyStats` field reads a percentile.
fn reads_percentile(latency: Lookahead<'_>) -> bool {
    ["p50", "p95", "p99"]
        .into_iter()
        .any(|p| latency.field(p).exists())
}

/// The measures the selection under a `PredictionMeasures` field reads.
fn measures_read(measures: Lookahead<'_>) -> store::MeasureColumns {
    let latency = measures.field("inferenceTimeMs");
    store::MeasureColumns {
        spreads: measures.field("violationProbability").exists()
            || measures.field("confidenceScore").exists()
            || ["avg", "min", "max"]
                .into_iter()
                .any(|m| latency.field(m).exists()),
        risk: measures.field("riskDistribution").exists()
            || measures.field("highOrCriticalCount").exists(),
        percentiles: store::Percentiles::when(reads_percentile(latency)),
    }
}

/// The parts of a model's performance the selection under `performance`
/// (a `ModelPerformance` field, fragments included) reads.
fn performance_read(performance: Lookahead<'_>) -> perf::Measured {
    let latency = [
        performance.field("inferenceTimeMs"),
        performance.field("predictions").field("inferenceTimeMs"),
    ];
    perf::Measured {
        percentiles: store::Percentiles::when(latency.into_iter().any(reads_percentile)),
        feedback: performance.field("feedback").exists(),
        outcomes: performance.field("observed").exists()
            || performance.field("calibration").exists(),
    }
}

/// `Model.performance`: through the request's loader, so a list of models
/// asking for their performance costs one set of statements.
pub async fn model_performance(
    ctx: &Context<'_>,
    model: &model::Model,
    window: Option<common::TimeRange>,
    decision_threshold: Option<f64>,
) -> async_graphql::Result<ModelPerformance> {
    let rc = request_context(ctx)?;
    let options = performance_options(
        window,
        decision_threshold,
        performance_read(ctx.look_ahead()),
    )?;
    let threshold = options.decision_threshold();
    let key = PerformanceOfModel(PageKey {
        tenant: rc.tenant(),
        parent: model.model_id.clone(),
        query: options,
    });
    let measured = load_row(rc.loaders(), key)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("performance not loaded")))?;
    Ok(ModelPerformance::new(
        model.clone(),
        None,
        measured,
        threshold,
    ))
}

#[derive(Default)]
pub struct AnalyticsQuery;

#[Object]
impl AnalyticsQuery {
    /// Performance of each model matching `filter` (at most 500), ordered by
    /// model id, over predictions made in `window` (all time when omitted).
    #[graphql(complexity = "super::cost::model_performance(&filter, child_complexity)")]
    async fn model_performance(
        &self,
        ctx: &Context<'_>,
        filter: Option<ModelFilter>,
        window: Option<common::TimeRange>,
        #[graphql(
            desc = "Probability at or above which the model decided \"violation\" (default 0.5)."
        )]
        decision_threshold: Option<f64>,
    ) -> async_graphql::Result<Vec<ModelPerformance>> {
        let rc = request_context(ctx)?;
        let options = performance_options(
            window,
            decision_threshold,
            performance_read(ctx.look_ahead()),
        )?;
        let filter = filter.unwrap_or_default().into();
        let measured = perf::for_matching_models(rc.scoped(), &filter, &options).await?;
        Ok(measured
            .into_iter()
            .map(|(model, performance)| {
                ModelPerformance::new(model, None, performance, options.decision_threshold())
            })
            .collect())
    }

    /// Champion against challenger: the same measures for two models (or two
    /// versions of one) over the same window, and their difference `b − a`.
    async fn compare_models(
        &self,
        ctx: &Context<'_>,
        a: ModelVersionInput,
        b: ModelVersionInput,
        window: Option<common::TimeRange>,
        decision_threshold: Option<f64>,
    ) -> async_graphql::Result<ModelComparison> {
        let rc = request_context(ctx)?;
        // Two models, and `difference` reads every part: all measured.
        let options = performance_options(window, decision_threshold, perf::Measured::ALL)?;
        let contender = |side: ModelVersionInput| perf::Contender {
            model_id: side.model_id,
            version: side.version,
        };
        let (a, b) = (contender(a), contender(b));
        let [(model_a, perf_a), (model_b, perf_b)] =
            perf::compare(rc.scoped(), [&a, &b], &options).await?;
        let threshold = options.decision_threshold();
        let difference = PerformanceDifference::between(&perf_a, &perf_b);
        Ok(ModelComparison {
            a: ModelPerformance::new(model_a, a.version, perf_a, threshold),
            b: ModelPerformance::new(model_b, b.version, perf_b, threshold),
            difference,
        })
    }

    /// Prediction statistics grouped by `groupBy` and, with `bucket`, by
    /// calendar bucket (then `from` and `to` are required; at most 1000
    /// buckets and 10000 groups). `from`/`to` narrow `filter.from`/`filter.to`.
    #[graphql(
        complexity = "super::cost::prediction_stats(&filter, &group_by, &bucket, &from, &to, child_complexity)"
    )]
    async fn prediction_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<PredictionFilter>,
        group_by: Option<Vec<PredictionGroupBy>>,
        bucket: Option<BucketInput>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<PredictionStats> {
        let rc = request_context(ctx)?;
        let request = stats::StatsRequest {
            filter: filter.unwrap_or_default().into_data()?,
            group_by: group_by
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            bucketing: bucket.as_ref().map(BucketInput::bucketing).transpose()?,
            window: crate::store::TimeRange { from, to },
            measures: measures_read(ctx.look_ahead().field("groups").field("measures")),
        };
        let groups = stats::prediction_stats(rc.scoped(), request).await?;
        Ok(PredictionStats {
            groups: groups
                .into_iter()
                .map(|g| PredictionStatsGroup {
                    key: PredictionStatsKey {
                        bucket_start: g.key.bucket_start,
                        model_id: g.key.model_id,
                        model_version: g.key.model_version,
                        resource_id: g.key.resource_id,
                        risk_level: g.key.risk_level,
                        remediation_status: g.key.remediation_status,
                    },
                    measures: g.measures.into(),
                })
                .collect(),
        })
    }

    /// Global feature importance of a model: mean |SHAP value| per feature
    /// over its predictions in `window`, the `top` (default 10, at most 500)
    /// first.
    #[graphql(complexity = "super::cost::shap_importance(&top, child_complexity)")]
    async fn shap_importance(
        &self,
        ctx: &Context<'_>,
        model_id: String,
        window: Option<common::TimeRange>,
        #[graphql(desc = "How many features to return (default 10).")] top: Option<i32>,
    ) -> async_graphql::Result<ShapImportance> {
        let rc = request_context(ctx)?;
        let top = top.unwrap_or(DEFAULT_TOP_FEATURES);
        if !(1..=MAX_TOP_FEATURES).contains(&top) {
            return Err(invalid(
                "top",
                format!("`top` must be between 1 and {MAX_TOP_FEATURES}"),
            )
            .into());
        }
        let filter = crate::store::predictions::PredictionFilter {
            model_ids: Some(vec![model_id]),
            predicted_at: window.map(Into::into),
            ..Default::default()
        };
        let importance = shap::importance(rc.scoped(), &filter, top as usize).await?;
        Ok(ShapImportance {
            prediction_count: importance.predictions,
            feature_count: importance.feature_count,
            features: importance
                .features
                .into_iter()
                .map(|f| FeatureImportance {
                    feature: f.feature,
                    mean_abs_value: f.mean_abs_value,
                    mean_value: f.mean_value,
                    prediction_count: f.predictions,
                })
                .collect(),
        })
    }

    /// Drift per drift type over `window` for one model (all models when
    /// `modelId` is omitted), with the tenant's thresholds; with `bucket`
    /// (and a bounded window) also the trend per bucket.
    #[graphql(complexity = "super::cost::drift_summary(&window, &bucket, child_complexity)")]
    async fn drift_summary(
        &self,
        ctx: &Context<'_>,
        model_id: Option<String>,
        window: Option<common::TimeRange>,
        bucket: Option<BucketInput>,
    ) -> async_graphql::Result<DriftSummary> {
        let rc = request_context(ctx)?;
        let request = drift_data::DriftSummaryRequest {
            model_id,
            window: window.map(Into::into),
            bucketing: bucket.as_ref().map(BucketInput::bucketing).transpose()?,
        };
        DriftSummary::new(drift_data::summary(rc.scoped(), request).await?)
    }

    /// The tenant's drift alert thresholds.
    async fn drift_thresholds(&self, ctx: &Context<'_>) -> async_graphql::Result<DriftThresholds> {
        let rc = request_context(ctx)?;
        Ok(DriftThresholds(
            crate::store::thresholds::get(rc.scoped()).await?,
        ))
    }
}
