//! Typed views of the explanation JSON of predictions and drift metrics:
//! feature contributions (SHAP values, drift feature contributions) and
//! attention weights. The raw JSON stays reachable beside the typed view.

use async_graphql::{Enum, InputObject, SimpleObject};
use serde_json::Value as Json;

use crate::domain::explanation::{self, Attention};
use crate::error::ApiError;

/// How to order feature contributions.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
pub enum ContributionOrder {
    /// Largest magnitude first, whatever the sign.
    #[default]
    AbsDesc,
    /// Most positive first.
    ValueDesc,
    /// By feature name.
    Feature,
}

/// Which way a feature pushed the prediction.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum ContributionDirection {
    /// Towards a violation (positive contribution).
    IncreasesRisk,
    /// Away from a violation (negative contribution).
    DecreasesRisk,
    Neutral,
}

/// One feature's signed contribution to a prediction (or to drift).
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct FeatureContribution {
    pub feature: String,
    pub value: f64,
    pub abs_value: f64,
    pub direction: ContributionDirection,
}

/// One feature's signed contribution, as written.
#[derive(InputObject, Clone, Debug)]
pub struct FeatureValueInput {
    pub feature: String,
    pub value: f64,
}

impl From<FeatureValueInput> for crate::write::FeatureValue {
    fn from(input: FeatureValueInput) -> Self {
        Self {
            feature: input.feature,
            value: input.value,
        }
    }
}

/// Numeric feature contributions, ordered and cut to `top`.
pub fn contributions(
    json: Option<&Json>,
    top: Option<i32>,
    order: ContributionOrder,
) -> Result<Vec<FeatureContribution>, ApiError> {
    if let Some(top) = top.filter(|t| *t < 0) {
        return Err(ApiError::BadUserInput {
            message: format!("`top` cannot be negative (got {top})"),
            field: Some("top".into()),
        });
    }
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let mut items: Vec<FeatureContribution> = explanation::contributions(json)
        .into_iter()
        .map(|(name, value)| FeatureContribution {
            feature: name.to_owned(),
            value,
            abs_value: value.abs(),
            direction: if value > 0.0 {
                ContributionDirection::IncreasesRisk
            } else if value < 0.0 {
                ContributionDirection::DecreasesRisk
            } else {
                ContributionDirection::Neutral
            },
        })
        .collect();
    match order {
        ContributionOrder::AbsDesc => items.sort_by(|a, b| {
            b.abs_value
                .total_cmp(&a.abs_value)
                .then_with(|| a.feature.cmp(&b.feature))
        }),
        ContributionOrder::ValueDesc => items.sort_by(|a, b| {
            b.value
                .total_cmp(&a.value)
                .then_with(|| a.feature.cmp(&b.feature))
        }),
        ContributionOrder::Feature => items.sort_by(|a, b| a.feature.cmp(&b.feature)),
    }
    if let Some(top) = top {
        items.truncate(top as usize);
    }
    Ok(items)
}

/// SHAP's base value, when the stored object carries one.
pub fn base_value(json: Option<&Json>) -> Option<f64> {
    explanation::base_value(json?)
}

/// The recognised shape of stored attention weights.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum AttentionShape {
    /// One weight per input feature: `features`.
    PerFeature,
    /// One weight per time step: `timeSteps`.
    PerStep,
    /// One row of weights per attention head: `heads`.
    PerHead,
    /// Not a shape mlgate recognises: read `raw`.
    Unknown,
}

/// A feature's attention weight.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct FeatureWeight {
    pub feature: String,
    pub weight: f64,
}

/// Attention weights, typed for the common shapes, with the stored JSON as `raw`.
#[derive(SimpleObject, Clone, Debug)]
pub struct AttentionWeights {
    pub shape: AttentionShape,
    /// Per-feature weights, largest first (shape `PER_FEATURE`).
    pub features: Option<Vec<FeatureWeight>>,
    /// Per-time-step weights in time order (shape `PER_STEP`).
    pub time_steps: Option<Vec<f64>>,
    /// Per-head rows of weights over positions (shape `PER_HEAD`).
    pub heads: Option<Vec<Vec<f64>>>,
    /// The weights exactly as stored.
    pub raw: async_graphql::Json<Json>,
}

/// The typed view of stored attention weights.
pub fn attention(json: &Json) -> AttentionWeights {
    let mut view = AttentionWeights {
        shape: AttentionShape::Unknown,
        features: None,
        time_steps: None,
        heads: None,
        raw: async_graphql::Json(json.clone()),
    };
    match explanation::attention(json) {
        Attention::PerFeature(weights) => {
            view.shape = AttentionShape::PerFeature;
            view.features = Some(
                weights
                    .into_iter()
                    .map(|(feature, weight)| FeatureWeight { feature, weight })
                    .collect(),
            );
        }
        Attention::PerStep(steps) => {
            view.shape = AttentionShape::PerStep;
            view.time_steps = Some(steps);
        }
        Attention::PerHead(heads) => {
            view.shape = AttentionShape::PerHead;
            view.heads = Some(heads);
        }
        Attention::Unknown => {}
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_contributions_by_magnitude() {
        let shap = json!({"a": 0.1, "b": -0.7, "c": 0.3, "d": 0.0, "base_value": 0.2, "e": "x"});
        let top = contributions(Some(&shap), Some(3), ContributionOrder::AbsDesc).unwrap();
        let names: Vec<_> = top.iter().map(|c| c.feature.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
        assert_eq!(top[0].direction, ContributionDirection::DecreasesRisk);
        assert_eq!(top[0].abs_value, 0.7);
        assert_eq!(base_value(Some(&shap)), Some(0.2));
        let by_value = contributions(Some(&shap), None, ContributionOrder::ValueDesc).unwrap();
        assert_eq!(by_value.first().unwrap().feature, "c");
        assert_eq!(by_value.len(), 4);
        assert!(contributions(Some(&shap), Some(-1), ContributionOrder::Feature).is_err());
        assert!(contributions(None, Some(3), ContributionOrder::Feature)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn recognises_attention_shapes() {
        let heads = attention(&json!({"heads": [[0.5, 0.5], [0.9, 0.1]]}));
        assert_eq!(heads.shape, AttentionShape::PerHead);
        assert_eq!(heads.heads.unwrap()[1], vec![0.9, 0.1]);
        let steps = attention(&json!({"time_steps": [0.2, 0.8]}));
        assert_eq!(steps.shape, AttentionShape::PerStep);
        let features = attention(&json!({"features": {"x": 0.25, "y": 0.75}}));
        assert_eq!(features.shape, AttentionShape::PerFeature);
        assert_eq!(features.features.unwrap()[0].feature, "y");
        assert_eq!(attention(&json!([0.1, 0.9])).shape, AttentionShape::PerStep);
        assert_eq!(attention(&json!({"q": "k"})).shape, AttentionShape::Unknown);
    }
}
