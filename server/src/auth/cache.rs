//! Verified credentials, remembered briefly: a request whose token was
//! verified within the last few seconds skips the key lookup (and the JWT
//! signature check). Entries are keyed by the token's SHA-256, never the
//! token; they end at their time-to-live, at the credential's own expiry,
//! or at once when the key is revoked (see `Authenticator::forget_key`).
//! Bounded: when full, expired entries go first, then all of them.
//!
//! A revocation by another process arrives as a notification. The cache is
//! therefore consulted only while notifications are known to arrive (the
//! `current` test, see `events::hearing`); otherwise every request looks its
//! key up. And a verification that started before a revocation (or before
//! everything was forgotten) is not remembered after it: every forgetting
//! starts a new generation, and an entry from an older one is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{Credential, Principal};

/// Most credentials remembered at once.
const MAX_ENTRIES: usize = 10_000;

/// Whether every revocation made elsewhere has reached this process.
pub(super) type Current = Box<dyn Fn() -> bool + Send + Sync>;

pub(super) struct CredentialCache {
    ttl: Duration,
    current: Current,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_digest: HashMap<[u8; 32], (Principal, Instant)>,
    /// Bumped by every forgetting.
    generation: u64,
}

/// Leave to remember what a verification that starts now finds.
pub(super) struct Ticket(u64);

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl CredentialCache {
    pub(super) fn new(ttl: Duration, current: Current) -> Self {
        Self {
            ttl,
            current,
            entries: Mutex::default(),
        }
    }

    fn usable(&self) -> bool {
        !self.ttl.is_zero() && (self.current)()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().expect("credential cache lock")
    }

    pub(super) fn get(&self, token: &str) -> Option<Principal> {
        if !self.usable() {
            return None;
        }
        let key = digest(token);
        let mut entries = self.entries();
        let (principal, until) = entries.by_digest.get(&key)?;
        let expired = principal
            .expires_at()
            .is_some_and(|at| at <= chrono::Utc::now());
        if *until <= Instant::now() || expired {
            entries.by_digest.remove(&key);
            return None;
        }
        Some(principal.clone())
    }

    /// Taken before a verification; `None` when its result must not be kept.
    pub(super) fn ticket(&self) -> Option<Ticket> {
        let entries = self.entries();
        self.usable().then(|| Ticket(entries.generation))
    }

    /// Remembers what the verification of `ticket` found, unless something
    /// was forgotten since it started.
    pub(super) fn put(&self, ticket: Ticket, token: &str, principal: &Principal) {
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.generation != ticket.0 {
            return;
        }
        if entries.by_digest.len() >= MAX_ENTRIES {
            entries.by_digest.retain(|_, (_, until)| *until > now);
            if entries.by_digest.len() >= MAX_ENTRIES {
                entries.by_digest.clear();
            }
        }
        entries
            .by_digest
            .insert(digest(token), (principal.clone(), now + self.ttl));
    }

    /// Forgets every token of API key `key_id`.
    pub(super) fn forget_key(&self, key_id: uuid::Uuid) {
        let mut entries = self.entries();
        entries.generation += 1;
        entries.by_digest.retain(|_, (principal, _)| {
            !matches!(principal.credential(), Credential::ApiKey { key_id: id } if *id == key_id)
        });
    }

    pub(super) fn clear(&self) {
        let mut entries = self.entries();
        entries.generation += 1;
        entries.by_digest.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::auth::Role;

    fn principal(key_id: uuid::Uuid) -> Principal {
        Principal::authenticated(
            "acme".to_owned(),
            Role::Viewer,
            "api-key:mlg_test".to_owned(),
            None,
            Credential::ApiKey { key_id },
        )
    }

    fn cache(current: &Arc<AtomicBool>) -> CredentialCache {
        let current = current.clone();
        CredentialCache::new(
            Duration::from_secs(60),
            Box::new(move || current.load(Ordering::SeqCst)),
        )
    }

    #[test]
    fn a_verification_older_than_a_revocation_is_not_remembered() {
        let current = Arc::new(AtomicBool::new(true));
        let cache = cache(&current);
        let key = uuid::Uuid::new_v4();
        let ticket = cache.ticket().expect("usable");
        // Revoked while the lookup that found the key active was in flight.
        cache.forget_key(key);
        cache.put(ticket, "mlg_a", &principal(key));
        assert!(cache.get("mlg_a").is_none());
        let ticket = cache.ticket().expect("usable");
        cache.put(ticket, "mlg_a", &principal(key));
        assert!(cache.get("mlg_a").is_some());
        cache.forget_key(key);
        assert!(cache.get("mlg_a").is_none(), "forgotten at once");
    }

    #[test]
    fn nothing_is_served_or_kept_while_revocations_may_be_missed() {
        let current = Arc::new(AtomicBool::new(true));
        let cache = cache(&current);
        let key = uuid::Uuid::new_v4();
        let ticket = cache.ticket().expect("usable");
        cache.put(ticket, "mlg_a", &principal(key));
        current.store(false, Ordering::SeqCst);
        assert!(cache.get("mlg_a").is_none(), "not served");
        assert!(cache.ticket().is_none(), "not kept");
        current.store(true, Ordering::SeqCst);
        assert!(cache.get("mlg_a").is_some());
        cache.clear();
        assert!(cache.get("mlg_a").is_none());
    }
}
