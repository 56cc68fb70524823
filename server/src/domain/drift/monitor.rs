//! A monitor's decisions, as pure functions: its thresholds (fixed, or from
//! the reference's own variability) and its noise control (fire after N
//! consecutive breaches, keep firing for M evaluations, notify once per
//! firing episode and not within the cool-down of the last notification).

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::AlertLevel;

/// Where a monitor's warning and critical values come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Thresholds {
    Fixed {
        warning: f64,
        critical: f64,
    },
    /// `mean ± k·σ` of the value over the reference's chunks (a drift
    /// statistic: each chunk compared with the whole reference; a quality
    /// measure: each chunk's own), as NannyML derives thresholds.
    Sigma {
        warning_k: f64,
        critical_k: f64,
    },
}

/// Which side of its thresholds a value is bad on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Higher is worse (drift statistics, calibration error).
    Above,
    /// Lower is worse (precision, recall, F1).
    Below,
}

/// Warning and critical values in force for one evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    pub warning: f64,
    pub critical: f64,
    pub direction: Direction,
    /// A value equal to `warning` is a warning (fixed thresholds, "at or
    /// above"); sigma bands are strict, as NannyML's are, so that a
    /// reference with no variability (σ = 0) does not flag an unchanged
    /// value.
    pub inclusive: bool,
}

impl Band {
    /// `Above`: `critical` above the critical value, `warning` from the
    /// warning value (above it when not `inclusive`). `Below`: `critical`
    /// below the critical value, `warning` at or below the warning value
    /// (below it when not `inclusive`).
    pub fn level(&self, value: f64) -> AlertLevel {
        let at_warning = self.inclusive && value == self.warning;
        let (critical, warning) = match self.direction {
            Direction::Above => (value > self.critical, value > self.warning || at_warning),
            Direction::Below => (value < self.critical, value < self.warning || at_warning),
        };
        if critical {
            AlertLevel::Critical
        } else if warning {
            AlertLevel::Warning
        } else {
            AlertLevel::Info
        }
    }
}

/// The band of `thresholds` for values bad in `direction`, given the value
/// of each reference chunk (used only by `Sigma`; `None` when fewer than
/// two chunks could be measured).
pub fn band(thresholds: Thresholds, direction: Direction, chunk_values: &[f64]) -> Option<Band> {
    match thresholds {
        Thresholds::Fixed { warning, critical } => Some(Band {
            warning,
            critical,
            direction,
            inclusive: true,
        }),
        Thresholds::Sigma {
            warning_k,
            critical_k,
        } => {
            if chunk_values.len() < 2 {
                return None;
            }
            let n = chunk_values.len() as f64;
            let mean = chunk_values.iter().sum::<f64>() / n;
            let var = chunk_values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let sd = var.sqrt();
            let sign = match direction {
                Direction::Above => 1.0,
                Direction::Below => -1.0,
            };
            Some(Band {
                warning: mean + sign * warning_k * sd,
                critical: mean + sign * critical_k * sd,
                direction,
                inclusive: false,
            })
        }
    }
}

/// How a monitor keeps a noisy signal from flapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseControl {
    /// Consecutive breaches (at least `warning`) before it fires.
    pub breaches_to_fire: u32,
    /// Evaluations it keeps firing after the breaches stop.
    pub keep_firing: u32,
    /// Least time between two notifications.
    pub cooldown: TimeDelta,
}

/// What a monitor remembers between evaluations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct State {
    pub consecutive_breaches: u32,
    pub firing_left: u32,
    pub firing: bool,
    pub last_notified_at: Option<DateTime<Utc>>,
}

/// One evaluation's decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    pub state: State,
    /// Firing now (breaching long enough, or held).
    pub firing: bool,
    /// A new firing episode outside the cool-down: notify (alert, actions).
    pub notify: bool,
}

