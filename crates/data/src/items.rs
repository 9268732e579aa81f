//! Item side features: a companion table keyed by the same dense item id as the interactions.
//!
//! [`ItemFeatures`] has **one row per item, not per interaction**: row `i` holds the features of
//! dense item id `i` (row 0 is the padding item and has no features). Item features are properties
//! of the item, so storing them once keeps the table small (thousands of rows instead of millions)
//! and lets a model look them up by item id (an embedding-bag per field); joining them onto the
//! interactions is a cheap gather at batch time. The number of rows equals the item vocabulary size
//! of the import ([`crate::Imported::item_vocab`]`.len()`, padding included).
//!
//! Two kinds of fields:
//! - [`CategoricalField`]: one value per item (e.g. `category`, `brand`, `price_bucket`), id 0 =
//!   missing;
//! - [`ListField`]: a variable-length list of values per item (e.g. `genres`, `attributes`), an
//!   empty list = missing.
//!
//! Each field has its own vocabulary (index = value id, entry 0 = `""`, the padding / missing id;
//! other entries are non-empty and distinct), so ids start at 1 everywhere as in the rest of
//! longtail.
//!
//! Parquet layout (by convention `<name>.items.parquet` beside `<name>.parquet`, see
//! [`items_path`]): column `item` UInt32 (the dense item id, `0..num_items`), one UInt32 column
//! per categorical field, one `List<UInt32>` column per list field (column order: item,
//! categorical fields, list fields), snappy-compressed. Each field's vocabulary is stored as a JSON
//! array of strings in the Arrow schema metadata under `longtail.vocab.<field name>`; the metadata
//! key `longtail.items` is `"v1"`. The file is written to a temporary sibling and renamed, so
//! readers never see half a file.
//!
//! Builders from raw item files map raw item ids through the item vocabulary of the interaction
//! import (index = dense id): items of the file absent from the interactions are ignored, items of
//! the interactions absent from the file get no features (0 / empty list):
//! - [`movielens_item_features`]: `genres` from ml-1m / MovieTweetings `movies.dat`;
//! - [`movielens_100k_item_features`]: `genres` from ml-100k `u.item` (19 genre flags);
//! - [`amazon_item_features`]: `category`, `brand`, `price_bucket` and `attributes` from Amazon
//!   metadata JSON lines (2014 or 2018). Only strict JSON is accepted: the original 2014 dumps
//!   are Python dict literals with single quotes (`{'asin': '0000031852', ...}`), which give an
//!   error naming the file and line; convert them first, e.g. with Python
//!   `json.dumps(ast.literal_eval(line))` per line;
//! - [`table_item_features`]: any headered CSV (plain or gzip) or Parquet table described by an
//!   [`ItemTable`] (`format = "table"` in a config): an id column (Parquet: string or integer,
//!   integers converted to strings) and categorical columns, `columns` (default: every other
//!   named column), some of them list fields split on a separator (`lists = { genres = "|" }`)
//!   or Parquet list columns. A repeated id is an error naming both lines (or rows), a missing
//!   column one naming the file and the column.
//!
//! There are no user feature tables: no model consumes user features.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DataError, Result};
use crate::import::{line_err, movielens_genres, DelimitedReader, LineReader, MAX_LINE_BYTES};
use crate::table::write_atomically;

/// Schema-metadata key that marks an item-feature table written by longtail.
pub const MARKER_KEY: &str = "longtail.items";

/// Prefix of the schema-metadata key holding a field's vocabulary as a JSON array of strings.
pub const VOCAB_KEY_PREFIX: &str = "longtail.vocab.";

/// The genre names of ml-100k's 19 genre flags in `u.item`, in column order (as in `u.genre`).
pub const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// A single-valued categorical item field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CategoricalField {
    pub name: String,
    /// The value id of each item (index = dense item id; 0 = missing).
    pub values: Vec<u32>,
    /// Value names (index = value id; entry 0 = `""`).
    pub vocab: Vec<String>,
}

impl CategoricalField {
    /// The value name of an item (`None` when missing or out of range).
    pub fn name_of(&self, item: usize) -> Option<&str> {
        match self.values.get(item) {
            Some(&v) if v > 0 => self.vocab.get(v as usize).map(String::as_str),
            _ => None,
        }
    }
}

/// A multi-valued (list) item field in CSR form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListField {
    pub name: String,
    /// Row starts into `values` (length = number of items + 1, `offsets[0] = 0`, non-decreasing).
    pub offsets: Vec<usize>,
    /// The value ids of all items, concatenated (each in `1..vocab.len()`).
    pub values: Vec<u32>,
    /// Value names (index = value id; entry 0 = `""`).
    pub vocab: Vec<String>,
}

impl ListField {
    /// The value ids of one item (empty for a missing item or one out of range).
    pub fn row(&self, item: usize) -> &[u32] {
        match (self.offsets.get(item), self.offsets.get(item + 1)) {
            (Some(&a), Some(&b)) if a <= b && b <= self.values.len() => &self.values[a..b],
            _ => &[],
        }
    }

    /// The value names of one item.
    pub fn names_of(&self, item: usize) -> Vec<&str> {
        self.row(item)
            .iter()
            .filter_map(|&v| self.vocab.get(v as usize).map(String::as_str))
            .collect()
    }

    /// Number of items with at least one value.
    pub fn covered(&self) -> usize {
        self.offsets.windows(2).filter(|w| w[1] > w[0]).count()
    }

    /// The largest number of values of one item.
    pub fn max_len(&self) -> usize {
        self.offsets
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .max()
            .unwrap_or(0)
    }
}

/// Item side features: one row per dense item id (row 0 = padding).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemFeatures {
    /// Number of rows = item vocabulary size, padding item 0 included.
    pub num_items: usize,
    pub fields: Vec<CategoricalField>,
    pub lists: Vec<ListField>,
}

/// The conventional item-feature path beside an interaction table: `x.parquet` ->
/// `x.items.parquet` (any other name gets `.items.parquet` appended).
pub fn items_path(interactions: &Path) -> PathBuf {
    let name = interactions
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".parquet").unwrap_or(&name);
    interactions.with_file_name(format!("{stem}.items.parquet"))
}

fn check_vocab(vocab: &[String], what: &str) -> std::result::Result<(), String> {
    if vocab.first().map(String::as_str) != Some("") {
        return Err(format!("{what}: vocabulary entry 0 must be \"\" (missing)"));
    }
    let mut seen = HashMap::with_capacity(vocab.len());
    for (i, v) in vocab.iter().enumerate().skip(1) {
        if v.is_empty() {
            return Err(format!("{what}: vocabulary entry {i} is empty"));
        }
        if let Some(j) = seen.insert(v.as_str(), i) {
            return Err(format!(
                "{what}: vocabulary entries {j} and {i} are both '{v}'"
            ));
        }
    }
    if u32::try_from(vocab.len()).is_err() {
        return Err(format!("{what}: vocabulary larger than u32"));
    }
    Ok(())
}

impl ItemFeatures {
    /// An empty table of `num_items` rows (padding included) without fields.
    pub fn new(num_items: usize) -> Self {
        ItemFeatures {
            num_items,
            ..Default::default()
        }
    }

    /// The categorical field called `name`.
    /// The features of a filtered id space: row `new` is row `map[new]` of `self`.
    pub fn select(&self, map: &[u32]) -> ItemFeatures {
        let mut out = ItemFeatures {
            num_items: map.len(),
            fields: Vec::new(),
            lists: Vec::new(),
        };
        for c in &self.fields {
            let mut c2 = c.clone();
            c2.values = map
                .iter()
                .map(|&old| c.values.get(old as usize).copied().unwrap_or(0))
                .collect();
            out.fields.push(c2);
        }
        for l in &self.lists {
            let mut l2 = l.clone();
            l2.offsets = vec![0];
            l2.values = Vec::new();
            for &old in map {
                l2.values.extend_from_slice(l.row(old as usize));
                l2.offsets.push(l2.values.len());
            }
            out.lists.push(l2);
        }
        out
    }

    /// The feature-map entries of these features: `item_<name>`, categorical for a single-valued
    /// field, a sequence (max length = the most values of one item) for a list field; each looks
    /// up its own table named after the field.
    pub fn feature_specs(&self) -> Vec<crate::feature_map::FeatureSpec> {
        use crate::feature_map::{FeatureKind, FeatureSpec};
        let cats = self.fields.iter().map(|c| FeatureSpec {
            name: format!("item_{}", c.name),
            kind: FeatureKind::Categorical,
            vocab: c.vocab.len(),
            max_len: None,
            table: c.name.clone(),
            dims: None,
        });
        let lists = self.lists.iter().map(|l| FeatureSpec {
            name: format!("item_{}", l.name),
            kind: FeatureKind::Sequence,
            vocab: l.vocab.len(),
            max_len: Some(l.max_len().max(1)),
            table: l.name.clone(),
            dims: None,
        });
        cats.chain(lists).collect()
    }

    /// Every item's values of field or list `name` as a padded `[num_items, width]` row-major
    /// table (0 = none), with `width` = 1 for a categorical field and the longest row for a
    /// list; `None` when there is no such field. Models turn it into a lookup tensor.
    pub fn padded(&self, name: &str) -> Option<(Vec<i64>, usize)> {
        if let Some(c) = self.field(name) {
            let mut v: Vec<i64> = c.values.iter().map(|&x| i64::from(x)).collect();
            v.resize(self.num_items, 0);
            return Some((v, 1));
        }
        let l = self.list(name)?;
        let width = l.max_len().max(1);
        let mut v = vec![0i64; self.num_items * width];
        for i in 0..self.num_items {
            for (k, &x) in l.row(i).iter().enumerate() {
                v[i * width + k] = i64::from(x);
            }
        }
        Some((v, width))
    }

    pub fn field(&self, name: &str) -> Option<&CategoricalField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The list field called `name`.
    pub fn list(&self, name: &str) -> Option<&ListField> {
        self.lists.iter().find(|f| f.name == name)
    }

    /// Every field name, categorical fields first.
    pub fn names(&self) -> Vec<&str> {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .chain(self.lists.iter().map(|f| f.name.as_str()))
            .collect()
    }

