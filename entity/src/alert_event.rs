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
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
