//! Global feature importance from stored SHAP values: the mean absolute
//! contribution of each feature over the predictions it appears in.
//!
//! The format is `domain::explanation`'s: `{feature: value}` or the same
//! under `values`; base-value keys and non-numeric entries are not features.

use super::sql::Sql;
use super::{filtered_predictions, get_count, get_float, get_text, measure, rollups};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::explanation::{BASE_VALUE_KEYS, MAX_FEATURES, VALUES_KEY};
use crate::error::ApiResult;
use crate::store::filter::invalid;
use crate::store::predictions::PredictionFilter;

#[derive(Clone, Debug, PartialEq)]
pub struct FeatureImportance {
    pub feature: String,
    pub mean_abs_value: f64,
    pub mean_value: f64,
    /// Predictions the feature has a value in.
    pub predictions: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ShapImportance {
    /// Predictions in the window with SHAP values.
    pub predictions: u64,
    /// Distinct features seen.
    pub feature_count: u64,
    /// The `top` features by mean |SHAP|, ties by name.
    pub features: Vec<FeatureImportance>,
}

/// Two statements in one transaction: the predictions with features, and
/// the per-feature aggregates, ranked here so that both backends order ties
/// the same way. On PostgreSQL from the rollups, when the filter is one they
/// keep (models, versions, time).
pub async fn importance(
    scoped: &Scoped,
    filter: &PredictionFilter,
    top: usize,
) -> ApiResult<ShapImportance> {
    let txn = scoped.begin_analytics().await?;
    let importance = importance_in(&txn, filter, top).await?;
    txn.commit().await?;
    Ok(importance)
}

/// [`importance`] inside the caller's transaction.
pub(super) async fn importance_in(
    txn: &ScopedTxn,
    filter: &PredictionFilter,
    top: usize,
) -> ApiResult<ShapImportance> {
    match rollups::Scope::for_filter(txn, filter, rollups::Kept::Hours)? {
        Some(scope) => rollups::importance(txn, &scope, top).await,
        None => scan(txn, filter, top).await,
    }
}

/// Every filtered prediction's SHAP entries, aggregated.
async fn scan(txn: &ScopedTxn, filter: &PredictionFilter, top: usize) -> ApiResult<ShapImportance> {
    let mut select = filtered_predictions(txn, filter)?;
    select.column(entity::prediction::Column::ShapValues);

    let mut count = Sql::new(txn.backend());
    count.push("SELECT COUNT(DISTINCT f.prediction_id) AS n ");
    write_feature_rows(&mut count, &select);
    let predictions = match count.fetch(txn).await?.first() {
        Some(row) => get_count(row, "n")?,
        None => 0,
    };

    let mut sql = Sql::new(txn.backend());
    let value = entry_value(&sql);
    sql.push("SELECT e.key AS feature, COUNT(*) AS n, ")
        .aggregate("AVG", &format!("ABS({value})"))
        .push(" AS mean_abs, ")
        .aggregate("AVG", value)
        .push(" AS mean_value ");
    write_feature_rows(&mut sql, &select);
    sql.push(&format!(" GROUP BY e.key LIMIT {}", MAX_FEATURES + 1));
    let rows = sql.fetch(txn).await?;
    answer(predictions, &rows, top)
}

/// The answer from per-feature rows (`feature`, `n`, `mean_abs`,
/// `mean_value`, at most one more than [`MAX_FEATURES`]): the `top`
/// features by mean |SHAP|, ties by name, so that both backends and both
/// paths order ties the same way.
pub(super) fn answer(
    predictions: u64,
    rows: &[sea_orm::QueryResult],
    top: usize,
) -> ApiResult<ShapImportance> {
    if rows.len() > MAX_FEATURES {
        return Err(invalid(
            "window",
            format!("more than {MAX_FEATURES} distinct SHAP features; narrow the window"),
        ));
    }
    let mut features = Vec::with_capacity(rows.len());
    for row in rows {
        features.push(FeatureImportance {
            feature: get_text(row, "feature")?.unwrap_or_default(),
            mean_abs_value: measure(get_float(row, "mean_abs")?.unwrap_or(0.0)),
            mean_value: measure(get_float(row, "mean_value")?.unwrap_or(0.0)),
            predictions: get_count(row, "n")?,
        });
    }
    let feature_count = features.len() as u64;
    features.sort_by(|a, b| {
        b.mean_abs_value
            .total_cmp(&a.mean_abs_value)
            .then_with(|| a.feature.cmp(&b.feature))
    });
    features.truncate(top);
    Ok(ShapImportance {
        predictions,
        feature_count,
        features,
    })
}

/// A SHAP entry's value: on PostgreSQL the JSON number as an exact decimal
/// (as the rollups sum it), on SQLite the number `json_each` gives.
pub(super) fn entry_value(sql: &Sql) -> &'static str {
    if sql.is_postgres() {
        "CAST(e.value #>> '{}' AS NUMERIC)"
    } else {
        "CAST(e.value AS REAL)"
    }
}

/// `FROM` the filtered predictions `f` joined to their numeric SHAP entries
/// `e(key, value)`.
pub(super) fn write_feature_rows(sql: &mut Sql, select: &sea_orm::sea_query::SelectStatement) {
    if sql.is_postgres() {
        sql.push("FROM ").subquery(select).push(&format!(
            " f CROSS JOIN LATERAL jsonb_each(CASE \
               WHEN jsonb_typeof(f.shap_values -> '{VALUES_KEY}') = 'object' THEN f.shap_values -> '{VALUES_KEY}' \
               WHEN jsonb_typeof(f.shap_values) = 'object' THEN f.shap_values \
               ELSE '{{}}'::jsonb END) e \
             WHERE jsonb_typeof(e.value) = 'number'",
        ));
    } else {
        sql.push("FROM ").subquery(select).push(&format!(
            " f, json_each(CASE \
               WHEN json_type(f.shap_values, '$.{VALUES_KEY}') = 'object' THEN json_extract(f.shap_values, '$.{VALUES_KEY}') \
               WHEN json_type(f.shap_values) = 'object' THEN f.shap_values \
               ELSE '{{}}' END) e \
             WHERE e.type IN ('integer', 'real')",
        ));
    }
    // Constant keys, quoted here rather than bound: they are part of the SQL's shape.
    let base_value_keys = BASE_VALUE_KEYS.map(|key| format!("'{key}'")).join(", ");
    sql.push(" AND e.key NOT IN (")
        .push(&base_value_keys)
        .push(")");
}
