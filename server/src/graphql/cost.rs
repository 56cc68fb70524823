//! What an analytics field may return, for the complexity limit: a list's
//! cost is its page size times one item's (see `common::page_complexity`);
//! an aggregate's is the groups, features or models it may answer with
//! times one of those. Estimates are upper bounds computed from the
//! arguments alone (nothing is read), so an amplifying request — many
//! aliases of a large grouping, say — is refused before anything runs.

use chrono::{DateTime, Duration, Utc};

use super::analytics::{BucketInput, BucketUnit, PredictionGroupBy};
use super::common::TimeRange;
use super::models::ModelFilter;
use super::predictions::PredictionFilter;
use crate::store::analytics::buckets::MAX_BUCKETS;
use crate::store::analytics::performance::MAX_MODELS;
use crate::store::analytics::stats::MAX_GROUPS;

/// Drift types in the vocabulary (`data`, `concept`, `prediction`).
const DRIFT_TYPES: usize = 3;
/// Risk levels and remediation statuses, with "none" for a null.
const RISK_LEVELS: usize = 5;
const REMEDIATION_STATUSES: usize = 5;

/// The most calendar buckets of `unit` between `from` and `to` (local days
/// can be 23 hours, a fall-back hour is a bucket of its own): at least one,
/// at most what the store accepts.
fn buckets(
    bucket: Option<&BucketInput>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> usize {
    let Some(bucket) = bucket else { return 1 };
    let (Some(from), Some(to)) = (from, to) else {
        // Refused when the store sees it; costs nothing.
        return 1;
    };
    let shortest = match bucket.unit {
        BucketUnit::Hour => Duration::hours(1),
        BucketUnit::Day => Duration::hours(23),
        BucketUnit::Week => Duration::days(7) - Duration::hours(1),
        BucketUnit::Month => Duration::days(28) - Duration::hours(1),
    };
    let span = (to - from).num_seconds().max(0) as u64;
    let count = span.div_ceil(shortest.num_seconds() as u64) as usize + 2;
    count.clamp(1, MAX_BUCKETS)
}

/// The later of two optional starts, the earlier of two optional ends.
fn narrower(
    a: Option<DateTime<Utc>>,
    b: Option<DateTime<Utc>>,
    pick: fn(DateTime<Utc>, DateTime<Utc>) -> DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// `predictionStats`: groups (each dimension's values, known for closed
/// vocabularies and for ids the filter lists, else the group cap) times
/// buckets, at most the group cap, times one group.
pub fn prediction_stats(
    filter: &Option<PredictionFilter>,
    group_by: &Option<Vec<PredictionGroupBy>>,
    bucket: &Option<BucketInput>,
    from: &Option<DateTime<Utc>>,
    to: &Option<DateTime<Utc>>,
    child: usize,
) -> usize {
    let listed = |ids: Option<&Vec<String>>| ids.map_or(MAX_GROUPS, |ids| ids.len().max(1));
    let mut dimensions: Vec<PredictionGroupBy> = Vec::new();
    for dimension in group_by.iter().flatten() {
        if !dimensions.contains(dimension) {
            dimensions.push(*dimension);
        }
    }
    let mut groups: usize = 1;
    for dimension in dimensions {
        let values = match dimension {
            PredictionGroupBy::RiskLevel => filter
                .as_ref()
                .and_then(|f| f.risk_levels.as_ref())
                .map_or(RISK_LEVELS, |levels| levels.len().max(1)),
            PredictionGroupBy::RemediationStatus => filter
                .as_ref()
                .and_then(|f| f.remediation_statuses.as_ref())
                .map_or(REMEDIATION_STATUSES, |statuses| statuses.len().max(1)),
            PredictionGroupBy::Model => listed(filter.as_ref().and_then(|f| f.model_ids.as_ref())),
            PredictionGroupBy::ModelVersion => {
                listed(filter.as_ref().and_then(|f| f.model_versions.as_ref()))
            }
            PredictionGroupBy::Resource => {
                listed(filter.as_ref().and_then(|f| f.resource_ids.as_ref()))
            }
        };
        groups = groups.saturating_mul(values);
    }
    let from = narrower(*from, filter.as_ref().and_then(|f| f.from), std::cmp::max);
    let to = narrower(*to, filter.as_ref().and_then(|f| f.to), std::cmp::min);
    let groups = groups
        .saturating_mul(buckets(bucket.as_ref(), from, to))
        .min(MAX_GROUPS);
    1 + groups.saturating_mul(child.max(1))
}

/// `shapImportance`: `top` features (default 10).
pub fn shap_importance(top: &Option<i32>, child: usize) -> usize {
    let top = top.unwrap_or(super::analytics::DEFAULT_TOP_FEATURES).max(1) as usize;
    1 + top
        .min(super::analytics::MAX_TOP_FEATURES as usize)
        .saturating_mul(child.max(1))
}

/// `driftAnalysis`: each signal's bins and statistics.
pub fn drift_analysis(
    signals: &[super::analytics::DriftSignal],
    shap_features: &[String],
    child: usize,
) -> usize {
    let signals = signals.len() + shap_features.len().min(20);
    1 + signals.max(1).saturating_mul(child.max(1))
}

/// `modelPerformance`: the models the filter lists, else the model cap.
pub fn model_performance(filter: &Option<ModelFilter>, child: usize) -> usize {
    let models = filter
        .as_ref()
        .and_then(|f| f.model_ids.as_ref())
        .map_or(MAX_MODELS, |ids| ids.len().clamp(1, MAX_MODELS));
    1 + models.saturating_mul(child.max(1))
}

/// `driftSummary`: each drift type, with a trend of as many buckets as the
/// window holds.
pub fn drift_summary(
    window: &Option<TimeRange>,
    bucket: &Option<BucketInput>,
    child: usize,
) -> usize {
    let (from, to) = window.as_ref().map_or((None, None), |w| (w.from, w.to));
    let buckets = buckets(bucket.as_ref(), from, to);
    1 + DRIFT_TYPES
        .saturating_mul(buckets)
        .saturating_mul(child.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> Option<DateTime<Utc>> {
        Some(
            DateTime::parse_from_rfc3339(&format!("2026-03-{d:02}T00:00:00Z"))
                .unwrap()
                .into(),
        )
    }

    fn bucket(unit: BucketUnit) -> Option<BucketInput> {
        Some(BucketInput {
            unit,
            timezone: "UTC".into(),
        })
    }

    #[test]
    fn stats_count_groups_times_buckets() {
        // Risk levels per day over 30 days: 5 × (720 h / 23 h, rounded up, + 2).
        let risk = Some(vec![PredictionGroupBy::RiskLevel]);
        assert_eq!(
            prediction_stats(&None, &risk, &bucket(BucketUnit::Day), &day(1), &day(31), 2),
            1 + 5 * 34 * 2
        );
        // An open dimension may reach the group cap.
        let resources = Some(vec![PredictionGroupBy::Resource]);
        assert_eq!(
            prediction_stats(&None, &resources, &None, &None, &None, 3),
            1 + MAX_GROUPS * 3
        );
        // Unless the filter lists its values.
        let filter = Some(PredictionFilter {
            resource_ids: Some(vec!["a".into(), "b".into()]),
            ..Default::default()
        });
        assert_eq!(
            prediction_stats(&filter, &resources, &None, &None, &None, 3),
            1 + 2 * 3
        );
        // Without groups or buckets: one group.
        assert_eq!(prediction_stats(&None, &None, &None, &None, &None, 4), 5);
    }

    #[test]
    fn other_aggregates() {
        assert_eq!(shap_importance(&None, 4), 41);
        assert_eq!(shap_importance(&Some(500), 4), 2001);
        assert_eq!(model_performance(&None, 10), 1 + MAX_MODELS * 10);
        let window = Some(TimeRange {
            from: day(1),
            to: day(3),
        });
        assert_eq!(
            drift_summary(&window, &bucket(BucketUnit::Hour), 2),
            1 + 3 * (48 + 2) * 2
        );
    }
}
