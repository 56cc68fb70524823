//! SHAP importance.

use async_graphql::SimpleObject;

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
