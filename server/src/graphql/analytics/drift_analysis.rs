//! `driftAnalysis`: drift between a reference and a current sample of one
//! model's predictions, computed by mlgate (`domain::drift`) from what
//! `store::analytics::drift_analysis` reads.

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::thresholds::ThresholdBand;
use crate::domain::drift::{self as stats, Comparison, Method};
use crate::error::ApiResult;
use crate::graphql::drift::AlertLevel;
use crate::store::analytics::drift_analysis::{self as data, Signal};
use crate::store::analytics::measure;
use crate::store::analytics::shap::ShapImportance;
use crate::store::filter::invalid;
use crate::store::thresholds::DriftThresholds;

/// The most SHAP features one analysis compares the values of.
pub const MAX_SHAP_FEATURES: usize = 20;

/// A prediction signal whose distribution is compared.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum DriftSignal {
    /// In [0, 1]: 10 fixed bins.
    ViolationProbability,
    /// In [0, 1]: 10 fixed bins.
    ConfidenceScore,
    /// In [0, 1]: 10 fixed bins; predictions without one, or with one
    /// outside [0, 1], are left out.
    RiskScore,
    /// Milliseconds: bins between the reference's deciles.
    InferenceTime,
    /// The SHAP values of one feature (see `shapFeatures`): bins between the
    /// reference's deciles; predictions without the feature are left out.
    Shap,
}

/// A drift statistic.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum DriftMethod {
    /// Population stability index over the bins; an empty bin's share is
    /// Evidently's epsilon (0.0001, or the sample's smallest share / 10⁶
    /// when that is at most 0.0001). Band: the tenant's `psi` thresholds.
    Psi,
    /// Two-sample Kolmogorov–Smirnov statistic, with `pValue` from
    /// Smirnov's distribution at the effective size `round(n·m/(n+m))`
    /// (scipy's `ks_2samp(method="asymp")`). Band: the `ks` thresholds.
    Ks,
    /// First Wasserstein distance divided by the reference's population
    /// standard deviation (at least 0.001), as Evidently's
    /// `wasserstein_distance_norm`. Band: the `wasserstein` thresholds.
    Wasserstein,
    /// Jensen–Shannon distance (natural log, in [0, √ln 2]) over the bins,
    /// as scipy's `jensenshannon`. Band: the `jensenShannon` thresholds.
    JensenShannon,
    /// Hellinger distance over the bins, `√(1 − Σ√(p·q))`, in [0, 1].
    /// Band: the `hellinger` thresholds.
    Hellinger,
}

impl From<DriftMethod> for Method {
    fn from(m: DriftMethod) -> Self {
        match m {
            DriftMethod::Psi => Method::Psi,
            DriftMethod::Ks => Method::Ks,
            DriftMethod::Wasserstein => Method::Wasserstein,
            DriftMethod::JensenShannon => Method::JensenShannon,
            DriftMethod::Hellinger => Method::Hellinger,
        }
    }
}

/// A sample of the model's predictions: those made in `[from, to)` (an end
/// left out is open) and, with `modelVersion`, only by that version (a
/// champion/challenger comparison gives each side its version).
#[derive(InputObject, Clone, Debug, Default)]
pub struct DriftSampleInput {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub model_version: Option<String>,
}

impl DriftSampleInput {
    fn into_data(self, field: &str) -> ApiResult<data::Sample> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Err(invalid(
                    field,
                    format!("`{field}.from` must be before `to`"),
                ));
            }
        }
        Ok(data::Sample {
            window: crate::store::TimeRange {
                from: self.from,
                to: self.to,
            },
            model_version: self.model_version,
        })
    }
}

/// How attribution drift is measured.
#[derive(InputObject, Clone, Debug)]
pub struct AttributionDriftInput {
    /// The ranking depth of nDCG.
    #[graphql(default = 10)]
    pub k: i32,
    /// nDCG below this is a drifted ranking (SageMaker Clarify's 0.9).
    #[graphql(default = 0.9)]
    pub threshold: f64,
    /// How many features to list, by current mean |SHAP|.
    #[graphql(default = 10)]
    pub top: i32,
}

