//! Whole-tenant operations.

use sea_orm::{ColumnTrait, QueryFilter};

use crate::store::TenantOwned;

use crate::db::ScopedTxn;

/// Rows deleted per table, in deletion order.
pub type DeletedCounts = Vec<(&'static str, u64)>;

/// Deletes every row the transaction's tenant owns, children before parents.
pub async fn delete_all(txn: &ScopedTxn) -> Result<DeletedCounts, sea_orm::DbErr> {
    use entity::*;
    Ok(vec![
        delete::<feedback::Entity>(txn).await?,
        delete::<alert_event::Entity>(txn).await?,
        delete::<alert_sequence::Entity>(txn).await?,
        delete::<drift_metric::Entity>(txn).await?,
        delete::<prediction::Entity>(txn).await?,
        delete::<model::Entity>(txn).await?,
        delete::<training_job::Entity>(txn).await?,
        delete::<feature_set::Entity>(txn).await?,
        delete::<configuration::Entity>(txn).await?,
        delete::<drift_threshold::Entity>(txn).await?,
        delete::<api_key::Entity>(txn).await?,
    ])
}

async fn delete<E: TenantOwned>(txn: &ScopedTxn) -> Result<(&'static str, u64), sea_orm::DbErr> {
    let result = E::delete_many()
        .filter(E::tenant_column().eq(txn.tenant()))
        .exec(txn.conn())
        .await?;
    Ok((E::default().table_name(), result.rows_affected))
}
