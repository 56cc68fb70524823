//! Analytics on PostgreSQL from the hourly rollups that triggers keep
//! (migrations `000010` and `000013`), so that a dashboard's answer costs the
//! hours of its window instead of every prediction in it.
//!
//! A window rarely starts and ends on the hour: its whole UTC hours come
//! from the rollups and the partial hours at either end from the rows, so
//! additive measures, minima and maxima are exact. So are hours a calendar
//! bucket boundary cuts (a time zone with a half-hour offset): they are read
//! from the rows too. Each reader falls back to scanning when a request
//! asks for something the rollups do not hold (a filter on resources, a
//! threshold between bins, …); see [`eligible`] in each.

mod outcomes;
mod performance;
mod shap;
mod stats;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::sql::Sql;
use crate::db::ScopedTxn;
use crate::domain::{RemediationStatus, RiskLevel, Vocabulary};
use crate::error::ApiResult;
use crate::store::predictions::{self, PredictionFilter};
use crate::store::TimeRange;

pub use outcomes::{
    outcome_sums, threshold_bin, BinOutcomes, KindSums, ModelOutcomes, OutcomeSums,
};
pub use performance::{prediction_measures, EXACT_PERCENTILE_ROWS};
pub use shap::importance;
pub use stats::{prediction_stats, GroupColumn};

/// The most hours cut by bucket boundaries read from rows; past it, a
/// request is answered by scanning (e.g. hourly buckets in a half-hour zone).
const MAX_CUT_HOURS: usize = 64;

/// Whose predictions are measured.
#[derive(Clone, Copy, Default)]
pub struct Scope<'a> {
    /// `None`: every model of the tenant.
    pub model_ids: Option<&'a [String]>,
    pub versions: Option<&'a [String]>,
    /// Only for `mlgate_prediction_hours` (and rows): the other rollups are
    /// not kept per risk level or remediation status.
    pub risk_levels: Option<&'a [RiskLevel]>,
    pub remediation_statuses: Option<&'a [RemediationStatus]>,
    pub window: Option<TimeRange>,
}

/// What a rollup keeps apart, beside models, versions and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// Only models, versions and time (SHAP sums, feedback bins).
    Hours,
    /// Also risk levels and remediation statuses (prediction hours).
    Groups,
}

impl<'a> Scope<'a> {
    /// The scope of `filter` when the rollups can answer it: reading them
    /// (PostgreSQL, not turned off) and a filter on nothing they do not
    /// keep. The filter is checked (list lengths, reversed windows) as the
    /// scan would check it, so that both paths refuse alike.
    pub fn for_filter(
        txn: &ScopedTxn,
        filter: &'a PredictionFilter,
        kept: Kept,
    ) -> ApiResult<Option<Self>> {
        let PredictionFilter {
            model_ids,
            model_versions,
            risk_levels,
            remediation_statuses,
            predicted_at,
            prediction_ids: None,
            resource_ids: None,
            resource_id_prefix: None,
            violation_probability: None,
            confidence_score: None,
            risk_score: None,
            time_to_violation_hours: None,
            has_feedback: None,
        } = filter
        else {
            return Ok(None);
        };
        let grouped = risk_levels.is_some() || remediation_statuses.is_some();
        if !txn.reads_rollups() || (grouped && kept == Kept::Hours) {
            return Ok(None);
        }
        predictions::base(txn, filter)?;
        Ok(Some(Self {
            model_ids: model_ids.as_deref(),
            versions: model_versions.as_deref(),
            risk_levels: risk_levels.as_deref(),
            remediation_statuses: remediation_statuses.as_deref(),
            window: *predicted_at,
        }))
    }
}

/// A window as whole hours (from the rollups) and the rest (from rows).
#[derive(Debug, PartialEq)]
pub(super) struct Split {
    /// `[from, to)` of the whole hours, either end open; `None` when the
    /// window holds no whole hour.
    hours: Option<TimeRange>,
    /// Whole hours read from rows instead (cut by a bucket boundary).
    cut: Vec<DateTime<Utc>>,
    /// Ranges read from rows, `[from, to)`: the partial hours at the ends
    /// and the cut hours.
    edges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Predictions without a timestamp count (no window bound was given).
    untimed: bool,
}

impl Split {
    /// Whether some predictions are read from rows (partial hours, untimed).
    fn reads_rows(&self) -> bool {
        !self.edges.is_empty() || self.untimed
    }

    /// The window split, with the whole hours that a boundary in
    /// `boundaries` cuts read from rows; `None` when that is more than
    /// [`MAX_CUT_HOURS`] hours.
    pub(super) fn cut_at(window: Option<TimeRange>, boundaries: &[DateTime<Utc>]) -> Option<Self> {
        let mut split = split(window);
        for &b in boundaries {
            let hour = floor_hour(b);
            if hour == b || split.cut.contains(&hour) || !split.holds_hour(hour) {
                continue;
            }
            if split.cut.len() == MAX_CUT_HOURS {
                return None;
            }
            split.cut.push(hour);
            split.edges.push((hour, hour + TimeDelta::hours(1)));
        }
        Some(split)
    }

