//! Importers from raw public rating logs into the canonical [`Interactions`] table.
//!
//! [`import`] reads a file line by line (plain or gzip, detected by the magic bytes `1f 8b`, for
//! every format), keeps every row in file order (duplicates too) and remaps the raw user and item
//! ids to dense ids `1..` in order of first appearance. The raw ids are kept in
//! [`Imported::user_vocab`] / [`Imported::item_vocab`] (index = dense id, entry 0 = `""` for the
//! padding id).
//!
//! Edge cases, the same for every format:
//! - blank lines (empty or whitespace only) are skipped and are not rows; a final line without a
//!   newline is a row; `\r\n` line endings and a UTF-8 byte-order mark on line 1 are accepted;
//! - fields are trimmed of surrounding whitespace; raw ids are kept verbatim otherwise (leading
//!   zeros are significant: `0104257` and `104257` are different items);
//! - a line that is not UTF-8, has the wrong number of fields, an empty id, a rating that is not a
//!   finite number, or a timestamp that does not parse (fixed formats: not an integer) is an
//!   error naming the file and the 1-based line number (lines are counted as in the file, blank
//!   lines included), and for `csv` the column;
//! - ratings are not range-checked (any finite value is kept as is);
//! - a file without any row is an error ("no rows"); a line longer than [`MAX_LINE_BYTES`] is an
//!   error, so memory per line is bounded.
//! - timestamps must be unix seconds between 0 and 4,102,444,800 (2100-01-01), checked after any
//!   conversion: a negative timestamp or one after 2100 (typically milliseconds given as seconds)
//!   is an error naming the file, the line (or Parquet row) and the column; for `csv`/`parquet`
//!   it suggests the `timestamp_unit` the value is probably in.
//!
//! The CSV formats (`csv`, `movielens-csv`, `amazon-csv`) are read with the `csv` crate in the
//! dialect `pandas.DataFrame.to_csv` writes: a field may be double-quoted, a quote inside one is
//! doubled (`"a ""b"""`), and a quoted field may hold the delimiter and line breaks; a quote
//! elsewhere in a field is kept as a character. A row is a record: its line number is the physical
//! line where it starts, and a record longer than [`MAX_LINE_BYTES`] or a quoted field still open
//! at the end of the file is an error naming its line.
//!
//! The six fixed formats know their columns, and their timestamps are integer unix seconds. The
//! generic formats `csv` and `parquet` need a [`ColumnMapping`] (which column is the user, item,
//! timestamp, and optionally rating and label; how timestamps read) and are read with
//! [`import_with`]:
//! - `csv`: delimited text (any single ASCII delimiter, default `,`; plain or gzip), with a
//!   header line (mapping values are column names) or without one (`header = false`; mapping
//!   values are 1-based column numbers such as `"1"`). Every row must have as many fields as the
//!   header (or, without a header, as the first row); unmapped columns (such as the unnamed index
//!   column `pandas.DataFrame.to_csv` writes first) are ignored;
//! - `parquet`: read one record batch at a time (bounded memory). Ids may be Utf8/LargeUtf8 or any
//!   integer type; they are converted to strings, so dense ids are assigned by first appearance
//!   exactly as for the text formats. Rating/label any float or integer type. Nulls in a mapped
//!   column are errors naming the column and the 0-based row.
//!
//! Timestamps of `csv`/`parquet` (see [`crate::timestamp`] for the exact grammar):
//! - a `csv` cell, or a value of a Parquet Utf8/LargeUtf8 column, may be an integer
//!   (`978300760`), a decimal number as pandas writes a float column (`978300760.0`; a fractional
//!   part is dropped, i.e. rounded down to whole units), or ISO-8601 text (`2000-12-31`,
//!   `2000-12-31T22:12:40`, `2000-12-31 22:12:40`, with optional fractional seconds and an
//!   optional `Z` or `±hh:mm` offset; **no offset means UTC**). With `timestamp_format = "auto"`
//!   (default) the form is decided per value: an integer is a number; text starting with
//!   `YYYY-` is ISO-8601; any other finite decimal is a number. `"unix"` accepts numbers only,
//!   `"iso8601"` dates only. Empty, `NaN`, `inf`, an invalid date (`2001-02-30`) or any other
//!   text is an error naming file, line and column;
//! - numbers (text, or Parquet integer and float columns) are in `timestamp_unit` (`s` default,
//!   `ms`, `us`, `ns`) and are converted to seconds rounding down;
//! - Parquet Arrow Timestamp (any unit, any time zone: the values are UTC) and Date32/Date64
//!   columns carry their own unit (converted to seconds, rounding down; `timestamp_unit` does not
//!   apply);
//! - `order = "file"` instead of a `timestamp` column: a log without times. Each row's timestamp
//!   is its 0-based row index within the file (header and blank lines not counted; Parquet: the
//!   row number), so each user's rows keep their file order; [`import_with`] prints one warning
//!   on stderr ([`file_order_warning`]). A mapping with neither, or with both, is an error
//!   ([`ColumnMapping::validate`]).
//!
//! For `csv`/`parquet` the table has a `rating` column only when the mapping names one, and a
//! `label` column only when it names one; the fixed formats always have `rating` and no `label`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use arrow::array::{Array, Float32Array};
use arrow::datatypes::{DataType, TimeUnit};
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

use crate::atomic::write_json;
use crate::error::{DataError, Result};
use crate::table::Interactions;

/// The longest line an importer accepts (16 MiB): bounds the memory of one line.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A raw log format that [`import`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportFormat {
    /// MovieLens-1M/10M `ratings.dat`: `user::item::rating::ts`, no header.
    MovielensDat,
    /// MovieLens-100K `u.data`: tab-separated `user item rating ts`, no header.
    MovielensTsv,
    /// MovieLens "latest"/20M/25M `ratings.csv`: header `userId,movieId,rating,timestamp`,
    /// half-star ratings.
    MovielensCsv,
    /// MovieTweetings `ratings.dat`: `user::movie::rating::ts`, ratings 0-10, no header.
    Movietweetings,
    /// Amazon ratings-only CSV (2014/2018): no header, `user,item,rating,ts[,extra...]`; extra
    /// columns are ignored. Quoted fields as in the `csv` format.
    AmazonCsv,
    /// Amazon review JSON lines (2014/2018): one object per line with `reviewerID`, `asin`,
    /// `overall` and `unixReviewTime`; other fields are ignored.
    AmazonJson,
    /// Generic delimited text with a [`ColumnMapping`] (see the module docs); needs
    /// [`import_with`].
    Csv,
    /// Generic Parquet with a [`ColumnMapping`] (see the module docs); needs [`import_with`].
    Parquet,
}

impl ImportFormat {
    /// Every format, in the order of [`ImportFormat::names`].
    pub const ALL: [ImportFormat; 8] = [
        ImportFormat::MovielensDat,
        ImportFormat::MovielensTsv,
        ImportFormat::MovielensCsv,
        ImportFormat::Movietweetings,
        ImportFormat::AmazonCsv,
        ImportFormat::AmazonJson,
        ImportFormat::Csv,
        ImportFormat::Parquet,
    ];

    /// The names accepted by [`FromStr`], e.g. `movielens-dat`.
    pub fn names() -> &'static [&'static str] {
        &[
            "movielens-dat",
            "movielens-tsv",
            "movielens-csv",
            "movietweetings",
            "amazon-csv",
            "amazon-json",
            "csv",
            "parquet",
        ]
    }

    /// The name of this format (what [`FromStr`] accepts and [`fmt::Display`] prints).
    pub fn name(self) -> &'static str {
        match self {
            ImportFormat::MovielensDat => "movielens-dat",
            ImportFormat::MovielensTsv => "movielens-tsv",
            ImportFormat::MovielensCsv => "movielens-csv",
            ImportFormat::Movietweetings => "movietweetings",
            ImportFormat::AmazonCsv => "amazon-csv",
            ImportFormat::AmazonJson => "amazon-json",
            ImportFormat::Csv => "csv",
            ImportFormat::Parquet => "parquet",
        }
    }

    /// Whether this format needs a [`ColumnMapping`] (`csv`, `parquet`): such formats can only be
    /// read with [`import_with`].
    pub fn needs_mapping(self) -> bool {
        matches!(self, ImportFormat::Csv | ImportFormat::Parquet)
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ImportFormat {
    type Err = DataError;

    /// Parses a format name (exact, lower case); an unknown name gives an error listing the valid
    /// names.
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                DataError::Invalid(format!(
                    "unknown import format '{s}' (valid: {})",
                    Self::names().join(", ")
                ))
            })
    }
}

/// The result of an import: the table with dense ids and the raw ids behind them.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// One row per input row, in file order. For the fixed formats `rating` is always `Some` and
    /// `label` is `None`; for `csv`/`parquet` each is `Some` exactly when the mapping names it.
    pub interactions: Interactions,
    /// Raw user id of each dense user id (index = dense id; entry 0 = `""`, the padding id).
    pub user_vocab: Vec<String>,
    /// Raw item id of each dense item id (index = dense id; entry 0 = `""`, the padding id).
    pub item_vocab: Vec<String>,
}

impl Imported {
    /// Writes the two vocabularies as JSON arrays of strings (index = dense id, entry 0 = `""`).
    ///
    /// If `dir_or_prefix` is an existing directory the files are `<dir>/user_vocab.json` and
    /// `<dir>/item_vocab.json`; otherwise it is a prefix: `<prefix>.user_vocab.json` and
    /// `<prefix>.item_vocab.json`. Each file is written to a temporary file and renamed, so readers
    /// never see a half-written file. Returns the (user, item) paths.
    pub fn write_vocab(&self, dir_or_prefix: &Path) -> Result<(PathBuf, PathBuf)> {
        let paths = vocab_paths(dir_or_prefix);
        write_json(&paths.0, &self.user_vocab, false)?;
        write_json(&paths.1, &self.item_vocab, false)?;
        Ok(paths)
    }
}

/// The (user, item) vocabulary paths that [`Imported::write_vocab`] writes for `dir_or_prefix`.
pub fn vocab_paths(dir_or_prefix: &Path) -> (PathBuf, PathBuf) {
    if dir_or_prefix.is_dir() {
        (
            dir_or_prefix.join("user_vocab.json"),
            dir_or_prefix.join("item_vocab.json"),
        )
    } else {
        let with = |suffix: &str| {
            let mut s: OsString = dir_or_prefix.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        (with(".user_vocab.json"), with(".item_vocab.json"))
    }
}

/// Reads a vocabulary written by [`Imported::write_vocab`]; checks that entry 0 is `""` and that
/// no other entry is empty or repeated.
pub fn read_vocab(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let vocab: Vec<String> =
        serde_json::from_reader(BufReader::new(file)).map_err(|e| DataError::Schema {
            path: path.to_path_buf(),
            message: format!("not a JSON array of strings: {e}"),
        })?;
    let bad = |message: String| DataError::Schema {
        path: path.to_path_buf(),
        message,
    };
    if vocab.first().map(String::as_str) != Some("") {
        return Err(bad("entry 0 must be \"\" (the padding id)".into()));
    }
    let mut seen = HashMap::with_capacity(vocab.len());
    for (i, v) in vocab.iter().enumerate().skip(1) {
        if v.is_empty() {
            return Err(bad(format!("entry {i} is empty")));
        }
        if let Some(j) = seen.insert(v.as_str(), i) {
            return Err(bad(format!("entries {j} and {i} are both '{v}'")));
        }
    }
    Ok(vocab)
}

pub use crate::timestamp::{TimestampFormat, TimestampUnit, MAX_TIMESTAMP_SECS};

/// How the rows of a generic log are ordered in time (`order`, default `timestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowOrder {
    /// By the mapped `timestamp` column.
    #[default]
    Timestamp,
    /// By position in the file: a log without timestamps. Each row's timestamp is its 0-based
    /// row index in the file (header and blank lines not counted), so every user's rows keep
    /// their file order.
    File,
}

impl RowOrder {
    /// The name in configs: `timestamp`, `file`.
    pub fn name(self) -> &'static str {
        match self {
            RowOrder::Timestamp => "timestamp",
            RowOrder::File => "file",
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Which columns of a generic `csv` or `parquet` log hold what, and how its timestamps read (see
/// the module docs and [`crate::timestamp`]).
///
/// Deserializes from JSON/TOML such as
/// `{"user": "userId", "item": "movieId", "timestamp": "ts", "rating": "score"}`; unknown keys are
/// rejected. [`ColumnMapping::from_str`] also accepts the compact command-line form
/// `user=userId,item=movieId,timestamp=ts,rating=score,delimiter=tab,header=false,
/// timestamp_unit=ms,timestamp_format=auto` (or `order=file` instead of `timestamp=`).
/// Deserializing does not check the keys against each other: [`ColumnMapping::validate`] does
/// (and [`import_with`] calls it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// The raw user id column.
    pub user: String,
    /// The raw item id column.
    pub item: String,
    /// The timestamp column; required unless `order = "file"` (and refused with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The unit of numeric timestamps (default `s`); converted to seconds rounding down. Ignored
    /// for ISO-8601 text and for Arrow Timestamp / Date columns (they carry their own unit).
    #[serde(default, skip_serializing_if = "is_default")]
    pub timestamp_unit: TimestampUnit,
    /// Which text forms timestamps may take (default `auto`: numbers and ISO-8601, per value).
    #[serde(default, skip_serializing_if = "is_default")]
    pub timestamp_format: TimestampFormat,
    /// `file`: the log has no timestamp column; rows are ordered as in the file.
    #[serde(default, skip_serializing_if = "is_default")]
    pub order: RowOrder,
    /// The explicit rating column, if any.
    #[serde(default)]
    pub rating: Option<String>,
    /// The given label (e.g. click) column, if any.
    #[serde(default)]
    pub label: Option<String>,
    /// `csv` only: the field delimiter (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// `csv` only: whether the first non-blank line is a header (default `true`). Without a
    /// header the column names above are 1-based column numbers (`"1"`, `"2"`, ...).
    #[serde(default = "default_header")]
    pub header: bool,
}

fn default_delimiter() -> char {
    ','
}

fn default_header() -> bool {
    true
}

/// The keys of the compact `--columns` form, for error messages.
const MAPPING_KEYS: &str = "user, item, timestamp (ts), timestamp_unit, timestamp_format, order, \
                            rating, label, delimiter, header";

impl ColumnMapping {
    /// A mapping of the three required columns, no rating or label, `,` delimiter, with header,
    /// timestamps in seconds (`auto` format).
    pub fn new(user: &str, item: &str, timestamp: &str) -> Self {
        ColumnMapping {
            timestamp: Some(timestamp.to_string()),
            order: RowOrder::Timestamp,
            ..Self::in_file_order(user, item)
        }
    }

    /// A mapping of a log without timestamps (`order = "file"`): user and item only.
    pub fn in_file_order(user: &str, item: &str) -> Self {
        ColumnMapping {
            user: user.to_string(),
            item: item.to_string(),
            timestamp: None,
            timestamp_unit: TimestampUnit::default(),
            timestamp_format: TimestampFormat::default(),
            order: RowOrder::File,
            rating: None,
            label: None,
            delimiter: default_delimiter(),
            header: default_header(),
        }
    }

    /// Checks the keys against each other: a `timestamp` column or `order = "file"`, exactly one
    /// of them; `timestamp_unit` / `timestamp_format` only with a `timestamp` column. Errors are
    /// [`DataError::Config`] with key `columns`.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(DataError::config("columns", m.to_string()));
        match (&self.timestamp, self.order) {
            (None, RowOrder::Timestamp) => bad(
                "no 'timestamp' column: map the column that holds each row's time (timestamp = \
                 \"COL\"; timestamp=COL in --columns), or, for a log without times, set order = \
                 \"file\" (order=file) to order each user's rows as they appear in the file",
            ),
            (Some(t), RowOrder::File) => Err(DataError::config(
                "columns",
                format!(
                    "both a 'timestamp' column ('{t}') and order = \"file\": give one of them \
                     (order = \"file\" is for logs without a timestamp column)"
                ),
            )),
            (None, RowOrder::File)
                if !is_default(&self.timestamp_unit) || !is_default(&self.timestamp_format) =>
            {
                bad(
                    "timestamp_unit and timestamp_format need a 'timestamp' column (with order = \
                     \"file\" the timestamps are row indices)",
                )
            }
            _ => Ok(()),
        }
    }

    /// Reads a mapping from a JSON file and validates it (errors name the file).
    pub fn read_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let bad = |message: String| DataError::Schema {
            path: path.to_path_buf(),
            message: format!("not a valid column mapping: {message}"),
        };
        let m: ColumnMapping = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        m.validate().map_err(|e| match e {
            DataError::Config { message, .. } => bad(message),
            other => bad(other.to_string()),
        })?;
        Ok(m)
    }

