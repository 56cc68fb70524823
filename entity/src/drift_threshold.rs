//! `mlgate_drift_thresholds`: a tenant's drift alert thresholds.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "mlgate_drift_thresholds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub psi_warning: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub psi_critical: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub ks_warning: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub ks_critical: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub wasserstein_warning: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub wasserstein_critical: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub jensen_shannon_warning: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub jensen_shannon_critical: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub hellinger_warning: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub hellinger_critical: Decimal,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
