//! A small columnar table of fixed-width numeric columns with Parquet I/O: the on-disk form of
//! prepared samples, sessions and sequences (`longtail prepare`).
//!
//! Columns are `UInt8`, `UInt32`, `Int64`, `Float32`, or fixed-size lists of `UInt32`/`Float32`
//! (a `[rows, width]` matrix such as a padded history). Writes are chunked (bounded extra memory)
//! and atomic (temporary file + rename). [`FrameReader`] streams a file one record batch at a
//! time, so a large prepared split never has to be in memory at once.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, UInt32Array, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{DataError, Result};

/// Rows per written record batch.
const WRITE_CHUNK: usize = 1 << 16;

/// One column's values; list columns hold `rows * width` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    U8(Vec<u8>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    U32List { width: usize, values: Vec<u32> },
    F32List { width: usize, values: Vec<f32> },
}

impl Column {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Column::U8(v) => v.len(),
            Column::U32(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::F32(v) => v.len(),
            Column::U32List { width, values } => values.len() / (*width).max(1),
            Column::F32List { width, values } => values.len() / (*width).max(1),
        }
    }

    fn kind(&self) -> String {
        match self {
            Column::U8(_) => "UInt8".into(),
            Column::U32(_) => "UInt32".into(),
            Column::I64(_) => "Int64".into(),
            Column::F32(_) => "Float32".into(),
            Column::U32List { width, .. } => format!("FixedSizeList<UInt32, {width}>"),
            Column::F32List { width, .. } => format!("FixedSizeList<Float32, {width}>"),
        }
    }

    fn data_type(&self) -> DataType {
        let item = |t: DataType| Arc::new(Field::new("item", t, false));
        match self {
            Column::U8(_) => DataType::UInt8,
            Column::U32(_) => DataType::UInt32,
            Column::I64(_) => DataType::Int64,
            Column::F32(_) => DataType::Float32,
            Column::U32List { width, .. } => {
                DataType::FixedSizeList(item(DataType::UInt32), *width as i32)
            }
            Column::F32List { width, .. } => {
                DataType::FixedSizeList(item(DataType::Float32), *width as i32)
            }
        }
    }

    /// Rows `a..b` as an Arrow array.
    fn slice(&self, a: usize, b: usize) -> std::result::Result<ArrayRef, String> {
        let list = |width: usize,
                    values: ArrayRef,
                    t: DataType|
         -> std::result::Result<ArrayRef, String> {
            let field = Arc::new(Field::new("item", t, false));
            FixedSizeListArray::try_new(field, width as i32, values, None)
                .map(|a| Arc::new(a) as ArrayRef)
                .map_err(|e| e.to_string())
        };
        Ok(match self {
            Column::U8(v) => Arc::new(UInt8Array::from(v[a..b].to_vec())),
            Column::U32(v) => Arc::new(UInt32Array::from(v[a..b].to_vec())),
            Column::I64(v) => Arc::new(Int64Array::from(v[a..b].to_vec())),
            Column::F32(v) => Arc::new(Float32Array::from(v[a..b].to_vec())),
            Column::U32List { width, values } => list(
                *width,
                Arc::new(UInt32Array::from(values[a * width..b * width].to_vec())),
                DataType::UInt32,
            )?,
            Column::F32List { width, values } => list(
                *width,
                Arc::new(Float32Array::from(values[a * width..b * width].to_vec())),
                DataType::Float32,
            )?,
        })
    }

    fn empty_like(dt: &DataType) -> Option<Column> {
        Some(match dt {
            DataType::UInt8 => Column::U8(Vec::new()),
            DataType::UInt32 => Column::U32(Vec::new()),
            DataType::Int64 => Column::I64(Vec::new()),
            DataType::Float32 => Column::F32(Vec::new()),
            DataType::FixedSizeList(f, w) if f.data_type() == &DataType::UInt32 && *w > 0 => {
                Column::U32List {
                    width: *w as usize,
                    values: Vec::new(),
                }
            }
            DataType::FixedSizeList(f, w) if f.data_type() == &DataType::Float32 && *w > 0 => {
                Column::F32List {
                    width: *w as usize,
                    values: Vec::new(),
                }
            }
            _ => return None,
        })
    }

    /// Appends an Arrow array of this column's type (nulls are refused).
    fn append(&mut self, a: &dyn Array) -> std::result::Result<(), String> {
        if a.null_count() > 0 {
            return Err("has null values".into());
        }
        fn prim<T: arrow::array::ArrowPrimitiveType>(
            a: &dyn Array,
        ) -> std::result::Result<&arrow::array::PrimitiveArray<T>, String> {
            a.as_any()
                .downcast_ref::<arrow::array::PrimitiveArray<T>>()
                .ok_or_else(|| format!("has type {}", a.data_type()))
        }
        fn list_values(a: &dyn Array) -> std::result::Result<ArrayRef, String> {
            let l = a
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .ok_or_else(|| format!("has type {}", a.data_type()))?;
            Ok(l.values().slice(
                l.offset() * l.value_length() as usize,
                l.len() * l.value_length() as usize,
            ))
        }
        use arrow::datatypes::{Float32Type, Int64Type, UInt32Type, UInt8Type};
        match self {
            Column::U8(v) => v.extend_from_slice(prim::<UInt8Type>(a)?.values()),
            Column::U32(v) => v.extend_from_slice(prim::<UInt32Type>(a)?.values()),
            Column::I64(v) => v.extend_from_slice(prim::<Int64Type>(a)?.values()),
            Column::F32(v) => v.extend_from_slice(prim::<Float32Type>(a)?.values()),
            Column::U32List { values, .. } => {
                let inner = list_values(a)?;
                values.extend_from_slice(prim::<UInt32Type>(inner.as_ref())?.values())
            }
            Column::F32List { values, .. } => {
                let inner = list_values(a)?;
                values.extend_from_slice(prim::<Float32Type>(inner.as_ref())?.values())
            }
        }
        Ok(())
    }
}