    /// The mapped columns as (mapping key, column) pairs: `user`, `item`, then `timestamp`,
    /// `rating` and `label` when mapped.
    pub fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("user", self.user.as_str()), ("item", self.item.as_str())];
        if let Some(t) = &self.timestamp {
            out.push(("timestamp", t));
        }
        if let Some(r) = &self.rating {
            out.push(("rating", r));
        }
        if let Some(l) = &self.label {
            out.push(("label", l));
        }
        out
    }
}

impl FromStr for ColumnMapping {
    type Err = DataError;

    /// Parses either a JSON object (starting with `{`) or comma-separated `key=value` pairs with
    /// the keys `user`, `item`, `timestamp` (alias `ts`), `timestamp_unit` (`s`, `ms`, `us`,
    /// `ns`), `timestamp_format` (`auto`, `unix`, `iso8601`), `order` (`timestamp`, `file`),
    /// `rating`, `label`, `delimiter` (a single character or one of `tab`, `comma`, `semicolon`,
    /// `pipe`, `space`) and `header` (`true`/`false`); then [`ColumnMapping::validate`]. Errors
    /// are [`DataError::Config`] with key `columns`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |m: String| DataError::config("columns", m);
        let s = s.trim();
        if s.starts_with('{') {
            let m: ColumnMapping = serde_json::from_str(s)
                .map_err(|e| bad(format!("not a valid column mapping: {e}")))?;
            m.validate()?;
            return Ok(m);
        }
        let (mut user, mut item) = (None, None);
        let mut m = ColumnMapping::in_file_order("", "");
        m.order = RowOrder::Timestamp;
        // Each key once, as in the JSON form (`ts` is `timestamp`): the last one never wins.
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(bad(format!("expected key=value, found '{pair}'")));
            };
            let (k, v) = (k.trim(), v.trim());
            let canonical = if k == "ts" { "timestamp" } else { k };
            if let Some((first, _)) = seen.iter().find(|(_, c)| *c == canonical) {
                let alias = if *first == k {
                    String::new()
                } else {
                    format!(" (as '{first}' and '{k}')")
                };
                return Err(bad(format!(
                    "duplicate key '{canonical}'{alias} in '{s}': give each key once"
                )));
            }
            seen.push((k, canonical));
            if v.is_empty() {
                let hint = if k == "delimiter" {
                    " (write delimiter=comma for ',')"
                } else {
                    ""
                };
                return Err(bad(format!("empty value for '{k}'{hint}")));
            }
            match k {
                "user" => user = Some(v.to_string()),
                "item" => item = Some(v.to_string()),
                "timestamp" | "ts" => m.timestamp = Some(v.to_string()),
                "timestamp_unit" => m.timestamp_unit = v.parse()?,
                "timestamp_format" => m.timestamp_format = v.parse()?,
                "order" => {
                    m.order = match v {
                        "timestamp" => RowOrder::Timestamp,
                        "file" => RowOrder::File,
                        _ => {
                            return Err(bad(format!("order must be timestamp or file, got '{v}'")))
                        }
                    }
                }
                "rating" => m.rating = Some(v.to_string()),
                "label" => m.label = Some(v.to_string()),
                "delimiter" => {
                    m.delimiter = match v {
                        "tab" | "\\t" => '\t',
                        "comma" => ',',
                        "semicolon" => ';',
                        "pipe" => '|',
                        "space" => ' ',
                        _ if v.chars().count() == 1 => v.chars().next().unwrap_or(','),
                        _ => {
                            return Err(bad(format!(
                                "delimiter '{v}' is not a single character (or tab, comma, \
                                 semicolon, pipe, space)"
                            )))
                        }
                    }
                }
                "header" => {
                    m.header = v
                        .parse()
                        .map_err(|_| bad(format!("header must be true or false, got '{v}'")))?
                }
                _ => return Err(bad(format!("unknown key '{k}' (valid: {MAPPING_KEYS})"))),
            }
        }
        let need = |v: Option<String>, k: &str| {
            v.ok_or_else(|| bad(format!("missing required key '{k}' in '{s}'")))
        };
        m.user = need(user, "user")?;
        m.item = need(item, "item")?;
        m.validate()?;
        Ok(m)
    }
}

/// The warning [`import_with`] prints (once per import, on stderr) for a log read with
/// `order = "file"`.
pub fn file_order_warning(input: &Path) -> String {
    format!(
        "{}: the log has no timestamp column (order = \"file\"): timestamps were synthesised \
         from file order (each row's timestamp is its 0-based row index), so time windows \
         (sessions) and temporal splits see row numbers, not times",
        input.display()
    )
}

/// Imports a raw rating log of one of the six fixed formats; see the module docs for the rules
/// shared by all formats. `csv` and `parquet` need a column mapping: use [`import_with`].
pub fn import(format: ImportFormat, input: &Path) -> Result<Imported> {
    import_with(format, input, None)
}

/// Imports a raw rating log. `mapping` is required for `csv`/`parquet` and must be `None` for the
/// fixed formats (both mistakes are [`DataError::Config`] errors with key `columns`).
pub fn import_with(
    format: ImportFormat,
    input: &Path,
    mapping: Option<&ColumnMapping>,
) -> Result<Imported> {
    match (format.needs_mapping(), mapping) {
        (true, None) => Err(DataError::config(
            "columns",
            format!(
                "import format '{format}' needs a column mapping (which columns are user, item, \
                 timestamp and optionally rating/label)"
            ),
        )),
        (false, Some(_)) => Err(DataError::config(
            "columns",
            format!(
                "import format '{format}' has fixed columns; a column mapping is only for csv and \
                 parquet"
            ),
        )),
        (true, Some(m)) => {
            m.validate()?;
            let imported = if format == ImportFormat::Csv {
                import_csv(input, m)?
            } else {
                import_parquet(input, m)?
            };
            if m.order == RowOrder::File {
                tracing::warn!("{}", file_order_warning(input));
            }
            Ok(imported)
        }
        (false, None) => import_fixed(format, input),
    }
}

/// Accumulates rows: dense ids by first appearance plus the value columns.
struct TableBuilder {
    users: Vocab,
    items: Vocab,
    out: Interactions,
    ratings: Option<Vec<f32>>,
    labels: Option<Vec<f32>>,
}

impl TableBuilder {
    fn new(rating: bool, label: bool) -> Self {
        TableBuilder {
            users: Vocab::new(),
            items: Vocab::new(),
            out: Interactions::default(),
            ratings: rating.then(Vec::new),
            labels: label.then(Vec::new),
        }
    }

    /// Adds one row; errors are messages without the location.
    fn push(
        &mut self,
        user: &str,
        item: &str,
        ts: i64,
        rating: Option<f32>,
        label: Option<f32>,
    ) -> std::result::Result<(), String> {
        let u = self.users.id(user).map_err(|m| format!("user: {m}"))?;
        let i = self.items.id(item).map_err(|m| format!("item: {m}"))?;
        self.out.user.push(u);
        self.out.item.push(i);
        self.out.ts.push(ts);
        if let (Some(rs), Some(r)) = (self.ratings.as_mut(), rating) {
            rs.push(r);
        }
        if let (Some(ls), Some(l)) = (self.labels.as_mut(), label) {
            ls.push(l);
        }
        Ok(())
    }

    fn finish(mut self, input: &Path, format: ImportFormat) -> Result<Imported> {
        if self.out.is_empty() {
            return Err(DataError::Schema {
                path: input.to_path_buf(),
                message: format!("no rows (nothing to import as {format})"),
            });
        }
        self.out.rating = self.ratings;
        self.out.label = self.labels;
        Ok(Imported {
            interactions: self.out,
            user_vocab: self.users.names,
            item_vocab: self.items.names,
        })
    }
}

/// Checks that a timestamp is plausible unix seconds (0..=2100-01-01); the message names the
/// column and suggests the likely cause.
fn check_ts(ts: i64, column: &str) -> std::result::Result<i64, String> {
    secs_in_range(ts).map_err(|m| format!("column '{column}': {m}"))
}

/// [`check_ts`] without the column.
fn secs_in_range(ts: i64) -> std::result::Result<i64, String> {
    if ts < 0 {
        Err(format!(
            "timestamp {ts} is negative (expected unix seconds since 1970)"
        ))
    } else if ts > MAX_TIMESTAMP_SECS {
        let unit = if ts > MAX_TIMESTAMP_SECS * 1_000 {
            "micro- or nanoseconds"
        } else {
            "milliseconds"
        };
        Err(format!(
            "timestamp {ts} is after the year 2100; it looks like {unit} given as seconds \
             (expected unix seconds)"
        ))
    } else {
        Ok(ts)
    }
}

fn import_fixed(format: ImportFormat, input: &Path) -> Result<Imported> {
    if matches!(format, ImportFormat::MovielensCsv | ImportFormat::AmazonCsv) {
        return import_fixed_csv(format, input);
    }
    let mut lines = LineReader::open(input, MAX_LINE_BYTES)?;
    let mut table = TableBuilder::new(true, false);
    let ts_column = if format == ImportFormat::AmazonJson {
        "unixReviewTime"
    } else {
        "timestamp"
    };
    while let Some((line_no, text)) = lines.next_text()? {
        if text.trim().is_empty() {
            continue;
        }
        let at = |message: String| line_err(input, line_no, message);
        let row = parse_row(format, text).map_err(at)?;
        let ts = check_ts(row.ts, ts_column).map_err(at)?;
        table
            .push(&row.user, &row.item, ts, Some(row.rating), None)
            .map_err(at)?;
    }
    table.finish(input, format)
}

/// `movielens-csv` (a header, then exactly 4 fields) and `amazon-csv` (no header, at least 4
/// fields), read with the `csv` crate ([`DelimitedReader`]).
fn import_fixed_csv(format: ImportFormat, input: &Path) -> Result<Imported> {
    let mut records = DelimitedReader::open(input, b',', MAX_LINE_BYTES)?;
    let mut table = TableBuilder::new(true, false);
    let mut header_pending = format == ImportFormat::MovielensCsv;
    let mut first = true;
    while let Some((line_no, fields)) = records.next_record()? {
        let at = |message: String| line_err(input, line_no, message);
        if header_pending {
            header_pending = false;
            check_movielens_csv_header(&fields).map_err(at)?;
            continue;
        }
        let exact = format == ImportFormat::MovielensCsv;
        let row = fields4(&fields, "commas", exact).map_err(|m| {
            if format == ImportFormat::AmazonCsv && first {
                at(format!("{m} (amazon-csv files have no header line)"))
            } else {
                at(m)
            }
        })?;
        first = false;
        let ts = check_ts(row.ts, "timestamp").map_err(at)?;
        table
            .push(&row.user, &row.item, ts, Some(row.rating), None)
            .map_err(at)?;
    }
    table.finish(input, format)
}

/// The 0-based field index of each mapped column of a `csv` file, in [`ColumnMapping::columns`]
/// order: looked up in the header, or parsed as 1-based numbers when `header` is `None`.
fn csv_columns(
    input: &Path,
    mapping: &ColumnMapping,
    header: Option<&[&str]>,
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for (key, col) in mapping.columns() {
        let idx = match header {
            Some(h) => h.iter().position(|c| c.trim() == col).ok_or_else(|| {
                let have: Vec<String> = h.iter().map(|c| format!("'{}'", c.trim())).collect();
                DataError::Schema {
                    path: input.to_path_buf(),
                    message: format!(
                        "column mapping key '{key}' names column '{col}', which is not in the \
                         header (columns: {})",
                        have.join(", ")
                    ),
                }
            })?,
            None => match col.trim().parse::<usize>() {
                Ok(n) if n >= 1 => n - 1,
                _ => {
                    return Err(DataError::config(
                        "columns",
                        format!(
                            "key '{key}': with header = false the columns are 1-based column \
                             numbers, got '{col}'"
                        ),
                    ))
                }
            },
        };
        out.push(idx);
    }
    Ok(out)
}