    /// Adds a categorical field from per-item value names (index = dense item id; `None` or `""`
    /// = missing). The vocabulary is in order of first appearance over items `0..`. `names` may
    /// be shorter than `num_items` (the rest are missing).
    pub fn push_categorical(&mut self, name: &str, names: &[Option<String>]) -> Result<()> {
        let mut vocab = VocabBuilder::new();
        let mut values = vec![0u32; self.num_items];
        for (i, n) in names.iter().enumerate().take(self.num_items) {
            if let Some(n) = n.as_deref().filter(|n| !n.is_empty()) {
                values[i] = vocab.id(n);
            }
        }
        self.fields.push(CategoricalField {
            name: name.to_string(),
            values,
            vocab: vocab.names,
        });
        self.validate()
    }

    /// Adds a list field from per-item value names (index = dense item id); empty names are
    /// dropped, repeated names within one item kept once. Vocabulary in order of first appearance.
    pub fn push_list(&mut self, name: &str, rows: &[Vec<String>]) -> Result<()> {
        let mut vocab = VocabBuilder::new();
        let mut offsets = Vec::with_capacity(self.num_items + 1);
        let mut values = Vec::new();
        offsets.push(0);
        for i in 0..self.num_items {
            let start = values.len();
            for n in rows.get(i).into_iter().flatten() {
                if n.is_empty() {
                    continue;
                }
                let id = vocab.id(n);
                if !values[start..].contains(&id) {
                    values.push(id);
                }
            }
            offsets.push(values.len());
        }
        self.lists.push(ListField {
            name: name.to_string(),
            offsets,
            values,
            vocab: vocab.names,
        });
        self.validate()
    }

    /// Checks lengths, that every id is within its vocabulary, that vocabularies are well formed
    /// (entry 0 = `""`, others non-empty and distinct), that row 0 (padding) has no features, and
    /// that names are non-empty, not `item` and not repeated.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| DataError::Invalid(format!("item features: {m}"));
        if self.num_items == 0 {
            return Err(bad("num_items is 0 (row 0 is the padding item)".into()));
        }
        let mut names = HashSet::new();
        for name in self.names() {
            if name.is_empty() || name == "item" {
                return Err(bad(format!("invalid field name '{name}'")));
            }
            if !names.insert(name) {
                return Err(bad(format!("field name '{name}' is used twice")));
            }
        }
        for f in &self.fields {
            let what = format!("field '{}'", f.name);
            if f.values.len() != self.num_items {
                return Err(bad(format!(
                    "{what} has {} values, expected {}",
                    f.values.len(),
                    self.num_items
                )));
            }
            check_vocab(&f.vocab, &what).map_err(bad)?;
            if let Some((i, &v)) = f
                .values
                .iter()
                .enumerate()
                .find(|(_, &v)| v as usize >= f.vocab.len())
            {
                return Err(bad(format!(
                    "{what}: item {i} has value id {v}, outside its vocabulary of {}",
                    f.vocab.len()
                )));
            }
            if f.values[0] != 0 {
                return Err(bad(format!("{what}: the padding item 0 has a value")));
            }
        }
        for f in &self.lists {
            let what = format!("list field '{}'", f.name);
            if f.offsets.len() != self.num_items + 1 {
                return Err(bad(format!(
                    "{what} has {} offsets, expected {}",
                    f.offsets.len(),
                    self.num_items + 1
                )));
            }
            if f.offsets[0] != 0
                || f.offsets.windows(2).any(|w| w[1] < w[0])
                || f.offsets[self.num_items] != f.values.len()
            {
                return Err(bad(format!(
                    "{what}: offsets must start at 0, not decrease and end at {} (the number of \
                     values)",
                    f.values.len()
                )));
            }
            check_vocab(&f.vocab, &what).map_err(bad)?;
            if let Some(p) = f
                .values
                .iter()
                .position(|&v| v == 0 || v as usize >= f.vocab.len())
            {
                let item = f.offsets.partition_point(|&o| o <= p) - 1;
                return Err(bad(format!(
                    "{what}: item {item} has value id {}, outside 1..{}",
                    f.values[p],
                    f.vocab.len()
                )));
            }
            if f.offsets[1] != 0 {
                return Err(bad(format!("{what}: the padding item 0 has values")));
            }
        }
        Ok(())
    }

    /// Writes the table as snappy Parquet (see the module docs for the layout), atomically.
    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        self.validate()?;
        let pq_err = |e: &dyn std::fmt::Display| DataError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let n = u32::try_from(self.num_items)
            .map_err(|_| DataError::Invalid("item features: more items than fit in u32".into()))?;
        let mut fields = vec![Field::new("item", DataType::UInt32, false)];
        let mut cols: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_iter_values(0..n))];
        let mut meta = BTreeMap::new();
        meta.insert(MARKER_KEY.to_string(), "v1".to_string());
        let vocab_json = |v: &[String]| serde_json::to_string(v).map_err(|e| pq_err(&e));
        for f in &self.fields {
            fields.push(Field::new(&f.name, DataType::UInt32, false));
            cols.push(Arc::new(UInt32Array::from(f.values.clone())));
            meta.insert(
                format!("{VOCAB_KEY_PREFIX}{}", f.name),
                vocab_json(&f.vocab)?,
            );
        }
        for f in &self.lists {
            let inner = Arc::new(Field::new("element", DataType::UInt32, false));
            let offsets = f
                .offsets
                .iter()
                .map(|&o| i32::try_from(o))
                .collect::<std::result::Result<Vec<i32>, _>>()
                .map_err(|_| {
                    DataError::Invalid(format!(
                        "item features: list field '{}' has more than 2^31 values",
                        f.name
                    ))
                })?;
            let list = ListArray::try_new(
                inner.clone(),
                OffsetBuffer::new(offsets.into()),
                Arc::new(UInt32Array::from(f.values.clone())),
                None,
            )
            .map_err(|e| pq_err(&e))?;
            fields.push(Field::new(&f.name, DataType::List(inner), false));
            cols.push(Arc::new(list));
            meta.insert(
                format!("{VOCAB_KEY_PREFIX}{}", f.name),
                vocab_json(&f.vocab)?,
            );
        }
        let schema = Arc::new(Schema::new(fields).with_metadata(meta));
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| pq_err(&e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        write_atomically(path, |file| {
            let mut writer =
                ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| pq_err(&e))?;
            writer.write(&batch).map_err(|e| pq_err(&e))?;
            let file = writer.into_inner().map_err(|e| pq_err(&e))?;
            file.sync_all().map_err(|e| DataError::io(path, e))
        })
    }

    /// Reads a table written by [`ItemFeatures::write_parquet`]. Every column other than `item`
    /// must be UInt32 (categorical) or `List<UInt32>` (list) with its vocabulary in the schema
    /// metadata; the `item` column must hold each of `0..n` exactly once (any order). Errors are
    /// [`DataError::Schema`] naming the file and the column.
    pub fn read_parquet(path: &Path) -> Result<ItemFeatures> {
        let bad = |message: String| DataError::Schema {
            path: path.to_path_buf(),
            message,
        };
        let builder = crate::table::open_parquet(path)?;
        let schema = builder.schema().clone();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let Some(item_col) = names.iter().position(|n| n == "item") else {
            return Err(bad(format!(
                "missing required column 'item' (columns: {}); not an item-feature table",
                names.join(", ")
            )));
        };
        if schema.field(item_col).data_type() != &DataType::UInt32 {
            return Err(bad(format!(
                "column 'item' has type {}, expected UInt32",
                schema.field(item_col).data_type()
            )));
        }
        // (column index, is list, vocabulary)
        let mut cols = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if i == item_col {
                continue;
            }
            let name = f.name();
            let is_list = match f.data_type() {
                DataType::UInt32 => false,
                DataType::List(inner) if inner.data_type() == &DataType::UInt32 => true,
                dt => {
                    return Err(bad(format!(
                        "column '{name}' has type {dt}, expected UInt32 (categorical field) or \
                         List<UInt32> (list field)"
                    )))
                }
            };
            let key = format!("{VOCAB_KEY_PREFIX}{name}");
            let Some(json) = schema.metadata().get(&key) else {
                return Err(bad(format!(
                    "column '{name}' has no vocabulary (schema metadata key '{key}' missing)"
                )));
            };
            let vocab: Vec<String> = serde_json::from_str(json).map_err(|e| {
                bad(format!(
                    "column '{name}': vocabulary metadata '{key}' is not a JSON array of strings: \
                     {e}"
                ))
            })?;
            check_vocab(&vocab, &format!("column '{name}'")).map_err(bad)?;
            cols.push((i, name.clone(), is_list, vocab));
        }
        let reader = crate::table::parquet_batches(path, builder)?;
        let mut items: Vec<u32> = Vec::new();
        let mut cat: Vec<Vec<u32>> = vec![Vec::new(); cols.len()];
        let mut rows: Vec<Vec<Vec<u32>>> = vec![Vec::new(); cols.len()];
        for batch in reader {
            let batch = batch?;
            let row0 = items.len();
            let item = batch.column(item_col);
            if item.null_count() > 0 {
                return Err(bad("column 'item' has nulls".into()));
            }
            let item = item
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| bad("column 'item' is not UInt32".into()))?;
            items.extend_from_slice(item.values());
            for (k, (i, name, is_list, vocab)) in cols.iter().enumerate() {
                let a = batch.column(*i);
                if a.null_count() > 0 {
                    let r = (0..a.len()).find(|&r| a.is_null(r)).unwrap_or(0);
                    return Err(bad(format!(
                        "column '{name}' has a null at row {} (0-based)",
                        row0 + r
                    )));
                }
                let out_of_range = |r: usize, v: u32| {
                    bad(format!(
                        "column '{name}' row {} (0-based): value id {v} is outside its \
                         vocabulary of {} entries",
                        row0 + r,
                        vocab.len()
                    ))
                };
                if *is_list {
                    let l = a
                        .as_any()
                        .downcast_ref::<ListArray>()
                        .ok_or_else(|| bad(format!("column '{name}' is not a list")))?;
                    let vals = l
                        .values()
                        .as_any()
                        .downcast_ref::<UInt32Array>()
                        .ok_or_else(|| bad(format!("column '{name}' is not a list of UInt32")))?;
                    if vals.null_count() > 0 {
                        return Err(bad(format!("column '{name}' has null list elements")));
                    }
                    let offs = l.value_offsets();
                    for r in 0..l.len() {
                        let (s, e) = (offs[r], offs[r + 1]);
                        let row = usize::try_from(s)
                            .ok()
                            .zip(usize::try_from(e).ok())
                            .and_then(|(s, e)| vals.values().get(s..e))
                            .ok_or_else(|| {
                                bad(format!(
                                    "column '{name}' row {} (0-based): list offsets {s}..{e} \
                                     outside its {} values",
                                    row0 + r,
                                    vals.len()
                                ))
                            })?;
                        if let Some(&v) = row.iter().find(|&&v| v == 0 || v as usize >= vocab.len())
                        {
                            return Err(out_of_range(r, v));
                        }
                        rows[k].push(row.to_vec());
                    }
                } else {
                    let vals = a
                        .as_any()
                        .downcast_ref::<UInt32Array>()
                        .ok_or_else(|| bad(format!("column '{name}' is not UInt32")))?;
                    if let Some((r, &v)) = vals
                        .values()
                        .iter()
                        .enumerate()
                        .find(|(_, &v)| v as usize >= vocab.len())
                    {
                        return Err(out_of_range(r, v));
                    }
                    cat[k].extend_from_slice(vals.values());
                }
            }
        }
        let n = items.len();
        if n == 0 {
            return Err(bad("no rows (row 0, the padding item, is required)".into()));
        }
        // Row position of each item id; item ids must be exactly 0..n.
        let mut pos = vec![usize::MAX; n];
        for (r, &it) in items.iter().enumerate() {
            let Some(slot) = pos.get_mut(it as usize) else {
                return Err(bad(format!(
                    "column 'item' row {r}: item id {it} is outside 0..{n} (the ids must be \
                     0..n-1, each once)"
                )));
            };
            if *slot != usize::MAX {
                return Err(bad(format!(
                    "column 'item': item id {it} appears twice (rows {} and {r})",
                    *slot
                )));
            }
            *slot = r;
        }
        let mut out = ItemFeatures::new(n);
        for (k, (_, name, is_list, vocab)) in cols.into_iter().enumerate() {
            if is_list {
                let mut offsets = Vec::with_capacity(n + 1);
                let mut values = Vec::new();
                offsets.push(0);
                for &p in &pos {
                    values.extend_from_slice(&rows[k][p]);
                    offsets.push(values.len());
                }
                out.lists.push(ListField {
                    name,
                    offsets,
                    values,
                    vocab,
                });
            } else {
                let values = pos.iter().map(|&p| cat[k][p]).collect();
                out.fields.push(CategoricalField {
                    name,
                    values,
                    vocab,
                });
            }
        }
        out.validate().map_err(|e| bad(e.to_string()))?;
        Ok(out)
    }
}

