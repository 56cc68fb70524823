//! Per-model performance: prediction measures, feedback coverage, quality
//! observed through feedback (confusion counts and the rates derived from
//! them) and calibration, for a set of models over a time window.
//!
//! A prediction's outcome comes from its latest feedback (by `created_at`,
//! then `feedback_id`): `correct_label` when the reviewer gave it, otherwise
//! implied by `feedback_type` relative to the model's decision
//! (`false_positive` → no violation, `false_negative` → violation,
//! `correct` → as decided, `incorrect` → the opposite). The model decides
//! "violation" when `violation_probability ≥ decision threshold`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use entity::model;
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};

use super::sql::Sql;
use super::{
    filtered_predictions, get_count, get_float, get_text, measure, measure_opt,
    prediction_measures_select, ratio, read_prediction_measures, rollups, MeasureColumns,
    Percentiles, PredictionMeasures,
};
use crate::db::{Scoped, ScopedTxn};
use crate::error::{ApiError, ApiResult};
use crate::store::filter::invalid;
use crate::store::models::{self, ModelFilter};
use crate::store::predictions::PredictionFilter;
use crate::store::TimeRange;

/// Equal-width reliability bins over [0, 1].
pub const CALIBRATION_BINS: u32 = 10;

/// The decision threshold used when a request gives none.
pub const DEFAULT_DECISION_THRESHOLD: f64 = 0.5;

/// The parts of a model's performance a request reads. Prediction counts,
/// averages and risk levels come in every answer (one pass over the rows);
/// each part here costs more (a sort, or a join with the feedback) and is
/// computed only when read. What is not computed is absent or zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Measured {
    pub percentiles: Percentiles,
    /// Feedback counts and ratings.
    pub feedback: bool,
    /// Confusion counts and calibration, from each prediction's latest feedback.
    pub outcomes: bool,
}

impl Measured {
    pub const ALL: Self = Self {
        percentiles: Percentiles::Computed,
        feedback: true,
        outcomes: true,
    };
}

/// What a performance request measures over, and which measures.
#[derive(Clone, Debug)]
pub struct PerformanceOptions {
    window: Option<TimeRange>,
    decision_threshold: f64,
    measured: Measured,
}

impl PerformanceOptions {
    pub fn new(window: Option<TimeRange>, decision_threshold: Option<f64>) -> ApiResult<Self> {
        let decision_threshold = decision_threshold.unwrap_or(DEFAULT_DECISION_THRESHOLD);
        if !(0.0..=1.0).contains(&decision_threshold) {
            return Err(invalid(
                "decisionThreshold",
                "`decisionThreshold` must be between 0 and 1".to_owned(),
            ));
        }
        if let Some(TimeRange {
            from: Some(from),
            to: Some(to),
        }) = window
        {
            if from > to {
                return Err(invalid("window", "`window`: from is after to".to_owned()));
            }
        }
        Ok(Self {
            window,
            decision_threshold,
            measured: Measured::ALL,
        })
    }

    /// Computes only `measured` (all by default).
    pub fn measuring(self, measured: Measured) -> Self {
        Self { measured, ..self }
    }

    pub fn decision_threshold(&self) -> f64 {
        self.decision_threshold
    }
}

/// Equal options batch together; the threshold (finite, checked) compares by bits.
impl PartialEq for PerformanceOptions {
    fn eq(&self, other: &Self) -> bool {
        self.window == other.window
            && self.decision_threshold.to_bits() == other.decision_threshold.to_bits()
            && self.measured == other.measured
    }
}

impl Eq for PerformanceOptions {}

impl Hash for PerformanceOptions {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.window.hash(state);
        self.decision_threshold.to_bits().hash(state);
        self.measured.hash(state);
    }
}

/// Feedback given on a model's predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FeedbackMeasures {
    /// Feedback rows.
    pub count: u64,
    /// Predictions with at least one feedback.
    pub predictions_with_feedback: u64,
    pub mean_accuracy_rating: Option<f64>,
}

/// Decisions against outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

impl Confusion {
    pub fn labelled(&self) -> u64 {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.true_positives + self.true_negatives, self.labelled())
    }

    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Harmonic mean of precision and recall, from the counts: 2TP / (2TP + FP + FN).
    pub fn f1_score(&self) -> Option<f64> {
        ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }

    /// FP / (FP + TN): of the resources that did not violate, the share flagged.
    pub fn false_positive_rate(&self) -> Option<f64> {
        ratio(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }

    /// FN / (FN + TP): of the resources that violated, the share missed.
    pub fn false_negative_rate(&self) -> Option<f64> {
        ratio(
            self.false_negatives,
            self.false_negatives + self.true_positives,
        )
    }
}