fn import_csv(input: &Path, mapping: &ColumnMapping) -> Result<Imported> {
    if matches!(mapping.delimiter, '"' | '\n' | '\r') {
        return Err(DataError::config(
            "columns",
            format!(
                "delimiter {:?} cannot be used (it is a quote or line break)",
                mapping.delimiter
            ),
        ));
    }
    let Some(delim_byte) = u8::try_from(mapping.delimiter)
        .ok()
        .filter(|b| b.is_ascii())
    else {
        return Err(DataError::config(
            "columns",
            format!(
                "delimiter {:?} is not an ASCII character (the csv reader splits on one byte)",
                mapping.delimiter
            ),
        ));
    };
    let mut records = DelimitedReader::open(input, delim_byte, MAX_LINE_BYTES)?;
    let mut table = TableBuilder::new(mapping.rating.is_some(), mapping.label.is_some());
    let delim = mapping.delimiter;
    let names: Vec<(&'static str, String)> = mapping
        .columns()
        .into_iter()
        .map(|(k, c)| {
            let shown = if mapping.header {
                c.to_string()
            } else {
                format!("#{}", c.trim())
            };
            (k, shown)
        })
        .collect();
    // (mapped field indices, expected field count), known after the header / first row.
    let mut layout: Option<(Vec<usize>, usize)> = None;
    // Data rows read so far (header and blank lines not counted).
    let mut rows = 0usize;
    if !mapping.header {
        // Validate the numbers up front, so a bad mapping fails even on an empty file.
        csv_columns(input, mapping, None)?;
    }
    while let Some((line_no, fields)) = records.next_record()? {
        let at = |message: String| line_err(input, line_no, message);
        let Some((idx, expected)) = layout.as_ref() else {
            if mapping.header {
                let idx = csv_columns(input, mapping, Some(&fields))?;
                layout = Some((idx, fields.len()));
                continue;
            }
            let idx = csv_columns(input, mapping, None)?;
            if let Some((j, _)) = idx.iter().enumerate().find(|(_, &i)| i >= fields.len()) {
                return Err(at(format!(
                    "found {} fields separated by {delim:?}, but column mapping key '{}' names \
                     column {}",
                    fields.len(),
                    names[j].0,
                    idx[j] + 1
                )));
            }
            layout = Some((idx, fields.len()));
            continue_with_row(&mut table, &fields, layout.as_ref(), &names, mapping, rows)
                .map_err(at)?;
            rows += 1;
            continue;
        };
        if fields.len() != *expected {
            let missing: Vec<String> = idx
                .iter()
                .zip(&names)
                .filter(|(&i, _)| i >= fields.len())
                .map(|(_, (k, c))| format!("'{c}' ({k})"))
                .collect();
            let what = if mapping.header {
                "as the header"
            } else {
                "as the first row"
            };
            let extra = if missing.is_empty() {
                String::new()
            } else {
                format!("; missing column {}", missing.join(", "))
            };
            return Err(at(format!(
                "expected {expected} fields separated by {delim:?} ({what}), found {}{extra}",
                fields.len()
            )));
        }
        continue_with_row(&mut table, &fields, layout.as_ref(), &names, mapping, rows)
            .map_err(at)?;
        rows += 1;
    }
    table.finish(input, ImportFormat::Csv)
}

/// Where each mapped key sits in [`ColumnMapping::columns`] (the order of `names` and of the
/// mapped field indices).
#[derive(Debug, Clone, Copy)]
struct Slots {
    timestamp: Option<usize>,
    rating: Option<usize>,
    label: Option<usize>,
}

impl Slots {
    fn of(mapping: &ColumnMapping) -> Self {
        let cols = mapping.columns();
        let at = |key: &str| cols.iter().position(|(k, _)| *k == key);
        Slots {
            timestamp: at("timestamp"),
            rating: at("rating"),
            label: at("label"),
        }
    }
}

/// Parses and adds one `csv` row whose field count was already checked; `row` is the 0-based
/// index of the row among the file's rows (the timestamp under `order = "file"`).
fn continue_with_row(
    table: &mut TableBuilder,
    fields: &[&str],
    layout: Option<&(Vec<usize>, usize)>,
    names: &[(&'static str, String)],
    mapping: &ColumnMapping,
    row: usize,
) -> std::result::Result<(), String> {
    let Some((idx, _)) = layout else {
        return Err("internal: csv layout missing".into());
    };
    let slots = Slots::of(mapping);
    let get = |j: usize| fields[idx[j]].trim();
    let col = |j: usize| format!("column '{}' ({})", names[j].1, names[j].0);
    let id = |j: usize| {
        let s = get(j);
        if s.is_empty() {
            Err(format!("{}: empty id", col(j)))
        } else {
            Ok(s)
        }
    };
    let value = |j: usize| match get(j).parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{}: '{}' is not a finite number", col(j), get(j))),
    };
    let user = id(0)?;
    let item = id(1)?;
    let ts = match slots.timestamp {
        Some(j) => crate::timestamp::parse_timestamp(
            get(j),
            mapping.timestamp_unit,
            mapping.timestamp_format,
        )
        .map_err(|m| format!("{}: {m}", col(j)))?,
        None => row_timestamp(row)?,
    };
    let rating = slots.rating.map(value).transpose()?;
    let label = slots.label.map(value).transpose()?;
    table.push(user, item, ts, rating, label)
}

/// The synthesised timestamp of the 0-based `row` under `order = "file"`.
fn row_timestamp(row: usize) -> std::result::Result<i64, String> {
    i64::try_from(row)
        .ok()
        .filter(|&r| r <= MAX_TIMESTAMP_SECS)
        .ok_or_else(|| {
            format!(
                "row {row}: more than {MAX_TIMESTAMP_SECS} rows cannot be ordered by file \
                 position (order = \"file\")"
            )
        })
}

/// Rows per record batch when reading a generic Parquet log.
const PARQUET_BATCH_ROWS: usize = 1 << 16;

fn is_raw_id_type(dt: &DataType) -> bool {
    dt.is_integer() || matches!(dt, DataType::Utf8 | DataType::LargeUtf8)
}

fn is_raw_ts_type(dt: &DataType) -> bool {
    is_numeric_ts_type(dt)
        || matches!(
            dt,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Timestamp(_, _)
                | DataType::Date32
                | DataType::Date64
        )
}

/// Integer and float timestamp columns: numbers in `timestamp_unit`.
fn is_numeric_ts_type(dt: &DataType) -> bool {
    dt.is_integer() || dt.is_floating()
}

fn is_raw_value_type(dt: &DataType) -> bool {
    dt.is_integer() || dt.is_floating()
}

fn import_parquet(input: &Path, mapping: &ColumnMapping) -> Result<Imported> {
    let schema_err = |message: String| DataError::Schema {
        path: input.to_path_buf(),
        message,
    };
    let builder = crate::table::open_parquet(input)?;
    let schema = builder.schema().clone();
    let columns = mapping.columns();
    let slots = Slots::of(mapping);
    let mut roots = Vec::new();
    for (key, col) in &columns {
        let Some(i) = schema.fields().iter().position(|f| f.name() == col) else {
            let have: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| format!("'{}'", f.name()))
                .collect();
            return Err(schema_err(format!(
                "column mapping key '{key}' names column '{col}', which is not in the file \
                 (columns: {})",
                have.join(", ")
            )));
        };
        let dt = schema.field(i).data_type();
        let (ok, want) = match *key {
            "user" | "item" => (is_raw_id_type(dt), "a string or integer id"),
            "timestamp" => (
                is_raw_ts_type(dt),
                "integer or float unix time, a string, or a Timestamp or Date",
            ),
            _ => (is_raw_value_type(dt), "a float or integer"),
        };
        if !ok {
            return Err(schema_err(format!(
                "column '{col}' (mapping key '{key}') has type {dt}, expected {want}"
            )));
        }
        if *key == "timestamp"
            && mapping.timestamp_format == TimestampFormat::Iso8601
            && is_numeric_ts_type(dt)
        {
            return Err(schema_err(format!(
                "column '{col}' (mapping key 'timestamp') has type {dt}, but timestamp_format = \
                 \"iso8601\" (use \"auto\" or \"unix\" for numeric unix times)"
            )));
        }
        if !roots.contains(&i) {
            roots.push(i);
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = crate::table::parquet_batches(
        input,
        builder
            .with_projection(mask)
            .with_batch_size(PARQUET_BATCH_ROWS),
    )?;
    let mut table = TableBuilder::new(mapping.rating.is_some(), mapping.label.is_some());
    let mut row0 = 0usize;
    let mut ids: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut ts = Vec::new();
    let mut ratings = Vec::new();
    let mut labels = Vec::new();
    for batch in reader {
        let batch = batch?;
        let n = batch.num_rows();
        let col = |key: &str, name: &str| -> Result<&dyn Array> {
            let a = batch.column_by_name(name).ok_or_else(|| {
                schema_err(format!("column '{name}' vanished from a record batch"))
            })?;
            if a.null_count() > 0 {
                let row = (0..a.len()).find(|&i| a.is_null(i)).unwrap_or(0);
                return Err(schema_err(format!(
                    "column '{name}' (mapping key '{key}') has a null at row {} (0-based)",
                    row0 + row
                )));
            }
            Ok(a.as_ref())
        };
        for (k, out) in ids.iter_mut().enumerate() {
            let (key, name) = columns[k];
            out.clear();
            raw_ids(col(key, name)?, out)
                .map_err(|m| schema_err(format!("column '{name}' (mapping key '{key}'): {m}")))?;
            if let Some(r) = out.iter().position(|s| s.trim().is_empty()) {
                return Err(schema_err(format!(
                    "column '{name}' (mapping key '{key}') has an empty id at row {} (0-based)",
                    row0 + r
                )));
            }
        }
        ts.clear();
        match slots.timestamp {
            Some(j) => {
                let (key, name) = columns[j];
                raw_seconds(col(key, name)?, mapping, row0, &mut ts).map_err(|m| {
                    schema_err(format!("column '{name}' (mapping key '{key}'): {m}"))
                })?;
            }
            None => {
                for r in 0..n {
                    ts.push(row_timestamp(row0 + r).map_err(schema_err)?);
                }
            }
        }
        for (slot, out) in [(slots.rating, &mut ratings), (slots.label, &mut labels)] {
            let Some(j) = slot else { continue };
            let (key, name) = columns[j];
            out.clear();
            raw_values(col(key, name)?, out)
                .map_err(|m| schema_err(format!("column '{name}' (mapping key '{key}'): {m}")))?;
            if let Some(r) = out.iter().position(|v: &f32| !v.is_finite()) {
                return Err(schema_err(format!(
                    "column '{name}' (mapping key '{key}') row {} (0-based): {} is not a finite \
                     number",
                    row0 + r,
                    out[r]
                )));
            }
        }
        for r in 0..n {
            let rating = slots.rating.map(|_| ratings[r]);
            let label = slots.label.map(|_| labels[r]);
            table
                .push(&ids[0][r], &ids[1][r], ts[r], rating, label)
                .map_err(|m| schema_err(format!("row {} (0-based): {m}", row0 + r)))?;
        }
        row0 += n;
    }
    table.finish(input, ImportFormat::Parquet)
}

/// Appends a string or integer id column as strings (no nulls; checked by the caller).
pub(crate) fn raw_ids(a: &dyn Array, out: &mut Vec<String>) -> std::result::Result<(), String> {
    use arrow::array::{
        Int16Array, Int32Array, Int64Array, Int8Array, LargeStringArray, StringArray, UInt16Array,
        UInt32Array, UInt64Array, UInt8Array,
    };
    macro_rules! ints {
        ($t:ty) => {
            out.extend(downcast::<$t>(a)?.values().iter().map(|v| v.to_string()))
        };
    }
    match a.data_type() {
        DataType::Utf8 => out.extend(
            downcast::<StringArray>(a)?
                .iter()
                .map(|s| s.unwrap_or_default().trim().to_string()),
        ),
        DataType::LargeUtf8 => out.extend(
            downcast::<LargeStringArray>(a)?
                .iter()
                .map(|s| s.unwrap_or_default().trim().to_string()),
        ),
        DataType::Int8 => ints!(Int8Array),
        DataType::Int16 => ints!(Int16Array),
        DataType::Int32 => ints!(Int32Array),
        DataType::Int64 => ints!(Int64Array),
        DataType::UInt8 => ints!(UInt8Array),
        DataType::UInt16 => ints!(UInt16Array),
        DataType::UInt32 => ints!(UInt32Array),
        DataType::UInt64 => ints!(UInt64Array),
        dt => return Err(format!("type {dt} is not a string or integer id")),
    }
    Ok(())
}

/// Appends a timestamp column as range-checked seconds: integers and floats in the mapping's
/// `timestamp_unit`, strings as in a `csv` cell ([`crate::timestamp::parse_timestamp`]), Arrow
/// Timestamps (any unit) and Dates by their own unit; always rounded down. Errors name the 0-based
/// row (`row0` = the row of the batch's first value); nulls were refused by the caller.
fn raw_seconds(
    a: &dyn Array,
    mapping: &ColumnMapping,
    row0: usize,
    out: &mut Vec<i64>,
) -> std::result::Result<(), String> {
    use crate::timestamp::{float_seconds, integer_seconds, parse_timestamp};
    use arrow::array::{
        Date32Array, Date64Array, Float64Array, Int64Array, LargeStringArray, StringArray,
        TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray, UInt64Array,
    };
    let unit = mapping.timestamp_unit;
    let at = |r: usize, m: String| format!("row {} (0-based): {m}", row0 + r);
    match a.data_type() {
        DataType::Timestamp(tu, _) => {
            let (vals, per): (&[i64], i64) = match tu {
                TimeUnit::Second => (downcast::<TimestampSecondArray>(a)?.values(), 1),
                TimeUnit::Millisecond => {
                    (downcast::<TimestampMillisecondArray>(a)?.values(), 1_000)
                }
                TimeUnit::Microsecond => (
                    downcast::<TimestampMicrosecondArray>(a)?.values(),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    downcast::<TimestampNanosecondArray>(a)?.values(),
                    1_000_000_000,
                ),
            };
            for (r, v) in vals.iter().enumerate() {
                out.push(secs_in_range(v.div_euclid(per)).map_err(|m| at(r, m))?);
            }
        }
        DataType::Date32 => {
            for (r, &d) in downcast::<Date32Array>(a)?.values().iter().enumerate() {
                out.push(secs_in_range(i64::from(d) * 86_400).map_err(|m| at(r, m))?);
            }
        }
        DataType::Date64 => {
            for (r, &ms) in downcast::<Date64Array>(a)?.values().iter().enumerate() {
                out.push(secs_in_range(ms.div_euclid(1_000)).map_err(|m| at(r, m))?);
            }
        }
        DataType::Utf8 => {
            for (r, v) in downcast::<StringArray>(a)?.iter().enumerate() {
                let v = v.unwrap_or_default();
                out.push(parse_timestamp(v, unit, mapping.timestamp_format).map_err(|m| at(r, m))?);
            }
        }
        DataType::LargeUtf8 => {
            for (r, v) in downcast::<LargeStringArray>(a)?.iter().enumerate() {
                let v = v.unwrap_or_default();
                out.push(parse_timestamp(v, unit, mapping.timestamp_format).map_err(|m| at(r, m))?);
            }
        }
        DataType::UInt64 => {
            for (r, &v) in downcast::<UInt64Array>(a)?.values().iter().enumerate() {
                let secs = match i64::try_from(v) {
                    Ok(i) => integer_seconds(i, unit, &v.to_string()),
                    Err(_) => float_seconds(v as f64, unit, &v.to_string()),
                };
                out.push(secs.map_err(|m| at(r, m))?);
            }
        }
        dt if dt.is_integer() => {
            let cast = arrow::compute::cast(a, &DataType::Int64)
                .map_err(|e| format!("cannot convert {dt} to Int64: {e}"))?;
            for (r, &v) in downcast::<Int64Array>(cast.as_ref())?
                .values()
                .iter()
                .enumerate()
            {
                out.push(integer_seconds(v, unit, &v.to_string()).map_err(|m| at(r, m))?);
            }
        }
        dt if dt.is_floating() => {
            let cast = arrow::compute::cast(a, &DataType::Float64)
                .map_err(|e| format!("cannot convert {dt} to Float64: {e}"))?;
            for (r, &v) in downcast::<Float64Array>(cast.as_ref())?
                .values()
                .iter()
                .enumerate()
            {
                out.push(float_seconds(v, unit, &v.to_string()).map_err(|m| at(r, m))?);
            }
        }
        dt => return Err(format!("type {dt} is not a timestamp type")),
    }
    Ok(())
}

/// Appends a float or integer column as f32.
fn raw_values(a: &dyn Array, out: &mut Vec<f32>) -> std::result::Result<(), String> {
    let cast = arrow::compute::cast(a, &DataType::Float32)
        .map_err(|e| format!("cannot convert {} to Float32: {e}", a.data_type()))?;
    out.extend_from_slice(downcast::<Float32Array>(cast.as_ref())?.values());
    Ok(())
}

fn downcast<T: 'static>(a: &dyn Array) -> std::result::Result<&T, String> {
    a.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("unexpected array type {}", a.data_type()))
}

/// Reads MovieLens/MovieTweetings `movies.dat` (`id::title::Genre|Genre`) into raw movie id ->
/// genres (in file order; an empty genre field or `(no genres listed)` gives no genres).
///
/// Lines that are not UTF-8 are decoded as Latin-1 (ml-1m's encoding), so this never fails on
/// encoding. A title may contain `::` (the id is before the first, the genres after the last).
/// Blank lines are skipped; a repeated id, an empty id or a line without two `::` is an error
/// naming the line; a file without movies is an error.
pub fn movielens_genres(path: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let mut lines = LineReader::open(path, MAX_LINE_BYTES)?;
    let mut out = BTreeMap::new();
    while let Some((line_no, raw)) = lines.next_line()? {
        let text = match std::str::from_utf8(raw) {
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
        let at = |message: String| line_err(path, line_no, message);
        let Some((id, Some((_title, genres)))) = text
            .split_once("::")
            .map(|(id, rest)| (id, rest.rsplit_once("::")))
        else {
            return Err(at("expected 'id::title::genres'".into()));
        };
        let id = id.trim();
        if id.is_empty() {
            return Err(at("empty movie id".into()));
        }
        let genres: Vec<String> = genres
            .split('|')
            .map(str::trim)
            .filter(|g| !g.is_empty() && *g != "(no genres listed)")
            .map(str::to_string)
            .collect();
        if out.insert(id.to_string(), genres).is_some() {
            return Err(at(format!("movie id '{id}' appears twice")));
        }
    }
    if out.is_empty() {
        return Err(DataError::Schema {
            path: path.to_path_buf(),
            message: "no rows (no movies)".into(),
        });
    }
    Ok(out)
}

pub(crate) fn line_err(path: &Path, line_no: usize, message: String) -> DataError {
    DataError::Schema {
        path: path.to_path_buf(),
        message: format!("line {line_no}: {message}"),
    }
}

/// Raw id -> dense id, dense ids from 1 in order of first appearance.
struct Vocab {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Vocab {
    fn new() -> Self {
        Vocab {
            index: HashMap::new(),
            names: vec![String::new()],
        }
    }

    fn id(&mut self, raw: &str) -> std::result::Result<u32, String> {
        if let Some(&i) = self.index.get(raw) {
            return Ok(i);
        }
        let i = u32::try_from(self.names.len())
            .ok()
            .filter(|&i| i < u32::MAX)
            .ok_or_else(|| "more distinct ids than fit in u32".to_string())?;
        self.index.insert(raw.to_string(), i);
        self.names.push(raw.to_string());
        Ok(i)
    }
}

struct Row<'a> {
    user: Cow<'a, str>,
    item: Cow<'a, str>,
    rating: f32,
    ts: i64,
}

fn parse_row(format: ImportFormat, text: &str) -> std::result::Result<Row<'_>, String> {
    match format {
        ImportFormat::MovielensDat | ImportFormat::Movietweetings => {
            let f: Vec<&str> = text.split("::").collect();
            fields4(&f, "'::'", true)
        }
        ImportFormat::MovielensTsv => {
            let f: Vec<&str> = text.split('\t').collect();
            fields4(&f, "tabs", true)
        }
        ImportFormat::AmazonJson => parse_amazon_json(text),
        ImportFormat::MovielensCsv | ImportFormat::AmazonCsv => {
            Err("internal: a CSV format read line by line".into())
        }
        ImportFormat::Csv | ImportFormat::Parquet => {
            Err("this format needs a column mapping (use import_with)".into())
        }
    }
}

fn fields4<'a>(f: &[&'a str], sep: &str, exact: bool) -> std::result::Result<Row<'a>, String> {
    if f.len() < 4 || (exact && f.len() != 4) {
        return Err(format!(
            "expected {}4 fields separated by {sep} (user, item, rating, timestamp), found {}",
            if exact { "" } else { "at least " },
            f.len()
        ));
    }
    Ok(Row {
        user: Cow::Borrowed(id_field(f[0], "user")?),
        item: Cow::Borrowed(id_field(f[1], "item")?),
        rating: rating_field(f[2])?,
        ts: ts_field(f[3])?,
    })
}

