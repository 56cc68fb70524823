//! `ml_training_jobs`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ml_training_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub job_id: String,
    pub tenant_id: String,
    pub model_type: String,
    pub trigger_reason: String,
    pub status: String,
    pub training_config: Json,
    pub hyperparameters: Option<Json>,
    pub dataset_info: Option<Json>,
    pub metrics: Option<Json>,
    pub error_message: Option<String>,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub estimated_completion: Option<DateTimeUtc>,
    pub created_at: Option<DateTimeUtc>,
    pub created_by: Option<String>,
    pub resource_usage: Option<Json>,
    #[sea_orm(column_type = "Decimal(Some((10, 2)))")]
    pub cost_estimate: Option<Decimal>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::model::Entity")]
    Models,
}

impl Related<super::model::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Models.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
