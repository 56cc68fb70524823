//! Where a request's DataLoader batches run: inside the request's own task,
//! and only once the operation is waiting.
//!
//! async-graphql's DataLoader collects keys for a short delay and then
//! loads what it has. With loads spawned onto the runtime, the delay races
//! against the resolvers still enqueueing keys in the same poll: a page of
//! 100 parents takes longer than 1 ms to resolve in a debug build (and not
//! much less in release), so one nested list became several batches, and
//! the statement count grew with the rows. Here the spawner hands load
//! tasks to a [`BatchExecutor`] that polls them only when the operation
//! future has stopped making progress, i.e. when every resolver that can
//! enqueue a key has done so. A batch then holds every key of its level,
//! whatever the machine's speed.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::future::{poll_fn, BoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// The spawner handed to the request's DataLoader.
#[derive(Clone)]
pub struct BatchSpawner(UnboundedSender<BoxFuture<'static, ()>>);

impl BatchSpawner {
    pub fn spawn(&self, task: BoxFuture<'static, ()>) {
        // If the executor is gone (the operation finished), nothing awaits
        // the result: let the runtime finish the task anyway.
        if let Err(unsent) = self.0.send(task) {
            tokio::spawn(unsent.0);
        }
    }
}

/// Runs the load tasks of one request (or one WebSocket operation).
pub struct BatchExecutor {
    incoming: UnboundedReceiver<BoxFuture<'static, ()>>,
    running: FuturesUnordered<BoxFuture<'static, ()>>,
}

pub fn batch_executor() -> (BatchSpawner, BatchExecutor) {
    let (sender, incoming) = unbounded_channel();
    (
        BatchSpawner(sender),
        BatchExecutor {
            incoming,
            running: FuturesUnordered::new(),
        },
    )
}

/// Wakes the operation future: records that it wants polling and wakes the task.
struct OperationWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for OperationWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.task.wake();
    }
}

impl BatchExecutor {
    /// Drives `operation` to completion, running load tasks whenever it waits.
    pub async fn run<F: Future>(&mut self, operation: F) -> F::Output {
        let wake = Arc::new(OperationWake {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(wake.clone());
        let mut operation = pin!(operation);
        poll_fn(|cx| {
            wake.task.register(cx.waker());
            loop {
                if wake.woken.swap(false, Ordering::SeqCst) {
                    if let Poll::Ready(output) =
                        operation.as_mut().poll(&mut Context::from_waker(&waker))
                    {
                        return Poll::Ready(output);
                    }
                    if wake.woken.load(Ordering::SeqCst) {
                        // It yielded with work left (e.g. a long list): more
                        // keys may come, so it goes before any batch.
                        continue;
                    }
                }
                while let Poll::Ready(Some(task)) = self.incoming.poll_recv(cx) {
                    self.running.push(task);
                }
                while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {}
                if wake.woken.load(Ordering::SeqCst) {
                    continue;
                }
                return Poll::Pending;
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Returns Pending once after waking itself, as `FuturesUnordered` does
    /// when it yields in the middle of a long list.
    async fn yield_once() {
        let mut yielded = false;
        poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    /// Keys enqueued across many polls of the operation, with yields in
    /// between, still land in one batch.
    #[tokio::test]
    async fn batches_wait_for_the_operation_to_stop_enqueueing() {
        let (spawner, mut executor) = batch_executor();
        let pending: Arc<Mutex<Vec<u32>>> = Arc::default();
        let batches: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
        let operation = {
            let pending = pending.clone();
            let batches = batches.clone();
            async move {
                for key in 0..100 {
                    let first = {
                        let mut pending = pending.lock().unwrap();
                        pending.push(key);
                        pending.len() == 1
                    };
                    if first {
                        let pending = pending.clone();
                        let batches = batches.clone();
                        spawner.spawn(Box::pin(async move {
                            let batch = std::mem::take(&mut *pending.lock().unwrap());
                            batches.lock().unwrap().push(batch);
                        }));
                    }
                    yield_once().await;
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                // Wait for the batch to have run.
                while batches.lock().unwrap().is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        };
        executor.run(operation).await;
        let batches = batches.lock().unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 100);
    }
}
