//! PostgreSQL's binary `COPY` format, for bulk loads: one chunk is a
//! header, tuples and a trailer, sent as one `COPY … FROM STDIN (FORMAT
//! binary)`. Written by hand: sqlx streams raw `COPY` bytes but has no
//! encoder, and the few types a staging table needs are simple.
//! (<https://www.postgresql.org/docs/15/sql-copy.html>, "Binary Format".)

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

/// `PGCOPY\n\xff\r\n\0`, then no flags and no header extension.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// `text`'s type oid, named in an array's header.
const TEXT_OID: u32 = 25;

/// One chunk of binary `COPY` data being written.
pub struct CopyChunk {
    buf: Vec<u8>,
    rows: usize,
}

impl CopyChunk {
    pub fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(HEADER);
        Self { buf, rows: 0 }
    }

    /// Starts a tuple of `fields` fields; the caller writes exactly that many.
    pub fn row(&mut self, fields: i16) -> Row<'_> {
        self.rows += 1;
        self.buf.extend_from_slice(&fields.to_be_bytes());
        Row(&mut self.buf)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The chunk's data, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

/// The fields of one tuple, written in the table's column order.
pub struct Row<'a>(&'a mut Vec<u8>);

impl Row<'_> {
    fn field(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    /// Writes a field whose length is known only after `write` ran.
    fn measured(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        write(self.0);
        let len = (self.0.len() - at - 4) as i32;
        self.0[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn null(&mut self) {
        self.0.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    pub fn bool(&mut self, value: bool) {
        self.field(&[u8::from(value)]);
    }

    /// `text` (or `varchar`): the UTF-8 bytes.
    pub fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    pub fn opt_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    pub fn uuid(&mut self, value: &uuid::Uuid) {
        self.field(value.as_bytes());
    }

    pub fn opt_uuid(&mut self, value: Option<&uuid::Uuid>) {
        match value {
            Some(value) => self.uuid(value),
            None => self.null(),
        }
    }

    /// `timestamptz`: microseconds since PostgreSQL's epoch.
    pub fn timestamptz(&mut self, value: DateTime<Utc>) {
        self.int8(value.timestamp_micros() - PG_EPOCH_MICROS);
    }

    pub fn opt_timestamptz(&mut self, value: Option<DateTime<Utc>>) {
        match value {
            Some(value) => self.timestamptz(value),
            None => self.null(),
        }
    }

    /// `jsonb`: format version 1, then the JSON text.
    pub fn jsonb(&mut self, value: Option<&Json>) {
        match value {
            Some(value) => self.measured(|buf| {
                buf.push(1);
                serde_json::to_writer(buf, value).expect("JSON values serialize");
            }),
            None => self.null(),
        }
    }

    /// `text[]`: one dimension (none when empty), no nulls.
    pub fn text_array(&mut self, values: Option<&[String]>) {
        let Some(values) = values else {
            return self.null();
        };
        self.measured(|buf| {
            let dims: i32 = if values.is_empty() { 0 } else { 1 };
            buf.extend_from_slice(&dims.to_be_bytes());
            buf.extend_from_slice(&0i32.to_be_bytes());
            buf.extend_from_slice(&TEXT_OID.to_be_bytes());
            if !values.is_empty() {
                buf.extend_from_slice(&(values.len() as i32).to_be_bytes());
                buf.extend_from_slice(&1i32.to_be_bytes());
            }
            for value in values {
                buf.extend_from_slice(&(value.len() as i32).to_be_bytes());
                buf.extend_from_slice(value.as_bytes());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_fields_as_postgresql_reads_them() {
        let mut chunk = CopyChunk::new(64);
        let at = DateTime::parse_from_rfc3339("2000-01-01T00:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        {
            let mut row = chunk.row(4);
            row.text("ab");
            row.null();
            row.timestamptz(at);
            row.text_array(Some(&["x".to_owned()]));
        }
        assert_eq!(chunk.rows(), 1);
        let bytes = chunk.finish();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 4]);
        expected.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        expected.extend_from_slice(&[0xff; 4]);
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&1_000_000i64.to_be_bytes());
        // ndim 1, no nulls, oid 25, length 1, lower bound 1, "x".
        expected.extend_from_slice(&[0, 0, 0, 25]);
        expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 1]);
        expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, b'x']);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
        assert_eq!(HEADER.len(), 19);
    }

    #[test]
    fn jsonb_carries_its_version_and_length() {
        let mut chunk = CopyChunk::new(16);
        chunk.row(1).jsonb(Some(&serde_json::json!({"a": 1})));
        let bytes = chunk.finish();
        let field = &bytes[HEADER.len() + 2..bytes.len() - 2];
        assert_eq!(&field[..4], &8i32.to_be_bytes());
        assert_eq!(&field[4..], b"\x01{\"a\":1}");
    }
}
