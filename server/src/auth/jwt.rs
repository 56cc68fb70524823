//! JWT verification: HS256 with a shared secret and/or RS256 with a public key.
//! The accepted algorithms are fixed by configuration, never by the token, so
//! `alg: none` and algorithm-confusion tokens are refused. A configured
//! issuer or audience is required, not only compared when present; `nbf`
//! is honoured. Refusals are short sentences, never library debug text.

use std::path::PathBuf;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::AuthError;

/// Where JWT keys come from and which claims tokens must carry.
#[derive(Clone, Debug, Default)]
pub struct JwtSettings {
    /// HS256 shared secret.
    pub secret: Option<String>,
    /// PEM file with the RS256 public key.
    pub public_key_file: Option<PathBuf>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
}

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

/// Leeway for `exp` and `nbf`, in seconds (clock skew between issuer and us).
const LEEWAY_SECS: u64 = 30;

impl JwtVerifier {
    /// `None` when no JWT key is configured (then only API keys work).
    pub fn from_settings(settings: &JwtSettings) -> anyhow::Result<Option<Self>> {
        let hs256 = settings
            .secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|secret| DecodingKey::from_secret(secret.as_bytes()));
        let rs256 = match &settings.public_key_file {
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
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
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
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| refusal(e.kind()))
    }
}

/// A verification failure as a client reads it.
fn refusal(kind: &ErrorKind) -> AuthError {
    let message = match kind {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".to_owned(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's `{claim}` claim is malformed"),
        ErrorKind::Json(e) => match missing_field(&e.to_string()) {
            Some(claim) => format!("the token has no `{claim}` claim"),
            None => "the token's claims are malformed".to_owned(),
        },
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token's algorithm is not accepted".to_owned()
        }
        _ => "not a valid JWT".to_owned(),
    };
    AuthError::InvalidToken(message)
}

/// The field a serde "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_sentences() {
        let message = |kind: ErrorKind| refusal(&kind).to_string();
        assert_eq!(
            message(ErrorKind::MissingRequiredClaim("iss".into())),
            "invalid token: the token has no `iss` claim"
        );
        let json =
            serde_json::from_str::<Claims>(r#"{"sub":"a","role":"viewer","exp":1}"#).unwrap_err();
        let text = message(ErrorKind::Json(std::sync::Arc::new(json)));
        assert_eq!(text, "invalid token: the token has no `tenant_id` claim");
        assert!(!message(ErrorKind::InvalidSignature).contains("Invalid"));
    }
}
