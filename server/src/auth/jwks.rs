//! Signing keys published by an identity provider at a JWKS URL (Auth0,
//! Keycloak, Okta, Cognito, Azure AD), fetched when first needed, kept for
//! the response's `Cache-Control: max-age` (or `--jwt-jwks-refresh-secs`),
//! and fetched again when they expire or a token names a `kid` not among
//! them: that is how a rotation arrives. Refetches are coalesced and at most
//! one per `--jwt-jwks-min-refresh-secs`, so tokens with made-up `kid`s
//! cannot make mlgate hammer the provider. A fetch is bounded in time and
//! size. When the provider cannot be reached, keys already held go on
//! working; a token whose key is not held is answered 503 (its credentials
//! cannot be checked), not 401.
//!
//! Only signature keys of the asymmetric families are taken (RSA for RS256,
//! P-256 for ES256, Ed25519 for EdDSA): a symmetric (`oct`) key in a key set
//! would let anyone who read the set sign tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// Largest key set read.
const MAX_BYTES: usize = 512 * 1024;
/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds on how long a key set is kept, whatever its `max-age` says.
const MIN_TTL: Duration = Duration::from_secs(30);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Where the key set is and how it is refreshed.
#[derive(Clone, Debug)]
pub struct JwksSettings {
    pub url: String,
    /// How long a key set is kept when its response has no `max-age`.
    pub ttl: Duration,
    /// Least time between two fetches.
    pub min_refresh: Duration,
}

pub struct Jwks {
    settings: JwksSettings,
    client: reqwest::Client,
    held: RwLock<Held>,
    /// Held while fetching (concurrent misses wait for one fetch), with the
    /// time the last attempt ended.
    fetching: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Held {
    keys: Vec<Key>,
    expires: Option<Instant>,
    /// Why the last fetch failed, when it did.
    failure: Option<String>,
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl Jwks {
    pub fn new(settings: JwksSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .context("building the JWKS client")?;
        Ok(Self {
            settings,
            client,
            held: RwLock::new(Held::default()),
            fetching: Mutex::new(None),
        })
    }

    /// Whether `alg` is one a key set can verify.
    pub fn verifies(alg: Algorithm) -> bool {
        matches!(alg, Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA)
    }

    /// The key that verifies a token signed with `alg` under `kid`.
    pub async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        {
            let held = self.held.read().await;
            if let Some(key) = held.find(kid, alg) {
                let fresh = held.expires.is_some_and(|at| Instant::now() < at);
                if !fresh {
                    // Expired: served while a fetch renews it, so no
                    // request waits on the provider for a key it holds.
                    let jwks = self.clone();
                    tokio::spawn(async move { jwks.refresh().await });
                }
                return Ok(key);
            }
        }
        // A key not held (a rotation, or a made-up kid).
        self.refresh().await;
        let held = self.held.read().await;
        if let Some(key) = held.find(kid, alg) {
            return Ok(key);
        }
        match &held.failure {
            Some(failure) => Err(AuthError::Internal(anyhow::anyhow!(
                "the identity provider's keys cannot be fetched: {failure}"
            ))),
            None => Err(AuthError::InvalidToken(match kid {
                Some(kid) => format!(
                    "the issuer's key set has no {alg:?} key `{}`",
                    kid.chars().take(64).collect::<String>()
                ),
                None => format!("the token names no key (`kid`) and the issuer's key set has no single {alg:?} key"),
            })),
        }
    }

    /// Fetches the key set unless another fetch just happened (or is under
    /// way: this waits for it).
    async fn refresh(&self) {
        let requested = Instant::now();
        let mut last = self.fetching.lock().await;
        if let Some(done) = *last {
            // A fetch ended while this waited, or too recently to fetch again.
            if done >= requested || done.elapsed() < self.settings.min_refresh {
                return;
            }
        }
        let fetched = self.fetch().await;
        *last = Some(Instant::now());
        let mut held = self.held.write().await;
        match fetched {
            Ok((keys, ttl)) => {
                tracing::info!(keys = keys.len(), ttl_secs = ttl.as_secs(), "JWKS fetched");
                held.keys = keys;
                held.expires = Some(Instant::now() + ttl);
                held.failure = None;
            }
            Err(e) => {
                // Keys held stay in use: a provider outage does not log
                // everyone out.
                tracing::warn!(error = %format!("{e:#}"), url = %self.settings.url, "JWKS fetch failed");
                held.failure = Some(format!("{e:#}"));
            }
        }
    }

    async fn fetch(&self) -> anyhow::Result<(Vec<Key>, Duration)> {
        let mut response = self
            .client
            .get(&self.settings.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .context("request failed")?;
        anyhow::ensure!(
            response.status().is_success(),
            "answered {}",
            response.status()
        );
        let ttl = max_age(response.headers())
            .unwrap_or(self.settings.ttl)
            .clamp(MIN_TTL.min(self.settings.ttl), MAX_TTL);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.context("reading the key set")? {
            anyhow::ensure!(
                body.len() + chunk.len() <= MAX_BYTES,
                "the key set is larger than {MAX_BYTES} bytes"
            );
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).context("not a JWK set")?;
        let keys: Vec<Key> = set.keys.iter().filter_map(usable).collect();
        anyhow::ensure!(!keys.is_empty(), "the key set has no usable signature key");
        Ok((keys, ttl))
    }
}

impl Held {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let mut matching = self.keys.iter().filter(|key| key.alg == alg);
        match kid {
            Some(kid) => matching.find(|key| key.kid.as_deref() == Some(kid)),
            // No kid: only when exactly one key could have signed it.
            None => match (matching.next(), matching.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            },
        }
        .map(|key| key.key.clone())
    }
}

/// A key of the set mlgate verifies with, or `None` for one it does not use.
fn usable(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Key> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    // A key that names its algorithm is used for that one only.
    let named = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => alg == Algorithm::EdDSA,
        Some(_) => false,
    };
    if !named {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// `Cache-Control: max-age` of a response.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| seconds.trim().parse().ok().map(Duration::from_secs))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_only_asymmetric_signature_keys() {
        let set: JwkSet = serde_json::from_value(json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "enc", "use": "enc"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "rs", "alg": "RS256"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "ps", "alg": "PS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"},
        ]}))
        .unwrap();
        let kids: Vec<_> = set
            .keys
            .iter()
            .filter_map(usable)
            .map(|k| (k.kid.unwrap(), k.alg))
            .collect();
        assert_eq!(
            kids,
            vec![
                ("rs".into(), Algorithm::RS256),
                ("ed".into(), Algorithm::EdDSA)
            ]
        );
    }

    #[test]
    fn reads_max_age() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            "public, max-age=120, must-revalidate".parse().unwrap(),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(120)));
        headers.insert(reqwest::header::CACHE_CONTROL, "no-cache".parse().unwrap());
        assert_eq!(max_age(&headers), None);
    }
}
