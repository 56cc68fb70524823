//! JWT verification: HS256 with a shared secret, RS256 with a public key,
//! and RS256/ES256/EdDSA with an identity provider's rotating keys from a
//! JWKS URL (see `jwks.rs`). The accepted algorithms are fixed by
//! configuration, never by the token, so `alg: none` and
//! algorithm-confusion tokens are refused. A configured issuer or audience
//! is required, not only compared when present; `nbf` is honoured. The
//! tenant and role are read at configurable claim paths (a JSON pointer or
//! a dotted path), the role mapped from the provider's names. Refusals are
//! short sentences, never library debug text.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value as Json;

use super::jwks::{Jwks, JwksSettings};
use super::AuthError;
use crate::identity::Role;

/// Where JWT keys come from and which claims tokens must carry.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// HS256 shared secret.
    pub secret: Option<String>,
    /// PEM file with the RS256 public key.
    pub public_key_file: Option<PathBuf>,
    /// The identity provider's key set.
    pub jwks: Option<JwksSettings>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
    /// Where the tenant is: a JSON pointer (`/…`) or a dotted path whose
    /// segments may be quoted (`"https://hasura.io/jwt/claims".tenant`).
    pub tenant_claim: String,
    /// Where the role is (a string, or a list of which the most privileged
    /// mapped role counts).
    pub role_claim: String,
    /// Provider role → mlgate role; empty: the claim holds mlgate's names.
    pub role_map: Vec<(String, Role)>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            secret: None,
            public_key_file: None,
            jwks: None,
            issuer: None,
            audience: None,
            tenant_claim: "tenant_id".into(),
            role_claim: "role".into(),
            role_map: Vec::new(),
        }
    }
}

/// What a verified token says.
#[derive(Debug)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: String,
    pub role: Role,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    jwks: Option<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Option<String>,
    tenant: ClaimPath,
    role: ClaimPath,
    role_map: Arc<HashMap<String, Role>>,
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
        let jwks = match &settings.jwks {
            Some(jwks) => Some(Arc::new(Jwks::new(jwks.clone())?)),
            None => None,
        };
        if hs256.is_none() && rs256.is_none() && jwks.is_none() {
            return Ok(None);
        }
        // A provider's keys sign tokens for every application and tenant it
        // serves: only those issued by it for mlgate may pass.
        anyhow::ensure!(
            jwks.is_none() || (settings.issuer.is_some() && settings.audience.is_some()),
            "--jwt-jwks-url needs --jwt-issuer and --jwt-audience: without them any token the \
             provider signs for another application would be accepted"
        );
        Ok(Some(Self {
            hs256,
            rs256,
            jwks,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            tenant: ClaimPath::parse(&settings.tenant_claim)?,
            role: ClaimPath::parse(&settings.role_claim)?,
            role_map: Arc::new(settings.role_map.iter().cloned().collect()),
        }))
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token)
            .map_err(|_| AuthError::InvalidToken("not a well-formed JWT".into()))?;
        let not_accepted =
            || AuthError::InvalidToken(format!("algorithm {:?} is not accepted", header.alg));
        let key = match (header.alg, &self.jwks) {
            (Algorithm::HS256, _) => self.hs256.clone().ok_or_else(not_accepted)?,
            // A PEM key verifies RS256 tokens that name no key of the set.
            (Algorithm::RS256, None) => self.rs256.clone().ok_or_else(not_accepted)?,
            (Algorithm::RS256, Some(_)) if header.kid.is_none() && self.rs256.is_some() => {
                self.rs256.clone().ok_or_else(not_accepted)?
            }
            (alg, Some(jwks)) if Jwks::verifies(alg) => {
                jwks.key(header.kid.as_deref(), alg).await?
            }
            _ => return Err(not_accepted()),
        };
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
        let claims = decode::<Json>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| refusal(e.kind()))?;
        self.claims(&claims)
    }

    /// The subject, tenant, role and expiry of verified claims.
    fn claims(&self, claims: &Json) -> Result<Claims, AuthError> {
        let invalid = |message: String| AuthError::InvalidToken(message);
        let sub = match claims.get("sub") {
            Some(Json::String(sub)) => sub.clone(),
            _ => return Err(invalid("the token's `sub` claim is malformed".into())),
        };
        let exp = claims
            .get("exp")
            .and_then(|exp| exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64)))
            .ok_or_else(|| invalid("the token's `exp` claim is malformed".into()))?;
        let tenant_id = match self.tenant.get(claims) {
            Some(Json::String(tenant)) => tenant.clone(),
            Some(_) => {
                return Err(invalid(format!(
                    "the token's `{}` claim is not a string",
                    self.tenant
                )))
            }
            None => return Err(invalid(format!("the token has no `{}` claim", self.tenant))),
        };
        let role = match self.role.get(claims) {
            Some(Json::String(name)) => self.role_of(name)?,
            // A list of roles (Keycloak's realm roles, say): the most
            // privileged mapped one. Only through a map: a provider role
            // that happens to be called `admin` is not mlgate's admin.
            Some(Json::Array(_)) if self.role_map.is_empty() => {
                return Err(invalid(format!(
                    "the token's `{}` claim is a list, which needs --jwt-role-map",
                    self.role
                )))
            }
            Some(Json::Array(names)) => names
                .iter()
                .filter_map(Json::as_str)
                .filter_map(|name| self.role_of(name).ok())
                .max()
                .ok_or_else(|| {
                    invalid(format!(
                        "none of the token's `{}` roles is mapped to an mlgate role",
                        self.role
                    ))
                })?,
            Some(_) => {
                return Err(invalid(format!(
                    "the token's `{}` claim is not a string or a list",
                    self.role
                )))
            }
            None => return Err(invalid(format!("the token has no `{}` claim", self.role))),
        };
        Ok(Claims {
            sub,
            tenant_id,
            role,
            exp,
        })
    }

    fn role_of(&self, name: &str) -> Result<Role, AuthError> {
        if self.role_map.is_empty() {
            return name.parse().map_err(AuthError::InvalidToken);
        }
        self.role_map.get(name).copied().ok_or_else(|| {
            AuthError::InvalidToken(format!(
                "the token's role `{}` is not mapped to an mlgate role",
                name.chars().take(64).collect::<String>()
            ))
        })
    }
}

