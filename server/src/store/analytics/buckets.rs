//! Calendar buckets in a time zone: hour, day, ISO week (from Monday) or
//! month, with the boundaries computed here (chrono-tz) so that both
//! backends bucket identically and days across a DST change last 23 or 25
//! hours as they do on the wall clock.

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, TimeDelta, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

use crate::error::ApiResult;
use crate::store::filter::invalid;
use crate::store::TimeRange;

/// The most buckets one request may ask for (e.g. 41 days of hours).
pub const MAX_BUCKETS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BucketUnit {
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucketing {
    pub unit: BucketUnit,
    pub timezone: Tz,
}

/// One bucket: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Bucketing {
    /// `timezone` is an IANA name such as `Europe/Berlin` (default `UTC`).
    pub fn new(unit: BucketUnit, timezone: Option<&str>, field: &str) -> ApiResult<Self> {
        let name = timezone.unwrap_or("UTC");
        let timezone = name.parse::<Tz>().map_err(|_| {
            invalid(
                field,
                format!(
                    "`{field}`: {name:?} is not an IANA time zone name (e.g. \"Europe/Berlin\")"
                ),
            )
        })?;
        Ok(Self { unit, timezone })
    }

    /// The buckets of `window`, which must be bounded at both ends;
    /// `bounds` names the arguments that bound it, for the error.
    pub fn buckets_in(
        &self,
        window: TimeRange,
        field: &str,
        bounds: &str,
    ) -> ApiResult<Vec<Bucket>> {
        let (Some(from), Some(to)) = (window.from, window.to) else {
            return Err(invalid(
                field,
                format!("`{field}` needs a bounded window: give both {bounds}"),
            ));
        };
        self.buckets(from, to, field)
    }

    /// The buckets covering `[from, to)`: the first starts at or before
    /// `from`, the last ends at or after `to`. Refused above [`MAX_BUCKETS`].
    pub fn buckets(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        field: &str,
    ) -> ApiResult<Vec<Bucket>> {
        if from >= to {
            return Err(invalid(field, format!("`{field}`: from must be before to")));
        }
        let mut starts = Vec::new();
        let mut start = self.floor(from);
        while start < to {
            if starts.len() == MAX_BUCKETS {
                return Err(invalid(
                    field,
                    format!(
                        "`{field}`: more than {MAX_BUCKETS} buckets; use a larger unit or a shorter window"
                    ),
                ));
            }
            starts.push(start);
            start = self.next(start);
        }
        Ok(starts
            .iter()
            .map(|&start| Bucket {
                start,
                end: self.next(start),
            })
            .collect())
    }

    /// The start of the bucket holding `instant`.
    fn floor(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let local = instant.with_timezone(&self.timezone).naive_local();
        match self.unit {
            // An hour is floored on the absolute time line, so the repeated
            // hour of a DST fall-back is its own bucket.
            BucketUnit::Hour => {
                let into_hour = TimeDelta::seconds(i64::from(local.minute() * 60 + local.second()))
                    + TimeDelta::nanoseconds(i64::from(local.nanosecond()));
                instant - into_hour
            }
            BucketUnit::Day => self.at_local(midnight(local.date())),
            BucketUnit::Week => {
                let monday =
                    local.date() - Days::new(u64::from(local.weekday().num_days_from_monday()));
                self.at_local(midnight(monday))
            }
            BucketUnit::Month => {
                let first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1)
                    .expect("the first of a month exists");
                self.at_local(midnight(first))
            }
        }
    }

    /// The start of the bucket after the one starting at `start`.
    fn next(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        let local = start.with_timezone(&self.timezone).naive_local();
        match self.unit {
            BucketUnit::Hour => start + TimeDelta::hours(1),
            BucketUnit::Day => self.at_local(midnight(local.date() + Days::new(1))),
            BucketUnit::Week => self.at_local(midnight(local.date() + Days::new(7))),
            BucketUnit::Month => self.at_local(midnight(
                local.date().with_day(1).expect("day 1") + Months::new(1),
            )),
        }
    }

    /// A wall-clock time as an instant: the earlier one when the clock
    /// repeats it, the first existing one after it when the clock skips it.
    fn at_local(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut candidate = local;
        loop {
            match self.timezone.from_local_datetime(&candidate) {
                LocalResult::Single(t) => return t.with_timezone(&Utc),
                LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
                LocalResult::None => candidate += TimeDelta::minutes(15),
            }
        }
    }
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_hms_opt(0, 0, 0).expect("midnight exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn starts(unit: BucketUnit, tz: &str, from: &str, to: &str) -> Vec<String> {
        Bucketing::new(unit, Some(tz), "bucket")
            .unwrap()
            .buckets(utc(from), utc(to), "bucket")
            .unwrap()
            .iter()
            .map(|b| b.start.to_rfc3339())
            .collect()
    }

    #[test]
    fn days_follow_the_wall_clock_across_dst() {
        // New York moved its clocks forward on 2026-03-08 (a 23-hour day).
        assert_eq!(
            starts(
                BucketUnit::Day,
                "America/New_York",
                "2026-03-07T12:00:00Z",
                "2026-03-09T06:00:00Z"
            ),
            [
                "2026-03-07T05:00:00+00:00",
                "2026-03-08T05:00:00+00:00",
                "2026-03-09T04:00:00+00:00"
            ]
        );
        // …and back on 2026-11-01 (a 25-hour day).
        let days = Bucketing::new(BucketUnit::Day, Some("America/New_York"), "b")
            .unwrap()
            .buckets(
                utc("2026-11-01T04:00:00Z"),
                utc("2026-11-02T00:00:00Z"),
                "b",
            )
            .unwrap();
        assert_eq!(days[0].start, utc("2026-11-01T04:00:00Z"));
        assert_eq!(days[0].end - days[0].start, TimeDelta::hours(25));
    }

    #[test]
    fn the_repeated_hour_of_a_fall_back_is_its_own_bucket() {
        assert_eq!(
            starts(
                BucketUnit::Hour,
                "America/New_York",
                "2026-11-01T05:10:00Z",
                "2026-11-01T07:00:00Z"
            ),
            ["2026-11-01T05:00:00+00:00", "2026-11-01T06:00:00+00:00"]
        );
        // Half-hour offsets bucket on the local hour.
        assert_eq!(
            starts(
                BucketUnit::Hour,
                "Asia/Kolkata",
                "2026-01-01T00:00:00Z",
                "2026-01-01T01:00:00Z"
            ),
            ["2025-12-31T23:30:00+00:00", "2026-01-01T00:30:00+00:00"]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-01-01 is a Thursday.
        assert_eq!(
            starts(
                BucketUnit::Week,
                "UTC",
                "2026-01-01T10:00:00Z",
                "2026-01-06T00:00:00Z"
            ),
            ["2025-12-29T00:00:00+00:00", "2026-01-05T00:00:00+00:00"]
        );
        assert_eq!(
            starts(
                BucketUnit::Month,
                "Europe/Berlin",
                "2026-01-31T23:30:00Z",
                "2026-03-01T00:00:00Z"
            ),
            ["2026-01-31T23:00:00+00:00", "2026-02-28T23:00:00+00:00"]
        );
    }

    #[test]
    fn bad_zones_reversed_windows_and_too_many_buckets_are_refused() {
        assert!(Bucketing::new(BucketUnit::Day, Some("Mars/Olympus"), "b").is_err());
        let hours = Bucketing::new(BucketUnit::Hour, None, "b").unwrap();
        assert!(hours
            .buckets(
                utc("2026-01-02T00:00:00Z"),
                utc("2026-01-01T00:00:00Z"),
                "b"
            )
            .is_err());
        assert!(hours
            .buckets(
                utc("2026-01-01T00:00:00Z"),
                utc("2026-03-01T00:00:00Z"),
                "b"
            )
            .is_err());
        assert_eq!(
            hours
                .buckets(
                    utc("2026-01-01T00:00:00Z"),
                    utc("2026-02-11T16:00:00Z"),
                    "b"
                )
                .unwrap()
                .len(),
            MAX_BUCKETS
        );
    }
}
