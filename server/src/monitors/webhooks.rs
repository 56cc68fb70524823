//! Webhook delivery from the outbox (`mlgate_webhook_deliveries`): a
//! notification is queued in the transaction that writes its drift metric,
//! then every gateway delivers due ones. An attempt is claimed first (on
//! PostgreSQL `FOR UPDATE SKIP LOCKED`) by moving its next attempt a lease
//! ahead, so only one gateway sends it; a gateway that dies mid-attempt
//! leaves it to be sent again after the lease, with the same idempotency
//! key: delivery is at least once. Bodies are signed with the tenant's
//! secret (HMAC-SHA256). Targets are refused on private, loopback and
//! link-local addresses unless allowed (`--webhook-private-addresses`), and
//! redirects are not followed.

use std::net::IpAddr;
use std::time::Duration;

use chrono::TimeDelta;
use entity::{webhook, webhook_delivery as delivery};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbBackend, QueryFilter, QuerySelect, Set};
use sha2::Sha256;

use crate::db::{Database, Scoped, ScopedTxn};
use crate::error::{ApiError, ApiResult};
use crate::identity::Principal;
use crate::store::{now, tenant_rows};

/// How long a claimed attempt is left alone before another gateway may
/// send it again (past the request timeout).
const LEASE: TimeDelta = TimeDelta::seconds(30);
/// Attempts before a delivery fails for good.
pub const MAX_ATTEMPTS: i32 = 8;
/// The longest wait between attempts.
const MAX_BACKOFF: TimeDelta = TimeDelta::minutes(10);
/// The longest error kept in the log.
const MAX_ERROR: usize = 300;

/// How the gateway delivers webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Deliver to private, loopback and link-local addresses (tests, an
    /// internal receiver).
    pub private_addresses: bool,
    /// The whole request's time limit.
    pub timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            private_addresses: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Queues a delivery of `body` to the tenant's webhook in the caller's
/// transaction; false when the tenant has none.
pub(super) async fn enqueue(
    txn: &ScopedTxn,
    delivery_id: &str,
    monitor_id: &str,
    body: &serde_json::Value,
) -> ApiResult<bool> {
    let Some(hook) = tenant_rows::<webhook::Entity>(txn).one(txn.conn()).await? else {
        return Ok(false);
    };
    let created = now();
    delivery::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        tenant_id: Set(txn.tenant().to_owned()),
        delivery_id: Set(delivery_id.to_owned()),
        monitor_id: Set(monitor_id.to_owned()),
        url: Set(hook.url),
        body: Set(body.to_string()),
        status: Set("pending".into()),
        attempts: Set(0),
        next_attempt_at: Set(created),
        last_status: Set(None),
        last_error: Set(None),
        created_at: Set(created),
        delivered_at: Set(None),
    }
    .insert(txn.conn())
    .await
    .map_err(ApiError::from_write)?;
    Ok(true)
}

/// The HTTP client deliveries use: no redirects, bounded time, and unless
/// private addresses are allowed, a resolver that drops them, so the
/// addresses checked are the addresses connected to (a host that resolves
/// to a public address for a check and a private one for the request, DNS
/// rebinding, gets no private address either time).
pub fn client(settings: DeliverySettings) -> reqwest::Client {
    // Directly, never through an HTTP(S)_PROXY from the environment: a
    // proxy would resolve and connect to the target itself, past the check.
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)));
    if !settings.private_addresses {
        builder = builder.dns_resolver(std::sync::Arc::new(PublicAddresses {
            timeout: settings.timeout,
        }));
    }
    builder
        .build()
        .expect("a client with static settings builds")
}

/// Resolves a webhook's host to its public addresses only (an error when it
/// has none). Written here because reqwest's resolvers filter nothing.
struct PublicAddresses {
    timeout: Duration,
}

impl reqwest::dns::Resolve for PublicAddresses {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let timeout = self.timeout;
        Box::pin(async move {
            let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), 0)))
                .await
                .map_err(|_| "resolving the host timed out")??;
            let public: Vec<std::net::SocketAddr> = found.filter(|a| !is_private(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Not a public unicast address: private, shared (CGNAT), loopback,
/// link-local, unique-local, unspecified, "this network", broadcast or
/// multicast, and IPv6 forms that carry such an IPv4 address (mapped,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                is_private(IpAddr::V4(std::net::Ipv4Addr::new(
                    (hi >> 8) as u8,
                    hi as u8,
                    (lo >> 8) as u8,
                    lo as u8,
                )))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return embedded(s[6], s[7]);
            }
            if s[0] == 0x2002 {
                return embedded(s[1], s[2]);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// An error with its causes (reqwest's own text leaves out the resolver's
/// reason).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The signature header's value for `body` under `secret`.
pub fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One look: every due delivery found, attempted.
pub async fn deliver_due(
    db: &Database,
    client: &reqwest::Client,
    settings: DeliverySettings,
    batch: u64,
) -> usize {
    let due = match db.due_deliveries(now(), batch).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "looking for due webhook deliveries failed");
            return 0;
        }
    };
    let mut attempted = 0;
    for (tenant, delivery_id) in due {
        let Ok(principal) = Principal::monitor(&tenant) else {
            continue;
        };
        let scoped = db.scoped(&principal);
        match attempt(&scoped, client, settings, &delivery_id).await {
            Ok(true) => attempted += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(
                    tenant,
                    delivery = delivery_id,
                    ?error,
                    "webhook delivery failed"
                )
            }
        }
    }
    attempted
}

/// What the claim gives the sender.
struct Claimed {
    row: delivery::Model,
    secret: Option<String>,
}

