//! Data pipeline benchmark, longtail's side: `longtail_train::bench::workers::data_worker` (import
//! timed alone, then the whole prepare job, peak RSS) on one real dataset, printed as the shared
//! `{"figures": {...}}` JSON. `benches/data_vs_pandas.py` is the pandas side;
//! `benches/run_data_benchmark.sh` runs both on both datasets. Run one dataset per process so the
//! peak RSS is that dataset's.
//!
//! Usage: `data_bench --dataset ml-1m|movietweetings --out DIR [--repeats 3] [--sessions]
//!         [--seed 0]`

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use longtail_train::bench::workers::{data_worker_with, DataOptions};

fn main() -> Result<()> {
    let mut dataset: Option<String> = None;
    let mut out: Option<PathBuf> = None;
    let mut repeats: usize = 3;
    let mut opts = DataOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--dataset" => dataset = Some(val()?),
            "--out" => out = Some(PathBuf::from(val()?)),
            "--repeats" => repeats = val()?.parse().context("--repeats")?,
            "--seed" => opts.seed = val()?.parse().context("--seed")?,
            "--sessions" => opts.sessions = true,
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
    let out = out.context("--out DIR is required")?;
    let figures = data_worker_with(&dataset, &out, repeats, &opts)?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(())
}