    fn holds_hour(&self, hour: DateTime<Utc>) -> bool {
        self.hours.is_some_and(|TimeRange { from, to }| {
            from.is_none_or(|f| f <= hour) && to.is_none_or(|t| hour < t)
        })
    }
}

fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

fn ceil_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = floor_hour(t);
    if floor == t {
        t
    } else {
        floor + TimeDelta::hours(1)
    }
}

pub(super) fn split(window: Option<TimeRange>) -> Split {
    let TimeRange { from, to } = window.unwrap_or_default();
    let untimed = from.is_none() && to.is_none();
    let first = from.map(ceil_hour);
    let end = to.map(floor_hour);
    if let (Some(first), Some(end)) = (first, end) {
        if first >= end {
            let edges = match (from, to) {
                (Some(f), Some(t)) if f < t => vec![(f, t)],
                _ => Vec::new(),
            };
            return Split {
                hours: None,
                cut: Vec::new(),
                edges,
                untimed,
            };
        }
    }
    let mut edges = Vec::new();
    if let (Some(f), Some(first)) = (from, first) {
        if f < first {
            edges.push((f, first));
        }
    }
    if let (Some(end), Some(t)) = (end, to) {
        if end < t {
            edges.push((end, t));
        }
    }
    Split {
        hours: Some(TimeRange {
            from: first,
            to: end,
        }),
        cut: Vec::new(),
        edges,
        untimed,
    }
}

/// `, `-separated placeholders for `values`, or `NULL` when there are none
/// (so that `IN (…)` matches nothing).
fn bind_list<T: Clone + Into<sea_orm::Value>>(sql: &mut Sql, values: &[T]) {
    if values.is_empty() {
        sql.push("NULL");
    }
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v.clone());
    }
}

/// `tenant_id = … [AND model_id IN (…)] [AND model_version IN (…)] …`,
/// columns qualified by `alias` (with its dot) when given.
fn scope_condition(sql: &mut Sql, txn: &ScopedTxn, scope: &Scope<'_>, alias: &str) {
    sql.push(&format!("{alias}tenant_id = "))
        .bind(txn.tenant().to_owned());
    if let Some(ids) = scope.model_ids {
        sql.push(&format!(" AND {alias}model_id IN ("));
        bind_list(sql, ids);
        sql.push(")");
    }
    if let Some(versions) = scope.versions {
        sql.push(&format!(" AND {alias}model_version IN ("));
        bind_list(sql, versions);
        sql.push(")");
    }
    if let Some(levels) = scope.risk_levels {
        let levels: Vec<String> = levels.iter().map(|l| l.as_db().to_owned()).collect();
        sql.push(&format!(" AND {alias}risk_level IN ("));
        bind_list(sql, &levels);
        sql.push(")");
    }
    if let Some(statuses) = scope.remediation_statuses {
        let statuses: Vec<String> = statuses.iter().map(|s| s.as_db().to_owned()).collect();
        sql.push(&format!(" AND {alias}remediation_status IN ("));
        bind_list(sql, &statuses);
        sql.push(")");
    }
}

/// The rollup rows of the whole hours, filtered (unqualified columns).
fn hours_condition(sql: &mut Sql, txn: &ScopedTxn, scope: &Scope<'_>, split: &Split) {
    scope_condition(sql, txn, scope, "");
    if let Some(TimeRange { from, to }) = split.hours {
        if let Some(from) = from {
            sql.push(" AND hour_start >= ").bind(from);
        }
        if let Some(to) = to {
            sql.push(" AND hour_start < ").bind(to);
        }
    }
    if !split.cut.is_empty() {
        sql.push(" AND hour_start NOT IN (");
        bind_list(sql, &split.cut);
        sql.push(")");
    }
}

/// The predictions `alias` of the partial and cut hours (and untimed
/// ones), filtered.
fn edges_condition(sql: &mut Sql, txn: &ScopedTxn, scope: &Scope<'_>, split: &Split, alias: &str) {
    scope_condition(sql, txn, scope, alias);
    sql.push(" AND (");
    let mut first = true;
    for (from, to) in &split.edges {
        if !first {
            sql.push(" OR ");
        }
        first = false;
        sql.push(&format!("({alias}prediction_timestamp >= "))
            .bind(*from)
            .push(&format!(" AND {alias}prediction_timestamp < "))
            .bind(*to)
            .push(")");
    }
    if split.untimed {
        if !first {
            sql.push(" OR ");
        }
        sql.push(&format!("{alias}prediction_timestamp IS NULL"));
    }
    sql.push(")");
}

