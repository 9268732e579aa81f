//! Fuzzing of every reader of the data crate: small valid files (written by the project's own
//! writers, or as text, plus the first 200 lines of the real datasets when
//! `LONGTAIL_DATA_DIR` / `../shared/data` exists) are mutated (bit flips, byte replacement,
//! truncation, insertion and deletion of ranges, duplication and splicing, special strings such as
//! `NaN`, `-1`, `18446744073709551616`, `\0`, `\r\n`, invalid UTF-8, very long lines) and fed to
//! the reader. The property: the reader returns `Ok`, or an error whose message is not empty and
//! names the file; it never panics, never runs longer than [`HANG_SECS`] on one input and never
//! holds more than [`MAX_PEAK_BYTES`] at once (measured by the counting allocator below).
//!
//! The runs are deterministic (a fixed RNG seed per target; no failure files are written). The
//! number of cases per target is [`DEFAULT_CASES`], or `LONGTAIL_FUZZ_CASES`; `scripts/fuzz` runs
//! the same tests with a large budget. A failure prints the shrunk input (seed name, mutations and
//! the bytes): add it as a regression test beside the reader's fix.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use longtail_data::feature_map::{FeatureKind, FeatureSpec};
use longtail_data::items::{amazon_item_features, movielens_100k_item_features};
use longtail_data::items::{movielens_item_features, table_item_features, ItemFeatures, ItemTable};
use longtail_data::prepare::{prepare, read_manifest, PrepareConfig};
use longtail_data::{
    import, import_with, read_vocab, Column, ColumnMapping, DataError, DataSource, FeatureMap,
    Frame, ImportFormat, Interactions, ScoresTable,
};

/// Cases per target when `LONGTAIL_FUZZ_CASES` is not set (keeps the module at a few seconds).
pub const DEFAULT_CASES: u32 = 256;
/// One input may take at most this long.
pub const HANG_SECS: u64 = 30;
/// The most a reader may hold at once on one (at most ~1 MiB) input.
pub const MAX_PEAK_BYTES: isize = 256 << 20;
/// Mutated inputs are cut to this size.
const MAX_INPUT: usize = 1 << 20;
/// Lines of a real file used as a seed.
const REAL_LINES: usize = 200;

