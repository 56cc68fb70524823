//! Predictions: the root list, lookups by id, and the predictions of models.

use std::collections::HashMap;

use entity::{feedback, prediction};
use prediction::{Column, Entity};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{QueryFilter, Select};

use super::filter::{spelled, Filters, NumberRange, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{child_pages, list_page, rows_by_key, tenant_rows, ListQuery};
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

pub async fn list(scoped: &Scoped, query: &PredictionQuery) -> ApiResult<Page<prediction::Model>> {
    list_page(scoped, query, base, sort).await
}

/// The tenant's predictions with these ids; ids it does not have are absent.
pub async fn by_ids(
    scoped: &Scoped,
    prediction_ids: &[String],
) -> ApiResult<HashMap<String, prediction::Model>> {
    rows_by_key::<Entity, _>(scoped, Column::PredictionId, prediction_ids, |row| {
        row.prediction_id.clone()
    })
    .await
}

/// One page of predictions per model, for all `model_ids` at once.
pub async fn pages_by_model(
    scoped: &Scoped,
    model_ids: &[String],
    query: &PredictionQuery,
) -> ApiResult<HashMap<String, Page<prediction::Model>>> {
    child_pages(scoped, query, base, sort, Column::ModelId, model_ids).await
}
