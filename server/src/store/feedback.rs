//! Feedback: the root list, the feedback on predictions, and the feedback
//! on each model's predictions.

use std::collections::HashMap;

use entity::{feedback, prediction};
use feedback::{Column, Entity};
use sea_orm::{ColumnTrait, JoinType, QueryFilter, QuerySelect, RelationTrait, Select};

use super::filter::{spelled, Filters, NumberRange, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{child_pages, list_page, tenant_rows, ListQuery};
use crate::db::{Scoped, ScopedTxn};
use crate::domain::FeedbackType;
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct FeedbackFilter {
    pub feedback_ids: Option<Vec<String>>,
    pub prediction_ids: Option<Vec<String>>,
    pub feedback_types: Option<Vec<FeedbackType>>,
    pub user_ids: Option<Vec<String>>,
    pub processed: Option<bool>,
    pub correct_label: Option<bool>,
    pub accuracy_rating: Option<NumberRange>,
    pub created_at: Option<TimeRange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedbackOrderField {
    CreatedAt,
    AccuracyRating,
    FeedbackId,
}

pub type FeedbackQuery = ListQuery<FeedbackFilter, FeedbackOrderField>;

fn sort(order: OrderBy<FeedbackOrderField>) -> Sort<Entity> {
    let column = match order.field {
        FeedbackOrderField::CreatedAt => Column::CreatedAt,
        FeedbackOrderField::AccuracyRating => Column::AccuracyRating,
        FeedbackOrderField::FeedbackId => Column::FeedbackId,
    };
    Sort::by(column, order.direction.order(), Column::FeedbackId)
}

fn base(txn: &ScopedTxn, filter: &FeedbackFilter) -> ApiResult<Select<Entity>> {
    let filters = Filters::new(txn.backend())
        .one_of(
            Column::FeedbackId,
            "feedbackIds",
            filter.feedback_ids.clone(),
        )?
        .one_of(
            Column::PredictionId,
            "predictionIds",
            filter.prediction_ids.clone(),
        )?
        .one_of(
            Column::FeedbackType,
            "feedbackTypes",
            spelled(&filter.feedback_types),
        )?
        .one_of(Column::UserId, "userIds", filter.user_ids.clone())?
        .equals(Column::Processed, filter.processed)
        .equals(Column::CorrectLabel, filter.correct_label)
        .number_range(
            Column::AccuracyRating,
            "accuracyRating",
            filter.accuracy_rating,
        )?
        .time_range(Column::CreatedAt, "from", filter.created_at)?;
    Ok(tenant_rows::<Entity>(txn).filter(filters.build()))
}

pub async fn list(scoped: &Scoped, query: &FeedbackQuery) -> ApiResult<Page<feedback::Model>> {
    list_page(scoped, query, base, sort).await
}

/// One page of feedback per prediction.
pub async fn pages_by_prediction(
    scoped: &Scoped,
    prediction_ids: &[String],
    query: &FeedbackQuery,
) -> ApiResult<HashMap<String, Page<feedback::Model>>> {
    child_pages(
        scoped,
        query,
        base,
        sort,
        Column::PredictionId,
        prediction_ids,
    )
    .await
}

/// One page per model of the feedback given on that model's predictions.
pub async fn pages_by_model(
    scoped: &Scoped,
    model_ids: &[String],
    query: &FeedbackQuery,
) -> ApiResult<HashMap<String, Page<feedback::Model>>> {
    // The relation joins on (tenant_id, prediction_id): never across tenants.
    let with_predictions = |txn: &ScopedTxn, filter: &FeedbackFilter| {
        Ok(base(txn, filter)?
            .join(JoinType::InnerJoin, feedback::Relation::Prediction.def())
            .filter(prediction::Column::TenantId.eq(txn.tenant())))
    };
    child_pages(
        scoped,
        query,
        with_predictions,
        sort,
        prediction::Column::ModelId,
        model_ids,
    )
    .await
}
