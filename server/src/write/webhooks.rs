//! A tenant's webhook (admin): where monitor notifications are delivered
//! and the secret their bodies are signed with; and the delivery log.

use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, QueryOrder, QuerySelect, Set};

use super::{commit, Writer};
use crate::error::{ApiError, ApiResult};
use crate::identity::can;
use crate::store::filter::invalid;
use crate::store::{now, tenant_rows};

/// The longest webhook URL.
pub const MAX_URL_BYTES: usize = 2048;
/// The most deliveries one `webhookDeliveries` lists.
pub const MAX_LISTED: u64 = 200;

/// A webhook as shown: never its secret.
pub struct WebhookInfo {
    pub url: String,
    pub updated_at: DateTime<Utc>,
}

/// Sets the tenant's webhook. The URL is `http` or `https` with a host;
/// the secret 16 to 256 bytes.
pub async fn set(
    writer: &Writer<can::ManageMonitors>,
    url: &str,
    secret: &str,
) -> ApiResult<WebhookInfo> {
    if url.len() > MAX_URL_BYTES {
        return Err(invalid("url", format!("at most {MAX_URL_BYTES} bytes")));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid("url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid("url", "an http or https URL with a host".into()));
    }
    if !(16..=256).contains(&secret.len()) {
        return Err(invalid("secret", "the secret is 16 to 256 bytes".into()));
    }
    let txn = writer.begin().await?;
    let updated_at = now();
    let row = webhook::ActiveModel {
        tenant_id: Set(txn.tenant().to_owned()),
        url: Set(url.to_owned()),
        secret: Set(secret.to_owned()),
        updated_at: Set(updated_at),
    };
    webhook::Entity::insert(row)
        .on_conflict(
            OnConflict::column(webhook::Column::TenantId)
                .update_columns([
                    webhook::Column::Url,
                    webhook::Column::Secret,
                    webhook::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(txn.conn())
        .await
        .map_err(ApiError::from_write)?;
    commit(txn).await?;
    Ok(WebhookInfo {
        url: url.to_owned(),
        updated_at,
    })
}

/// The tenant's webhook, if set.
pub async fn get(writer: &Writer<can::ManageMonitors>) -> ApiResult<Option<WebhookInfo>> {
    let txn = writer.scoped().begin().await?;
    let row = tenant_rows::<webhook::Entity>(&txn).one(txn.conn()).await?;
    txn.commit().await?;
    Ok(row.map(|w| WebhookInfo {
        url: w.url,
        updated_at: w.updated_at,
    }))
}

/// Removes the tenant's webhook; pending deliveries then fail.
pub async fn delete(writer: &Writer<can::ManageMonitors>) -> ApiResult<bool> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let txn = writer.begin().await?;
    let deleted = webhook::Entity::delete_many()
        .filter(webhook::Column::TenantId.eq(txn.tenant()))
        .exec(txn.conn())
        .await?;
    commit(txn).await?;
    Ok(deleted.rows_affected > 0)
}

/// The tenant's latest deliveries, newest first.
pub async fn deliveries(
    writer: &Writer<can::ManageMonitors>,
    first: u64,
) -> ApiResult<Vec<webhook_delivery::Model>> {
    let txn = writer.scoped().begin().await?;
    let rows = tenant_rows::<webhook_delivery::Entity>(&txn)
        .order_by_desc(webhook_delivery::Column::CreatedAt)
        .order_by_desc(webhook_delivery::Column::DeliveryId)
        .limit(first.min(MAX_LISTED))
        .all(txn.conn())
        .await?;
    txn.commit().await?;
    Ok(rows)
}
