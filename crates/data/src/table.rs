//! The canonical interaction table and its Parquet form.
//!
//! Ids are dense and start at 1: id 0 is reserved for padding everywhere in longtail, so vocab
//! sizes are `max id + 1`. Timestamps are seconds. `rating` (explicit feedback) and `label`
//! (a given click/no-click label) are optional.
//!
//! Parquet layout: `user` UInt32, `item` UInt32, `ts` Int64, optional `rating` Float32, optional
//! `label` Float32, snappy-compressed. Readers also accept Int32/Int64/UInt64 ids (checked and
//! converted), so a Parquet written by pandas or polars can be read as is.
//!
//! Since every vocabulary size (and so every per-user/per-item array and embedding table) is
//! `max id + 1`, the reader bounds the ids by the table itself ([`Interactions::read_parquet`]):
//! - a table written by longtail records its vocabulary sizes in the schema metadata
//!   ([`NUM_USERS_KEY`], [`NUM_ITEMS_KEY`]); every id must be below them;
//! - a table without that record (older longtail versions, pandas, polars) must have dense ids:
//!   every id at most `rows + `[`UNRECORDED_ID_SLACK`]. Every table `longtail import` ever wrote
//!   satisfies it (its ids are `1..=distinct ids <= rows`); the slack lets ids with gaps (a
//!   subset of an imported table's rows, a small synthetic catalogue) read;
//! - timestamps must be `>= 0` (as import requires) and ratings and labels finite.
//!
//! The writer refuses what the reader would refuse, so every table longtail writes reads back.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, Int64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// Rows per written record batch: bounds the extra memory of a write to a few MB.
const WRITE_CHUNK: usize = 1 << 16;

/// Schema-metadata key that marks a Parquet file as a table written by longtail.
pub const MARKER_KEY: &str = "longtail.interactions";

/// Schema-metadata key recording the user vocabulary size (max user id + 1) of a written table.
pub const NUM_USERS_KEY: &str = "longtail.num_users";

/// Schema-metadata key recording the item vocabulary size (max item id + 1) of a written table.
pub const NUM_ITEMS_KEY: &str = "longtail.num_items";

/// How far the ids of a table without recorded vocabulary sizes may exceed its row count: ids
/// with gaps (a subset of an imported table's rows) read, an id of a few billion (which would make
/// the vocabulary, and every array sized by it, that large) does not.
pub const UNRECORDED_ID_SLACK: u64 = 1 << 20;

/// Whether `path` is a Parquet file whose schema metadata holds `key` (a longtail marker such as
/// [`MARKER_KEY`]); only the footer is read.
pub fn parquet_has_marker(path: &Path, key: &str) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map(|b| b.schema().metadata().contains_key(key))
        .unwrap_or(false)
}

/// The canonical interaction table: one row per (user, item, time) event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interactions {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    /// Seconds since the epoch (any monotone clock works; only the order matters downstream).
    pub ts: Vec<i64>,
    pub rating: Option<Vec<f32>>,
    pub label: Option<Vec<f32>>,
}

