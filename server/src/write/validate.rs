//! Input checks: every problem of an input collected before anything is
//! written, then refused at once.

use std::collections::HashMap;

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde_json::Value as Json;

use super::Writer;
use crate::error::{ApiError, ApiResult, InputProblem, Refusal};
use crate::identity::can::Capability;

/// Collects every problem of an input before anything is written.
#[derive(Debug, Default)]
pub struct Checker {
    problems: Vec<InputProblem>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks for a single input object at `path` (e.g. `input`).
    pub fn object(&mut self, path: &str) -> Check<'_> {
        Check {
            problems: &mut self.problems,
            path: path.to_owned(),
            index: None,
            id: None,
        }
    }

    /// Checks for item `index` of a list input at `path`, known by `id`.
    pub fn item(&mut self, path: &str, index: usize, id: Option<&str>) -> Check<'_> {
        Check {
            problems: &mut self.problems,
            path: format!("{path}[{index}]"),
            index: Some(index),
            id: id.map(str::to_owned),
        }
    }

    /// Checks for line `line` of a bulk load, known by `id`: fields are
    /// named as they are in the line.
    pub fn line(&mut self, line: usize, id: Option<&str>) -> Check<'_> {
        Check {
            problems: &mut self.problems,
            path: String::new(),
            index: Some(line),
            id: id.map(str::to_owned),
        }
    }

    /// The problems found.
    pub fn into_problems(self) -> Vec<InputProblem> {
        self.problems
    }

    /// Refuses ids that occur twice in one list input.
    pub fn unique_ids<'a>(
        &mut self,
        path: &str,
        field: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) {
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (index, id) in ids.into_iter().enumerate() {
            if let Some(first) = first_seen.insert(id, index) {
                first_seen.insert(id, first);
                self.item(path, index, Some(id)).problem(
                    field,
                    format!("`{id}` occurs more than once in this list (first at {path}[{first}])"),
                );
            }
        }
    }

    /// Refuses the input if any problem was found.
    pub fn finish(self) -> ApiResult<()> {
        refuse(Refusal::BadUserInput, self.problems)
    }
}

/// Checks a list input (`input`) before anything runs: at most `max_batch`
/// items, ids distinct, and each item by `check_item`. Every problem of
/// every item is reported at once.
pub fn check_batch<I, C>(
    inputs: Vec<I>,
    max_batch: usize,
    what: &str,
    id_field: &str,
    id_of: impl Fn(&I) -> &str,
    mut check_item: impl FnMut(&mut Check<'_>, I) -> C,
) -> ApiResult<Vec<C>> {
    check_batch_size(inputs.len(), max_batch, what)?;
    let mut checker = Checker::new();
    checker.unique_ids("input", id_field, inputs.iter().map(&id_of));
    let mut checked = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let id = id_of(&input).to_owned();
        checked.push(check_item(
            &mut checker.item("input", index, Some(&id)),
            input,
        ));
    }
    checker.finish()?;
    Ok(checked)
}

/// Refuses a list input (`input`) of more than `max_batch` `what`.
pub fn check_batch_size(items: usize, max_batch: usize, what: &str) -> ApiResult<()> {
    if items > max_batch {
        return Err(ApiError::BadUserInput {
            message: format!("at most {max_batch} {what} per call (got {items}); split the batch"),
            field: Some("input".into()),
        });
    }
    Ok(())
}

/// `Ok` when there are no problems; else the input is refused with them all.
pub fn refuse(code: Refusal, problems: Vec<InputProblem>) -> ApiResult<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Refused { code, problems })
    }
}

/// The checks of one input object (or one list item).
pub struct Check<'a> {
    problems: &'a mut Vec<InputProblem>,
    path: String,
    index: Option<usize>,
    id: Option<String>,
}

/// The range and scale of a `DECIMAL` column: values are rounded to `scale`
/// places (as PostgreSQL stores them) and must lie in `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct DecimalSpec {
    pub scale: u32,
    pub min: f64,
    pub max: f64,
}

impl DecimalSpec {
    /// `DECIMAL(5,4)` probabilities, confidences and scores: 0–1.
    pub const UNIT: Self = Self::new(4, 0.0, 1.0);
    /// `DECIMAL(3,2)` quality scores and completeness: 0–1.
    pub const UNIT_2DP: Self = Self::new(2, 0.0, 1.0);
    /// `DECIMAL(3,2)` accuracy ratings: 0–5.
    pub const RATING: Self = Self::new(2, 0.0, 5.0);
    /// `DECIMAL(10,2)` non-negative amounts: hours, milliseconds, cost.
    pub const AMOUNT: Self = Self::new(2, 0.0, 99_999_999.99);
    /// `DECIMAL(10,4)` drift scores.
    pub const DRIFT_SCORE: Self = Self::new(4, -999_999.999_9, 999_999.999_9);
    /// `DECIMAL(10,6)` signed measures (drift velocity).
    pub const SIGNED_MEASURE: Self = Self::new(6, -9_999.999_999, 9_999.999_999);
    /// `DECIMAL(10,6)` non-negative measures (PSI, Wasserstein, errors).
    pub const MEASURE: Self = Self::new(6, 0.0, 9_999.999_999);

    const fn new(scale: u32, min: f64, max: f64) -> Self {
        Self { scale, min, max }
    }

    fn describe(&self) -> String {
        format!("a number from {} to {}", self.min, self.max)
    }
}

/// The longest business id, name or other `VARCHAR(255)` value.
pub const MAX_ID_CHARS: usize = 255;

