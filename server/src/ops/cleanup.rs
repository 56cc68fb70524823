//! `mlgate cleanup`: deletes a tenant.

use crate::db::Database;
use crate::write::tenant::{delete_all, DeletedCounts};

/// The operator's path (`mlgate cleanup`): deletes every row of `tenant`.
pub async fn cleanup(db: &Database, tenant: &str) -> anyhow::Result<DeletedCounts> {
    let txn = db.begin_as_operator(tenant).await?;
    let counts = delete_all(&txn).await?;
    txn.commit().await?;
    Ok(counts)
}
