//! Human feedback on predictions.

use async_graphql::{Context, Enum, InputObject, Object};
use chrono::{DateTime, Utc};
use entity::feedback;

use super::common::{
    connection, db_values, float_opt, list_query, page_complexity, time_range, vocab, vocab_opt,
    vocabulary, FloatRange, OrderDirection,
};
use super::loaders::{load_row, PredictionById, RowKey};
use super::predictions::Prediction;
use super::request_context;
use crate::data::feedback::{self as data, FeedbackOrderField as DataOrderField, FeedbackQuery};
use crate::error::ApiResult;

vocabulary!(
    /// What a reviewer said about a prediction.
    FeedbackType {
        Correct => "correct",
        Incorrect => "incorrect",
        FalsePositive => "false_positive",
        FalseNegative => "false_negative",
    }
);

vocabulary!(
    /// What the feedback did to the model.
    ImpactOnModel {
        RetrainTriggered => "retrain_triggered",
        WeightAdjusted => "weight_adjusted",
        Ignored => "ignored",
    }
);

/// Which feedback a list holds. All conditions must hold.
#[derive(InputObject, Default, Debug)]
pub struct FeedbackFilter {
    pub feedback_ids: Option<Vec<String>>,
    pub prediction_ids: Option<Vec<String>>,
    pub feedback_types: Option<Vec<FeedbackType>>,
    pub user_ids: Option<Vec<String>>,
    pub processed: Option<bool>,
    pub correct_label: Option<bool>,
    pub accuracy_rating: Option<FloatRange>,
    /// Given at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Given before this time.
    pub to: Option<DateTime<Utc>>,
}

impl From<FeedbackFilter> for data::FeedbackFilter {
    fn from(filter: FeedbackFilter) -> Self {
        data::FeedbackFilter {
            feedback_ids: filter.feedback_ids,
            prediction_ids: filter.prediction_ids,
            feedback_types: db_values(filter.feedback_types),
            user_ids: filter.user_ids,
            processed: filter.processed,
            correct_label: filter.correct_label,
            accuracy_rating: filter.accuracy_rating.map(Into::into),
            created_at: time_range(filter.from, filter.to),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::data::feedback::FeedbackOrderField")]
pub enum FeedbackOrderField {
    #[default]
    CreatedAt,
    AccuracyRating,
    FeedbackId,
}

/// How a feedback list is ordered; ties are broken by `feedbackId`.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct FeedbackOrder {
    #[graphql(default)]
    pub field: FeedbackOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

pub fn feedback_query(
    ctx: &Context<'_>,
    filter: Option<FeedbackFilter>,
    order_by: Option<FeedbackOrder>,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> ApiResult<FeedbackQuery> {
    let order = order_by.unwrap_or_default();
    list_query(
        ctx,
        filter.unwrap_or_default().into(),
        DataOrderField::from(order.field),
        order.direction,
        first,
        after,
        last,
        before,
    )
}

/// A reviewer's verdict on a prediction.
pub struct Feedback(feedback::Model);

impl From<feedback::Model> for Feedback {
    fn from(row: feedback::Model) -> Self {
        Self(row)
    }
}

connection!(FeedbackConnection, FeedbackEdge, Feedback);

/// A reviewer's verdict on a prediction.
#[Object]
impl Feedback {
    async fn feedback_id(&self) -> &str {
        &self.0.feedback_id
    }

    async fn prediction_id(&self) -> &str {
        &self.0.prediction_id
    }

    async fn feedback_type(&self) -> async_graphql::Result<FeedbackType> {
        vocab(&self.0.feedback_type)
    }

    /// Whether a violation really happened, if the reviewer said.
    async fn correct_label(&self) -> Option<bool> {
        self.0.correct_label
    }

    /// 0.00–5.00.
    async fn accuracy_rating(&self) -> Option<f64> {
        float_opt(&self.0.accuracy_rating)
    }

    async fn comments(&self) -> Option<&str> {
        self.0.comments.as_deref()
    }

    async fn user_id(&self) -> &str {
        &self.0.user_id
    }

    async fn user_role(&self) -> Option<&str> {
        self.0.user_role.as_deref()
    }

    async fn processed(&self) -> Option<bool> {
        self.0.processed
    }

    async fn impact_on_model(&self) -> async_graphql::Result<Option<ImpactOnModel>> {
        vocab_opt(self.0.impact_on_model.as_deref())
    }

    async fn created_at(&self) -> Option<DateTime<Utc>> {
        self.0.created_at
    }

    async fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.0.processed_at
    }

    /// The prediction this feedback is about.
    async fn prediction(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Prediction>> {
        let rc = request_context(ctx)?;
        let key = PredictionById(RowKey {
            tenant: rc.tenant(),
            id: self.0.prediction_id.clone(),
        });
        Ok(load_row(rc.loaders(), key).await?.map(Prediction::from))
    }
}

#[derive(Default)]
pub struct FeedbackQueryRoot;

#[Object]
impl FeedbackQueryRoot {
    /// Feedback, newest first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn feedback(
        &self,
        ctx: &Context<'_>,
        filter: Option<FeedbackFilter>,
        order_by: Option<FeedbackOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<FeedbackConnection> {
        let rc = request_context(ctx)?;
        let query = feedback_query(ctx, filter, order_by, first, after, last, before)?;
        Ok(data::list(rc.scoped(), &query).await?.into())
    }
}
