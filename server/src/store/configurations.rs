//! Configuration snapshots of resources.

use entity::configuration::{self, Column, Entity};
use sea_orm::{QueryFilter, Select};

use super::filter::{Filters, OrderBy, TimeRange};
use super::page::{Page, Sort};
use super::{list_page, tenant_rows, ListQuery};
use crate::db::{Scoped, ScopedTxn};
use crate::error::ApiResult;

#[derive(Clone, Debug, Default)]
pub struct ConfigurationFilter {
    pub ids: Option<Vec<uuid::Uuid>>,
    pub resource_ids: Option<Vec<String>>,
    pub resource_id_prefix: Option<String>,
    pub created_at: Option<TimeRange>,
    pub updated_at: Option<TimeRange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigurationOrderField {
    CreatedAt,
    UpdatedAt,
    ResourceId,
}

pub type ConfigurationQuery = ListQuery<ConfigurationFilter, ConfigurationOrderField>;

fn sort(order: OrderBy<ConfigurationOrderField>) -> Sort<Entity> {
    let column = match order.field {
        ConfigurationOrderField::CreatedAt => Column::CreatedAt,
        ConfigurationOrderField::UpdatedAt => Column::UpdatedAt,
        ConfigurationOrderField::ResourceId => Column::ResourceId,
    };
    // Snapshots have no business id: the row key is their identity.
    Sort::by(column, order.direction.order(), Column::Id)
}

fn base(txn: &ScopedTxn, filter: &ConfigurationFilter) -> ApiResult<Select<Entity>> {
    let filters = Filters::new(txn.backend())
        .one_of(Column::Id, "ids", filter.ids.clone())?
        .one_of(
            Column::ResourceId,
            "resourceIds",
            filter.resource_ids.clone(),
        )?
        .prefix(
            Column::ResourceId,
            "resourceIdPrefix",
            filter.resource_id_prefix.clone(),
        )?
        .time_range(Column::CreatedAt, "from", filter.created_at)?
        .time_range(Column::UpdatedAt, "updatedAt", filter.updated_at)?;
    Ok(tenant_rows::<Entity>(txn).filter(filters.build()))
}

pub async fn list(
    scoped: &Scoped,
    query: &ConfigurationQuery,
) -> ApiResult<Page<configuration::Model>> {
    list_page(scoped, query, base, sort).await
}
