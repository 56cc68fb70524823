//! Feature sets: upserted by id, versioned by content.

use chrono::{DateTime, Utc};
use entity::feature_set;

use super::{
    commit, insert_new, locked_row, save_changes, Checker, DecimalSpec, Fingerprint, Idempotent,
    Writer,
};
use crate::domain::{FeatureType, Vocabulary};
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::{now, truncate_to_micros};

/// A feature set as a service computed it. Vocabularies arrive as
/// domain enums.
#[derive(Clone, Debug)]
pub struct FeatureSetInput {
    pub feature_set_id: String,
    pub resource_id: String,
    pub feature_type: FeatureType,
    pub features: serde_json::Value,
    /// When the features were computed; the time of the write when absent.
    pub computed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub quality_score: Option<f64>,
    pub completeness: Option<f64>,
}

impl Idempotent for feature_set::Entity {
    fn key_column() -> feature_set::Column {
        feature_set::Column::FeatureSetId
    }

    /// The content a new version is made of.
    fn fingerprint(row: &feature_set::Model) -> Fingerprint {
        Fingerprint::new()
            .text("resourceId", &row.resource_id)
            .text("featureType", &row.feature_type)
            .json("features", Some(&row.features))
            .time("computedAt", row.computed_at)
            .time("expiresAt", row.expires_at)
            .opt_decimal("qualityScore", row.quality_score.as_ref(), 2)
            .opt_decimal("completeness", row.completeness.as_ref(), 2)
    }
}

/// Creates a feature set at version 1, or replaces its content and bumps
/// `featureVersion`. Sending the content it already has changes nothing
/// (the version stays), so a retry never bumps twice; concurrent upserts
/// of one id each bump once, in turn.
pub async fn upsert(
    writer: &Writer<can::Ingest>,
    input: FeatureSetInput,
) -> ApiResult<feature_set::Model> {
    let mut checker = Checker::new();
    let mut check = checker.object("input");
    check.id("featureSetId", &input.feature_set_id);
    check.id("resourceId", &input.resource_id);
    check.json_object("features", &input.features);
    let quality_score =
        check.opt_decimal("qualityScore", input.quality_score, DecimalSpec::UNIT_2DP);
    let completeness = check.opt_decimal("completeness", input.completeness, DecimalSpec::UNIT_2DP);
    if let (Some(computed), Some(expires)) = (input.computed_at, input.expires_at) {
        if expires <= computed {
            check.problem("expiresAt", "must be after computedAt");
        }
    }
    checker.finish()?;

    let txn = writer.begin().await?;
    let written_at = now();
    let content = feature_set::Model {
        id: uuid::Uuid::new_v4(),
        feature_set_id: input.feature_set_id,
        resource_id: input.resource_id,
        tenant_id: txn.tenant().to_owned(),
        feature_type: input.feature_type.as_db().to_owned(),
        features: input.features,
        feature_version: Some(1),
        computed_at: Some(truncate_to_micros(input.computed_at.unwrap_or(written_at))),
        expires_at: input.expires_at.map(truncate_to_micros),
        quality_score,
        completeness,
    };
    let inserted = insert_new::<feature_set::Entity>(&txn, &[&content]).await?;
    if inserted.contains(&content.feature_set_id) {
        commit(txn).await?;
        return Ok(content);
    }
    let stored = locked_row::<feature_set::Entity>(
        &txn,
        feature_set::Column::FeatureSetId,
        content.feature_set_id.as_str(),
    )
    .await?
    .ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "feature set was neither inserted nor found"
        ))
    })?;
    // A default computedAt is "now", which never equals the stored one.
    let defaulted: &[&str] = if input.computed_at.is_none() {
        &["computedAt"]
    } else {
        &[]
    };
    let differs = !feature_set::Entity::fingerprint(&content)
        .without(defaulted)
        .differences(&feature_set::Entity::fingerprint(&stored))
        .is_empty();
    if !differs {
        return Ok(stored);
    }
    let next = feature_set::Model {
        id: stored.id,
        feature_version: Some(stored.feature_version.unwrap_or(1) + 1),
        ..content
    };
    let row = save_changes::<feature_set::Entity>(&txn, stored, next).await?;
    commit(txn).await?;
    Ok(row)
}