impl Interactions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.user.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// User vocabulary size: max user id + 1 (padding id 0 included); 1 for an empty table.
    pub fn num_users(&self) -> usize {
        self.user.iter().copied().max().unwrap_or(0) as usize + 1
    }

    /// Item vocabulary size: max item id + 1 (padding id 0 included); 1 for an empty table.
    pub fn num_items(&self) -> usize {
        self.item.iter().copied().max().unwrap_or(0) as usize + 1
    }

    /// Checks that all columns have the same length and that no id is the padding id 0.
    pub fn validate(&self) -> Result<()> {
        let n = self.user.len();
        let check = |name: &str, len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(DataError::Invalid(format!(
                    "interactions: column '{name}' has {len} rows but 'user' has {n}"
                )))
            }
        };
        check("item", self.item.len())?;
        check("ts", self.ts.len())?;
        if let Some(r) = &self.rating {
            check("rating", r.len())?;
        }
        if let Some(l) = &self.label {
            check("label", l.len())?;
        }
        for (name, col) in [("user", &self.user), ("item", &self.item)] {
            if let Some(row) = col.iter().position(|&x| x == 0) {
                return Err(DataError::Invalid(format!(
                    "interactions: row {row} has {name} id 0, which is reserved for padding \
                     (real ids start at 1)"
                )));
            }
        }
        Ok(())
    }

    /// Checks the values the reader requires ([`Interactions::read_parquet`]): timestamps
    /// `>= 0` and finite ratings and labels. The message names the column and the 0-based row.
    fn check_values(&self) -> std::result::Result<(), String> {
        if let Some(row) = self.ts.iter().position(|&t| t < 0) {
            return Err(format!(
                "column 'ts' row {row}: timestamp {} is negative (expected unix seconds since \
                 1970)",
                self.ts[row]
            ));
        }
        for (name, col) in [("rating", &self.rating), ("label", &self.label)] {
            if let Some(col) = col {
                if let Some(row) = col.iter().position(|v| !v.is_finite()) {
                    return Err(format!(
                        "column '{name}' row {row}: {} is not a finite number",
                        col[row]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes the table as snappy Parquet. The data go to a temporary file in the same directory
    /// that is renamed over `path` at the end, so readers never see a half-written file. The
    /// vocabulary sizes are recorded in the schema metadata ([`NUM_USERS_KEY`],
    /// [`NUM_ITEMS_KEY`]); a negative timestamp or a non-finite rating or label is an error (the
    /// reader would refuse them).
    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        self.validate()?;
        self.check_values()
            .map_err(|m| DataError::Invalid(format!("interactions: {m}")))?;
        let mut fields = vec![
            Field::new("user", DataType::UInt32, false),
            Field::new("item", DataType::UInt32, false),
            Field::new("ts", DataType::Int64, false),
        ];
        if self.rating.is_some() {
            fields.push(Field::new("rating", DataType::Float32, false));
        }
        if self.label.is_some() {
            fields.push(Field::new("label", DataType::Float32, false));
        }
        // The marker lets a later command tell its own earlier output from a user's file.
        let marker: std::collections::BTreeMap<String, String> = [
            (MARKER_KEY.to_string(), "v1".to_string()),
            (NUM_USERS_KEY.to_string(), self.num_users().to_string()),
            (NUM_ITEMS_KEY.to_string(), self.num_items().to_string()),
        ]
        .into();
        let schema = Arc::new(Schema::new(fields).with_metadata(marker));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let pq_err = |e: &dyn std::fmt::Display| DataError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        write_atomically(path, |file| {
            let mut writer =
                ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| pq_err(&e))?;
            let n = self.len();
            let mut start = 0;
            // Write at least one (possibly empty) batch so the schema is always recorded.
            loop {
                let end = (start + WRITE_CHUNK).min(n);
                let mut cols: Vec<ArrayRef> = vec![
                    Arc::new(UInt32Array::from(self.user[start..end].to_vec())),
                    Arc::new(UInt32Array::from(self.item[start..end].to_vec())),
                    Arc::new(Int64Array::from(self.ts[start..end].to_vec())),
                ];
                if let Some(r) = &self.rating {
                    cols.push(Arc::new(Float32Array::from(r[start..end].to_vec())));
                }
                if let Some(l) = &self.label {
                    cols.push(Arc::new(Float32Array::from(l[start..end].to_vec())));
                }
                let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| pq_err(&e))?;
                writer.write(&batch).map_err(|e| pq_err(&e))?;
                start = end;
                if start >= n {
                    break;
                }
            }
            let file = writer.into_inner().map_err(|e| pq_err(&e))?;
            file.sync_all().map_err(|e| DataError::io(path, e))
        })
    }

    /// Reads a Parquet interaction table, one record batch at a time.
    ///
    /// Required columns: `user`, `item` (any of Int32/Int64/UInt32/UInt64, values in 0..=u32::MAX),
    /// `ts` (Int32/Int64/UInt32 or a Timestamp, converted to seconds). Optional: `rating`, `label`
    /// (Float32/Float64 or an integer type). Other columns are ignored and never decoded.
    ///
    /// Values are checked (errors name the file, the column and the 0-based row): ids are `>= 1`
    /// and below the vocabulary size the table records ([`NUM_USERS_KEY`], [`NUM_ITEMS_KEY`]),
    /// or, without that record, at most `rows + `[`UNRECORDED_ID_SLACK`]; timestamps are `>= 0`;
    /// ratings and labels are finite.
    pub fn read_parquet(path: &Path) -> Result<Interactions> {
        let (reader, present) = open_columns(
            path,
            &[
                ColumnSpec::new("user", is_id_type, "UInt32 (or Int32/Int64/UInt64)"),
                ColumnSpec::new("item", is_id_type, "UInt32 (or Int32/Int64/UInt64)"),
                ColumnSpec::new(
                    "ts",
                    is_ts_type,
                    "Int64 seconds (or Int32/UInt32/Timestamp)",
                ),
            ],
            &[
                ColumnSpec::new(
                    "rating",
                    is_value_type,
                    "Float32 (or Float64/an integer type)",
                ),
                ColumnSpec::new(
                    "label",
                    is_value_type,
                    "Float32 (or Float64/an integer type)",
                ),
            ],
        )?;
        let optional = [present[0], present[1]];
        let schema_err = |message: String| DataError::Schema {
            path: path.to_path_buf(),
            message,
        };
        let rec_users = recorded_size(reader.metadata(), NUM_USERS_KEY).map_err(schema_err)?;
        let rec_items = recorded_size(reader.metadata(), NUM_ITEMS_KEY).map_err(schema_err)?;

        let mut out = Interactions {
            rating: optional[0].then(Vec::new),
            label: optional[1].then(Vec::new),
            ..Default::default()
        };
        for batch in reader {
            let batch = batch?;
            let row0 = out.user.len();
            let col = |name: &str| {
                batch.column_by_name(name).ok_or_else(|| {
                    schema_err(format!("column '{name}' vanished from a record batch"))
                })
            };
            append_ids(col("user")?.as_ref(), "user", row0, &mut out.user).map_err(schema_err)?;
            append_ids(col("item")?.as_ref(), "item", row0, &mut out.item).map_err(schema_err)?;
            append_ts(col("ts")?.as_ref(), row0, &mut out.ts).map_err(schema_err)?;
            if let Some(r) = out.rating.as_mut() {
                append_values(col("rating")?.as_ref(), "rating", row0, r).map_err(schema_err)?;
            }
            if let Some(l) = out.label.as_mut() {
                append_values(col("label")?.as_ref(), "label", row0, l).map_err(schema_err)?;
            }
        }
        if out.is_empty() {
            return Err(DataError::Invalid(format!(
                "{}: no rows (an interaction table needs at least one row)",
                path.display()
            )));
        }
        out.validate().map_err(|e| schema_err(e.to_string()))?;
        for (name, col, key, rec) in [
            ("user", &out.user, NUM_USERS_KEY, rec_users),
            ("item", &out.item, NUM_ITEMS_KEY, rec_items),
        ] {
            check_id_bound(name, col, key, rec).map_err(schema_err)?;
        }
        out.check_values().map_err(schema_err)?;
        Ok(out)
    }

    /// SHA-256 (hex) over the columns' little-endian bytes, with column names and lengths as
    /// separators: stable across platforms and releases, used as the dataset hash in manifests.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"longtail-interactions-v1");
        h.update((self.len() as u64).to_le_bytes());
        h.update(b"user");
        feed(&mut h, &self.user, u32::to_le_bytes);
        h.update(b"item");
        feed(&mut h, &self.item, u32::to_le_bytes);
        h.update(b"ts");
        feed(&mut h, &self.ts, i64::to_le_bytes);
        for (name, col) in [("rating", &self.rating), ("label", &self.label)] {
            if let Some(col) = col {
                h.update(name.as_bytes());
                h.update((col.len() as u64).to_le_bytes());
                feed(&mut h, col, f32::to_le_bytes);
            }
        }
        hex(&h.finalize())
    }
}

/// The vocabulary size recorded under `key` in a table's schema metadata, if any: a number in
/// `1..=2^32` (ids are u32).
fn recorded_size(
    meta: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> std::result::Result<Option<u64>, String> {
    let Some(v) = meta.get(key) else {
        return Ok(None);
    };
    let most = u64::from(u32::MAX) + 1;
    match v.trim().parse::<u64>() {
        Ok(n) if (1..=most).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "schema metadata '{key}' is '{v}', expected a vocabulary size in 1..={most}"
        )),
    }
}

