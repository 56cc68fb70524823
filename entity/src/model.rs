//! `ml_models`: the model registry.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ml_models")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub model_id: String,
    pub tenant_id: String,
    pub model_name: String,
    pub model_type: String,
    pub version: String,
    pub parameters: Json,
    pub metrics: Json,
    pub model_path: Option<String>,
    /// Write-only model blob: never mapped to an API type.
    pub encrypted_model: Option<Vec<u8>>,
    pub encryption_key_id: Option<String>,
    pub status: Option<String>,
    pub training_job_id: Option<Uuid>,
    pub created_at: Option<DateTimeUtc>,
    pub updated_at: Option<DateTimeUtc>,
    pub deployed_at: Option<DateTimeUtc>,
    pub retired_at: Option<DateTimeUtc>,
}

// Relations are declared on both key columns: the database's foreign keys
// carry the tenant, and so must every join.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::training_job::Entity",
        from = "(Column::TenantId, Column::TrainingJobId)",
        to = "(super::training_job::Column::TenantId, super::training_job::Column::Id)"
    )]
    TrainingJob,
    #[sea_orm(has_many = "super::prediction::Entity")]
    Predictions,
    #[sea_orm(has_many = "super::drift_metric::Entity")]
    DriftMetrics,
}

impl Related<super::training_job::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TrainingJob.def()
    }
}

impl Related<super::prediction::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Predictions.def()
    }
}

impl Related<super::drift_metric::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DriftMetrics.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
