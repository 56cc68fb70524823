//! The feedback loop's writes: reviewers' verdicts on predictions, and the
//! mark that a verdict was acted on.

use std::collections::HashSet;

use entity::{feedback, prediction};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{
    commit, create_one, not_found, refuse, Checker, DecimalSpec, Fingerprint, Idempotent, Writer,
};
use crate::domain::{FeedbackType, ImpactOnModel, Vocabulary};
use crate::error::{ApiError, ApiResult, InputProblem, Refusal};
use crate::identity::can;
use crate::store::keyed_rows;
use crate::store::now;

/// The longest comment.
const MAX_COMMENT_CHARS: usize = 10_000;

/// The most feedback ids one `markFeedbackProcessed` call takes.
pub const MAX_PROCESSED_IDS: usize = 1_000;

/// A verdict on a prediction. Who gave it comes from the credentials.
#[derive(Clone, Debug)]
pub struct FeedbackInput {
    /// The client's id for this feedback, which makes a retry safe; a fresh
    /// one is generated when absent.
    pub feedback_id: Option<String>,
    pub prediction_id: String,
    pub feedback_type: FeedbackType,
    pub correct_label: Option<bool>,
    pub accuracy_rating: Option<f64>,
    pub comments: Option<String>,
}

impl Idempotent for feedback::Entity {
    fn key_column() -> feedback::Column {
        feedback::Column::FeedbackId
    }

    /// The verdict and who gave it; processing is `markFeedbackProcessed`'s.
    fn fingerprint(row: &feedback::Model) -> Fingerprint {
        Fingerprint::new()
            .text("predictionId", &row.prediction_id)
            .text("feedbackType", &row.feedback_type)
            .value("correctLabel", row.correct_label)
            .opt_decimal("accuracyRating", row.accuracy_rating.as_ref(), 2)
            .opt_text("comments", row.comments.as_deref())
            .text("userId", &row.user_id)
    }
}

/// Records a reviewer's verdict on one of the tenant's predictions
/// (`NOT_FOUND` for any other). `userId` and `userRole` are the caller's.
pub async fn submit(
    writer: &Writer<can::GiveFeedback>,
    input: FeedbackInput,
) -> ApiResult<feedback::Model> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    if let Some(id) = &input.feedback_id {
        check.id("feedbackId", id);
    }
    check.id("predictionId", &input.prediction_id);
    let accuracy_rating =
        check.opt_decimal("accuracyRating", input.accuracy_rating, DecimalSpec::RATING);
    check.opt_text("comments", input.comments.as_deref(), MAX_COMMENT_CHARS);
    // A false positive means no violation happened; a false negative, one did.
    match (input.feedback_type, input.correct_label) {
        (FeedbackType::FalsePositive, Some(true)) | (FeedbackType::FalseNegative, Some(false)) => {
            check.problem(
                "correctLabel",
                format!(
                    "contradicts feedbackType {}",
                    input.feedback_type.api_name()
                ),
            )
        }
        _ => {}
    }
    check.caller("userId", writer);
    checker.finish()?;

    let txn = writer.begin().await?;
    let predictions = keyed_rows::<prediction::Entity, _>(
        &txn,
        prediction::Column::PredictionId,
        std::slice::from_ref(&input.prediction_id),
        |p| p.prediction_id.clone(),
    )
    .await?;
    if predictions.is_empty() {
        return Err(not_found(
            "input.predictionId",
            "prediction",
            &input.prediction_id,
        ));
    }
    let mut defaulted = vec![];
    let feedback_id = input.feedback_id.unwrap_or_else(|| {
        defaulted.push("feedbackId");
        format!("fb-{}", uuid::Uuid::new_v4().simple())
    });
    let row = feedback::Model {
        id: uuid::Uuid::new_v4(),
        feedback_id,
        prediction_id: input.prediction_id,
        tenant_id: txn.tenant().to_owned(),
        feedback_type: input.feedback_type.as_db().to_owned(),
        correct_label: input.correct_label,
        accuracy_rating,
        comments: input.comments,
        user_id: writer.subject().to_owned(),
        user_role: Some(writer.role().as_str().to_owned()),
        processed: Some(false),
        impact_on_model: None,
        created_at: Some(now()),
        processed_at: None,
    };
    create_one::<feedback::Entity>(txn, row, defaulted).await
}

/// Marks feedback as processed with what it did to the model. Feedback
/// already processed with the same impact keeps its `processedAt` (a retry
/// changes nothing); one processed with another impact takes the new one.
/// Any id the tenant does not have refuses the whole call (`NOT_FOUND`).
/// Returns the feedback in the order of `feedback_ids` (repeats dropped).
pub async fn mark_processed(
    writer: &Writer<can::ProcessFeedback>,
    feedback_ids: Vec<String>,
    impact: ImpactOnModel,
) -> ApiResult<Vec<feedback::Model>> {
    let impact = impact.as_db();
    let mut seen = HashSet::new();
    let ids: Vec<String> = feedback_ids
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect();
    if ids.len() > MAX_PROCESSED_IDS {
        return Err(ApiError::BadUserInput {
            message: format!("at most {MAX_PROCESSED_IDS} feedback ids per call"),
            field: Some("feedbackIds".into()),
        });
    }
    let txn = writer.begin().await?;
    let mut found =
        keyed_rows::<feedback::Entity, _>(&txn, feedback::Column::FeedbackId, &ids, |f| {
            f.feedback_id.clone()
        })
        .await?;
    let missing: Vec<InputProblem> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !found.contains_key(*id))
        .map(|(index, id)| InputProblem {
            index: Some(index),
            id: Some(id.clone()),
            field: format!("feedbackIds[{index}]"),
            message: format!("feedback `{id}` not found"),
        })
        .collect();
    refuse(Refusal::NotFound, missing)?;

    let to_mark: Vec<String> = found
        .values()
        .filter(|f| !(f.processed == Some(true) && f.impact_on_model.as_deref() == Some(impact)))
        .map(|f| f.feedback_id.clone())
        .collect();
    if !to_mark.is_empty() {
        let processed_at = now();
        feedback::Entity::update_many()
            .col_expr(feedback::Column::Processed, Expr::value(true))
            .col_expr(feedback::Column::ImpactOnModel, Expr::value(impact))
            .col_expr(feedback::Column::ProcessedAt, Expr::value(processed_at))
            .filter(feedback::Column::TenantId.eq(txn.tenant()))
            .filter(feedback::Column::FeedbackId.is_in(to_mark.iter().cloned()))
            .exec(txn.conn())
            .await
            .map_err(ApiError::from_write)?;
        for id in &to_mark {
            if let Some(row) = found.get_mut(id) {
                row.processed = Some(true);
                row.impact_on_model = Some(impact.to_owned());
                row.processed_at = Some(processed_at);
            }
        }
    }
    commit(txn).await?;
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}
