//! Data pipeline benchmark: import + prepare of a real rating log, for comparison with pandas.
//!
//! Runs, in this process, `longtail_data::import` on the raw file (timed alone) and then the whole
//! `longtail_data::prepare` job (which imports again, labels, samples negatives, splits, computes
//! histories and groups, and writes Parquet), each `--repeats` times, and prints one JSON object
//! with the best and median wall times, input rows per second and the process's memory: `VmRSS`
//! before any work and `VmHWM` (peak resident set) at the end, from `/proc/self/status`. Run one
//! dataset per process so the peak is that dataset's. `benches/data_vs_pandas.py` does the same
//! work in pandas; `benches/run_data_benchmark.sh` runs both on both datasets.
//!
//! Usage: `data_bench --dataset ml-1m|movietweetings --out DIR [--repeats 3] [--sessions]
//!         [--seed 0]`
//!
//! The workload (the same on the pandas side):
//! - ml-1m: `ml-1m/ratings_users1-2999.dat.gz` (format `movielens-dat`), positive = rating > 3;
//!   MovieTweetings: `movietweetings-100k/ratings.dat` (format `movietweetings`, ratings 0-10),
//!   positive = rating > 6. Paths are under `$LONGTAIL_DATA_DIR` (default `../shared/data`).
//! - Dense ids by first appearance (0 = padding); other rows are not samples (and never negatives).
//! - 5 negatives per positive, uniform over the items the user never interacted with.
//! - Random split 70/10/20 of the positives (a positive's negatives follow it).
//! - `hist_end` = the user's positives strictly before the sample's time; user groups
//!   tail <= 2 < body <= 5 < head by train positives; item head = top 20% by train frequency.
//! - Output: `DIR/prepared` (`interactions.parquet`, vocabularies, `samples/*.parquet`, JSON).
//!
//! `--sessions` adds the HIM sessions (`[sessions]` with its defaults) to the prepare job and
//! writes `DIR/prepared-sessions` instead; pandas has no counterpart for it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use longtail_data::import::{import, ImportFormat};
use longtail_data::source::real_data_dir;
use longtail_data::PrepareConfig;

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

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`); None where there is no procfs.
fn proc_status_kb(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Wall times of `repeats` runs of `f`, and the last result.
fn timed<R>(repeats: usize, mut f: impl FnMut() -> Result<R>) -> Result<(Vec<f64>, R)> {
    let mut times = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        let t = Instant::now();
        let r = f()?;
        times.push(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    Ok((times, last.expect("repeats >= 1")))
}

/// `{best_s, median_s, times_s, rows_per_s}` (rows per second of the best time).
fn timing_json(times: &[f64], rows: usize) -> serde_json::Value {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    };
    serde_json::json!({
        "best_s": sorted[0],
        "median_s": median,
        "times_s": times,
        "rows_per_s": rows as f64 / sorted[0],
    })
}

/// The prepare job as TOML (kept in the report; the pandas script implements the same).
fn config_toml(ds: &Dataset, path: &Path, seed: u64, sessions: bool) -> Result<String> {
    // A JSON string is a valid TOML basic string.
    let path = serde_json::to_string(&path.display().to_string())?;
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

/// Total size in bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() -> Result<()> {
    let rss_start_kb = proc_status_kb("VmRSS");
    let mut dataset: Option<String> = None;
    let mut out: Option<PathBuf> = None;
    let mut repeats: usize = 3;
    let mut seed: u64 = 0;
    let mut sessions = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--dataset" => dataset = Some(val()?),
            "--out" => out = Some(PathBuf::from(val()?)),
            "--repeats" => repeats = val()?.parse().context("--repeats")?,
            "--seed" => seed = val()?.parse().context("--seed")?,
            "--sessions" => sessions = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: data_bench --dataset ml-1m|movietweetings --out DIR [--repeats 3] \
                     [--sessions] [--seed 0]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let dataset = dataset.context("--dataset ml-1m|movietweetings is required")?;
    let ds = DATASETS
        .iter()
        .find(|d| d.name == dataset)
        .with_context(|| format!("unknown dataset {dataset:?} (ml-1m or movietweetings)"))?;
    let out = out.context("--out DIR is required")?;
    if repeats == 0 {
        bail!("--repeats must be positive");
    }
    let input = real_data_dir().join(ds.path);
    if !input.is_file() {
        bail!(
            "{} not found (set LONGTAIL_DATA_DIR to the folder holding {})",
            input.display(),
            ds.path
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let format: ImportFormat = ds.format.parse()?;

    // Import alone: parse + dense ids + vocabularies, in memory.
    let (import_times, imported) = timed(repeats, || Ok(import(format, &input)?))?;
    let rows = imported.interactions.len();
    let users = imported.user_vocab.len() - 1;
    let items = imported.item_vocab.len() - 1;
    drop(imported);
    let rss_after_import_kb = proc_status_kb("VmHWM");

    // The whole prepare job (its own import included), written to disk.
    let toml = config_toml(ds, &input, seed, sessions)?;
    let cfg = PrepareConfig::from_toml(&toml, "data_bench config")?;
    let prepared = out.join(if sessions {
        "prepared-sessions"
    } else {
        "prepared"
    });
    // Start time of each stage `prepare` logs, in the last run (seconds from the call).
    let stages: RefCell<Vec<(String, Instant)>> = RefCell::new(Vec::new());
    let log = |stage: &str| {
        stages
            .borrow_mut()
            .push((stage.to_string(), Instant::now()))
    };
    let mut last_start = Instant::now();
    let (prepare_times, m) = timed(repeats, || {
        stages.borrow_mut().clear();
        last_start = Instant::now();
        Ok(longtail_data::prepare(&cfg, &prepared, &log)?)
    })?;
    let stage_starts: Vec<serde_json::Value> = stages
        .borrow()
        .iter()
        .map(|(s, t)| serde_json::json!([s, t.duration_since(last_start).as_secs_f64()]))
        .collect();

    let split = |s: &longtail_data::prepare::SplitCounts| {
        serde_json::json!({
            "samples": s.samples,
            "positives": s.positives,
            "user_groups": s.user_groups,
            "item_groups": s.item_groups,
        })
    };
    let positives = m.train.positives + m.valid.positives + m.test.positives;
    let samples = m.train.samples + m.valid.samples + m.test.samples;
    let report = serde_json::json!({
        "tool": "longtail-data",
        "version": env!("CARGO_PKG_VERSION"),
        "dataset": ds.name,
        "input": input.display().to_string(),
        "format": ds.format,
        "positive_threshold": ds.threshold,
        "neg_per_pos": 5,
        "split": "random 70/10/20",
        "sessions": sessions,
        "seed": seed,
        "rows": rows,
        "users": users,
        "items": items,
        "positives": positives,
        "samples": samples,
        "train": split(&m.train),
        "valid": split(&m.valid),
        "test": split(&m.test),
        "users_per_group": m.users_per_group,
        "head_items": m.head_items,
        "config": toml,
        "import": timing_json(&import_times, rows),
        "prepare": timing_json(&prepare_times, rows),
        "prepare_stage_starts_s": stage_starts,
        "timing": "wall clock of each of `repeats` runs; prepare includes its own import and \
                   writing the output folder",
        "repeats": repeats,
        "rayon_threads": rayon::current_num_threads(),
        "rss_start_kb": rss_start_kb,
        "peak_rss_after_import_kb": rss_after_import_kb,
        "peak_rss_kb": proc_status_kb("VmHWM"),
        "rss_end_kb": proc_status_kb("VmRSS"),
        "output_dir": prepared.display().to_string(),
        "output_bytes": dir_bytes(&prepared),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
