//! Who may run a request now: request rates per credential and per tenant,
//! each tenant's requests in flight, and a throttle on client addresses
//! that keep presenting refused credentials. A refusal is a 429 with
//! `Retry-After`, never another tenant's problem.
//!
//! Request rates use `governor` (GCRA, keyed by credential and tenant; both
//! key sets are bounded by the credentials that authenticated). The
//! refused-credential throttle is a small token-bucket map of its own,
//! because it must *look* at an address's budget before checking a
//! credential and *spend* it only when the credential is refused, which
//! governor's check-and-consume cannot express.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::identity::{Credential, Principal};
use crate::keyed::Keyed;

/// A rate: `per_second` on average (0: unlimited), `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second, burst }
    }

    fn quota(self) -> Option<Quota> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(1)).expect("at least one");
        Some(Quota::per_second(per_second).allow_burst(burst))
    }
}

/// The admission rules, built once in the composition root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// Requests of one tenant in flight at once (0: no cap).
    pub tenant_in_flight: u32,
    /// Requests of one credential in flight at once, within its tenant's (0: no cap).
    pub credential_in_flight: u32,
    /// How long a request waits for its tenant's in-flight slot.
    pub wait: Duration,
    pub credential: Rate,
    pub tenant: Rate,
    /// Refused credentials per client address.
    pub failed_auth: Rate,
}

impl AdmissionSettings {
    pub const DEFAULT_TENANT_IN_FLIGHT: u32 = 32;
    pub const DEFAULT_CREDENTIAL_IN_FLIGHT: u32 = 16;
    pub const DEFAULT_CREDENTIAL_RATE: u32 = 200;
    pub const DEFAULT_CREDENTIAL_BURST: u32 = 400;
    pub const DEFAULT_TENANT_RATE: u32 = 1_000;
    pub const DEFAULT_TENANT_BURST: u32 = 2_000;
    pub const DEFAULT_FAILED_AUTH_RATE: u32 = 5;
    pub const DEFAULT_FAILED_AUTH_BURST: u32 = 30;
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            tenant_in_flight: Self::DEFAULT_TENANT_IN_FLIGHT,
            credential_in_flight: Self::DEFAULT_CREDENTIAL_IN_FLIGHT,
            wait: Duration::from_secs(2),
            credential: Rate::new(
                Self::DEFAULT_CREDENTIAL_RATE,
                Self::DEFAULT_CREDENTIAL_BURST,
            ),
            tenant: Rate::new(Self::DEFAULT_TENANT_RATE, Self::DEFAULT_TENANT_BURST),
            failed_auth: Rate::new(
                Self::DEFAULT_FAILED_AUTH_RATE,
                Self::DEFAULT_FAILED_AUTH_BURST,
            ),
        }
    }
}

/// Addresses tracked by the refused-credential throttle at most; beyond,
/// new addresses go untracked (and a warning is logged) rather than
/// growing memory.
const MAX_TRACKED_ADDRESSES: usize = 65_536;

/// How often idle rate-limiter state is dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AdmissionSettings,
    credentials: Option<DefaultKeyedRateLimiter<String>>,
    tenants: Option<DefaultKeyedRateLimiter<Arc<str>>>,
    tenant_slots: Slots,
    credential_slots: Slots,
    failures: Option<Mutex<Buckets>>,
}

/// A request's in-flight slots (its credential's and its tenant's), held
/// while it runs.
pub struct InFlight {
    _credential: Option<OwnedSemaphorePermit>,
    _tenant: Option<OwnedSemaphorePermit>,
}

/// Semaphores of `cap` permits by key, kept while someone holds one.
struct Slots {
    cap: usize,
    by_key: Keyed<Semaphore>,
}

impl Slots {
    fn new(cap: u32) -> Self {
        Self {
            cap: cap as usize,
            by_key: Keyed::default(),
        }
    }

    /// One of `key`'s slots, waiting at most `wait`; `Ok(None)` without a cap.
    async fn take(&self, key: &str, wait: Duration) -> Result<Option<OwnedSemaphorePermit>, ()> {
        if self.cap == 0 {
            return Ok(None);
        }
        let semaphore = self
            .by_key
            .get_or_insert_with(key, || Semaphore::new(self.cap));
        match tokio::time::timeout(wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(()),
        }
    }
}

