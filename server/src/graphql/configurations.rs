//! Configuration snapshots of resources.

use async_graphql::{Context, Enum, InputObject, Json, Object, ID};
use chrono::{DateTime, Utc};
use entity::configuration;

use super::common::order_input;
use super::common::page;
use super::common::{list_query, node, page_complexity, time_range, OrderDirection, TimeRange};
use super::request_context;
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::configurations::{self as store, ConfigurationOrderField as DataOrderField};
use crate::write::configurations as write;

/// Which snapshots a list holds. All conditions must hold.
#[derive(InputObject, Default, Debug)]
pub struct ConfigurationFilter {
    pub ids: Option<Vec<ID>>,
    pub resource_ids: Option<Vec<String>>,
    /// Resource ids starting with this (case-sensitive).
    pub resource_id_prefix: Option<String>,
    /// Created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Created before this time.
    pub to: Option<DateTime<Utc>>,
    pub updated_at: Option<TimeRange>,
}

impl TryFrom<ConfigurationFilter> for store::ConfigurationFilter {
    type Error = ApiError;

    fn try_from(filter: ConfigurationFilter) -> ApiResult<Self> {
        filter.into_data()
    }
}

impl ConfigurationFilter {
    fn into_data(self) -> ApiResult<store::ConfigurationFilter> {
        let max = crate::store::filter::MAX_LIST_LENGTH;
        if self.ids.as_ref().is_some_and(|ids| ids.len() > max) {
            return Err(ApiError::BadUserInput {
                message: format!("`ids` lists too many values; at most {max} are accepted"),
                field: Some("ids".into()),
            });
        }
        // An id that is not a UUID cannot exist: it matches nothing, like an unknown one.
        let ids = self.ids.map(|ids| {
            ids.iter()
                .filter_map(|id| uuid::Uuid::parse_str(id).ok())
                .collect()
        });
        Ok(store::ConfigurationFilter {
            ids,
            resource_ids: self.resource_ids,
            resource_id_prefix: self.resource_id_prefix,
            created_at: time_range(self.from, self.to),
            updated_at: self.updated_at.map(Into::into),
        })
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(remote = "crate::store::configurations::ConfigurationOrderField")]
pub enum ConfigurationOrderField {
    #[default]
    CreatedAt,
    UpdatedAt,
    ResourceId,
}

/// How a snapshot list is ordered; ties are broken by `id`.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct ConfigurationOrder {
    #[graphql(default)]
    pub field: ConfigurationOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

order_input!(ConfigurationOrder => DataOrderField);

node!(
    /// A snapshot of a resource's configuration.
    Configuration(configuration::Model),
    ConfigurationConnection,
    ConfigurationEdge
);

/// A snapshot of a resource's configuration.
#[Object]
impl Configuration {
    /// The snapshot's identity (snapshots have no other).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn resource_id(&self) -> &str {
        &self.0.resource_id
    }

    async fn configuration(&self) -> Json<&serde_json::Value> {
        Json(&self.0.configuration)
    }

    async fn features(&self) -> Option<Json<&serde_json::Value>> {
        self.0.features.as_ref().map(Json)
    }

    async fn policy_context(&self) -> Option<Json<&serde_json::Value>> {
        self.0.policy_context.as_ref().map(Json)
    }

    async fn baseline_config(&self) -> Option<Json<&serde_json::Value>> {
        self.0.baseline_config.as_ref().map(Json)
    }

    async fn created_at(&self) -> Option<DateTime<Utc>> {
        self.0.created_at
    }

    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.updated_at
    }
}

#[derive(Default)]
pub struct ConfigurationsQuery;

#[Object]
impl ConfigurationsQuery {
    /// Configuration snapshots, newest first unless ordered otherwise.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn configurations(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConfigurationFilter>,
        order_by: Option<ConfigurationOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<ConfigurationConnection> {
        let rc = request_context(ctx)?;
        let query = list_query(ctx, filter, order_by, page(first, after, last, before))?;
        Ok(store::list(rc.scoped(), &query).await?.into())
    }
}

/// A resource's configuration as observed. The tenant comes from the credentials.
#[derive(InputObject, Debug)]
pub struct ConfigurationInput {
    pub resource_id: String,
    /// An object.
    pub configuration: Json<serde_json::Value>,
    pub features: Option<Json<serde_json::Value>>,
    pub policy_context: Option<Json<serde_json::Value>>,
    pub baseline_config: Option<Json<serde_json::Value>>,
}

#[derive(Default)]
pub struct ConfigurationsMutation;

#[Object]
impl ConfigurationsMutation {
    /// Stores a resource's current configuration (`service`, `admin`): its
    /// latest snapshot is updated (`updatedAt` moves on), or its first one
    /// created. Content equal to the stored one changes nothing.
    async fn upsert_configuration(
        &self,
        ctx: &Context<'_>,
        input: ConfigurationInput,
    ) -> async_graphql::Result<Configuration> {
        let rc = request_context(ctx)?;
        let writer = rc.writer::<can::Ingest>()?;
        let input = write::ConfigurationInput {
            resource_id: input.resource_id,
            configuration: input.configuration.0,
            features: input.features.map(|j| j.0),
            policy_context: input.policy_context.map(|j| j.0),
            baseline_config: input.baseline_config.map(|j| j.0),
        };
        Ok(Configuration::from(write::upsert(&writer, input).await?))
    }
}