/// Checks that every id of `col` is below the vocabulary size `recorded` in the table's metadata,
/// or, without one, at most `rows + UNRECORDED_ID_SLACK` (see the module docs); the message names
/// the column and the first offending row.
fn check_id_bound(
    name: &str,
    col: &[u32],
    key: &str,
    recorded: Option<u64>,
) -> std::result::Result<(), String> {
    let rows = col.len() as u64;
    let (limit, why) = match recorded {
        Some(n) => (
            n - 1,
            format!(
                "the table records a vocabulary of {n} {name} ids (schema metadata '{key}'), \
                 so ids must be below {n}"
            ),
        ),
        None => {
            let max = rows + UNRECORDED_ID_SLACK;
            (
                max,
                format!(
                    "ids must be dense (1..=N, the vocabulary is max id + 1): a table of {rows} \
                     rows without a recorded vocabulary size may use ids up to {rows} + \
                     {UNRECORDED_ID_SLACK} = {max}; `longtail import --format parquet` assigns \
                     dense ids (a table an older longtail wrote: write it again)"
                ),
            )
        }
    };
    match col.iter().position(|&id| u64::from(id) > limit) {
        Some(row) => Err(format!(
            "column '{name}' row {row}: id {} is too large: {why}",
            col[row]
        )),
        None => Ok(()),
    }
}

/// Feeds values to the hasher through a buffer: the digest equals per-value updates, but one
/// `update` per 8192 values is much faster on large tables.
fn feed<T: Copy, const N: usize>(h: &mut Sha256, xs: &[T], le: impl Fn(T) -> [u8; N]) {
    let mut buf = Vec::with_capacity(8192 * N);
    for chunk in xs.chunks(8192) {
        buf.clear();
        chunk.iter().for_each(|&x| buf.extend_from_slice(&le(x)));
        h.update(&buf);
    }
}

/// Lower-case hex of a byte string.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A column a reader wants: its name, which Arrow types it accepts, and what to say otherwise.
pub(crate) struct ColumnSpec {
    name: &'static str,
    ok: fn(&DataType) -> bool,
    want: &'static str,
}

impl ColumnSpec {
    pub(crate) fn new(name: &'static str, ok: fn(&DataType) -> bool, want: &'static str) -> Self {
        Self { name, ok, want }
    }
}

/// Opens a Parquet file for reading and checks its footer's layout first: every column chunk's
/// offsets and sizes must be non-negative and lie inside the file, and row counts non-negative
/// (the parquet crate panics on negative ones and trusts the rest). Errors name the file (and the
/// row group and column).
pub(crate) fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let builder = parquet_guard(path, || {
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DataError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    })?;
    check_parquet_layout(builder.metadata(), file_len)
        .and_then(|()| check_page_headers(path, builder.metadata()))
        .map_err(|message| DataError::Parquet {
            path: path.to_path_buf(),
            message: format!("malformed file: {message}"),
        })?;
    Ok(builder)
}

/// The most a snappy page may expand when decompressed (snappy's densest element, a 3-byte copy,
/// yields 64 bytes), plus slack for tiny pages.
const SNAPPY_MAX_RATIO: i64 = 32;
const PAGE_SIZE_SLACK: i64 = 1 << 16;

