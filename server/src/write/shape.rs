//! The explanation JSON a write stores, built from typed input in the shape
//! the read side and the analytics understand.

use serde_json::{Map, Value as Json};

use super::{Check, MAX_ID_CHARS};
use crate::domain::explanation::{is_feature_key, BASE_VALUE_KEYS, MAX_FEATURES};

/// One feature's signed contribution, as a client sends it.
#[derive(Clone, Debug)]
pub struct FeatureValue {
    pub feature: String,
    pub value: f64,
}

/// Feature contributions as stored: `{feature: value, …}`, plus
/// `"base_value": b` for SHAP's expected value when given. Feature names
/// must be distinct and must not be one of the reserved keys.
pub fn contributions(
    check: &mut Check<'_>,
    field: &str,
    values: &[FeatureValue],
    base_value: Option<(&str, f64)>,
) -> Json {
    if values.len() > MAX_FEATURES {
        check.problem(field, format!("at most {MAX_FEATURES} features"));
    }
    let mut map = Map::with_capacity(values.len() + 1);
    for (i, item) in values.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        if item.feature.is_empty() || item.feature.chars().count() > MAX_ID_CHARS {
            check.problem(
                &format!("{item_field}.feature"),
                format!("must be 1–{MAX_ID_CHARS} characters"),
            );
        } else if !is_feature_key(&item.feature) {
            check.problem(
                &format!("{item_field}.feature"),
                format!("`{}` is a reserved key", item.feature),
            );
        }
        check.finite(&format!("{item_field}.value"), item.value);
        if map
            .insert(item.feature.clone(), finite_number(item.value))
            .is_some()
        {
            check.problem(
                &format!("{item_field}.feature"),
                format!("`{}` is listed more than once", item.feature),
            );
        }
    }
    if let Some((base_field, base)) = base_value {
        check.finite(base_field, base);
        map.insert(BASE_VALUE_KEYS[0].to_owned(), finite_number(base));
    }
    Json::Object(map)
}

fn finite_number(value: f64) -> Json {
    serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
}

/// The deepest nesting of weights accepted (heads × steps × features, plus one).
const MAX_WEIGHT_DEPTH: usize = 4;

/// Attention weights: an array or object whose leaves are all numbers,
/// nested at most four deep (per feature `{"features": {…}}`, per step
/// `[…]`, per head `[[…]]`, or named groups of those).
pub fn check_weights(check: &mut Check<'_>, field: &str, weights: &Json) {
    fn walk(value: &Json, depth: usize) -> Result<(), &'static str> {
        match value {
            Json::Number(_) if depth > 0 => Ok(()),
            Json::Array(items) if depth < MAX_WEIGHT_DEPTH => {
                items.iter().try_for_each(|item| walk(item, depth + 1))
            }
            Json::Object(members) if depth < MAX_WEIGHT_DEPTH => {
                members.values().try_for_each(|item| walk(item, depth + 1))
            }
            Json::Array(_) | Json::Object(_) => Err("nests deeper than four levels"),
            Json::Number(_) => Err("must be an array or object of weights"),
            _ => Err("must hold only numbers (in arrays or objects)"),
        }
    }
    if let Err(message) = walk(weights, 0) {
        check.problem(field, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::Checker;
    use serde_json::json;

    fn fv(feature: &str, value: f64) -> FeatureValue {
        FeatureValue {
            feature: feature.into(),
            value,
        }
    }

    #[test]
    fn contributions_are_stored_as_a_feature_map_with_the_base_value() {
        let mut checker = Checker::new();
        let json = contributions(
            &mut checker.object("input"),
            "shapValues",
            &[fv("a", 0.5), fv("b", -0.25)],
            Some(("shapBaseValue", 0.1)),
        );
        assert_eq!(json, json!({"a": 0.5, "b": -0.25, "base_value": 0.1}));
        assert!(checker.finish().is_ok());
    }

    #[test]
    fn reserved_duplicate_and_non_finite_features_are_refused() {
        let mut checker = Checker::new();
        contributions(
            &mut checker.object("input"),
            "shapValues",
            &[
                fv("expected_value", 1.0),
                fv("a", 1.0),
                fv("a", 2.0),
                fv("b", f64::NAN),
                fv("", 0.0),
            ],
            None,
        );
        let error = checker.finish().unwrap_err();
        let crate::error::ApiError::Refused { problems, .. } = error else {
            panic!("expected a refusal");
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "input.shapValues[0].feature",
                "input.shapValues[2].feature",
                "input.shapValues[3].value",
                "input.shapValues[4].feature",
            ]
        );
    }

    #[test]
    fn attention_weights_must_be_nested_numbers() {
        for ok in [
            json!([0.1, 0.9]),
            json!([[0.1, 0.9], [0.5, 0.5]]),
            json!({"features": {"cpu": 0.7}}),
            json!({"heads": [[[0.1]]]}),
        ] {
            let mut checker = Checker::new();
            check_weights(&mut checker.object("input"), "attentionWeights", &ok);
            assert!(checker.finish().is_ok(), "{ok}");
        }
        for bad in [
            json!(0.5),
            json!(["x"]),
            json!({"layer": "encoder"}),
            json!([[[[[0.1]]]]]),
            json!([null]),
        ] {
            let mut checker = Checker::new();
            check_weights(&mut checker.object("input"), "attentionWeights", &bad);
            assert!(checker.finish().is_err(), "{bad}");
        }
    }
}
