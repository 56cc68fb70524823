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

pub mod distribution;
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

/// Which rollup table a branch reads: the hours, or the UTC days summed
/// from them (migration 000015), which every rollup read here has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tier {
    Hours,
    Days,
}

impl Tier {
    /// The table of `rollup` (`mlgate_prediction`, …) at this tier.
    pub(super) fn table(self, rollup: &str) -> String {
        match self {
            Tier::Hours => format!("{rollup}_hours"),
            Tier::Days => format!("{rollup}_days"),
        }
    }

    /// Its time column.
    pub(super) fn time(self) -> &'static str {
        match self {
            Tier::Hours => "hour_start",
            Tier::Days => "day_start",
        }
    }
}

/// A window as whole UTC days (from the day tier), the other whole hours
/// (from the hour rollups) and the rest (from rows).
#[derive(Debug, PartialEq)]
pub(super) struct Split {
    /// `[from, to)` of the whole days, either end open; `None` when the
    /// window holds no whole day (or bucket boundaries cut too many).
    days: Option<TimeRange>,
    /// Whole days read from hours instead (cut by a bucket boundary).
    cut_days: Vec<DateTime<Utc>>,
    /// Ranges `[from, to)` of whole hours outside `days`, or in cut days;
    /// only the outermost ends can be open. Empty: none.
    hours: Vec<TimeRange>,
    /// Whole hours read from rows instead (cut by a bucket boundary).
    cut: Vec<DateTime<Utc>>,
    /// Ranges read from rows, `[from, to)`: the partial hours at the ends
    /// and the cut hours.
    edges: Vec<Edge>,
    /// Predictions without a timestamp count (no window bound was given).
    untimed: bool,
}

/// `[from, to)` of predictions read from rows.
type Edge = (DateTime<Utc>, DateTime<Utc>);

/// A partial hour read as its whole hour from the rollups less the rows of
/// the rest of the hour (`minus`), which is the shorter part.
#[derive(Debug, PartialEq)]
struct Complement {
    hour: DateTime<Utc>,
    minus: Vec<Edge>,
}

impl Split {
    /// How the rows outside the rollups are read: the edges read as they
    /// are, and, for additive measures, the partial hours read as their
    /// hour less the rest of it, where the rest is shorter. A window's start
    /// at :50 then reads ten minutes of rows, not fifty; no partial hour
    /// reads more than half an hour. Cut hours are whole hours split
    /// between buckets: always read as they are.
    fn row_reads(&self, additive: bool) -> (Vec<Edge>, Vec<Complement>) {
        if !additive || !self.cut.is_empty() {
            return (self.edges.clone(), Vec::new());
        }
        let mut edges = Vec::new();
        let mut complements = Vec::new();
        for &(from, to) in &self.edges {
            let hour = floor(from, HOUR);
            let end = hour + HOUR;
            let minus: Vec<Edge> = [(hour, from), (to, end)]
                .into_iter()
                .filter(|(a, b)| a < b)
                .collect();
            let rest = minus
                .iter()
                .fold(TimeDelta::zero(), |sum, (a, b)| sum + (*b - *a));
            if to <= end && rest < to - from {
                complements.push(Complement { hour, minus });
            } else {
                edges.push((from, to));
            }
        }
        (edges, complements)
    }