/// Walks every column chunk's page headers (only the headers are read): each page must fit in
/// its chunk, and a snappy page may not claim to decompress to more than snappy can produce. The
/// parquet crate allocates both sizes before it checks them (a 1 KiB file could ask for 2 GiB).
fn check_page_headers(
    path: &Path,
    meta: &parquet::file::metadata::ParquetMetaData,
) -> std::result::Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    for (g, rg) in meta.row_groups().iter().enumerate() {
        for (c, col) in rg.columns().iter().enumerate() {
            let at = || format!("row group {g}, column {c} ('{}')", col.column_path());
            let snappy = col.compression() == parquet::basic::Compression::SNAPPY;
            // The fewest bits one plainly encoded value takes (a byte array: its 4-byte length).
            let value_bits: i64 = {
                use parquet::basic::Type;
                let d = col.column_descr();
                match d.physical_type() {
                    Type::BOOLEAN => 1,
                    Type::INT32 | Type::FLOAT | Type::BYTE_ARRAY => 32,
                    Type::INT64 | Type::DOUBLE => 64,
                    Type::INT96 => 96,
                    Type::FIXED_LEN_BYTE_ARRAY => (i64::from(d.type_length()) * 8).max(1),
                }
            };
            // Offsets and sizes were checked by check_parquet_layout (non-negative, in the file).
            let start = col
                .dictionary_page_offset()
                .unwrap_or(col.data_page_offset()) as u64;
            let end = start + col.compressed_size() as u64;
            let mut pos = start;
            while pos < end {
                // A header is usually a few dozen bytes; statistics can make it longer.
                let mut header = None;
                for limit in [1u64 << 10, 1 << 16] {
                    let want = (end - pos).min(limit) as usize;
                    buf.resize(want, 0);
                    file.seek(SeekFrom::Start(pos))
                        .and_then(|_| file.read_exact(&mut buf))
                        .map_err(|e| format!("{}: cannot read a page header: {e}", at()))?;
                    header = thrift::page_sizes(&buf);
                    if header.is_some() || want as u64 == end - pos {
                        break;
                    }
                }
                let Some(h) = header else {
                    // Unreadable (or longer than 64 KiB): left to the parquet crate's own errors.
                    break;
                };
                let page = pos + h.header_len as u64;
                let what = |why: &str| {
                    format!(
                        "{}: the page at byte {pos} claims {} compressed and {} uncompressed \
                         bytes, {why}",
                        at(),
                        h.compressed,
                        h.uncompressed,
                    )
                };
                if h.compressed < 0 || h.uncompressed < 0 {
                    return Err(what("a negative size"));
                }
                if page + h.compressed as u64 > end {
                    return Err(what(&format!(
                        "more than its {}-byte column chunk holds",
                        end - start
                    )));
                }
                if snappy
                    && h.uncompressed
                        > h.compressed.saturating_mul(SNAPPY_MAX_RATIO) + PAGE_SIZE_SLACK
                {
                    return Err(what("more than snappy can decompress that to"));
                }
                // A dictionary page holds its values plainly encoded, and the reader sizes the
                // dictionary by the count before decoding it.
                if let Some(n) = h.dictionary_values {
                    let most = h.uncompressed.saturating_mul(8) / value_bits;
                    if !(0..=most).contains(&n) {
                        return Err(format!(
                            "{}: the dictionary page at byte {pos} claims {n} values, more than \
                             its {} bytes can hold",
                            at(),
                            h.uncompressed
                        ));
                    }
                }
                pos = page + h.compressed as u64;
            }
        }
    }
    Ok(())
}

/// Just enough of the Thrift compact protocol to read a Parquet page header's sizes and length.
mod thrift {
    /// The sizes of a page header (fields 2 and 3), the value count of a dictionary page (field
    /// 7, its field 1) and the header's own length in bytes.
    pub(super) struct PageSizes {
        pub(super) uncompressed: i64,
        pub(super) compressed: i64,
        pub(super) dictionary_values: Option<i64>,
        pub(super) header_len: usize,
    }

    struct Cursor<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl Cursor<'_> {
        fn byte(&mut self) -> Option<u8> {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            Some(b)
        }

        fn varint(&mut self) -> Option<u64> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = self.byte()?;
                v |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Some(v);
                }
            }
            None
        }

        fn zigzag(&mut self) -> Option<i64> {
            let v = self.varint()?;
            Some((v >> 1) as i64 ^ -((v & 1) as i64))
        }

        fn skip(&mut self, n: u64) -> Option<()> {
            let n = usize::try_from(n).ok()?;
            let end = self.pos.checked_add(n)?;
            (end <= self.bytes.len()).then(|| self.pos = end)
        }

        /// Skips one value of compact type `t` (`depth` bounds nesting).
        fn skip_value(&mut self, t: u8, depth: u32) -> Option<()> {
            if depth > 32 {
                return None;
            }
            match t {
                1 | 2 => Some(()),
                3 => self.skip(1),
                4..=6 => self.varint().map(drop),
                7 => self.skip(8),
                8 => {
                    let n = self.varint()?;
                    self.skip(n)
                }
                9 | 10 => {
                    let h = self.byte()?;
                    let n = match h >> 4 {
                        15 => self.varint()?,
                        n => u64::from(n),
                    };
                    let et = h & 0x0f;
                    for _ in 0..n {
                        if matches!(et, 1 | 2) {
                            self.skip(1)?;
                        } else {
                            self.skip_value(et, depth + 1)?;
                        }
                    }
                    Some(())
                }
                11 => {
                    let n = self.varint()?;
                    if n == 0 {
                        return Some(());
                    }
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.skip_value(kv >> 4, depth + 1)?;
                        self.skip_value(kv & 0x0f, depth + 1)?;
                    }
                    Some(())
                }
                12 => self.skip_struct(depth + 1, |_, _, _| None).map(drop),
                _ => None,
            }
        }

        /// Reads a struct: `field(cursor, id, type)` may consume a field (returning `Some`),
        /// otherwise it is skipped. Returns when the struct's stop byte is read.
        fn skip_struct(
            &mut self,
            depth: u32,
            mut field: impl FnMut(&mut Self, i16, u8) -> Option<()>,
        ) -> Option<()> {
            let mut last = 0i16;
            loop {
                let h = self.byte()?;
                if h == 0 {
                    return Some(());
                }
                let t = h & 0x0f;
                let id = match h >> 4 {
                    0 => i16::try_from(self.zigzag()?).ok()?,
                    d => last.checked_add(i16::from(d))?,
                };
                last = id;
                let start = self.pos;
                if field(self, id, t).is_none() {
                    self.pos = start;
                    self.skip_value(t, depth)?;
                }
            }
        }
    }

    /// Parses a page header at the start of `bytes`; `None` if it is not a complete one.
    pub(super) fn page_sizes(bytes: &[u8]) -> Option<PageSizes> {
        let mut c = Cursor { bytes, pos: 0 };
        let (mut uncompressed, mut compressed, mut dictionary_values) = (None, None, None);
        c.skip_struct(0, |c, id, t| match (id, t) {
            (2, 5) => {
                uncompressed = Some(c.zigzag()?);
                Some(())
            }
            (3, 5) => {
                compressed = Some(c.zigzag()?);
                Some(())
            }
            (7, 12) => c.skip_struct(1, |c, id, t| match (id, t) {
                (1, 5) => {
                    dictionary_values = Some(c.zigzag()?);
                    Some(())
                }
                _ => None,
            }),
            _ => None,
        })?;
        Some(PageSizes {
            uncompressed: uncompressed?,
            compressed: compressed?,
            dictionary_values,
            header_len: c.pos,
        })
    }
}