/// Where a claim is in a token's payload.
#[derive(Clone, Debug)]
enum ClaimPath {
    /// RFC 6901 (`/https:~1~1hasura.io~1jwt~1claims/x-hasura-tenant-id`).
    Pointer(String),
    /// Dotted segments (`realm_access.roles`), a quoted one taken whole.
    Segments(String, Vec<String>),
}

impl ClaimPath {
    fn parse(text: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(!text.trim().is_empty(), "a JWT claim path cannot be empty");
        if text.starts_with('/') {
            return Ok(ClaimPath::Pointer(text.to_owned()));
        }
        let mut segments = Vec::new();
        let mut rest = text;
        loop {
            let (segment, after) = if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| anyhow::anyhow!("unclosed quote in JWT claim path `{text}`"))?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            anyhow::ensure!(
                !segment.is_empty(),
                "empty segment in JWT claim path `{text}`"
            );
            segments.push(segment.to_owned());
            match after.strip_prefix('.') {
                Some(next) => rest = next,
                None if after.is_empty() => break,
                None => anyhow::bail!("expected `.` after a quoted segment in `{text}`"),
            }
        }
        Ok(ClaimPath::Segments(text.to_owned(), segments))
    }

    fn get<'a>(&self, claims: &'a Json) -> Option<&'a Json> {
        match self {
            ClaimPath::Pointer(pointer) => claims.pointer(pointer),
            ClaimPath::Segments(_, segments) => segments
                .iter()
                .try_fold(claims, |value, segment| value.get(segment)),
        }
        .filter(|value| !value.is_null())
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimPath::Pointer(text) | ClaimPath::Segments(text, _) => f.write_str(text),
        }
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
    use serde_json::json;

    #[test]
    fn refusals_are_sentences() {
        let message = |kind: ErrorKind| refusal(&kind).to_string();
        assert_eq!(
            message(ErrorKind::MissingRequiredClaim("iss".into())),
            "invalid token: the token has no `iss` claim"
        );
        assert!(!message(ErrorKind::InvalidSignature).contains("Invalid"));
    }

    fn verifier(tenant: &str, role: &str, role_map: &[(&str, Role)]) -> JwtVerifier {
        JwtVerifier::from_settings(&JwtSettings {
            secret: Some("s".into()),
            tenant_claim: tenant.into(),
            role_claim: role.into(),
            role_map: role_map.iter().map(|(k, r)| (k.to_string(), *r)).collect(),
            ..JwtSettings::default()
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn reads_claims_at_configured_paths_with_mapped_roles() {
        let hasura = json!({
            "sub": "u1", "exp": 1,
            "https://hasura.io/jwt/claims": {"x-hasura-tenant-id": "acme", "x-hasura-default-role": "editor"},
            "realm_access": {"roles": ["offline_access", "reader", "editor"]},
        });
        let map = [("reader", Role::Viewer), ("editor", Role::Service)];
        let pointer = verifier(
            "/https:~1~1hasura.io~1jwt~1claims/x-hasura-tenant-id",
            "realm_access.roles",
            &map,
        );
        let claims = pointer.claims(&hasura).unwrap();
        assert_eq!(
            (claims.tenant_id.as_str(), claims.role),
            ("acme", Role::Service)
        );
        let dotted = verifier(
            r#""https://hasura.io/jwt/claims".x-hasura-tenant-id"#,
            r#""https://hasura.io/jwt/claims".x-hasura-default-role"#,
            &map,
        );
        assert_eq!(dotted.claims(&hasura).unwrap().role, Role::Service);

        let plain = verifier("tenant_id", "role", &[]);
        let refused = |claims: Json| plain.claims(&claims).unwrap_err().to_string();
        assert_eq!(
            refused(json!({"sub": "a", "role": "viewer", "exp": 1})),
            "invalid token: the token has no `tenant_id` claim"
        );
        assert!(
            refused(json!({"sub": "a", "tenant_id": "t", "role": "root", "exp": 1}))
                .contains("unknown role `root`")
        );
        // A list of roles counts only through a map.
        assert!(
            refused(json!({"sub": "a", "tenant_id": "t", "role": ["admin"], "exp": 1}))
                .contains("needs --jwt-role-map")
        );
        assert!(dotted
            .claims(&json!({"sub": "a", "exp": 1, "https://hasura.io/jwt/claims": {"x-hasura-tenant-id": "t", "x-hasura-default-role": "admin"}}))
            .unwrap_err()
            .to_string()
            .contains("not mapped"));
    }

    #[test]
    fn a_key_set_needs_issuer_and_audience() {
        let settings = |issuer: Option<&str>, audience: Option<&str>| JwtSettings {
            jwks: Some(JwksSettings {
                url: "https://idp.example/jwks".into(),
                ttl: std::time::Duration::from_secs(600),
                min_refresh: std::time::Duration::from_secs(30),
            }),
            issuer: issuer.map(Into::into),
            audience: audience.map(Into::into),
            ..JwtSettings::default()
        };
        assert!(JwtVerifier::from_settings(&settings(Some("i"), None)).is_err());
        assert!(JwtVerifier::from_settings(&settings(None, Some("a"))).is_err());
        assert!(JwtVerifier::from_settings(&settings(Some("i"), Some("a"))).is_ok());
    }

    #[test]
    fn claim_paths_parse() {
        assert!(ClaimPath::parse("").is_err());
        assert!(ClaimPath::parse("a..b").is_err());
        assert!(ClaimPath::parse(r#""a.b"c"#).is_err());
        assert!(ClaimPath::parse(r#""unclosed"#).is_err());
        let path = ClaimPath::parse(r#"a."b.c".d"#).unwrap();
        let claims = json!({"a": {"b.c": {"d": 7}}});
        assert_eq!(path.get(&claims), Some(&json!(7)));
    }
}
