//! Whole-tenant operations.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::ScopedTxn;

/// Rows deleted per table, in deletion order.
pub type DeletedCounts = Vec<(&'static str, u64)>;

/// Deletes every row the transaction's tenant owns, children before parents.
pub async fn delete_all(txn: &ScopedTxn) -> Result<DeletedCounts, sea_orm::DbErr> {
    use entity::*;
    let tenant = txn.tenant();
    let conn = txn.conn();
    let mut counts = Vec::new();
    macro_rules! delete {
        ($module:ident, $table:literal) => {
            let result = $module::Entity::delete_many()
                .filter($module::Column::TenantId.eq(tenant))
                .exec(conn)
                .await?;
            counts.push(($table, result.rows_affected));
        };
    }
    delete!(feedback, "ml_feedback");
    delete!(drift_metric, "ml_drift_metrics");
    delete!(prediction, "ml_predictions");
    delete!(model, "ml_models");
    delete!(training_job, "ml_training_jobs");
    delete!(feature_set, "ml_feature_store");
    delete!(configuration, "ml_configurations");
    delete!(api_key, "mlgate_api_keys");
    Ok(counts)
}

/// The operator's path (`mlgate cleanup`): deletes every row of `tenant`.
pub async fn cleanup(db: &crate::db::Database, tenant: &str) -> anyhow::Result<DeletedCounts> {
    let txn = db.begin_as_operator(tenant).await?;
    let counts = delete_all(&txn).await?;
    txn.commit().await?;
    Ok(counts)
}