// ---------------------------------------------------------------------------------------------
// A counting allocator: per thread, while enabled, the bytes held and their peak.

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let on = TRACKING.try_with(Cell::get).unwrap_or(false);
    if !on {
        return;
    }
    let _ = LIVE.try_with(|l| {
        let v = l.get().saturating_add(delta);
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` with allocation counting on; returns its result and the peak bytes held.
fn with_peak<T>(f: impl FnOnce() -> T) -> (T, isize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, PEAK.with(Cell::get))
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// Special strings inserted into, or put in place of a token of, an input.
const SPECIALS: &[&[u8]] = &[
    b"",
    b"\"\"",
    b"\"",
    b"NaN",
    b"nan",
    b"inf",
    b"-inf",
    b"-1",
    b"0",
    b"-0",
    b"1.5",
    b"1e39",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"99999999999999999999999999999999",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"\xff\xfe",
    b"\xc3",
    b"\xe2\x82",
    "é".as_bytes(),
    "🦀".as_bytes(),
    "\u{feff}".as_bytes(),
    b",",
    b"::",
    b"\t",
    b"|",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"true",
    b"'",
    b"\\",
    b"=",
    // Binary: Thrift compact varints (zigzag i32::MAX, u64::MAX, a negative), little-endian
    // i32::MIN / i32::MAX (Parquet lengths and offsets).
    b"\xfe\xff\xff\xff\x0f",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x01",
    b"\x00\x00\x00\x80",
    b"\xff\xff\xff\x7f",
];

/// A position in the input: an offset from the start or from the end (taken modulo the length).
#[derive(Debug, Clone, Copy)]
struct Pos {
    x: u32,
    from_end: bool,
}

impl Pos {
    fn at(self, len: usize) -> usize {
        let k = self.x as usize % (len + 1);
        if self.from_end {
            len - k
        } else {
            k
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: Pos,
        bit: u8,
    },
    SetByte {
        at: Pos,
        byte: u8,
    },
    Truncate {
        at: Pos,
    },
    Insert {
        at: Pos,
        bytes: Vec<u8>,
    },
    Delete {
        at: Pos,
        len: usize,
    },
    Duplicate {
        from: Pos,
        len: usize,
        to: Pos,
    },
    /// Puts a range of another seed in place of `replace` bytes at `to`.
    Splice {
        seed: usize,
        from: Pos,
        len: usize,
        to: Pos,
        replace: usize,
    },
    /// Inserts a special string, or puts it in place of the token (a run of letters, digits, `.`,
    /// `-`, `+`) at or after `at`.
    Special {
        at: Pos,
        which: usize,
        replace_token: bool,
    },
    LongLine {
        at: Pos,
        len: usize,
        byte: u8,
    },
    /// Writes a special string over the bytes at `at` (the length stays, where it fits).
    Overwrite {
        at: Pos,
        which: usize,
    },
}

fn pos() -> impl Strategy<Value = Pos> {
    (any::<u32>(), any::<bool>()).prop_map(|(x, from_end)| Pos { x, from_end })
}

fn mutation(seeds: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (pos(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        2 => (pos(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        1 => pos().prop_map(|at| Mutation::Truncate { at }),
        2 => (pos(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (pos(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (pos(), 1usize..256, pos()).prop_map(|(from, len, to)| Mutation::Duplicate {
            from,
            len,
            to
        }),
        1 => (0..seeds, pos(), 1usize..256, pos(), 0usize..64).prop_map(
            |(seed, from, len, to, replace)| Mutation::Splice {
                seed,
                from,
                len,
                to,
                replace
            }
        ),
        4 => (pos(), 0..SPECIALS.len(), any::<bool>()).prop_map(|(at, which, replace_token)| {
            Mutation::Special {
                at,
                which,
                replace_token,
            }
        }),
        1 => (pos(), 1usize..70_000, any::<u8>())
            .prop_map(|(at, len, byte)| Mutation::LongLine { at, len, byte }),
        2 => (pos(), 0..SPECIALS.len()).prop_map(|(at, which)| Mutation::Overwrite { at, which }),
    ]
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+')
}

fn apply(data: &mut Vec<u8>, m: &Mutation, seeds: &[(String, Vec<u8>)]) {
    let len = data.len();
    match m {
        Mutation::FlipBit { at, bit } => {
            if len > 0 {
                let i = at.at(len - 1);
                data[i] ^= 1 << bit;
            }
        }
        Mutation::SetByte { at, byte } => {
            if len > 0 {
                let i = at.at(len - 1);
                data[i] = *byte;
            }
        }
        Mutation::Truncate { at } => data.truncate(at.at(len)),
        Mutation::Insert { at, bytes } => {
            let i = at.at(len);
            data.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete { at, len: n } => {
            let i = at.at(len);
            data.drain(i..(i + n).min(len));
        }
        Mutation::Duplicate { from, len: n, to } => {
            let i = from.at(len);
            let piece = data[i..(i + n).min(len)].to_vec();
            let j = to.at(len);
            data.splice(j..j, piece);
        }
        Mutation::Splice {
            seed,
            from,
            len: n,
            to,
            replace,
        } => {
            let other = &seeds[*seed % seeds.len()].1;
            let i = from.at(other.len());
            let piece = &other[i..(i + n).min(other.len())];
            let j = to.at(len);
            data.splice(j..(j + replace).min(len), piece.iter().copied());
        }
        Mutation::Special {
            at,
            which,
            replace_token,
        } => {
            let s = SPECIALS[*which % SPECIALS.len()];
            let i = at.at(len);
            if *replace_token {
                if let Some(a) = (i..len).find(|&k| is_token(data[k])) {
                    let b = (a..len).find(|&k| !is_token(data[k])).unwrap_or(len);
                    data.splice(a..b, s.iter().copied());
                    return;
                }
            }
            data.splice(i..i, s.iter().copied());
        }
        Mutation::LongLine { at, len: n, byte } => {
            let i = at.at(len);
            data.splice(i..i, std::iter::repeat_n(*byte, *n));
        }
        Mutation::Overwrite { at, which } => {
            let s = SPECIALS[*which % SPECIALS.len()];
            let i = at.at(len);
            let n = s.len().min(len - i);
            data[i..i + n].copy_from_slice(&s[..n]);
        }
    }
    data.truncate(MAX_INPUT);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Shows an input for a failure message (escaped, the first 3000 bytes).
fn show(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(3000)];
    let more = if bytes.len() > head.len() {
        format!(" ... ({} bytes in all)", bytes.len())
    } else {
        String::new()
    };
    format!("b\"{}\"{more}", head.escape_ascii())
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// What a reader said: `Ok(())` or the error message.
type Outcome = std::result::Result<(), String>;
type Reader = Arc<dyn Fn(&Path) -> Outcome + Send + Sync>;

/// How a target's inputs reach the reader.
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    /// The mutated bytes as they are.
    Plain,
    /// Gzip: each case either mutates the plain text and compresses it, or compresses it and
    /// mutates the compressed bytes.
    Gzip,
}

struct Target {
    name: &'static str,
    /// The file name of the input (the error must name it); for string parsers, the origin.
    file: &'static str,
    /// Whether an error must name `file` (not for parsers of a command-line string).
    names_file: bool,
    encoding: Encoding,
    seeds: Vec<(String, Vec<u8>)>,
    read: Reader,
}

fn cases() -> u32 {
    std::env::var("LONGTAIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// A stable per-target RNG seed (FNV-1a of the name).
fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Silences the default panic message of the reader threads (the failure report has it), unless
/// `LONGTAIL_FUZZ_SHOW_PANICS` is set: then every panic is printed, also those a reader caught
/// and turned into an error (the parquet crate's, see `table::parquet_guard`).
fn quiet_reader_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("LONGTAIL_FUZZ_SHOW_PANICS").is_some() {
            return;
        }
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some("fuzz-reader") {
                default(info);
            }
        }));
    });
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `read` on the input at `path` in its own thread, with a time limit and the allocation
/// peak measured; checks the property.
fn check_one(t: &Target, read: &Reader, path: &Path, input: &[u8]) -> Result<(), TestCaseError> {
    let (tx, rx) = mpsc::channel();
    let (read, p) = (read.clone(), path.to_path_buf());
    std::thread::Builder::new()
        .name("fuzz-reader".into())
        .spawn(move || {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| with_peak(|| read(&p))));
            let _ = tx.send(r.map_err(|e| panic_message(e.as_ref())));
        })
        .map_err(|e| TestCaseError::fail(format!("cannot start a thread: {e}")))?;
    let fail = |what: String| {
        TestCaseError::fail(format!(
            "{}: {what}\n  input ({}): {}",
            t.name,
            input.len(),
            show(input)
        ))
    };
    match rx.recv_timeout(Duration::from_secs(HANG_SECS)) {
        Err(_) => Err(fail(format!("no answer within {HANG_SECS} s (a hang?)"))),
        Ok(Err(panic)) => Err(fail(format!("panicked: {panic}"))),
        Ok(Ok((outcome, peak))) => {
            if peak > MAX_PEAK_BYTES {
                return Err(fail(format!(
                    "held {peak} bytes at once (limit {MAX_PEAK_BYTES})"
                )));
            }
            match outcome {
                Ok(()) => Ok(()),
                Err(m) if m.trim().is_empty() => Err(fail("empty error message".into())),
                Err(m) if t.names_file && !m.contains(t.file) => {
                    Err(fail(format!("the error does not name {}: {m}", t.file)))
                }
                Err(_) => Ok(()),
            }
        }
    }
}

fn run_target(t: Target) {
    quiet_reader_panics();
    assert!(!t.seeds.is_empty(), "{}: no seeds", t.name);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(t.file);
    // Every seed itself must read without a panic (most read Ok).
    for (name, bytes) in &t.seeds {
        std::fs::write(&path, bytes).unwrap();
        if let Err(e) = check_one(&t, &t.read, &path, bytes) {
            panic!("{}: seed {name}: {e}", t.name);
        }
    }
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed_of(t.name)),
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let n = t.seeds.len();
    let strategy = (
        0..n,
        prop::collection::vec(mutation(n), 1..=4),
        any::<bool>(),
    );
    let result = runner.run(&strategy, |(seed, muts, compress_after)| {
        let mut data = t.seeds[seed].1.clone();
        let gz = t.encoding == Encoding::Gzip;
        if gz && !compress_after {
            data = gzip(&data);
        }
        for m in &muts {
            apply(&mut data, m, &t.seeds);
        }
        if gz && compress_after {
            data = gzip(&data);
        }
        std::fs::write(&path, &data).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_one(&t, &t.read, &path, &data)
            .map_err(|e| TestCaseError::fail(format!("seed {}: {e}", t.seeds[seed].0)))
    });
    if let Err(e) = result {
        panic!("{}: {e}", t.name);
    }
}

fn err_text(e: DataError) -> String {
    e.to_string()
}

fn reader(f: impl Fn(&Path) -> longtail_data::Result<()> + Send + Sync + 'static) -> Reader {
    Arc::new(move |p: &Path| f(p).map_err(err_text))
}

// ---------------------------------------------------------------------------------------------
// Seeds.

/// The real data folder, if present (silently `None` otherwise).
fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LONGTAIL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    dir.is_dir().then_some(dir)
}

/// The first [`REAL_LINES`] lines of a real file (decompressed when gzip), if present.
fn real(rel: &str) -> Option<(String, Vec<u8>)> {
    let path = data_dir()?.join(rel);
    let file = std::fs::File::open(&path).ok()?;
    let mut raw = std::io::BufReader::new(file);
    let gz = raw.fill_buf().ok()?.starts_with(&[0x1f, 0x8b]);
    let inner: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut out = Vec::new();
    let mut lines = std::io::BufReader::new(inner);
    for _ in 0..REAL_LINES {
        let mut line = Vec::new();
        if lines.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        out.extend_from_slice(&line);
    }
    Some((format!("real {rel}"), out))
}

fn text(name: &str, body: &str) -> (String, Vec<u8>) {
    (name.to_string(), body.as_bytes().to_vec())
}

/// Seeds: the given ones plus the real files that exist.
fn with_real(mut seeds: Vec<(String, Vec<u8>)>, real_files: &[&str]) -> Vec<(String, Vec<u8>)> {
    seeds.extend(real_files.iter().filter_map(|r| real(r)));
    seeds
}

/// Writes through `write` into a temporary file and returns its bytes.
fn written(name: &str, write: impl FnOnce(&Path)) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("seed");
    write(&p);
    (name.to_string(), std::fs::read(&p).unwrap())
}

const DAT: &str = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978301968\n\
                   3::0104257::0::1365029107\n3::661::10::1366576639\n";
const TSV: &str = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n";
const ML_CSV: &str = "\u{feff}userId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n\
                      1,1029,0.5,1260759179\r\n\"2\",\"31\",4.0,1260759185\r\n";
const AMAZON_CSV: &str = "A2IBPI20UZIR0U,1384719342,5.0,1393545600,0,0\n\
                          \"A14VAT5EAX3D9S\",\"1384719342\",3.0,1363392000,13,14\n\
                          A195EZSQDW3E21,B00004Y2UT,4.0,1377648000\n";
const AMAZON_JSON: &str = r#"{"reviewerID": "A2SUAM1J3GNN3B", "asin": "0000013714", "reviewerName": "J. McDonald", "helpful": [2, 3], "reviewText": "x, y", "overall": 5.0, "summary": "s", "unixReviewTime": 1252800000, "reviewTime": "09 13, 2009"}
{"reviewerID": "B", "asin": "0000013714", "overall": "4", "unixReviewTime": "1252800001"}
{"reviewerID": 17, "asin": "B00004Y2UT", "overall": 1, "unixReviewTime": 1252800002}
"#;
/// As `pandas.DataFrame.to_csv` writes it (index column, quoting, an embedded line break).
const PANDAS_CSV: &str = ",user,item,title,ts,rating,click\n\
    0,u1,\"i,1\",\"The \"\"Best\"\" Of\",100,4.5,1\n\
    1,u2,i2,\"two\nlines\",200,3.0,0\n\
    2,\"u \"\"3\"\"\",\"i,1\",plain,300,1.0,1\n";
/// Timestamps in every form the generic formats read: pandas floats, ISO-8601 dates and
/// date-times with and without fractions and offsets, integers.
const TS_CSV: &str = ",user,item,ts,rating\n\
    0,u1,i1,978300760.0,5.0\n\
    1,u2,i1,2000-12-31 22:12:40.5+02:00,3.0\n\
    2,u1,i2,2000-12-31,1.0\n\
    3,u3,i3,2000-12-31T22:12:40Z,2.0\n\
    4,u3,i1,978300760,4.0\n\
    5,u2,i2,9.783e8,4.0\n";
/// A generic item table as pandas writes it (index column, a `|` list column, quoting).
const ITEM_TABLE_CSV: &str = ",item_id,genres,brand,title\n\
    0,1,Action|Comedy,Acme,\"A, \"\"b\"\"\"\n\
    1,2,,,plain\n\
    2,0002844,Drama||War,Other,\"two\nlines\"\n";
const MOVIES_DAT: &str = "1::Toy Story (1995)::Animation|Children's|Comedy\n\
                          2::Jumanji (1995)::Adventure|Children's|Fantasy\n\
                          3::A::B (2000)::\n4::X::(no genres listed)\n";
const U_ITEM: &str = "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n\
                      2|GoldenEye (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?GoldenEye%20(1995)|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n";
const AMAZON_META: &str = r#"{"asin": "0000031852", "title": "Girls Ballet Tutu", "price": 3.17, "categories": [["Clothing", "Girls", "Skirts"], ["Sports"]], "brand": "Coxlist"}
{"asin": "1384719342", "price": "$1,299.00", "category": ["Musical Instruments", "Guitars"], "brand": ""}
{"asin": "B00004Y2UT", "price": "$10.99 - $20.00", "categories": []}
{"asin": "B00005ML71"}
"#;

/// An item vocabulary covering the ids of the item seeds.
fn item_vocab() -> Vec<String> {
    let mut v = vec![String::new()];
    v.extend((1..=60).map(|i| i.to_string()));
    v.extend(
        [
            "0000031852",
            "1384719342",
            "B00004Y2UT",
            "B00005ML71",
            "0002844",
            "0004936",
        ]
        .map(str::to_string),
    );
    v
}

fn small_table() -> Interactions {
    Interactions {
        user: vec![1, 2, 1, 3, 2],
        item: vec![1, 1, 2, 3, 4],
        ts: vec![10, 20, 30, 40, 978300760],
        rating: Some(vec![5.0, 3.5, 1.0, 4.0, 2.0]),
        label: Some(vec![1.0, 0.0, 1.0, 1.0, 0.0]),
    }
}

fn small_items() -> ItemFeatures {
    let mut f = ItemFeatures::new(5);
    f.push_categorical(
        "brand",
        &[None, Some("Fender".into()), None, Some("Gibson".into())],
    )
    .unwrap();
    f.push_list(
        "genres",
        &[
            vec![],
            vec!["Drama".into(), "Comedy".into()],
            vec![],
            vec!["Drama".into()],
            vec!["War".into(), "Comedy".into(), "Drama".into()],
        ],
    )
    .unwrap();
    f
}

/// A generic Parquet log (string and integer ids, Timestamp and integer times, floats).
fn raw_parquet(path: &Path, compressed: bool) {
    use arrow::array::{
        ArrayRef, Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray,
    };
    use arrow::record_batch::RecordBatch;
    let b = RecordBatch::try_from_iter([
        (
            "uid",
            Arc::new(StringArray::from(vec!["a", "b", "a", "c"])) as ArrayRef,
        ),
        (
            "iid",
            Arc::new(Int64Array::from(vec![7, 8, 9, 7])) as ArrayRef,
        ),
        (
            "when",
            Arc::new(Int32Array::from(vec![10, 20, 30, 40])) as ArrayRef,
        ),
        (
            "ms",
            Arc::new(TimestampMillisecondArray::from(vec![
                978_300_760_999,
                978_302_109_000,
                1,
                2,
            ])) as ArrayRef,
        ),
        (
            "stars",
            Arc::new(Float64Array::from(vec![5.0, 2.5, 1.0, 3.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let props = compressed.then(|| {
        parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build()
    });
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), props).unwrap();
    w.write(&b.slice(0, 2)).unwrap();
    w.flush().unwrap();
    w.write(&b.slice(2, 2)).unwrap();
    w.close().unwrap();
}

/// Files of a small prepared folder (`prepare.json`, frames, feature map), written once.
struct Prepared {
    manifest: Vec<u8>,
    feature_map: Vec<u8>,
    interactions: Vec<u8>,
    frames: Vec<(String, Vec<u8>)>,
}

const PREPARE_CFG: &str = r#"
dataset = "fuzz"
seed = 3

[data]
kind = "synth"
synth = { users = 40, items = 24, clusters = 3, max_len = 12 }

[samples]
neg_per_pos = 1
split = { kind = "random", valid = 0.1, test = 0.2 }

[sessions]
windows = ["10d", "all"]
top_n = 3

[sequences]
max_len = 5
eval_negatives = 5
"#;

fn prepared() -> &'static Prepared {
    static P: OnceLock<Prepared> = OnceLock::new();
    P.get_or_init(|| {
        let cfg = PrepareConfig::from_toml(PREPARE_CFG, "fuzz.toml").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("p");
        prepare(&cfg, &out, &|_| {}).unwrap();
        let mut frames = Vec::new();
        for sub in ["samples", "sessions", "sequences"] {
            let Ok(rd) = std::fs::read_dir(out.join(sub)) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
            paths.sort();
            for p in paths.into_iter().take(2) {
                let name = format!("{sub}/{}", p.file_name().unwrap().to_string_lossy());
                frames.push((name, std::fs::read(&p).unwrap()));
            }
        }
        Prepared {
            manifest: std::fs::read(out.join("prepare.json")).unwrap(),
            feature_map: std::fs::read(out.join("feature_map.json")).unwrap(),
            interactions: std::fs::read(out.join("interactions.parquet")).unwrap(),
            frames,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The targets.

fn import_target(
    name: &'static str,
    format: ImportFormat,
    file: &'static str,
    encoding: Encoding,
    seeds: Vec<(String, Vec<u8>)>,
) {
    run_target(Target {
        name,
        file,
        names_file: true,
        encoding,
        seeds,
        read: reader(move |p| import(format, p).map(drop)),
    });
}

#[test]
fn fuzz_import_movielens_dat() {
    let seeds = with_real(
        vec![text("dat", DAT)],
        &["ml-1m/ratings_users1-2999.dat.gz"],
    );
    import_target(
        "movielens-dat",
        ImportFormat::MovielensDat,
        "ratings.dat",
        Encoding::Plain,
        seeds.clone(),
    );
    import_target(
        "movielens-dat-gz",
        ImportFormat::MovielensDat,
        "ratings.dat.gz",
        Encoding::Gzip,
        seeds,
    );
}

#[test]
fn fuzz_import_movielens_tsv() {
    let seeds = with_real(vec![text("tsv", TSV)], &["ml-100k/u.data"]);
    import_target(
        "movielens-tsv",
        ImportFormat::MovielensTsv,
        "u.data",
        Encoding::Plain,
        seeds,
    );
}

#[test]
fn fuzz_import_movielens_csv() {
    import_target(
        "movielens-csv",
        ImportFormat::MovielensCsv,
        "ratings.csv",
        Encoding::Plain,
        vec![text("csv", ML_CSV)],
    );
}

#[test]
fn fuzz_import_movietweetings() {
    let seeds = with_real(vec![text("dat", DAT)], &["movietweetings-100k/ratings.dat"]);
    import_target(
        "movietweetings",
        ImportFormat::Movietweetings,
        "ratings.dat",
        Encoding::Plain,
        seeds,
    );
}

#[test]
fn fuzz_import_amazon_csv() {
    let seeds = with_real(
        vec![text("csv", AMAZON_CSV)],
        &["amazon-musical-instruments-5core-2014/Musical_Instruments_5.csv"],
    );
    import_target(
        "amazon-csv",
        ImportFormat::AmazonCsv,
        "ratings.csv",
        Encoding::Plain,
        seeds.clone(),
    );
    import_target(
        "amazon-csv-gz",
        ImportFormat::AmazonCsv,
        "ratings.csv.gz",
        Encoding::Gzip,
        seeds,
    );
}

#[test]
fn fuzz_import_amazon_json() {
    let seeds = vec![text("json", AMAZON_JSON)];
    import_target(
        "amazon-json",
        ImportFormat::AmazonJson,
        "reviews.json",
        Encoding::Plain,
        seeds.clone(),
    );
    import_target(
        "amazon-json-gz",
        ImportFormat::AmazonJson,
        "reviews.json.gz",
        Encoding::Gzip,
        seeds,
    );
}

#[test]
fn fuzz_import_csv_with_mapping() {
    let pandas: ColumnMapping = serde_json::from_str(
        r#"{"user":"user","item":"item","timestamp":"ts","rating":"rating","label":"click"}"#,
    )
    .unwrap();
    let bom_crlf = format!("\u{feff}{}", PANDAS_CSV.replace("\n", "\r\n"));
    run_target(Target {
        name: "csv-header",
        file: "log.csv",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![
            text("pandas", PANDAS_CSV),
            text("pandas-bom-crlf", &bom_crlf),
        ],
        read: reader(move |p| import_with(ImportFormat::Csv, p, Some(&pandas)).map(drop)),
    });
    let mut ts = ColumnMapping::new("user", "item", "ts");
    ts.rating = Some("rating".into());
    run_target(Target {
        name: "csv-timestamps",
        file: "log.csv",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![text("timestamps", TS_CSV), text("pandas", PANDAS_CSV)],
        read: reader(move |p| import_with(ImportFormat::Csv, p, Some(&ts)).map(drop)),
    });
    let ms: ColumnMapping = "user=user,item=item,ts=ts,timestamp_unit=ms,timestamp_format=unix"
        .parse()
        .unwrap();
    let file_order = ColumnMapping::in_file_order("user", "item");
    run_target(Target {
        name: "csv-ms-and-file-order",
        file: "log.csv.gz",
        names_file: true,
        encoding: Encoding::Gzip,
        seeds: vec![text("timestamps", TS_CSV), text("pandas", PANDAS_CSV)],
        read: reader(move |p| {
            let a = import_with(ImportFormat::Csv, p, Some(&ms)).map(drop);
            let b = import_with(ImportFormat::Csv, p, Some(&file_order)).map(drop);
            a.and(b)
        }),
    });
    let tabs: ColumnMapping = "user=1,item=2,rating=3,timestamp=4,delimiter=tab,header=false"
        .parse()
        .unwrap();
    run_target(Target {
        name: "csv-tab-no-header",
        file: "u.data.gz",
        encoding: Encoding::Gzip,
        names_file: true,
        seeds: with_real(vec![text("tsv", TSV)], &["ml-100k/u.data"]),
        read: reader(move |p| import_with(ImportFormat::Csv, p, Some(&tabs)).map(drop)),
    });
}

#[test]
fn fuzz_import_parquet_with_mapping() {
    let mut m = ColumnMapping::new("uid", "iid", "ms");
    m.rating = Some("stars".into());
    m.label = Some("when".into());
    let m2 = ColumnMapping::new("iid", "uid", "when");
    let mut m3 = ColumnMapping::new("uid", "iid", "stars");
    m3.timestamp_unit = longtail_data::TimestampUnit::Milliseconds;
    run_target(Target {
        name: "parquet-mapping",
        file: "log.parquet",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![
            written("plain", |p| raw_parquet(p, false)),
            written("snappy", |p| raw_parquet(p, true)),
        ],
        read: reader(move |p| {
            let a = import_with(ImportFormat::Parquet, p, Some(&m)).map(drop);
            let b = import_with(ImportFormat::Parquet, p, Some(&m2)).map(drop);
            let c = import_with(ImportFormat::Parquet, p, Some(&m3)).map(drop);
            a.and(b).and(c)
        }),
    });
}

#[test]
fn fuzz_item_feature_readers() {
    let vocab = Arc::new(item_vocab());
    let v = vocab.clone();
    run_target(Target {
        name: "movielens-movies",
        file: "movies.dat",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: with_real(
            vec![text("movies", MOVIES_DAT)],
            &["ml-1m/movies.dat", "movietweetings-100k/movies.dat"],
        ),
        read: reader(move |p| movielens_item_features(p, &v).map(drop)),
    });
    let v = vocab.clone();
    run_target(Target {
        name: "movielens-100k-items",
        file: "u.item",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: with_real(vec![text("u.item", U_ITEM)], &["ml-100k/u.item"]),
        read: reader(move |p| movielens_100k_item_features(p, &v).map(drop)),
    });
    let v = vocab.clone();
    run_target(Target {
        name: "amazon-meta",
        file: "meta.json.gz",
        names_file: true,
        encoding: Encoding::Gzip,
        seeds: vec![text("meta", AMAZON_META)],
        read: reader(move |p| amazon_item_features(p, &v, 4).map(drop)),
    });
}

/// A generic Parquet item table: integer ids, a `|` text list, an integer category, a list column.
fn raw_item_table(path: &Path) {
    use arrow::array::{ArrayRef, Int32Array, Int64Array, ListArray, StringArray};
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::{DataType, Field};
    use arrow::record_batch::RecordBatch;
    let inner = Arc::new(Field::new("element", DataType::Utf8, true));
    let tags = ListArray::try_new(
        inner,
        OffsetBuffer::new(vec![0, 2, 2, 3].into()),
        Arc::new(StringArray::from(vec![Some("x"), None, Some("y")])),
        Some(vec![true, false, true].into()),
    )
    .unwrap();
    let b = RecordBatch::try_from_iter([
        (
            "movieId",
            Arc::new(Int64Array::from(vec![1, 2, 2844])) as ArrayRef,
        ),
        (
            "genres",
            Arc::new(StringArray::from(vec![
                Some("Action|Comedy"),
                None,
                Some("Drama"),
            ])) as ArrayRef,
        ),
        (
            "year",
            Arc::new(Int32Array::from(vec![1995, 1995, 2001])) as ArrayRef,
        ),
        ("tags", Arc::new(tags) as ArrayRef),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
    w.write(&b.slice(0, 2)).unwrap();
    w.flush().unwrap();
    w.write(&b.slice(2, 1)).unwrap();
    w.close().unwrap();
}

#[test]
fn fuzz_item_table_reader() {
    let vocab = Arc::new(item_vocab());
    let v = vocab.clone();
    run_target(Target {
        name: "item-table-csv",
        file: "items.csv",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![text("pandas", ITEM_TABLE_CSV)],
        read: reader(move |p| {
            let mut t = ItemTable::new(p, "item_id");
            t.lists.insert("genres".into(), "|".into());
            let a = table_item_features(&t, &v).map(drop);
            t.columns = Some(vec!["brand".into()]);
            a.and(table_item_features(&t, &v).map(drop))
        }),
    });
    let v = vocab.clone();
    run_target(Target {
        name: "item-table-parquet",
        file: "items.parquet",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![written("written", raw_item_table)],
        read: reader(move |p| {
            let mut t = ItemTable::new(p, "movieId");
            t.lists.insert("genres".into(), "|".into());
            table_item_features(&t, &v).map(drop)
        }),
    });
}

#[test]
fn fuzz_parquet_tables() {
    run_target(Target {
        name: "interactions-parquet",
        file: "table.parquet",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![
            written("written", |p| small_table().write_parquet(p).unwrap()),
            ("prepared".into(), prepared().interactions.clone()),
            written("foreign", |p| raw_parquet(p, false)),
        ],
        read: reader(|p| Interactions::read_parquet(p).map(drop)),
    });
    run_target(Target {
        name: "items-parquet",
        file: "x.items.parquet",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![written("written", |p| {
            small_items().write_parquet(p).unwrap()
        })],
        read: reader(|p| ItemFeatures::read_parquet(p).map(drop)),
    });
    let scores = ScoresTable {
        user: vec![1, 2, 3],
        item: vec![4, 5, 6],
        label: vec![1.0, 0.0, 1.0],
        score: vec![0.9, 0.1, 0.5],
        user_group: Some(vec![0, 1, 2]),
        item_group: Some(vec![1, 0, 1]),
        list: Some(vec![7, 7, 8]),
    };
    run_target(Target {
        name: "scores-parquet",
        file: "scores.parquet",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![written("written", |p| scores.write_parquet(p).unwrap())],
        read: reader(|p| ScoresTable::read_parquet(p).map(drop)),
    });
    let frame = Frame::new()
        .with("u8", Column::U8(vec![0, 1, 2]))
        .with("u32", Column::U32(vec![1, 2, 3]))
        .with("i64", Column::I64(vec![-1, 0, i64::MAX]))
        .with("f32", Column::F32(vec![0.5, f32::NAN, 1.0]))
        .with(
            "u32list",
            Column::U32List {
                width: 2,
                values: vec![1, 2, 3, 4, 5, 6],
            },
        )
        .with(
            "f32list",
            Column::F32List {
                width: 1,
                values: vec![1.0, 2.0, 3.0],
            },
        );
    let mut seeds = vec![written("written", |p| frame.write_parquet(p).unwrap())];
    seeds.extend(prepared().frames.iter().cloned());
    run_target(Target {
        name: "frame-parquet",
        file: "frame.parquet",
        names_file: true,
        encoding: Encoding::Plain,
        seeds,
        read: reader(|p| Frame::read_parquet(p, &["u32"]).map(drop)),
    });
}

#[test]
fn fuzz_json_readers() {
    run_target(Target {
        name: "vocab",
        file: "user_vocab.json",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![
            text("vocab", "[\"\",\"u1\",\"0042\",\"é\"]\n"),
            text("ids", "[\"\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]"),
        ],
        read: reader(|p| read_vocab(p).map(drop)),
    });
    let mut fm = FeatureMap::standard("fuzz", 11, 21, 5);
    fm.features.push(FeatureSpec {
        name: "item_genres".into(),
        kind: FeatureKind::Sequence,
        vocab: 7,
        max_len: Some(3),
        table: "genres".into(),
        dims: None,
    });
    fm.hash = fm.compute_hash();
    run_target(Target {
        name: "feature-map",
        file: "feature_map.json",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![
            written("standard", |p| fm.write_json(p).unwrap()),
            ("prepared".into(), prepared().feature_map.clone()),
        ],
        read: reader(|p| FeatureMap::read_json(p).map(drop)),
    });
    run_target(Target {
        name: "prepare-manifest",
        file: "prepare.json",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![("prepared".into(), prepared().manifest.clone())],
        read: reader(|p| read_manifest(p.parent().unwrap()).map(drop)),
    });
}

fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![
        text("synth", PREPARE_CFG),
        text(
            "raw-csv",
            "dataset = \"x\"\n[data]\nkind = \"raw\"\nformat = \"csv\"\npath = \"log.csv\"\n\
             columns = { user = \"u\", item = \"i\", timestamp = \"t\", rating = \"r\", \
             delimiter = \";\", header = false }\n\
             items = { format = \"amazon-meta\", path = \"meta.json\", price_buckets = 5 }\n\
             [filters]\nduplicates = \"keep_last\"\nk_core = 2\n",
        ),
        text(
            "parquet",
            "[data]\nkind = \"parquet\"\npath = \"t.parquet\"\nitems = \"t.items.parquet\"\n\
             [samples]\nneg_per_pos = 3\n[train]\nepochs = 1\n[model]\nname = \"din\"\n",
        ),
        text(
            "prepared",
            "[data]\nkind = \"prepared\"\npath = \"prepared/x\"\n",
        ),
    ];
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs"));
    for sub in ["prepare", ""] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for p in paths.into_iter().take(6) {
            let name = format!("configs/{}", p.file_name().unwrap().to_string_lossy());
            seeds.push((name, std::fs::read(&p).unwrap()));
        }
    }
    seeds
}

#[test]
fn fuzz_config_parsers() {
    run_target(Target {
        name: "prepare-config-toml",
        file: "fuzz.toml",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: config_seeds(),
        read: Arc::new(|p: &Path| {
            let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&bytes);
            let cfg = PrepareConfig::from_toml(&text, "fuzz.toml").map_err(err_text)?;
            // `validate` checks values on their own (its errors name the key, not the file).
            match cfg.validate() {
                Err(e) if e.to_string().trim().is_empty() => Err(String::new()),
                _ => Ok(()),
            }
        }),
    });
    run_target(Target {
        name: "data-source-toml",
        file: "fuzz.toml",
        names_file: false,
        encoding: Encoding::Plain,
        seeds: vec![
            text(
                "raw",
                "kind = \"raw\"\nformat = \"csv\"\npath = \"log.csv\"\n\
                 columns = { user = \"u\", item = \"i\", timestamp = \"t\" }\n\
                 items = { format = \"movielens-100k\", path = \"u.item\" }\n",
            ),
            text(
                "raw-table",
                "kind = \"raw\"\nformat = \"csv\"\npath = \"log.csv\"\n\
                 columns = { user = \"u\", item = \"i\", timestamp = \"t\", \
                 timestamp_unit = \"ms\", timestamp_format = \"auto\" }\n\
                 items = { format = \"table\", path = \"items.csv\", id = \"item_id\", \
                 columns = [\"genre\", \"brand\"], lists = { genres = \"|\" }, \
                 delimiter = \";\" }\n",
            ),
            text(
                "raw-file-order",
                "kind = \"raw\"\nformat = \"parquet\"\npath = \"log.parquet\"\n\
                 columns = { user = \"u\", item = \"i\", order = \"file\" }\n",
            ),
            text(
                "synth",
                "kind = \"synth\"\nsynth = { users = 10, items = 5, clusters = 2 }\n",
            ),
            text("parquet", "kind = \"parquet\"\npath = \"t.parquet\"\n"),
        ],
        read: Arc::new(|p: &Path| {
            let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&bytes);
            toml::from_str::<DataSource>(&text)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
    });
    run_target(Target {
        name: "column-mapping",
        file: "columns",
        names_file: false,
        encoding: Encoding::Plain,
        seeds: vec![
            text(
                "compact",
                "user=userId, item=movieId, ts=timestamp, rating=3, label=click, \
                 delimiter=tab, header=false",
            ),
            text("short", "user=1,item=2,timestamp=4,delimiter=semicolon"),
            text("file-order", "user=u,item=i,order=file,header=false"),
            text(
                "units",
                "user=u,item=i,ts=t,timestamp_unit=ms,timestamp_format=iso8601",
            ),
            text(
                "json",
                r#"{"user":"u","item":"i","timestamp":"t","delimiter":";","header":true}"#,
            ),
        ],
        read: Arc::new(|p: &Path| {
            let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&bytes);
            let parsed = text.parse::<ColumnMapping>().map_err(err_text);
            // A mapping read from a JSON file names the file.
            let from_file = ColumnMapping::read_json(p).map(drop).map_err(err_text);
            if let Err(m) = &from_file {
                if !m.contains(&p.display().to_string()) {
                    return Err(format!(
                        "ColumnMapping::read_json does not name the file: {m}"
                    ));
                }
            }
            parsed.map(drop)
        }),
    });
}

#[test]
fn mutations_stay_in_bounds_and_the_driver_reports_failures() {
    // Every mutation on an empty and a tiny input.
    let seeds = vec![text("a", "ab"), text("b", "")];
    let all = [
        Mutation::FlipBit {
            at: Pos {
                x: 9,
                from_end: true,
            },
            bit: 7,
        },
        Mutation::SetByte {
            at: Pos {
                x: 3,
                from_end: false,
            },
            byte: 0,
        },
        Mutation::Truncate {
            at: Pos {
                x: 1,
                from_end: true,
            },
        },
        Mutation::Insert {
            at: Pos {
                x: 5,
                from_end: false,
            },
            bytes: vec![1, 2],
        },
        Mutation::Delete {
            at: Pos {
                x: 1,
                from_end: false,
            },
            len: 60,
        },
        Mutation::Duplicate {
            from: Pos {
                x: 0,
                from_end: false,
            },
            len: 200,
            to: Pos {
                x: 0,
                from_end: true,
            },
        },
        Mutation::Splice {
            seed: 7,
            from: Pos {
                x: 1,
                from_end: false,
            },
            len: 9,
            to: Pos {
                x: 2,
                from_end: false,
            },
            replace: 50,
        },
        Mutation::Special {
            at: Pos {
                x: 0,
                from_end: false,
            },
            which: 1000,
            replace_token: true,
        },
        Mutation::LongLine {
            at: Pos {
                x: 0,
                from_end: false,
            },
            len: 3,
            byte: b'x',
        },
        Mutation::Overwrite {
            at: Pos {
                x: 1,
                from_end: true,
            },
            which: SPECIALS.len() - 5,
        },
    ];
    for start in [&b""[..], b"x", b"hello, world"] {
        for m in &all {
            let mut d = start.to_vec();
            apply(&mut d, m, &seeds);
            assert!(d.len() <= MAX_INPUT);
        }
    }
    let mut d = b"1::22::3".to_vec();
    apply(
        &mut d,
        &Mutation::Special {
            at: Pos {
                x: 2,
                from_end: false,
            },
            which: 7, // -1
            replace_token: true,
        },
        &seeds,
    );
    assert_eq!(d, b"1::-1::3");
    // The driver catches a panic, an error that does not name the file, and a large allocation.
    let t = |read: Reader| Target {
        name: "self-test",
        file: "input.txt",
        names_file: true,
        encoding: Encoding::Plain,
        seeds: vec![text("x", "x")],
        read,
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("input.txt");
    std::fs::write(&p, b"x").unwrap();
    quiet_reader_panics();
    for (read, want) in [
        (
            Arc::new(|_: &Path| -> Outcome { panic!("boom") }) as Reader,
            "panicked: boom",
        ),
        (Arc::new(|_: &Path| Err("bad".to_string())), "does not name"),
        (Arc::new(|_: &Path| Err(" ".to_string())), "empty error"),
        (
            Arc::new(|_: &Path| {
                let v = vec![0u8; (MAX_PEAK_BYTES + 1) as usize];
                std::hint::black_box(&v);
                Ok(())
            }),
            "held",
        ),
    ] {
        let target = t(read);
        let e = check_one(&target, &target.read, &p, b"x").unwrap_err();
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
    let target = t(Arc::new(|p: &Path| {
        Err(format!("{}: line 1: fine", p.display()))
    }));
    check_one(&target, &target.read, &p, b"x").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Regressions: the shrunk inputs of panics the fuzzer found, replayed on their seeds. Each test
// checks the input still reaches the fixed check (so a change of the writers' bytes cannot turn it
// into a test of nothing).

/// Applies `muts` to `seed` as the driver does (for plain targets).
fn replay(seed: &(String, Vec<u8>), muts: &[Mutation]) -> Vec<u8> {
    let seeds = vec![seed.clone()];
    let mut data = seed.1.clone();
    for m in muts {
        apply(&mut data, m, &seeds);
    }
    data
}

fn read_err(bytes: &[u8], name: &str, read: impl Fn(&Path) -> longtail_data::Result<()>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    let e = read(&p).unwrap_err().to_string();
    assert!(e.contains(name), "{e}");
    e
}

/// A footer whose column chunk has a negative offset or size: the parquet crate asserted
/// ("column start and length should not be negative"); now an error naming the file.
#[test]
fn regression_parquet_negative_column_chunk_offset() {
    let seed = written("written", |p| small_items().write_parquet(p).unwrap());
    let bytes = replay(
        &seed,
        &[Mutation::SetByte {
            at: Pos {
                x: 3225726007,
                from_end: true,
            },
            byte: 29,
        }],
    );
    let e = read_err(&bytes, "x.items.parquet", |p| {
        ItemFeatures::read_parquet(p).map(drop)
    });
    assert!(
        e.contains("malformed file") && e.contains("negative"),
        "{e}"
    );
    let seed = written("plain", |p| raw_parquet(p, false));
    let bytes = replay(
        &seed,
        &[
            Mutation::Delete {
                at: Pos {
                    x: 386759728,
                    from_end: false,
                },
                len: 38,
            },
            Mutation::Special {
                at: Pos {
                    x: 1482463769,
                    from_end: true,
                },
                which: 30,
                replace_token: true,
            },
        ],
    );
    let m = ColumnMapping::new("iid", "uid", "when");
    let e = read_err(&bytes, "log.parquet", |p| {
        import_with(ImportFormat::Parquet, p, Some(&m)).map(drop)
    });
    assert!(e.contains("malformed file"), "{e}");
}

/// A flipped bit in a page header of an item-feature file makes its encoding BYTE_STREAM_SPLIT
/// with fewer bytes than values: the parquet crate's decoder indexed out of bounds; now the panic
/// is caught (`table::parquet_guard`) and becomes an error naming the file.
#[test]
fn regression_items_parquet_index_out_of_bounds() {
    let seed = written("written", |p| small_items().write_parquet(p).unwrap());
    let bytes = replay(
        &seed,
        &[Mutation::FlipBit {
            at: Pos {
                x: 502898589,
                from_end: true,
            },
            bit: 1,
        }],
    );
    let e = read_err(&bytes, "x.items.parquet", |p| {
        ItemFeatures::read_parquet(p).map(drop)
    });
    assert!(e.contains("the Parquet decoder failed"), "{e}");
}

/// The byte range of the varint value of field `n` (1-based, an i32) of the first page header.
fn page_header_field(bytes: &[u8], n: usize) -> std::ops::Range<usize> {
    assert_eq!(&bytes[..4], b"PAR1");
    let mut i = 4;
    for _ in 1..n {
        assert_eq!(bytes[i], 0x15, "field header (delta 1, i32)");
        i += 1;
        while bytes[i] & 0x80 != 0 {
            i += 1;
        }
        i += 1;
    }
    assert_eq!(bytes[i], 0x15, "field header (delta 1, i32)");
    let start = i + 1;
    let mut end = start;
    while bytes[end] & 0x80 != 0 {
        end += 1;
    }
    start..end + 1
}

/// A page header claiming 2^31 - 1 bytes: the parquet crate allocated (and, for snappy, zeroed)
/// that much before checking it, for a 1 KiB file. Now the page headers are checked first
/// (`table::check_page_headers`): a page must fit in its column chunk, and a snappy page cannot
/// expand more than snappy can.
/// A varint inserted into a dictionary page header made its value count about 2^31: the parquet
/// crate zero-filled a dictionary of that many values (16 GiB) before decoding it. Now a
/// dictionary page may not claim more values than its bytes can hold.
#[test]
fn regression_parquet_dictionary_count_bounds_allocation() {
    let seed = written("snappy", |p| raw_parquet(p, true));
    let bytes = replay(
        &seed,
        &[Mutation::Insert {
            at: Pos {
                x: 966999761,
                from_end: false,
            },
            bytes: vec![129, 128, 128, 128, 176, 128],
        }],
    );
    let mut m = ColumnMapping::new("uid", "iid", "ms");
    m.rating = Some("stars".into());
    let (e, peak) = with_peak(|| {
        read_err(&bytes, "log.parquet", |p| {
            import_with(ImportFormat::Parquet, p, Some(&m)).map(drop)
        })
    });
    assert!(peak < 1 << 20, "held {peak} bytes");
    assert!(
        e.contains("malformed file") && e.contains("dictionary page"),
        "{e}"
    );
}

#[test]
fn regression_parquet_page_header_sizes_bound_allocations() {
    let i32_max = [0xfe, 0xff, 0xff, 0xff, 0x0f]; // zigzag varint of 2^31 - 1
    for (seed, field, want) in [
        (
            written("items", |p| small_items().write_parquet(p).unwrap()),
            2,
            "snappy",
        ),
        (
            written("items", |p| small_items().write_parquet(p).unwrap()),
            3,
            "column chunk",
        ),
        (written("snappy", |p| raw_parquet(p, true)), 2, "snappy"),
        (
            written("plain", |p| raw_parquet(p, false)),
            3,
            "column chunk",
        ),
    ] {
        let mut bytes = seed.1.clone();
        let r = page_header_field(&bytes, field);
        bytes.splice(r, i32_max);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        std::fs::write(&p, &bytes).unwrap();
        let (results, peak) = with_peak(|| {
            [
                ItemFeatures::read_parquet(&p).map(drop),
                Interactions::read_parquet(&p).map(drop),
                Frame::read_parquet(&p, &[]).map(drop),
                import_with(
                    ImportFormat::Parquet,
                    &p,
                    Some(&ColumnMapping::new("uid", "iid", "when")),
                )
                .map(drop),
            ]
        });
        assert!(
            peak < 1 << 20,
            "{} field {field}: held {peak} bytes",
            seed.0
        );
        for r in results {
            let e = r.unwrap_err().to_string();
            assert!(
                e.contains("x.parquet") && e.contains("malformed file") && e.contains(want),
                "{} field {field}: {e}",
                seed.0
            );
        }
    }
}
