//! API keys: `mlg_` followed by 256 random bits, base64url. Only the SHA-256
//! of a key is stored (the key has full entropy, so a fast hash suffices);
//! the secret is shown once, when created. This module makes secrets and
//! finds the key a secret belongs to; listing and changing keys is the
//! store's and the write side's.

use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use entity::api_key;

use super::AuthError;
use crate::db::Database;

pub const KEY_PREFIX: &str = "mlg_";
const SHOWN_PREFIX_LEN: usize = 12;

/// A new key's secret, with what is stored of it.
pub struct KeySecret {
    /// The whole key: shown once, never stored.
    pub secret: String,
    /// Its first characters, stored to tell keys apart.
    pub prefix: String,
    /// Its SHA-256, hex: what a presented key is looked up by.
    pub hash: String,
}

impl KeySecret {
    pub fn generate() -> Self {
        let secret = generate_secret();
        Self {
            prefix: secret[..SHOWN_PREFIX_LEN].to_owned(),
            hash: hash(&secret),
            secret,
        }
    }
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The key a secret belongs to, if it is active. This runs before any tenant
/// is known, so it is the one read of tenant-owned rows outside a scoped handle.
pub(super) async fn find_active(db: &Database, secret: &str) -> Result<api_key::Model, AuthError> {
    let hashed = hash(secret);
    let key = db
        .on_live_auth_connection(|| {
            api_key::Entity::find()
                .filter(api_key::Column::KeyHash.eq(hashed.as_str()))
                .one(db.auth_pool())
        })
        .await
        .map_err(|e| match crate::db::classify(&e) {
            Some(crate::db::Failure::Overloaded) => AuthError::Busy(e.into()),
            _ => AuthError::Internal(e.into()),
        })?
        .ok_or(AuthError::InvalidApiKey)?;
    if key.revoked_at.is_some() {
        return Err(AuthError::RevokedApiKey);
    }
    if key.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AuthError::Expired);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hash_to_hex() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(h, hash(&b));
    }
}