async fn claim(scoped: &Scoped, delivery_id: &str) -> ApiResult<Option<Claimed>> {
    let txn = scoped.begin_write().await?;
    let at = now();
    let mut query = tenant_rows::<delivery::Entity>(&txn)
        .filter(delivery::Column::DeliveryId.eq(delivery_id))
        .filter(delivery::Column::Status.eq("pending"))
        .filter(delivery::Column::NextAttemptAt.lte(at));
    if txn.backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let Some(row) = query.one(txn.conn()).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    let secret = tenant_rows::<webhook::Entity>(&txn)
        .one(txn.conn())
        .await?
        .map(|w| w.secret);
    let attempts = row.attempts + 1;
    let mut active: delivery::ActiveModel = row.into();
    active.attempts = Set(attempts);
    active.next_attempt_at = Set(at + LEASE);
    let row = active
        .update(txn.conn())
        .await
        .map_err(ApiError::from_write)?;
    crate::write::commit(txn).await?;
    Ok(Some(Claimed { row, secret }))
}

/// Whether `url`'s host may be called: not a private, loopback, link-local
/// or unspecified address unless allowed (each address it resolves to). An
/// early, readable refusal; the client's resolver enforces it at connect.
async fn allowed(url: &reqwest::Url, settings: DeliverySettings) -> Result<(), String> {
    if settings.private_addresses {
        return Ok(());
    }
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = tokio::time::timeout(
        settings.timeout,
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
    )
    .await
    .map_err(|_| "resolving the host timed out".to_owned())?
    .map_err(|e| format!("resolving the host failed: {e}"))?;
    for address in addresses {
        let ip = address.ip();
        if is_private(ip) {
            return Err(format!("{ip} is a private address"));
        }
    }
    Ok(())
}

/// Sends one claimed attempt and records its outcome; false when there was
/// nothing to send (not due, or another gateway has it).
async fn attempt(
    scoped: &Scoped,
    client: &reqwest::Client,
    settings: DeliverySettings,
    delivery_id: &str,
) -> ApiResult<bool> {
    let Some(Claimed { row, secret }) = claim(scoped, delivery_id).await? else {
        return Ok(false);
    };
    let result: Result<u16, String> = async {
        let secret = secret.ok_or("the tenant has no webhook any more")?;
        let url = reqwest::Url::parse(&row.url).map_err(|e| e.to_string())?;
        allowed(&url, settings).await?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-mlgate-signature", signature(&secret, &row.body))
            .header("idempotency-key", &row.delivery_id)
            .header("x-mlgate-attempt", row.attempts.to_string())
            .body(row.body.clone())
            .send()
            .await
            .map_err(|e| format!("request failed: {}", with_causes(&e)))?;
        Ok(response.status().as_u16())
    }
    .await;
    let txn = scoped.begin_write().await?;
    let current = tenant_rows::<delivery::Entity>(&txn)
        .filter(delivery::Column::DeliveryId.eq(delivery_id))
        .one(txn.conn())
        .await?;
    let Some(current) = current else {
        txn.commit().await?;
        return Ok(true);
    };
    let attempts = current.attempts;
    let mut active: delivery::ActiveModel = current.into();
    let at = now();
    match result {
        Ok(status) if (200..300).contains(&status) => {
            active.status = Set("delivered".into());
            active.delivered_at = Set(Some(at));
            active.last_status = Set(Some(i32::from(status)));
            active.last_error = Set(None);
        }
        failure => {
            let (status, error) = match failure {
                Ok(status) => (Some(i32::from(status)), format!("answered {status}")),
                Err(error) => (None, error),
            };
            active.last_status = Set(status);
            active.last_error = Set(Some(error.chars().take(MAX_ERROR).collect()));
            if attempts >= MAX_ATTEMPTS {
                active.status = Set("failed".into());
            } else {
                let backoff = TimeDelta::seconds(1 << (attempts - 1).clamp(0, 20)).min(MAX_BACKOFF);
                active.next_attempt_at = Set(at + backoff);
            }
        }
    }
    active
        .update(txn.conn())
        .await
        .map_err(ApiError::from_write)?;
    crate::write::commit(txn).await?;
    tracing::info!(
        delivery = delivery_id,
        attempt = attempts,
        "webhook attempt recorded"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        let closed = DeliverySettings::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://localhost/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(allowed(&url, closed).await.is_err(), "{url}");
            let open = DeliverySettings {
                private_addresses: true,
                ..closed
            };
            assert!(allowed(&url, open).await.is_ok(), "{url}");
        }
        let public = reqwest::Url::parse("http://93.184.215.14/").unwrap();
        assert!(allowed(&public, closed).await.is_ok());
        for private in [
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "100.64.0.1",
            "0.1.2.3",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.215.14",
            "2606:4700::1111",
            "100.128.0.1",
            "64:ff9b::5db8:d70e",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    /// The client itself never connects to a private address of a name,
    /// whatever a check before said: a receiver listening on 127.0.0.1,
    /// reached as `localhost`, is refused at connect unless allowed.
    #[tokio::test]
    async fn the_client_resolves_names_to_public_addresses_only() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/", axum::routing::post(|| async { "ok" }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let url = format!("http://localhost:{port}/");
        let closed = DeliverySettings::default();
        let refused = client(closed).post(&url).send().await;
        let error = format!(
            "{:?}",
            refused.expect_err("no public address for localhost")
        );
        assert!(error.contains("no public address"), "{error}");
        let open = DeliverySettings {
            private_addresses: true,
            ..closed
        };
        let answer = client(open).post(&url).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        server.abort();
    }
}
