//! `ml_feature_store`: computed feature sets.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ml_feature_store")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub feature_set_id: String,
    pub resource_id: String,
    pub tenant_id: String,
    pub feature_type: String,
    pub features: Json,
    pub feature_version: Option<i32>,
    pub computed_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Decimal(Some((3, 2)))")]
    pub quality_score: Option<Decimal>,
    #[sea_orm(column_type = "Decimal(Some((3, 2)))")]
    pub completeness: Option<Decimal>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