    /// The window split, with the whole hours that a boundary in
    /// `boundaries` cuts read from rows and the days it cuts read from
    /// hours; `None` when that is more than [`MAX_CUT_HOURS`] hours. Past
    /// [`MAX_CUT_DAYS`] cut days (daily buckets in a zone off UTC), no day
    /// is read from the day tier.
    pub(super) fn cut_at(window: Option<TimeRange>, boundaries: &[DateTime<Utc>]) -> Option<Self> {
        let (whole, mut split) = hours_and_edges(window);
        for &b in boundaries {
            let hour = floor(b, HOUR);
            if hour == b || split.cut.contains(&hour) || !holds(whole, hour) {
                continue;
            }
            if split.cut.len() == MAX_CUT_HOURS {
                return None;
            }
            split.cut.push(hour);
            split.edges.push((hour, hour + HOUR));
        }
        let Some(whole) = whole else {
            return Some(split);
        };
        let from = whole.from.map(|t| ceil(t, DAY));
        let to = whole.to.map(|t| floor(t, DAY));
        if matches!((from, to), (Some(f), Some(t)) if f >= t) {
            split.hours = vec![whole];
            return Some(split);
        }
        let days = TimeRange { from, to };
        for &b in boundaries {
            let day = floor(b, DAY);
            if day == b || split.cut_days.contains(&day) || !holds(Some(days), day) {
                continue;
            }
            if split.cut_days.len() == MAX_CUT_DAYS {
                split.cut_days.clear();
                split.hours = vec![whole];
                return Some(split);
            }
            split.cut_days.push(day);
        }
        split.days = Some(days);
        if let (Some(start), Some(first)) = (whole.from, from) {
            if start < first {
                split.hours.push(TimeRange {
                    from: Some(start),
                    to: Some(first),
                });
            }
        }
        if let (Some(last), Some(end)) = (to, whole.to) {
            if last < end {
                split.hours.push(TimeRange {
                    from: Some(last),
                    to: Some(end),
                });
            }
        }
        for &day in &split.cut_days {
            split.hours.push(TimeRange {
                from: Some(day),
                to: Some(day + DAY),
            });
        }
        Some(split)
    }
}

/// The most UTC days cut by bucket boundaries read from hours; past it, no
/// day tier (daily buckets in a zone off UTC cut every day).
const MAX_CUT_DAYS: usize = 8;

fn holds(range: Option<TimeRange>, t: DateTime<Utc>) -> bool {
    range.is_some_and(|TimeRange { from, to }| {
        from.is_none_or(|f| f <= t) && to.is_none_or(|end| t < end)
    })
}

const HOUR: TimeDelta = TimeDelta::hours(1);
const DAY: TimeDelta = TimeDelta::days(1);

/// `t` rounded down to a whole `step` (UTC).
fn floor(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(step).unwrap_or(t)
}

/// `t` rounded up to a whole `step` (UTC).
fn ceil(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let down = floor(t, step);
    if down == t {
        t
    } else {
        down + step
    }
}

/// The window split with no bucket boundaries.
pub(super) fn split(window: Option<TimeRange>) -> Split {
    Split::cut_at(window, &[]).expect("no boundary cuts an hour")
}

/// The whole hours of `window` (`None`: none), and the split with only its
/// edges (partial hours, untimed) filled in.
fn hours_and_edges(window: Option<TimeRange>) -> (Option<TimeRange>, Split) {
    let TimeRange { from, to } = window.unwrap_or_default();
    let untimed = from.is_none() && to.is_none();
    let mut split = Split {
        days: None,
        cut_days: Vec::new(),
        hours: Vec::new(),
        cut: Vec::new(),
        edges: Vec::new(),
        untimed,
    };
    let first = from.map(|t| ceil(t, HOUR));
    let end = to.map(|t| floor(t, HOUR));
    if let (Some(first), Some(end)) = (first, end) {
        if first >= end {
            if let (Some(f), Some(t)) = (from, to) {
                // Across one hour boundary: a partial hour either side (each
                // may be read as its hour less the rest, see `row_reads`).
                let parts = if first == end {
                    vec![(f, first), (end, t)]
                } else {
                    vec![(f, t)]
                };
                split.edges.extend(parts.into_iter().filter(|(a, b)| a < b));
            }
            return (None, split);
        }
    }
    if let (Some(f), Some(first)) = (from, first) {
        if f < first {
            split.edges.push((f, first));
        }
    }
    if let (Some(end), Some(t)) = (end, to) {
        if end < t {
            split.edges.push((end, t));
        }
    }
    (
        Some(TimeRange {
            from: first,
            to: end,
        }),
        split,
    )
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

/// `column >= from AND column < to`, either bound left out when open.
fn range_condition(sql: &mut Sql, column: &str, range: TimeRange) {
    let mut first = true;
    for (op, bound) in [(">=", range.from), ("<", range.to)] {
        if let Some(bound) = bound {
            if !first {
                sql.push(" AND ");
            }
            first = false;
            sql.push(&format!("{column} {op} ")).bind(bound);
        }
    }
    if first {
        sql.push("TRUE");
    }
}

/// The rollup rows of `tier` in `range`, filtered (unqualified columns),
/// less the days or hours read from a finer tier (`cut`).
fn tier_condition(
    sql: &mut Sql,
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    tier: Tier,
    range: TimeRange,
    cut: &[DateTime<Utc>],
) {
    scope_condition(sql, txn, scope, "");
    let time = tier.time();
    sql.push(" AND ");
    range_condition(sql, time, range);
    if !cut.is_empty() {
        sql.push(&format!(" AND {time} NOT IN ("));
        bind_list(sql, cut);
        sql.push(")");
    }
}

/// The predictions `alias` in `edges` (and untimed ones), filtered.
fn rows_condition(
    sql: &mut Sql,
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    edges: &[Edge],
    untimed: bool,
    alias: &str,
) {
    scope_condition(sql, txn, scope, alias);
    sql.push(" AND (");
    let mut first = true;
    for (from, to) in edges {
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
    if untimed {
        if !first {
            sql.push(" OR ");
        }
        sql.push(&format!("{alias}prediction_timestamp IS NULL"));
    }
    sql.push(")");
}

/// The output columns of an additive reader's branches: the keys it groups
/// by, and the measures summed over them, which a subtracted branch negates.
pub(super) struct Additive<'a> {
    pub keys: &'a [&'a str],
    pub measures: &'a [&'a str],
}

