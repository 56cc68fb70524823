//! Predictions: the root list, lookups by id, and the predictions of models.

use std::collections::HashMap;

use entity::{feedback, model, prediction};
use prediction::{Column, Entity};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    DbBackend, FromQueryResult, IdenStatic, Iterable, JoinType, QueryFilter, QuerySelect,
    RelationTrait, Select,
};

use super::filter::{spelled, Filters, NumberRange, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{
    child_pages, list_page, rows_by_key_reading, rows_by_key_with, tenant_rows, Columns, ListQuery,
};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::{RemediationStatus, RiskLevel};
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct PredictionFilter {
    pub prediction_ids: Option<Vec<String>>,
    pub model_ids: Option<Vec<String>>,
    pub resource_ids: Option<Vec<String>>,
    pub resource_id_prefix: Option<String>,
    pub risk_levels: Option<Vec<RiskLevel>>,
    pub remediation_statuses: Option<Vec<RemediationStatus>>,
    pub model_versions: Option<Vec<String>>,
    pub violation_probability: Option<NumberRange>,
    pub confidence_score: Option<NumberRange>,
    pub risk_score: Option<NumberRange>,
    pub time_to_violation_hours: Option<NumberRange>,
    pub predicted_at: Option<TimeRange>,
    pub has_feedback: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PredictionOrderField {
    PredictionTimestamp,
    ViolationProbability,
    RiskScore,
    ConfidenceScore,
    TimeToViolationHours,
    InferenceTimeMs,
    PredictionId,
}

pub type PredictionQuery = ListQuery<PredictionFilter, PredictionOrderField>;

fn sort(order: OrderBy<PredictionOrderField>) -> Sort<Entity> {
    let column = match order.field {
        PredictionOrderField::PredictionTimestamp => Column::PredictionTimestamp,
        PredictionOrderField::ViolationProbability => Column::ViolationProbability,
        PredictionOrderField::RiskScore => Column::RiskScore,
        PredictionOrderField::ConfidenceScore => Column::ConfidenceScore,
        PredictionOrderField::TimeToViolationHours => Column::TimeToViolationHours,
        PredictionOrderField::InferenceTimeMs => Column::InferenceTimeMs,
        PredictionOrderField::PredictionId => Column::PredictionId,
    };
    Sort::by(column, order.direction.order(), Column::PredictionId)
}

/// The tenant's predictions matching `filter`.
pub(super) fn base(txn: &ScopedTxn, filter: &PredictionFilter) -> ApiResult<Select<Entity>> {
    let mut filters = Filters::new(txn.backend())
        .one_of(
            Column::PredictionId,
            "predictionIds",
            filter.prediction_ids.clone(),
        )?
        .one_of(Column::ModelId, "modelIds", filter.model_ids.clone())?
        .one_of(
            Column::ResourceId,
            "resourceIds",
            filter.resource_ids.clone(),
        )?
        .prefix(
            Column::ResourceId,
            "resourceIdPrefix",
            filter.resource_id_prefix.clone(),
        )?
        .one_of(
            Column::RiskLevel,
            "riskLevels",
            spelled(&filter.risk_levels),
        )?
        .one_of(
            Column::RemediationStatus,
            "remediationStatuses",
            spelled(&filter.remediation_statuses),
        )?
        .one_of(
            Column::ModelVersion,
            "modelVersions",
            filter.model_versions.clone(),
        )?
        .number_range(
            Column::ViolationProbability,
            "violationProbability",
            filter.violation_probability,
        )?
        .number_range(
            Column::ConfidenceScore,
            "confidenceScore",
            filter.confidence_score,
        )?
        .number_range(Column::RiskScore, "riskScore", filter.risk_score)?
        .number_range(
            Column::TimeToViolationHours,
            "timeToViolationHours",
            filter.time_to_violation_hours,
        )?
        .time_range(Column::PredictionTimestamp, "from", filter.predicted_at)?;
    if let Some(has_feedback) = filter.has_feedback {
        let exists = Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(feedback::Entity)
                .and_where(
                    Expr::col((feedback::Entity, feedback::Column::TenantId))
                        .equals((Entity, Column::TenantId)),
                )
                .and_where(
                    Expr::col((feedback::Entity, feedback::Column::PredictionId))
                        .equals((Entity, Column::PredictionId)),
                )
                .to_owned(),
        );
        filters = filters.and(if has_feedback { exists } else { exists.not() });
    }
    Ok(tenant_rows::<Entity>(txn).filter(filters.build()))
}

/// The optional columns of a prediction ([`Columns`] bits): the large JSON
/// and array ones, read only when a selection asks for a field built from
/// them. The others come back NULL.
pub mod optional {
    pub const IMPACT_FACTORS: u16 = 1;
    pub const UNCERTAINTY_SOURCES: u16 = 1 << 1;
    pub const RECOMMENDATIONS: u16 = 1 << 2;
    pub const FEATURES_USED: u16 = 1 << 3;
    pub const SHAP_VALUES: u16 = 1 << 4;
    pub const ATTENTION_WEIGHTS: u16 = 1 << 5;
    /// Not a column: the model, joined in by [`super::by_ids_with_models`].
    pub const WITH_MODEL: u16 = 1 << 6;
}

/// Each optional column: its bit and its PostgreSQL type (a typed NULL
/// stands in for it).
const OPTIONAL: [(u16, Column, &str); 6] = [
    (optional::IMPACT_FACTORS, Column::ImpactFactors, "jsonb"),
    (
        optional::UNCERTAINTY_SOURCES,
        Column::UncertaintySources,
        "jsonb",
    ),
    (optional::RECOMMENDATIONS, Column::Recommendations, "text[]"),
    (optional::FEATURES_USED, Column::FeaturesUsed, "jsonb"),
    (optional::SHAP_VALUES, Column::ShapValues, "jsonb"),
    (
        optional::ATTENTION_WEIGHTS,
        Column::AttentionWeights,
        "jsonb",
    ),
];

/// `select` reading only the optional columns in `columns`.
fn reading(select: Select<Entity>, columns: Columns, backend: DbBackend) -> Select<Entity> {
    if OPTIONAL.iter().all(|(bit, _, _)| columns.has(*bit)) {
        return select;
    }
    let mut select = select.select_only();
    for column in Column::iter() {
        let left_out = OPTIONAL
            .iter()
            .find(|(bit, optional, _)| optional.as_str() == column.as_str() && !columns.has(*bit));
        select = match left_out {
            Some((_, _, sql_type)) => {
                let null = match backend {
                    DbBackend::Postgres => format!("NULL::{sql_type}"),
                    _ => "NULL".to_owned(),
                };
                select.column_as(Expr::cust(null), column.as_str())
            }
            None => select.column(column),
        };
    }
    select
}

/// [`base`] reading only the optional `columns`.
fn base_reading(
    columns: Columns,
) -> impl FnOnce(&ScopedTxn, &PredictionFilter) -> ApiResult<Select<Entity>> {
    move |txn: &ScopedTxn, filter: &PredictionFilter| {
        Ok(reading(base(txn, filter)?, columns, txn.backend()))
    }
}

pub async fn list(scoped: &Scoped, query: &PredictionQuery) -> ApiResult<Page<prediction::Model>> {
    list_page(scoped, query, base_reading(query.columns()), sort).await
}

/// The tenant's predictions with these ids, reading the optional `columns`;
/// ids it does not have are absent.
pub async fn by_ids(
    scoped: &Scoped,
    prediction_ids: &[String],
    columns: Columns,
) -> ApiResult<HashMap<String, prediction::Model>> {
    rows_by_key_reading::<Entity, _>(
        scoped,
        Column::PredictionId,
        prediction_ids,
        |row| row.prediction_id.clone(),
        |select, backend| reading(select, columns, backend),
    )
    .await
}

/// Predictions by id with, read in the same statement, the models that
/// made them (by model id).
#[derive(Default)]
pub struct WithModels {
    pub predictions: HashMap<String, prediction::Model>,
    pub models: HashMap<String, model::Model>,
}

/// What the joined model's columns are named after (no prediction column
/// starts with it).
const MODEL_PREFIX: &str = "m__";

/// [`by_ids`], with the predictions' models joined in (one statement where
/// two would be: a lookup that also asks for the model). A model repeats
/// down the rows of its predictions; it is decoded from its first.
pub async fn by_ids_with_models(
    scoped: &Scoped,
    prediction_ids: &[String],
    columns: Columns,
) -> ApiResult<WithModels> {
    let mut found = WithModels::default();
    rows_by_key_with::<Entity, _>(
        scoped,
        Column::PredictionId,
        prediction_ids,
        |select, backend| {
            // On both key columns (the relation's), so never another tenant's model.
            let select = reading(select, columns, backend)
                .join(JoinType::LeftJoin, prediction::Relation::Model.def());
            super::models::joined_columns(select, MODEL_PREFIX, backend)
        },
        |row| {
            let prediction = prediction::Model::from_query_result(&row, "")?;
            // Only a model not yet seen is looked at: the join found it
            // when its key is there.
            if !found.models.contains_key(&prediction.model_id)
                && row
                    .try_get::<Option<String>>(MODEL_PREFIX, model::Column::ModelId.as_str())?
                    .is_some()
            {
                let model = model::Model::from_query_result(&row, MODEL_PREFIX)?;
                found.models.insert(model.model_id.clone(), model);
            }
            found
                .predictions
                .insert(prediction.prediction_id.clone(), prediction);
            Ok(())
        },
    )
    .await?;
    Ok(found)
}

/// One page of predictions per model, for all `model_ids` at once.
pub async fn pages_by_model(
    scoped: &Scoped,
    model_ids: &[String],
    query: &PredictionQuery,
) -> ApiResult<HashMap<String, Page<prediction::Model>>> {
    child_pages(
        scoped,
        query,
        base_reading(query.columns()),
        sort,
        Column::ModelId,
        model_ids,
    )
    .await
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, QueryTrait};

    use super::*;

    fn sql(columns: Columns) -> String {
        reading(Entity::find(), columns, DbBackend::Postgres)
            .build(DbBackend::Postgres)
            .to_string()
    }

    #[test]
    fn left_out_columns_are_not_read() {
        let none = sql(Columns::NONE);
        for (_, column, _) in OPTIONAL {
            let read = format!("\"ml_predictions\".\"{}\"", column.as_str());
            assert!(!none.contains(&read), "{read} in {none}");
            assert!(sql(Columns::ALL).contains(&read));
        }
        assert!(none.contains("NULL::jsonb AS \"shap_values\""), "{none}");
        assert!(
            none.contains("NULL::text[] AS \"recommendations\""),
            "{none}"
        );
        let shap = sql(Columns::NONE.with(optional::SHAP_VALUES));
        assert!(
            shap.contains("\"ml_predictions\".\"shap_values\""),
            "{shap}"
        );
        assert!(
            shap.contains("NULL::jsonb AS \"attention_weights\""),
            "{shap}"
        );
        // Every other column is read as it is.
        assert!(none.contains("\"ml_predictions\".\"violation_probability\""));
    }
}
