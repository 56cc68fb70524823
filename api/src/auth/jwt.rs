//! JWT verification: HS256 with a shared secret and/or RS256 with a public key.
//! The accepted algorithms are fixed by configuration, never by the token, so
//! `alg: none` and algorithm-confusion tokens are refused.

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::AuthError;
use crate::config::ServeArgs;

#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: String,
    pub role: String,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl JwtVerifier {
    /// `None` when no JWT key is configured (then only API keys work).
    pub fn from_config(serve: &ServeArgs) -> anyhow::Result<Option<Self>> {
        let hs256 = serve
            .jwt_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|secret| DecodingKey::from_secret(secret.as_bytes()));
        let rs256 = match &serve.jwt_public_key_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("cannot read JWT public key {}: {e}", path.display())
                })?;
                Some(DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                    anyhow::anyhow!(
                        "JWT public key {} is not an RSA PEM key: {e}",
                        path.display()
                    )
                })?)
            }
            None => None,
        };
        if hs256.is_none() && rs256.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            hs256,
            rs256,
            issuer: serve.jwt_issuer.clone(),
            audience: serve.jwt_audience.clone(),
        }))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token)
            .map_err(|_| AuthError::InvalidToken("not a well-formed JWT".into()))?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or_else(|| {
            AuthError::InvalidToken(format!("algorithm {:?} is not accepted", header.alg))
        })?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                kind => AuthError::InvalidToken(format!("{kind:?}")),
            })
    }
}