/// Writes the derived table of a rollup query: what `from_rollup` writes
/// for a tier (a select up to its `WHERE`) over the whole days, then over
/// the other whole hours, `UNION ALL` what `from_rows` writes (the same,
/// over predictions `alias`) over the rest, grouped by `rows_group_by`,
/// each only when the window has some. With `additive` columns, a partial
/// hour may be read as its hour less the rows of its rest, negated (see
/// [`Split::row_reads`]); the caller then drops groups that sum to nothing.
/// False when the window has nothing to read.
#[allow(clippy::too_many_arguments)]
fn parts(
    sql: &mut Sql,
    txn: &ScopedTxn,
    scope: &Scope<'_>,
    split: &Split,
    from_rollup: impl Fn(&mut Sql, Tier),
    from_rows: impl Fn(&mut Sql),
    alias: &str,
    rows_group_by: &str,
    additive: Option<Additive<'_>>,
) -> bool {
    let (edges, complements) = split.row_reads(additive.is_some());
    let mut any = false;
    let mut branch = |sql: &mut Sql| {
        if any {
            sql.push(" UNION ALL ");
        }
        any = true;
    };
    // A branch per range: each one index range whatever plan is cached
    // (a generic plan of `OR`ed ranges read the model's every hour).
    let days = split.days.map(|d| (Tier::Days, d, &split.cut_days[..]));
    let hours = split
        .hours
        .iter()
        .map(|h| (Tier::Hours, *h, &split.cut[..]));
    let whole = complements.iter().map(|c| {
        let hour = TimeRange {
            from: Some(c.hour),
            to: Some(c.hour + HOUR),
        };
        (Tier::Hours, hour, &[][..])
    });
    for (tier, range, cut) in days.into_iter().chain(hours).chain(whole) {
        branch(sql);
        from_rollup(sql, tier);
        tier_condition(sql, txn, scope, tier, range, cut);
    }
    if !edges.is_empty() || split.untimed {
        branch(sql);
        from_rows(sql);
        rows_condition(sql, txn, scope, &edges, split.untimed, alias);
        sql.push(" GROUP BY ").push(rows_group_by);
    }
    let minus: Vec<Edge> = complements.into_iter().flat_map(|c| c.minus).collect();
    if let (false, Some(Additive { keys, measures })) = (minus.is_empty(), additive) {
        branch(sql);
        let columns: Vec<String> = keys
            .iter()
            .map(|k| (*k).to_owned())
            .chain(measures.iter().map(|m| format!("-{m} AS {m}")))
            .collect();
        sql.push(&format!("SELECT {} FROM (", columns.join(", ")));
        from_rows(sql);
        rows_condition(sql, txn, scope, &minus, false, alias);
        sql.push(" GROUP BY ").push(rows_group_by).push(") rest");
    }
    any
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

    fn range(from: Option<&str>, to: Option<&str>) -> TimeRange {
        TimeRange {
            from: from.map(at),
            to: to.map(at),
        }
    }

    #[test]
    fn a_window_splits_into_whole_hours_and_partial_ends() {
        let within_a_day = split(w(
            Some("2026-03-01T10:15:00Z"),
            Some("2026-03-01T13:40:00Z"),
        ));
        assert_eq!(
            within_a_day,
            Split {
                days: None,
                cut_days: vec![],
                hours: vec![range(
                    Some("2026-03-01T11:00:00Z"),
                    Some("2026-03-01T13:00:00Z")
                )],
                cut: vec![],
                edges: vec![
                    (at("2026-03-01T10:15:00Z"), at("2026-03-01T11:00:00Z")),
                    (at("2026-03-01T13:00:00Z"), at("2026-03-01T13:40:00Z")),
                ],
                untimed: false,
            }
        );
        // Inside one hour: rows only.
        assert_eq!(
            split(w(
                Some("2026-03-01T10:15:00Z"),
                Some("2026-03-01T10:45:00Z")
            )),
            Split {
                days: None,
                cut_days: vec![],
                hours: vec![],
                cut: vec![],
                edges: vec![(at("2026-03-01T10:15:00Z"), at("2026-03-01T10:45:00Z"))],
                untimed: false
            }
        );
        // Across one boundary, no whole hour: a partial hour either side.
        let across = split(w(
            Some("2026-03-01T10:15:00Z"),
            Some("2026-03-01T11:45:00Z"),
        ));
        assert!(across.hours.is_empty());
        assert_eq!(
            across.edges,
            [
                (at("2026-03-01T10:15:00Z"), at("2026-03-01T11:00:00Z")),
                (at("2026-03-01T11:00:00Z"), at("2026-03-01T11:45:00Z"))
            ]
        );
        assert_eq!(across.row_reads(true).1.len(), 2);
        // Ending on the boundary: one partial hour.
        assert_eq!(
            split(w(
                Some("2026-03-01T10:15:00Z"),
                Some("2026-03-01T11:00:00Z")
            ))
            .edges,
            [(at("2026-03-01T10:15:00Z"), at("2026-03-01T11:00:00Z"))]
        );
    }

    #[test]
    fn whole_days_come_from_the_day_tier_and_the_hours_around_them_from_hours() {
        assert_eq!(
            split(w(
                Some("2026-03-01T10:15:00Z"),
                Some("2026-03-04T13:40:00Z")
            )),
            Split {
                days: Some(range(
                    Some("2026-03-02T00:00:00Z"),
                    Some("2026-03-04T00:00:00Z")
                )),
                cut_days: vec![],
                hours: vec![
                    range(Some("2026-03-01T11:00:00Z"), Some("2026-03-02T00:00:00Z")),
                    range(Some("2026-03-04T00:00:00Z"), Some("2026-03-04T13:00:00Z")),
                ],
                cut: vec![],
                edges: vec![
                    (at("2026-03-01T10:15:00Z"), at("2026-03-01T11:00:00Z")),
                    (at("2026-03-04T13:00:00Z"), at("2026-03-04T13:40:00Z")),
                ],
                untimed: false,
            }
        );
        // Aligned ends need no hours; an open end takes every day that way.
        assert_eq!(
            split(w(Some("2026-03-01T00:00:00Z"), None)),
            Split {
                days: Some(range(Some("2026-03-01T00:00:00Z"), None)),
                cut_days: vec![],
                hours: vec![],
                cut: vec![],
                edges: vec![],
                untimed: false
            }
        );
        assert_eq!(
            split(w(Some("2026-03-01T10:00:00Z"), None)),
            Split {
                days: Some(range(Some("2026-03-02T00:00:00Z"), None)),
                cut_days: vec![],
                hours: vec![range(
                    Some("2026-03-01T10:00:00Z"),
                    Some("2026-03-02T00:00:00Z")
                )],
                cut: vec![],
                edges: vec![],
                untimed: false
            }
        );
        // No window: all days, and predictions without a timestamp.
        assert_eq!(
            split(None),
            Split {
                days: Some(TimeRange::default()),
                cut_days: vec![],
                hours: vec![],
                cut: vec![],
                edges: vec![],
                untimed: true
            }
        );
    }

    #[test]
    fn additive_partial_hours_read_the_shorter_part_of_their_hour() {
        let window = split(w(
            Some("2026-03-01T10:50:00Z"),
            Some("2026-03-01T13:40:00Z"),
        ));
        // Ten minutes at the start are read; forty at the end are the
        // hour less its last twenty.
        assert_eq!(
            window.row_reads(true),
            (
                vec![(at("2026-03-01T10:50:00Z"), at("2026-03-01T11:00:00Z"))],
                vec![Complement {
                    hour: at("2026-03-01T13:00:00Z"),
                    minus: vec![(at("2026-03-01T13:40:00Z"), at("2026-03-01T14:00:00Z"))],
                }]
            )
        );
        assert_eq!(window.row_reads(false), (window.edges.clone(), vec![]));
        // Inside one hour: the rest on both sides.
        let inside = split(w(
            Some("2026-03-01T10:05:00Z"),
            Some("2026-03-01T10:55:00Z"),
        ));
        assert_eq!(
            inside.row_reads(true).1,
            [Complement {
                hour: at("2026-03-01T10:00:00Z"),
                minus: vec![
                    (at("2026-03-01T10:00:00Z"), at("2026-03-01T10:05:00Z")),
                    (at("2026-03-01T10:55:00Z"), at("2026-03-01T11:00:00Z"))
                ],
            }]
        );
        // Halves: read as they are.
        let half = split(w(
            Some("2026-03-01T10:30:00Z"),
            Some("2026-03-01T12:30:00Z"),
        ));
        assert_eq!(half.row_reads(true), (half.edges.clone(), vec![]));
        // Cut hours are split between buckets: never complemented.
        let cut = Split::cut_at(
            w(Some("2026-03-01T00:10:00Z"), Some("2026-03-03T00:00:00Z")),
            &[at("2026-03-01T18:30:00Z")],
        )
        .unwrap();
        assert_eq!(cut.row_reads(true), (cut.edges.clone(), vec![]));
    }

    #[test]
    fn hours_cut_by_a_bucket_boundary_are_read_from_rows() {
        let window = w(Some("2026-03-01T00:00:00Z"), Some("2026-03-03T00:00:00Z"));
        // Days in Asia/Kolkata start at 18:30 UTC: that hour is cut, and
        // its day is read from hours.
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
        assert_eq!(
            cut.cut_days,
            [at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z")]
        );
        assert_eq!(
            cut.hours,
            [
                range(Some("2026-03-01T00:00:00Z"), Some("2026-03-02T00:00:00Z")),
                range(Some("2026-03-02T00:00:00Z"), Some("2026-03-03T00:00:00Z"))
            ]
        );
        // Boundaries on the hour cut no hour; at midnight, no day.
        let whole = Split::cut_at(window, &[at("2026-03-02T00:00:00Z")]).unwrap();
        assert!(whole.cut.is_empty() && whole.edges.is_empty() && whole.cut_days.is_empty());
        let noon = Split::cut_at(window, &[at("2026-03-02T12:00:00Z")]).unwrap();
        assert!(noon.cut.is_empty() && noon.cut_days == [at("2026-03-02T00:00:00Z")]);
        // Too many cut days (daily buckets off UTC): hours only.
        let month = w(Some("2026-03-01T00:00:00Z"), Some("2026-03-31T00:00:00Z"));
        let evenings: Vec<_> = (0..30)
            .map(|d| at("2026-03-01T22:00:00Z") + TimeDelta::days(d))
            .collect();
        let hourly = Split::cut_at(month, &evenings).unwrap();
        assert_eq!(hourly.days, None);
        assert_eq!(
            hourly.hours,
            [range(
                Some("2026-03-01T00:00:00Z"),
                Some("2026-03-31T00:00:00Z")
            )]
        );
        // Too many cut hours (hourly buckets in a half-hour zone): scanned.
        let week = w(Some("2026-03-01T00:00:00Z"), Some("2026-03-08T00:00:00Z"));
        let hours: Vec<_> = (0..=MAX_CUT_HOURS as i64)
            .map(|h| at("2026-03-01T00:30:00Z") + TimeDelta::hours(h))
            .collect();
        assert!(Split::cut_at(week, &hours).is_none());
        assert!(Split::cut_at(week, &hours[1..]).is_some());
    }
}