/// Named columns of equal row counts, plus string metadata stored in the Parquet schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    pub columns: Vec<(String, Column)>,
    pub metadata: BTreeMap<String, String>,
}

impl Frame {
    /// An empty frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a column (builder style).
    pub fn with(mut self, name: &str, col: Column) -> Self {
        self.columns.push((name.to_string(), col));
        self
    }

    /// Number of rows (of the first column; [`Frame::validate`] checks they agree).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.rows())
    }

    /// The column called `name`.
    pub fn get(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Removes and returns the column called `name`.
    pub fn take(&mut self, name: &str) -> Option<Column> {
        let i = self.columns.iter().position(|(n, _)| n == name)?;
        Some(self.columns.remove(i).1)
    }

    /// Checks equal row counts, whole list rows and unique names.
    pub fn validate(&self) -> Result<()> {
        let n = self.rows();
        for (i, (name, c)) in self.columns.iter().enumerate() {
            if self.columns[..i].iter().any(|(m, _)| m == name) {
                return Err(DataError::Invalid(format!("frame: column '{name}' twice")));
            }
            let whole = match c {
                Column::U32List { width, values } => *width > 0 && values.len() % width == 0,
                Column::F32List { width, values } => *width > 0 && values.len() % width == 0,
                _ => true,
            };
            if !whole || c.rows() != n {
                return Err(DataError::Invalid(format!(
                    "frame: column '{name}' has {} rows (whole: {whole}), expected {n}",
                    c.rows()
                )));
            }
        }
        Ok(())
    }

    /// Writes snappy Parquet atomically (temporary file + rename), in chunks of 65,536 rows.
    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        let mut w = FrameWriter::create(path, self)?;
        w.write(self)?;
        w.finish()
    }

    /// Reads a whole file; `required` columns must exist (errors name the file and column).
    pub fn read_parquet(path: &Path, required: &[&str]) -> Result<Frame> {
        let mut r = FrameReader::open(path, required)?;
        let mut out = r.empty.clone();
        while let Some(chunk) = r.next_chunk()? {
            for ((_, dst), (_, src)) in out.columns.iter_mut().zip(chunk.columns) {
                dst.extend(src);
            }
        }
        Ok(out)
    }
}

impl Column {
    fn extend(&mut self, other: Column) {
        match (self, other) {
            (Column::U8(a), Column::U8(b)) => a.extend(b),
            (Column::U32(a), Column::U32(b)) => a.extend(b),
            (Column::I64(a), Column::I64(b)) => a.extend(b),
            (Column::F32(a), Column::F32(b)) => a.extend(b),
            (Column::U32List { values: a, .. }, Column::U32List { values: b, .. }) => a.extend(b),
            (Column::F32List { values: a, .. }, Column::F32List { values: b, .. }) => a.extend(b),
            _ => unreachable!("chunks of one file share the schema"),
        }
    }
}

/// Streams a frame file one record batch (row group slice) at a time.
pub struct FrameReader {
    path: PathBuf,
    reader: crate::table::Batches,
    empty: Frame,
}