/// One reliability bin: predictions whose probability lies in `[lower, upper)`
/// (the last bin includes 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_predicted: Option<f64>,
    pub observed_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Predictions with an outcome.
    pub outcomes: u64,
    /// Mean squared difference between probability and outcome (0 is perfect).
    pub brier_score: Option<f64>,
    pub bins: Vec<CalibrationBin>,
}

impl Calibration {
    /// Expected calibration error: over the bins, each bin's share of the
    /// outcomes times |mean probability − observed rate| (0 is perfect;
    /// `None` without outcomes).
    pub fn expected_error(&self) -> Option<f64> {
        if self.outcomes == 0 {
            return None;
        }
        let total = self.outcomes as f64;
        let sum: f64 = self
            .bins
            .iter()
            .filter_map(|b| {
                let gap = (b.mean_predicted? - b.observed_rate?).abs();
                Some(b.count as f64 / total * gap)
            })
            .sum();
        Some(measure(sum))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelPerformance {
    pub predictions: PredictionMeasures,
    pub feedback: FeedbackMeasures,
    pub confusion: Confusion,
    pub calibration: Calibration,
}

/// Running sums of one reliability bin.
#[derive(Clone, Copy, Default)]
struct BinSums {
    count: u64,
    probability: f64,
    positives: u64,
    squared_error: f64,
}

/// Performance of each of `model_ids` (restricted to predictions of
/// `model_version` when given), in one transaction of at most three statements.
/// Every requested model gets an entry, zero when it has no predictions.
pub async fn for_models(
    scoped: &Scoped,
    model_ids: &[String],
    model_version: Option<&str>,
    options: &PerformanceOptions,
) -> ApiResult<HashMap<String, ModelPerformance>> {
    if model_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let txn = scoped.begin_analytics().await?;
    let out = measure_models(&txn, model_ids, model_version, options).await?;
    txn.commit().await?;
    Ok(out)
}

/// The most models one `modelPerformance` answer holds.
pub const MAX_MODELS: usize = 500;

/// The models matching `filter` (by model id), each with its performance:
/// at most four statements in one transaction.
pub async fn for_matching_models(
    scoped: &Scoped,
    filter: &ModelFilter,
    options: &PerformanceOptions,
) -> ApiResult<Vec<(model::Model, ModelPerformance)>> {
    let txn = scoped.begin_analytics().await?;
    let mut rows = models::base(&txn, filter)?
        .limit(MAX_MODELS as u64 + 1)
        .all(txn.conn())
        .await?;
    if rows.len() > MAX_MODELS {
        return Err(invalid(
            "filter",
            format!("more than {MAX_MODELS} models match; narrow the filter"),
        ));
    }
    rows.sort_by(|a, b| a.model_id.cmp(&b.model_id));
    let ids: Vec<String> = rows.iter().map(|m| m.model_id.clone()).collect();
    let mut measured = if ids.is_empty() {
        HashMap::new()
    } else {
        measure_models(&txn, &ids, None, options).await?
    };
    txn.commit().await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let performance = measured.remove(&row.model_id).unwrap_or_else(empty);
            (row, performance)
        })
        .collect())
}

/// One side of a comparison: a model, and optionally one version of its predictions.
#[derive(Clone, Debug)]
pub struct Contender {
    pub model_id: String,
    pub version: Option<String>,
}

/// Both contenders' models and performance, in one transaction. A model
/// the tenant does not have is `NOT_FOUND` (named by `a`/`b`).
pub async fn compare(
    scoped: &Scoped,
    contenders: [&Contender; 2],
    options: &PerformanceOptions,
) -> ApiResult<[(model::Model, ModelPerformance); 2]> {
    let txn = scoped.begin_analytics().await?;
    let ids: Vec<String> = contenders.iter().map(|c| c.model_id.clone()).collect();
    let rows = models::rows(&txn)
        .filter(model::Column::ModelId.is_in(ids))
        .all(txn.conn())
        .await?;
    let mut out = Vec::with_capacity(2);
    for (side, contender) in ["a", "b"].into_iter().zip(contenders) {
        let Some(row) = rows.iter().find(|m| m.model_id == contender.model_id) else {
            return Err(ApiError::NotFound(format!(
                "model {:?} (`{side}.modelId`)",
                contender.model_id
            )));
        };
        let mut measured = measure_models(
            &txn,
            std::slice::from_ref(&contender.model_id),
            contender.version.as_deref(),
            options,
        )
        .await?;
        let performance = measured.remove(&contender.model_id).unwrap_or_else(empty);
        out.push((row.clone(), performance));
    }
    txn.commit().await?;
    let [a, b]: [(model::Model, ModelPerformance); 2] = out
        .try_into()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("two contenders measured")))?;
    Ok([a, b])
}

