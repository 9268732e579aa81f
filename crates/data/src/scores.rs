//! Scored samples as Parquet: what a trained model wrote for a split, or what a team brings from
//! elsewhere, for `longtail eval --scores`.
//!
//! Columns: `user`, `item` (integer ids), `label` (0/1), `score` (a probability for CTR metrics;
//! any real for ranking metrics); optional `user_group` and `item_group` (integer codes indexing
//! [`USER_GROUP_NAMES`] / [`ITEM_GROUP_NAMES`], or those names as strings), and optional `list`
//! (a candidate-list id: when present, ranking metrics are computed per list).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float32Array, StringArray, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{DataError, Result};
use crate::groups::{ITEM_GROUP_NAMES, USER_GROUP_NAMES};
use crate::table::{
    append_ids, append_values, downcast, is_id_type, is_value_type, no_nulls, open_columns,
    write_atomically, ColumnSpec,
};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoresTable {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub label: Vec<f32>,
    pub score: Vec<f32>,
    pub user_group: Option<Vec<u8>>,
    pub item_group: Option<Vec<u8>>,
    pub list: Option<Vec<u64>>,
}

impl ScoresTable {
    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    fn validate(&self) -> Result<()> {
        let n = self.len();
        let lens = [
            ("item", self.item.len()),
            ("label", self.label.len()),
            ("score", self.score.len()),
            ("user_group", self.user_group.as_ref().map_or(n, Vec::len)),
            ("item_group", self.item_group.as_ref().map_or(n, Vec::len)),
            ("list", self.list.as_ref().map_or(n, Vec::len)),
        ];
        for (name, len) in lens {
            if len != n {
                return Err(DataError::Invalid(format!(
                    "scores table: column '{name}' has {len} rows, 'user' has {n}"
                )));
            }
        }
        Ok(())
    }

    /// Writes the table atomically (temporary name, then rename).
    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        self.validate()?;
        let mut fields = vec![
            Field::new("user", DataType::UInt32, false),
            Field::new("item", DataType::UInt32, false),
            Field::new("label", DataType::Float32, false),
            Field::new("score", DataType::Float32, false),
        ];
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(self.user.clone())),
            Arc::new(UInt32Array::from(self.item.clone())),
            Arc::new(Float32Array::from(self.label.clone())),
            Arc::new(Float32Array::from(self.score.clone())),
        ];
        for (name, g) in [
            ("user_group", &self.user_group),
            ("item_group", &self.item_group),
        ] {
            if let Some(g) = g {
                fields.push(Field::new(name, DataType::UInt8, false));
                cols.push(Arc::new(UInt8Array::from(g.clone())));
            }
        }
        if let Some(l) = &self.list {
            fields.push(Field::new("list", DataType::UInt64, false));
            cols.push(Arc::new(UInt64Array::from(l.clone())));
        }
        let pq_err = |e: &dyn std::fmt::Display| DataError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| pq_err(&e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        write_atomically(path, |file| {
            let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| pq_err(&e))?;
            w.write(&batch).map_err(|e| pq_err(&e))?;
            let file = w.into_inner().map_err(|e| pq_err(&e))?;
            file.sync_all().map_err(|e| DataError::io(path, e))
        })
    }

    /// Reads a scores table; missing or mistyped columns are errors naming the file and column.
    pub fn read_parquet(path: &Path) -> Result<ScoresTable> {
        let (reader, present) = open_columns(
            path,
            &[
                ColumnSpec::new("user", is_id_type, "an integer id"),
                ColumnSpec::new("item", is_id_type, "an integer id"),
                ColumnSpec::new("label", is_value_type, "a number (0/1)"),
                ColumnSpec::new("score", is_value_type, "a number"),
            ],
            &[
                ColumnSpec::new(
                    "user_group",
                    is_group_type,
                    "an integer code or a group name",
                ),
                ColumnSpec::new(
                    "item_group",
                    is_group_type,
                    "an integer code or a group name",
                ),
                ColumnSpec::new("list", is_code_type, "an integer code"),
            ],
        )?;
        let schema_err = |message: String| DataError::Schema {
            path: path.to_path_buf(),
            message,
        };
        let mut out = ScoresTable {
            user_group: present[0].then(Vec::new),
            item_group: present[1].then(Vec::new),
            list: present[2].then(Vec::new),
            ..Default::default()
        };
        for batch in reader {
            let batch = batch?;
            let row0 = out.user.len();
            let col = |name: &str| {
                batch.column_by_name(name).cloned().ok_or_else(|| {
                    schema_err(format!("column '{name}' vanished from a record batch"))
                })
            };
            append_ids(col("user")?.as_ref(), "user", row0, &mut out.user).map_err(schema_err)?;
            append_ids(col("item")?.as_ref(), "item", row0, &mut out.item).map_err(schema_err)?;
            append_values(col("label")?.as_ref(), "label", row0, &mut out.label)
                .map_err(schema_err)?;
            append_values(col("score")?.as_ref(), "score", row0, &mut out.score)
                .map_err(schema_err)?;
            if let Some(g) = out.user_group.as_mut() {
                append_groups(
                    col("user_group")?.as_ref(),
                    "user_group",
                    &USER_GROUP_NAMES,
                    row0,
                    g,
                )
                .map_err(schema_err)?;
            }
            if let Some(g) = out.item_group.as_mut() {
                append_groups(
                    col("item_group")?.as_ref(),
                    "item_group",
                    &ITEM_GROUP_NAMES,
                    row0,
                    g,
                )
                .map_err(schema_err)?;
            }
            if let Some(l) = out.list.as_mut() {
                let a = col("list")?;
                no_nulls(a.as_ref(), "list", row0).map_err(schema_err)?;
                let cast = arrow::compute::cast(a.as_ref(), &DataType::UInt64).map_err(|e| {
                    schema_err(format!(
                        "column 'list': {e} (list ids must be non-negative)"
                    ))
                })?;
                no_nulls(cast.as_ref(), "list", row0).map_err(|_| {
                    schema_err(format!("column 'list' has a negative id near row {row0}"))
                })?;
                l.extend_from_slice(
                    downcast::<UInt64Array>(cast.as_ref(), "list")
                        .map_err(schema_err)?
                        .values(),
                );
            }
        }
        if out.is_empty() {
            return Err(DataError::Invalid(format!("{}: no rows", path.display())));
        }
        if let Some(i) = out.label.iter().position(|&l| l != 0.0 && l != 1.0) {
            return Err(schema_err(format!(
                "column 'label' row {i}: {} is not 0 or 1",
                out.label[i]
            )));
        }
        Ok(out)
    }
}