impl Check<'_> {
    /// Records a problem with `field` of this item.
    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(InputProblem {
            index: self.index,
            id: self.id.clone(),
            field: if self.path.is_empty() {
                field.to_owned()
            } else {
                format!("{}.{field}", self.path)
            },
            message: message.into(),
        });
    }

    /// A business id: 1–255 characters, no control characters, no spaces at
    /// either end (ids are compared exactly).
    pub fn id(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.problem(field, "must not be empty");
        } else if value.trim() != value {
            self.problem(field, "must not start or end with whitespace");
        } else {
            self.text(field, value, MAX_ID_CHARS);
        }
    }

    /// Free text of at most `max_chars` characters, without control
    /// characters other than tab and newlines.
    pub fn text(&mut self, field: &str, value: &str, max_chars: usize) {
        if value.chars().count() > max_chars {
            self.problem(field, format!("must be at most {max_chars} characters"));
        } else if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            self.problem(field, "must not contain control characters");
        }
    }

    /// Like [`Check::text`], and not empty.
    pub fn required_text(&mut self, field: &str, value: &str, max_chars: usize) {
        if value.trim().is_empty() {
            self.problem(field, "must not be empty");
        } else {
            self.text(field, value, max_chars);
        }
    }

    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max_chars: usize) {
        if let Some(value) = value {
            self.text(field, value, max_chars);
        }
    }

    /// A number for a `DECIMAL` column, rounded to the column's scale. A
    /// refused value yields zero; the input is refused as a whole anyway.
    pub fn decimal(&mut self, field: &str, value: f64, spec: DecimalSpec) -> Decimal {
        let rounded = value
            .is_finite()
            .then(|| Decimal::from_f64(value))
            .flatten()
            .map(|d| round(d, spec.scale));
        match rounded {
            Some(d) if (spec.min..=spec.max).contains(&value) && in_range(d, spec) => d,
            _ => {
                self.problem(field, format!("must be {}", spec.describe()));
                Decimal::ZERO
            }
        }
    }

    pub fn opt_decimal(
        &mut self,
        field: &str,
        value: Option<f64>,
        spec: DecimalSpec,
    ) -> Option<Decimal> {
        value.map(|v| self.decimal(field, v, spec))
    }

    /// A finite number (GraphQL floats always are; JSON-derived ones too,
    /// but the check keeps the rule where it is stated).
    pub fn finite(&mut self, field: &str, value: f64) {
        if !value.is_finite() {
            self.problem(field, "must be a finite number");
        }
    }

    /// The caller's subject, stored as `field` (`userId`, `createdBy`): a
    /// `VARCHAR(255)` like every id.
    pub fn caller<C: Capability>(&mut self, field: &str, writer: &Writer<C>) {
        if writer.subject().chars().count() > MAX_ID_CHARS {
            self.problem(field, "the caller's subject is longer than 255 characters");
        }
    }

    /// A JSON value that must be an object.
    pub fn json_object(&mut self, field: &str, value: &Json) {
        if !value.is_object() {
            self.problem(field, "must be a JSON object");
        }
    }
}

/// Rounds as PostgreSQL's `numeric` does: halves away from zero.
pub(super) fn round(value: Decimal, scale: u32) -> Decimal {
    value.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

pub(super) fn in_range(value: Decimal, spec: DecimalSpec) -> bool {
    let min = Decimal::from_f64(spec.min).unwrap_or(Decimal::MIN);
    let max = Decimal::from_f64(spec.max).unwrap_or(Decimal::MAX);
    (min..=max).contains(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_rounded_to_their_column_and_range_checked() {
        let mut checker = Checker::new();
        let mut check = checker.object("input");
        assert_eq!(
            check.decimal("p", 0.81236, DecimalSpec::UNIT),
            Decimal::new(8124, 4)
        );
        assert_eq!(check.decimal("p", 1.0, DecimalSpec::UNIT), Decimal::ONE);
        // Halves round away from zero, as PostgreSQL's numeric does.
        assert_eq!(
            check.decimal("cost", 12.345, DecimalSpec::AMOUNT),
            Decimal::new(1235, 2)
        );
        check.decimal("low", -0.0001, DecimalSpec::UNIT);
        check.decimal("high", 1.00001, DecimalSpec::UNIT);
        check.decimal("inf", f64::INFINITY, DecimalSpec::AMOUNT);
        check.decimal("overflow", 99_999_999.996, DecimalSpec::AMOUNT);
        let fields: Vec<String> = checker.problems.iter().map(|p| p.field.clone()).collect();
        assert_eq!(
            fields,
            ["input.low", "input.high", "input.inf", "input.overflow"]
        );
    }

    #[test]
    fn ids_and_text_are_bounded() {
        let mut checker = Checker::new();
        let mut check = checker.item("input", 2, Some("x"));
        check.id("a", "ok-1");
        check.id("b", "");
        check.id("c", " padded");
        check.id("d", &"x".repeat(256));
        check.text("e", "tab\tok\nfine", 20);
        check.text("f", "bell\u{7}", 20);
        let fields: Vec<&str> = checker.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["input[2].b", "input[2].c", "input[2].d", "input[2].f"]
        );
        assert!(checker.problems.iter().all(|p| p.index == Some(2)));
    }

    #[test]
    fn duplicate_ids_in_a_list_are_named_with_their_first_position() {
        let mut checker = Checker::new();
        checker.unique_ids("input", "predictionId", ["a", "b", "a", "a"]);
        let problems = checker.problems;
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].field, "input[2].predictionId");
        assert!(problems[0].message.contains("first at input[0]"));
        assert_eq!(problems[1].field, "input[3].predictionId");
    }
}
