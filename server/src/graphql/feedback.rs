//! Human feedback on predictions.

use async_graphql::{Context, Enum, InputObject, Object};
use chrono::{DateTime, Utc};
use entity::feedback;

use super::common::order_input;
use super::common::page;
use super::common::{
    domain_values, float_opt, list_query, node, page_complexity, time_range, vocab, vocab_opt,
    vocabulary, FloatRange, OrderDirection,
};
use super::predictions::Prediction;
use super::request_context;
use crate::identity::can;
use crate::store::feedback::{self as store, FeedbackOrderField as DataOrderField};
use crate::write::feedback as write;

vocabulary!(
    /// What a reviewer said about a prediction.
    FeedbackType {
        Correct,
        Incorrect,
        FalsePositive,
        FalseNegative,
    }
);

vocabulary!(
    /// What the feedback did to the model.
    ImpactOnModel {
        RetrainTriggered,
        WeightAdjusted,
        Ignored,
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

impl From<FeedbackFilter> for store::FeedbackFilter {
    fn from(filter: FeedbackFilter) -> Self {
        store::FeedbackFilter {
            feedback_ids: filter.feedback_ids,
            prediction_ids: filter.prediction_ids,
            feedback_types: domain_values(filter.feedback_types),
            user_ids: filter.user_ids,
            processed: filter.processed,
            correct_label: filter.correct_label,
            accuracy_rating: filter.accuracy_rating.map(Into::into),
            created_at: time_range(filter.from, filter.to),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::store::feedback::FeedbackOrderField")]
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

order_input!(FeedbackOrder => DataOrderField);

node!(
    /// A reviewer's verdict on a prediction.
    Feedback(feedback::Model),
    FeedbackConnection,
    FeedbackEdge
);

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
        super::predictions::prediction_by_id(ctx, self.0.prediction_id.clone()).await
    }
}

#[derive(Default)]
pub struct FeedbackQueryRoot;

#[Object]
impl FeedbackQueryRoot {
    /// Feedback, newest first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
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
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        Ok(store::list(rc.scoped(), &query).await?.into())
    }
}

/// A verdict on a prediction. Who gave it (`userId`, `userRole`) comes from
/// the credentials, never from input.
#[derive(InputObject, Debug)]
pub struct FeedbackInput {
    /// The client's id for this feedback: send one to make retries safe (a
    /// fresh `fb-…` id is generated when absent).
    pub feedback_id: Option<String>,
    /// A prediction of the caller's tenant.
    pub prediction_id: String,
    pub feedback_type: FeedbackType,
    /// Whether a violation really happened (must agree with
    /// `FALSE_POSITIVE`/`FALSE_NEGATIVE`).
    pub correct_label: Option<bool>,
    /// 0–5, stored to 2 decimal places.
    pub accuracy_rating: Option<f64>,
    pub comments: Option<String>,
}

#[derive(Default)]
pub struct FeedbackMutation;

#[Object]
impl FeedbackMutation {
    /// Records a verdict on a prediction (`analyst`, `service`, `admin`);
    /// `NOT_FOUND` for a prediction the tenant does not have. The same
    /// `feedbackId` with the same content is a retry; with other content,
    /// `CONFLICT`.
    async fn submit_feedback(
        &self,
        ctx: &Context<'_>,
        input: FeedbackInput,
    ) -> async_graphql::Result<Feedback> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::GiveFeedback>()?;
        let input = write::FeedbackInput {
            feedback_id: input.feedback_id,
            prediction_id: input.prediction_id,
            feedback_type: input.feedback_type.into(),
            correct_label: input.correct_label,
            accuracy_rating: input.accuracy_rating,
            comments: input.comments,
        };
        Ok(Feedback::from(write::submit(&writer, input).await?))
    }

    /// Marks feedback as processed with its impact on the model (`service`,
    /// `admin`), returned in the order given. Already processed with the same
    /// impact: unchanged. Any id the tenant does not have refuses the call
    /// (`NOT_FOUND`) and nothing changes.
    async fn mark_feedback_processed(
        &self,
        ctx: &Context<'_>,
        feedback_ids: Vec<String>,
        impact_on_model: ImpactOnModel,
    ) -> async_graphql::Result<Vec<Feedback>> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::ProcessFeedback>()?;
        let rows = write::mark_processed(&writer, feedback_ids, impact_on_model.into()).await?;
        Ok(rows.into_iter().map(Feedback::from).collect())
    }
}