/// Builds the record-batch reader of `builder` (see [`open_parquet`]) as [`Batches`].
pub(crate) fn parquet_batches(
    path: &Path,
    builder: ParquetRecordBatchReaderBuilder<File>,
) -> Result<Batches> {
    let metadata = builder.schema().metadata().clone().into();
    let reader = parquet_guard(path, || {
        builder.build().map_err(|e| DataError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    })?;
    Ok(Batches {
        reader: Some(reader),
        path: path.to_path_buf(),
        metadata,
    })
}

/// Runs a step of the parquet crate on the bytes of `path`, turning a panic inside it into an
/// error naming the file: some of its decoders index out of bounds on malformed pages (e.g. a
/// BYTE_STREAM_SPLIT page shorter than its value count) instead of returning an error.
pub(crate) fn parquet_guard<T>(path: &Path, step: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(DataError::Parquet {
            path: path.to_path_buf(),
            message: format!("malformed file: the Parquet decoder failed ({what})"),
        })
    })
}

/// The record batches of a Parquet file, each decoded under [`parquet_guard`]; errors name the
/// file, and the iteration stops after one.
pub(crate) struct Batches {
    reader: Option<ParquetRecordBatchReader>,
    path: std::path::PathBuf,
    /// The file's Arrow schema metadata (longtail's markers and recorded sizes).
    metadata: std::collections::BTreeMap<String, String>,
}

impl Batches {
    /// The file's Arrow schema metadata.
    pub(crate) fn metadata(&self) -> &std::collections::BTreeMap<String, String> {
        &self.metadata
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let reader = self.reader.as_mut()?;
        let path = &self.path;
        let next = parquet_guard(path, || {
            reader.next().transpose().map_err(|e| DataError::Parquet {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        });
        match next {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(e) => {
                self.reader = None;
                Some(Err(e))
            }
        }
    }
}

fn check_parquet_layout(
    meta: &parquet::file::metadata::ParquetMetaData,
    file_len: u64,
) -> std::result::Result<(), String> {
    for (g, rg) in meta.row_groups().iter().enumerate() {
        if rg.num_rows() < 0 {
            return Err(format!(
                "row group {g} has a negative row count ({})",
                rg.num_rows()
            ));
        }
        for (c, col) in rg.columns().iter().enumerate() {
            let at = || format!("row group {g}, column {c} ('{}')", col.column_path());
            let start = col
                .dictionary_page_offset()
                .unwrap_or(col.data_page_offset());
            let fields = [
                ("data page offset", col.data_page_offset()),
                (
                    "dictionary page offset",
                    col.dictionary_page_offset().unwrap_or(0),
                ),
                ("compressed size", col.compressed_size()),
                ("uncompressed size", col.uncompressed_size()),
                ("value count", col.num_values()),
            ];
            if let Some((what, v)) = fields.iter().find(|(_, v)| *v < 0) {
                return Err(format!("{}: negative {what} ({v})", at()));
            }
            let end = (start as u64).checked_add(col.compressed_size() as u64);
            if end.is_none_or(|e| e > file_len) {
                return Err(format!(
                    "{}: the column chunk (bytes {start}.., {} long) runs past the end of the \
                     file ({file_len} bytes)",
                    at(),
                    col.compressed_size()
                ));
            }
        }
    }
    Ok(())
}

/// Opens a Parquet file, checks that every `required` column exists and every present column has
/// an accepted type (errors name the file and column), and returns a record-batch reader of just
/// those columns with a flag per `optional` column saying whether it is there.
pub(crate) fn open_columns(
    path: &Path,
    required: &[ColumnSpec],
    optional: &[ColumnSpec],
) -> Result<(Batches, Vec<bool>)> {
    let schema_err = |message: String| DataError::Schema {
        path: path.to_path_buf(),
        message,
    };
    let builder = open_parquet(path)?;
    let schema = builder.schema().clone();
    let find = |name: &str| schema.fields().iter().position(|f| f.name() == name);
    let check = |i: usize, c: &ColumnSpec| {
        let dt = schema.field(i).data_type();
        if (c.ok)(dt) {
            Ok(i)
        } else {
            Err(schema_err(format!(
                "column '{}' has type {dt}, expected {}",
                c.name, c.want
            )))
        }
    };
    let mut roots = Vec::new();
    for c in required {
        let Some(i) = find(c.name) else {
            let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(schema_err(format!(
                "missing required column '{}' (columns: {})",
                c.name,
                have.join(", ")
            )));
        };
        roots.push(check(i, c)?);
    }
    let mut present = Vec::with_capacity(optional.len());
    for c in optional {
        match find(c.name) {
            Some(i) => {
                roots.push(check(i, c)?);
                present.push(true);
            }
            None => present.push(false),
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = parquet_batches(path, builder.with_projection(mask))?;
    Ok((reader, present))
}

/// Writes `value` as JSON (pretty or compact) plus a final newline, atomically and synced: the
/// one JSON writer of the crate (vocabularies, feature maps, prepare manifests).
/// Writes through `write` into a staged temporary file, renamed over `path` only on success
/// ([`crate::atomic`]).
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(File) -> Result<()>) -> Result<()> {
    let staged = crate::atomic::Staged::file(path)?;
    let file = File::create(staged.path()).map_err(|e| DataError::io(path, e))?;
    write(file)?;
    staged.commit()
}

pub(crate) fn is_id_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64
    )
}

fn is_ts_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::Timestamp(_, _)
    )
}

pub(crate) fn is_value_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float32
            | DataType::Float64
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

pub(crate) fn no_nulls(a: &dyn Array, name: &str, row0: usize) -> std::result::Result<(), String> {
    if a.null_count() == 0 {
        return Ok(());
    }
    let row = (0..a.len()).find(|&i| a.is_null(i)).unwrap_or(0);
    Err(format!("column '{name}' has a null at row {}", row0 + row))
}

