//! `ml_feedback`: the human feedback loop.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ml_feedback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub feedback_id: String,
    pub prediction_id: String,
    pub tenant_id: String,
    pub feedback_type: String,
    pub correct_label: Option<bool>,
    #[sea_orm(column_type = "Decimal(Some((3, 2)))")]
    pub accuracy_rating: Option<Decimal>,
    pub comments: Option<String>,
    pub user_id: String,
    pub user_role: Option<String>,
    pub processed: Option<bool>,
    pub impact_on_model: Option<String>,
    pub created_at: Option<DateTimeUtc>,
    pub processed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::prediction::Entity",
        from = "(Column::TenantId, Column::PredictionId)",
        to = "(super::prediction::Column::TenantId, super::prediction::Column::PredictionId)"
    )]
    Prediction,
}

impl Related<super::prediction::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Prediction.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
