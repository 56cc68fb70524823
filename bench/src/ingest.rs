//! Ingestion: `recordPredictions` batches shaped like the demo's predictions
//! (20 SHAP features, 8×16 attention on transformer models).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value as Json};

pub const RECORD: &str =
    "mutation($input: [PredictionInput!]!) { recordPredictions(input: $input) { count } }";

fn softmax(rng: &mut StdRng, n: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..3.0f64).exp()).collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / sum * 1e4).round() / 1e4).collect()
}

/// A batch of `size` new predictions for the tenant's `models`, with ids
/// `<prefix>-<n>`.
pub fn batch(prefix: &str, size: usize, models: &[String], seed: u64) -> Json {
    let mut rng = StdRng::seed_from_u64(seed);
    let predictions: Vec<Json> = (0..size)
        .map(|n| {
            let model = &models[n % models.len()];
            let probability: f64 = rng.gen_range(0.01..0.99);
            let risk = match probability {
                p if p >= 0.85 => "CRITICAL",
                p if p >= 0.65 => "HIGH",
                p if p >= 0.35 => "MEDIUM",
                _ => "LOW",
            };
            let shap: Vec<Json> = api::ops::demo::SHAP_FEATURES
                .iter()
                .enumerate()
                .map(|(i, feature)| {
                    let value = 0.35 / (1.0 + i as f64).powf(1.3) * rng.gen_range(-1.0..1.0);
                    json!({"feature": feature, "value": (value * 1e5f64).round() / 1e5})
                })
                .collect();
            let attention = model.starts_with("transformer").then(
                || json!({"heads": (0..8).map(|_| softmax(&mut rng, 16)).collect::<Vec<_>>()}),
            );
            json!({
                "predictionId": format!("{prefix}-{n:04}"),
                "resourceId": format!("res-bench-{:03}", rng.gen_range(0..200)),
                "modelId": model,
                "violationProbability": (probability * 1e4f64).round() / 1e4,
                "confidenceScore": (rng.gen_range(0.6..0.99f64) * 1e4).round() / 1e4,
                "riskLevel": risk,
                "inferenceTimeMs": (rng.gen_range(5.0..60.0f64) * 100.0).round() / 100.0,
                "shapValues": shap,
                "shapBaseValue": 0.18,
                "attentionWeights": attention,
                "recommendations": ["Block public access at the account level"],
            })
        })
        .collect();
    Json::Array(predictions)
}