/// Integer codes of any width (list ids, group indices).
fn is_code_type(dt: &DataType) -> bool {
    is_id_type(dt)
        || matches!(
            dt,
            DataType::UInt8 | DataType::Int8 | DataType::UInt16 | DataType::Int16
        )
}

/// Group columns: integer codes or the group names as strings.
fn is_group_type(dt: &DataType) -> bool {
    is_code_type(dt) || matches!(dt, DataType::Utf8 | DataType::LargeUtf8)
}

/// Group codes as u8: integers must index `names`; strings must be one of `names`.
fn append_groups(
    a: &dyn Array,
    name: &str,
    names: &[&str],
    row0: usize,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    no_nulls(a, name, row0)?;
    let bad = |i: usize, v: &dyn std::fmt::Display| {
        format!(
            "column '{name}' row {}: '{v}' is not one of {} (or its index)",
            row0 + i,
            names.join(", ")
        )
    };
    if matches!(a.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
        let s = arrow::compute::cast(a, &DataType::Utf8).map_err(|e| e.to_string())?;
        for (i, v) in downcast::<StringArray>(s.as_ref(), name)?
            .iter()
            .enumerate()
        {
            let v = v.unwrap_or_default();
            let code = names
                .iter()
                .position(|n| *n == v)
                .ok_or_else(|| bad(i, &v))?;
            out.push(code as u8);
        }
        return Ok(());
    }
    let cast = arrow::compute::cast(a, &DataType::Int64).map_err(|e| e.to_string())?;
    for (i, &v) in downcast::<arrow::array::Int64Array>(cast.as_ref(), name)?
        .values()
        .iter()
        .enumerate()
    {
        if v < 0 || v as usize >= names.len() {
            return Err(bad(i, &v));
        }
        out.push(v as u8);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn sample() -> ScoresTable {
        ScoresTable {
            user: vec![1, 1, 2],
            item: vec![3, 4, 3],
            label: vec![1.0, 0.0, 1.0],
            score: vec![0.9, 0.2, 0.4],
            user_group: Some(vec![0, 0, 2]),
            item_group: Some(vec![1, 0, 1]),
            list: Some(vec![10, 10, 11]),
        }
    }

    #[test]
    fn round_trip_with_and_without_optional_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.parquet");
        sample().write_parquet(&p).unwrap();
        assert_eq!(ScoresTable::read_parquet(&p).unwrap(), sample());
        let bare = ScoresTable {
            user_group: None,
            item_group: None,
            list: None,
            ..sample()
        };
        bare.write_parquet(&p).unwrap();
        assert_eq!(ScoresTable::read_parquet(&p).unwrap(), bare);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn string_groups_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.parquet");
        let write = |cols: Vec<(&str, ArrayRef)>| {
            let batch = RecordBatch::try_from_iter(cols).unwrap();
            let f = File::create(&p).unwrap();
            let mut w = ArrowWriter::try_new(f, batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
        };
        let base = || -> Vec<(&str, ArrayRef)> {
            vec![
                ("user", Arc::new(UInt32Array::from(vec![1, 2])) as ArrayRef),
                ("item", Arc::new(UInt32Array::from(vec![1, 2]))),
                ("label", Arc::new(Float32Array::from(vec![1.0, 0.0]))),
                ("score", Arc::new(Float32Array::from(vec![0.5, 0.1]))),
            ]
        };
        let mut cols = base();
        cols.push((
            "user_group",
            Arc::new(StringArray::from(vec!["head", "tail"])),
        ));
        write(cols);
        assert_eq!(
            ScoresTable::read_parquet(&p).unwrap().user_group,
            Some(vec![2, 0])
        );

        let mut cols = base();
        cols.push((
            "user_group",
            Arc::new(StringArray::from(vec!["head", "torso"])),
        ));
        write(cols);
        let e = ScoresTable::read_parquet(&p).unwrap_err().to_string();
        assert!(
            e.contains("s.parquet") && e.contains("row 1") && e.contains("torso"),
            "{e}"
        );

        let mut cols = base();
        cols.remove(3);
        write(cols);
        let e = ScoresTable::read_parquet(&p).unwrap_err().to_string();
        assert!(e.contains("missing required column 'score'"), "{e}");

        let mut cols = base();
        cols[2] = ("label", Arc::new(Float32Array::from(vec![1.0, 0.5])));
        write(cols);
        let e = ScoresTable::read_parquet(&p).unwrap_err().to_string();
        assert!(e.contains("'label' row 1"), "{e}");
    }
}
