//! Verified credentials, remembered briefly: a request whose token was
//! verified within the last few seconds skips the key lookup (and the JWT
//! signature check). Entries are keyed by the token's SHA-256, never the
//! token; they end at their time-to-live, at the credential's own expiry,
//! or at once when the key is revoked (see `Authenticator::forget_key`).
//! Bounded: when full, expired entries go first, then all of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{Credential, Principal};

/// Most credentials remembered at once.
const MAX_ENTRIES: usize = 10_000;

pub(super) struct CredentialCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl CredentialCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub(super) fn get(&self, token: &str) -> Option<Principal> {
        if !self.enabled() {
            return None;
        }
        let key = digest(token);
        let mut entries = self.entries.lock().expect("credential cache lock");
        let (principal, until) = entries.get(&key)?;
        let expired = principal
            .expires_at()
            .is_some_and(|at| at <= chrono::Utc::now());
        if *until <= Instant::now() || expired {
            entries.remove(&key);
            return None;
        }
        Some(principal.clone())
    }

    pub(super) fn put(&self, token: &str, principal: &Principal) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("credential cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest(token), (principal.clone(), now + self.ttl));
    }

    /// Forgets every token of API key `key_id`.
    pub(super) fn forget_key(&self, key_id: uuid::Uuid) {
        self.entries
            .lock()
            .expect("credential cache lock")
            .retain(|_, (principal, _)| {
                !matches!(principal.credential(), Credential::ApiKey { key_id: id } if *id == key_id)
            });
    }

    pub(super) fn clear(&self) {
        self.entries.lock().expect("credential cache lock").clear();
    }
}