impl FrameReader {
    /// Opens `path` and checks that every `required` column is present with a supported type.
    pub fn open(path: &Path, required: &[&str]) -> Result<FrameReader> {
        let builder = crate::table::open_parquet(path)?;
        let schema = builder.schema().clone();
        let mut empty = Frame {
            columns: Vec::new(),
            metadata: schema
                .metadata()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        for f in schema.fields() {
            let col = Column::empty_like(f.data_type()).ok_or_else(|| DataError::Schema {
                path: path.to_path_buf(),
                message: format!(
                    "column '{}' has unsupported type {}",
                    f.name(),
                    f.data_type()
                ),
            })?;
            empty.columns.push((f.name().clone(), col));
        }
        for name in required {
            if empty.get(name).is_none() {
                let have: Vec<&str> = empty.columns.iter().map(|(n, _)| n.as_str()).collect();
                return Err(DataError::Schema {
                    path: path.to_path_buf(),
                    message: format!(
                        "missing required column '{name}' (columns: {})",
                        have.join(", ")
                    ),
                });
            }
        }
        let reader = crate::table::parquet_batches(path, builder)?;
        Ok(FrameReader {
            path: path.to_path_buf(),
            reader,
            empty,
        })
    }

    /// The file's schema metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.empty.metadata
    }

    /// The next chunk of rows, or None at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Frame>> {
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch = batch?;
        let mut out = self.empty.clone();
        for (i, (name, col)) in out.columns.iter_mut().enumerate() {
            col.append(batch.column(i).as_ref())
                .map_err(|m| DataError::Schema {
                    path: self.path.clone(),
                    message: format!("column '{name}' {m}"),
                })?;
        }
        Ok(Some(out))
    }
}

/// Writes frames with one schema to one Parquet file chunk by chunk, so a large output never
/// has to be in memory at once. Data go to a temporary name in the same directory;
/// [`FrameWriter::finish`] renames it into place (dropping the writer unfinished removes it).
pub struct FrameWriter {
    path: PathBuf,
    schema: Arc<Schema>,
    writer: Option<ArrowWriter<File>>,
    /// The temporary file; removed if the writer is dropped unfinished.
    staged: Option<crate::atomic::Staged>,
}