/// Writes the derived table of a rollup query: what `from_hours` writes (a
/// select up to its `WHERE`) over the whole hours, `UNION ALL` what
/// `from_rows` writes (the same, over predictions `alias`) over the rest, grouped by
/// `rows_group_by`, each only when the window has some. False when it has
/// neither (nothing to read).
#[allow(clippy::too_many_arguments)]
fn parts(
    sql: &mut Sql,
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    split: &Split,
    from_hours: impl FnOnce(&mut Sql),
    from_rows: impl FnOnce(&mut Sql),
    alias: &str,
    rows_group_by: &str,
) -> bool {
    if split.hours.is_some() {
        from_hours(sql);
        hours_condition(sql, txn, scope, split);
        if split.reads_rows() {
            sql.push(" UNION ALL ");
        }
    }
    if split.reads_rows() {
        from_rows(sql);
        edges_condition(sql, txn, scope, split, alias);
        sql.push(" GROUP BY ").push(rows_group_by);
    }
    split.hours.is_some() || split.reads_rows()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn w(from: Option<&str>, to: Option<&str>) -> Option<TimeRange> {
        Some(TimeRange {
            from: from.map(at),
            to: to.map(at),
        })
    }

    #[test]
    fn a_window_splits_into_whole_hours_and_partial_ends() {
        assert_eq!(
            split(w(
                Some("2026-03-01T10:15:00Z"),
                Some("2026-03-01T13:40:00Z")
            )),
            Split {
                hours: Some(TimeRange {
                    from: Some(at("2026-03-01T11:00:00Z")),
                    to: Some(at("2026-03-01T13:00:00Z"))
                }),
                cut: vec![],
                edges: vec![
                    (at("2026-03-01T10:15:00Z"), at("2026-03-01T11:00:00Z")),
                    (at("2026-03-01T13:00:00Z"), at("2026-03-01T13:40:00Z")),
                ],
                untimed: false,
            }
        );
        // Aligned ends need no rows; an open end takes every hour that way.
        assert_eq!(
            split(w(Some("2026-03-01T10:00:00Z"), None)),
            Split {
                hours: Some(TimeRange {
                    from: Some(at("2026-03-01T10:00:00Z")),
                    to: None
                }),
                cut: vec![],
                edges: vec![],
                untimed: false
            }
        );
        // Inside one hour: rows only.
        assert_eq!(
            split(w(
                Some("2026-03-01T10:15:00Z"),
                Some("2026-03-01T10:45:00Z")
            )),
            Split {
                hours: None,
                cut: vec![],
                edges: vec![(at("2026-03-01T10:15:00Z"), at("2026-03-01T10:45:00Z"))],
                untimed: false
            }
        );
        // Across one boundary, no whole hour.
        assert_eq!(
            split(w(
                Some("2026-03-01T10:15:00Z"),
                Some("2026-03-01T11:45:00Z")
            ))
            .hours,
            None
        );
        // No window: all hours, and predictions without a timestamp.
        assert_eq!(
            split(None),
            Split {
                hours: Some(TimeRange::default()),
                cut: vec![],
                edges: vec![],
                untimed: true
            }
        );
    }

    #[test]
    fn hours_cut_by_a_bucket_boundary_are_read_from_rows() {
        let window = w(Some("2026-03-01T00:00:00Z"), Some("2026-03-03T00:00:00Z"));
        // Days in Asia/Kolkata start at 18:30 UTC: that hour is cut.
        let cut = Split::cut_at(
            window,
            &[
                at("2026-02-28T18:30:00Z"),
                at("2026-03-01T18:30:00Z"),
                at("2026-03-02T18:30:00Z"),
            ],
        )
        .unwrap();
        assert_eq!(
            cut.cut,
            [at("2026-03-01T18:00:00Z"), at("2026-03-02T18:00:00Z")]
        );
        assert_eq!(
            cut.edges,
            [
                (at("2026-03-01T18:00:00Z"), at("2026-03-01T19:00:00Z")),
                (at("2026-03-02T18:00:00Z"), at("2026-03-02T19:00:00Z"))
            ]
        );
        // Boundaries on the hour cut nothing.
        let whole = Split::cut_at(window, &[at("2026-03-02T00:00:00Z")]).unwrap();
        assert!(whole.cut.is_empty() && whole.edges.is_empty());
        // Too many cut hours (hourly buckets in a half-hour zone): scanned.
        let week = w(Some("2026-03-01T00:00:00Z"), Some("2026-03-08T00:00:00Z"));
        let hours: Vec<_> = (0..=MAX_CUT_HOURS as i64)
            .map(|h| at("2026-03-01T00:30:00Z") + TimeDelta::hours(h))
            .collect();
        assert!(Split::cut_at(week, &hours).is_none());
        assert!(Split::cut_at(week, &hours[1..]).is_some());
    }
}
