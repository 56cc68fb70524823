//! Where an event stream resumes, for transports with a resume protocol of
//! their own (SSE's `Last-Event-ID`): the transport gives the position the
//! client last saw, and reads back the position of each event it sends,
//! whether or not the client's selection asks for it.

use std::sync::{Arc, Mutex};

/// Shared between a transport and the one subscription it runs.
#[derive(Clone, Default)]
pub struct StreamPositions {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    resume_from: Option<String>,
    last: Mutex<Option<String>>,
}

impl StreamPositions {
    /// Positions of a stream that resumes after `from` (when given).
    pub fn resuming(from: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                resume_from: from,
                last: Mutex::new(None),
            }),
        }
    }

    /// The position the client last saw.
    pub(super) fn resume_from(&self) -> Option<&str> {
        self.inner.resume_from.as_deref()
    }

    /// Notes the position of the event about to be sent.
    pub(super) fn sent(&self, position: String) {
        *self.inner.last.lock().expect("positions lock") = Some(position);
    }

    /// The position of the event just sent, once.
    pub fn take_last(&self) -> Option<String> {
        self.inner.last.lock().expect("positions lock").take()
    }
}
