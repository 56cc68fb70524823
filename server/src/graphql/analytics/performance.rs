//! Model performance (registered metrics beside what predictions and
//! feedback show) and champion/challenger comparison.

use std::sync::Arc;

use async_graphql::{Context, Lookahead, Object, SimpleObject};
use entity::model;

use super::measures::{reads_percentile, LatencyStats, PredictionMeasures, RiskDistribution};
use crate::error::{ApiError, ApiResult};
use crate::graphql::loaders::{load_row, PageKey, PerformanceOfModel};
use crate::graphql::models::{Model, ModelMetrics};
use crate::graphql::{common, request_context};
use crate::store::analytics::{self as store, performance as perf};

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
    /// Expected calibration error: over the bins, each bin's share of the
    /// outcomes times |mean probability − observed rate|; 0 is perfect.
    /// Null without outcomes. What a `CALIBRATION_ERROR` monitor watches.
    pub expected_calibration_error: Option<f64>,
    /// Ten equal-width reliability bins over [0, 1].
    pub bins: Vec<CalibrationBin>,
}

impl From<perf::Calibration> for Calibration {
    fn from(c: perf::Calibration) -> Self {
        Self {
            outcomes: c.outcomes,
            brier_score: c.brier_score,
            expected_calibration_error: c.expected_error(),
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
    pub(super) fn between(a: &perf::ModelPerformance, b: &perf::ModelPerformance) -> Self {
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

/// The performance options of a field's arguments, measuring what the
/// field's selection reads.
pub(super) fn selected_options(
    ctx: &Context<'_>,
    window: Option<common::TimeRange>,
    decision_threshold: Option<f64>,
) -> ApiResult<Arc<perf::PerformanceOptions>> {
    performance_options(
        window,
        decision_threshold,
        performance_read(ctx.look_ahead()),
    )
}

/// The parts of a model's performance the selection under `performance`
/// (a `ModelPerformance` field, fragments included) reads.
pub(super) fn performance_read(performance: Lookahead<'_>) -> perf::Measured {
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
    let options = selected_options(ctx, window, decision_threshold)?;
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
