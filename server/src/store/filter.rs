//! Building blocks for list filters, shared by the domain queries. Every
//! builder step validates its input and explains a bad one by field name.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ColumnTrait, DbBackend, Value};

use super::page::number_value;
use crate::domain::Vocabulary;
use crate::error::{ApiError, ApiResult};

/// The longest `in` list a filter accepts.
pub const MAX_LIST_LENGTH: usize = 500;

/// An inclusive numeric range; either end may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NumberRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A time range, `from` inclusive and `to` exclusive; either end may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Sort direction of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn order(self) -> sea_orm::Order {
        match self {
            Direction::Asc => sea_orm::Order::Asc,
            Direction::Desc => sea_orm::Order::Desc,
        }
    }
}

/// A list's ordering: a field of the domain's order enum and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderBy<F> {
    pub field: F,
    pub direction: Direction,
}

/// Accumulates the conditions of one filter.
pub struct Filters {
    condition: Condition,
    backend: DbBackend,
}

pub(crate) fn invalid(field: &str, message: String) -> ApiError {
    ApiError::BadUserInput {
        message,
        field: Some(field.to_owned()),
    }
}

impl Filters {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            condition: Condition::all(),
            backend,
        }
    }

    pub fn and(mut self, condition: impl Into<Condition>) -> Self {
        self.condition = self.condition.add(condition.into());
        self
    }

    /// `column IN (values)`. An empty list matches nothing, as it says.
    /// Vocabulary values come [`spelled`].
    pub fn one_of<C, V>(self, column: C, field: &str, values: Option<Vec<V>>) -> ApiResult<Self>
    where
        C: ColumnTrait,
        V: Into<Value>,
    {
        let Some(values) = values else {
            return Ok(self);
        };
        if values.len() > MAX_LIST_LENGTH {
            return Err(invalid(
                field,
                format!(
                    "`{field}` lists {} values; at most {MAX_LIST_LENGTH} are accepted",
                    values.len()
                ),
            ));
        }
        if values.is_empty() {
            return Ok(self.and(Expr::cust("1 = 0")));
        }
        Ok(self.and(column.is_in(values)))
    }

    pub fn equals<C, V>(self, column: C, value: Option<V>) -> Self
    where
        C: ColumnTrait,
        V: Into<Value>,
    {
        match value {
            Some(value) => self.and(column.eq(value)),
            None => self,
        }
    }

    /// Values starting with `prefix`, case-sensitively on both backends
    /// (SQLite's LIKE ignores ASCII case, so the exact test follows it).
    pub fn prefix<C: ColumnTrait>(
        self,
        column: C,
        field: &str,
        prefix: Option<String>,
    ) -> ApiResult<Self> {
        let Some(prefix) = prefix else {
            return Ok(self);
        };
        if prefix.len() > 255 {
            return Err(invalid(
                field,
                format!("`{field}` is longer than 255 bytes"),
            ));
        }
        if prefix.is_empty() {
            return Ok(self);
        }
        let escaped: String = prefix
            .chars()
            .flat_map(|c| match c {
                '\\' | '%' | '_' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        // INTEGER arguments: PostgreSQL has no substr(varchar, int, bigint).
        let length = prefix.chars().count() as i32;
        let exact = Expr::expr(
            Func::cust("SUBSTR")
                .arg(Expr::col(column.as_column_ref()))
                .arg(1i32)
                .arg(length),
        )
        .eq(prefix);
        Ok(self
            .and(
                Expr::col(column.as_column_ref())
                    .like(LikeExpr::new(format!("{escaped}%")).escape('\\')),
            )
            .and(exact))
    }

    pub fn number_range<C: ColumnTrait>(
        self,
        column: C,
        field: &str,
        range: Option<NumberRange>,
    ) -> ApiResult<Self> {
        let Some(range) = range else {
            return Ok(self);
        };
        let backend = self.backend;
        let mut filters = self;
        let bound = |value: f64| -> ApiResult<Value> {
            // `Display` of an f64 is its shortest exact decimal, never an exponent.
            let decimal: rust_decimal::Decimal = value.to_string().parse().map_err(|_| {
                invalid(
                    field,
                    format!("`{field}` bound {value} is not a usable number"),
                )
            })?;
            Ok(number_value(decimal, backend))
        };
        if let (Some(min), Some(max)) = (range.min, range.max) {
            if min > max {
                return Err(invalid(
                    field,
                    format!("`{field}`: min {min} is above max {max}"),
                ));
            }
        }
        let min = range.min.map(bound).transpose()?;
        let max = range.max.map(bound).transpose()?;
        if let Some(min) = min {
            filters = filters.and(column.gte(min));
        }
        if let Some(max) = max {
            filters = filters.and(column.lte(max));
        }
        Ok(filters)
    }

    pub fn time_range<C: ColumnTrait>(
        self,
        column: C,
        field: &str,
        range: Option<TimeRange>,
    ) -> ApiResult<Self> {
        let Some(range) = range else {
            return Ok(self);
        };
        if let (Some(from), Some(to)) = (range.from, range.to) {
            if from > to {
                return Err(invalid(field, format!("`{field}`: from is after to")));
            }
        }
        let mut filters = self;
        if let Some(from) = range.from {
            filters = filters.and(column.gte(from));
        }
        if let Some(to) = range.to {
            filters = filters.and(column.lt(to));
        }
        Ok(filters)
    }

    pub fn build(self) -> Condition {
        self.condition
    }
}

/// Vocabulary values as stored, for [`Filters::one_of`].
pub fn spelled<V: Vocabulary>(values: &Option<Vec<V>>) -> Option<Vec<&'static str>> {
    values
        .as_ref()
        .map(|values| values.iter().map(|v| v.as_db()).collect())
}