fn id_field<'a>(s: &'a str, what: &str) -> std::result::Result<&'a str, String> {
    let s = s.trim();
    if s.is_empty() {
        Err(format!("empty {what} id"))
    } else {
        Ok(s)
    }
}

fn rating_field(s: &str) -> std::result::Result<f32, String> {
    let s = s.trim();
    match s.parse::<f32>() {
        Ok(r) if r.is_finite() => Ok(r),
        _ => Err(format!("rating '{s}' is not a finite number")),
    }
}

fn ts_field(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    s.parse::<i64>()
        .map_err(|_| format!("timestamp '{s}' is not an integer (unix seconds)"))
}

fn check_movielens_csv_header(got: &[&str]) -> std::result::Result<(), String> {
    let want = ["userid", "movieid", "rating", "timestamp"];
    let ok = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.trim().eq_ignore_ascii_case(w));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected the header 'userId,movieId,rating,timestamp', found '{}'",
            got.join(",").trim()
        ))
    }
}

fn parse_amazon_json(text: &str) -> std::result::Result<Row<'static>, String> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("expected a JSON object".into());
    };
    let get = |field: &str| match obj.get(field) {
        None | Some(Value::Null) => Err(format!("missing field '{field}'")),
        Some(v) => Ok(v),
    };
    let id = |field: &str| -> std::result::Result<Cow<'static, str>, String> {
        let s = match get(field)? {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("field '{field}' must be a string, found {other}")),
        };
        if s.is_empty() {
            Err(format!("field '{field}' is an empty id"))
        } else {
            Ok(Cow::Owned(s))
        }
    };
    let user = id("reviewerID")?;
    let item = id("asin")?;
    let rating = match get("overall")? {
        Value::Number(n) => match n.as_f64().map(|x| x as f32) {
            Some(r) if r.is_finite() => r,
            _ => return Err(format!("field 'overall' ({n}) is not a finite f32")),
        },
        Value::String(s) => rating_field(s).map_err(|m| format!("field 'overall': {m}"))?,
        other => return Err(format!("field 'overall' must be a number, found {other}")),
    };
    let ts = match get("unixReviewTime")? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("field 'unixReviewTime' ({n}) is not an integer"))?,
        Value::String(s) => ts_field(s).map_err(|m| format!("field 'unixReviewTime': {m}"))?,
        other => {
            return Err(format!(
                "field 'unixReviewTime' must be an integer, found {other}"
            ))
        }
    };
    Ok(Row {
        user,
        item,
        rating,
        ts,
    })
}

/// Opens a plain or gzip file (gzip detected by the magic bytes `1f 8b`) as a buffered stream of
/// its (decompressed) bytes.
fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut raw = BufReader::with_capacity(1 << 16, file);
    let head = raw.fill_buf().map_err(|e| DataError::io(path, e))?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    })
}

/// The states of [`RecordScanner`]: the `csv` crate's parser states for our dialect (quote `"`,
/// doubled quotes, no escape character, no comments, `\r`, `\n` or `\r\n` line endings),
/// collapsed to what decides where records start and whether a quote is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Between records (line endings are skipped here: blank lines are not records).
    StartRecord,
    /// At the start of a field inside a record.
    StartField,
    /// Inside an unquoted field.
    InField,
    /// Inside a double-quoted field.
    Quoted,
    /// Just after a `"` inside a quoted field (a closing quote, or the first of a doubled one).
    QuoteInQuoted,
}

/// A byte stream for the `csv` reader that watches the bytes it hands over, with the parser's own
/// state machine: it records the physical (1-based) line on which each record starts (the `csv`
/// crate's positions count a record from the end of the previous one, so they name blank lines
/// and, with CRLF endings, the line before), refuses a record longer than `max` bytes (bounded
/// memory, even for a quote that is never closed), and notices a quoted field still open at the
/// end of the input (which the `csv` crate silently closes).
struct RecordScanner {
    inner: Box<dyn BufRead>,
    delim: u8,
    max: usize,
    state: Scan,
    /// The line of the next byte.
    line: u64,
    /// Start lines of the records seen but not yet taken by [`RecordScanner::take_start`].
    starts: VecDeque<u64>,
    /// Bytes of the current record so far.
    record_bytes: usize,
    /// The line where the open quoted field started.
    quote_line: u64,
    /// The first bytes of the input, served before `inner` (so a byte-order mark arrives whole).
    head: Vec<u8>,
    head_pos: usize,
    started: bool,
    /// Set when the input ended inside a quoted field: the line where it was opened.
    unterminated: Option<u64>,
    /// The error (with its line) once the scanner refused to go on.
    failure: Option<String>,
}

impl RecordScanner {
    fn new(inner: Box<dyn BufRead>, delim: u8, max: usize) -> Self {
        RecordScanner {
            inner,
            delim,
            max,
            state: Scan::StartRecord,
            line: 1,
            starts: VecDeque::new(),
            record_bytes: 0,
            quote_line: 0,
            head: Vec::new(),
            head_pos: 0,
            started: false,
            unterminated: None,
            failure: None,
        }
    }

    /// The start line of the next record the parser returns.
    fn take_start(&mut self) -> Option<u64> {
        self.starts.pop_front()
    }

    /// Advances the state machine over `bytes`; returns how many were accepted (all, unless a
    /// record grew past `max`, in which case `failure` is set).
    fn scan(&mut self, bytes: &[u8]) -> usize {
        let is_term = |b: u8| b == b'\n' || b == b'\r';
        for (k, &b) in bytes.iter().enumerate() {
            if self.state == Scan::StartRecord {
                if is_term(b) {
                    self.line += u64::from(b == b'\n');
                    continue;
                }
                self.starts.push_back(self.line);
                self.record_bytes = 0;
                self.state = Scan::StartField;
            }
            self.record_bytes += 1;
            if self.record_bytes > self.max {
                let start = self.starts.back().copied().unwrap_or(self.line);
                let hint = if self.state == Scan::Quoted {
                    format!(
                        " (the double-quoted field opened on line {} is never closed?)",
                        self.quote_line
                    )
                } else {
                    String::new()
                };
                self.failure = Some(format!(
                    "line {start}: record longer than {} bytes{hint}",
                    self.max
                ));
                return k;
            }
            self.line += u64::from(b == b'\n');
            self.state = match self.state {
                Scan::StartField if b == b'"' => {
                    self.quote_line = self.line;
                    Scan::Quoted
                }
                Scan::StartField | Scan::InField | Scan::QuoteInQuoted if b == self.delim => {
                    Scan::StartField
                }
                Scan::StartField | Scan::InField | Scan::QuoteInQuoted if is_term(b) => {
                    Scan::StartRecord
                }
                Scan::StartField | Scan::InField => Scan::InField,
                Scan::Quoted if b == b'"' => Scan::QuoteInQuoted,
                Scan::Quoted => Scan::Quoted,
                Scan::QuoteInQuoted if b == b'"' => Scan::Quoted,
                Scan::QuoteInQuoted => Scan::InField,
                Scan::StartRecord => Scan::StartRecord,
            };
        }
        bytes.len()
    }

    fn fail(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            self.failure.clone().unwrap_or_default(),
        )
    }
}

impl Read for RecordScanner {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failure.is_some() {
            return Err(self.fail());
        }
        if !self.started {
            // The parser strips a UTF-8 byte-order mark only when its first read holds all three
            // bytes: hand them over together, and skip them here too.
            self.started = true;
            while self.head.len() < 3 {
                let avail = self.inner.fill_buf()?;
                if avail.is_empty() {
                    break;
                }
                let n = avail.len().min(3 - self.head.len());
                self.head.extend_from_slice(&avail[..n]);
                self.inner.consume(n);
            }
            if self.head == b"\xef\xbb\xbf" && buf.len() > 3 {
                // The mark and the first bytes after it (an input of just the mark reads as
                // the end of the file).
                buf[..3].copy_from_slice(&self.head);
                self.head_pos = 3;
                return self.read_inner(&mut buf[3..]).map(|n| n + 3);
            }
        }
        if self.head_pos < self.head.len() {
            let pending = &self.head[self.head_pos..];
            let n = pending.len().min(buf.len());
            buf[..n].copy_from_slice(&pending[..n]);
            let accepted = self.scan(&buf[..n]);
            self.head_pos += accepted;
            return if accepted == 0 && n > 0 {
                Err(self.fail())
            } else {
                Ok(accepted)
            };
        }
        self.read_inner(buf)
    }
}

impl RecordScanner {
    /// Reads from `inner` into `buf`, scanning what is handed over.
    fn read_inner(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.inner.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        let accepted = self.scan(&buf[..n]);
        self.inner.consume(accepted);
        if n == 0 && self.state == Scan::Quoted {
            self.unterminated = Some(self.quote_line);
        }
        if accepted == 0 && n > 0 {
            return Err(self.fail());
        }
        Ok(accepted)
    }
}

/// Reads delimited text (plain or gzip) with the `csv` crate, in the dialect `pandas.to_csv`
/// writes: fields may be double-quoted, with `""` for a quote and delimiters or line breaks
/// inside; `\n`, `\r\n` (or `\r`) line endings; an optional UTF-8 byte-order mark. Records are
/// streamed one at a time; a record longer than `max` bytes is an error.
pub(crate) struct DelimitedReader {
    csv: csv::Reader<RecordScanner>,
    path: PathBuf,
    record: csv::ByteRecord,
    delim: u8,
}

impl DelimitedReader {
    /// Opens `path`; `delim` must be an ASCII character other than `"`, `\r` and `\n`.
    pub(crate) fn open(path: &Path, delim: u8, max: usize) -> Result<Self> {
        let inner = open_text(path)?;
        Ok(Self::from_reader(inner, path, delim, max))
    }

