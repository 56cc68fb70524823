//! The explanation JSON of predictions and drift metrics, in one place: what
//! a write stores, what a read parses and what the SHAP aggregate reads in
//! SQL.
//!
//! - Feature contributions (`shap_values`, drift `feature_contributions`):
//!   `{feature: value, …}`, or the same map nested under `"values"`; the
//!   base-value keys hold SHAP's expected value, not a feature. Entries that
//!   are not numbers are not features.
//! - Attention weights: per feature (`{"features": {feature: w}}` or a bare
//!   map), per time step (`{"time_steps": [w, …]}` or a bare list) or per
//!   head (`{"heads": [[w, …], …]}` or a bare matrix); anything else is kept
//!   as stored.

use serde_json::{Map, Value as Json};

/// Keys of a contributions object that hold SHAP's base (expected) value
/// rather than a feature's contribution; a write stores the first.
pub const BASE_VALUE_KEYS: [&str; 3] = ["base_value", "_base_value", "expected_value"];

/// The key under which a contributions object may nest its feature map
/// (`{"values": {feature: value}, "base_value": b}`).
pub const VALUES_KEY: &str = "values";

/// The most features one contributions object (and one SHAP ranking) holds.
pub const MAX_FEATURES: usize = 10_000;

/// Whether `key` may name a feature (it is none of the reserved keys).
pub fn is_feature_key(key: &str) -> bool {
    !BASE_VALUE_KEYS.contains(&key) && key != VALUES_KEY
}

/// The feature map of a contributions object: its `values` member when that
/// is an object, else the object itself.
fn feature_map(json: &Json) -> Option<&Map<String, Json>> {
    let object = json.as_object()?;
    match object.get(VALUES_KEY) {
        Some(Json::Object(values)) => Some(values),
        _ => Some(object),
    }
}

/// The numeric feature contributions of a contributions object, in stored
/// order (base values and non-numbers left out).
pub fn contributions(json: &Json) -> Vec<(&str, f64)> {
    let Some(map) = feature_map(json) else {
        return Vec::new();
    };
    map.iter()
        .filter(|(name, _)| !BASE_VALUE_KEYS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.as_str(), value.as_f64()?)))
        .collect()
}

/// SHAP's base value, when the stored object carries one.
pub fn base_value(json: &Json) -> Option<f64> {
    let object = json.as_object()?;
    BASE_VALUE_KEYS
        .iter()
        .find_map(|key| object.get(*key).and_then(Json::as_f64))
}

/// Stored attention weights in a recognised shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Attention {
    /// One weight per input feature, largest first (ties by name).
    PerFeature(Vec<(String, f64)>),
    /// One weight per time step, in time order.
    PerStep(Vec<f64>),
    /// One row of weights per attention head.
    PerHead(Vec<Vec<f64>>),
    /// Not a shape mlgate recognises.
    Unknown,
}

fn numbers(json: &Json) -> Option<Vec<f64>> {
    json.as_array()?.iter().map(Json::as_f64).collect()
}

fn matrix(json: &Json) -> Option<Vec<Vec<f64>>> {
    let rows = json.as_array()?;
    if rows.is_empty() {
        return None;
    }
    rows.iter().map(numbers).collect()
}

fn feature_weights(json: &Json) -> Option<Vec<(String, f64)>> {
    let object = json.as_object()?;
    if object.is_empty() {
        return None;
    }
    let mut weights: Vec<(String, f64)> = object
        .iter()
        .map(|(feature, weight)| Some((feature.clone(), weight.as_f64()?)))
        .collect::<Option<_>>()?;
    weights.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Some(weights)
}

/// The shape of stored attention weights: a named member first, then the
/// value itself.
pub fn attention(json: &Json) -> Attention {
    let member = |names: &[&str]| {
        let object = json.as_object()?;
        names.iter().find_map(|name| object.get(*name))
    };
    if let Some(features) = member(&["features", "feature_weights"]).and_then(feature_weights) {
        Attention::PerFeature(features)
    } else if let Some(heads) = member(&["heads", "per_head"]).and_then(matrix) {
        Attention::PerHead(heads)
    } else if let Some(steps) = member(&["time_steps", "timeSteps", "steps"]).and_then(numbers) {
        Attention::PerStep(steps)
    } else if let Some(steps) = numbers(json) {
        Attention::PerStep(steps)
    } else if let Some(heads) = matrix(json) {
        Attention::PerHead(heads)
    } else if let Some(features) = feature_weights(json) {
        Attention::PerFeature(features)
    } else {
        Attention::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contributions_skip_base_values_and_non_numbers_at_either_level() {
        let flat = json!({"a": 0.1, "base_value": 0.2, "e": "x"});
        assert_eq!(contributions(&flat), [("a", 0.1)]);
        let nested = json!({"values": {"b": -0.5}, "expected_value": 0.3});
        assert_eq!(contributions(&nested), [("b", -0.5)]);
        assert_eq!(base_value(&nested), Some(0.3));
        assert!(contributions(&json!([1, 2])).is_empty());
    }

    #[test]
    fn attention_shapes_are_recognised() {
        assert_eq!(
            attention(&json!({"heads": [[0.5, 0.5], [0.9, 0.1]]})),
            Attention::PerHead(vec![vec![0.5, 0.5], vec![0.9, 0.1]])
        );
        assert_eq!(
            attention(&json!({"time_steps": [0.2, 0.8]})),
            Attention::PerStep(vec![0.2, 0.8])
        );
        assert_eq!(
            attention(&json!({"features": {"x": 0.25, "y": 0.75}})),
            Attention::PerFeature(vec![("y".into(), 0.75), ("x".into(), 0.25)])
        );
        assert_eq!(attention(&json!({"q": "k"})), Attention::Unknown);
    }
}
