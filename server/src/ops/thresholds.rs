//! `mlgate drift-thresholds`: a tenant's drift alert thresholds.

use crate::db::Database;
use crate::store::thresholds::{for_tenant, DriftThresholds};
use crate::write::thresholds::store;

/// Sets `tenant`'s thresholds when `wanted` is given; returns them as stored.
pub async fn set_or_show(
    db: &Database,
    tenant: &str,
    wanted: Option<DriftThresholds>,
) -> anyhow::Result<DriftThresholds> {
    let txn = db.begin_as_operator(tenant).await?;
    if let Some(wanted) = wanted {
        store(&txn, wanted).await?;
    }
    let current = for_tenant(&txn).await?;
    txn.commit().await?;
    Ok(current)
}
