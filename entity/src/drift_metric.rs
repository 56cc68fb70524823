//! `ml_drift_metrics`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ml_drift_metrics")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub metric_id: String,
    pub resource_id: Option<String>,
    pub tenant_id: String,
    pub model_id: Option<String>,
    pub drift_type: String,
    #[sea_orm(column_type = "Decimal(Some((10, 4)))")]
    pub drift_score: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub drift_velocity: Option<Decimal>,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub reconstruction_error: Option<Decimal>,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub psi_score: Option<Decimal>,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub ks_statistic: Option<Decimal>,
    #[sea_orm(column_type = "Decimal(Some((10, 6)))")]
    pub wasserstein_distance: Option<Decimal>,
    pub alert_triggered: Option<bool>,
    pub alert_level: Option<String>,
    #[sea_orm(column_type = "Decimal(Some((10, 2)))")]
    pub time_to_violation_hours: Option<Decimal>,
    pub measured_at: Option<DateTimeUtc>,
    pub baseline_comparison: Option<Json>,
    pub feature_contributions: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::model::Entity",
        from = "(Column::TenantId, Column::ModelId)",
        to = "(super::model::Column::TenantId, super::model::Column::ModelId)"
    )]
    Model,
}

impl Related<super::model::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Model.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
