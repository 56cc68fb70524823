//! A list of strings stored as `TEXT[]` on PostgreSQL and as a JSON array in a
//! TEXT column on SQLite (which has no arrays).
//!
//! Reading handles both layouts. Writing produces the PostgreSQL array value;
//! statements bound for SQLite pass through the scoped transaction
//! (`server/src/db/scoped.rs`), which rewrites array values as JSON text
//! (SeaORM's SQLite binder cannot bind arrays at all).

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, Value, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, QueryResult, TryGetError, TryGetable};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StringList(pub Vec<String>);

impl From<StringList> for Value {
    fn from(list: StringList) -> Self {
        Value::Array(
            ArrayType::String,
            Some(Box::new(
                list.0.into_iter().map(|s| Value::String(Some(s))).collect(),
            )),
        )
    }
}

impl Nullable for StringList {
    fn null() -> Value {
        Value::Array(ArrayType::String, None)
    }
}

impl ValueType for StringList {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        <Vec<String> as ValueType>::try_from(v).map(StringList)
    }

    fn type_name() -> String {
        "StringList".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::String
    }

    fn column_type() -> ColumnType {
        ColumnType::Array(sea_orm::sea_query::RcOrArc::new(ColumnType::Text))
    }
}

impl TryGetable for StringList {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        // A PostgreSQL array first; SQLite rows refuse arrays with a type
        // error (never a panic), and then hold the list as JSON text.
        match Vec::<String>::try_get_by(res, idx) {
            Ok(list) => Ok(StringList(list)),
            Err(TryGetError::Null(column)) => Err(TryGetError::Null(column)),
            Err(TryGetError::DbErr(_)) => {
                let text = String::try_get_by(res, idx)?;
                serde_json::from_str(&text).map(StringList).map_err(|e| {
                    TryGetError::DbErr(sea_orm::DbErr::Type(format!(
                        "a string list column holds invalid JSON: {e}"
                    )))
                })
            }
        }
    }
}