fn refused(message: String, wait: Duration) -> ApiError {
    ApiError::RateLimited {
        message,
        retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

impl Admission {
    /// The admission rules; a background task drops idle rate state while
    /// the rules are alive.
    pub fn new(settings: AdmissionSettings) -> Self {
        let inner = Arc::new(Inner {
            settings,
            credentials: settings.credential.quota().map(RateLimiter::keyed),
            tenants: settings.tenant.quota().map(RateLimiter::keyed),
            tenant_slots: Slots::new(settings.tenant_in_flight),
            credential_slots: Slots::new(settings.credential_in_flight),
            failures: (settings.failed_auth.per_second > 0)
                .then(|| Mutex::new(Buckets::new(settings.failed_auth))),
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.sweep();
            }
        });
        Self { inner }
    }

    /// Before a credential is checked: refuses an address that presented
    /// too many refused credentials lately.
    pub fn check_address(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(address), Some(failures)) = (address, &self.inner.failures) else {
            return Ok(());
        };
        match failures
            .lock()
            .expect("failures lock")
            .wait(address, Instant::now())
        {
            None => Ok(()),
            Some(wait) => Err(refused(
                "too many refused credentials from this address; retry later".into(),
                wait,
            )),
        }
    }

    /// A credential from `address` was refused: spends from its budget.
    pub fn credential_refused(&self, address: Option<IpAddr>) {
        if let (Some(address), Some(failures)) = (address, &self.inner.failures) {
            failures
                .lock()
                .expect("failures lock")
                .spend(address, Instant::now());
        }
    }

    /// After authentication: one request of `principal`'s credential and tenant.
    pub fn check_rates(&self, principal: &Principal) -> Result<(), ApiError> {
        // The limiter's own clock: a new `DefaultClock` calibrates itself
        // (CPUID and a timing loop), too slow to make per request.
        if let Some(limiter) = &self.inner.credentials {
            if let Err(not_until) = limiter.check_key(&credential_key(principal)) {
                return Err(refused(
                    format!(
                        "this credential is over its rate of {} requests per second",
                        self.inner.settings.credential.per_second
                    ),
                    not_until.wait_time_from(limiter.clock().now()),
                ));
            }
        }
        if let Some(limiter) = &self.inner.tenants {
            if let Err(not_until) = limiter.check_key(&Arc::from(principal.tenant())) {
                return Err(refused(
                    format!(
                        "your tenant is over its rate of {} requests per second",
                        self.inner.settings.tenant.per_second
                    ),
                    not_until.wait_time_from(limiter.clock().now()),
                ));
            }
        }
        Ok(())
    }

    /// Takes one of the caller's credential's in-flight slots and one of its
    /// tenant's, waiting briefly (at most the admission wait in all).
    pub async fn enter(&self, principal: &Principal) -> Result<InFlight, ApiError> {
        let settings = &self.inner.settings;
        let deadline = tokio::time::Instant::now() + settings.wait;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let credential = self
            .inner
            .credential_slots
            .take(&credential_key(principal), left())
            .await
            .map_err(|()| {
                refused(
                    format!(
                        "this credential already has {} requests in flight; retry shortly",
                        settings.credential_in_flight
                    ),
                    Duration::from_secs(1),
                )
            })?;
        let tenant = self
            .inner
            .tenant_slots
            .take(principal.tenant(), left())
            .await
            .map_err(|()| {
                refused(
                    format!(
                        "your tenant already has {} requests in flight; retry shortly",
                        settings.tenant_in_flight
                    ),
                    Duration::from_secs(1),
                )
            })?;
        Ok(InFlight {
            _credential: credential,
            _tenant: tenant,
        })
    }
}

impl Inner {
    fn sweep(&self) {
        if let Some(limiter) = &self.credentials {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.tenants {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(failures) = &self.failures {
            failures
                .lock()
                .expect("failures lock")
                .forget_refilled(Instant::now());
        }
    }
}

/// The rate-limit key of a caller's credential.
pub(super) fn credential_key(principal: &Principal) -> String {
    match principal.credential() {
        Credential::ApiKey { key_id } => format!("key:{key_id}"),
        Credential::Jwt => format!("jwt:{}:{}", principal.tenant(), principal.subject()),
        Credential::Cli => format!("cli:{}", principal.tenant()),
        Credential::Monitor => format!("monitor:{}", principal.tenant()),
    }
}

/// The throttled unit of a client address: an IPv4 address, or an IPv6
/// /64 (one host's usual allocation).
fn address_key(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) >> 64 << 64) | (1 << 127),
        },
    }
}

/// Token buckets per address: full at `burst`, refilled at `rate`.
struct Buckets {
    rate: f64,
    burst: f64,
    buckets: HashMap<u128, (f64, Instant)>,
    warned: bool,
}

impl Buckets {
    fn new(rate: Rate) -> Self {
        Self {
            rate: f64::from(rate.per_second.max(1)),
            burst: f64::from(rate.burst.max(1)),
            buckets: HashMap::new(),
            warned: false,
        }
    }

    fn tokens(&self, key: u128, now: Instant) -> f64 {
        match self.buckets.get(&key) {
            None => self.burst,
            Some((tokens, at)) => {
                (tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst)
            }
        }
    }

    /// How long `address` must wait before it may present a credential.
    fn wait(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let tokens = self.tokens(address_key(address), now);
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }

    fn spend(&mut self, address: IpAddr, now: Instant) {
        let key = address_key(address);
        let tokens = self.tokens(key, now) - 1.0;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_TRACKED_ADDRESSES {
            self.forget_refilled(now);
            if self.buckets.len() >= MAX_TRACKED_ADDRESSES {
                if !self.warned {
                    tracing::warn!(
                        addresses = self.buckets.len(),
                        "refused-credential throttle is full; new addresses go untracked"
                    );
                    self.warned = true;
                }
                return;
            }
        }
        self.buckets.insert(key, (tokens.max(0.0), now));
    }

    /// Drops addresses whose bucket has refilled: they are as if untracked.
    fn forget_refilled(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, (tokens, at)| {
            *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
        });
        self.warned = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_spend_an_addresses_budget() {
        let mut buckets = Buckets::new(Rate::new(2, 3));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.wait(a, now), None);
            buckets.spend(a, now);
        }
        let wait = buckets.wait(a, now).expect("throttled");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        // Another address is not affected; time refills the first.
        assert_eq!(buckets.wait(b, now), None);
        assert_eq!(buckets.wait(a, now + Duration::from_millis(600)), None);
        buckets.forget_refilled(now + Duration::from_secs(10));
        assert!(buckets.buckets.is_empty());
    }

    #[test]
    fn ipv6_hosts_are_throttled_per_64() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            address_key(mapped),
            address_key("10.0.0.1".parse().unwrap())
        );
    }
}
