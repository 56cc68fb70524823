//! Authentication: `me` answers for API keys and JWTs; bad, expired,
//! unsigned and revoked credentials get 401 `UNAUTHENTICATED`.

mod common;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use server::auth::Role;

use common::{TestDb, TestServer};

const SECRET: &str = "test-secret-with-enough-entropy-0123456789";

fn config_with_jwt(test_db: &TestDb) -> server::Config {
    let mut config = test_db.config();
    config.serve.auth.jwt_secret = Some(SECRET.into());
    config.serve.auth.jwt_public_key_file = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt-rs256-public.pem"),
    );
    config
}

fn hs256(claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn rs256(claims: serde_json::Value) -> String {
    let pem = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt-rs256-private.pem"),
    )
    .unwrap();
    encode(
        &Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap()
}

fn claims(exp_offset_secs: i64) -> serde_json::Value {
    json!({
        "sub": "svc-ingest",
        "tenant_id": "acme",
        "role": "service",
        "exp": chrono::Utc::now().timestamp() + exp_offset_secs,
    })
}

fn assert_unauthenticated(status: u16, body: &serde_json::Value) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    assert!(body.get("data").is_none(), "{body}");
}

const ME: &str = "{ me { tenant role subject authMethod expiresAt } }";

backend_tests! {
    async fn me_answers_for_an_api_key(test_db: TestDb) {
        let key = test_db.key("acme", Role::Analyst).await;
        let server = TestServer::start(test_db.config()).await;
        let (status, body) = server.graphql(&key, ME).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["me"]["tenant"], "acme");
        assert_eq!(body["data"]["me"]["role"], "ANALYST");
        assert_eq!(body["data"]["me"]["authMethod"], "API_KEY");
        assert!(body["data"]["me"]["subject"].as_str().unwrap().starts_with("api-key:mlg_"));
        server.stop().await;
    }

    async fn me_answers_for_hs256_and_rs256_jwts(test_db: TestDb) {
        let server = TestServer::start(config_with_jwt(&test_db)).await;
        for token in [hs256(claims(600)), rs256(claims(600))] {
            let (status, body) = server.graphql(&token, ME).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["me"]["tenant"], "acme");
            assert_eq!(body["data"]["me"]["role"], "SERVICE");
            assert_eq!(body["data"]["me"]["subject"], "svc-ingest");
            assert_eq!(body["data"]["me"]["authMethod"], "JWT");
            assert!(body["data"]["me"]["expiresAt"].is_string());
        }
        server.stop().await;
    }

    async fn bad_credentials_are_refused(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(config_with_jwt(&test_db)).await;

        // No Authorization header at all.
        let response = server.client.post(server.url("/graphql")).json(&json!({"query": ME})).send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let status = response.status().as_u16();
        assert_unauthenticated(status, &response.json().await.unwrap());

        let expired = hs256(claims(-3600));
        let wrong_secret = encode(&Header::default(), &claims(600), &EncodingKey::from_secret(b"another-secret")).unwrap();
        let unsigned = {
            use base64::Engine;
            let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!("{}.{}.", b64(json!({"alg": "none", "typ": "JWT"})), b64(claims(600)))
        };
        let no_tenant = hs256(json!({"sub": "x", "role": "admin", "exp": chrono::Utc::now().timestamp() + 600}));
        let bad_role = hs256(json!({"sub": "x", "tenant_id": "acme", "role": "root", "exp": chrono::Utc::now().timestamp() + 600}));
        let mut tampered_key = key.clone();
        tampered_key.pop();
        tampered_key.push(if key.ends_with('A') { 'B' } else { 'A' });
        for token in [expired, wrong_secret, unsigned, no_tenant, bad_role, tampered_key, "mlg_unknown".to_owned(), "garbage".to_owned()] {
            let (status, body) = server.graphql(&token, ME).await;
            assert_unauthenticated(status, &body);
        }
        let (status, body) = server.graphql(&hs256(claims(-3600)), ME).await;
        assert_unauthenticated(status, &body);
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("expired"));

        // Not a bearer scheme.
        let response = server.client.post(server.url("/graphql")).header("authorization", format!("Basic {key}"))
            .json(&json!({"query": ME})).send().await.unwrap();
        let status = response.status().as_u16();
        assert_unauthenticated(status, &response.json().await.unwrap());
        server.stop().await;
    }

    async fn a_revoked_key_stops_working(test_db: TestDb) {
        let db = test_db.connect().await;
        let key = server::ops::keys::create_for_tenant(&db, "acme", Role::Admin, "to-revoke").await.unwrap();
        let server = TestServer::start(test_db.config()).await;
        let (status, _) = server.graphql(&key.secret, ME).await;
        assert_eq!(status, 200);
        assert!(server::ops::keys::revoke_any(&db, key.info.id).await.unwrap());
        let (status, body) = server.graphql(&key.secret, ME).await;
        assert_unauthenticated(status, &body);
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("revoked"));
        // Revoking twice reports that nothing was active.
        assert!(!server::ops::keys::revoke_any(&db, key.info.id).await.unwrap());
        server.stop().await;
    }

    async fn jwts_are_refused_when_no_jwt_key_is_configured(test_db: TestDb) {
        let server = TestServer::start(test_db.config()).await;
        let (status, body) = server.graphql(&hs256(claims(600)), ME).await;
        assert_unauthenticated(status, &body);
        server.stop().await;
    }
}