/// Name -> id in order of first appearance, id 0 = `""`.
struct VocabBuilder {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl VocabBuilder {
    fn new() -> Self {
        VocabBuilder {
            index: HashMap::new(),
            names: vec![String::new()],
        }
    }

    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        i
    }
}

/// Raw item id -> dense item id of an interaction import's item vocabulary.
fn dense_index(item_vocab: &[String]) -> Result<HashMap<&str, usize>> {
    if item_vocab.first().map(String::as_str) != Some("") {
        return Err(DataError::Invalid(
            "item vocabulary: entry 0 must be \"\" (the padding id)".into(),
        ));
    }
    Ok(item_vocab
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, s)| (s.as_str(), i))
        .collect())
}

/// `genres` (list field) from ml-1m / MovieTweetings `movies.dat` (`id::title::Genre|Genre`, see
/// [`movielens_genres`]) for the items of `item_vocab` (index = dense id). The genre vocabulary is
/// in order of first appearance over dense item ids.
pub fn movielens_item_features(movies_dat: &Path, item_vocab: &[String]) -> Result<ItemFeatures> {
    let index = dense_index(item_vocab)?;
    let genres = movielens_genres(movies_dat)?;
    let mut rows = vec![Vec::new(); item_vocab.len()];
    for (raw, g) in genres {
        if let Some(&i) = index.get(raw.as_str()) {
            rows[i] = g;
        }
    }
    let mut out = ItemFeatures::new(item_vocab.len());
    out.push_list("genres", &rows)?;
    Ok(out)
}

/// `genres` (list field) from ml-100k `u.item`: `id|title|release date|video date|url|` and 19
/// genre flags (0/1) named by [`ML100K_GENRES`]; decoded as Latin-1 when not UTF-8. The genre
/// vocabulary is fixed: id `k + 1` = `ML100K_GENRES[k]`. Blank lines are skipped; a line without 24
/// `|`-separated fields, a flag other than 0/1, an empty or repeated id is an error naming the
/// file and line.
pub fn movielens_100k_item_features(u_item: &Path, item_vocab: &[String]) -> Result<ItemFeatures> {
    let index = dense_index(item_vocab)?;
    let mut lines = LineReader::open(u_item, MAX_LINE_BYTES)?;
    let n = item_vocab.len();
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut seen = HashSet::new();
    let mut any = false;
    while let Some((line_no, raw)) = lines.next_line()? {
        let text: String = match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(_) => raw.iter().map(|&b| b as char).collect(),
        };
        let text = text.trim_end_matches('\r');
        let text = if line_no == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        if text.trim().is_empty() {
            continue;
        }
        let at = |m: String| line_err(u_item, line_no, m);
        let f: Vec<&str> = text.split('|').collect();
        if f.len() != 5 + ML100K_GENRES.len() {
            return Err(at(format!(
                "expected 24 fields separated by '|' (id, title, release date, video release \
                 date, url and 19 genre flags), found {}",
                f.len()
            )));
        }
        let id = f[0].trim();
        if id.is_empty() {
            return Err(at("empty movie id".into()));
        }
        if !seen.insert(id.to_string()) {
            return Err(at(format!("movie id '{id}' appears twice")));
        }
        any = true;
        let mut genres = Vec::new();
        for (k, flag) in f[5..].iter().enumerate() {
            match flag.trim() {
                "0" => {}
                "1" => genres.push(k as u32 + 1),
                other => {
                    return Err(at(format!(
                        "genre flag {} ('{}', field {}) is '{other}', expected 0 or 1",
                        k + 1,
                        ML100K_GENRES[k],
                        k + 6
                    )))
                }
            }
        }
        if let Some(&i) = index.get(id) {
            rows[i] = genres;
        }
    }
    if !any {
        return Err(DataError::Schema {
            path: u_item.to_path_buf(),
            message: "no rows (no movies)".into(),
        });
    }
    let mut offsets = Vec::with_capacity(n + 1);
    let mut values = Vec::new();
    offsets.push(0);
    for r in &rows {
        values.extend_from_slice(r);
        offsets.push(values.len());
    }
    let vocab = std::iter::once("")
        .chain(ML100K_GENRES)
        .map(str::to_string)
        .collect();
    let out = ItemFeatures {
        num_items: n,
        fields: Vec::new(),
        lists: vec![ListField {
            name: "genres".into(),
            offsets,
            values,
            vocab,
        }],
    };
    out.validate()?;
    Ok(out)
}

/// Parses an Amazon `price`: a JSON number, or a string such as `"$12.99"` / `"1,299.00"`.
/// Anything else (ranges like `"$10.99 - $20.00"`, empty, negative, non-finite) is `None`.
pub fn parse_price(v: &Value) -> Option<f64> {
    let p = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s: String = s
                .trim()
                .trim_start_matches('$')
                .chars()
                .filter(|&c| c != ',')
                .collect();
            s.trim().parse::<f64>().ok()?
        }
        _ => return None,
    };
    (p.is_finite() && p >= 0.0).then_some(p)
}

/// Equal-frequency bucket (1..=k) of each price among `prices`: bucket of `p` =
/// `floor(rank * k / n) + 1` where `rank` is the number of prices strictly below `p`, so equal
/// prices share a bucket.
fn price_bucket_ids(prices: &[Option<f64>], k: usize) -> Vec<u32> {
    let mut sorted: Vec<f64> = prices.iter().flatten().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    prices
        .iter()
        .map(|p| match p {
            Some(p) if n > 0 => {
                let rank = sorted.partition_point(|&x| x < *p);
                (rank * k / n) as u32 + 1
            }
            _ => 0,
        })
        .collect()
}

/// The most `price_buckets` [`amazon_item_features`] accepts.
pub const MAX_PRICE_BUCKETS: usize = 1000;

/// Item features from Amazon metadata JSON lines (plain or gzip), one object per line with
/// `asin` and optionally:
/// - `categories` (2014: list of category paths, lists of strings) or `category` (2018: one path,
///   a list of strings): the first path's last element is the `category` field and all its
///   elements form the `attributes` list field;
/// - `brand` (string) -> `brand` field;
/// - `price` (number or a string like `"$12.99"`; unparsable = missing) -> `price_bucket` field:
///   `price_buckets` equal-frequency buckets over the priced items present in `item_vocab`, ids
///   `1..=k` named `q1`..`qk` (cheapest first); `price_buckets = 0` leaves the field out; more
///   than [`MAX_PRICE_BUCKETS`] is a config error.
///
/// Objects whose `asin` is not in `item_vocab` are ignored; a repeated `asin` keeps its first
/// line. A line that is not a strict-JSON object (e.g. the single-quoted Python-literal lines of
/// the original 2014 dumps), or without a string `asin`, is an error naming the file and line.
pub fn amazon_item_features(
    meta_json: &Path,
    item_vocab: &[String],
    price_buckets: usize,
) -> Result<ItemFeatures> {
    if price_buckets > MAX_PRICE_BUCKETS {
        // The bucket vocabulary is built up front: a huge count would be a huge allocation.
        return Err(DataError::config(
            "price_buckets",
            format!("{price_buckets} price buckets; at most {MAX_PRICE_BUCKETS}"),
        ));
    }
    let index = dense_index(item_vocab)?;
    let n = item_vocab.len();
    let mut category: Vec<Option<String>> = vec![None; n];
    let mut brand: Vec<Option<String>> = vec![None; n];
    let mut price: Vec<Option<f64>> = vec![None; n];
    let mut attributes: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut done = vec![false; n];
    let mut lines = LineReader::open(meta_json, MAX_LINE_BYTES)?;
    let mut any = false;
    while let Some((line_no, text)) = lines.next_text()? {
        if text.trim().is_empty() {
            continue;
        }
        let at = |m: String| line_err(meta_json, line_no, m);
        let v: Value = serde_json::from_str(text).map_err(|e| {
            let hint = if text.trim_start().starts_with("{'") || text.contains("': ") {
                " (this looks like a single-quoted Python dict literal, as in the original 2014 \
                 Amazon metadata dumps: those are not supported; convert each line to strict \
                 JSON first, e.g. json.dumps(ast.literal_eval(line)) in Python)"
            } else {
                " (only strict JSON lines are supported; single-quoted Python-literal lines are \
                 not)"
            };
            at(format!("invalid JSON: {e}{hint}"))
        })?;
        let Value::Object(obj) = v else {
            return Err(at("expected a JSON object".into()));
        };
        let asin = match obj.get("asin") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
            Some(Value::Number(_)) => {
                return Err(at(
                    "field 'asin' must be a string (numbers lose leading zeros)".into(),
                ))
            }
            _ => return Err(at("missing or empty string field 'asin'".into())),
        };
        any = true;
        let Some(&i) = index.get(asin) else { continue };
        if std::mem::replace(&mut done[i], true) {
            continue;
        }
        let strings = |v: &Value| -> Vec<String> {
            match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let path: Vec<String> = match (obj.get("categories"), obj.get("category")) {
            (Some(Value::Array(paths)), _) if !paths.is_empty() => strings(&paths[0]),
            (_, Some(c @ Value::Array(_))) => strings(c),
            _ => Vec::new(),
        };
        category[i] = path.last().cloned();
        attributes[i] = path;
        brand[i] = obj
            .get("brand")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        price[i] = obj.get("price").and_then(parse_price);
    }
    if !any {
        return Err(DataError::Schema {
            path: meta_json.to_path_buf(),
            message: "no rows (no item metadata)".into(),
        });
    }
    let mut out = ItemFeatures::new(n);
    out.push_categorical("category", &category)?;
    out.push_categorical("brand", &brand)?;
    if price_buckets > 0 {
        let k = u32::try_from(price_buckets)
            .map_err(|_| DataError::config("price_buckets", "too many buckets"))?;
        let vocab = std::iter::once(String::new())
            .chain((1..=k).map(|q| format!("q{q}")))
            .collect();
        out.fields.push(CategoricalField {
            name: "price_bucket".into(),
            values: price_bucket_ids(&price, price_buckets),
            vocab,
        });
    }
    out.push_list("attributes", &attributes)?;
    out.validate()?;
    Ok(out)
}

