//! `ml_predictions`: every prediction with its explanation.

use sea_orm::entity::prelude::*;

use crate::StringList;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ml_predictions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub prediction_id: String,
    pub resource_id: String,
    pub tenant_id: String,
    pub model_id: String,
    #[sea_orm(column_type = "Decimal(Some((5, 4)))")]
    pub violation_probability: Decimal,
    #[sea_orm(column_type = "Decimal(Some((10, 2)))")]
    pub time_to_violation_hours: Option<Decimal>,
    #[sea_orm(column_type = "Decimal(Some((5, 4)))")]
    pub confidence_score: Decimal,
    #[sea_orm(column_type = "Decimal(Some((5, 4)))")]
    pub confidence_interval_lower: Option<Decimal>,
    #[sea_orm(column_type = "Decimal(Some((5, 4)))")]
    pub confidence_interval_upper: Option<Decimal>,
    pub risk_level: String,
    #[sea_orm(column_type = "Decimal(Some((5, 4)))")]
    pub risk_score: Option<Decimal>,
    pub impact_factors: Option<Json>,
    pub uncertainty_sources: Option<Json>,
    pub recommendations: Option<StringList>,
    pub features_used: Option<Json>,
    pub shap_values: Option<Json>,
    pub attention_weights: Option<Json>,
    #[sea_orm(column_type = "Decimal(Some((10, 2)))")]
    pub inference_time_ms: Decimal,
    pub model_version: String,
    pub prediction_timestamp: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub remediation_status: Option<String>,
    pub remediation_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::model::Entity",
        from = "(Column::TenantId, Column::ModelId)",
        to = "(super::model::Column::TenantId, super::model::Column::ModelId)"
    )]
    Model,
    #[sea_orm(has_many = "super::feedback::Entity")]
    Feedback,
}

impl Related<super::model::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Model.def()
    }
}

impl Related<super::feedback::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Feedback.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