/// A JWKS endpoint for the tests: serves the key set it is given, counts
/// its fetches, and can be stopped (the provider going down).
struct KeySetServer {
    keys: std::sync::Arc<std::sync::Mutex<serde_json::Value>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The `max-age` its answers carry, in seconds.
    max_age: std::sync::Arc<std::sync::atomic::AtomicU64>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl KeySetServer {
    async fn start(keys: serde_json::Value) -> Self {
        use std::sync::atomic::Ordering;
        let keys = std::sync::Arc::new(std::sync::Mutex::new(keys));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let max_age = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(3600));
        let (served, counted, aged) = (keys.clone(), fetches.clone(), max_age.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (served, counted, aged) = (served.clone(), counted.clone(), aged.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = served.lock().unwrap().to_string();
                    let cache = format!("max-age={}", aged.load(Ordering::SeqCst));
                    (
                        [
                            ("content-type", "application/json".to_owned()),
                            ("cache-control", cache),
                        ],
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            keys,
            fetches,
            max_age,
            url,
            task,
        }
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// A token signed by fixture key `pem` under `kid`, with Hasura-style
/// namespaced claims and a Keycloak-style role list.
fn idp_token(
    alg: jsonwebtoken::Algorithm,
    pem: &str,
    kid: Option<&str>,
    tenant: &str,
    roles: &[&str],
) -> String {
    let key = match alg {
        jsonwebtoken::Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture(pem)),
        jsonwebtoken::Algorithm::ES256 => EncodingKey::from_ec_pem(&fixture(pem)),
        _ => EncodingKey::from_ed_pem(&fixture(pem)),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let claims = json!({
        "sub": "user-7",
        "iss": "https://idp.example",
        "aud": "mlgate",
        "exp": chrono::Utc::now().timestamp() + 600,
        "https://hasura.io/jwt/claims": {"x-hasura-tenant-id": tenant},
        "realm_access": {"roles": roles},
    });
    encode(&header, &claims, &key).unwrap()
}

/// Keys from a JWKS URL (RS256, ES256, EdDSA by `kid`), a rotation picked
/// up by a refetch on an unknown `kid`, refetches rate-limited, the
/// provider's outage answered 503 for keys not held (held keys go on
/// working), namespaced claims and a role map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_rotate_and_namespaced_claims_map_to_roles() {
    use jsonwebtoken::Algorithm::{EdDSA, ES256, HS256, RS256};
    let jwks: serde_json::Value = serde_json::from_slice(&fixture("jwks.json")).unwrap();
    let mut idp = KeySetServer::start(jwks).await;
    let test_db = TestDb::sqlite().await;
    let mut config = test_db.config();
    config.serve.auth.jwt_jwks_url = Some(idp.url.clone());
    config.serve.auth.jwt_jwks_min_refresh_secs = 1;
    config.serve.auth.jwt_issuer = Some("https://idp.example".into());
    config.serve.auth.jwt_audience = Some("mlgate".into());
    config.serve.auth.jwt_tenant_claim =
        r#""https://hasura.io/jwt/claims".x-hasura-tenant-id"#.into();
    config.serve.auth.jwt_role_claim = "/realm_access/roles".into();
    config.serve.auth.jwt_role_map = Some(server::config::RoleMap(vec![
        ("reader".into(), Role::Viewer),
        ("ml-engineer".into(), Role::Service),
    ]));
    let server = TestServer::start(config.clone()).await;

    for (alg, pem, kid) in [
        (RS256, "jwt-rs256-private.pem", "rsa-1"),
        (ES256, "jwt-es256-private.pem", "ec-1"),
        (EdDSA, "jwt-eddsa-private.pem", "ed-1"),
    ] {
        let token = idp_token(
            alg,
            pem,
            Some(kid),
            "acme",
            &["offline_access", "reader", "ml-engineer"],
        );
        let (status, body) = server.graphql(&token, ME).await;
        assert_eq!(status, 200, "{alg:?}: {body}");
        assert_eq!(body["data"]["me"]["tenant"], "acme");
        assert_eq!(
            body["data"]["me"]["role"], "SERVICE",
            "the most privileged mapped role"
        );
        assert_eq!(body["data"]["me"]["authMethod"], "JWT");
    }
    assert_eq!(
        idp.fetches(),
        1,
        "one fetch serves every key while it is fresh"
    );

    // Roles the map does not know, a key the set does not hold, a key of
    // the wrong family, HMAC signed with the public key: refused.
    let (status, body) = server
        .graphql(
            &idp_token(
                RS256,
                "jwt-rs256-private.pem",
                Some("rsa-1"),
                "acme",
                &["offline_access"],
            ),
            ME,
        )
        .await;
    assert_unauthenticated(status, &body);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("realm_access/roles"),
        "{body}"
    );
    let (status, body) = server
        .graphql(
            &idp_token(
                RS256,
                "jwt-rs256-private.pem",
                Some("ec-1"),
                "acme",
                &["reader"],
            ),
            ME,
        )
        .await;
    assert_unauthenticated(status, &body);
    let forged = encode(
        &{
            let mut header = Header::new(HS256);
            header.kid = Some("rsa-1".into());
            header
        },
        &json!({"sub": "x", "iss": "https://idp.example", "exp": chrono::Utc::now().timestamp() + 600,
                "https://hasura.io/jwt/claims": {"x-hasura-tenant-id": "acme"}, "realm_access": {"roles": ["ml-engineer"]}}),
        &EncodingKey::from_secret(&fixture("jwt-rs256-public.pem")),
    )
    .unwrap();
    let (status, body) = server.graphql(&forged, ME).await;
    assert_unauthenticated(status, &body);

    // The provider rotates: a token under the new kid makes mlgate fetch
    // the set again (once a second at most); the retired key is gone with it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    *idp.keys.lock().unwrap() = serde_json::from_slice(&fixture("jwks-rotated.json")).unwrap();
    let rotated = idp_token(
        RS256,
        "jwt-rs256-rotated-private.pem",
        Some("rsa-2"),
        "acme",
        &["reader"],
    );
    let (status, body) = server.graphql(&rotated, ME).await;
    assert_eq!(
        (status, &body["data"]["me"]["role"]),
        (200, &json!("VIEWER")),
        "{body}"
    );
    let fetched = idp.fetches();
    assert!(fetched >= 2, "{fetched}");
    let retired = idp_token(
        RS256,
        "jwt-rs256-private.pem",
        Some("rsa-1"),
        "acme",
        &["reader"],
    );
    let (status, body) = server.graphql(&retired, ME).await;
    assert_unauthenticated(status, &body);
    server.stop().await;

    // Refetches are rate-limited: made-up kids cost the provider nothing.
    config.serve.auth.jwt_jwks_min_refresh_secs = 3600;
    let server = TestServer::start(config.clone()).await;
    let (status, _) = server.graphql(&rotated, ME).await;
    assert_eq!(status, 200);
    let before = idp.fetches();
    for i in 0..5 {
        let made_up = idp_token(
            RS256,
            "jwt-rs256-rotated-private.pem",
            Some(&format!("nope-{i}")),
            "acme",
            &["reader"],
        );
        let (status, body) = server.graphql(&made_up, ME).await;
        assert_unauthenticated(status, &body);
    }
    assert_eq!(
        idp.fetches(),
        before,
        "no refetch within --jwt-jwks-min-refresh-secs"
    );

    server.stop().await;

    // The provider goes down while its keys expire every second: held keys
    // go on working (refetches fail behind them); a key not held is 503,
    // never 401, since the credentials cannot be checked.
    idp.max_age.store(1, std::sync::atomic::Ordering::SeqCst);
    config.serve.auth.jwt_jwks_min_refresh_secs = 1;
    config.serve.auth.jwt_jwks_refresh_secs = 1;
    let server = TestServer::start(config).await;
    let (status, _) = server.graphql(&rotated, ME).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    idp.task.abort();
    let _ = (&mut idp.task).await;
    let fetched = idp.fetches();
    for _ in 0..2 {
        let (status, body) = server.graphql(&rotated, ME).await;
        assert_eq!(status, 200, "expired keys outlive an outage: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    }
    assert_eq!(
        idp.fetches(),
        fetched,
        "the provider is down: nothing was served"
    );
    let response = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(idp_token(
            RS256,
            "jwt-rs256-rotated-private.pem",
            Some("rsa-3"),
            "acme",
            &["reader"],
        ))
        .json(&json!({"query": ME}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internals leak: {body}"
    );
    server.stop().await;
}