pub(crate) fn downcast<'a, T: 'static>(
    a: &'a dyn Array,
    name: &str,
) -> std::result::Result<&'a T, String> {
    a.as_any().downcast_ref::<T>().ok_or_else(|| {
        format!(
            "column '{name}' has an unexpected array type {}",
            a.data_type()
        )
    })
}

/// Appends an id column, checking each value fits in u32.
pub(crate) fn append_ids(
    a: &dyn Array,
    name: &str,
    row0: usize,
    out: &mut Vec<u32>,
) -> std::result::Result<(), String> {
    use arrow::array::{Int32Array, UInt64Array};
    no_nulls(a, name, row0)?;
    let bad = |i: usize, v: &dyn std::fmt::Display| {
        format!(
            "column '{name}' row {}: id {v} is outside 0..=4294967295",
            row0 + i
        )
    };
    match a.data_type() {
        DataType::UInt32 => out.extend_from_slice(downcast::<UInt32Array>(a, name)?.values()),
        DataType::Int32 => {
            for (i, &v) in downcast::<Int32Array>(a, name)?.values().iter().enumerate() {
                out.push(u32::try_from(v).map_err(|_| bad(i, &v))?);
            }
        }
        DataType::Int64 => {
            for (i, &v) in downcast::<Int64Array>(a, name)?.values().iter().enumerate() {
                out.push(u32::try_from(v).map_err(|_| bad(i, &v))?);
            }
        }
        DataType::UInt64 => {
            for (i, &v) in downcast::<UInt64Array>(a, name)?
                .values()
                .iter()
                .enumerate()
            {
                out.push(u32::try_from(v).map_err(|_| bad(i, &v))?);
            }
        }
        dt => {
            return Err(format!(
                "column '{name}' has type {dt}, expected an integer id type"
            ))
        }
    }
    Ok(())
}