impl Default for AttributionDriftInput {
    fn default() -> Self {
        Self {
            k: 10,
            threshold: stats::DEFAULT_NDCG_THRESHOLD,
            top: 10,
        }
    }
}

/// The validated request.
pub struct Analysis {
    pub request: data::DriftRequest,
    pub methods: Vec<Method>,
    pub attribution: AttributionDriftInput,
}

#[allow(clippy::too_many_arguments)]
pub fn analysis(
    model_id: String,
    reference: DriftSampleInput,
    current: DriftSampleInput,
    signals: Vec<DriftSignal>,
    shap_features: Vec<String>,
    methods: Vec<DriftMethod>,
    attribution: Option<AttributionDriftInput>,
    read_attribution: bool,
) -> ApiResult<Analysis> {
    if shap_features.len() > MAX_SHAP_FEATURES {
        return Err(invalid(
            "shapFeatures",
            format!("at most {MAX_SHAP_FEATURES} features"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = shap_features.iter().find(|f| !seen.insert(f.as_str())) {
        return Err(invalid("shapFeatures", format!("`{dup}` is listed twice")));
    }
    if shap_features.iter().any(|f| f.is_empty() || f.len() > 255) {
        return Err(invalid(
            "shapFeatures",
            "feature names are 1 to 255 bytes".into(),
        ));
    }
    let wants_shap = signals.contains(&DriftSignal::Shap);
    if wants_shap == shap_features.is_empty() {
        return Err(invalid(
            "shapFeatures",
            "`SHAP` in `signals` and `shapFeatures` go together".into(),
        ));
    }
    let mut listed = Vec::new();
    for s in signals {
        let signal = match s {
            DriftSignal::ViolationProbability => Signal::ViolationProbability,
            DriftSignal::ConfidenceScore => Signal::ConfidenceScore,
            DriftSignal::RiskScore => Signal::RiskScore,
            DriftSignal::InferenceTime => Signal::InferenceTime,
            DriftSignal::Shap => continue,
        };
        if listed.contains(&signal) {
            return Err(invalid("signals", format!("{s:?} is listed twice")));
        }
        listed.push(signal);
    }
    listed.extend(shap_features.into_iter().map(Signal::Shap));
    let mut unique = Vec::new();
    for m in methods {
        let m = Method::from(m);
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    let attribution = attribution.unwrap_or_default();
    if !(1..=500).contains(&attribution.k) || !(1..=500).contains(&attribution.top) {
        return Err(invalid(
            "attribution",
            "`k` and `top` must be between 1 and 500".into(),
        ));
    }
    if !(0.0..=1.0).contains(&attribution.threshold) {
        return Err(invalid(
            "attribution.threshold",
            "`threshold` must be in [0, 1]".into(),
        ));
    }
    Ok(Analysis {
        request: data::DriftRequest {
            model_id,
            reference: reference.into_data("reference")?,
            current: current.into_data("current")?,
            signals: listed,
            attribution: read_attribution,
        },
        methods: unique,
        attribution,
    })
}

/// The sample bounds an analysis compared.
#[derive(SimpleObject)]
pub struct DriftSample {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub model_version: Option<String>,
}

#[derive(SimpleObject)]
pub struct DriftAnalysis {
    pub model_id: String,
    pub reference: DriftSample,
    pub current: DriftSample,
    /// One entry per signal asked for, in the order asked.
    pub signals: Vec<SignalDrift>,
    /// How the features' attributions moved (null when neither sample has
    /// SHAP values).
    pub attribution: Option<AttributionDrift>,
}

/// How a signal's bins were drawn.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum DriftBinning {
    /// 10 equal bins on [0, 1], the last one closed.
    Fixed,
    /// Between the reference's deciles (numpy's linear interpolation,
    /// repeated edges merged); the first and last bins are open and shown
    /// from the smallest to the largest value seen.
    Quantile,
}

/// One bin of the binned methods: both samples' counts and shares (what a
/// dashboard draws). Bins empty in both samples are left out.
#[derive(SimpleObject)]
pub struct DriftBin {
    pub lower: f64,
    pub upper: f64,
    pub reference_count: u64,
    pub current_count: u64,
    pub reference_share: f64,
    pub current_share: f64,
}

#[derive(SimpleObject)]
pub struct DriftStatistic {
    pub method: DriftMethod,
    pub value: f64,
    /// How far from the value over the predictions' exact values this can
    /// be: 0 when `exact`; from rollup bins, the bound they imply (KS: the
    /// CDFs are known only at bin ends; Wasserstein: values placed at bin
    /// middles). PSI, JS and Hellinger are exact for the bins shown.
    pub error_bound: f64,
    /// KS only: the p-value of the statistic.
    pub p_value: Option<f64>,
    /// The tenant's band for the method (`driftThresholds`).
    pub thresholds: ThresholdBand,
    /// The drift band `value` falls in.
    pub level: AlertLevel,
}

#[derive(SimpleObject)]
pub struct SignalDrift {
    pub signal: DriftSignal,
    /// The feature, for `SHAP`.
    pub feature: Option<String>,
    pub reference_count: u64,
    pub current_count: u64,
    /// Computed from the predictions' values; false when read from the
    /// PostgreSQL rollups' bins (1 %-wide on [0, 1] for probability,
    /// confidence and risk score, 1 %-growth buckets for inference time, whose quantile
    /// edges then fall on bucket ends, within 1 % of the exact deciles).
    pub exact: bool,
    pub binning: DriftBinning,
    pub bins: Vec<DriftBin>,
    /// One per method asked for; empty when either sample is empty.
    pub statistics: Vec<DriftStatistic>,
}

/// A feature's attribution in both samples.
#[derive(SimpleObject)]
pub struct FeatureAttributionDrift {
    pub feature: String,
    pub reference_mean_abs: Option<f64>,
    pub current_mean_abs: Option<f64>,
    /// 1-based rank by mean |SHAP| (null when absent from the sample).
    pub reference_rank: Option<u64>,
    pub current_rank: Option<u64>,
}

#[derive(SimpleObject)]
pub struct AttributionDrift {
    /// Predictions with SHAP values in each sample.
    pub reference_count: u64,
    pub current_count: u64,
    pub k: u64,
    /// nDCG@k of the current ranking with the reference's mean |SHAP| as
    /// relevance (1: the ranking of what matters is unchanged); null when
    /// either sample has no attributions.
    pub ndcg: Option<f64>,
    pub threshold: f64,
    /// `ndcg` is below `threshold`.
    pub drifted: bool,
    /// The `top` features by current mean |SHAP| (then reference), ties by
    /// name.
    pub features: Vec<FeatureAttributionDrift>,
}

impl DriftAnalysis {
    pub fn new(analysis: &Analysis, samples: data::DriftSamples) -> Self {
        let request = &analysis.request;
        let thresholds = &samples.thresholds;
        let sample = |s: &data::Sample| DriftSample {
            from: s.window.from,
            to: s.window.to,
            model_version: s.model_version.clone(),
        };
        let signals = samples
            .signals
            .into_iter()
            .map(|s| signal_drift(s, &analysis.methods, thresholds))
            .collect();
        let attribution = samples
            .attribution
            .and_then(|a| attribution_drift(a.reference, a.current, &analysis.attribution));
        Self {
            model_id: request.model_id.clone(),
            reference: sample(&request.reference),
            current: sample(&request.current),
            signals,
            attribution,
        }
    }
}

fn signal_drift(
    samples: data::SignalSamples,
    methods: &[Method],
    thresholds: &DriftThresholds,
) -> SignalDrift {
    let scale = samples.signal.scale();
    let (signal, feature) = match samples.signal {
        Signal::ViolationProbability => (DriftSignal::ViolationProbability, None),
        Signal::ConfidenceScore => (DriftSignal::ConfidenceScore, None),
        Signal::RiskScore => (DriftSignal::RiskScore, None),
        Signal::InferenceTime => (DriftSignal::InferenceTime, None),
        Signal::Shap(f) => (DriftSignal::Shap, Some(f)),
    };
    let comparison = Comparison::new(&samples.reference, &samples.current, scale);
    let (nr, nc) = (comparison.reference_count(), comparison.current_count());
    let share = |count: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            measure(count as f64 / of as f64)
        }
    };
    let bins = comparison.bins();
    let mut statistics = Vec::new();
    if comparison.comparable() {
        for &method in methods {
            let (estimate, p_value) = match method {
                Method::Psi => (exact(comparison.psi(&bins)), None),
                Method::JensenShannon => (exact(comparison.jensen_shannon(&bins)), None),
                Method::Hellinger => (exact(comparison.hellinger(&bins)), None),
                Method::Wasserstein => (comparison.wasserstein(), None),
                Method::Ks => {
                    let ks = comparison.ks();
                    (ks, Some(measure(comparison.ks_p_value(ks.value))))
                }
            };
            let band = thresholds.band(method);
            statistics.push(DriftStatistic {
                method: method.into(),
                value: measure(estimate.value),
                error_bound: measure(estimate.error_bound),
                p_value,
                thresholds: band.into(),
                level: band.level(estimate.value).into(),
            });
        }
    }
    SignalDrift {
        signal,
        feature,
        reference_count: nr,
        current_count: nc,
        exact: comparison.exact(),
        binning: match scale {
            stats::Scale::Unit => DriftBinning::Fixed,
            stats::Scale::Open => DriftBinning::Quantile,
        },
        bins: bins
            .iter()
            .map(|b| DriftBin {
                lower: b.lower,
                upper: b.upper,
                reference_count: b.reference,
                current_count: b.current,
                reference_share: share(b.reference, nr),
                current_share: share(b.current, nc),
            })
            .collect(),
        statistics,
    }
}

fn exact(value: f64) -> stats::Estimate {
    stats::Estimate {
        value,
        error_bound: 0.0,
    }
}

impl From<Method> for DriftMethod {
    fn from(method: Method) -> Self {
        match method {
            Method::Psi => DriftMethod::Psi,
            Method::Ks => DriftMethod::Ks,
            Method::Wasserstein => DriftMethod::Wasserstein,
            Method::JensenShannon => DriftMethod::JensenShannon,
            Method::Hellinger => DriftMethod::Hellinger,
        }
    }
}

fn attribution_drift(
    reference: ShapImportance,
    current: ShapImportance,
    input: &AttributionDriftInput,
) -> Option<AttributionDrift> {
    if reference.predictions == 0 && current.predictions == 0 {
        return None;
    }
    let k = input.k as usize;
    let relevance: Vec<(String, f64)> = reference
        .features
        .iter()
        .map(|f| (f.feature.clone(), f.mean_abs_value))
        .collect();
    let ranking: Vec<String> = current.features.iter().map(|f| f.feature.clone()).collect();
    let ndcg = if current.features.is_empty() {
        None
    } else {
        stats::ndcg(&relevance, &ranking, k).map(measure)
    };
    let rank_of = |list: &ShapImportance, feature: &str| {
        list.features
            .iter()
            .position(|f| f.feature == feature)
            .map(|i| i as u64 + 1)
    };
    let mean_of = |list: &ShapImportance, feature: &str| {
        list.features
            .iter()
            .find(|f| f.feature == feature)
            .map(|f| f.mean_abs_value)
    };
    // Current ranking first, then features only the reference has.
    let mut names: Vec<&str> = current
        .features
        .iter()
        .map(|f| f.feature.as_str())
        .collect();
    for f in &reference.features {
        if !names.contains(&f.feature.as_str()) {
            names.push(&f.feature);
        }
    }
    let features = names
        .into_iter()
        .take(input.top as usize)
        .map(|feature| FeatureAttributionDrift {
            feature: feature.to_owned(),
            reference_mean_abs: mean_of(&reference, feature),
            current_mean_abs: mean_of(&current, feature),
            reference_rank: rank_of(&reference, feature),
            current_rank: rank_of(&current, feature),
        })
        .collect();
    Some(AttributionDrift {
        reference_count: reference.predictions,
        current_count: current.predictions,
        k: k as u64,
        ndcg,
        threshold: input.threshold,
        drifted: ndcg.is_some_and(|n| n < input.threshold),
        features,
    })
}