    fn from_reader(inner: Box<dyn BufRead>, path: &Path, delim: u8, max: usize) -> Self {
        let csv = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(false)
            .flexible(true)
            .quoting(true)
            .double_quote(true)
            .escape(None)
            .comment(None)
            .trim(csv::Trim::None)
            .terminator(csv::Terminator::CRLF)
            .from_reader(RecordScanner::new(inner, delim, max));
        DelimitedReader {
            csv,
            path: path.to_path_buf(),
            record: csv::ByteRecord::new(),
            delim,
        }
    }

    /// The next record that is not blank (all of its fields empty or whitespace, as a line of
    /// spaces or of whitespace delimiters), with the 1-based physical line where it starts; its
    /// fields are decoded as UTF-8 (an error names the line and the 1-based column).
    pub(crate) fn next_record(&mut self) -> Result<Option<(usize, Vec<&str>)>> {
        loop {
            let more = match self.csv.read_byte_record(&mut self.record) {
                Ok(more) => more,
                Err(e) => return Err(self.csv_err(e)),
            };
            let scanner = self.csv.get_mut();
            let start = scanner.take_start();
            if let Some(q) = scanner.unterminated {
                return Err(line_err(
                    &self.path,
                    usize::try_from(q).unwrap_or(usize::MAX),
                    "unterminated double quote: the quoted field that starts on this line is \
                     not closed before the end of the file"
                        .into(),
                ));
            }
            if !more {
                return Ok(None);
            }
            let line = start
                .or_else(|| self.record.position().map(|p| p.line()))
                .unwrap_or(0);
            let line = usize::try_from(line).unwrap_or(usize::MAX);
            let blank = self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
                && (self.record.len() == 1 || self.delim.is_ascii_whitespace());
            if blank {
                continue;
            }
            let mut fields = Vec::with_capacity(self.record.len());
            for (j, f) in self.record.iter().enumerate() {
                match std::str::from_utf8(f) {
                    Ok(s) => fields.push(s),
                    Err(e) => {
                        return Err(line_err(
                            &self.path,
                            line,
                            format!("column {}: not valid UTF-8 ({e})", j + 1),
                        ))
                    }
                }
            }
            return Ok(Some((line, fields)));
        }
    }

    fn csv_err(&mut self, e: csv::Error) -> DataError {
        let scanner = self.csv.get_ref();
        if let Some(msg) = &scanner.failure {
            return DataError::Schema {
                path: self.path.clone(),
                message: msg.clone(),
            };
        }
        let line = scanner.line;
        let message = e.to_string();
        match e.into_kind() {
            csv::ErrorKind::Io(e) => DataError::io(
                &self.path,
                std::io::Error::new(e.kind(), format!("line {line}: {e}")),
            ),
            _ => line_err(
                &self.path,
                usize::try_from(line).unwrap_or(usize::MAX),
                message,
            ),
        }
    }
}

/// Reads lines of at most `max` bytes from a plain or gzip file (gzip detected by magic bytes).
pub(crate) struct LineReader {
    inner: Box<dyn BufRead>,
    path: PathBuf,
    max: usize,
    line_no: usize,
    buf: Vec<u8>,
}

impl LineReader {
    pub(crate) fn open(path: &Path, max: usize) -> Result<Self> {
        Ok(Self::from_reader(open_text(path)?, path, max))
    }

    fn from_reader(inner: Box<dyn BufRead>, path: &Path, max: usize) -> Self {
        LineReader {
            inner,
            path: path.to_path_buf(),
            max,
            line_no: 0,
            buf: Vec::new(),
        }
    }