/// Appends a timestamp column as seconds.
fn append_ts(a: &dyn Array, row0: usize, out: &mut Vec<i64>) -> std::result::Result<(), String> {
    use arrow::array::{
        Int32Array, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray,
    };
    let name = "ts";
    no_nulls(a, name, row0)?;
    match a.data_type() {
        DataType::Int64 => out.extend_from_slice(downcast::<Int64Array>(a, name)?.values()),
        DataType::Int32 => out.extend(
            downcast::<Int32Array>(a, name)?
                .values()
                .iter()
                .map(|&v| i64::from(v)),
        ),
        DataType::UInt32 => out.extend(
            downcast::<UInt32Array>(a, name)?
                .values()
                .iter()
                .map(|&v| i64::from(v)),
        ),
        DataType::Timestamp(TimeUnit::Second, _) => {
            out.extend_from_slice(downcast::<TimestampSecondArray>(a, name)?.values())
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => out.extend(
            downcast::<TimestampMillisecondArray>(a, name)?
                .values()
                .iter()
                .map(|v| v.div_euclid(1_000)),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => out.extend(
            downcast::<TimestampMicrosecondArray>(a, name)?
                .values()
                .iter()
                .map(|v| v.div_euclid(1_000_000)),
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => out.extend(
            downcast::<TimestampNanosecondArray>(a, name)?
                .values()
                .iter()
                .map(|v| v.div_euclid(1_000_000_000)),
        ),
        dt => return Err(format!("column 'ts' has type {dt}, expected Int64 seconds")),
    }
    Ok(())
}

/// Appends a rating/label column as f32 (via arrow's cast kernel for non-f32 types).
pub(crate) fn append_values(
    a: &dyn Array,
    name: &str,
    row0: usize,
    out: &mut Vec<f32>,
) -> std::result::Result<(), String> {
    no_nulls(a, name, row0)?;
    if a.data_type() == &DataType::Float32 {
        out.extend_from_slice(downcast::<Float32Array>(a, name)?.values());
        return Ok(());
    }
    let cast = arrow::compute::cast(a, &DataType::Float32).map_err(|e| {
        format!(
            "column '{name}': cannot convert {} to Float32: {e}",
            a.data_type()
        )
    })?;
    out.extend_from_slice(downcast::<Float32Array>(cast.as_ref(), name)?.values());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};

    fn sample() -> Interactions {
        Interactions {
            user: vec![1, 1, 2, 3],
            item: vec![5, 2, 2, 9],
            ts: vec![10, 20, 5, -3],
            rating: Some(vec![4.0, 1.5, 3.0, 5.0]),
            label: None,
        }
    }

    /// `sample()` without its negative timestamp: what the reader accepts.
    fn readable() -> Interactions {
        let mut t = sample();
        t.ts[3] = 3;
        t
    }

    fn write_raw(path: &Path, cols: Vec<(&str, ArrayRef)>) {
        write_raw_meta(path, cols, &[]);
    }

    /// Writes `cols` with the given schema metadata (as pyarrow keeps it when a column is edited).
    fn write_raw_meta(path: &Path, cols: Vec<(&str, ArrayRef)>, meta: &[(&str, &str)]) {
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let schema = Arc::new(
            batch.schema().as_ref().clone().with_metadata(
                meta.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            ),
        );
        let batch = batch.with_schema(schema.clone()).unwrap();
        let file = File::create(path).unwrap();
        let mut w = ArrowWriter::try_new(file, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// A table of `user`, `item` (UInt32), `ts` (Int64), `rating` (Float32) columns.
    fn raw_table(
        user: &[u32],
        item: &[u32],
        ts: &[i64],
        rating: &[f32],
    ) -> Vec<(&'static str, ArrayRef)> {
        vec![
            (
                "user",
                Arc::new(UInt32Array::from(user.to_vec())) as ArrayRef,
            ),
            ("item", Arc::new(UInt32Array::from(item.to_vec()))),
            ("ts", Arc::new(Int64Array::from(ts.to_vec()))),
            ("rating", Arc::new(Float32Array::from(rating.to_vec()))),
        ]
    }

    fn read_err(path: &Path) -> String {
        let e = Interactions::read_parquet(path).unwrap_err();
        assert!(matches!(e, DataError::Schema { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        msg
    }

    #[test]
    fn huge_ids_are_refused_naming_file_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let (ts, r) = ([1i64, 2, 3, 4], [1.0f32, 2.0, 3.0, 4.0]);

        // Without recorded vocabulary sizes (pandas, older longtail): ids up to rows + slack.
        let p = dir.path().join("user_huge.parquet");
        write_raw(
            &p,
            raw_table(&[1, 4_000_000_000, 2, 1], &[1, 2, 1, 2], &ts, &r),
        );
        let msg = read_err(&p);
        assert!(
            msg.contains("column 'user' row 1")
                && msg.contains("4000000000")
                && msg.contains("dense"),
            "{msg}"
        );
        let p = dir.path().join("item_huge.parquet");
        write_raw(
            &p,
            vec![
                (
                    "user",
                    Arc::new(Int64Array::from(vec![1i64, 2, 1, 2])) as ArrayRef,
                ),
                (
                    "item",
                    Arc::new(Int64Array::from(vec![1i64, 2, 3, 3_000_000_000])),
                ),
                ("ts", Arc::new(Int64Array::from(ts.to_vec()))),
            ],
        );
        let msg = read_err(&p);
        assert!(
            msg.contains("column 'item' row 3") && msg.contains("3000000000"),
            "{msg}"
        );
        // The bound: rows + UNRECORDED_ID_SLACK reads, one more does not.
        let top = 4 + UNRECORDED_ID_SLACK as u32;
        let p = dir.path().join("gaps.parquet");
        write_raw(&p, raw_table(&[1, 9, 2, top], &[1, 2, 1, 700], &ts, &r));
        let t = Interactions::read_parquet(&p).unwrap();
        assert_eq!(t.num_users(), top as usize + 1);
        write_raw(&p, raw_table(&[1, 9, 2, top + 1], &[1, 2, 1, 700], &ts, &r));
        assert!(read_err(&p).contains("column 'user' row 3"));

        // A table longtail wrote records its vocabulary sizes, and its ids must stay below them
        // (an id edited with pyarrow, which keeps the schema metadata).
        let p = dir.path().join("written.parquet");
        readable().write_parquet(&p).unwrap();
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&p).unwrap())
            .unwrap()
            .schema()
            .metadata()
            .clone();
        assert_eq!(meta.get(NUM_USERS_KEY).map(String::as_str), Some("4"));
        assert_eq!(meta.get(NUM_ITEMS_KEY).map(String::as_str), Some("10"));
        let marked = [
            (MARKER_KEY, "v1"),
            (NUM_USERS_KEY, "4"),
            (NUM_ITEMS_KEY, "10"),
        ];
        let p = dir.path().join("edited.parquet");
        write_raw_meta(
            &p,
            raw_table(&[1, 1, 2, 3], &[5, 2, 10, 9], &ts, &r),
            &marked,
        );
        let msg = read_err(&p);
        assert!(
            msg.contains("column 'item' row 2")
                && msg.contains("id 10")
                && msg.contains(NUM_ITEMS_KEY),
            "{msg}"
        );
        write_raw_meta(
            &p,
            raw_table(&[1, 1, 2, 3], &[5, 2, 9, 9], &ts, &r),
            &marked,
        );
        Interactions::read_parquet(&p).unwrap();
        for bad in ["abc", "0", "-3", "4294967297"] {
            write_raw_meta(
                &p,
                raw_table(&[1, 1, 2, 3], &[5, 2, 9, 9], &ts, &r),
                &[(NUM_USERS_KEY, bad)],
            );
            let msg = read_err(&p);
            assert!(msg.contains(NUM_USERS_KEY) && msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn non_finite_values_and_negative_times_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.parquet");
        let (u, i) = ([1u32, 2, 1, 2], [1u32, 2, 1, 2]);
        for (ts, r, want) in [
            (
                [1i64, 2, 3, 4],
                [1.0f32, 2.0, 3.0, f32::NAN],
                "column 'rating' row 3: NaN",
            ),
            (
                [1, 2, 3, 4],
                [1.0, f32::INFINITY, 3.0, 4.0],
                "column 'rating' row 1: inf",
            ),
            (
                [1, 2, -5, 4],
                [1.0, 2.0, 3.0, 4.0],
                "column 'ts' row 2: timestamp -5",
            ),
        ] {
            write_raw(&p, raw_table(&u, &i, &ts, &r));
            let msg = read_err(&p);
            assert!(msg.contains(want), "{want}: {msg}");
        }
        let p = dir.path().join("label.parquet");
        write_raw(
            &p,
            vec![
                (
                    "user",
                    Arc::new(UInt32Array::from(vec![1u32, 2])) as ArrayRef,
                ),
                ("item", Arc::new(UInt32Array::from(vec![1u32, 2]))),
                ("ts", Arc::new(Int64Array::from(vec![1i64, 2]))),
                ("label", Arc::new(Float64Array::from(vec![f64::NAN, 1.0]))),
            ],
        );
        assert!(read_err(&p).contains("column 'label' row 0: NaN"));

        // The writer refuses them too (so everything longtail writes reads back), and writes
        // nothing.
        let out = dir.path().join("out.parquet");
        let mut t = readable();
        t.rating.as_mut().unwrap()[1] = f32::NAN;
        let msg = t.write_parquet(&out).unwrap_err().to_string();
        assert!(msg.contains("column 'rating' row 1"), "{msg}");
        let msg = sample().write_parquet(&out).unwrap_err().to_string();
        assert!(msg.contains("column 'ts' row 3"), "{msg}");
        assert!(!out.exists());
    }

    #[test]
    fn sizes_and_validation() {
        let t = sample();
        assert_eq!(t.len(), 4);
        assert_eq!(t.num_users(), 4);
        assert_eq!(t.num_items(), 10);
        t.validate().unwrap();
        assert_eq!(Interactions::default().num_items(), 1);

        let mut bad = sample();
        bad.item[2] = 0;
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("row 2") && msg.contains("item id 0"), "{msg}");

        let mut bad = sample();
        bad.ts.pop();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("'ts' has 3 rows"));
    }

    #[test]
    fn parquet_round_trip_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let t = readable();
        t.write_parquet(&path).unwrap();
        let back = Interactions::read_parquet(&path).unwrap();
        assert_eq!(back, t);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");

        // Overwrite with a table with a label column and no rating.
        let mut t2 = readable();
        t2.rating = None;
        t2.label = Some(vec![1.0, 0.0, 1.0, 0.0]);
        t2.write_parquet(&path).unwrap();
        assert_eq!(Interactions::read_parquet(&path).unwrap(), t2);
    }

    #[test]
    fn large_table_spans_several_batches() {
        let n = WRITE_CHUNK * 2 + 17;
        let t = Interactions {
            user: (0..n).map(|i| (i % 1000) as u32 + 1).collect(),
            item: (0..n).map(|i| (i % 77) as u32 + 1).collect(),
            ts: (0..n as i64).collect(),
            rating: None,
            label: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.parquet");
        t.write_parquet(&path).unwrap();
        assert_eq!(Interactions::read_parquet(&path).unwrap(), t);
    }

    #[test]
    fn invalid_table_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut t = sample();
        t.user[0] = 0;
        assert!(t.write_parquet(&path).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn read_errors_name_file_and_column() {
        let dir = tempfile::tempdir().unwrap();

        let missing = dir.path().join("nope.parquet");
        let e = Interactions::read_parquet(&missing).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("nope.parquet"));

        let text = dir.path().join("text.parquet");
        std::fs::write(&text, b"user,item\n1,2\n").unwrap();
        let e = Interactions::read_parquet(&text).unwrap_err();
        assert!(matches!(e, DataError::Parquet { .. }), "{e:?}");

        let no_ts = dir.path().join("no_ts.parquet");
        write_raw(
            &no_ts,
            vec![
                ("user", Arc::new(Int64Array::from(vec![1i64])) as ArrayRef),
                ("item", Arc::new(Int64Array::from(vec![1i64]))),
            ],
        );
        let e = Interactions::read_parquet(&no_ts).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DataError::Schema { .. }), "{e:?}");
        assert!(
            msg.contains("no_ts.parquet") && msg.contains("'ts'"),
            "{msg}"
        );

        let str_item = dir.path().join("str_item.parquet");
        write_raw(
            &str_item,
            vec![
                ("user", Arc::new(Int64Array::from(vec![1i64])) as ArrayRef),
                ("item", Arc::new(StringArray::from(vec!["a"]))),
                ("ts", Arc::new(Int64Array::from(vec![1i64]))),
            ],
        );
        let msg = Interactions::read_parquet(&str_item)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("'item'") && msg.contains("Utf8"), "{msg}");

        let neg = dir.path().join("neg.parquet");
        write_raw(
            &neg,
            vec![
                (
                    "user",
                    Arc::new(Int64Array::from(vec![1i64, 2, -4])) as ArrayRef,
                ),
                ("item", Arc::new(Int64Array::from(vec![1i64, 1, 1]))),
                ("ts", Arc::new(Int64Array::from(vec![1i64, 2, 3]))),
            ],
        );
        let msg = Interactions::read_parquet(&neg).unwrap_err().to_string();
        assert!(msg.contains("row 2") && msg.contains("-4"), "{msg}");

        let empty = dir.path().join("empty.parquet");
        write_raw(
            &empty,
            vec![
                (
                    "user",
                    Arc::new(UInt32Array::from(Vec::<u32>::new())) as ArrayRef,
                ),
                ("item", Arc::new(UInt32Array::from(Vec::<u32>::new()))),
                ("ts", Arc::new(Int64Array::from(Vec::<i64>::new()))),
            ],
        );
        let msg = Interactions::read_parquet(&empty).unwrap_err().to_string();
        assert!(
            msg.contains("no rows") && msg.contains("empty.parquet"),
            "{msg}"
        );
    }

    #[test]
    fn converts_foreign_types_and_ignores_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pandas.parquet");
        write_raw(
            &p,
            vec![
                (
                    "title",
                    Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
                ),
                ("user", Arc::new(Int32Array::from(vec![3, 1]))),
                ("item", Arc::new(Int64Array::from(vec![7i64, 8]))),
                ("ts", Arc::new(Int32Array::from(vec![100, 50]))),
                ("rating", Arc::new(Float64Array::from(vec![2.5, 4.0]))),
            ],
        );
        let t = Interactions::read_parquet(&p).unwrap();
        assert_eq!(t.user, vec![3, 1]);
        assert_eq!(t.item, vec![7, 8]);
        assert_eq!(t.ts, vec![100, 50]);
        assert_eq!(t.rating, Some(vec![2.5, 4.0]));
        assert_eq!(t.label, None);
    }

    #[test]
    fn content_hash_is_stable_and_sensitive() {
        let t = sample();
        let h = t.content_hash();
        // Pinned: sha256 of the documented byte layout, so a layout change fails loudly.
        assert_eq!(
            h,
            "5ab798fbc3cfa6ac788a200aa86e94757e13d8130fe48f99e3fd9aff633f9083"
        );
        let mut t2 = sample();
        t2.ts[3] = -2;
        assert_ne!(h, t2.content_hash());
        let mut t3 = sample();
        t3.rating = None;
        assert_ne!(h, t3.content_hash());
    }
}