/// Decisions against outcomes and calibration of `model_id`'s predictions
/// in `window` (only `model_version`'s when given) at `decision_threshold`,
/// inside `txn` (for monitors): from the rollups where they hold the window.
pub async fn outcomes_in(
    txn: &ScopedTxn,
    model_id: &str,
    model_version: Option<&str>,
    window: TimeRange,
    decision_threshold: f64,
) -> ApiResult<(Confusion, Calibration)> {
    let options =
        PerformanceOptions::new(Some(window), Some(decision_threshold))?.measuring(Measured {
            percentiles: Percentiles::Skipped,
            feedback: false,
            outcomes: true,
        });
    let filter = models_filter(&[model_id.to_owned()], model_version, &options);
    let scope = rollups::Scope::for_filter(txn, &filter, rollups::Kept::Hours)?;
    let (_, mut bins) = feedback_and_outcomes(txn, &filter, scope.as_ref(), &options).await?;
    let (confusion, sums) = bins.remove(model_id).unwrap_or_default();
    Ok((confusion, calibration(&sums)))
}

fn empty() -> ModelPerformance {
    ModelPerformance {
        predictions: PredictionMeasures::default(),
        feedback: FeedbackMeasures::default(),
        confusion: Confusion::default(),
        calibration: calibration(&[]),
    }
}

async fn measure_models(
    txn: &ScopedTxn,
    model_ids: &[String],
    model_version: Option<&str>,
    options: &PerformanceOptions,
) -> ApiResult<HashMap<String, ModelPerformance>> {
    let filter = models_filter(model_ids, model_version, options);
    let measured = options.measured;
    let scope = rollups::Scope::for_filter(txn, &filter, rollups::Kept::Hours)?;
    let predictions = match &scope {
        Some(scope) => rollups::prediction_measures(txn, scope, measured.percentiles).await?,
        None => prediction_measures(txn, &filter, measured.percentiles).await?,
    };
    let (feedback, bins) = feedback_and_outcomes(txn, &filter, scope.as_ref(), options).await?;
    let mut out = HashMap::with_capacity(model_ids.len());
    for model_id in model_ids {
        let (confusion, sums) = bins.get(model_id).cloned().unwrap_or_default();
        out.insert(
            model_id.clone(),
            ModelPerformance {
                predictions: predictions.get(model_id).copied().unwrap_or_default(),
                feedback: feedback.get(model_id).copied().unwrap_or_default(),
                confusion,
                calibration: calibration(&sums),
            },
        );
    }
    Ok(out)
}

/// The predictions of `model_ids` (of `model_version` when given) in the
/// options' window.
fn models_filter(
    model_ids: &[String],
    model_version: Option<&str>,
    options: &PerformanceOptions,
) -> PredictionFilter {
    PredictionFilter {
        model_ids: Some(model_ids.to_vec()),
        model_versions: model_version.map(|v| vec![v.to_owned()]),
        predicted_at: options.window,
        ..Default::default()
    }
}

