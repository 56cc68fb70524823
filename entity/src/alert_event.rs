//! `mlgate_alert_events`: one row per stored drift metric whose alert
//! triggered, numbered per tenant in commit order (the drift-alert outbox).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "mlgate_alert_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    /// The event's number within its tenant: 1, 2, 3, … in commit order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub metric_id: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::drift_metric::Entity",
        from = "(Column::TenantId, Column::MetricId)",
        to = "(super::drift_metric::Column::TenantId, super::drift_metric::Column::MetricId)"
    )]
    DriftMetric,
}

impl Related<super::drift_metric::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DriftMetric.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
