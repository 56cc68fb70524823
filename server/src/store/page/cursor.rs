//! Cursors: opaque, bound to the tenant and the ordering that minted them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ColumnTrait, ColumnType, DbBackend, EntityTrait, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::keyset::number_value;
use super::window::{bad_input, Window};
use super::Sort;
use crate::db::ScopedTxn;
use crate::error::ApiResult;

/// The cursor's JSON before base64: tenant fingerprint, ordering tag, key values.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct CursorBody {
    t: String,
    o: String,
    k: Vec<Json>,
}

/// A short fingerprint of the tenant: a cursor minted for one tenant is
/// refused for any other, exactly like a malformed one.
pub(super) fn tenant_fingerprint(tenant: &str) -> String {
    let digest = Sha256::digest(format!("mlgate-cursor\0{tenant}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn encode_cursor(tenant: &str, tag: &str, values: Vec<Value>) -> String {
    encode_fingerprinted(tenant_fingerprint(tenant), tag, values)
}

/// [`encode_cursor`] with the tenant's fingerprint already made: a page
/// hashes it once, not once per row.
pub(super) fn encode_fingerprinted(fingerprint: String, tag: &str, values: Vec<Value>) -> String {
    let body = CursorBody {
        t: fingerprint,
        o: tag.to_owned(),
        k: values.into_iter().map(value_to_json).collect(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).expect("cursor serializes"))
}

/// An opaque cursor for a position in one of a tenant's streams (`tag`
/// names the stream), in the format of page cursors.
pub fn encode_position(tenant: &str, tag: &str, position: i64) -> String {
    encode_cursor(tenant, tag, vec![Value::BigInt(Some(position))])
}

/// The position of a cursor made by [`encode_position`] for this tenant and
/// stream; `None` for anything else.
pub fn decode_position(cursor: &str, tenant: &str, tag: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let body: CursorBody = serde_json::from_slice(&bytes).ok()?;
    if body.t != tenant_fingerprint(tenant) || body.o != tag {
        return None;
    }
    match body.k.as_slice() {
        [position] => position.as_i64().filter(|p| *p >= 0),
        _ => None,
    }
}

pub(super) fn value_to_json(value: Value) -> Json {
    match value {
        Value::String(Some(s)) => Json::String(s),
        Value::ChronoDateTimeUtc(Some(t)) => {
            // Full precision: on SQLite the comparison is textual, so the bound value
            // must render exactly as the stored one.
            Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        Value::Decimal(Some(d)) => Json::String(d.normalize().to_string()),
        Value::Uuid(Some(u)) => Json::String(u.to_string()),
        Value::Int(Some(i)) => Json::from(i),
        Value::BigInt(Some(i)) => Json::from(i),
        Value::Double(Some(f)) => Json::from(f),
        _ => Json::Null,
    }
}

pub(super) fn decode_window_cursor<E: EntityTrait>(
    txn: &ScopedTxn,
    sort: &Sort<E>,
    window: &Window,
) -> ApiResult<Option<Vec<Option<Value>>>> {
    let Some(cursor) = window.cursor() else {
        return Ok(None);
    };
    let field = if window.is_forward() {
        "after"
    } else {
        "before"
    };
    decode_cursor(cursor, txn.tenant(), sort, txn.backend())
        .map(Some)
        .ok_or_else(|| {
            bad_input(
                field,
                format!("`{field}` is not a cursor of this list and ordering"),
            )
        })
}

pub(super) fn decode_cursor<E: EntityTrait>(
    cursor: &str,
    tenant: &str,
    sort: &Sort<E>,
    backend: DbBackend,
) -> Option<Vec<Option<Value>>> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let body: CursorBody = serde_json::from_slice(&bytes).ok()?;
    if body.t != tenant_fingerprint(tenant) || body.o != sort.tag || body.k.len() != sort.keys.len()
    {
        return None;
    }
    sort.keys
        .iter()
        .zip(body.k)
        .map(|((column, _), json)| json_to_value(json, column.def().get_column_type(), backend))
        .collect()
}

/// A cursor value back as the column's type; `Some(None)` is SQL NULL and
/// `None` a value that does not fit the column (a forged cursor).
pub(super) fn json_to_value(
    json: Json,
    column_type: &ColumnType,
    backend: DbBackend,
) -> Option<Option<Value>> {
    if let Json::Null = json {
        return Some(None);
    }
    let value = match column_type {
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => {
            Value::from(json.as_str()?.to_owned())
        }
        ColumnType::TimestampWithTimeZone | ColumnType::Timestamp | ColumnType::DateTime => {
            let time: DateTime<Utc> = DateTime::parse_from_rfc3339(json.as_str()?)
                .ok()?
                .with_timezone(&Utc);
            Value::from(time)
        }
        ColumnType::Decimal(_) | ColumnType::Money(_) => {
            let decimal: rust_decimal::Decimal = json.as_str()?.parse().ok()?;
            number_value(decimal, backend)
        }
        ColumnType::Uuid => Value::from(uuid::Uuid::parse_str(json.as_str()?).ok()?),
        ColumnType::Integer => Value::from(i32::try_from(json.as_i64()?).ok()?),
        ColumnType::BigInteger => Value::from(json.as_i64()?),
        _ => return None,
    };
    Some(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::prediction;
    use sea_orm::sea_query::Order;

    #[test]
    fn positions_are_bound_to_their_tenant_and_stream() {
        let cursor = encode_position("alpha", "alerts", 42);
        assert_eq!(decode_position(&cursor, "alpha", "alerts"), Some(42));
        assert_eq!(decode_position(&cursor, "beta", "alerts"), None);
        assert_eq!(decode_position(&cursor, "alpha", "jobs"), None);
        assert_eq!(decode_position("garbage", "alpha", "alerts"), None);
        let negative = encode_position("alpha", "alerts", -1);
        assert_eq!(decode_position(&negative, "alpha", "alerts"), None);
    }

    #[test]
    fn cursors_are_bound_to_tenant_and_ordering() {
        let sort = Sort::<prediction::Entity>::by(
            prediction::Column::PredictionTimestamp,
            Order::Desc,
            prediction::Column::PredictionId,
        );
        let time: DateTime<Utc> = "2026-11-26T10:00:00.123456Z".parse().unwrap();
        let cursor = encode_cursor(
            "acme",
            &sort.tag,
            vec![Value::from(time), Value::from("pred-1".to_owned())],
        );
        let values = decode_cursor(&cursor, "acme", &sort, DbBackend::Postgres).unwrap();
        assert_eq!(
            values,
            vec![
                Some(Value::from(time)),
                Some(Value::from("pred-1".to_owned()))
            ]
        );
        assert!(decode_cursor(&cursor, "globex", &sort, DbBackend::Postgres).is_none());
        let other = Sort::<prediction::Entity>::by(
            prediction::Column::PredictionTimestamp,
            Order::Asc,
            prediction::Column::PredictionId,
        );
        assert!(decode_cursor(&cursor, "acme", &other, DbBackend::Postgres).is_none());
        assert!(decode_cursor("not-a-cursor", "acme", &sort, DbBackend::Postgres).is_none());
        let null_time = encode_cursor(
            "acme",
            &sort.tag,
            vec![
                Value::ChronoDateTimeUtc(None),
                Value::from("pred-2".to_owned()),
            ],
        );
        assert_eq!(
            decode_cursor(&null_time, "acme", &sort, DbBackend::Sqlite).unwrap()[0],
            None
        );
    }
}