/// A generic item-feature table (`format = "table"` in a config's `[data] items`): a headered
/// CSV (plain or gzip; the dialect of the `csv` import format) or a Parquet file (detected by its
/// magic bytes `PAR1`), with an id column and categorical columns, some of them lists.
///
/// Deserializes from TOML / JSON such as
/// `{ path = "items.csv", id = "item_id", columns = ["genre", "brand"], lists = { genres = "|" } }`
/// (unknown keys are errors); [`ItemTable::from_spec`] reads the compact command-line form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemTable {
    /// The table file.
    pub path: PathBuf,
    /// The raw item id column (matched against the interaction import's item ids).
    pub id: String,
    /// The feature columns, in this order; omitted: every other column (in file order, skipping
    /// a column without a name, such as the index `pandas.DataFrame.to_csv` writes first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// List fields: column -> the separator between its values in one cell (e.g.
    /// `genres = "|"` for `Action|Comedy`). A column named here is a feature even when
    /// `columns` leaves it out. Parquet list columns are list fields without an entry here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, String>,
    /// CSV only: the field delimiter (one ASCII character, default `,`).
    #[serde(
        default = "default_table_delimiter",
        skip_serializing_if = "is_default_table_delimiter"
    )]
    pub delimiter: char,
}

fn default_table_delimiter() -> char {
    ','
}

fn is_default_table_delimiter(c: &char) -> bool {
    *c == ','
}

/// The separator names the compact form accepts (besides a literal string).
fn separator_name(v: &str) -> &str {
    match v {
        "pipe" => "|",
        "comma" => ",",
        "semicolon" => ";",
        "colon" => ":",
        "tab" | "\\t" => "\t",
        "space" => " ",
        other => other,
    }
}

impl ItemTable {
    /// A table at `path` with id column `id`, every other column a categorical feature.
    pub fn new(path: impl Into<PathBuf>, id: &str) -> Self {
        ItemTable {
            path: path.into(),
            id: id.to_string(),
            columns: None,
            lists: BTreeMap::new(),
            delimiter: default_table_delimiter(),
        }
    }

    /// The table at `path` described by `spec`: a JSON object with the keys of [`ItemTable`]
    /// but `path`, or comma-separated `key=value` pairs: `id=COL` (required),
    /// `columns=A;B;C` (`;` between names), `lists=COL:SEP;COL2:SEP2` (`;` between lists; the
    /// separator after the last `:`, literal or one of `pipe`, `comma`, `semicolon`, `colon`,
    /// `tab`, `space`), `delimiter=C` (a character or one of those names). Names holding `,`,
    /// `;` or `:` need the JSON form. Errors are [`DataError::Config`] with key `items`; the
    /// result is validated ([`ItemTable::validate`]).
    pub fn from_spec(path: &Path, spec: &str) -> Result<Self> {
        let bad = |m: String| DataError::config("items", m);
        let spec = spec.trim();
        let mut t = ItemTable::new(path, "");
        if spec.starts_with('{') {
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(spec)
                .map_err(|e| bad(format!("not a valid item table spec: {e}")))?;
            if v.contains_key("path") {
                return Err(bad(
                    "the item table spec takes no 'path' (the file is given separately)".into(),
                ));
            }
            v.insert(
                "path".into(),
                Value::String(path.to_string_lossy().into_owned()),
            );
            t = serde_json::from_value(Value::Object(v))
                .map_err(|e| bad(format!("not a valid item table spec: {e}")))?;
            t.path = path.to_path_buf();
            t.validate()?;
            return Ok(t);
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut id = None;
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(bad(format!("expected key=value, found '{pair}'")));
            };
            let (k, v) = (k.trim(), v.trim());
            if seen.contains(&k) {
                return Err(bad(format!(
                    "duplicate key '{k}' in '{spec}': give each key once"
                )));
            }
            seen.push(k);
            if v.is_empty() {
                return Err(bad(format!("empty value for '{k}'")));
            }
            match k {
                "id" => id = Some(v.to_string()),
                "columns" => {
                    t.columns = Some(
                        v.split(';')
                            .map(str::trim)
                            .filter(|c| !c.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                "lists" => {
                    for entry in v.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                        let Some((col, sep)) = entry.rsplit_once(':') else {
                            return Err(bad(format!(
                                "lists entry '{entry}' is not COLUMN:SEPARATOR (e.g. \
                                 genres:pipe)"
                            )));
                        };
                        let col = col.trim().to_string();
                        if t.lists.contains_key(&col) {
                            return Err(bad(format!("list column '{col}' is given twice")));
                        }
                        t.lists.insert(col, separator_name(sep).to_string());
                    }
                }
                "delimiter" => {
                    let d = separator_name(v);
                    let mut chars = d.chars();
                    t.delimiter = match (chars.next(), chars.next()) {
                        (Some(c), None) => c,
                        _ => {
                            return Err(bad(format!(
                                "delimiter '{v}' is not a single character (or tab, comma, \
                                 semicolon, pipe, space)"
                            )))
                        }
                    };
                }
                _ => {
                    return Err(bad(format!(
                        "unknown key '{k}' (valid: id, columns, lists, delimiter)"
                    )))
                }
            }
        }
        t.id = id.ok_or_else(|| {
            bad(format!(
                "missing required key 'id' (the item id column) in '{spec}': e.g. \
                 id=item_id,columns=genre;brand,lists=genres:pipe"
            ))
        })?;
        t.validate()?;
        Ok(t)
    }

    /// Checks the keys on their own (before the file is read): a non-empty `id`, no column
    /// twice in `columns`, neither `columns` nor `lists` naming the id column or `item`, list
    /// separators not empty, an ASCII delimiter other than `"` and line breaks. Errors are
    /// [`DataError::Config`] with key `items`.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DataError::config("items", m));
        if self.id.trim().is_empty() {
            return bad("the id column name is empty".into());
        }
        let listed = self.columns.iter().flatten().map(String::as_str);
        let mut seen = HashSet::new();
        for c in listed.clone() {
            if !seen.insert(c) {
                return bad(format!("column '{c}' is given twice in columns"));
            }
        }
        for c in listed.chain(self.lists.keys().map(String::as_str)) {
            if c == self.id {
                return bad(format!(
                    "column '{c}' is the id column; it cannot also be a feature"
                ));
            }
            if c.is_empty() || c == "item" {
                return bad(format!(
                    "'{c}' cannot be a feature name (empty, or 'item', which items.parquet uses \
                     for the item id)"
                ));
            }
        }
        if let Some((c, _)) = self.lists.iter().find(|(_, sep)| sep.is_empty()) {
            return bad(format!("list column '{c}' has an empty separator"));
        }
        if matches!(self.delimiter, '"' | '\n' | '\r') || !self.delimiter.is_ascii() {
            return bad(format!(
                "delimiter {:?} cannot be used (one ASCII character, not a quote or line break)",
                self.delimiter
            ));
        }
        Ok(())
    }
}

/// One feature of an [`ItemTable`] as read: its column, name and how its cells split.
struct TableFeature {
    /// Index in the header / schema.
    col: usize,
    name: String,
    /// `Some(sep)`: a text list field split on `sep`.
    split: Option<String>,
    /// A native list column (Parquet `List` / `LargeList`).
    native_list: bool,
}

impl TableFeature {
    fn is_list(&self) -> bool {
        self.split.is_some() || self.native_list
    }
}