impl FrameWriter {
    /// Starts `path` with the schema (names, types, metadata) of `like`.
    pub fn create(path: &Path, like: &Frame) -> Result<FrameWriter> {
        like.validate()?;
        let fields: Vec<Field> = like
            .columns
            .iter()
            .map(|(n, c)| Field::new(n, c.data_type(), false))
            .collect();
        let metadata: BTreeMap<String, String> = like.metadata.clone();
        let schema = Arc::new(Schema::new(fields).with_metadata(metadata));
        let staged = crate::atomic::Staged::file(path)?;
        let file = File::create(staged.path()).map_err(|e| DataError::io(path, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| {
            DataError::Parquet {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        Ok(FrameWriter {
            path: path.to_path_buf(),
            staged: Some(staged),
            schema,
            writer: Some(writer),
        })
    }

    /// Appends the rows of `frame` (same column names and types as the first frame).
    pub fn write(&mut self, frame: &Frame) -> Result<()> {
        frame.validate()?;
        let pq_err = |e: &dyn std::fmt::Display| DataError::Parquet {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let Some(w) = self.writer.as_mut() else {
            return Err(pq_err(&"writer already finished"));
        };
        let n = frame.rows();
        let mut start = 0;
        while start < n {
            let end = (start + WRITE_CHUNK).min(n);
            let cols = frame
                .columns
                .iter()
                .map(|(_, c)| c.slice(start, end))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| pq_err(&e))?;
            let batch = RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| pq_err(&e))?;
            w.write(&batch).map_err(|e| pq_err(&e))?;
            start = end;
        }
        Ok(())
    }

    /// Closes the file and renames it into place.
    pub fn finish(mut self) -> Result<()> {
        let pq_err = |e: &dyn std::fmt::Display| DataError::Parquet {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let w = self
            .writer
            .take()
            .ok_or_else(|| pq_err(&"writer already finished"))?;
        let file = w.into_inner().map_err(|e| pq_err(&e))?;
        file.sync_all().map_err(|e| DataError::io(&self.path, e))?;
        match self.staged.take() {
            Some(s) => s.commit(),
            None => Err(pq_err(&"writer already finished")),
        }
    }
}

/// Typed access to frame columns, with errors naming the file and column.
macro_rules! getter {
    ($fn:ident, $variant:ident, $t:ty) => {
        /// Takes the column `name` out of `frame`, checking its type.
        pub fn $fn(frame: &mut Frame, name: &str, origin: &Path) -> Result<Vec<$t>> {
            match frame.take(name) {
                Some(Column::$variant(v)) => Ok(v),
                Some(other) => Err(DataError::Schema {
                    path: origin.to_path_buf(),
                    message: format!(
                        "column '{name}' has type {}, expected {}",
                        other.kind(),
                        stringify!($variant)
                    ),
                }),
                None => Err(DataError::Schema {
                    path: origin.to_path_buf(),
                    message: format!("missing column '{name}'"),
                }),
            }
        }
    };
}
getter!(take_u8, U8, u8);
getter!(take_u32, U32, u32);
getter!(take_i64, I64, i64);
getter!(take_f32, F32, f32);

/// Takes the fixed-width list column `name` out of `frame`: its width and its values, row-major.
pub fn take_u32_list(frame: &mut Frame, name: &str, origin: &Path) -> Result<(usize, Vec<u32>)> {
    match frame.take(name) {
        Some(Column::U32List { width, values }) => Ok((width, values)),
        Some(other) => Err(DataError::Schema {
            path: origin.to_path_buf(),
            message: format!(
                "column '{name}' has type {}, expected a fixed-size list of UInt32",
                other.kind()
            ),
        }),
        None => Err(DataError::Schema {
            path: origin.to_path_buf(),
            message: format!("missing column '{name}'"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_lists_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.parquet");
        let n = WRITE_CHUNK + 7;
        let mut f = Frame::new()
            .with("a", Column::U32((0..n as u32).collect()))
            .with("b", Column::I64((0..n as i64).map(|x| -x).collect()))
            .with("c", Column::U8(vec![3; n]))
            .with("d", Column::F32(vec![0.5; n]))
            .with(
                "h",
                Column::U32List {
                    width: 3,
                    values: (0..3 * n as u32).collect(),
                },
            )
            .with(
                "w",
                Column::F32List {
                    width: 2,
                    values: vec![1.5; 2 * n],
                },
            );
        f.metadata.insert("k".into(), "v".into());
        f.write_parquet(&p).unwrap();
        let back = Frame::read_parquet(&p, &["a", "h"]).unwrap();
        assert_eq!(back, f);
        let empty = Frame::new().with("a", Column::U32(vec![]));
        let q = dir.path().join("empty.parquet");
        empty.write_parquet(&q).unwrap();
        assert_eq!(Frame::read_parquet(&q, &["a"]).unwrap(), empty);
        let mut r = FrameReader::open(&p, &[]).unwrap();
        let first = r.next_chunk().unwrap().unwrap();
        assert!(first.rows() < n, "streams in chunks");
        let mut back = back;
        assert_eq!(take_u32(&mut back, "a", &p).unwrap().len(), n);
        let e = take_u32(&mut back, "b", &p).unwrap_err().to_string();
        assert!(e.contains("'b'") && e.contains("Int64"), "{e}");
    }

    #[test]
    fn errors_name_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.parquet");
        Frame::new()
            .with("a", Column::U32(vec![1]))
            .write_parquet(&p)
            .unwrap();
        let e = Frame::read_parquet(&p, &["zz"]).unwrap_err().to_string();
        assert!(e.contains("f.parquet") && e.contains("'zz'"), "{e}");
        let bad = Frame::new()
            .with("a", Column::U32(vec![1, 2]))
            .with("b", Column::U8(vec![1]));
        assert!(bad.write_parquet(&p).is_err());
        // The failed write left the old file in place.
        assert_eq!(Frame::read_parquet(&p, &[]).unwrap().rows(), 1);
        // A truncated file is a Parquet error naming the file, not a panic.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let e = Frame::read_parquet(&p, &[]).unwrap_err().to_string();
        assert!(e.contains("f.parquet"), "{e}");
    }

    #[test]
    fn streaming_writer_appends_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.parquet");
        let chunk = |a: u32| Frame::new().with("a", Column::U32((a..a + 5).collect()));
        let mut w = FrameWriter::create(&p, &chunk(0)).unwrap();
        w.write(&chunk(0)).unwrap();
        w.write(&chunk(5)).unwrap();
        assert!(!p.exists(), "nothing at the final name before finish");
        w.finish().unwrap();
        let back = Frame::read_parquet(&p, &["a"]).unwrap();
        assert_eq!(back.get("a"), Some(&Column::U32((0..10).collect())));
        let q = dir.path().join("dropped.parquet");
        let mut w = FrameWriter::create(&q, &chunk(0)).unwrap();
        w.write(&chunk(0)).unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
    }
}
