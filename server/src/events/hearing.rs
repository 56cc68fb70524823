//! Whether this process hears other processes' notifications right now.
//!
//! PostgreSQL delivers notifications in commit order, so when the listener
//! hears the heartbeat this process sent at time T, every notification
//! committed before T (a revocation among them) has been handled. "Heard
//! within the last few seconds" therefore bounds how late a revocation
//! committed by another process can be seen here, even when the listener's
//! connection dies without a reset: what the credential cache relies on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Hearing {
    origin: Instant,
    /// Whether the listener hears its own heartbeat (false until it first
    /// does, and from when it is replaced until it does again).
    listening: AtomicBool,
    /// When it last heard its heartbeat, in milliseconds since `origin`.
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

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The listener heard its own heartbeat; returns whether it already
    /// was listening.
    pub(crate) fn beat(&self) -> bool {
        self.last_beat_ms.store(self.now_ms(), Ordering::Release);
        self.listening.swap(true, Ordering::AcqRel)
    }

    /// The listener is being replaced.
    pub(crate) fn lost(&self) {
        self.listening.store(false, Ordering::Release);
    }

    pub(crate) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Whether the listener is listening and heard its heartbeat within `max`.
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
        assert!(!hearing.beat());
        assert!(hearing.heard_within(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            !hearing.heard_within(Duration::from_millis(10)),
            "too long ago"
        );
        assert!(hearing.beat());
        hearing.lost();
        assert!(!hearing.heard_within(Duration::from_secs(60)), "replaced");
    }
}
