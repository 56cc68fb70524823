//! Analytics: model performance, grouped prediction statistics, SHAP
//! importance, drift summaries and model comparison. Resolvers only turn
//! arguments into store requests; every aggregate is computed in SQL
//! (see `store::analytics`). Measures are rounded to 9 decimal places.

mod drift;
mod drift_analysis;
mod measures;
mod performance;
mod shap;
mod stats;
mod thresholds;

use async_graphql::{Context, Enum, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::error::ApiResult;
use crate::graphql::models::ModelFilter;
use crate::graphql::predictions::PredictionFilter;
use crate::graphql::{common, request_context};
use crate::store::analytics::{
    drift as drift_data, performance as perf, shap as shap_data, stats as stats_data, Bucketing,
};
use crate::store::filter::invalid;
use drift::DriftSummary;
use drift_analysis::{AttributionDriftInput, DriftAnalysis, DriftSampleInput};
use measures::measures_read;
use performance::{performance_options, selected_options, ModelComparison, PerformanceDifference};
use shap::{FeatureImportance, ShapImportance};
use stats::{PredictionStats, PredictionStatsGroup, PredictionStatsKey};

pub use drift_analysis::{DriftMethod, DriftSignal};
pub use performance::{model_performance, ModelPerformance};
pub use stats::PredictionGroupBy;
pub use thresholds::DriftThresholds;

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
    pub(super) fn bucketing(&self) -> ApiResult<Bucketing> {
        Bucketing::new(self.unit.into(), Some(&self.timezone), "bucket.timezone")
    }
}

/// A model and, optionally, one version of its predictions.
#[derive(InputObject, Clone, Debug)]
pub struct ModelVersionInput {
    pub model_id: String,
    /// Only predictions made by this `modelVersion`; all when omitted.
    pub version: Option<String>,
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
        let options = selected_options(ctx, window, decision_threshold)?;
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
        let request = stats_data::StatsRequest {
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
        let groups = stats_data::prediction_stats(rc.scoped(), request).await?;
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
        let importance = shap_data::importance(rc.scoped(), &filter, top as usize).await?;
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

    /// Drift of one model's predictions between a `reference` and a
    /// `current` sample (time windows, or model versions for
    /// champion/challenger), computed by mlgate per signal and method, with
    /// both samples' binned distributions and the tenant's drift bands; and,
    /// when `attribution` is read, how the features' SHAP attributions and
    /// their ranking moved. On PostgreSQL probability, confidence, inference
    /// time and attributions come from the hourly rollups (the rows only for
    /// the partial hours at a window's ends), so the cost does not grow with
    /// the windows' predictions; risk score and SHAP feature values are read
    /// from the rows, as everything is on SQLite. See `DriftMethod` for the
    /// conventions and `DriftStatistic.errorBound` for what rollup bins imply.
    #[graphql(
        complexity = "super::cost::drift_analysis(&signals, &shap_features, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn drift_analysis(
        &self,
        ctx: &Context<'_>,
        model_id: String,
        reference: DriftSampleInput,
        current: DriftSampleInput,
        #[graphql(
            default_with = "vec![DriftSignal::ViolationProbability, DriftSignal::ConfidenceScore, DriftSignal::RiskScore, DriftSignal::InferenceTime]"
        )]
        signals: Vec<DriftSignal>,
        #[graphql(
            desc = "The features whose SHAP values are compared (with `SHAP` in `signals`; at most 20).",
            default
        )]
        shap_features: Vec<String>,
        #[graphql(
            default_with = "vec![DriftMethod::Psi, DriftMethod::Ks, DriftMethod::Wasserstein, DriftMethod::JensenShannon, DriftMethod::Hellinger]"
        )]
        methods: Vec<DriftMethod>,
        attribution: Option<AttributionDriftInput>,
    ) -> async_graphql::Result<DriftAnalysis> {
        let rc = request_context(ctx)?;
        let read_attribution = ctx.look_ahead().field("attribution").exists();
        let analysis = drift_analysis::analysis(
            model_id,
            reference,
            current,
            signals,
            shap_features,
            methods,
            attribution,
            read_attribution,
        )?;
        let samples =
            crate::store::analytics::drift_analysis::samples(rc.scoped(), &analysis.request)
                .await?;
        Ok(DriftAnalysis::new(&analysis, samples))
    }

    /// The tenant's drift alert thresholds.
    async fn drift_thresholds(&self, ctx: &Context<'_>) -> async_graphql::Result<DriftThresholds> {
        let rc = request_context(ctx)?;
        Ok(DriftThresholds(
            crate::store::thresholds::get(rc.scoped()).await?,
        ))
    }
}
