//! AUC / GAUC benchmark on large synthetic data, for comparison with scikit-learn and pandas.
//!
//! Generates `n` (score, label, user) triples deterministically from a seed, writes them as raw
//! little-endian arrays under `--out` (`scores.f32`, `labels.f32`, `users.u32`, plus `meta.json`),
//! times `longtail_eval::auc` and `longtail_eval::gauc` (best of `--repeats` wall times), and prints
//! one JSON object on stdout. `benches/auc_vs_sklearn.py` reads the same files;
//! `benches/run_auc_benchmark.sh` runs both.
//!
//! Usage: `auc_bench --out DIR [--n 10000000] [--users 1000000] [--seed 42] [--repeats 3]`
//!
//! Data model: each sample has a user `u` uniform in `0..users`, a label that is positive with
//! probability 0.25, and a latent `x = N(0,1) + 0.75 * label + b_u - 1`, where `b_u ~ N(0, 0.5^2)`
//! is a per-user offset (it lowers the global AUC but not the per-user AUC, so AUC and GAUC differ).
//! The score is `sigmoid(x)` rounded to 1e-4, so there are many ties. The random numbers come from
//! SplitMix64, written out here so the data never change with a dependency's version.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
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

struct Data {
    scores: Vec<f32>,
    labels: Vec<f32>,
    users: Vec<u32>,
}

fn generate(n: usize, users: u32, seed: u64) -> Data {
    let mut rng = SplitMix64(seed);
    let offsets: Vec<f64> = (0..users).map(|_| 0.5 * rng.normal()).collect();
    let mut d = Data {
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

fn write_raw<T: Copy>(path: &Path, v: &[T], to_le: impl Fn(T) -> [u8; 4]) -> Result<()> {
    let f = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    for &x in v {
        w.write_all(&to_le(x))?;
    }
    w.flush()?;
    Ok(())
}

/// Best (minimum) wall time over `repeats` runs, and the last result.
fn best_of<R>(repeats: usize, mut f: impl FnMut() -> Result<R>) -> Result<(f64, R)> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeats {
        let t = Instant::now();
        let r = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    Ok((best, last.expect("repeats >= 1")))
}

fn opt_f64(v: Option<f64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, serde_json::Value::from)
}

fn main() -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut n: usize = 10_000_000;
    let mut users: u32 = 1_000_000;
    let mut seed: u64 = 42;
    let mut repeats: usize = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(val()?)),
            "--n" => n = val()?.parse().context("--n")?,
            "--users" => users = val()?.parse().context("--users")?,
            "--seed" => seed = val()?.parse().context("--seed")?,
            "--repeats" => repeats = val()?.parse().context("--repeats")?,
            "-h" | "--help" => {
                eprintln!(
                    "usage: auc_bench --out DIR [--n 10000000] [--users 1000000] [--seed 42] \
                     [--repeats 3]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let out = out.context("--out DIR is required")?;
    if n == 0 || users == 0 || repeats == 0 {
        bail!("--n, --users and --repeats must be positive");
    }
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let t = Instant::now();
    let d = generate(n, users, seed);
    let gen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    write_raw(&out.join("scores.f32"), &d.scores, f32::to_le_bytes)?;
    write_raw(&out.join("labels.f32"), &d.labels, f32::to_le_bytes)?;
    write_raw(&out.join("users.u32"), &d.users, u32::to_le_bytes)?;
    let meta = serde_json::json!({
        "n": n, "users": users, "seed": seed,
        "files": {"scores": "scores.f32", "labels": "labels.f32", "users": "users.u32"},
        "dtypes": {"scores": "<f4", "labels": "<f4", "users": "<u4"},
    });
    fs::write(out.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
    let write_s = t.elapsed().as_secs_f64();

    let (auc_s, auc) = best_of(repeats, || Ok(longtail_eval::auc(&d.scores, &d.labels)?))?;
    let (gauc_s, g) = best_of(repeats, || {
        Ok(longtail_eval::gauc(&d.users, &d.scores, &d.labels)?)
    })?;

    let positives = d.labels.iter().filter(|&&l| l > 0.5).count();
    let report = serde_json::json!({
        "tool": "longtail-eval",
        "version": env!("CARGO_PKG_VERSION"),
        "n": n,
        "users": users,
        "seed": seed,
        "positives": positives,
        "auc": opt_f64(auc),
        "gauc": opt_f64(g.gauc),
        "gauc_users_used": g.users_used,
        "gauc_users_skipped": g.users_skipped,
        "gauc_samples_used": g.samples_used,
        "auc_s": auc_s,
        "gauc_s": gauc_s,
        "repeats": repeats,
        "timing": "best wall time of `repeats` runs, data already in memory",
        "rayon_threads": rayon::current_num_threads(),
        "generate_s": gen_s,
        "write_s": write_s,
        "data_dir": out.display().to_string(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