/// Resolves the id column and the features of `table` against the file's column `names`;
/// `native_list(i)` tells whether column `i` is a Parquet list. Errors name the file and column.
fn table_plan(
    table: &ItemTable,
    path: &Path,
    names: &[String],
    native_list: &dyn Fn(usize) -> bool,
) -> Result<(usize, Vec<TableFeature>)> {
    let bad = |message: String| DataError::Schema {
        path: path.to_path_buf(),
        message,
    };
    let have = || {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |c: &str, key: &str| -> Result<usize> {
        let mut hits = names.iter().enumerate().filter(|(_, n)| n.as_str() == c);
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Ok(i),
            (Some(_), Some(_)) => Err(bad(format!("column '{c}' ({key}) appears twice"))),
            _ => Err(bad(format!(
                "column '{c}' ({key}) is not in the file (columns: {})",
                have()
            ))),
        }
    };
    let id = find(&table.id, "the id column")?;
    let mut wanted: Vec<(String, &str)> = match &table.columns {
        Some(cols) => cols.iter().map(|c| (c.clone(), "key 'columns'")).collect(),
        None => names
            .iter()
            .enumerate()
            .filter(|&(i, n)| i != id && !n.is_empty())
            .map(|(_, n)| (n.clone(), "a feature"))
            .collect(),
    };
    for c in table.lists.keys() {
        if !wanted.iter().any(|(w, _)| w == c) {
            wanted.push((c.clone(), "key 'lists'"));
        }
    }
    let mut out = Vec::new();
    for (c, key) in wanted {
        let col = find(&c, key)?;
        if col == id {
            return Err(bad(format!(
                "column '{c}' is the id column; it cannot also be a feature"
            )));
        }
        if c == "item" {
            return Err(bad(format!(
                "column 'item' ({key}) cannot be a feature: items.parquet uses the name for the \
                 item id; rename the column or leave it out of columns"
            )));
        }
        let split = table.lists.get(&c).cloned();
        let native_list = native_list(col);
        if native_list && split.is_some() {
            return Err(bad(format!(
                "column '{c}' is already a list column; leave it out of lists"
            )));
        }
        out.push(TableFeature {
            col,
            name: c,
            split,
            native_list,
        });
    }
    if out.is_empty() {
        return Err(bad(format!(
            "no feature columns besides the id column '{}' (columns: {})",
            table.id,
            have()
        )));
    }
    Ok((id, out))
}

/// Per dense item id, the cells of each feature; checks ids for duplicates.
struct TableCells<'a> {
    index: HashMap<&'a str, usize>,
    /// (first line or row of each raw id seen).
    seen: HashMap<String, usize>,
    cats: Vec<Vec<Option<String>>>,
    lists: Vec<Vec<Vec<String>>>,
}

impl<'a> TableCells<'a> {
    fn new(item_vocab: &'a [String], features: &[TableFeature]) -> Result<Self> {
        let n = item_vocab.len();
        let lists = features.iter().filter(|f| f.is_list()).count();
        Ok(TableCells {
            index: dense_index(item_vocab)?,
            seen: HashMap::new(),
            cats: vec![vec![None; n]; features.len() - lists],
            lists: vec![vec![Vec::new(); n]; lists],
        })
    }

    /// Registers raw id `id` at `at` (a line or a row); `Ok(Some(dense))` when the import knows
    /// it, `Err(first)` when the id was seen before (at `first`).
    fn id(&mut self, id: &str, at: usize) -> std::result::Result<Option<usize>, usize> {
        if let Some(&first) = self.seen.get(id) {
            return Err(first);
        }
        self.seen.insert(id.to_string(), at);
        Ok(self.index.get(id).copied())
    }

    fn finish(self, path: &Path, features: &[TableFeature], n: usize) -> Result<ItemFeatures> {
        if self.seen.is_empty() {
            return Err(DataError::Schema {
                path: path.to_path_buf(),
                message: "no rows (no items)".into(),
            });
        }
        let mut out = ItemFeatures::new(n);
        let (mut c, mut l) = (0, 0);
        let named = |e: DataError| DataError::Schema {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        for f in features {
            if f.is_list() {
                out.push_list(&f.name, &self.lists[l]).map_err(named)?;
                l += 1;
            } else {
                out.push_categorical(&f.name, &self.cats[c])
                    .map_err(named)?;
                c += 1;
            }
        }
        Ok(out)
    }
}

/// The values of one list cell split on `sep`: trimmed, empty ones dropped.
fn split_cell(cell: &str, sep: &str) -> Vec<String> {
    cell.split(sep)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// Item features from a generic [`ItemTable`] (read from `table.path` as given), for the items of
/// `item_vocab` (index = dense id):
/// - a categorical field per feature column (one value per item, the trimmed cell; an empty
///   cell or a null = missing), a list field per `lists` column (the cell split on its
///   separator, values trimmed, empty ones dropped, repeats within an item kept once) and per
///   Parquet list column; vocabularies in order of first appearance over dense item ids;
/// - raw ids are matched through `item_vocab`: ids of the file the import does not know are
///   ignored, items the file lacks get 0 / an empty list;
/// - an empty id, a repeated id (naming both lines, or 0-based Parquet rows), a row with the
///   wrong number of fields, a missing column (naming it), a file without rows are errors
///   naming the file.
///
/// Parquet: the id may be Utf8/LargeUtf8 or any integer type (converted to strings, as the
/// `parquet` import format does); features Utf8/LargeUtf8, integers, booleans or dictionaries of
/// those (as strings), or `List` / `LargeList` of those (list fields). Float columns are refused
/// (bucket them first).
pub fn table_item_features(table: &ItemTable, item_vocab: &[String]) -> Result<ItemFeatures> {
    table.validate()?;
    let path = table.path.as_path();
    let mut head = [0u8; 4];
    let is_parquet = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut got = 0;
        while got < 4 {
            match f.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DataError::io(path, e)),
            }
        }
        got == 4 && &head == b"PAR1"
    };
    if is_parquet {
        table_parquet(table, path, item_vocab)
    } else {
        table_csv(table, path, item_vocab)
    }
}

fn table_csv(table: &ItemTable, path: &Path, item_vocab: &[String]) -> Result<ItemFeatures> {
    let delim = u8::try_from(table.delimiter)
        .map_err(|_| DataError::config("items", "the delimiter must be ASCII"))?;
    let mut records = DelimitedReader::open(path, delim, MAX_LINE_BYTES)?;
    let Some((_, header)) = records.next_record()? else {
        return Err(DataError::Schema {
            path: path.to_path_buf(),
            message: "no rows (not even a header line)".into(),
        });
    };
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let (id_col, features) = table_plan(table, path, &names, &|_| false)?;
    let mut cells = TableCells::new(item_vocab, &features)?;
    while let Some((line, fields)) = records.next_record()? {
        let at = |m: String| line_err(path, line, m);
        if fields.len() != names.len() {
            return Err(at(format!(
                "expected {} fields separated by {:?} (as the header), found {}",
                names.len(),
                table.delimiter,
                fields.len()
            )));
        }
        let id = fields[id_col].trim();
        if id.is_empty() {
            return Err(at(format!("column '{}' (id): empty id", table.id)));
        }
        let dense = cells.id(id, line).map_err(|first| {
            at(format!(
                "column '{}' (id): item id '{id}' appears twice (first on line {first})",
                table.id
            ))
        })?;
        let Some(i) = dense else { continue };
        let (mut c, mut l) = (0, 0);
        for f in &features {
            let cell = fields[f.col].trim();
            match &f.split {
                Some(sep) => {
                    cells.lists[l][i] = split_cell(cell, sep);
                    l += 1;
                }
                None => {
                    cells.cats[c][i] = (!cell.is_empty()).then(|| cell.to_string());
                    c += 1;
                }
            }
        }
    }
    cells.finish(path, &features, item_vocab.len())
}

/// Whether a Parquet feature column of this type can be read as strings.
fn is_text_like(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Boolean => true,
        DataType::Dictionary(_, v) => is_text_like(v),
        dt => dt.is_integer(),
    }
}

