//! longtail's side of the benchmark families that are measured beside a peer in another language:
//! the data pipeline (vs pandas), AUC / GAUC (vs scikit-learn and pandas) and the IDW sleep phase
//! (vs a PyTorch eager twin). Each worker times its work `repeats` times in this process and
//! returns one JSON object in the schema every side prints:
//!
//! ```json
//! {"figures": {"<figure id>": {"ms": 12.5, "best_ms": 12.1, "<extra>": 1.0}}}
//! ```
//!
//! `ms` is the median wall time of the repeats in milliseconds (lower is better), `best_ms` the
//! fastest; every other field is a number (see each worker). The peers print the same ids:
//! `benches/data_vs_pandas.py`, `benches/auc_vs_sklearn.py`, `benches/peers/density_twin.py`.
//! The inputs the two sides share are files written here ([`auc_inputs`], [`density_inputs`]) or
//! the real datasets under `$LONGTAIL_DATA_DIR`.

use crate::error::{io, Result, TrainError};
use longtail_data::import::{import, ImportFormat};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

// ---------------------------------------------------------------------------------------------
// Shared: timing, figures, files.

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`); None where there is no procfs.
fn proc_status_kb(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `/proc/self/status` field `key` in MiB (2^20 bytes); NaN (written as null) without procfs.
fn proc_status_mb(key: &str) -> f64 {
    proc_status_kb(key).map_or(f64::NAN, |kb| kb as f64 / 1024.0)
}

/// Wall times in seconds of `repeats` runs of `f`, and the last result.
fn timed<R>(repeats: usize, mut f: impl FnMut() -> Result<R>) -> Result<(Vec<f64>, R)> {
    let mut times = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        let t = Instant::now();
        let r = f()?;
        times.push(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    let last = last.ok_or_else(|| repeats_error(repeats))?;
    Ok((times, last))
}

fn repeats_error(repeats: usize) -> TrainError {
    TrainError::Config {
        key: "repeats".into(),
        message: format!("must be at least 1, got {repeats}"),
    }
}

fn check_repeats(repeats: usize) -> Result<()> {
    if repeats == 0 {
        return Err(repeats_error(repeats));
    }
    Ok(())
}

/// Median of a non-empty slice (the mean of the middle two for an even length).
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// One figure: `ms` (median of `times_s`, in milliseconds), `best_ms`, then `extras`. A
/// non-finite extra is left out (JSON has no NaN).
fn figure(times_s: &[f64], extras: &[(&str, f64)]) -> Value {
    let mut m = Map::new();
    m.insert("ms".into(), json!(median(times_s) * 1e3));
    let best = times_s.iter().copied().fold(f64::INFINITY, f64::min);
    m.insert("best_ms".into(), json!(best * 1e3));
    for &(k, v) in extras {
        if v.is_finite() {
            m.insert(k.into(), json!(v));
        }
    }
    Value::Object(m)
}

/// `{"figures": {id: figure, ...}}`.
fn figures(list: Vec<(String, Value)>) -> Value {
    json!({ "figures": list.into_iter().collect::<Map<String, Value>>() })
}

/// Threads of rayon's global pool as rayon picks them (`RAYON_NUM_THREADS`, else the available
/// parallelism); the data and metric code of longtail runs on that pool.
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn bad_input(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Input {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A raw little-endian array of 4-byte values.
fn read_le4<T>(path: &Path, from: impl Fn([u8; 4]) -> T) -> Result<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    if bytes.len() % 4 != 0 {
        return Err(bad_input(
            path,
            format!(
                "{} bytes is not a whole number of 4-byte values",
                bytes.len()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| from([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    read_le4(path, f32::from_le_bytes)
}

fn le_bytes<T: Copy>(v: &[T], to_le: impl Fn(T) -> [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for &x in v {
        out.extend_from_slice(&to_le(x));
    }
    out
}

fn read_meta(dir: &Path) -> Result<Value> {
    let path = dir.join("meta.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| bad_input(&path, format!("not JSON: {e}")))
}

fn meta_u64(meta: &Value, dir: &Path, key: &str) -> Result<u64> {
    meta[key].as_u64().ok_or_else(|| {
        bad_input(
            &dir.join("meta.json"),
            format!("has no non-negative integer '{key}'"),
        )
    })
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever, so the generated inputs
/// never change with a dependency's version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in 0..n (multiply-shift; the bias is below 2^-32 for n < 2^32).
    fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }
    /// Standard normal by Box–Muller (one of the pair; simplicity over speed).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

// ---------------------------------------------------------------------------------------------
// Data pipeline: import + prepare of a real rating log (peer: benches/data_vs_pandas.py).

/// A benchmark dataset: import format, path under the data dir, positive threshold.
struct Dataset {
    name: &'static str,
    format: &'static str,
    path: &'static str,
    threshold: f32,
}

const DATASETS: [Dataset; 2] = [
    Dataset {
        name: "ml-1m",
        format: "movielens-dat",
        path: "ml-1m/ratings_users1-2999.dat.gz",
        threshold: 3.0,
    },
    Dataset {
        name: "movietweetings",
        format: "movietweetings",
        path: "movietweetings-100k/ratings.dat",
        threshold: 6.0,
    },
];

/// The datasets [`data_worker`] knows.
pub const DATA_DATASETS: [&str; 2] = [DATASETS[0].name, DATASETS[1].name];

/// Options of [`data_worker_with`]; [`data_worker`] uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct DataOptions {
    /// The prepare job's seed.
    pub seed: u64,
    /// Adds the HIM sessions (`[sessions]` with its defaults) to the prepare job: figure
    /// `data/<ds>/prepare_sessions` into `OUT/prepared-sessions` (pandas has no counterpart).
    pub sessions: bool,
    /// Where the raw files are (default [`longtail_data::source::real_data_dir`]).
    pub data_dir: Option<PathBuf>,
}

/// The prepare job as TOML (the pandas script implements the same).
fn data_config_toml(ds: &Dataset, input: &Path, seed: u64, sessions: bool) -> Result<String> {
    // A JSON string is a valid TOML basic string.
    let path = serde_json::to_string(&input.display().to_string()).map_err(|e| {
        bad_input(
            input,
            format!("path cannot be written into the config: {e}"),
        )
    })?;
    let mut toml = format!(
        "dataset = \"{name}\"\nseed = {seed}\n\n\
         [data]\nkind = \"raw\"\nformat = \"{format}\"\npath = {path}\n\n\
         [samples]\npositive_threshold = {threshold:?}\nneg_per_pos = 5\n\
         split = {{ kind = \"random\", valid = 0.1, test = 0.2 }}\n\
         activeness = {{ mode = \"threshold\", tail_max = 2, body_max = 5 }}\n\
         head_item_share = 0.2\nrated_negatives = false\n",
        name = ds.name,
        format = ds.format,
        threshold = ds.threshold,
    );
    if sessions {
        toml.push_str("\n[sessions]\n");
    }
    Ok(toml)
}

/// [`data_worker_with`] with the default options (seed 0, no sessions, `$LONGTAIL_DATA_DIR`).
pub fn data_worker(dataset: &str, out: &Path, repeats: usize) -> Result<Value> {
    data_worker_with(dataset, out, repeats, &DataOptions::default())
}

/// The data pipeline on `dataset` (`ml-1m` or `movietweetings`), in this process: the import
/// alone (`longtail_data::import`: parse, dense ids, vocabularies, in memory), `repeats` times,
/// then the whole `longtail_data::prepare` job (which imports again, labels, samples 5 negatives
/// per positive, splits 70/10/20 at random, computes histories and groups, and writes Parquet to
/// `out/prepared`), `repeats` times. Run one dataset per process: the peak RSS is the process's.
///
/// The workload (the same in `benches/data_vs_pandas.py`): ml-1m =
/// `ml-1m/ratings_users1-2999.dat.gz` (`movielens-dat`), positive = rating > 3; MovieTweetings =
/// `movietweetings-100k/ratings.dat` (`movietweetings`, ratings 0-10), positive = rating > 6.
///
/// Figures:
/// - `data/<ds>/import`: `rows_per_s` (input rows / median time), `rows`;
/// - `data/<ds>/prepare` (`prepare_sessions` with [`DataOptions::sessions`]): `rows_per_s`,
///   `rows`, `positives`, `samples`, `peak_rss_mb` (`VmHWM` at the end, the process's peak, the
///   import runs included) and `rss_before_mb` (`VmRSS` when the call started), both in MiB.
pub fn data_worker_with(
    dataset: &str,
    out: &Path,
    repeats: usize,
    opts: &DataOptions,
) -> Result<Value> {
    let rss_before_mb = proc_status_mb("VmRSS");
    check_repeats(repeats)?;
    let ds = DATASETS
        .iter()
        .find(|d| d.name == dataset)
        .ok_or_else(|| TrainError::Config {
            key: "dataset".into(),
            message: format!("'{dataset}' is not one of: {}", DATA_DATASETS.join(", ")),
        })?;
    let data_dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(longtail_data::source::real_data_dir);
    let input = data_dir.join(ds.path);
    if !input.is_file() {
        return Err(bad_input(
            &input,
            format!(
                "not found (set LONGTAIL_DATA_DIR to the folder holding {})",
                ds.path
            ),
        ));
    }
    let format: ImportFormat = ds.format.parse()?;

    // Import alone: parse + dense ids + vocabularies, in memory.
    let (import_s, imported) = timed(repeats, || Ok(import(format, &input)?))?;
    let rows = imported.interactions.len() as f64;
    drop(imported);

    // The whole prepare job (its own import included), written to disk.
    let toml = data_config_toml(ds, &input, opts.seed, opts.sessions)?;
    let cfg = longtail_data::PrepareConfig::from_toml(&toml, "data bench config")?;
    let (folder, stage) = if opts.sessions {
        ("prepared-sessions", "prepare_sessions")
    } else {
        ("prepared", "prepare")
    };
    let prepared = out.join(folder);
    let (prepare_s, m) = timed(repeats, || {
        Ok(longtail_data::prepare(&cfg, &prepared, &|_| {})?)
    })?;
    let positives = (m.train.positives + m.valid.positives + m.test.positives) as f64;
    let samples = (m.train.samples + m.valid.samples + m.test.samples) as f64;
    let peak_rss_mb = proc_status_mb("VmHWM");

    Ok(figures(vec![
        (
            format!("data/{}/import", ds.name),
            figure(
                &import_s,
                &[("rows_per_s", rows / median(&import_s)), ("rows", rows)],
            ),
        ),
        (
            format!("data/{}/{stage}", ds.name),
            figure(
                &prepare_s,
                &[
                    ("rows_per_s", rows / median(&prepare_s)),
                    ("rows", rows),
                    ("positives", positives),
                    ("samples", samples),
                    ("peak_rss_mb", peak_rss_mb),
                    ("rss_before_mb", rss_before_mb),
                ],
            ),
        ),
    ]))
}

// ---------------------------------------------------------------------------------------------
// AUC / GAUC on large synthetic arrays (peer: benches/auc_vs_sklearn.py).

/// The AUC inputs: scores, labels, users of `n` samples.
struct AucData {
    scores: Vec<f32>,
    labels: Vec<f32>,
    users: Vec<u32>,
}

/// The AUC data model: each sample has a user `u` uniform in `0..users`, a label that is positive
/// with probability 0.25, and a latent `x = N(0,1) + 0.75 * label + b_u - 1`, where
/// `b_u ~ N(0, 0.5^2)` is a per-user offset (it lowers the global AUC but not the per-user AUC, so
/// AUC and GAUC differ). The score is `sigmoid(x)` rounded to 1e-4, so there are many ties.
fn auc_generate(n: usize, users: u32, seed: u64) -> AucData {
    let mut rng = SplitMix64(seed);
    let offsets: Vec<f64> = (0..users).map(|_| 0.5 * rng.normal()).collect();
    let mut d = AucData {
        scores: Vec::with_capacity(n),
        labels: Vec::with_capacity(n),
        users: Vec::with_capacity(n),
    };
    for _ in 0..n {
        let u = rng.below(users);
        let pos = rng.next_f64() < 0.25;
        let x = rng.normal() + if pos { 0.75 } else { 0.0 } + offsets[u as usize] - 1.0;
        let s = (1.0 / (1.0 + (-x).exp()) * 1e4).round() / 1e4;
        d.users.push(u);
        d.labels.push(if pos { 1.0 } else { 0.0 });
        d.scores.push(s as f32);
    }
    d
}

/// The size part of the metric figure ids: `10m` for 10,000,000, `20k` for 20,000, else the
/// number itself.
fn size_tag(n: usize) -> String {
    if n > 0 && n % 1_000_000 == 0 {
        format!("{}m", n / 1_000_000)
    } else if n > 0 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// Generates `n` (score, label, user) triples of `users` users from `seed` (the data model of
/// the AUC benchmark: user uniform, label positive with p = 0.25, score = sigmoid(N(0,1) +
/// 0.75·label + per-user offset − 1) rounded to 1e-4, from SplitMix64, so heavily tied) and
/// writes them as raw little-endian arrays `dir/scores.f32`, `labels.f32`, `users.u32` and a
/// `meta.json`. The benchmark default is 10,000,000 samples of 1,000,000 users from seed 42.
pub fn auc_inputs(dir: &Path, n: usize, users: usize, seed: u64) -> Result<()> {
    let users = u32::try_from(users)
        .ok()
        .filter(|&u| u > 0)
        .ok_or_else(|| TrainError::Config {
            key: "users".into(),
            message: format!("must be in 1..={}, got {users}", u32::MAX),
        })?;
    if n == 0 {
        return Err(TrainError::Config {
            key: "n".into(),
            message: "must be at least 1".into(),
        });
    }
    // The arrays (12 bytes a sample) and one array's bytes at a time, plus the offsets.
    longtail_data::memory::check_fits(
        n as f64 * 16.0 + f64::from(users) * 8.0,
        "n",
        "the AUC inputs",
    )?;
    let d = auc_generate(n, users, seed);
    let write = longtail_data::atomic::write_bytes;
    write(
        &dir.join("scores.f32"),
        &le_bytes(&d.scores, f32::to_le_bytes),
    )?;
    write(
        &dir.join("labels.f32"),
        &le_bytes(&d.labels, f32::to_le_bytes),
    )?;
    write(
        &dir.join("users.u32"),
        &le_bytes(&d.users, u32::to_le_bytes),
    )?;
    let meta = json!({
        "n": n, "users": users, "seed": seed,
        "files": {"scores": "scores.f32", "labels": "labels.f32", "users": "users.u32"},
        "dtypes": {"scores": "<f4", "labels": "<f4", "users": "<u4"},
    });
    longtail_data::atomic::write_json(&dir.join("meta.json"), &meta, true)?;
    Ok(())
}

/// Reads the arrays [`auc_inputs`] wrote and checks they have one length.
fn auc_read(dir: &Path) -> Result<AucData> {
    let d = AucData {
        scores: read_f32(&dir.join("scores.f32"))?,
        labels: read_f32(&dir.join("labels.f32"))?,
        users: read_le4(&dir.join("users.u32"), u32::from_le_bytes)?,
    };
    if d.scores.len() != d.labels.len() || d.scores.len() != d.users.len() {
        return Err(bad_input(
            dir,
            format!(
                "scores.f32, labels.f32 and users.u32 hold {}, {} and {} values; they must agree",
                d.scores.len(),
                d.labels.len(),
                d.users.len()
            ),
        ));
    }
    Ok(d)
}

/// Times `longtail_eval::auc` and `longtail_eval::gauc` (`repeats` times each, arrays already in
/// memory) on the arrays in `dir` ([`auc_inputs`]).
///
/// Figures (`<n>` = [`size_tag`] of the sample count, `10m` for the benchmark):
/// - `metrics/auc_<n>`: `value` (the AUC), `n`, `threads` (rayon's);
/// - `metrics/gauc_<n>`: `value` (the sample-weighted GAUC), `users_used`, `users_skipped`,
///   `samples_used`, `threads`.
pub fn auc_worker(dir: &Path, repeats: usize) -> Result<Value> {
    check_repeats(repeats)?;
    let d = auc_read(dir)?;
    let n = d.scores.len();
    let (auc_s, auc) = timed(repeats, || Ok(longtail_eval::auc(&d.scores, &d.labels)?))?;
    let (gauc_s, g) = timed(repeats, || {
        Ok(longtail_eval::gauc(&d.users, &d.scores, &d.labels)?)
    })?;
    let tag = size_tag(n);
    let threads = rayon_threads() as f64;
    Ok(figures(vec![
        (
            format!("metrics/auc_{tag}"),
            figure(
                &auc_s,
                &[
                    ("value", auc.unwrap_or(f64::NAN)),
                    ("n", n as f64),
                    ("threads", threads),
                ],
            ),
        ),
        (
            format!("metrics/gauc_{tag}"),
            figure(
                &gauc_s,
                &[
                    ("value", g.gauc.unwrap_or(f64::NAN)),
                    ("users_used", g.users_used as f64),
                    ("users_skipped", g.users_skipped as f64),
                    ("samples_used", g.samples_used as f64),
                    ("threads", threads),
                ],
            ),
        ),
    ]))
}

// ---------------------------------------------------------------------------------------------
// IDW sleep phase (peer: benches/peers/density_twin.py).

/// The momentum `m` of eq. 9 the density benchmark uses (`meta.json` records it for the twin).
pub const DENSITY_MOMENTUM: f64 = 0.9;

/// The file [`density_worker`] writes its resulting weights to, in the inputs folder.
pub const DENSITY_OUTPUT: &str = "longtail_weights.f32";

/// `Σ_i (i + 1) · w_i / N` in f64: one number that moves when any weight moves or two trade
/// places. The twin prints the same.
fn weights_checksum(w: &[f32]) -> f64 {
    let n = w.len().max(1) as f64;
    w.iter()
        .enumerate()
        .map(|(i, &x)| (i + 1) as f64 * f64::from(x))
        .sum::<f64>()
        / n
}

/// Writes the density benchmark's inputs: `dir/reps.f32` (`[items, dim]` row-major, standard
/// normal, the item representations), `dir/weights.f32` (`[items]`, Algorithm 1's initial
/// weights `w(0) = n_k / Σ n` of long-tailed counts `n_k = ⌊e^(1.5·z)⌋ + 1`, `z ~ N(0, 1)`),
/// little-endian f32, and `meta.json` (`items`, `dim`, `seed`, `momentum`). SplitMix64 from
/// `seed`. The benchmark uses 3706 items (MovieLens-1M's catalogue) of dim 16.
pub fn density_inputs(dir: &Path, items: i64, dim: i64, seed: u64) -> Result<()> {
    if items < 2 || dim < 1 {
        return Err(TrainError::Config {
            key: "items".into(),
            message: format!("need items >= 2 and dim >= 1, got {items} and {dim}"),
        });
    }
    longtail_data::memory::check_fits(
        (items as f64) * (dim as f64 + 1.0) * 8.0,
        "items",
        "the density inputs",
    )?;
    let mut rng = SplitMix64(seed);
    let reps: Vec<f32> = (0..items * dim).map(|_| rng.normal() as f32).collect();
    let counts: Vec<u64> = (0..items)
        .map(|_| (1.5 * rng.normal()).exp().floor() as u64 + 1)
        .collect();
    let w0 = longtail_core::density::initial_weights(&counts);
    let write = longtail_data::atomic::write_bytes;
    write(&dir.join("reps.f32"), &le_bytes(&reps, f32::to_le_bytes))?;
    write(&dir.join("weights.f32"), &le_bytes(&w0, f32::to_le_bytes))?;
    let meta = json!({
        "items": items, "dim": dim, "seed": seed, "momentum": DENSITY_MOMENTUM,
        "files": {"reps": "reps.f32", "weights": "weights.f32"},
        "dtypes": {"reps": "<f4", "weights": "<f4"},
        "shapes": {"reps": [items, dim], "weights": [items]},
    });
    longtail_data::atomic::write_json(&dir.join("meta.json"), &meta, true)?;
    Ok(())
}

/// One IDW sleep phase (`longtail_core::density::sleep_phase`: Scott bandwidth, the chunked
/// Gaussian-kernel density of eq. 7, eq. 8, the momentum update of eq. 9 with
/// [`DENSITY_MOMENTUM`], every item valid) on the inputs in `dir` ([`density_inputs`]), moved to
/// `device` first. One untimed warm-up, then `repeats` timed phases, each ended by reading a
/// value back (which waits for the device). The last phase's weights are written to
/// `dir/`[`DENSITY_OUTPUT`] (raw little-endian f32) for the twin to compare.
///
/// Figure `density/sleep_phase`: `items`, `dim`, `chunk`, `pairs_per_s` (items² / median time),
/// `threads` (libtorch's intra-op threads), `cuda` (1 on a GPU), `bandwidth`, `weight_change`
/// (`‖w(t+1) − w(t)‖₂`) and `checksum` (`Σ (i+1)·w_i / N` of the new weights).
pub fn density_worker(dir: &Path, chunk: i64, repeats: usize, device: Device) -> Result<Value> {
    check_repeats(repeats)?;
    if chunk < 1 {
        return Err(TrainError::Config {
            key: "chunk".into(),
            message: format!("must be at least 1, got {chunk}"),
        });
    }
    let meta = read_meta(dir)?;
    let items = meta_u64(&meta, dir, "items")? as usize;
    let dim = meta_u64(&meta, dir, "dim")? as usize;
    let momentum = meta["momentum"].as_f64().unwrap_or(DENSITY_MOMENTUM);
    let reps = read_f32(&dir.join("reps.f32"))?;
    let w0 = read_f32(&dir.join("weights.f32"))?;
    if reps.len() != items * dim || w0.len() != items || items < 2 {
        return Err(bad_input(
            dir,
            format!(
                "reps.f32 holds {} values and weights.f32 {}; meta.json says [{items}, {dim}] \
                 and [{items}] (items >= 2)",
                reps.len(),
                w0.len()
            ),
        ));
    }
    let (n, d) = (items as i64, dim as i64);
    // Representations and weights with their temporaries, and one [chunk, N] block of distances
    // and kernel values with theirs.
    let bytes =
        (n as f64) * (d as f64 * 4.0 * 3.0 + 16.0) + (chunk.min(n) as f64) * (n as f64) * 4.0 * 4.0;
    longtail_data::memory::check_fits(bytes, "items", "one sleep phase")?;

    let reps = Tensor::from_slice(&reps).view([n, d]).to_device(device);
    let w = Tensor::from_slice(&w0).to_device(device);
    let valid = Tensor::ones([n], (Kind::Bool, device));
    let phase = || -> Result<(Tensor, longtail_core::density::SleepStats)> {
        let (w2, stats) = tch::no_grad(|| {
            longtail_core::density::sleep_phase(&reps, &w, momentum, &valid, chunk)
        })?;
        // Reading a value waits for the device.
        let _ = w2.sum(Kind::Float).double_value(&[]);
        Ok((w2, stats))
    };
    let _warm_up = phase()?;
    let (times, (w2, stats)) = timed(repeats, phase)?;
    let out: Vec<f32> = Vec::<f32>::try_from(w2.to_device(Device::Cpu).to_kind(Kind::Float))?;
    longtail_data::atomic::write_bytes(
        &dir.join(DENSITY_OUTPUT),
        &le_bytes(&out, f32::to_le_bytes),
    )?;

    let pairs = (n as f64) * (n as f64);
    Ok(figures(vec![(
        "density/sleep_phase".to_string(),
        figure(
            &times,
            &[
                ("items", n as f64),
                ("dim", d as f64),
                ("chunk", chunk as f64),
                ("pairs_per_s", pairs / median(&times)),
                ("threads", tch::get_num_threads() as f64),
                (
                    "cuda",
                    f64::from(u8::from(matches!(device, Device::Cuda(_)))),
                ),
                ("bandwidth", stats.bandwidth),
                ("weight_change", stats.weight_change),
                ("checksum", weights_checksum(&out)),
            ],
        ),
    )]))
}

/// A device by name (`auto`, `cpu`, `cuda`, `cuda:N`), for callers of [`density_worker`].
pub fn device(spec: &str) -> Result<Device> {
    Ok(spec
        .parse::<longtail_core::device::DeviceSpec>()?
        .resolve()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &Value) -> Vec<String> {
        v["figures"].as_object().unwrap().keys().cloned().collect()
    }

    /// Every figure has `ms` and `best_ms` (best <= median), and only numbers.
    fn assert_schema(v: &Value) {
        let top = v.as_object().unwrap();
        assert_eq!(top.keys().collect::<Vec<_>>(), ["figures"], "{v}");
        for (id, f) in top["figures"].as_object().unwrap() {
            let f = f.as_object().unwrap();
            for (k, x) in f {
                assert!(x.as_f64().is_some_and(f64::is_finite), "{id}.{k} = {x}");
            }
            let (ms, best) = (f["ms"].as_f64().unwrap(), f["best_ms"].as_f64().unwrap());
            assert!(best >= 0.0 && best <= ms, "{id}: {best} > {ms}");
        }
    }

    #[test]
    fn median_figure_and_tag() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let f = figure(&[0.003, 0.001, 0.002], &[("x", 5.0), ("nan", f64::NAN)]);
        assert_eq!(f, json!({"ms": 2.0, "best_ms": 1.0, "x": 5.0}));
        assert_eq!(size_tag(10_000_000), "10m");
        assert_eq!(size_tag(20_000), "20k");
        assert_eq!(size_tag(1_500_000), "1500k");
        assert_eq!(size_tag(123), "123");
        assert!(matches!(
            timed(0, || Ok(())),
            Err(TrainError::Config { key, .. }) if key == "repeats"
        ));
    }

    #[test]
    fn auc_worker_values_are_longtail_eval_on_the_same_arrays() {
        let dir = tempfile::tempdir().unwrap();
        auc_inputs(dir.path(), 20_000, 500, 7).unwrap();
        let v = auc_worker(dir.path(), 2).unwrap();
        assert_schema(&v);
        assert_eq!(ids(&v), ["metrics/auc_20k", "metrics/gauc_20k"]);
        let d = auc_generate(20_000, 500, 7);
        let back = auc_read(dir.path()).unwrap();
        assert_eq!(back.scores, d.scores);
        assert_eq!(back.users, d.users);
        let auc = longtail_eval::auc(&d.scores, &d.labels).unwrap().unwrap();
        let g = longtail_eval::gauc(&d.users, &d.scores, &d.labels).unwrap();
        let f = &v["figures"];
        assert_eq!(f["metrics/auc_20k"]["value"].as_f64().unwrap(), auc);
        assert_eq!(f["metrics/auc_20k"]["n"], json!(20_000.0));
        let gf = &f["metrics/gauc_20k"];
        assert_eq!(gf["value"].as_f64().unwrap(), g.gauc.unwrap());
        assert_eq!(gf["users_used"].as_f64().unwrap(), g.users_used as f64);
        assert_eq!(gf["samples_used"].as_f64().unwrap(), g.samples_used as f64);
        // AUC and GAUC differ by design (per-user offsets).
        assert!(g.gauc.unwrap() > auc + 0.005, "{auc} {:?}", g.gauc);
        let meta = read_meta(dir.path()).unwrap();
        assert_eq!(meta["n"], 20_000);

        // Ragged inputs are refused, naming the folder.
        longtail_data::atomic::write_bytes(&dir.path().join("users.u32"), &[0; 8]).unwrap();
        let err = auc_worker(dir.path(), 1).unwrap_err().to_string();
        assert!(err.contains("must agree"), "{err}");
    }

    #[test]
    fn density_worker_writes_the_sleep_phase_weights() {
        let dir = tempfile::tempdir().unwrap();
        density_inputs(dir.path(), 300, 8, 3).unwrap();
        let v = density_worker(dir.path(), 64, 2, Device::Cpu).unwrap();
        assert_schema(&v);
        assert_eq!(ids(&v), ["density/sleep_phase"]);
        let f = &v["figures"]["density/sleep_phase"];
        assert_eq!(f["items"], json!(300.0));
        assert_eq!(f["dim"], json!(8.0));
        assert_eq!(f["chunk"], json!(64.0));
        assert!(f["pairs_per_s"].as_f64().unwrap() > 0.0);

        let out = read_f32(&dir.path().join(DENSITY_OUTPUT)).unwrap();
        assert_eq!(out.len(), 300);
        let sum: f64 = out.iter().map(|&x| f64::from(x)).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        assert_eq!(f["checksum"].as_f64().unwrap(), weights_checksum(&out));

        // The same phase computed directly, unchunked, from the files.
        let reps =
            Tensor::from_slice(&read_f32(&dir.path().join("reps.f32")).unwrap()).view([300, 8]);
        let w0 = read_f32(&dir.path().join("weights.f32")).unwrap();
        assert!(
            w0.iter().any(|&x| (x - w0[0]).abs() > 1e-6),
            "w(0) is not uniform"
        );
        let valid = Tensor::ones([300], (Kind::Bool, Device::Cpu));
        let (want, stats) = longtail_core::density::sleep_phase(
            &reps,
            &Tensor::from_slice(&w0),
            DENSITY_MOMENTUM,
            &valid,
            300,
        )
        .unwrap();
        let want = Vec::<f32>::try_from(want).unwrap();
        let diff = out
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-7, "max abs diff {diff}");
        assert_eq!(f["bandwidth"].as_f64().unwrap(), stats.bandwidth);

        assert!(density_worker(dir.path(), 0, 1, Device::Cpu).is_err());
        assert!(density_inputs(dir.path(), 1, 8, 0).is_err());
    }

    /// The repository's `../shared/data`, wherever the test runs from.
    fn data_dir() -> PathBuf {
        let env = longtail_data::source::real_data_dir();
        if env.is_dir() {
            return env;
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
    }

    #[test]
    fn data_worker_on_movietweetings() {
        let data = data_dir();
        if !data.join(DATASETS[1].path).is_file() {
            eprintln!("skipped: no {} under {}", DATASETS[1].path, data.display());
            return;
        }
        let out = tempfile::tempdir().unwrap();
        let opts = DataOptions {
            data_dir: Some(data),
            ..DataOptions::default()
        };
        let v = data_worker_with("movietweetings", out.path(), 1, &opts).unwrap();
        assert_schema(&v);
        assert_eq!(
            ids(&v),
            ["data/movietweetings/import", "data/movietweetings/prepare"]
        );
        let p = &v["figures"]["data/movietweetings/prepare"];
        assert_eq!(p["rows"], json!(100_000.0));
        assert_eq!(p["positives"], json!(72_771.0));
        assert_eq!(p["samples"], json!(436_626.0));
        assert!(p["peak_rss_mb"].as_f64().unwrap() >= p["rss_before_mb"].as_f64().unwrap());
        assert!(out.path().join("prepared/prepare.json").is_file());
        // Again into the same folder: a prepared folder is replaced.
        data_worker_with("movietweetings", out.path(), 1, &opts).unwrap();

        let err = data_worker("ml-2m", out.path(), 1).unwrap_err().to_string();
        assert!(err.contains("ml-1m, movietweetings"), "{err}");
    }

    // -----------------------------------------------------------------------------------------
    // Both sides agree: the Python peers on the same inputs (skipped without their packages).

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The torch venv's Python (`LONGTAIL_BENCH_PYTHON`, else `$VIRTUAL_ENV/bin/python`, else
    /// `python3`) when it imports `modules`; None (and a note) otherwise.
    fn python_with(modules: &str) -> Option<PathBuf> {
        let py = std::env::var_os("LONGTAIL_BENCH_PYTHON")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python"))
            })
            .unwrap_or_else(|| PathBuf::from("python3"));
        let ok = std::process::Command::new(&py)
            .args(["-c", &format!("import {modules}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            eprintln!(
                "skipped: {} cannot import {modules} (run scripts/setup-bench)",
                py.display()
            );
        }
        ok.then_some(py)
    }

    /// Runs a peer script, returns its stdout JSON; fails the test with its stderr otherwise.
    fn run_peer(py: &Path, args: &[&std::ffi::OsStr]) -> Value {
        let o = std::process::Command::new(py)
            .args(args)
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    #[test]
    fn auc_peer_agrees_to_1e_9() {
        let Some(py) = python_with("numpy, pandas, sklearn") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        auc_inputs(dir.path(), 200_000, 20_000, 42).unwrap();
        let ours = auc_worker(dir.path(), 1).unwrap();
        let script = repo().join("benches/auc_vs_sklearn.py");
        let theirs = run_peer(
            &py,
            &[
                script.as_os_str(),
                dir.path().as_os_str(),
                "--repeats".as_ref(),
                "1".as_ref(),
            ],
        );
        assert_schema(&theirs);
        assert_eq!(ids(&theirs), ids(&ours));
        for id in ids(&ours) {
            let (a, b) = (&ours["figures"][&id], &theirs["figures"][&id]);
            let d = (a["value"].as_f64().unwrap() - b["value"].as_f64().unwrap()).abs();
            assert!(d <= 1e-9, "{id}: {a} vs {b}");
        }
        for k in ["users_used", "users_skipped", "samples_used"] {
            assert_eq!(
                ours["figures"]["metrics/gauc_200k"][k],
                theirs["figures"]["metrics/gauc_200k"][k]
            );
        }
    }

    #[test]
    fn density_twin_agrees_to_1e_5() {
        let Some(py) = python_with("numpy, torch") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        density_inputs(dir.path(), 3706, 16, 1).unwrap();
        let ours = density_worker(dir.path(), 2048, 1, Device::Cpu).unwrap();
        let script = repo().join("benches/peers/density_twin.py");
        let threads = tch::get_num_threads().to_string();
        let theirs = run_peer(
            &py,
            &[
                script.as_os_str(),
                dir.path().as_os_str(),
                "--chunk".as_ref(),
                "2048".as_ref(),
                "--repeats".as_ref(),
                "1".as_ref(),
                "--threads".as_ref(),
                threads.as_ref(),
                "--compare".as_ref(),
                dir.path().join(DENSITY_OUTPUT).as_os_str(),
            ],
        );
        assert_schema(&theirs);
        let (a, b) = (
            &ours["figures"]["density/sleep_phase"],
            &theirs["figures"]["density/sleep_phase"],
        );
        let diff = b["max_abs_diff"].as_f64().unwrap();
        assert!(diff <= 1e-5, "max abs diff {diff}");
        let rel = |k: &str| {
            let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
            (x - y).abs() / x.abs().max(1e-12)
        };
        assert!(rel("bandwidth") < 1e-5, "{a} vs {b}");
        assert!(rel("checksum") < 1e-5, "{a} vs {b}");
        assert_eq!(a["threads"], b["threads"]);
    }

    #[test]
    fn data_peer_has_the_same_ids_and_positives() {
        let data = data_dir();
        if !data.join(DATASETS[1].path).is_file() {
            eprintln!("skipped: no {} under {}", DATASETS[1].path, data.display());
            return;
        }
        let Some(py) = python_with("numpy, pandas, pyarrow") else {
            return;
        };
        let out = tempfile::tempdir().unwrap();
        let opts = DataOptions {
            data_dir: Some(data.clone()),
            ..DataOptions::default()
        };
        let ours =
            data_worker_with("movietweetings", &out.path().join("longtail"), 1, &opts).unwrap();
        let script = repo().join("benches/data_vs_pandas.py");
        let pandas_out = out.path().join("pandas");
        let prepared = out.path().join("longtail/prepared");
        let o = std::process::Command::new(&py)
            .arg(&script)
            .args(["--dataset", "movietweetings", "--repeats", "1", "--out"])
            .arg(&pandas_out)
            .arg("--longtail-dir")
            .arg(&prepared)
            .env("LONGTAIL_DATA_DIR", &data)
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let theirs: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_schema(&theirs);
        assert_eq!(ids(&theirs), ids(&ours));
        let (a, b) = (
            &ours["figures"]["data/movietweetings/prepare"],
            &theirs["figures"]["data/movietweetings/prepare"],
        );
        for k in ["rows", "positives", "samples"] {
            assert_eq!(a[k], b[k], "{k}");
        }
        assert_eq!(b["ids_match"], json!(1.0));
    }
}