/// Per model, feedback measures and outcome bins (each empty unless the
/// options measure it): from the rollups' feedback bins when the scope and
/// the threshold allow, else from the rows.
async fn feedback_and_outcomes(
    txn: &ScopedTxn,
    filter: &PredictionFilter,
    scope: Option<&rollups::Scope<'_>>,
    options: &PerformanceOptions,
) -> ApiResult<(
    HashMap<String, FeedbackMeasures>,
    HashMap<String, (Confusion, Vec<BinSums>)>,
)> {
    let measured = options.measured;
    let threshold_bin = rollups::threshold_bin(options.decision_threshold);
    let (feedback, bins) = match (threshold_bin, scope) {
        (Some(bin), Some(scope)) if measured.feedback || measured.outcomes => {
            let sums = rollups::outcome_sums(txn, scope).await?;
            let mut feedback = HashMap::new();
            let mut bins = HashMap::new();
            for (model_id, model) in sums {
                let (f, confusion, sums) = from_bins(&model, bin);
                feedback.insert(model_id.clone(), f);
                bins.insert(model_id, (confusion, sums));
            }
            (feedback, bins)
        }
        _ => {
            let feedback = if measured.feedback {
                feedback_measures(txn, filter).await?
            } else {
                HashMap::new()
            };
            let bins = if measured.outcomes {
                outcome_bins(txn, filter, options.decision_threshold).await?
            } else {
                HashMap::new()
            };
            (feedback, bins)
        }
    };
    // What was not asked for is not reported, whichever way it was read.
    let (feedback, bins) = (
        if measured.feedback {
            feedback
        } else {
            HashMap::new()
        },
        if measured.outcomes {
            bins
        } else {
            HashMap::new()
        },
    );
    Ok((feedback, bins))
}

async fn prediction_measures(
    txn: &ScopedTxn,
    filter: &PredictionFilter,
    percentiles: Percentiles,
) -> ApiResult<HashMap<String, PredictionMeasures>> {
    let source = filtered_predictions(txn, filter)?;
    let mut sql = Sql::new(txn.backend());
    let columns = MeasureColumns {
        percentiles,
        ..MeasureColumns::ALL
    };
    prediction_measures_select(&mut sql, 1, columns, |sql| {
        sql.push("SELECT f.model_id AS g0, ")
            .decimal("f.violation_probability")
            .push(" AS prob, ")
            .decimal("f.confidence_score")
            .push(" AS conf, ")
            .decimal("f.inference_time_ms")
            .push(" AS lat, f.risk_level AS risk_level FROM ")
            .subquery(&source)
            .push(" f");
    });
    let backend = txn.backend();
    let mut out = HashMap::new();
    for row in sql.fetch(txn).await? {
        let model_id = get_text(&row, "g0")?.unwrap_or_default();
        out.insert(model_id, read_prediction_measures(&row, backend, columns)?);
    }
    Ok(out)
}

/// Joins the filtered predictions `f` to their feedback `fe` (same tenant).
fn join_feedback(sql: &mut Sql, txn: &ScopedTxn, source: &sea_orm::sea_query::SelectStatement) {
    sql.subquery(source)
        .push(" f JOIN ml_feedback fe ON fe.tenant_id = ")
        .bind(txn.tenant().to_owned())
        .push(" AND fe.tenant_id = f.tenant_id AND fe.prediction_id = f.prediction_id");
}

async fn feedback_measures(
    txn: &ScopedTxn,
    filter: &PredictionFilter,
) -> ApiResult<HashMap<String, FeedbackMeasures>> {
    let source = filtered_predictions(txn, filter)?;
    let mut sql = Sql::new(txn.backend());
    let rating = if sql.is_postgres() {
        "fe.accuracy_rating"
    } else {
        "CAST(fe.accuracy_rating AS REAL)"
    };
    sql.push(
        "SELECT f.model_id AS model_id, COUNT(*) AS feedback_count, \
         COUNT(DISTINCT f.prediction_id) AS with_feedback, ",
    )
    .aggregate("AVG", rating)
    .push(" AS rating_avg FROM ");
    join_feedback(&mut sql, txn, &source);
    sql.push(" GROUP BY f.model_id");
    let mut out = HashMap::new();
    for row in sql.fetch(txn).await? {
        out.insert(
            get_text(&row, "model_id")?.unwrap_or_default(),
            FeedbackMeasures {
                count: get_count(&row, "feedback_count")?,
                predictions_with_feedback: get_count(&row, "with_feedback")?,
                mean_accuracy_rating: measure_opt(get_float(&row, "rating_avg")?),
            },
        );
    }
    Ok(out)
}