fn table_parquet(table: &ItemTable, path: &Path, item_vocab: &[String]) -> Result<ItemFeatures> {
    use arrow::array::{LargeListArray, StringArray};
    use parquet::arrow::ProjectionMask;
    let bad = |message: String| DataError::Schema {
        path: path.to_path_buf(),
        message,
    };
    let builder = crate::table::open_parquet(path)?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let list_inner = |i: usize| match schema.field(i).data_type() {
        DataType::List(f) | DataType::LargeList(f) => Some(f.data_type().clone()),
        _ => None,
    };
    let (id_col, features) = table_plan(table, path, &names, &|i| list_inner(i).is_some())?;
    let id_type = schema.field(id_col).data_type();
    if !(id_type.is_integer() || matches!(id_type, DataType::Utf8 | DataType::LargeUtf8)) {
        return Err(bad(format!(
            "column '{}' (id) has type {id_type}, expected a string or integer id",
            table.id
        )));
    }
    for f in &features {
        let dt = schema.field(f.col).data_type();
        let ok = match list_inner(f.col) {
            Some(inner) => is_text_like(&inner),
            None => is_text_like(dt),
        };
        if !ok {
            let hint = if dt.is_floating() {
                " (a float is not a category: bucket it first)"
            } else {
                ""
            };
            return Err(bad(format!(
                "column '{}' has type {dt}, expected strings, integers or booleans, or a list \
                 of them{hint}",
                f.name
            )));
        }
    }
    let mut roots = vec![id_col];
    roots.extend(features.iter().map(|f| f.col));
    roots.sort_unstable();
    roots.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = crate::table::parquet_batches(
        path,
        builder.with_projection(mask).with_batch_size(1 << 16),
    )?;
    let mut cells = TableCells::new(item_vocab, &features)?;
    let utf8 = |a: &dyn Array, name: &str| -> Result<ArrayRef> {
        arrow::compute::cast(a, &DataType::Utf8)
            .map_err(|e| bad(format!("column '{name}': cannot read as text: {e}")))
    };
    let mut row0 = 0usize;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch?;
        let n = batch.num_rows();
        let id_name = table.id.as_str();
        let id_arr = batch
            .column_by_name(id_name)
            .ok_or_else(|| bad(format!("column '{id_name}' vanished from a record batch")))?;
        if let Some(r) = (0..id_arr.len()).find(|&r| id_arr.is_null(r)) {
            return Err(bad(format!(
                "column '{id_name}' (id) has a null at row {} (0-based)",
                row0 + r
            )));
        }
        ids.clear();
        crate::import::raw_ids(id_arr.as_ref(), &mut ids)
            .map_err(|m| bad(format!("column '{id_name}' (id): {m}")))?;
        // Each feature's cells of this batch, as text.
        let mut texts: Vec<ArrayRef> = Vec::with_capacity(features.len());
        for f in &features {
            let a = batch
                .column_by_name(&f.name)
                .ok_or_else(|| bad(format!("column '{}' vanished from a record batch", f.name)))?;
            let t = if f.native_list {
                let field = Arc::new(Field::new("item", DataType::Utf8, true));
                arrow::compute::cast(a.as_ref(), &DataType::LargeList(field))
                    .map_err(|e| bad(format!("column '{}': cannot read as text: {e}", f.name)))?
            } else {
                utf8(a.as_ref(), &f.name)?
            };
            texts.push(t);
        }
        for (r, id) in ids.iter().enumerate() {
            let id = id.trim();
            if id.is_empty() {
                return Err(bad(format!(
                    "column '{id_name}' (id) has an empty id at row {} (0-based)",
                    row0 + r
                )));
            }
            let dense = cells.id(id, row0 + r).map_err(|first| {
                bad(format!(
                    "column '{id_name}' (id): item id '{id}' appears twice (rows {first} and {}, \
                     0-based)",
                    row0 + r
                ))
            })?;
            let Some(i) = dense else { continue };
            let (mut c, mut l) = (0, 0);
            for (f, t) in features.iter().zip(&texts) {
                if f.native_list {
                    let list = t
                        .as_any()
                        .downcast_ref::<LargeListArray>()
                        .ok_or_else(|| bad(format!("column '{}' is not a list", f.name)))?;
                    if !list.is_null(r) {
                        let vals = list.value(r);
                        let vals = vals
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .ok_or_else(|| bad(format!("column '{}' is not text", f.name)))?;
                        cells.lists[l][i] = vals
                            .iter()
                            .flatten()
                            .map(str::trim)
                            .filter(|v| !v.is_empty())
                            .map(str::to_string)
                            .collect();
                    }
                    l += 1;
                    continue;
                }
                let s = t
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| bad(format!("column '{}' is not text", f.name)))?;
                let cell = if s.is_null(r) { "" } else { s.value(r).trim() };
                match &f.split {
                    Some(sep) => {
                        cells.lists[l][i] = split_cell(cell, sep);
                        l += 1;
                    }
                    None => {
                        cells.cats[c][i] = (!cell.is_empty()).then(|| cell.to_string());
                        c += 1;
                    }
                }
            }
        }
        row0 += n;
    }
    cells.finish(path, &features, item_vocab.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn vocab(ids: &[&str]) -> Vec<String> {
        std::iter::once("")
            .chain(ids.iter().copied())
            .map(str::to_string)
            .collect()
    }

    fn sample() -> ItemFeatures {
        let mut f = ItemFeatures::new(4);
        f.push_categorical(
            "brand",
            &[None, Some("Fender".into()), None, Some("Gibson".into())],
        )
        .unwrap();
        f.push_list(
            "genres",
            &[
                vec![],
                vec!["Drama".into(), "Comedy".into(), "Drama".into()],
                vec![],
                vec!["Comedy".into()],
            ],
        )
        .unwrap();
        f
    }

    #[test]
    fn accessors_and_builders() {
        let f = sample();
        assert_eq!(f.field("brand").unwrap().values, vec![0, 1, 0, 2]);
        assert_eq!(f.field("brand").unwrap().name_of(3), Some("Gibson"));
        assert_eq!(f.field("brand").unwrap().name_of(2), None);
        let g = f.list("genres").unwrap();
        assert_eq!(g.row(1), &[1, 2]);
        assert_eq!(g.row(3), &[2]);
        assert!(g.row(0).is_empty() && g.row(2).is_empty() && g.row(99).is_empty());
        assert_eq!(g.names_of(1), vec!["Drama", "Comedy"]);
        assert_eq!(g.covered(), 2);
        assert_eq!(g.max_len(), 2);
        assert_eq!(f.names(), vec!["brand", "genres"]);
        assert!(f.field("genres").is_none() && f.list("x").is_none());
        assert_eq!(
            items_path(Path::new("/d/ml.parquet")),
            PathBuf::from("/d/ml.items.parquet")
        );
        assert_eq!(
            items_path(Path::new("ml")),
            PathBuf::from("ml.items.parquet")
        );
    }

    #[test]
    fn validate_catches_bad_tables() {
        let mut f = sample();
        f.fields[0].values.push(0);
        assert!(f.validate().unwrap_err().to_string().contains("5 values"));
        let mut f = sample();
        f.fields[0].values[1] = 7;
        let e = f.validate().unwrap_err().to_string();
        assert!(e.contains("item 1") && e.contains("value id 7"), "{e}");
        let mut f = sample();
        f.lists[0].values[0] = 0;
        assert!(f.validate().unwrap_err().to_string().contains("value id 0"));
        let mut f = sample();
        f.lists[0].offsets[2] = 3;
        assert!(f.validate().unwrap_err().to_string().contains("offsets"));
        let mut f = sample();
        f.lists[0].name = "brand".into();
        assert!(f.validate().unwrap_err().to_string().contains("twice"));
        let mut f = sample();
        f.fields[0].name = "item".into();
        assert!(f.validate().unwrap_err().to_string().contains("'item'"));
        let mut f = sample();
        f.fields[0].vocab[0] = "x".into();
        assert!(f.validate().unwrap_err().to_string().contains("entry 0"));
        let mut f = sample();
        f.fields[0].vocab[2] = "Fender".into();
        assert!(f.validate().unwrap_err().to_string().contains("both"));
        let mut f = sample();
        f.fields[0].values[0] = 1;
        assert!(f.validate().unwrap_err().to_string().contains("padding"));
    }

    #[test]
    fn parquet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.items.parquet");
        let f = sample();
        f.write_parquet(&p).unwrap();
        assert_eq!(ItemFeatures::read_parquet(&p).unwrap(), f);
        // No fields at all is fine too.
        let empty = ItemFeatures::new(3);
        empty.write_parquet(&p).unwrap();
        assert_eq!(ItemFeatures::read_parquet(&p).unwrap(), empty);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["x.items.parquet"]);
    }

    fn write_raw(path: &Path, schema: Schema, cols: Vec<ArrayRef>) {
        let schema = Arc::new(schema);
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn read_parquet_errors_name_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.items.parquet");
        let u32s = |v: Vec<u32>| -> ArrayRef { Arc::new(UInt32Array::from(v)) };
        let err = || {
            let e = ItemFeatures::read_parquet(&p).unwrap_err();
            assert!(matches!(e, DataError::Schema { .. }), "{e}");
            let e = e.to_string();
            assert!(e.contains("bad.items.parquet"), "{e}");
            e
        };
        // Missing item column.
        write_raw(
            &p,
            Schema::new(vec![Field::new("brand", DataType::UInt32, false)]),
            vec![u32s(vec![0, 1])],
        );
        let e = err();
        assert!(e.contains("'item'") && e.contains("brand"), "{e}");
        // Wrong item type.
        write_raw(
            &p,
            Schema::new(vec![Field::new("item", DataType::Int64, false)]),
            vec![Arc::new(arrow::array::Int64Array::from(vec![0, 1]))],
        );
        assert!(err().contains("expected UInt32"));
        // Wrong field type.
        write_raw(
            &p,
            Schema::new(vec![
                Field::new("item", DataType::UInt32, false),
                Field::new("brand", DataType::Utf8, false),
            ]),
            vec![
                u32s(vec![0, 1]),
                Arc::new(arrow::array::StringArray::from(vec!["", "a"])),
            ],
        );
        let e = err();
        assert!(e.contains("'brand'") && e.contains("List<UInt32>"), "{e}");
        let two = |m: BTreeMap<String, String>, item: Vec<u32>, vals: Vec<u32>| {
            write_raw(
                &p,
                Schema::new(vec![
                    Field::new("item", DataType::UInt32, false),
                    Field::new("brand", DataType::UInt32, false),
                ])
                .with_metadata(m),
                vec![u32s(item), u32s(vals)],
            )
        };
        two(meta(&[]), vec![0, 1], vec![0, 1]);
        let e = err();
        assert!(
            e.contains("longtail.vocab.brand") && e.contains("missing"),
            "{e}"
        );
        two(
            meta(&[("longtail.vocab.brand", "{]")]),
            vec![0, 1],
            vec![0, 1],
        );
        assert!(err().contains("not a JSON array"));
        two(
            meta(&[("longtail.vocab.brand", "[\"a\"]")]),
            vec![0, 1],
            vec![0, 1],
        );
        assert!(err().contains("entry 0"));
        let ok = meta(&[("longtail.vocab.brand", "[\"\",\"a\"]")]);
        two(ok.clone(), vec![0, 1], vec![0, 2]);
        let e = err();
        assert!(e.contains("'brand'") && e.contains("value id 2"), "{e}");
        two(ok.clone(), vec![0, 0], vec![0, 1]);
        assert!(err().contains("appears twice"));
        two(ok.clone(), vec![0, 5], vec![0, 1]);
        assert!(err().contains("outside 0..2"));
        // Any row order is fine.
        two(ok, vec![1, 0], vec![1, 0]);
        let f = ItemFeatures::read_parquet(&p).unwrap();
        assert_eq!(f.field("brand").unwrap().values, vec![0, 1]);
        // A list with an id out of range.
        let inner = Arc::new(Field::new("element", DataType::UInt32, false));
        let list = ListArray::try_new(
            inner.clone(),
            OffsetBuffer::new(vec![0, 0, 1].into()),
            Arc::new(UInt32Array::from(vec![3])),
            None,
        )
        .unwrap();
        write_raw(
            &p,
            Schema::new(vec![
                Field::new("item", DataType::UInt32, false),
                Field::new("genres", DataType::List(inner), false),
            ])
            .with_metadata(meta(&[("longtail.vocab.genres", "[\"\",\"a\"]")])),
            vec![u32s(vec![0, 1]), Arc::new(list)],
        );
        let e = err();
        assert!(e.contains("'genres'") && e.contains("value id 3"), "{e}");
        // Not Parquet at all.
        std::fs::write(&p, b"not parquet").unwrap();
        let e = ItemFeatures::read_parquet(&p).unwrap_err().to_string();
        assert!(e.contains("bad.items.parquet"), "{e}");
    }

    #[test]
    fn movielens_movies_dat_genres() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "movies.dat",
            b"1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji::Adventure\n3::X::(no genres listed)\n99::Unrated::Drama\n",
        );
        // Dense order differs from file order; item 7 has no movies.dat entry.
        let f = movielens_item_features(&p, &vocab(&["2", "1", "7", "3"])).unwrap();
        assert_eq!(f.num_items, 5);
        let g = f.list("genres").unwrap();
        assert_eq!(g.names_of(1), vec!["Adventure"]);
        assert_eq!(g.names_of(2), vec!["Animation", "Children's", "Comedy"]);
        assert!(g.row(3).is_empty() && g.row(4).is_empty());
        assert_eq!(
            g.vocab,
            vocab(&["Adventure", "Animation", "Children's", "Comedy"])
        );
        assert_eq!(g.covered(), 2);
    }

    #[test]
    fn movielens_100k_u_item() {
        let dir = tempfile::tempdir().unwrap();
        let flags = |on: &[usize]| {
            (0..19)
                .map(|k| if on.contains(&k) { "1" } else { "0" })
                .collect::<Vec<_>>()
                .join("|")
        };
        let body = format!(
            "1|Toy Story (1995)|01-Jan-1995||http://x|{}\n\n2|Caf\u{e9}|01-Jan-1995||u|{}\r\n3|Gone|||u|{}\n",
            flags(&[3, 4, 5]),
            flags(&[8]),
            flags(&[1]),
        );
        // Latin-1 'é' on line 3 (not UTF-8).
        let mut raw = body.into_bytes();
        let pos = raw.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        raw.splice(pos..pos + 2, [0xe9]);
        let p = write(dir.path(), "u.item", &raw);
        let f = movielens_100k_item_features(&p, &vocab(&["2", "1", "5"])).unwrap();
        let g = f.list("genres").unwrap();
        assert_eq!(g.names_of(1), vec!["Drama"]);
        assert_eq!(g.names_of(2), vec!["Animation", "Children's", "Comedy"]);
        assert!(g.row(3).is_empty());
        assert_eq!(g.vocab.len(), 20);
        assert_eq!(g.vocab[1], "unknown");

        let cases: [(String, &str); 4] = [
            (
                format!("1|a|d||u|{}\n2|b|d||u|0|1\n", flags(&[])),
                "found 7",
            ),
            (
                format!(
                    "1|a|d||u|{}\n2|b|d||u|{}\n",
                    flags(&[]),
                    flags(&[]).replacen('0', "2", 1)
                ),
                "expected 0 or 1",
            ),
            (
                format!("1|a|d||u|{}\n |b|d||u|{}\n", flags(&[]), flags(&[])),
                "empty movie id",
            ),
            (
                format!("1|a|d||u|{}\n1|b|d||u|{}\n", flags(&[]), flags(&[])),
                "twice",
            ),
        ];
        for (body, what) in cases {
            let p = write(dir.path(), "bad.item", body.as_bytes());
            let e = movielens_100k_item_features(&p, &vocab(&["1"]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("bad.item") && e.contains("line 2") && e.contains(what),
                "{what}: {e}"
            );
        }
        let p = write(dir.path(), "empty.item", b"\n");
        assert!(movielens_100k_item_features(&p, &vocab(&["1"]))
            .unwrap_err()
            .to_string()
            .contains("no rows"));
    }

    #[test]
    fn price_parsing_and_buckets() {
        use serde_json::json;
        assert_eq!(parse_price(&json!(12.5)), Some(12.5));
        assert_eq!(parse_price(&json!("$1,299.00")), Some(1299.0));
        assert_eq!(parse_price(&json!(" $3 ")), Some(3.0));
        assert_eq!(parse_price(&json!("$10.99 - $20.00")), None);
        assert_eq!(parse_price(&json!("")), None);
        assert_eq!(parse_price(&json!(-1)), None);
        assert_eq!(parse_price(&json!(null)), None);
        let p = [
            None,
            Some(1.0),
            Some(2.0),
            Some(3.0),
            Some(4.0),
            Some(4.0),
            None,
        ];
        assert_eq!(price_bucket_ids(&p, 2), vec![0, 1, 1, 1, 2, 2, 0]);
        assert_eq!(price_bucket_ids(&p, 5), vec![0, 1, 2, 3, 4, 4, 0]);
        assert_eq!(price_bucket_ids(&[None, None], 3), vec![0, 0]);
    }

    #[test]
    fn amazon_metadata_2014_and_2018() {
        let dir = tempfile::tempdir().unwrap();
        let body = br#"{"asin": "B001", "categories": [["Musical Instruments", "Guitars", "Strings"], ["Other"]], "brand": "Fender", "price": 12.99}
{"asin": "B002", "category": ["Musical Instruments", "Drums"], "brand": "", "price": "$5.00"}

{"asin": "B003", "title": "no features"}
{"asin": "B999", "categories": [["Ignored"]], "price": 1.0}
{"asin": "B001", "brand": "Second line ignored"}
{"asin": "0004", "categories": [], "price": "$20.00 - $30.00", "brand": "Gibson"}
{"asin": "0005", "price": 100}
"#;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        let p = write(dir.path(), "meta.json.gz", &e.finish().unwrap());
        let iv = vocab(&["B002", "B001", "B003", "0004", "0005", "B404"]);
        let f = amazon_item_features(&p, &iv, 2).unwrap();
        assert_eq!(f.num_items, 7);
        let cat = f.field("category").unwrap();
        assert_eq!(cat.name_of(1), Some("Drums"));
        assert_eq!(cat.name_of(2), Some("Strings"));
        assert_eq!(cat.values[3..], [0, 0, 0, 0]);
        let brand = f.field("brand").unwrap();
        assert_eq!(brand.values, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(brand.vocab, vocab(&["Fender", "Gibson"]));
        let price = f.field("price_bucket").unwrap();
        assert_eq!(price.vocab, vocab(&["q1", "q2"]));
        // Priced items: B002 5.00, B001 12.99, 0005 100 -> ranks 0, 1, 2 of 3.
        assert_eq!(price.values, vec![0, 1, 1, 0, 0, 2, 0]);
        let attrs = f.list("attributes").unwrap();
        assert_eq!(
            attrs.names_of(2),
            vec!["Musical Instruments", "Guitars", "Strings"]
        );
        assert_eq!(attrs.names_of(1), vec!["Musical Instruments", "Drums"]);
        assert!(attrs.row(3).is_empty());
        assert_eq!(
            f.names(),
            vec!["category", "brand", "price_bucket", "attributes"]
        );
        // Round trip through Parquet.
        let out = dir.path().join("a.items.parquet");
        f.write_parquet(&out).unwrap();
        assert_eq!(ItemFeatures::read_parquet(&out).unwrap(), f);
        // No price buckets.
        let f = amazon_item_features(&p, &iv, 0).unwrap();
        assert!(f.field("price_bucket").is_none());
    }

    #[test]
    fn amazon_metadata_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let iv = vocab(&["B001"]);
        let good = r#"{"asin": "B001"}"#;
        for (bad, what) in [
            (
                "{'asin': '0000031852', 'categories': [['Clothing']]}",
                "Python dict literal",
            ),
            ("{\"asin\": ", "strict JSON"),
            ("[1, 2]", "JSON object"),
            ("{\"title\": \"x\"}", "'asin'"),
            ("{\"asin\": 123}", "must be a string"),
        ] {
            let p = write(
                dir.path(),
                "meta.json",
                format!("{good}\n{bad}\n").as_bytes(),
            );
            let e = amazon_item_features(&p, &iv, 4).unwrap_err().to_string();
            assert!(
                e.contains("meta.json") && e.contains("line 2") && e.contains(what),
                "{what}: {e}"
            );
        }
        let p = write(dir.path(), "empty.json", b"\n");
        assert!(amazon_item_features(&p, &iv, 4)
            .unwrap_err()
            .to_string()
            .contains("no rows"));
        // Truncated gzip: an I/O error naming the file, not a panic.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(format!("{good}\n").repeat(500).as_bytes())
            .unwrap();
        let mut gz = e.finish().unwrap();
        gz.truncate(gz.len() / 2);
        let p = write(dir.path(), "trunc.json.gz", &gz);
        let e = amazon_item_features(&p, &iv, 4).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e}");
        assert!(e.to_string().contains("trunc.json.gz"), "{e}");
        // A bad item vocabulary.
        assert!(amazon_item_features(&p, &["x".to_string()], 4).is_err());
        // A huge bucket count was a huge up-front allocation (its vocabulary q1..qk): now a
        // config error, before the file is read.
        let p = write(dir.path(), "ok.json", format!("{good}\n").as_bytes());
        assert!(amazon_item_features(&p, &iv, MAX_PRICE_BUCKETS).is_ok());
        let e = amazon_item_features(&p, &iv, usize::MAX).unwrap_err();
        assert!(
            matches!(&e, DataError::Config { key, .. } if key == "price_buckets"),
            "{e}"
        );
    }

    fn table(path: &Path, id: &str) -> ItemTable {
        ItemTable::new(path, id)
    }

    #[test]
    fn generic_table_csv_categorical_and_list_fields() {
        let dir = tempfile::tempdir().unwrap();
        // What pandas writes with index=True: an unnamed first column, quoting where needed.
        let p = write(
            dir.path(),
            "items.csv",
            "\u{feff},item_id,genres,brand,title\r\n\
             0,10,Action|Comedy| Action ,Acme,\"A, \"\"quoted\"\" title\"\r\n\
             1,0020,,,Plain\r\n\
             \r\n\
             2,99,Drama,Other,Not in the import\r\n\
             3,30,Comedy||Drama,Acme,\"two\nlines\"\r\n"
                .as_bytes(),
        );
        // Dense order differs from file order; "40" has no row; "20" != "0020".
        let iv = vocab(&["30", "10", "40", "0020"]);
        let mut t = table(&p, "item_id");
        t.lists.insert("genres".into(), "|".into());
        let f = table_item_features(&t, &iv).unwrap();
        assert_eq!(f.num_items, 5);
        // Every other named column, lists last (the unnamed index column is skipped).
        assert_eq!(f.names(), vec!["brand", "title", "genres"]);
        let g = f.list("genres").unwrap();
        assert_eq!(g.names_of(1), vec!["Comedy", "Drama"]);
        assert_eq!(g.names_of(2), vec!["Action", "Comedy"]);
        assert!(g.row(3).is_empty() && g.row(4).is_empty() && g.row(0).is_empty());
        assert_eq!(g.vocab, vocab(&["Comedy", "Drama", "Action"]));
        let brand = f.field("brand").unwrap();
        assert_eq!(brand.values, vec![0, 1, 1, 0, 0]);
        assert_eq!(brand.vocab, vocab(&["Acme"]));
        let title = f.field("title").unwrap();
        assert_eq!(title.name_of(2), Some("A, \"quoted\" title"));
        assert_eq!(title.name_of(1), Some("two\nlines"));
        assert_eq!(title.name_of(4), Some("Plain"));
        assert_eq!(title.name_of(3), None);
        // An explicit column list: in its order, a list column added even if not listed.
        t.columns = Some(vec!["brand".into()]);
        let f2 = table_item_features(&t, &iv).unwrap();
        assert_eq!(f2.names(), vec!["brand", "genres"]);
        assert_eq!(f2.list("genres").unwrap(), g);
        // A list column read as a plain category keeps the cell.
        t.lists.clear();
        t.columns = Some(vec!["genres".into()]);
        let f3 = table_item_features(&t, &iv).unwrap();
        assert_eq!(
            f3.field("genres").unwrap().name_of(2),
            Some("Action|Comedy| Action")
        );
        // The result is an ordinary item table: it round-trips through Parquet.
        let out = dir.path().join("x.items.parquet");
        f.write_parquet(&out).unwrap();
        assert_eq!(ItemFeatures::read_parquet(&out).unwrap(), f);
        // A tab-separated, gzip file works too.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"id\tcat\n10\tx\n30\ty\n").unwrap();
        let p = write(dir.path(), "items.tsv.gz", &gz.finish().unwrap());
        let mut t = table(&p, "id");
        t.delimiter = '\t';
        let f = table_item_features(&t, &iv).unwrap();
        assert_eq!(f.field("cat").unwrap().values, vec![0, 1, 2, 0, 0]);
    }

    #[test]
    fn generic_table_csv_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let iv = vocab(&["1", "2"]);
        let head = "item_id,genre,brand\n1,a,b\n";
        let mut t = table(Path::new("unused"), "item_id");
        t.lists.insert("genre".into(), "|".into());
        for (body, what) in [
            (
                format!("{head}2,c,d\n1,e,f\n"),
                "line 4: column 'item_id' (id): item id '1' appears twice (first on line 2)",
            ),
            (format!("{head}2,c\n"), "line 3: expected 3 fields"),
            (
                format!("{head} ,c,d\n"),
                "line 3: column 'item_id' (id): empty id",
            ),
            (format!("{head}2,\"c,d\n"), "unterminated"),
            (
                "item,genre\n1,a\n".to_string(),
                "column 'item_id' (the id column) is not in the file (columns: 'item', 'genre')",
            ),
            ("".to_string(), "no rows"),
            ("item_id,genre,brand\n".to_string(), "no rows"),
            (
                "item_id,genre,genre\n1,a,b\n".to_string(),
                "column 'genre' (a feature) appears twice",
            ),
            (
                "item_id\n1\n".to_string(),
                "column 'genre' (key 'lists') is not in the file",
            ),
        ] {
            let p = write(dir.path(), "items.csv", body.as_bytes());
            t.path = p;
            let e = table_item_features(&t, &iv).unwrap_err().to_string();
            assert!(e.contains("items.csv") && e.contains(what), "{what}: {e}");
        }
        let p = write(dir.path(), "items.csv", head.as_bytes());
        let mut t2 = table(&p, "item_id");
        t2.columns = Some(vec!["brand".into(), "color".into()]);
        let e = table_item_features(&t2, &iv).unwrap_err().to_string();
        assert!(
            e.contains("items.csv")
                && e.contains("column 'color' (key 'columns') is not in the file"),
            "{e}"
        );
        let p = write(dir.path(), "only_id.csv", b"item_id\n1\n");
        let e = table_item_features(&table(&p, "item_id"), &iv)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("only_id.csv") && e.contains("no feature columns"),
            "{e}"
        );
        let p = write(dir.path(), "item.csv", b"item_id,item\n1,a\n");
        let e = table_item_features(&table(&p, "item_id"), &iv)
            .unwrap_err()
            .to_string();
        assert!(e.contains("item.csv") && e.contains("column 'item'"), "{e}");
        // Key errors come first, as config errors.
        for (edit, what) in [
            (
                Box::new(|t: &mut ItemTable| t.columns = Some(vec!["item_id".into()]))
                    as Box<dyn Fn(&mut ItemTable)>,
                "is the id column",
            ),
            (
                Box::new(|t: &mut ItemTable| t.columns = Some(vec!["a".into(), "a".into()])),
                "given twice",
            ),
            (
                Box::new(|t: &mut ItemTable| {
                    t.lists.insert("genre".into(), String::new());
                }),
                "empty separator",
            ),
            (Box::new(|t: &mut ItemTable| t.delimiter = '"'), "delimiter"),
            (
                Box::new(|t: &mut ItemTable| t.id = " ".into()),
                "id column name",
            ),
        ] {
            let mut t3 = table(&p, "item_id");
            edit(&mut t3);
            let e = table_item_features(&t3, &iv).unwrap_err();
            assert!(
                matches!(&e, DataError::Config { key, .. } if key == "items")
                    && e.to_string().contains(what),
                "{what}: {e}"
            );
        }
        let e =
            table_item_features(&table(Path::new("/nonexistent/i.csv"), "id"), &iv).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e}");
    }

    #[test]
    fn generic_table_parquet_int_ids_lists_and_types() {
        use arrow::array::{BooleanArray, Float64Array, Int32Array, Int64Array, StringArray};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("items.parquet");
        let tags = {
            let inner = Arc::new(Field::new("element", DataType::Utf8, true));
            ListArray::try_new(
                inner,
                OffsetBuffer::new(vec![0, 2, 2, 3].into()),
                Arc::new(StringArray::from(vec![Some("x"), None, Some(" y ")])),
                Some(vec![true, false, true].into()),
            )
            .unwrap()
        };
        let write_items = |ids: Vec<i64>, genres: Vec<Option<&str>>| {
            let schema = Schema::new(vec![
                Field::new("movieId", DataType::Int64, false),
                Field::new("genres", DataType::Utf8, true),
                Field::new("year", DataType::Int32, false),
                Field::new("kids", DataType::Boolean, false),
                Field::new("tags", tags.data_type().clone(), true),
                Field::new("price", DataType::Float64, false),
            ]);
            write_raw(
                &p,
                schema,
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(genres)),
                    Arc::new(Int32Array::from(vec![1995, 1995, 2001])),
                    Arc::new(BooleanArray::from(vec![true, false, true])),
                    Arc::new(tags.clone()),
                    Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
                ],
            )
        };
        write_items(
            vec![1, 2, 3],
            vec![Some("Action|Comedy"), None, Some("Drama")],
        );
        let iv = vocab(&["3", "1", "7"]);
        let mut t = table(&p, "movieId");
        t.columns = Some(vec!["year".into(), "kids".into(), "tags".into()]);
        t.lists.insert("genres".into(), "|".into());
        let f = table_item_features(&t, &iv).unwrap();
        assert_eq!(f.names(), vec!["year", "kids", "tags", "genres"]);
        assert_eq!(f.field("year").unwrap().name_of(1), Some("2001"));
        assert_eq!(f.field("year").unwrap().name_of(2), Some("1995"));
        assert_eq!(f.field("kids").unwrap().name_of(2), Some("true"));
        assert_eq!(f.list("tags").unwrap().names_of(1), vec!["y"]);
        assert_eq!(f.list("tags").unwrap().names_of(2), vec!["x"]);
        assert_eq!(
            f.list("genres").unwrap().names_of(2),
            vec!["Action", "Comedy"]
        );
        assert_eq!(f.list("genres").unwrap().names_of(1), vec!["Drama"]);
        assert!(f.list("genres").unwrap().row(3).is_empty());
        // A float column is refused, naming it.
        let mut t2 = t.clone();
        t2.columns = Some(vec!["price".into()]);
        let e = table_item_features(&t2, &iv).unwrap_err().to_string();
        assert!(
            e.contains("items.parquet") && e.contains("'price'") && e.contains("bucket"),
            "{e}"
        );
        // Every other column by default: price too, so an error.
        let e = table_item_features(&table(&p, "movieId"), &iv)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'price'"), "{e}");
        // A native list column cannot take a separator.
        let mut t3 = t.clone();
        t3.lists.insert("tags".into(), ",".into());
        let e = table_item_features(&t3, &iv).unwrap_err().to_string();
        assert!(e.contains("'tags'") && e.contains("already a list"), "{e}");
        // A missing column names the file and the column.
        let mut t4 = t.clone();
        t4.columns = Some(vec!["color".into()]);
        let e = table_item_features(&t4, &iv).unwrap_err().to_string();
        assert!(
            e.contains("items.parquet") && e.contains("'color'") && e.contains("'movieId'"),
            "{e}"
        );
        // A duplicate id names both rows.
        write_items(vec![1, 2, 1], vec![None, None, None]);
        let e = table_item_features(&t, &iv).unwrap_err().to_string();
        assert!(
            e.contains("items.parquet") && e.contains("'1' appears twice (rows 0 and 2"),
            "{e}"
        );
    }

    #[test]
    fn item_table_spec_compact_and_json() {
        let p = Path::new("items.csv");
        let t = ItemTable::from_spec(
            p,
            "id=item_id, columns=genre;brand, lists=genres:pipe;tags:/",
        )
        .unwrap();
        assert_eq!(t.path, p);
        assert_eq!(t.id, "item_id");
        assert_eq!(t.columns, Some(vec!["genre".into(), "brand".into()]));
        assert_eq!(t.lists["genres"], "|");
        assert_eq!(t.lists["tags"], "/");
        let j = ItemTable::from_spec(
            p,
            r#"{"id":"item_id","columns":["genre","brand"],"lists":{"genres":"|","tags":"/"}}"#,
        )
        .unwrap();
        assert_eq!(j, t);
        let t = ItemTable::from_spec(p, "id=i,delimiter=tab,lists=a:comma").unwrap();
        assert_eq!((t.delimiter, t.lists["a"].as_str()), ('\t', ","));
        for (bad, what) in [
            ("columns=a", "missing required key 'id'"),
            ("id=a,color=b", "unknown key 'color'"),
            ("id=a,id=b", "duplicate key 'id'"),
            ("id=a,lists=genres", "COLUMN:SEPARATOR"),
            ("id=a,lists=g:|;g:/", "twice"),
            ("id=a,delimiter=ab", "single character"),
            ("id=a,columns=a", "is the id column"),
            ("id=a,lists=item:|", "'item'"),
            ("id", "key=value"),
            (r#"{"id":"a","path":"x"}"#, "no 'path'"),
            (r#"{"id":"a","colour":"x"}"#, "unknown field"),
        ] {
            let e = ItemTable::from_spec(p, bad).unwrap_err();
            assert!(
                matches!(&e, DataError::Config { key, .. } if key == "items")
                    && e.to_string().contains(what),
                "{what}: {e}"
            );
        }
    }
}
