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
//!   finite number, or a timestamp that is not an integer is an error naming the file and the
//!   1-based line number (lines are counted as in the file, blank lines included);
//! - ratings are not range-checked (any finite value is kept as is), timestamps are kept as given;
//! - a file without any row is an error ("no rows"); a line longer than [`MAX_LINE_BYTES`] is an
//!   error, so memory per line is bounded.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{DataError, Result};
use crate::table::{write_atomically, Interactions};

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
    /// columns are ignored. Double-quoted fields are accepted.
    AmazonCsv,
    /// Amazon review JSON lines (2014/2018): one object per line with `reviewerID`, `asin`,
    /// `overall` and `unixReviewTime`; other fields are ignored.
    AmazonJson,
}

impl ImportFormat {
    /// Every format, in the order of [`ImportFormat::names`].
    pub const ALL: [ImportFormat; 6] = [
        ImportFormat::MovielensDat,
        ImportFormat::MovielensTsv,
        ImportFormat::MovielensCsv,
        ImportFormat::Movietweetings,
        ImportFormat::AmazonCsv,
        ImportFormat::AmazonJson,
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
        }
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
    /// One row per input row, in file order; `rating` is always `Some`, `label` is `None`.
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
        write_json_atomically(&paths.0, &self.user_vocab)?;
        write_json_atomically(&paths.1, &self.item_vocab)?;
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

fn write_json_atomically(path: &Path, vocab: &[String]) -> Result<()> {
    write_atomically(path, |file| {
        let mut w = BufWriter::new(file);
        serde_json::to_writer(&mut w, vocab).map_err(|e| DataError::Schema {
            path: path.to_path_buf(),
            message: format!("cannot write JSON: {e}"),
        })?;
        w.write_all(b"\n").map_err(|e| DataError::io(path, e))?;
        let file = w
            .into_inner()
            .map_err(|e| DataError::io(path, e.into_error()))?;
        file.sync_all().map_err(|e| DataError::io(path, e))
    })
}

/// Imports a raw rating log; see the module docs for the rules shared by all formats.
pub fn import(format: ImportFormat, input: &Path) -> Result<Imported> {
    let mut lines = LineReader::open(input, MAX_LINE_BYTES)?;
    let mut users = Vocab::new();
    let mut items = Vocab::new();
    let mut out = Interactions {
        rating: Some(Vec::new()),
        ..Default::default()
    };
    let mut ratings = Vec::new();
    let mut header_pending = format == ImportFormat::MovielensCsv;
    while let Some((line_no, text)) = lines.next_text()? {
        if text.trim().is_empty() {
            continue;
        }
        let at = |message: String| line_err(input, line_no, message);
        if header_pending {
            header_pending = false;
            check_movielens_csv_header(text).map_err(at)?;
            continue;
        }
        let row = parse_row(format, text).map_err(|m| {
            if format == ImportFormat::AmazonCsv && line_no == 1 {
                at(format!("{m} (amazon-csv files have no header line)"))
            } else {
                at(m)
            }
        })?;
        let u = users.id(&row.user).map_err(|m| at(format!("user: {m}")))?;
        let i = items.id(&row.item).map_err(|m| at(format!("item: {m}")))?;
        out.user.push(u);
        out.item.push(i);
        out.ts.push(row.ts);
        ratings.push(row.rating);
    }
    if out.is_empty() {
        return Err(DataError::Schema {
            path: input.to_path_buf(),
            message: format!("no rows (nothing to import as {format})"),
        });
    }
    out.rating = Some(ratings);
    Ok(Imported {
        interactions: out,
        user_vocab: users.names,
        item_vocab: items.names,
    })
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

fn line_err(path: &Path, line_no: usize, message: String) -> DataError {
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
        ImportFormat::MovielensCsv => {
            let f = split_csv(text)?;
            fields4(&f, "commas", true)
        }
        ImportFormat::AmazonCsv => {
            let f = split_csv(text)?;
            fields4(&f, "commas", false)
        }
        ImportFormat::AmazonJson => parse_amazon_json(text),
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

/// Splits one CSV line; a field may be double-quoted (returned without its quotes). Escaped
/// quotes (`""`) and quoted fields spanning lines are rejected (no raw rating log has them).
fn split_csv(text: &str) -> std::result::Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        // Skip leading spaces of a field.
        let mut start = i;
        while start < bytes.len() && bytes[start] == b' ' {
            start += 1;
        }
        if start < bytes.len() && bytes[start] == b'"' {
            let open = start + 1;
            let Some(rel) = text[open..].find('"') else {
                return Err("unterminated double quote".into());
            };
            let close = open + rel;
            if bytes.get(close + 1) == Some(&b'"') {
                return Err("escaped quotes (\"\") inside a field are not supported".into());
            }
            out.push(&text[open..close]);
            let mut j = close + 1;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            match bytes.get(j) {
                None => return Ok(out),
                Some(b',') => i = j + 1,
                Some(_) => return Err("text after a closing double quote".into()),
            }
        } else {
            match text[i..].find(',') {
                Some(rel) => {
                    out.push(&text[i..i + rel]);
                    i += rel + 1;
                }
                None => {
                    out.push(&text[i..]);
                    return Ok(out);
                }
            }
        }
    }
}

fn check_movielens_csv_header(text: &str) -> std::result::Result<(), String> {
    let want = ["userid", "movieid", "rating", "timestamp"];
    let got = split_csv(text)?;
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
            text.trim()
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

/// Reads lines of at most `max` bytes from a plain or gzip file (gzip detected by magic bytes).
struct LineReader {
    inner: Box<dyn BufRead>,
    path: PathBuf,
    max: usize,
    line_no: usize,
    buf: Vec<u8>,
}

impl LineReader {
    fn open(path: &Path, max: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut raw = BufReader::with_capacity(1 << 16, file);
        let head = raw.fill_buf().map_err(|e| DataError::io(path, e))?;
        let inner: Box<dyn BufRead> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::bufread::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        Ok(Self::from_reader(inner, path, max))
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
    fn next_line(&mut self) -> Result<Option<(usize, &[u8])>> {
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
    fn next_text(&mut self) -> Result<Option<(usize, &str)>> {
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
            for f in ImportFormat::ALL {
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
}