/// Per model: confusion counts and per-bin calibration sums over the
/// predictions with an outcome.
async fn outcome_bins(
    txn: &ScopedTxn,
    filter: &PredictionFilter,
    threshold: f64,
) -> ApiResult<HashMap<String, (Confusion, Vec<BinSums>)>> {
    let source = filtered_predictions(txn, filter)?;
    let mut sql = Sql::new(txn.backend());
    let bins = CALIBRATION_BINS;
    sql.push("SELECT model_id, bin, COUNT(*) AS n, ")
        .aggregate("SUM", "prob")
        .push(" AS sum_prob, SUM(outcome) AS positives, ")
        .aggregate("SUM", "(prob - outcome) * (prob - outcome)")
        .push(" AS squared_error, ");
    sql.push(
        "COUNT(*) FILTER (WHERE predicted = 1 AND outcome = 1) AS tp, \
         COUNT(*) FILTER (WHERE predicted = 1 AND outcome = 0) AS fp, \
         COUNT(*) FILTER (WHERE predicted = 0 AND outcome = 0) AS tn, \
         COUNT(*) FILTER (WHERE predicted = 0 AND outcome = 1) AS fn \
         FROM (SELECT model_id, prob, predicted, \
         CASE WHEN correct_label IS NOT NULL THEN (CASE WHEN correct_label THEN 1 ELSE 0 END) \
              WHEN feedback_type = 'false_positive' THEN 0 \
              WHEN feedback_type = 'false_negative' THEN 1 \
              WHEN feedback_type = 'correct' THEN predicted \
              WHEN feedback_type = 'incorrect' THEN 1 - predicted END AS outcome, ",
    );
    sql.push(&format!("CASE WHEN prob >= 1 THEN {} ELSE ", bins - 1))
        .floor_int(&format!("prob * {bins}"))
        .push(" END AS bin FROM (SELECT model_id, prob, feedback_type, correct_label, rank_in_prediction, CASE WHEN prob >= ")
        .bind(threshold)
        .push(
            " THEN 1 ELSE 0 END AS predicted FROM (SELECT f.model_id AS model_id, ",
        )
        .decimal("f.violation_probability")
        .push(
            " AS prob, fe.feedback_type AS feedback_type, fe.correct_label AS correct_label, \
             ROW_NUMBER() OVER (PARTITION BY f.prediction_id \
             ORDER BY fe.created_at DESC NULLS LAST, fe.feedback_id DESC) AS rank_in_prediction FROM ",
        );
    join_feedback(&mut sql, txn, &source);
    sql.push(
        ") latest_feedback WHERE rank_in_prediction = 1) decided) outcomes \
         WHERE outcome IS NOT NULL GROUP BY model_id, bin",
    );
    let mut out: HashMap<String, (Confusion, Vec<BinSums>)> = HashMap::new();
    for row in sql.fetch(txn).await? {
        let model_id = get_text(&row, "model_id")?.unwrap_or_default();
        let (confusion, sums) = out.entry(model_id).or_insert_with(|| {
            (
                Confusion::default(),
                vec![BinSums::default(); bins as usize],
            )
        });
        confusion.true_positives += get_count(&row, "tp")?;
        confusion.false_positives += get_count(&row, "fp")?;
        confusion.true_negatives += get_count(&row, "tn")?;
        confusion.false_negatives += get_count(&row, "fn")?;
        let bin = get_count(&row, "bin")?.min(u64::from(bins) - 1) as usize;
        sums[bin] = BinSums {
            count: get_count(&row, "n")?,
            probability: get_float(&row, "sum_prob")?.unwrap_or(0.0),
            positives: get_count(&row, "positives")?,
            squared_error: get_float(&row, "squared_error")?.unwrap_or(0.0),
        };
    }
    Ok(out)
}

