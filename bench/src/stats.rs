//! Latency samples and the figures reported from them.

use std::time::Duration;

/// Latencies of one measured run, and how long the run took.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Samples {
    pub fn push(&mut self, latency: Duration) {
        self.latencies.push(latency);
    }

    pub fn extend(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
    }

    pub fn len(&self) -> usize {
        self.latencies.len()
    }

    /// The `q` quantile (nearest rank), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].as_secs_f64() * 1000.0
    }

    pub fn p50(&self) -> f64 {
        self.quantile_ms(0.50)
    }

    pub fn p95(&self) -> f64 {
        self.quantile_ms(0.95)
    }

    pub fn p99(&self) -> f64 {
        self.quantile_ms(0.99)
    }

    /// Completed operations per second over the run.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for ms in 1..=100 {
            samples.push(Duration::from_millis(ms));
        }
        samples.elapsed = Duration::from_secs(2);
        assert_eq!(samples.p50(), 50.0);
        assert_eq!(samples.p95(), 95.0);
        assert_eq!(samples.p99(), 99.0);
        assert_eq!(samples.throughput(), 50.0);
    }
}
