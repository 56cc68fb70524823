//! Whether this process hears other processes' notifications right now.
//!
//! PostgreSQL delivers notifications in commit order, so when the listener
//! hears the heartbeat this process sent at time T, every notification
//! committed before T (a revocation among them) has been handled. "Heard a
//! heartbeat sent within the last few seconds" therefore bounds how late a
//! revocation committed by another process can be seen here, however slow
//! the listener's path, even when its connection dies without a reset:
//! what the credential cache relies on. The send time counts, not the
//! arrival: a path that delays every notification by a constant would pass
//! an arrival test forever.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Hearing {
    origin: Instant,
    /// Whether the listener hears its own heartbeat (false until it first
    /// does, and from when it is replaced until it does again).
    listening: AtomicBool,
    /// When the last heartbeat heard was sent, in milliseconds since `origin`.
    last_beat_ms: AtomicU64,
}

impl Hearing {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            listening: AtomicBool::new(false),
            last_beat_ms: AtomicU64::new(0),
        }
    }

    /// This process's clock for heartbeats: milliseconds since `origin`.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The listener heard the heartbeat sent at `sent_ms` (or is listening
    /// anew, caught up as of `sent_ms`); returns whether it already was
    /// listening.
    pub(crate) fn beat(&self, sent_ms: u64) -> bool {
        self.last_beat_ms.fetch_max(sent_ms, Ordering::AcqRel);
        self.listening.swap(true, Ordering::AcqRel)
    }

    /// The listener is being replaced.
    pub(crate) fn lost(&self) {
        self.listening.store(false, Ordering::Release);
    }

    pub(crate) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Whether the listener is listening and has heard a heartbeat sent
    /// within `max`.
    pub(crate) fn heard_within(&self, max: Duration) -> bool {
        let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        self.listening()
            && self
                .now_ms()
                .saturating_sub(self.last_beat_ms.load(Ordering::Acquire))
                <= max_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heard_only_while_listening_and_lately() {
        let hearing = Hearing::new();
        assert!(
            !hearing.heard_within(Duration::from_secs(60)),
            "never heard"
        );
        assert!(!hearing.beat(hearing.now_ms()));
        assert!(hearing.heard_within(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            !hearing.heard_within(Duration::from_millis(10)),
            "too long ago"
        );
        hearing.lost();
        assert!(!hearing.heard_within(Duration::from_secs(60)), "replaced");
    }

    #[test]
    fn a_heartbeat_vouches_from_when_it_was_sent() {
        let hearing = Hearing::new();
        std::thread::sleep(Duration::from_millis(30));
        // Heard now, but sent at the start: nothing recent is vouched for.
        hearing.beat(0);
        assert!(!hearing.heard_within(Duration::from_millis(10)));
        hearing.beat(hearing.now_ms());
        assert!(hearing.heard_within(Duration::from_millis(10)));
        // One sent earlier, arriving late, does not move it back.
        hearing.beat(0);
        assert!(hearing.heard_within(Duration::from_millis(10)));
    }
}