/// Feedback measures, confusion counts and calibration sums from the
/// rollup's probability bins, for the threshold on the edge of bin
/// `threshold_bin`: the model decided "violation" in the bins from there up.
/// Sums are combined exactly and become doubles once, as the scan's
/// decimal sums do, so that both answer alike to the last digit.
fn from_bins(
    model: &rollups::ModelOutcomes,
    threshold_bin: u32,
) -> (FeedbackMeasures, Confusion, Vec<BinSums>) {
    let mut feedback = FeedbackMeasures {
        mean_accuracy_rating: measure_opt(model.rating_mean),
        ..FeedbackMeasures::default()
    };
    let mut confusion = Confusion::default();
    let bins = CALIBRATION_BINS as usize;
    let mut counts = vec![(0u64, 0u64); bins];
    let mut exact = vec![(Decimal::ZERO, Decimal::ZERO); bins];
    for &(bin, ref o) in &model.bins {
        feedback.count += o.feedback;
        feedback.predictions_with_feedback += o.reviewed;

        let predicted = bin >= threshold_bin;
        // Outcome 1: the positives, and "as decided" where it decided so.
        let (yes_kind, no_kind) = if predicted {
            (o.as_decided, o.opposite)
        } else {
            (o.opposite, o.as_decided)
        };
        let all = [o.positive, o.negative, o.as_decided, o.opposite];
        let n: u64 = all.iter().map(|k| k.n).sum();
        let positives = o.positive.n + yes_kind.n;
        // Σ(p − 1)² = Σp² − 2Σp + n where the outcome is 1, Σp² where 0.
        let miss = |k: rollups::KindSums| k.squares - Decimal::TWO * k.sum + Decimal::from(k.n);
        let squared_error =
            miss(o.positive) + miss(yes_kind) + o.negative.squares + no_kind.squares;
        if predicted {
            confusion.true_positives += positives;
            confusion.false_positives += n - positives;
        } else {
            confusion.false_negatives += positives;
            confusion.true_negatives += n - positives;
        }
        let c = (bin / 10).min(CALIBRATION_BINS - 1) as usize;
        counts[c].0 += n;
        counts[c].1 += positives;
        exact[c].0 += all.iter().map(|k| k.sum).sum::<Decimal>();
        exact[c].1 += squared_error;
    }
    let double = |d: Decimal| d.to_string().parse::<f64>().unwrap_or(f64::NAN);
    let sums = counts
        .into_iter()
        .zip(exact)
        .map(
            |((count, positives), (probability, squared_error))| BinSums {
                count,
                probability: double(probability),
                positives,
                squared_error: double(squared_error),
            },
        )
        .collect();
    (feedback, confusion, sums)
}

fn calibration(sums: &[BinSums]) -> Calibration {
    let width = 1.0 / f64::from(CALIBRATION_BINS);
    let outcomes: u64 = sums.iter().map(|s| s.count).sum();
    let squared_error: f64 = sums.iter().map(|s| s.squared_error).sum();
    let bins = (0..CALIBRATION_BINS as usize)
        .map(|i| {
            let s = sums.get(i).copied().unwrap_or_default();
            CalibrationBin {
                lower: measure(i as f64 * width),
                upper: measure((i + 1) as f64 * width),
                count: s.count,
                mean_predicted: (s.count > 0).then(|| measure(s.probability / s.count as f64)),
                observed_rate: ratio(s.positives, s.count),
            }
        })
        .collect();
    Calibration {
        outcomes,
        brier_score: (outcomes > 0).then(|| measure(squared_error / outcomes as f64)),
        bins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_calibration_error_weights_each_bin_by_its_outcomes() {
        let mut sums = vec![BinSums::default(); CALIBRATION_BINS as usize];
        // Bin 1: 4 outcomes, mean probability 0.15, 1 positive (rate 0.25).
        sums[1] = BinSums {
            count: 4,
            probability: 0.6,
            positives: 1,
            squared_error: 0.0,
        };
        // Bin 8: 6 outcomes, mean probability 0.85, all positive.
        sums[8] = BinSums {
            count: 6,
            probability: 5.1,
            positives: 6,
            squared_error: 0.0,
        };
        let c = calibration(&sums);
        let expected = 0.4 * (0.25f64 - 0.15).abs() + 0.6 * (1.0f64 - 0.85).abs();
        assert!((c.expected_error().unwrap() - expected).abs() < 1e-9);
        assert_eq!(calibration(&[]).expected_error(), None);
    }

    #[test]
    fn rates_come_from_the_confusion_counts() {
        let c = Confusion {
            true_positives: 3,
            false_positives: 1,
            true_negatives: 4,
            false_negatives: 2,
        };
        assert_eq!(c.labelled(), 10);
        assert_eq!(c.accuracy(), Some(0.7));
        assert_eq!(c.precision(), Some(0.75));
        assert_eq!(c.recall(), Some(0.6));
        assert_eq!(c.f1_score(), Some(measure(6.0 / 9.0)));
        assert_eq!(c.false_positive_rate(), Some(0.2));
        assert_eq!(c.false_negative_rate(), Some(measure(2.0 / 5.0)));
        assert_eq!(Confusion::default().precision(), None);
    }

    #[test]
    fn thresholds_outside_zero_to_one_are_refused() {
        assert!(PerformanceOptions::new(None, Some(1.5)).is_err());
        assert!(PerformanceOptions::new(None, Some(f64::NAN)).is_err());
        assert_eq!(
            PerformanceOptions::new(None, None)
                .unwrap()
                .decision_threshold(),
            0.5
        );
    }
}
