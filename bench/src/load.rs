//! A closed-loop load: `concurrency` workers each run the next operation as
//! soon as their previous one finished. Any failed operation fails the whole
//! run, so an error is never reported as a fast success.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::Samples;

/// Runs `operation(worker, iteration)` from `concurrency` workers: first
/// `warmup` unmeasured, then `duration` measured. Every operation started in
/// the measured window counts, and the window stretches to the last of them
/// to finish, so operations slower than the window are still measured.
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
                let mut last_finish = measured_from;
                let mut iteration = 0u64;
                loop {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    operation(worker, iteration).await?;
                    let finished = Instant::now();
                    if began >= measured_from {
                        samples.push(finished - began);
                        last_finish = last_finish.max(finished);
                    }
                    iteration += 1;
                }
                anyhow::Ok((samples, last_finish))
            })
        })
        .collect();
    let mut all = Samples::default();
    let mut last_finish = end;
    for worker in workers {
        let (samples, finished) = worker.await??;
        all.extend(samples);
        last_finish = last_finish.max(finished);
    }
    all.elapsed = last_finish - measured_from;
    anyhow::ensure!(
        all.len() > 0,
        "no operation completed in the measured {duration:?}"
    );
    Ok(all)
}