/// The next state after an evaluation at `at` that `breached` or not.
pub fn step(control: NoiseControl, state: State, breached: bool, at: DateTime<Utc>) -> Step {
    let consecutive = if breached {
        state.consecutive_breaches.saturating_add(1)
    } else {
        0
    };
    let fires = consecutive >= control.breaches_to_fire.max(1);
    let (firing, firing_left) = if fires {
        (true, control.keep_firing)
    } else if state.firing && state.firing_left > 0 {
        (true, state.firing_left - 1)
    } else {
        (false, 0)
    };
    let cooled = state
        .last_notified_at
        .is_none_or(|last| at - last >= control.cooldown);
    let notify = firing && !state.firing && cooled;
    Step {
        state: State {
            consecutive_breaches: consecutive,
            firing_left,
            firing,
            last_notified_at: if notify {
                Some(at)
            } else {
                state.last_notified_at
            },
        },
        firing,
        notify,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(control: NoiseControl, trace: &[bool]) -> (Vec<bool>, usize) {
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut state = State::default();
        let mut firing = Vec::new();
        let mut notifications = 0;
        for (i, &breached) in trace.iter().enumerate() {
            let s = step(
                control,
                state,
                breached,
                start + TimeDelta::minutes(i as i64),
            );
            state = s.state;
            firing.push(s.firing);
            notifications += usize::from(s.notify);
        }
        (firing, notifications)
    }

    #[test]
    fn fires_after_n_breaches_and_holds_for_m() {
        let control = NoiseControl {
            breaches_to_fire: 2,
            keep_firing: 2,
            cooldown: TimeDelta::zero(),
        };
        let (firing, notifications) = run(control, &[true, true, false, false, false, true, false]);
        assert_eq!(firing, [false, true, true, true, false, false, false]);
        assert_eq!(notifications, 1);
    }

    #[test]
    fn a_flapping_signal_notifies_once() {
        let control = NoiseControl {
            breaches_to_fire: 1,
            keep_firing: 3,
            cooldown: TimeDelta::hours(1),
        };
        let flapping: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let (firing, notifications) = run(control, &flapping);
        assert!(firing.iter().all(|f| *f), "held through every flip");
        assert_eq!(notifications, 1);
        // Without a hold, each flip is a new episode, and the cool-down
        // (an hour, evaluations a minute apart) still allows one.
        let bare = NoiseControl {
            keep_firing: 0,
            ..control
        };
        assert_eq!(run(bare, &flapping).1, 1);
        let no_cooldown = NoiseControl {
            cooldown: TimeDelta::zero(),
            ..bare
        };
        assert_eq!(run(no_cooldown, &flapping).1, 20);
    }

    #[test]
    fn sigma_bands_follow_the_reference_variability() {
        let band = band(
            Thresholds::Sigma {
                warning_k: 2.0,
                critical_k: 3.0,
            },
            Direction::Above,
            &[0.01, 0.03, 0.02, 0.02],
        )
        .unwrap();
        // Deviations -0.01, 0.01, 0, 0: variance 0.0002 / 4.
        let sd = 0.00005f64.sqrt();
        assert!((band.warning - (0.02 + 2.0 * sd)).abs() < 1e-12);
        assert!((band.critical - (0.02 + 3.0 * sd)).abs() < 1e-12);
        assert_eq!(band.level(0.019), AlertLevel::Info);
        assert_eq!(band.level(1.0), AlertLevel::Critical);
        assert!(super::band(
            Thresholds::Sigma {
                warning_k: 2.0,
                critical_k: 3.0
            },
            Direction::Above,
            &[0.1]
        )
        .is_none());
    }

    #[test]
    fn quality_bands_breach_below() {
        let fixed = band(
            Thresholds::Fixed {
                warning: 0.8,
                critical: 0.7,
            },
            Direction::Below,
            &[],
        )
        .unwrap();
        assert_eq!(fixed.level(0.81), AlertLevel::Info);
        assert_eq!(fixed.level(0.8), AlertLevel::Warning);
        assert_eq!(fixed.level(0.7), AlertLevel::Warning);
        assert_eq!(fixed.level(0.69), AlertLevel::Critical);
        let sigma = band(
            Thresholds::Sigma {
                warning_k: 2.0,
                critical_k: 3.0,
            },
            Direction::Below,
            &[0.88, 0.92, 0.9, 0.9],
        )
        .unwrap();
        let sd = 0.0002f64.sqrt();
        assert!((sigma.warning - (0.9 - 2.0 * sd)).abs() < 1e-12);
        assert!((sigma.critical - (0.9 - 3.0 * sd)).abs() < 1e-12);
        assert_eq!(sigma.level(0.95), AlertLevel::Info);
        assert_eq!(sigma.level(0.5), AlertLevel::Critical);
    }

    #[test]
    fn a_reference_without_variability_flags_only_a_change() {
        for direction in [Direction::Above, Direction::Below] {
            let flat = band(
                Thresholds::Sigma {
                    warning_k: 2.0,
                    critical_k: 3.0,
                },
                direction,
                &[1.0, 1.0, 1.0],
            )
            .unwrap();
            assert_eq!(flat.level(1.0), AlertLevel::Info, "{direction:?}");
        }
        let flat_below = |v| {
            band(
                Thresholds::Sigma {
                    warning_k: 2.0,
                    critical_k: 3.0,
                },
                Direction::Below,
                &[1.0, 1.0],
            )
            .unwrap()
            .level(v)
        };
        assert_eq!(flat_below(0.9), AlertLevel::Critical);
    }
}
