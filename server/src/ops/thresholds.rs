//! `mlgate drift-thresholds`: a tenant's drift alert thresholds.

use crate::db::Database;
use crate::domain::drift::Method;
use crate::store::thresholds::{for_tenant, Band, DriftThresholds};
use crate::write::thresholds::{changed, store};

/// Replaces the bands of `changes` in `tenant`'s thresholds (none: only
/// shows them); returns them as stored.
pub async fn set_or_show(
    db: &Database,
    tenant: &str,
    changes: &[(Method, Band)],
) -> anyhow::Result<DriftThresholds> {
    let txn = db.begin_as_operator(tenant).await?;
    if !changes.is_empty() {
        let wanted = changed(for_tenant(&txn).await?, changes)?;
        store(&txn, wanted).await?;
    }
    let current = for_tenant(&txn).await?;
    txn.commit().await?;
    Ok(current)
}