    /// The next line (without its `\n`) and its 1-based number, or `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<(usize, &[u8])>> {
        self.buf.clear();
        let line_no = self.line_no + 1;
        let mut read_any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(DataError::io(
                        &self.path,
                        std::io::Error::new(e.kind(), format!("line {line_no}: {e}")),
                    ))
                }
            };
            if avail.is_empty() {
                if !read_any {
                    return Ok(None);
                }
                break;
            }
            read_any = true;
            let (end, used, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i, i + 1, true),
                None => (avail.len(), avail.len(), false),
            };
            if self.buf.len() + end > self.max {
                return Err(line_err(
                    &self.path,
                    line_no,
                    format!("line longer than {} bytes", self.max),
                ));
            }
            self.buf.extend_from_slice(&avail[..end]);
            self.inner.consume(used);
            if done {
                break;
            }
        }
        self.line_no = line_no;
        Ok(Some((line_no, &self.buf)))
    }

    /// Like [`LineReader::next_line`], decoded as UTF-8 without the `\r` of a CRLF ending and
    /// without a byte-order mark on line 1; a line that is not UTF-8 is an error.
    pub(crate) fn next_text(&mut self) -> Result<Option<(usize, &str)>> {
        let path = self.path.clone();
        let Some((line_no, raw)) = self.next_line()? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(raw)
            .map_err(|e| line_err(&path, line_no, format!("not valid UTF-8 ({e})")))?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        let text = if line_no == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        Ok(Some((line_no, text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn err_of(format: ImportFormat, body: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "in.txt", body);
        let e = import(format, &p).unwrap_err().to_string();
        assert!(e.contains("in.txt"), "{e}");
        e
    }

    #[test]
    fn format_names_round_trip_and_unknown_lists_valid() {
        for (f, n) in ImportFormat::ALL.iter().zip(ImportFormat::names()) {
            assert_eq!(f.name(), *n);
            assert_eq!(n.parse::<ImportFormat>().unwrap(), *f);
            assert_eq!(f.to_string(), *n);
        }
        let e = "movielens".parse::<ImportFormat>().unwrap_err().to_string();
        assert!(e.contains("'movielens'"), "{e}");
        for n in ImportFormat::names() {
            assert!(e.contains(n), "{e}");
        }
    }

    #[test]
    fn movielens_dat_dense_ids_in_first_appearance_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "ratings.dat",
            b"7::1193::5::978300760\n3::661::3::978302109\n7::661::4::978301968",
        );
        let im = import(ImportFormat::MovielensDat, &p).unwrap();
        assert_eq!(im.interactions.user, vec![1, 2, 1]);
        assert_eq!(im.interactions.item, vec![1, 2, 2]);
        assert_eq!(im.interactions.ts, vec![978300760, 978302109, 978301968]);
        assert_eq!(im.interactions.rating, Some(vec![5.0, 3.0, 4.0]));
        assert_eq!(im.interactions.label, None);
        assert_eq!(im.user_vocab, vec!["", "7", "3"]);
        assert_eq!(im.item_vocab, vec!["", "1193", "661"]);
        im.interactions.validate().unwrap();
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"1::10::5::100\n2::20::1::200\n";
        let plain = write(dir.path(), "r.dat", body);
        // No .gz extension: detection is by content.
        let gz = write(dir.path(), "r.bin", &gzip(body));
        let a = import(ImportFormat::MovielensDat, &plain).unwrap();
        let b = import(ImportFormat::MovielensDat, &gz).unwrap();
        assert_eq!(a, b);
        let json = b"{\"reviewerID\":\"A\",\"asin\":\"B\",\"overall\":4.0,\"unixReviewTime\":5}\n";
        let gz = write(dir.path(), "r.json.gz", &gzip(json));
        let im = import(ImportFormat::AmazonJson, &gz).unwrap();
        assert_eq!(im.interactions.len(), 1);
        // A truncated gzip stream is an I/O error naming the file, not a panic.
        let mut bad = gzip(&body.repeat(100));
        bad.truncate(bad.len() / 2);
        let p = write(dir.path(), "bad.gz", &bad);
        let e = import(ImportFormat::MovielensDat, &p).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e}");
        assert!(e.to_string().contains("bad.gz"), "{e}");
    }

    #[test]
    fn movielens_tsv() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "u.data",
            b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
        );
        let im = import(ImportFormat::MovielensTsv, &p).unwrap();
        assert_eq!(im.user_vocab, vec!["", "196", "186"]);
        assert_eq!(im.item_vocab, vec!["", "242", "302"]);
        assert_eq!(im.interactions.ts, vec![881250949, 891717742]);
        let e = err_of(ImportFormat::MovielensTsv, b"1\t2\t3\t4\n1::2::3::4\n");
        assert!(e.contains("line 2") && e.contains("found 1"), "{e}");
    }

    #[test]
    fn movielens_csv_header_half_stars_crlf_bom() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "ratings.csv",
            b"\xef\xbb\xbfuserId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,1029,0.5,1260759179\r\n2,31,4.0,1260759185\r\n",
        );
        let im = import(ImportFormat::MovielensCsv, &p).unwrap();
        assert_eq!(im.interactions.rating, Some(vec![2.5, 0.5, 4.0]));
        assert_eq!(im.interactions.user, vec![1, 1, 2]);
        assert_eq!(im.interactions.item, vec![1, 2, 1]);
        let e = err_of(ImportFormat::MovielensCsv, b"1,31,2.5,1260759144\n");
        assert!(e.contains("line 1") && e.contains("header"), "{e}");
        let e = err_of(
            ImportFormat::MovielensCsv,
            b"userId,movieId,rating,timestamp\n",
        );
        assert!(e.contains("no rows"), "{e}");
    }

    #[test]
    fn movietweetings_keeps_leading_zeros_and_0_to_10() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "ratings.dat",
            b"1::0104257::0::1365029107\n2::104257::10::1366576639\n",
        );
        let im = import(ImportFormat::Movietweetings, &p).unwrap();
        assert_eq!(im.item_vocab, vec!["", "0104257", "104257"]);
        assert_eq!(im.interactions.rating, Some(vec![0.0, 10.0]));
    }

    #[test]
    fn amazon_csv_extra_columns_quotes_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.csv",
            b"A2IBPI20UZIR0U,1384719342,5.0,1393545600,0,0\r\n\"A14VAT5EAX3D9S\",\"1384719342\",3.0,1363392000\r\n",
        );
        let im = import(ImportFormat::AmazonCsv, &p).unwrap();
        assert_eq!(im.user_vocab, vec!["", "A2IBPI20UZIR0U", "A14VAT5EAX3D9S"]);
        assert_eq!(im.item_vocab, vec!["", "1384719342"]);
        assert_eq!(im.interactions.rating, Some(vec![5.0, 3.0]));
        let e = err_of(ImportFormat::AmazonCsv, b"user,item,rating,ts\n");
        assert!(e.contains("line 1") && e.contains("no header"), "{e}");
        let e = err_of(ImportFormat::AmazonCsv, b"\"A,1,2,3\n");
        assert!(e.contains("unterminated"), "{e}");
        let e = err_of(ImportFormat::AmazonCsv, b"A,1,2\n");
        assert!(e.contains("at least 4 fields"), "{e}");
    }

    #[test]
    fn amazon_json_lines_and_missing_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "r.json",
            br#"{"reviewerID": "A2SUAM1J3GNN3B", "asin": "0000013714", "reviewerName": "J. McDonald", "helpful": [2, 3], "reviewText": "x, y", "overall": 5.0, "summary": "s", "unixReviewTime": 1252800000, "reviewTime": "09 13, 2009"}
{"reviewerID": "B", "asin": "0000013714", "overall": "4", "unixReviewTime": "1252800001"}
"#,
        );
        let im = import(ImportFormat::AmazonJson, &p).unwrap();
        assert_eq!(im.user_vocab, vec!["", "A2SUAM1J3GNN3B", "B"]);
        assert_eq!(im.item_vocab, vec!["", "0000013714"]);
        assert_eq!(im.interactions.rating, Some(vec![5.0, 4.0]));
        assert_eq!(im.interactions.ts, vec![1252800000, 1252800001]);
        let good = r#"{"reviewerID":"A","asin":"B","overall":1,"unixReviewTime":2}"#;
        for (field, bad) in [
            (
                "asin",
                r#"{"reviewerID":"A","overall":1,"unixReviewTime":2}"#,
            ),
            (
                "reviewerID",
                r#"{"asin":"B","overall":1,"unixReviewTime":2}"#,
            ),
            (
                "overall",
                r#"{"reviewerID":"A","asin":"B","unixReviewTime":2}"#,
            ),
            (
                "unixReviewTime",
                r#"{"reviewerID":"A","asin":"B","overall":1}"#,
            ),
        ] {
            let e = err_of(
                ImportFormat::AmazonJson,
                format!("{good}\n{bad}\n").as_bytes(),
            );
            assert!(
                e.contains("line 2") && e.contains(&format!("'{field}'")),
                "{e}"
            );
        }
        let e = err_of(ImportFormat::AmazonJson, b"{\"reviewerID\": \n");
        assert!(e.contains("line 1") && e.contains("invalid JSON"), "{e}");
        let e = err_of(ImportFormat::AmazonJson, b"[1,2]\n");
        assert!(e.contains("JSON object"), "{e}");
        let e = err_of(
            ImportFormat::AmazonJson,
            br#"{"reviewerID":"A","asin":"B","overall":1,"unixReviewTime":2.5}"#,
        );
        assert!(e.contains("not an integer"), "{e}");
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let cases: [(&[u8], &str); 7] = [
            (b"1::2::3::4\n1::2::3\n", "found 3"),
            (b"1::2::3::4\n\n1::2::3::4::5\n", "found 5"),
            (b"1::2::3::4\n1::2::x::4\n", "rating 'x'"),
            (b"1::2::3::4\n1::2::NaN::4\n", "rating 'NaN'"),
            (b"1::2::3::4\n1::2::3::4.5\n", "timestamp '4.5'"),
            (b"1::2::3::4\n ::2::3::4\n", "empty user id"),
            (b"1::2::3::4\n1::::3::4\n", "empty item id"),
        ];
        for (body, what) in cases {
            let e = err_of(ImportFormat::MovielensDat, body);
            let line = if body.starts_with(b"1::2::3::4\n\n") {
                3
            } else {
                2
            };
            assert!(e.contains(&format!("line {line}:")), "{e}");
            assert!(e.contains(what), "{what}: {e}");
        }
        let e = err_of(ImportFormat::MovielensDat, b"1::2::3::4\n1::\xff::3::4\n");
        assert!(e.contains("line 2") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn empty_or_blank_file_has_no_rows_and_missing_file_is_io() {
        for body in [&b""[..], b"\n\n  \r\n"] {
            for f in ImportFormat::ALL.into_iter().filter(|f| !f.needs_mapping()) {
                let e = err_of(f, body);
                assert!(e.contains("no rows"), "{f}: {e}");
            }
        }
        let e = import(ImportFormat::MovielensDat, Path::new("/nonexistent/x.dat")).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/x.dat"), "{e}");
    }

    #[test]
    fn duplicates_are_kept_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "d.dat",
            b"5::9::1::30\n5::9::1::30\n\n5::9::4::10\n6::9::2::20\n",
        );
        let im = import(ImportFormat::Movietweetings, &p).unwrap();
        assert_eq!(im.interactions.len(), 4);
        assert_eq!(im.interactions.user, vec![1, 1, 1, 2]);
        assert_eq!(im.interactions.item, vec![1, 1, 1, 1]);
        assert_eq!(im.interactions.ts, vec![30, 30, 10, 20]);
        assert_eq!(im.interactions.rating, Some(vec![1.0, 1.0, 4.0, 2.0]));
    }

    #[test]
    fn overlong_line_is_an_error_not_an_allocation() {
        let body = b"1::2::3::4\n1::2222222222222222222222::3::4\n".to_vec();
        let reader: Box<dyn BufRead> = Box::new(std::io::Cursor::new(body));
        let mut lines = LineReader::from_reader(reader, Path::new("x.dat"), 16);
        assert_eq!(lines.next_line().unwrap().unwrap().0, 1);
        let e = lines.next_line().unwrap_err().to_string();
        assert!(
            e.contains("x.dat") && e.contains("line 2") && e.contains("16 bytes"),
            "{e}"
        );
    }

    #[test]
    fn vocab_written_atomically_to_dir_or_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "r.dat", b"u1::i1::5::1\nu2::i1::3::2\n");
        let im = import(ImportFormat::MovielensDat, &p).unwrap();
        let (u, i) = im.write_vocab(dir.path()).unwrap();
        assert_eq!(u, dir.path().join("user_vocab.json"));
        assert_eq!(i, dir.path().join("item_vocab.json"));
        assert_eq!(read_vocab(&u).unwrap(), im.user_vocab);
        assert_eq!(read_vocab(&i).unwrap(), im.item_vocab);
        assert_eq!(
            std::fs::read_to_string(&u).unwrap(),
            "[\"\",\"u1\",\"u2\"]\n"
        );
        let (u, i) = im.write_vocab(&dir.path().join("ml")).unwrap();
        assert_eq!(u, dir.path().join("ml.user_vocab.json"));
        assert_eq!(i, dir.path().join("ml.item_vocab.json"));
        assert_eq!(read_vocab(&i).unwrap(), vec!["", "i1"]);
        // No temp files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
        let bad = write(dir.path(), "bad.json", b"[\"x\"]");
        assert!(read_vocab(&bad)
            .unwrap_err()
            .to_string()
            .contains("entry 0"));
        let bad = write(dir.path(), "dup.json", b"[\"\",\"a\",\"a\"]");
        assert!(read_vocab(&bad)
            .unwrap_err()
            .to_string()
            .contains("both 'a'"));
    }

    #[test]
    fn genres_from_movies_dat_latin1_and_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "movies.dat",
            b"1::Toy Story (1995)::Animation|Children's|Comedy\n\n2::Caf\xe9 (1995)::Drama\n0003::A::B (2000)::\n4::X::(no genres listed)\n5::Fant\xc3\xb4mas::Crime\n",
        );
        let g = movielens_genres(&p).unwrap();
        assert_eq!(g["1"], vec!["Animation", "Children's", "Comedy"]);
        assert_eq!(g["2"], vec!["Drama"]);
        assert!(g["0003"].is_empty());
        assert!(g["4"].is_empty());
        assert_eq!(g["5"], vec!["Crime"]);
        assert_eq!(g.len(), 5);
        let p = write(dir.path(), "bad.dat", b"1::A::Drama\n2::only title\n");
        let e = movielens_genres(&p).unwrap_err().to_string();
        assert!(e.contains("bad.dat") && e.contains("line 2"), "{e}");
        let p = write(dir.path(), "dup.dat", b"1::A::Drama\n1::B::Drama\n");
        let e = movielens_genres(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let p = write(dir.path(), "empty.dat", b"");
        assert!(movielens_genres(&p)
            .unwrap_err()
            .to_string()
            .contains("no rows"));
    }

    fn csv_map(json: &str) -> ColumnMapping {
        serde_json::from_str(json).unwrap()
    }

    fn csv_err(body: &[u8], m: &ColumnMapping) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "log.csv", body);
        let e = import_with(ImportFormat::Csv, &p, Some(m))
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.csv"), "{e}");
        e
    }

    #[test]
    fn generic_formats_need_a_mapping() {
        assert!(ImportFormat::names().contains(&"csv"));
        assert!(ImportFormat::names().contains(&"parquet"));
        assert_eq!("csv".parse::<ImportFormat>().unwrap(), ImportFormat::Csv);
        assert_eq!(
            "parquet".parse::<ImportFormat>().unwrap(),
            ImportFormat::Parquet
        );
        assert!(ImportFormat::Csv.needs_mapping() && !ImportFormat::AmazonCsv.needs_mapping());
        let p = Path::new("/nonexistent/x.csv");
        for f in [ImportFormat::Csv, ImportFormat::Parquet] {
            let e = import(f, p).unwrap_err();
            assert!(
                matches!(&e, DataError::Config { key, .. } if key == "columns"),
                "{e}"
            );
            assert!(e.to_string().contains("needs a column mapping"), "{e}");
        }
        let m = ColumnMapping::new("u", "i", "t");
        let e = import_with(ImportFormat::MovielensDat, p, Some(&m)).unwrap_err();
        assert!(
            matches!(&e, DataError::Config { key, .. } if key == "columns"),
            "{e}"
        );
    }

    #[test]
    fn column_mapping_serde_and_compact_form() {
        let m = csv_map(r#"{"user": "u", "item": "i", "timestamp": "t"}"#);
        assert_eq!(m, ColumnMapping::new("u", "i", "t"));
        assert_eq!((m.delimiter, m.header), (',', true));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ColumnMapping>(&json).unwrap(), m);
        let e = serde_json::from_str::<ColumnMapping>(
            r#"{"user": "u", "item": "i", "timestamp": "t", "time": "x"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `time`"), "{e}");
        let m: ColumnMapping = "user=1, item=2, ts=4, rating=3, delimiter=tab, header=false"
            .parse()
            .unwrap();
        assert_eq!(m.delimiter, '\t');
        assert!(!m.header);
        assert_eq!(m.rating.as_deref(), Some("3"));
        assert_eq!(m.columns()[2], ("timestamp", "4"));
        let m: ColumnMapping = r#"{"user":"a","item":"b","timestamp":"c","delimiter":";"}"#
            .parse()
            .unwrap();
        assert_eq!(m.delimiter, ';');
        for (bad, what) in [
            ("user=a,item=b", "'timestamp'"),
            ("user=a,item=b,timestamp=c,color=d", "unknown key 'color'"),
            ("user=a,item=b,timestamp=c,delimiter=", "delimiter=comma"),
            ("user=a,item=b,timestamp=c,delimiter=ab", "single character"),
            ("user=a,item=b,timestamp=c,header=yes", "true or false"),
            ("user", "key=value"),
            ("{\"user\": 1}", "column mapping"),
        ] {
            let e = bad.parse::<ColumnMapping>().unwrap_err();
            assert!(
                matches!(&e, DataError::Config { key, .. } if key == "columns"),
                "{e}"
            );
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "m.json", br#"{"user":"a","item":"b"}"#);
        let e = ColumnMapping::read_json(&p).unwrap_err().to_string();
        assert!(e.contains("m.json") && e.contains("timestamp"), "{e}");
    }

    #[test]
    fn columns_key_value_refuses_duplicate_keys() {
        for (bad, what) in [
            ("user=u,user=i,item=i,ts=t", "duplicate key 'user'"),
            (
                "user=a,item=b,ts=c,timestamp=d",
                "duplicate key 'timestamp' (as 'ts' and 'timestamp')",
            ),
            (
                "user=a,item=b,ts=c,rating=r,rating=s",
                "duplicate key 'rating'",
            ),
            (
                "user=a,item=b,ts=c,delimiter=tab,delimiter=;",
                "duplicate key 'delimiter'",
            ),
            (
                "user=a,item=b,ts=c,header=true,header=false",
                "duplicate key 'header'",
            ),
        ] {
            let e = bad.parse::<ColumnMapping>().unwrap_err();
            assert!(
                matches!(&e, DataError::Config { key, .. } if key == "columns"),
                "{e}"
            );
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
        // The JSON form refuses them as well.
        let e = r#"{"user":"u","user":"i","item":"i","timestamp":"t"}"#
            .parse::<ColumnMapping>()
            .unwrap_err();
        assert!(e.to_string().contains("duplicate field"), "{e}");
    }

    #[test]
    fn csv_with_header_quotes_rating_and_label() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "log.csv",
            b"\xef\xbb\xbfts,extra,\"item id\",uid,score,click\r\n100,x,\"i,1\",u1,4.5,1\r\n\n200,y,i2,u2,3,0\r\n300,z,\"i,1\",u2,1e0,1",
        );
        let m = csv_map(
            r#"{"user":"uid","item":"item id","timestamp":"ts","rating":"score","label":"click"}"#,
        );
        let im = import_with(ImportFormat::Csv, &p, Some(&m)).unwrap();
        assert_eq!(im.user_vocab, vec!["", "u1", "u2"]);
        assert_eq!(im.item_vocab, vec!["", "i,1", "i2"]);
        assert_eq!(im.interactions.user, vec![1, 2, 2]);
        assert_eq!(im.interactions.item, vec![1, 2, 1]);
        assert_eq!(im.interactions.ts, vec![100, 200, 300]);
        assert_eq!(im.interactions.rating, Some(vec![4.5, 3.0, 1.0]));
        assert_eq!(im.interactions.label, Some(vec![1.0, 0.0, 1.0]));
        // Without rating/label in the mapping the table has neither.
        let m = ColumnMapping::new("uid", "item id", "ts");
        let im = import_with(ImportFormat::Csv, &p, Some(&m)).unwrap();
        assert_eq!(im.interactions.rating, None);
        assert_eq!(im.interactions.label, None);
        assert_eq!(im.interactions.len(), 3);
        // Only a header: no rows.
        let e = csv_err(b"uid,item id,ts\n", &m);
        assert!(e.contains("no rows"), "{e}");
    }

    #[test]
    fn csv_without_header_tab_delimited_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n";
        let p = write(dir.path(), "u.data.gz", &gzip(body));
        let m: ColumnMapping = "user=1,item=2,rating=3,timestamp=4,delimiter=tab,header=false"
            .parse()
            .unwrap();
        let im = import_with(ImportFormat::Csv, &p, Some(&m)).unwrap();
        let fixed = import(
            ImportFormat::MovielensTsv,
            &write(dir.path(), "u.data", body),
        )
        .unwrap();
        assert_eq!(im, fixed);
        // A column number beyond the first row.
        let mut m2 = m.clone();
        m2.label = Some("9".into());
        let e = csv_err(body, &m2);
        assert!(
            e.contains("line 1") && e.contains("'label'") && e.contains("column 9"),
            "{e}"
        );
        // Not a number with header = false: a config error.
        let mut m3 = m.clone();
        m3.user = "userId".into();
        let e = import_with(ImportFormat::Csv, &p, Some(&m3)).unwrap_err();
        assert!(
            matches!(&e, DataError::Config { key, .. } if key == "columns"),
            "{e}"
        );
        assert!(
            e.to_string().contains("'user'") && e.to_string().contains("1-based"),
            "{e}"
        );
        // A row with a different field count names the line and the missing column.
        let e = csv_err(b"1\t2\t3\t4\n1\t2\t3\n", &m);
        assert!(
            e.contains("line 2") && e.contains("found 3") && e.contains("'#4'"),
            "{e}"
        );
        // Truncated gzip: an I/O error, not a panic.
        let mut bad = gzip(&body.repeat(200));
        bad.truncate(bad.len() / 2);
        let p = write(dir.path(), "bad.gz", &bad);
        let e = import_with(ImportFormat::Csv, &p, Some(&m)).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e}");
        assert!(e.to_string().contains("bad.gz"), "{e}");
    }

    /// What `pandas.DataFrame.to_csv` writes with its defaults (`index=True`, `QUOTE_MINIMAL`):
    /// an unnamed index column first, quotes only around fields that need them, `""` for a
    /// quote, line breaks kept inside quoted fields.
    const PANDAS_CSV: &str = ",user,item,title,ts,rating\n\
        0,u1,\"i,1\",\"The \"\"Best\"\" Of\",100,4.5\n\
        1,u2,i2,\"two\nlines\",200,3.0\n\
        2,\"u \"\"3\"\"\",\"i,1\",\"a, \"\"b\"\"\nand\n\"\"c\"\"\",300,1.0\n";

    fn pandas_mapping() -> ColumnMapping {
        csv_map(r#"{"user":"user","item":"item","timestamp":"ts","rating":"rating"}"#)
    }

    fn assert_pandas_import(im: &Imported) {
        assert_eq!(im.user_vocab, vec!["", "u1", "u2", "u \"3\""]);
        assert_eq!(im.item_vocab, vec!["", "i,1", "i2"]);
        assert_eq!(im.interactions.user, vec![1, 2, 3]);
        assert_eq!(im.interactions.item, vec![1, 2, 1]);
        assert_eq!(im.interactions.ts, vec![100, 200, 300]);
        assert_eq!(im.interactions.rating, Some(vec![4.5, 3.0, 1.0]));
    }

    #[test]
    fn pandas_to_csv_quotes_doubled_quotes_embedded_newlines_and_index_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "pandas.csv", PANDAS_CSV.as_bytes());
        let m = pandas_mapping();
        let im = import_with(ImportFormat::Csv, &p, Some(&m)).unwrap();
        assert_pandas_import(&im);
        // Quoted ids keep their embedded delimiter, quotes and line breaks.
        let mut m2 = m.clone();
        m2.item = "title".into();
        let im = import_with(ImportFormat::Csv, &p, Some(&m2)).unwrap();
        assert_eq!(
            im.item_vocab,
            vec!["", "The \"Best\" Of", "two\nlines", "a, \"b\"\nand\n\"c\""]
        );
        // The unnamed index column can be mapped by position without a header, too.
        let body = PANDAS_CSV.split_once('\n').unwrap().1;
        let p = write(dir.path(), "noheader.csv", body.as_bytes());
        let m3: ColumnMapping = "user=2,item=3,timestamp=5,rating=6,header=false"
            .parse()
            .unwrap();
        let im = import_with(ImportFormat::Csv, &p, Some(&m3)).unwrap();
        assert_pandas_import(&im);
    }

    #[test]
    fn pandas_to_csv_bom_crlf_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let m = pandas_mapping();
        // encoding="utf-8-sig", lineterminator="\r\n" (the default on Windows): record ends are
        // CRLF, line breaks inside quoted fields stay as they were in the data.
        let crlf = PANDAS_CSV
            .replace(",100,4.5\n", ",100,4.5\r\n")
            .replace(",200,3.0\n", ",200,3.0\r\n")
            .replace(",300,1.0\n", ",300,1.0\r\n")
            .replace("rating\n", "rating\r\n");
        let bom = format!("\u{feff}{crlf}");
        let p = write(dir.path(), "bom.csv", bom.as_bytes());
        assert_pandas_import(&import_with(ImportFormat::Csv, &p, Some(&m)).unwrap());
        // compression="gzip".
        let p = write(dir.path(), "bom.csv.gz", &gzip(bom.as_bytes()));
        assert_pandas_import(&import_with(ImportFormat::Csv, &p, Some(&m)).unwrap());
        // A quoted first header field right after the byte-order mark.
        let p = write(
            dir.path(),
            "q.csv",
            "\u{feff}\"user\",item,ts\r\nu,\"i\r\nj\",5\r\n".as_bytes(),
        );
        let im = import_with(
            ImportFormat::Csv,
            &p,
            Some(&ColumnMapping::new("user", "item", "ts")),
        )
        .unwrap();
        assert_eq!(im.item_vocab, vec!["", "i\r\nj"]);
        // Only a byte-order mark: no rows, not an error about the header.
        let p = write(dir.path(), "bomonly.csv", b"\xef\xbb\xbf");
        let e = import_with(ImportFormat::Csv, &p, Some(&m))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bomonly.csv") && e.contains("no rows"), "{e}");
    }

    #[test]
    fn csv_errors_name_the_physical_line_after_multiline_records() {
        let m = pandas_mapping();
        // Row 4 starts on physical line 8 (rows 2 and 3 span 2 and 3 lines).
        let bad = format!("{PANDAS_CSV}3,u4,i9,x,1.5x,2.0\n");
        for body in [
            bad.clone(),
            bad.replace('\n', "\r\n"),
            format!("\u{feff}\n\n{}", bad.replacen('\n', "\n\n", 1)),
        ] {
            let want = if body.starts_with('\u{feff}') {
                "line 11:"
            } else {
                "line 8:"
            };
            let e = csv_err(body.as_bytes(), &m);
            assert!(
                e.contains(want) && e.contains("'1.5x' is not a timestamp"),
                "{want}: {e}"
            );
        }
        // A record with a line break in a quoted field, and the wrong field count: named by the
        // line it starts on.
        let e = csv_err(b"user,item,ts,rating\n1,2,3,4\n1,\"2\n\",3\n", &m);
        assert!(e.contains("line 3:") && e.contains("found 3"), "{e}");
        // Bytes that are not UTF-8 name the line and the column.
        let e = csv_err(b"user,item,ts,rating\n1,2,3,4\n\n1,\xff,3,4\n", &m);
        assert!(
            e.contains("line 4:") && e.contains("column 2") && e.contains("UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn csv_record_length_is_bounded_even_inside_an_open_quote() {
        let body: Vec<u8> = b"a,b\n\"c,d\n"
            .iter()
            .chain(&[b'x'; 100])
            .copied()
            .collect();
        let reader: Box<dyn BufRead> = Box::new(std::io::Cursor::new(body));
        let mut r = DelimitedReader::from_reader(reader, Path::new("x.csv"), b',', 32);
        assert_eq!(r.next_record().unwrap().unwrap(), (1, vec!["a", "b"]));
        let e = r.next_record().unwrap_err().to_string();
        assert!(
            e.contains("x.csv")
                && e.contains("line 2: record longer than 32 bytes")
                && e.contains("opened on line 2"),
            "{e}"
        );
        // A whitespace-only line is blank; `,,` is a record of empty fields.
        let reader: Box<dyn BufRead> = Box::new(std::io::Cursor::new(b"  \r\n,,\n".to_vec()));
        let mut r = DelimitedReader::from_reader(reader, Path::new("x.csv"), b',', 32);
        assert_eq!(r.next_record().unwrap().unwrap(), (2, vec!["", "", ""]));
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn csv_delimiter_must_be_one_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.csv", "u§i§t\n1§2§3\n".as_bytes());
        let mut m = ColumnMapping::new("u", "i", "t");
        m.delimiter = '§';
        let e = import_with(ImportFormat::Csv, &p, Some(&m)).unwrap_err();
        assert!(
            matches!(&e, DataError::Config { key, .. } if key == "columns")
                && e.to_string().contains("ASCII"),
            "{e}"
        );
        m.delimiter = ';';
        let p = write(dir.path(), "y.csv", b"u;i;t\n1;\"2;x\";3\n");
        let im = import_with(ImportFormat::Csv, &p, Some(&m)).unwrap();
        assert_eq!(im.item_vocab, vec!["", "2;x"]);
    }

    #[test]
    fn amazon_and_movielens_csv_accept_pandas_quoting() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.csv",
            b"\xef\xbb\xbf\"A \"\"1\"\"\",\"B,2\",5.0,1393545600\r\nA,\"B\r\n3\",4.0,1393545601\r\n",
        );
        let im = import(ImportFormat::AmazonCsv, &p).unwrap();
        assert_eq!(im.user_vocab, vec!["", "A \"1\"", "A"]);
        assert_eq!(im.item_vocab, vec!["", "B,2", "B\r\n3"]);
        let p = write(
            dir.path(),
            "r.csv",
            b"userId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n\"1\",\"1029\",\"0.5\",\"1260759179\"\r\n",
        );
        let im = import(ImportFormat::MovielensCsv, &p).unwrap();
        assert_eq!(im.interactions.rating, Some(vec![2.5, 0.5]));
        let e = err_of(
            ImportFormat::MovielensCsv,
            b"userId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,\"3\n1\",2.5\r\n",
        );
        assert!(e.contains("line 3:") && e.contains("found 3"), "{e}");
    }

    #[test]
    fn csv_errors_name_file_line_and_column() {
        let m = csv_map(r#"{"user":"u","item":"i","timestamp":"t","rating":"r"}"#);
        let e = csv_err(b"u,i,t\n1,2,3\n", &m);
        assert!(
            e.contains("'rating'") && e.contains("'r'") && e.contains("'u', 'i', 't'"),
            "{e}"
        );
        let head = "u,i,t,r\n1,2,3,4\n";
        for (row, what) in [
            ("1,2,3\n", "found 3"),
            ("1,2,3,4,5\n", "found 5"),
            (
                "1,2,3,x\n",
                "column 'r' (rating): 'x' is not a finite number",
            ),
            ("1,2,3,NaN\n", "column 'r' (rating): 'NaN'"),
            (
                "1,2,3.5x,4\n",
                "column 't' (timestamp): '3.5x' is not a timestamp",
            ),
            ("1,2,NaN,4\n", "column 't' (timestamp): 'NaN' is not a finite"),
            ("1,2,inf,4\n", "column 't' (timestamp): 'inf' is not a finite"),
            ("1,2,,4\n", "column 't' (timestamp): empty timestamp"),
            (
                "1,2,2001-02-30,4\n",
                "column 't' (timestamp): '2001-02-30' is not a valid date: February 2001 has 28 days",
            ),
            ("1,2,1600000000000.0,4\n", "timestamp_unit = \"ms\""),
            ("1,,3,4\n", "column 'i' (item): empty id"),
            ("1,\"2,3,4\n", "unterminated"),
            ("1,2,1600000000000,4\n", "looks like milliseconds"),
            ("1,2,-5,4\n", "negative"),
        ] {
            let e = csv_err(format!("{head}{row}").as_bytes(), &m);
            assert!(e.contains("line 3"), "{e}");
            assert!(e.contains(what), "{what}: {e}");
        }
        let e = csv_err(b"u,i,t,r\n1,2,3,4\n1,2,3\n", &m);
        assert!(e.contains("missing column 'r' (rating)"), "{e}");
        let mut m2 = m.clone();
        m2.delimiter = '"';
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.csv", b"u,i,t\n");
        assert!(matches!(
            import_with(ImportFormat::Csv, &p, Some(&m2)).unwrap_err(),
            DataError::Config { .. }
        ));
    }

    #[test]
    fn implausible_timestamps_are_errors_in_every_format() {
        let e = err_of(
            ImportFormat::MovielensDat,
            b"1::2::3::978300760\n1::2::3::978300760000\n",
        );
        assert!(
            e.contains("line 2") && e.contains("'timestamp'") && e.contains("milliseconds"),
            "{e}"
        );
        let e = err_of(ImportFormat::MovielensTsv, b"1\t2\t3\t-1\n");
        assert!(e.contains("line 1") && e.contains("negative"), "{e}");
        let e = err_of(
            ImportFormat::AmazonJson,
            br#"{"reviewerID":"A","asin":"B","overall":1,"unixReviewTime":1252800000000000}"#,
        );
        assert!(
            e.contains("'unixReviewTime'") && e.contains("micro- or nanoseconds"),
            "{e}"
        );
        // The bounds themselves are fine.
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "ok.dat", b"1::2::3::0\n1::2::3::4102444800\n");
        assert_eq!(
            import(ImportFormat::MovielensDat, &p)
                .unwrap()
                .interactions
                .ts,
            vec![0, MAX_TIMESTAMP_SECS]
        );
    }

    fn write_parquet_batches(path: &Path, batches: &[arrow::record_batch::RecordBatch]) {
        let file = File::create(path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), None).unwrap();
        for b in batches {
            w.write(b).unwrap();
            w.flush().unwrap(); // one row group per batch
        }
        w.close().unwrap();
    }

    #[test]
    fn parquet_utf8_ids_int_ts_float_rating() {
        use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
        use arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.parquet");
        let batch = |u: Vec<&str>, i: Vec<&str>, t: Vec<i64>, r: Vec<f64>| {
            RecordBatch::try_from_iter([
                ("uid", Arc::new(StringArray::from(u)) as ArrayRef),
                (
                    "extra",
                    Arc::new(Int64Array::from(vec![0; t.len()])) as ArrayRef,
                ),
                ("iid", Arc::new(StringArray::from(i)) as ArrayRef),
                ("when", Arc::new(Int64Array::from(t)) as ArrayRef),
                ("stars", Arc::new(Float64Array::from(r)) as ArrayRef),
            ])
            .unwrap()
        };
        write_parquet_batches(
            &p,
            &[
                batch(
                    vec!["a", "b"],
                    vec!["0042", "42"],
                    vec![10, 20],
                    vec![5.0, 2.5],
                ),
                batch(vec!["b"], vec!["0042"], vec![30], vec![1.0]),
            ],
        );
        let mut m = ColumnMapping::new("uid", "iid", "when");
        m.rating = Some("stars".into());
        let im = import_with(ImportFormat::Parquet, &p, Some(&m)).unwrap();
        assert_eq!(im.user_vocab, vec!["", "a", "b"]);
        assert_eq!(im.item_vocab, vec!["", "0042", "42"]);
        assert_eq!(im.interactions.user, vec![1, 2, 2]);
        assert_eq!(im.interactions.item, vec![1, 2, 1]);
        assert_eq!(im.interactions.ts, vec![10, 20, 30]);
        assert_eq!(im.interactions.rating, Some(vec![5.0, 2.5, 1.0]));
        assert_eq!(im.interactions.label, None);
        // A missing mapped column names the file, the column and the available columns.
        let mut bad = m.clone();
        bad.label = Some("click".into());
        let e = import_with(ImportFormat::Parquet, &p, Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("log.parquet") && e.contains("'click'") && e.contains("'uid', 'extra'"),
            "{e}"
        );
        // Wrong type for a rating.
        let mut bad = m.clone();
        bad.rating = Some("uid".into());
        let e = import_with(ImportFormat::Parquet, &p, Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'uid'") && e.contains("Utf8"), "{e}");
        // Milliseconds as integers: the row is named (rows count across batches).
        write_parquet_batches(
            &p,
            &[
                batch(vec!["a"], vec!["x"], vec![10], vec![1.0]),
                batch(
                    vec!["a", "a"],
                    vec!["x", "x"],
                    vec![20, 1_600_000_000_000],
                    vec![1.0, 1.0],
                ),
            ],
        );
        let e = import_with(ImportFormat::Parquet, &p, Some(&m))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 2") && e.contains("'when'") && e.contains("milliseconds"),
            "{e}"
        );
        // NaN rating.
        write_parquet_batches(&p, &[batch(vec!["a"], vec!["x"], vec![10], vec![f64::NAN])]);
        let e = import_with(ImportFormat::Parquet, &p, Some(&m))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'stars'") && e.contains("not a finite"), "{e}");
        // Empty string id.
        write_parquet_batches(&p, &[batch(vec![" "], vec!["x"], vec![10], vec![1.0])]);
        let e = import_with(ImportFormat::Parquet, &p, Some(&m))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'uid'") && e.contains("empty id") && e.contains("row 0"),
            "{e}"
        );
        // Not Parquet.
        std::fs::write(&p, b"user,item\n").unwrap();
        let e = import_with(ImportFormat::Parquet, &p, Some(&m)).unwrap_err();
        assert!(matches!(e, DataError::Parquet { .. }), "{e}");
    }

    #[test]
    fn parquet_int_ids_timestamp_column_nulls() {
        use arrow::array::{
            ArrayRef, Int32Array, Int64Array, LargeStringArray, TimestampMillisecondArray,
            UInt16Array,
        };
        use arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ints.parquet");
        let b = RecordBatch::try_from_iter([
            (
                "user",
                Arc::new(Int64Array::from(vec![7, 3, 7])) as ArrayRef,
            ),
            (
                "item",
                Arc::new(UInt16Array::from(vec![1193, 661, 661])) as ArrayRef,
            ),
            (
                "time",
                Arc::new(TimestampMillisecondArray::from(vec![
                    978_300_760_999,
                    978_302_109_000,
                    978_301_968_500,
                ])) as ArrayRef,
            ),
            (
                "click",
                Arc::new(Int32Array::from(vec![1, 0, 1])) as ArrayRef,
            ),
        ])
        .unwrap();
        write_parquet_batches(&p, &[b]);
        let mut m = ColumnMapping::new("user", "item", "time");
        m.label = Some("click".into());
        let im = import_with(ImportFormat::Parquet, &p, Some(&m)).unwrap();
        assert_eq!(im.user_vocab, vec!["", "7", "3"]);
        assert_eq!(im.item_vocab, vec!["", "1193", "661"]);
        assert_eq!(im.interactions.ts, vec![978300760, 978302109, 978301968]);
        assert_eq!(im.interactions.label, Some(vec![1.0, 0.0, 1.0]));
        assert_eq!(im.interactions.rating, None);
        // The same log as text gives the same dense ids.
        let txt = write(
            dir.path(),
            "r.dat",
            b"7::1193::5::978300760\n3::661::3::978302109\n7::661::4::978301968",
        );
        let fixed = import(ImportFormat::MovielensDat, &txt).unwrap();
        assert_eq!(fixed.interactions.user, im.interactions.user);
        assert_eq!(fixed.interactions.item, im.interactions.item);
        assert_eq!(fixed.item_vocab, im.item_vocab);
        // LargeUtf8 ids and a null.
        let b = RecordBatch::try_from_iter([
            (
                "user",
                Arc::new(LargeStringArray::from(vec![Some("a"), Some("b"), None])) as ArrayRef,
            ),
            (
                "item",
                Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef,
            ),
            (
                "time",
                Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef,
            ),
        ])
        .unwrap();
        write_parquet_batches(&p, &[b]);
        let m = ColumnMapping::new("user", "item", "time");
        let e = import_with(ImportFormat::Parquet, &p, Some(&m))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ints.parquet") && e.contains("'user'") && e.contains("null at row 2"),
            "{e}"
        );
    }

    fn csv_ok(body: &str, m: &ColumnMapping) -> Imported {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "log.csv", body.as_bytes());
        import_with(ImportFormat::Csv, &p, Some(m)).unwrap()
    }

    #[test]
    fn csv_timestamps_floats_and_iso8601_as_pandas_writes_them() {
        // What pandas writes for an int column with a missing value elsewhere (floats), for a
        // datetime64 column (a space, optional fraction), and for a tz-aware one (+00:00).
        let body = ",user,item,ts,rating\n\
                    0,u1,i1,978300760.0,5.0\n\
                    1,u1,i2,978300760.75,4.0\n\
                    2,u2,i1,2000-12-31 22:12:40,3.0\n\
                    3,u2,i2,2000-12-31 22:12:40.500000,3.0\n\
                    4,u3,i1,2000-12-31 22:12:40+00:00,1.0\n\
                    5,u3,i2,2001-01-01T00:12:40+02:00,1.0\n\
                    6,u3,i3,2000-12-31T17:42:40-04:30,1.0\n\
                    7,u4,i1,2000-12-31,2.0\n\
                    8,u4,i1,2000-12-31T22:12:40Z,2.0\n\
                    9,u4,i1,978300760,2.0\n";
        let mut m = ColumnMapping::new("user", "item", "ts");
        m.rating = Some("rating".into());
        let im = csv_ok(body, &m);
        let t = 978_300_760;
        assert_eq!(
            im.interactions.ts,
            vec![t, t, t, t, t, t, t, 978_220_800, t, t]
        );
        assert_eq!(im.interactions.rating.as_ref().unwrap().len(), 10);
        // The same through the JSON and compact forms of the mapping.
        let m2: ColumnMapping = "user=user,item=item,ts=ts,rating=rating,timestamp_format=auto"
            .parse()
            .unwrap();
        assert_eq!(m2, m);
    }

    #[test]
    fn timestamp_unit_converts_before_the_range_check() {
        let body = "u,i,t\na,x,978300760999\nb,y,978300761000\n";
        // Milliseconds without timestamp_unit: the error names file, line and column and says
        // how to fix it.
        let e = csv_err(body.as_bytes(), &ColumnMapping::new("u", "i", "t"));
        assert!(
            e.contains("line 2")
                && e.contains("column 't' (timestamp)")
                && e.contains("looks like milliseconds")
                && e.contains("timestamp_unit = \"ms\""),
            "{e}"
        );
        let m: ColumnMapping = "user=u,item=i,ts=t,timestamp_unit=ms".parse().unwrap();
        assert_eq!(m.timestamp_unit, TimestampUnit::Milliseconds);
        assert_eq!(
            csv_ok(body, &m).interactions.ts,
            vec![978_300_760, 978_300_761]
        );
        // Microseconds given as milliseconds: still refused after the conversion.
        let e = csv_err(b"u,i,t\na,x,978300760999000\n", &m);
        assert!(e.contains("timestamp_unit = \"us\""), "{e}");
        for (unit, v, want) in [
            ("us", "978300760999999", 978_300_760),
            ("ns", "978300760999999999", 978_300_760),
            ("ms", "978300760999.9", 978_300_760),
            ("s", "0", 0),
            ("ms", "999", 0),
        ] {
            let m: ColumnMapping = format!("user=u,item=i,ts=t,timestamp_unit={unit}")
                .parse()
                .unwrap();
            let im = csv_ok(&format!("u,i,t\na,x,{v}\n"), &m);
            assert_eq!(im.interactions.ts, vec![want], "{unit} {v}");
        }
        // A negative time is negative whatever the unit.
        let e = csv_err(b"u,i,t\na,x,-1\n", &m);
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn timestamp_format_unix_and_iso8601_refuse_the_other_form() {
        let body = b"u,i,t\na,x,978300760\nb,y,2000-12-31\n";
        let unix: ColumnMapping = "user=u,item=i,ts=t,timestamp_format=unix".parse().unwrap();
        let e = csv_err(body, &unix);
        assert!(
            e.contains("line 3") && e.contains("timestamp_format = \"unix\""),
            "{e}"
        );
        let iso: ColumnMapping = "user=u,item=i,ts=t,timestamp_format=iso8601"
            .parse()
            .unwrap();
        let e = csv_err(body, &iso);
        assert!(
            e.contains("line 2") && e.contains("timestamp_format = \"iso8601\""),
            "{e}"
        );
        let im = csv_ok("u,i,t\nb,y,2000-12-31\n", &iso);
        assert_eq!(im.interactions.ts, vec![978_220_800]);
        // auto takes both, per value.
        let im = csv_ok(
            std::str::from_utf8(body).unwrap(),
            &ColumnMapping::new("u", "i", "t"),
        );
        assert_eq!(im.interactions.ts, vec![978_300_760, 978_220_800]);
    }

    #[test]
    fn column_mapping_new_keys_in_toml_json_and_compact_form() {
        #[derive(serde::Deserialize)]
        struct Doc {
            columns: ColumnMapping,
        }
        let doc: Doc = toml::from_str(
            "columns = { user = \"userId\", item = \"movieId\", timestamp = \"ts\", \
             timestamp_unit = \"ms\", timestamp_format = \"unix\" }",
        )
        .unwrap();
        let m = doc.columns;
        assert_eq!(m.timestamp.as_deref(), Some("ts"));
        assert_eq!(m.timestamp_unit, TimestampUnit::Milliseconds);
        assert_eq!(m.timestamp_format, TimestampFormat::Unix);
        assert_eq!(m.order, RowOrder::Timestamp);
        m.validate().unwrap();
        let compact: ColumnMapping =
            "user=userId,item=movieId,timestamp=ts,timestamp_unit=ms,timestamp_format=unix"
                .parse()
                .unwrap();
        assert_eq!(compact, m);
        // JSON round trip; defaults are not serialized, so older mappings serialize as before.
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ColumnMapping>(&json).unwrap(), m);
        let plain = serde_json::to_string(&ColumnMapping::new("u", "i", "t")).unwrap();
        assert!(
            !plain.contains("timestamp_unit") && !plain.contains("order"),
            "{plain}"
        );
        let doc: Doc =
            toml::from_str("columns = { user = \"u\", item = \"i\", order = \"file\" }").unwrap();
        assert_eq!(doc.columns, ColumnMapping::in_file_order("u", "i"));
        assert_eq!(
            "user=u,item=i,order=file".parse::<ColumnMapping>().unwrap(),
            doc.columns
        );
        // Unknown keys and bad values stay errors, in every form.
        for bad in [
            "columns = { user = \"u\", item = \"i\", timestamp = \"t\", unit = \"ms\" }",
            "columns = { user = \"u\", item = \"i\", timestamp = \"t\", timestamp_unit = \"sec\" }",
            "columns = { user = \"u\", item = \"i\", timestamp = \"t\", timestamp_format = \"x\" }",
            "columns = { user = \"u\", item = \"i\", order = \"random\" }",
        ] {
            assert!(toml::from_str::<Doc>(bad).is_err(), "{bad}");
        }
        for (bad, what) in [
            ("user=u,item=i,ts=t,unit=ms", "unknown key 'unit'"),
            ("user=u,item=i,ts=t,timestamp_unit=sec", "s, ms, us or ns"),
            (
                "user=u,item=i,ts=t,timestamp_format=x",
                "auto, unix or iso8601",
            ),
            ("user=u,item=i,order=random", "timestamp or file"),
            ("user=u,item=i", "order = \"file\""),
            ("user=u,item=i,ts=t,order=file", "give one of them"),
            (
                "user=u,item=i,order=file,timestamp_unit=ms",
                "need a 'timestamp'",
            ),
            (
                "user=u,item=i,ts=t,timestamp_unit=ms,timestamp_unit=s",
                "duplicate key",
            ),
            (r#"{"user":"u","item":"i"}"#, "order = \"file\""),
            (
                r#"{"user":"u","item":"i","timestamp":"t","order":"file"}"#,
                "give one",
            ),
            (
                r#"{"user":"u","item":"i","timestamp":"t","unit":"ms"}"#,
                "unknown field",
            ),
        ] {
            let e = bad.parse::<ColumnMapping>().unwrap_err();
            assert!(
                matches!(&e, DataError::Config { key, .. } if key == "columns"),
                "{e}"
            );
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn order_file_synthesises_row_index_timestamps() {
        let m = ColumnMapping::in_file_order("user", "item");
        // Header and blank lines are not rows; per-user order is file order.
        let im = csv_ok("user,item\nb,x\n\na,y\nb,z\r\na,x\n", &m);
        assert_eq!(im.interactions.ts, vec![0, 1, 2, 3]);
        assert_eq!(im.interactions.user, vec![1, 2, 1, 2]);
        assert_eq!(im.interactions.item, vec![1, 2, 3, 1]);
        // Without a header too (the first row is a row).
        let m2: ColumnMapping = "user=1,item=2,order=file,header=false".parse().unwrap();
        let im = csv_ok("b,x,5\na,y,6\n", &m2);
        assert_eq!(im.interactions.ts, vec![0, 1]);
        // Neither a timestamp nor order = "file", or both: errors before the file is read.
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "log.csv", b"user,item,ts\nb,x,1\n");
        let mut neither = m.clone();
        neither.order = RowOrder::Timestamp;
        let mut both = ColumnMapping::new("user", "item", "ts");
        both.order = RowOrder::File;
        for (bad, what) in [(&neither, "order = \"file\""), (&both, "give one of them")] {
            for f in [ImportFormat::Csv, ImportFormat::Parquet] {
                let e = import_with(f, &p, Some(bad)).unwrap_err();
                assert!(
                    matches!(&e, DataError::Config { key, .. } if key == "columns")
                        && e.to_string().contains(what),
                    "{e}"
                );
            }
        }
        let w = file_order_warning(&p);
        assert!(
            w.contains("log.csv") && w.contains("synthesised from file order"),
            "{w}"
        );
    }

    #[test]
    fn parquet_timestamps_floats_strings_units_dates_and_file_order() {
        use arrow::array::{
            ArrayRef, Date32Array, Float64Array, Int64Array, StringArray, UInt64Array,
        };
        use arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let col = |name: &str, a: ArrayRef| (name.to_string(), a);
        let batch = |extra: Vec<(String, ArrayRef)>| {
            let mut cols = vec![
                col("u", Arc::new(StringArray::from(vec!["a", "b", "a"]))),
                col("i", Arc::new(Int64Array::from(vec![1, 2, 3]))),
            ];
            cols.extend(extra);
            RecordBatch::try_from_iter(cols).unwrap()
        };
        write_parquet_batches(
            &p,
            &[
                batch(vec![
                    col(
                        "f",
                        Arc::new(Float64Array::from(vec![978300760.0, 978300760.9, 5.0])),
                    ),
                    col(
                        "s",
                        Arc::new(StringArray::from(vec![
                            "2000-12-31 22:12:40",
                            "978300760",
                            "2000-12-31T22:12:40.5Z",
                        ])),
                    ),
                    col(
                        "ms",
                        Arc::new(Int64Array::from(vec![978300760999, 0, 1999])),
                    ),
                    col("d", Arc::new(Date32Array::from(vec![11322, 0, 1]))),
                    col("big", Arc::new(UInt64Array::from(vec![u64::MAX, 1, 2]))),
                ]),
                batch(vec![
                    col("f", Arc::new(Float64Array::from(vec![1.0, 2.0, f64::NAN]))),
                    col(
                        "s",
                        Arc::new(StringArray::from(vec!["1", "2", "2001-02-29"])),
                    ),
                    col("ms", Arc::new(Int64Array::from(vec![1, 2, 3]))),
                    col("d", Arc::new(Date32Array::from(vec![1, 2, -1]))),
                    col("big", Arc::new(UInt64Array::from(vec![1, 2, 3]))),
                ]),
            ],
        );
        // Only the first batch is valid: read just it by checking the errors of the second.
        let read = |m: &ColumnMapping| import_with(ImportFormat::Parquet, &p, Some(m));
        let mut m = ColumnMapping::new("u", "i", "f");
        let e = read(&m).unwrap_err().to_string();
        assert!(
            e.contains("'f'") && e.contains("row 5 (0-based)") && e.contains("not a finite"),
            "{e}"
        );
        m.timestamp = Some("s".into());
        let e = read(&m).unwrap_err().to_string();
        assert!(
            e.contains("'s'") && e.contains("row 5") && e.contains("February 2001 has 28 days"),
            "{e}"
        );
        m.timestamp = Some("d".into());
        let e = read(&m).unwrap_err().to_string();
        assert!(e.contains("row 5") && e.contains("negative"), "{e}");
        m.timestamp = Some("big".into());
        let e = read(&m).unwrap_err().to_string();
        assert!(e.contains("row 0") && e.contains("after 2100"), "{e}");
        // Integers in ms: fine with the unit, an error suggesting it without.
        m.timestamp = Some("ms".into());
        let e = read(&m).unwrap_err().to_string();
        assert!(
            e.contains("row 0") && e.contains("timestamp_unit = \"ms\""),
            "{e}"
        );
        m.timestamp_unit = TimestampUnit::Milliseconds;
        assert_eq!(
            read(&m).unwrap().interactions.ts,
            vec![978_300_760, 0, 1, 0, 0, 0]
        );
        // iso8601 refuses a numeric column up front.
        m.timestamp_unit = TimestampUnit::Seconds;
        m.timestamp_format = TimestampFormat::Iso8601;
        let e = read(&m).unwrap_err().to_string();
        assert!(e.contains("'ms'") && e.contains("Int64"), "{e}");
        // The valid first batch alone.
        write_parquet_batches(
            &p,
            &[batch(vec![
                col(
                    "f",
                    Arc::new(Float64Array::from(vec![978300760.0, 978300760.9, 5.0])),
                ),
                col(
                    "s",
                    Arc::new(StringArray::from(vec![
                        "2000-12-31 22:12:40",
                        "978300760",
                        "2000-12-31T22:12:40.5Z",
                    ])),
                ),
                col("d", Arc::new(Date32Array::from(vec![11322, 0, 1]))),
            ])],
        );
        let m = ColumnMapping::new("u", "i", "f");
        assert_eq!(
            read(&m).unwrap().interactions.ts,
            vec![978_300_760, 978_300_760, 5]
        );
        let m = ColumnMapping::new("u", "i", "s");
        let t = 978_300_760;
        assert_eq!(read(&m).unwrap().interactions.ts, vec![t, t, t]);
        let m = ColumnMapping::new("u", "i", "d");
        assert_eq!(
            read(&m).unwrap().interactions.ts,
            vec![978_220_800, 0, 86_400]
        );
        // No timestamp column: row numbers.
        let im = read(&ColumnMapping::in_file_order("u", "i")).unwrap();
        assert_eq!(im.interactions.ts, vec![0, 1, 2]);
        assert_eq!(im.item_vocab, vec!["", "1", "2", "3"]);
    }
}
