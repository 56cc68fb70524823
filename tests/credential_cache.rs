//! The verified-credential cache (on by default, PostgreSQL only): a key it
//! remembers stops working as soon as its revocation is notified, and
//! nothing is served from it while the notification listener cannot vouch
//! that revocations arrive.

mod common;

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use server::auth::Role;

use common::{TestDb, TestServer};

const ALPHA: &str = "alpha";
const ME: &str = "{ me { tenant } }";

/// The bound `--auth-cache-secs` documents: nothing is served from the cache
/// while the listener has not heard its heartbeat for this long.
const REVOCATIONS_CURRENT_WITHIN: Duration = Duration::from_secs(3);

/// The test configuration with the cache at its default.
fn cached(test_db: &TestDb) -> server::Config {
    let mut config = test_db.config();
    config.serve.auth.auth_cache_secs = server::Config::for_database("").serve.auth.auth_cache_secs;
    assert!(config.serve.auth.auth_cache_secs > 0, "on by default");
    config
}

/// Asserts that `key` is answered without a lookup (once the listener has
/// heard a heartbeat lately: on a busy machine one may come late).
async fn answered_from_the_cache(server: &TestServer, key: &str) {
    let started = Instant::now();
    loop {
        let (statements, body) = server.statements_for(key, ME, serde_json::json!({})).await;
        assert_eq!(body["data"]["me"]["tenant"], ALPHA, "{body}");
        if statements == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "every request looks the key up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Revokes every key of `ALPHA` in SQL, past the gateway (as an operator
/// or another tool would), on a connection of its own.
async fn revoke_in_sql(test_db: &TestDb) {
    let raw = test_db.raw().await;
    let revoked = raw
        .execute_unprepared(&format!(
            "UPDATE mlgate_api_keys SET revoked_at = now() WHERE tenant_id = '{ALPHA}'"
        ))
        .await
        .expect("revoke");
    assert_eq!(revoked.rows_affected(), 1);
    raw.close().await.ok();
}

/// A remembered key answers without a lookup; revoked in SQL, it is refused
/// once the notification arrives, long before the cache's 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_remembered_key_revoked_in_sql_is_refused_at_its_notification() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    let key = test_db.key(ALPHA, Role::Viewer).await;
    let server = TestServer::start(cached(&test_db)).await;
    let (first, body) = server.statements_for(&key, ME, serde_json::json!({})).await;
    assert_eq!(body["data"]["me"]["tenant"], ALPHA, "{body}");
    assert!(first >= 1, "the first request looks the key up");
    answered_from_the_cache(&server, &key).await;

    revoke_in_sql(&test_db).await;
    let revoked = Instant::now();
    loop {
        let (status, body) = server.graphql(&key, ME).await;
        if status == 401 {
            assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "still answered {:?} after the revocation committed",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop().await;
}

/// The listener's connection stops forwarding without a reset, so the
/// revocation's notification never arrives. The cache is not trusted once
/// the listener has not heard its own heartbeat for
/// `REVOCATIONS_CURRENT_WITHIN`: the revoked key is never answered after
/// that (the lookup it needs instead finds the database unreachable: 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_silent_listener_stops_the_cache_within_its_bound() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    let key = test_db.key(ALPHA, Role::Viewer).await;
    let (proxy, url) = common::Proxy::in_front_of(&test_db.url).await;
    let mut config = cached(&test_db);
    config.database.database_url = url;
    config.serve.http.request_timeout_ms = 1_000;
    let server = TestServer::start(config).await;
    let (_, body) = server.graphql(&key, ME).await;
    assert_eq!(body["data"]["me"]["tenant"], ALPHA, "{body}");
    answered_from_the_cache(&server, &key).await;

    proxy.blackhole();
    let silent = Instant::now();
    // Past the gateway, straight to the database: nobody is notified.
    revoke_in_sql(&test_db).await;
    let refused = loop {
        let (status, body) = server.graphql(&key, ME).await;
        if status != 200 {
            break (status, body);
        }
        // The last heartbeat heard was at most one period before the
        // blackhole; a little more for the heartbeat's own round trip.
        assert!(
            silent.elapsed() < REVOCATIONS_CURRENT_WITHIN + Duration::from_millis(500),
            "the revoked key was answered from the cache {:?} after the listener fell silent",
            silent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, body) = refused;
    assert!(matches!(status, 503 | 504), "{status}: {body}");
    drop(proxy);
    server.stop().await;
}
