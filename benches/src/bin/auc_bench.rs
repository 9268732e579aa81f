//! AUC / GAUC benchmark, longtail's side: `longtail_train::bench::workers::auc_inputs` generates
//! `--n` (score, label, user) triples of `--users` users from `--seed` and writes them under `--out`
//! (`scores.f32`, `labels.f32`, `users.u32`, `meta.json`), unless `--reuse` finds them there;
//! `auc_worker` times `longtail_eval::auc` and `longtail_eval::gauc` on them and this prints its
//! `{"figures": {...}}` JSON. `benches/auc_vs_sklearn.py` reads the same files;
//! `benches/run_auc_benchmark.sh` runs both.
//!
//! Usage: `auc_bench --out DIR [--n 10000000] [--users 1000000] [--seed 42] [--repeats 3]
//!         [--reuse]`

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use longtail_train::bench::workers::{auc_inputs, auc_worker};

fn main() -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut n: usize = 10_000_000;
    let mut users: usize = 1_000_000;
    let mut seed: u64 = 42;
    let mut repeats: usize = 3;
    let mut reuse = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(val()?)),
            "--n" => n = val()?.parse().context("--n")?,
            "--users" => users = val()?.parse().context("--users")?,
            "--seed" => seed = val()?.parse().context("--seed")?,
            "--repeats" => repeats = val()?.parse().context("--repeats")?,
            "--reuse" => reuse = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: auc_bench --out DIR [--n 10000000] [--users 1000000] [--seed 42] \
                     [--repeats 3] [--reuse]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let out = out.context("--out DIR is required")?;
    if !(reuse && out.join("meta.json").is_file()) {
        auc_inputs(&out, n, users, seed)?;
    }
    let figures = auc_worker(&out, repeats)?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(())
}
