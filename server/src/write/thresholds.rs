//! A tenant's drift alert thresholds, set by its admins.

use entity::drift_threshold::{self, Entity};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use super::{commit, Writer};
use crate::db::ScopedTxn;
use crate::domain::drift::Method;
use crate::error::ApiResult;
use crate::identity::can;
use crate::store::now;
use crate::store::thresholds::{self, decimal, Band, DriftThresholds};

/// Changes the tenant's thresholds: each band given replaces the current
/// one (the defaults, if the tenant never set any); the rest stay. Checked:
/// 0 ≤ warning ≤ critical. Metrics recorded from now on derive their alert
/// level from them; stored metrics keep theirs.
pub async fn set(
    writer: &Writer<can::ManageThresholds>,
    changes: &[(Method, Band)],
) -> ApiResult<DriftThresholds> {
    let txn = writer.begin().await?;
    let new = changed(thresholds::for_tenant(&txn).await?, changes)?;
    store(&txn, new).await?;
    let stored = thresholds::for_tenant(&txn).await?;
    commit(txn).await?;
    Ok(stored)
}

/// `current` with each band of `changes` replaced, checked.
pub fn changed(current: DriftThresholds, changes: &[(Method, Band)]) -> ApiResult<DriftThresholds> {
    changes
        .iter()
        .try_fold(current, |thresholds, &(method, band)| {
            thresholds.with(method, band)
        })
}

/// Sets the transaction's tenant's thresholds.
pub async fn store(txn: &ScopedTxn, thresholds: DriftThresholds) -> ApiResult<()> {
    use drift_threshold::Column;
    let row = drift_threshold::ActiveModel {
        tenant_id: Set(txn.tenant().to_owned()),
        psi_warning: Set(decimal(thresholds.psi.warning)),
        psi_critical: Set(decimal(thresholds.psi.critical)),
        ks_warning: Set(decimal(thresholds.ks.warning)),
        ks_critical: Set(decimal(thresholds.ks.critical)),
        wasserstein_warning: Set(decimal(thresholds.wasserstein.warning)),
        wasserstein_critical: Set(decimal(thresholds.wasserstein.critical)),
        jensen_shannon_warning: Set(decimal(thresholds.jensen_shannon.warning)),
        jensen_shannon_critical: Set(decimal(thresholds.jensen_shannon.critical)),
        hellinger_warning: Set(decimal(thresholds.hellinger.warning)),
        hellinger_critical: Set(decimal(thresholds.hellinger.critical)),
        updated_at: Set(now()),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::TenantId)
                .update_columns([
                    Column::PsiWarning,
                    Column::PsiCritical,
                    Column::KsWarning,
                    Column::KsCritical,
                    Column::WassersteinWarning,
                    Column::WassersteinCritical,
                    Column::JensenShannonWarning,
                    Column::JensenShannonCritical,
                    Column::HellingerWarning,
                    Column::HellingerCritical,
                    Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(txn.conn())
        .await?;
    Ok(())
}
