//! Which status may follow which: the model and training-job lifecycles.

use super::{JobStatus, ModelStatus};

impl ModelStatus {
    /// The schema's default for a model without a status.
    pub const DEFAULT: ModelStatus = ModelStatus::Active;

    /// The statuses a model may move to from this one.
    pub fn next(self) -> &'static [ModelStatus] {
        use ModelStatus::*;
        match self {
            Training => &[Active, Failed],
            Active => &[Retired, Failed],
            // A retired model can be put back into service (a rollback)…
            Retired => &[Active],
            // …and a failed one trained again.
            Failed => &[Training],
        }
    }

    /// The statuses a model may be registered with.
    pub const REGISTERED: [ModelStatus; 2] = [ModelStatus::Active, ModelStatus::Training];
}

impl JobStatus {
    /// The statuses a job may move to from this one.
    pub fn next(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Queued => &[Running, Failed, Cancelled],
            Running => &[Completed, Failed, Cancelled],
            Completed | Failed | Cancelled => &[],
        }
    }

    /// The statuses a job may be created with.
    pub const CREATED: [JobStatus; 2] = [JobStatus::Queued, JobStatus::Running];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_lifecycle_allows_only_its_moves() {
        use ModelStatus::*;
        assert_eq!(Training.next(), [Active, Failed]);
        assert_eq!(Active.next(), [Retired, Failed]);
        assert_eq!(Retired.next(), [Active]);
        assert_eq!(Failed.next(), [Training]);
    }

    #[test]
    fn finished_jobs_move_nowhere() {
        use JobStatus::*;
        assert_eq!(Queued.next(), [Running, Failed, Cancelled]);
        assert_eq!(Running.next(), [Completed, Failed, Cancelled]);
        for done in [Completed, Failed, Cancelled] {
            assert!(done.next().is_empty());
        }
    }
}
