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
