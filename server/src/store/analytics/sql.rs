//! A small builder for the analytics statements: SQL text with bound values,
//! the backend differences in one place, and sub-queries made by SeaORM (the
//! read API's filters, tenant filter included) embedded with their values.

use sea_orm::sea_query::{SelectStatement, Value};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use super::Bucket;
use crate::db::ScopedTxn;

pub struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// Appends SQL text. Only fixed text and the helpers below go here;
    /// every value from a caller is bound with [`Sql::bind`].
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        if self.is_postgres() {
            let n = self.values.len();
            self.text.push_str(&format!("${n}"));
        } else {
            self.text.push('?');
        }
        self
    }

    /// Appends a placeholder for `value` cast to `pg_type` on PostgreSQL (where
    /// a bare parameter in a `VALUES` list has no type to infer).
    pub fn bind_typed(&mut self, value: impl Into<Value>, pg_type: &str) -> &mut Self {
        if self.is_postgres() {
            self.push("CAST(")
                .bind(value)
                .push(" AS ")
                .push(pg_type)
                .push(")")
        } else {
            self.bind(value)
        }
    }

    /// Rows find their calendar bucket (computed in the gateway) without a
    /// range join, which costs rows × buckets comparisons: on PostgreSQL
    /// `width_bucket` searches the (contiguous) boundaries; SQLite, which has
    /// no arrays, joins the `buckets` table of [`Sql::bucket_table`] (see
    /// [`Sql::bucket_join`]). Emits the 0-based bucket index of `column`.
    pub fn bucket_index(&mut self, column: &str, buckets: &[Bucket]) -> &mut Self {
        if !self.is_postgres() {
            return self.push("b.idx");
        }
        debug_assert!(buckets.windows(2).all(|w| w[0].end == w[1].start));
        self.push("CAST(width_bucket(")
            .push(column)
            .push(", ARRAY[");
        let last = buckets.last().map(|b| b.end);
        for (i, boundary) in buckets.iter().map(|b| b.start).chain(last).enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind_typed(boundary, "TIMESTAMPTZ");
        }
        self.push("]) - 1 AS BIGINT)")
    }

    /// SQLite's join of `column` to its bucket (after the source's alias);
    /// nothing on PostgreSQL. Goes with [`Sql::bucket_index`].
    pub fn bucket_join(&mut self, column: &str) -> &mut Self {
        if self.is_postgres() {
            return self;
        }
        self.push(" JOIN buckets b ON ")
            .push(column)
            .push(" >= b.bucket_start AND ")
            .push(column)
            .push(" < b.bucket_end")
    }

    /// SQLite: `WITH buckets(idx, bucket_start, bucket_end) AS (VALUES …) `,
    /// the bucket boundaries as a table for [`Sql::bucket_join`]. Nothing on
    /// PostgreSQL, which uses [`Sql::bucket_index`] alone.
    pub fn bucket_table(&mut self, buckets: &[Bucket]) -> &mut Self {
        if self.is_postgres() {
            return self;
        }
        self.push("WITH buckets(idx, bucket_start, bucket_end) AS (VALUES ");
        for (i, bucket) in buckets.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push("(")
                .bind_typed(i as i64, "BIGINT")
                .push(", ")
                .bind_typed(bucket.start, "TIMESTAMPTZ")
                .push(", ")
                .bind_typed(bucket.end, "TIMESTAMPTZ")
                .push(")");
        }
        self.push(") ")
    }

    /// Appends a SeaORM/SeaQuery select, renumbering its PostgreSQL
    /// placeholders after the ones already bound.
    pub fn subquery(&mut self, select: &SelectStatement) -> &mut Self {
        let statement = self.backend.build(select);
        let offset = self.values.len();
        let text = if self.is_postgres() {
            renumber_placeholders(&statement.sql, offset)
        } else {
            statement.sql
        };
        self.text.push('(');
        self.text.push_str(&text);
        self.text.push(')');
        if let Some(values) = statement.values {
            self.values.extend(values.0);
        }
        self
    }

    /// `expr` as a double: PostgreSQL's decimals become `float8` so both
    /// backends compute in the same arithmetic (SQLite stores them as REAL).
    pub fn float(&mut self, expr: &str) -> &mut Self {
        if self.is_postgres() {
            self.push("CAST(").push(expr).push(" AS DOUBLE PRECISION)")
        } else {
            self.push("CAST(").push(expr).push(" AS REAL)")
        }
    }

    /// A stored decimal for aggregating: itself on PostgreSQL, so that sums
    /// and averages are exact and cast to a double once, as the rollups'
    /// sums are (the same exact mean then rounds the same way on both
    /// paths); a REAL on SQLite.
    pub fn decimal(&mut self, expr: &str) -> &mut Self {
        if self.is_postgres() {
            self.push(expr)
        } else {
            self.push("CAST(").push(expr).push(" AS REAL)")
        }
    }

    /// `function(expr)` as a double: cast after aggregating on PostgreSQL
    /// (over [`Sql::decimal`] columns), as is on SQLite.
    pub fn aggregate(&mut self, function: &str, expr: &str) -> &mut Self {
        if self.is_postgres() {
            self.push(&format!("CAST({function}({expr}) AS DOUBLE PRECISION)"))
        } else {
            self.push(&format!("{function}({expr})"))
        }
    }

    /// The integer part of a non-negative `expr`.
    pub fn floor_int(&mut self, expr: &str) -> &mut Self {
        if self.is_postgres() {
            self.push("CAST(FLOOR(").push(expr).push(") AS BIGINT)")
        } else {
            self.push("CAST(").push(expr).push(" AS INTEGER)")
        }
    }

    pub async fn fetch(self, txn: &ScopedTxn) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        let statement = Statement::from_sql_and_values(self.backend, self.text, self.values);
        txn.conn().query_all_raw(statement).await
    }

    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Shifts every `$n` placeholder outside quotes by `offset`.
fn renumber_placeholders(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let n: usize = digits.parse().expect("digits");
                out.push('$');
                out.push_str(&(n + offset).to_string());
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_shift_outside_quotes_only() {
        assert_eq!(
            renumber_placeholders(r#"a = $1 AND "$2" = '$3' AND b IN ($2, $10)"#, 4),
            r#"a = $5 AND "$2" = '$3' AND b IN ($6, $14)"#
        );
    }

    #[test]
    fn embedded_selects_keep_their_values_in_order() {
        use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
        let select = Query::select()
            .column(Alias::new("x"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("x")).eq(7))
            .to_owned();
        let mut pg = Sql::new(DbBackend::Postgres);
        pg.push("SELECT ").bind(1).push(" FROM ").subquery(&select);
        pg.push(" WHERE y = ").bind(2);
        assert_eq!(
            pg.text(),
            r#"SELECT $1 FROM (SELECT "x" FROM "t" WHERE "x" = $2) WHERE y = $3"#
        );
        assert_eq!(pg.values.len(), 3);
        let mut sqlite = Sql::new(DbBackend::Sqlite);
        sqlite
            .push("SELECT ")
            .bind(1)
            .push(" FROM ")
            .subquery(&select);
        assert_eq!(
            sqlite.text(),
            r#"SELECT ? FROM (SELECT "x" FROM "t" WHERE "x" = ?)"#
        );
    }
}
