//! The domain's vocabularies and lifecycles, typed. Depends on nothing else
//! in the crate: the schema, the store and the write side all speak these.

pub mod drift;
pub mod explanation;
mod lifecycle;
mod vocabulary;

use vocabulary::vocabulary;
pub use vocabulary::Vocabulary;

vocabulary!(
    /// Where a model is in its lifecycle (see [`ModelStatus::next`]).
    ModelStatus {
        Active => "active",
        Training => "training",
        Retired => "retired",
        Failed => "failed",
    }
);

vocabulary!(
    /// How bad a predicted violation would be.
    RiskLevel {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
    }
);

vocabulary!(
    /// Where the fix for a predicted violation stands.
    RemediationStatus {
        Pending => "pending",
        InProgress => "in_progress",
        Completed => "completed",
        Failed => "failed",
    }
);

vocabulary!(
    /// What a reviewer said about a prediction.
    FeedbackType {
        Correct => "correct",
        Incorrect => "incorrect",
        FalsePositive => "false_positive",
        FalseNegative => "false_negative",
    }
);

vocabulary!(
    /// What the feedback did to the model.
    ImpactOnModel {
        RetrainTriggered => "retrain_triggered",
        WeightAdjusted => "weight_adjusted",
        Ignored => "ignored",
    }
);

vocabulary!(
    /// Where a training job stands (see [`JobStatus::next`]).
    JobStatus {
        Queued => "queued",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

vocabulary!(
    /// Why a training job was started.
    TriggerReason {
        Scheduled => "scheduled",
        DriftDetected => "drift_detected",
        Manual => "manual",
        FeedbackThreshold => "feedback_threshold",
    }
);

vocabulary!(
    /// What a feature set describes.
    FeatureType {
        Configuration => "configuration",
        Temporal => "temporal",
        Contextual => "contextual",
        Policy => "policy",
    }
);

vocabulary!(
    /// What drifted.
    DriftType {
        Data => "data",
        Concept => "concept",
        Prediction => "prediction",
    }
);

vocabulary!(
    /// Severity of a drift alert, in rising order (`Ord` follows it).
    AlertLevel {
        Info => "info",
        Warning => "warning",
        Critical => "critical",
    }
);
