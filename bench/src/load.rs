//! A closed-loop load: `concurrency` workers each run the next operation as
//! soon as their previous one finished. Any failed operation fails the whole
//! run, so an error is never reported as a fast success.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::Samples;

/// Runs `operation(worker, iteration)` from `concurrency` workers: first
/// `warmup` unmeasured, then `duration` measured.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    operation: F,
) -> anyhow::Result<Samples>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let operation = Arc::new(operation);
    let start = Instant::now();
    let measured_from = start + warmup;
    let end = measured_from + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let operation = operation.clone();
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut iteration = 0u64;
                loop {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    operation(worker, iteration).await?;
                    let finished = Instant::now();
                    if began >= measured_from && finished <= end {
                        samples.push(finished - began);
                    }
                    iteration += 1;
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut all = Samples::default();
    for worker in workers {
        all.extend(worker.await??);
    }
    all.elapsed = duration;
    anyhow::ensure!(
        all.len() > 0,
        "no operation completed in the measured {duration:?}"
    );
    Ok(all)
}
