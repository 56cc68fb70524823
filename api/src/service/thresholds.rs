//! A tenant's drift alert thresholds, set by its admins.

use super::{commit, Writer};
use crate::data::thresholds::{self, Band, DriftThresholds};
use crate::error::ApiResult;

/// Changes the tenant's thresholds: each band given replaces the current
/// one (the defaults, if the tenant never set any); the rest stay. Checked:
/// 0 ≤ warning ≤ critical. Metrics recorded from now on derive their alert
/// level from them; stored metrics keep theirs.
pub async fn set(
    writer: &Writer,
    psi: Option<Band>,
    ks: Option<Band>,
    wasserstein: Option<Band>,
) -> ApiResult<DriftThresholds> {
    let txn = writer.begin().await?;
    let current = thresholds::for_tenant(&txn).await?;
    let new = DriftThresholds::new(
        psi.unwrap_or(current.psi),
        ks.unwrap_or(current.ks),
        wasserstein.unwrap_or(current.wasserstein),
    )?;
    thresholds::set(&txn, new).await?;
    let stored = thresholds::for_tenant(&txn).await?;
    commit(txn).await?;
    Ok(stored)
}
