//! One line of `POST /ingest/predictions` or `/ingest/drift-metrics`: a
//! JSON object spelled exactly like GraphQL's `PredictionInput` or
//! `DriftMetricInput` (camelCase fields, enum values as in the schema), so
//! a service moves between the two without changing its data.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::domain::{AlertLevel, DriftType, RemediationStatus, RiskLevel, Vocabulary};
use crate::write::bulk::PredictionInput;
use crate::write::drift::DriftMetricInput;
use crate::write::FeatureValue;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PredictionLine {
    prediction_id: String,
    resource_id: String,
    model_id: String,
    model_version: Option<String>,
    violation_probability: f64,
    time_to_violation_hours: Option<f64>,
    confidence_score: f64,
    confidence_interval: Option<Interval>,
    risk_level: String,
    risk_score: Option<f64>,
    impact_factors: Option<Json>,
    uncertainty_sources: Option<Json>,
    recommendations: Option<Vec<String>>,
    features_used: Option<Json>,
    shap_values: Option<Vec<Contribution>>,
    shap_base_value: Option<f64>,
    attention_weights: Option<Json>,
    inference_time_ms: f64,
    prediction_timestamp: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    remediation_status: Option<String>,
    remediation_id: Option<uuid::Uuid>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DriftMetricLine {
    metric_id: String,
    resource_id: Option<String>,
    model_id: Option<String>,
    drift_type: String,
    drift_score: f64,
    drift_velocity: Option<f64>,
    reconstruction_error: Option<f64>,
    psi_score: Option<f64>,
    ks_statistic: Option<f64>,
    wasserstein_distance: Option<f64>,
    alert_triggered: Option<bool>,
    alert_level: Option<String>,
    time_to_violation_hours: Option<f64>,
    measured_at: Option<DateTime<Utc>>,
    baseline_comparison: Option<Json>,
    feature_contributions: Option<Vec<Contribution>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Interval {
    lower: f64,
    upper: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contribution {
    feature: String,
    value: f64,
}

/// Why a line could not be read as a prediction: the field at fault (empty
/// for the line as a whole), the prediction id when it was readable, and
/// what is wrong.
#[derive(Debug, PartialEq)]
pub struct Unreadable {
    pub field: String,
    pub id: Option<String>,
    pub message: String,
}

/// Reads one line. Invalid values (a probability above 1, say) are left to
/// the write side's checks, which report every problem; this only refuses
/// what cannot be read at all.
pub fn parse(line: &[u8]) -> Result<PredictionInput, Unreadable> {
    let parsed: PredictionLine = read(line, "predictionId")?;
    let id = parsed.prediction_id.clone();
    let vocabulary = |field: &str, message: String| Unreadable {
        field: field.to_owned(),
        id: Some(id.clone()),
        message,
    };
    let risk_level = schema_value::<RiskLevel>(&parsed.risk_level)
        .ok_or_else(|| vocabulary("riskLevel", expected::<RiskLevel>(&parsed.risk_level)))?;
    let remediation_status = match &parsed.remediation_status {
        None => None,
        Some(value) => Some(schema_value::<RemediationStatus>(value).ok_or_else(|| {
            vocabulary("remediationStatus", expected::<RemediationStatus>(value))
        })?),
    };
    Ok(PredictionInput {
        prediction_id: parsed.prediction_id,
        resource_id: parsed.resource_id,
        model_id: parsed.model_id,
        model_version: parsed.model_version,
        violation_probability: parsed.violation_probability,
        time_to_violation_hours: parsed.time_to_violation_hours,
        confidence_score: parsed.confidence_score,
        confidence_interval_lower: parsed.confidence_interval.as_ref().map(|i| i.lower),
        confidence_interval_upper: parsed.confidence_interval.as_ref().map(|i| i.upper),
        risk_level,
        risk_score: parsed.risk_score,
        impact_factors: parsed.impact_factors,
        uncertainty_sources: parsed.uncertainty_sources,
        recommendations: parsed.recommendations,
        features_used: parsed.features_used,
        shap_values: parsed.shap_values.map(features),
        shap_base_value: parsed.shap_base_value,
        attention_weights: parsed.attention_weights,
        inference_time_ms: parsed.inference_time_ms,
        prediction_timestamp: parsed.prediction_timestamp,
        expires_at: parsed.expires_at,
        remediation_status,
        remediation_id: parsed.remediation_id,
    })
}

/// Reads one line of `/ingest/drift-metrics`, as [`parse`] does.
pub fn parse_drift(line: &[u8]) -> Result<DriftMetricInput, Unreadable> {
    let parsed: DriftMetricLine = read(line, "metricId")?;
    let id = parsed.metric_id.clone();
    let vocabulary = |field: &str, message: String| Unreadable {
        field: field.to_owned(),
        id: Some(id.clone()),
        message,
    };
    let drift_type = schema_value::<DriftType>(&parsed.drift_type)
        .ok_or_else(|| vocabulary("driftType", expected::<DriftType>(&parsed.drift_type)))?;
    let alert_level = match &parsed.alert_level {
        None => None,
        Some(value) => Some(
            schema_value::<AlertLevel>(value)
                .ok_or_else(|| vocabulary("alertLevel", expected::<AlertLevel>(value)))?,
        ),
    };
    Ok(DriftMetricInput {
        metric_id: parsed.metric_id,
        resource_id: parsed.resource_id,
        model_id: parsed.model_id,
        drift_type,
        drift_score: parsed.drift_score,
        drift_velocity: parsed.drift_velocity,
        reconstruction_error: parsed.reconstruction_error,
        psi_score: parsed.psi_score,
        ks_statistic: parsed.ks_statistic,
        wasserstein_distance: parsed.wasserstein_distance,
        alert_triggered: parsed.alert_triggered,
        alert_level,
        time_to_violation_hours: parsed.time_to_violation_hours,
        measured_at: parsed.measured_at,
        baseline_comparison: parsed.baseline_comparison,
        feature_contributions: parsed.feature_contributions.map(features),
    })
}

fn features(values: Vec<Contribution>) -> Vec<FeatureValue> {
    values
        .into_iter()
        .map(|c| FeatureValue {
            feature: c.feature,
            value: c.value,
        })
        .collect()
}

/// Reads a line as `T`. Read plainly first: tracking the path costs on
/// every value, and only a line that does not read needs it, to name the
/// field at fault (and the item's id, under `id_field`, when readable).
fn read<T: serde::de::DeserializeOwned>(line: &[u8], id_field: &str) -> Result<T, Unreadable> {
    let plain = match serde_json::from_slice(line) {
        Ok(parsed) => return Ok(parsed),
        Err(plain) => plain,
    };
    let mut json = serde_json::Deserializer::from_slice(line);
    // The tracked read fails where the plain one did, naming the field;
    // trailing text after the object is the line's own fault.
    let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut json) {
        Err(e) => (e.path().to_string(), e.into_inner().to_string()),
        Ok(_) => (String::new(), plain.to_string()),
    };
    Err(Unreadable {
        // `.` is the line itself; `?` a place serde could not name.
        field: if path == "." || path == "?" {
            String::new()
        } else {
            path
        },
        id: id_of(line, id_field),
        message,
    })
}

/// A vocabulary value as the schema spells it (`CRITICAL`, `IN_PROGRESS`).
fn schema_value<V: Vocabulary>(value: &str) -> Option<V> {
    if value.bytes().any(|b| b.is_ascii_lowercase()) {
        return None;
    }
    V::from_db(&value.to_ascii_lowercase())
}

fn expected<V: Vocabulary>(value: &str) -> String {
    let names: Vec<String> = V::ALL.iter().map(|v| v.api_name()).collect();
    format!(
        "`{}` is not one of {}",
        value.chars().take(40).collect::<String>(),
        names.join(", ")
    )
}

/// The id (under `field`) of a line that did not read as a whole, if it
/// has one before the line breaks off. Reads up to the id and no further,
/// building nothing of the other members.
fn id_of(line: &[u8], field: &str) -> Option<String> {
    use serde::de::{Deserializer, Error, IgnoredAny, MapAccess, Visitor};
    struct Find<'a> {
        field: &'a str,
        found: &'a mut Option<String>,
    }
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.field {
                    if let Json::String(id) = map.next_value()? {
                        *self.found = Some(id);
                    }
                    // Stop here: the rest is not needed.
                    return Err(A::Error::custom("found"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut found = None;
    let find = Find {
        field,
        found: &mut found,
    };
    let _ = serde_json::Deserializer::from_slice(line).deserialize_map(find);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"predictionId":"p-1","resourceId":"r","modelId":"m","violationProbability":0.5,"confidenceScore":0.9,"riskLevel":"HIGH","inferenceTimeMs":3,"shapValues":[{"feature":"a","value":0.1}],"remediationStatus":"IN_PROGRESS"}"#;

    #[test]
    fn reads_the_graphql_spelling() {
        let input = parse(LINE.as_bytes()).unwrap();
        assert_eq!(input.prediction_id, "p-1");
        assert_eq!(input.risk_level, RiskLevel::High);
        assert_eq!(
            input.remediation_status,
            Some(RemediationStatus::InProgress)
        );
        assert_eq!(input.shap_values.unwrap()[0].feature, "a");
    }

    #[test]
    fn names_the_field_at_fault() {
        let wrong_type = LINE.replace("0.5", "\"high\"");
        let e = parse(wrong_type.as_bytes()).unwrap_err();
        assert_eq!(e.field, "violationProbability");
        assert_eq!(e.id.as_deref(), Some("p-1"));
        let unknown = LINE.replace("\"resourceId\"", "\"tenantId\":\"x\",\"resourceId\"");
        let e = parse(unknown.as_bytes()).unwrap_err();
        assert!(e.message.contains("tenantId"), "{e:?}");
        let lowercase = LINE.replace("HIGH", "high");
        assert_eq!(parse(lowercase.as_bytes()).unwrap_err().field, "riskLevel");
        let e = parse(b"{\"predictionId\": ").unwrap_err();
        assert_eq!((e.field.as_str(), e.id), ("predictionId", None));
        let trailing = format!("{LINE} {{}}");
        assert!(parse(trailing.as_bytes()).is_err());
    }

    const DRIFT: &str = r#"{"metricId":"d-1","modelId":"m","driftType":"CONCEPT","driftScore":0.3,"psiScore":0.2,"alertLevel":"WARNING","measuredAt":"2026-11-20T10:00:00Z","baselineComparison":{"bins":[1,2]},"featureContributions":[{"feature":"cpu","value":-0.5}]}"#;

    #[test]
    fn reads_drift_metrics_in_the_graphql_spelling() {
        let input = parse_drift(DRIFT.as_bytes()).unwrap();
        assert_eq!(input.metric_id, "d-1");
        assert_eq!(input.drift_type, DriftType::Concept);
        assert_eq!(input.alert_level, Some(AlertLevel::Warning));
        assert_eq!(input.psi_score, Some(0.2));
        assert_eq!(input.alert_triggered, None);
        assert_eq!(
            input.measured_at.unwrap().to_rfc3339(),
            "2026-11-20T10:00:00+00:00"
        );
        assert_eq!(
            input.baseline_comparison,
            Some(serde_json::json!({"bins": [1, 2]}))
        );
        let contributions = input.feature_contributions.unwrap();
        assert_eq!(
            (contributions[0].feature.as_str(), contributions[0].value),
            ("cpu", -0.5)
        );

        let refused = |line: String| parse_drift(line.as_bytes()).unwrap_err();
        let e = refused(DRIFT.replace("CONCEPT", "concept"));
        assert_eq!(
            (e.field.as_str(), e.id.as_deref()),
            ("driftType", Some("d-1"))
        );
        assert!(e.message.contains("DATA, CONCEPT"), "{e:?}");
        let e = refused(DRIFT.replace("WARNING", "LOUD"));
        assert_eq!(e.field, "alertLevel");
        let e = refused(DRIFT.replace("\"driftScore\":0.3", "\"driftScore\":\"high\""));
        assert_eq!(
            (e.field.as_str(), e.id.as_deref()),
            ("driftScore", Some("d-1"))
        );
        let e = refused(DRIFT.replace("\"psiScore\"", "\"tenantId\":\"beta\",\"psiScore\""));
        assert!(e.message.contains("tenantId"), "{e:?}");
        let e = refused(DRIFT.replace("\"metricId\":\"d-1\",", ""));
        assert!(e.message.contains("metricId"), "{e:?}");
    }

    #[test]
    fn finds_the_id_of_a_line_that_breaks_off_after_it() {
        assert_eq!(
            id_of(
                br#"{"a": [1, {"b": 2}], "metricId": "d-7", "x": "#,
                "metricId"
            )
            .as_deref(),
            Some("d-7")
        );
        assert_eq!(id_of(br#"{"a": 1, "metricId": 7}"#, "metricId"), None);
        assert_eq!(id_of(br#"{"a": tru"#, "metricId"), None);
        assert_eq!(id_of(b"[1]", "metricId"), None);
    }
}
