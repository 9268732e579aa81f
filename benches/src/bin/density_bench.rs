//! IDW sleep-phase benchmark, longtail's side: `longtail_train::bench::workers::density_inputs`
//! writes `--items` random item representations of dim `--dim` and long-tailed initial weights
//! under `--out` (`reps.f32`, `weights.f32`, `meta.json`), unless `--reuse` finds them there;
//! `density_worker` times one `longtail_core::density::sleep_phase` on them, writes the new
//! weights to `longtail_weights.f32` and this prints its `{"figures": {...}}` JSON.
//! `benches/peers/density_twin.py` is the PyTorch side on the same files;
//! `benches/run_density_benchmark.sh` runs both.
//!
//! Usage: `density_bench --out DIR [--items 3706] [--dim 16] [--chunk 2048] [--seed 1]
//!         [--repeats 3] [--device cpu|cuda|auto] [--reuse]`
//!
//! libtorch's CPU threads follow `OMP_NUM_THREADS` (as the twin's torch does): set it for both.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use longtail_train::bench::workers::{density_inputs, density_worker, device};

fn main() -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let (mut items, mut dim, mut chunk): (i64, i64, i64) = (3706, 16, 2048);
    let mut seed: u64 = 1;
    let mut repeats: usize = 3;
    let mut device_name = "cpu".to_string();
    let mut reuse = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(val()?)),
            "--items" => items = val()?.parse().context("--items")?,
            "--dim" => dim = val()?.parse().context("--dim")?,
            "--chunk" => chunk = val()?.parse().context("--chunk")?,
            "--seed" => seed = val()?.parse().context("--seed")?,
            "--repeats" => repeats = val()?.parse().context("--repeats")?,
            "--device" => device_name = val()?,
            "--reuse" => reuse = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: density_bench --out DIR [--items 3706] [--dim 16] [--chunk 2048] \
                     [--seed 1] [--repeats 3] [--device cpu|cuda|auto] [--reuse]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let out = out.context("--out DIR is required")?;
    if !(reuse && out.join("meta.json").is_file()) {
        density_inputs(&out, items, dim, seed)?;
    }
    let figures = density_worker(&out, chunk, repeats, device(&device_name)?)?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(())
}
