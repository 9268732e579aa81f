//! `longtail bench suite`: every benchmark beside its peer, in one run, interleaved (the two sides
//! alternate which goes first, round by round) and repeated (medians), then the quality gate;
//! written as `bench.json`, `bench.md` and `ratios.png`.
//!
//! The peers run in this process tree: PyTorch eager twins of each model's step
//! (`benches/peers/twin.py`), the pandas pipeline (`benches/data_vs_pandas.py`), scikit-learn and
//! pandas for AUC and GAUC (`benches/auc_vs_sklearn.py`) and a PyTorch twin of the IDW sleep phase
//! (`benches/peers/density_twin.py`), with the torch venv's Python (`scripts/setup-libtorch`) and
//! the packages `scripts/setup-bench` installs. Both sides of a ratio get the same threads.

use crate::bench::report::{BenchReport, Figure, Machine, QualityRun};
use crate::bench::step::{StepBench, StepShape};
use crate::bench::twin::{TwinStyle, LEAN_TWINS};
use crate::error::{Result, TrainError};
use longtail_core::Registry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Which benchmarks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    /// What CI runs after the tests (a few minutes): four models' steps, ML-1M import + prepare,
    /// AUC/GAUC, the sleep phase, the gate.
    Ci,
    /// Everything: every registered model, one whole retrieval epoch on ML-1M users 1-2999,
    /// both datasets.
    Full,
}

impl FromStr for Subset {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ci" => Ok(Subset::Ci),
            "full" => Ok(Subset::Full),
            other => Err(TrainError::Config {
                key: "subset".into(),
                message: format!("'{other}' is not one of: ci, full"),
            }),
        }
    }
}

impl Subset {
    fn name(self) -> &'static str {
        match self {
            Subset::Ci => "ci",
            Subset::Full => "full",
        }
    }
}

/// The models whose steps the CI subset times: one per family (CTR, attention, multi-interest,
/// two-tower).
pub const CI_MODELS: [&str; 4] = ["basemodel", "din", "comirec-sa", "twotower"];

/// Steps timed per pair and side (after a warm-up of the same length).
const STEPS: usize = 10;
/// Step figures time this many interleaved pairs per round of the other figures...
const STEP_PAIRS_PER_ROUND: usize = 5;
/// ...and at least this many.
const MIN_STEP_PAIRS: usize = 15;

/// What to run and where things are.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    pub subset: Subset,
    pub rounds: usize,
    /// Only these models' steps (default: the subset's).
    pub models: Option<Vec<String>>,
    /// The gate's config; `None` skips the gate.
    pub gate: Option<PathBuf>,
    /// CPU threads (already pinned by the caller).
    pub threads: usize,
    /// A GPU to time the steps on as well (`gpu/step/<model>`), when the machine has one.
    pub gpu: Option<tch::Device>,
    /// The project checkout (peers live in `benches/`).
    pub repo: PathBuf,
    pub git_revision: Option<String>,
}

/// Runs the suite into `out` (a fresh folder per run is best; existing outputs of an earlier
/// suite are replaced).
pub fn run_suite(
    registry: &Registry,
    opts: &SuiteOptions,
    out: &Path,
    log: &dyn Fn(&str),
) -> Result<BenchReport> {
    let started = Instant::now();
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let models: Vec<String> = match &opts.models {
        Some(m) => m.clone(),
        None if opts.subset == Subset::Ci => CI_MODELS.iter().map(|s| s.to_string()).collect(),
        None => registry.names(),
    };
    for m in &models {
        registry.check(m)?;
    }
    let gate_cfgs = match &opts.gate {
        Some(g) => Some(crate::bench::gate::gate_configs(
            registry,
            &opts.repo.join(g),
            None,
        )?),
        None => None,
    };
    let work = out.join("work");
    std::fs::create_dir_all(&work).map_err(|e| crate::error::io(&work, e))?;

    let py = Peers::new(opts)?;
    let mut figures = Vec::new();
    // Every model against its eager twin, then the models with a lean twin against that one
    // too (`step-lean/*`, its own family: the kernels a PyTorch user tuning the step would use).
    let runs: Vec<(&String, TwinStyle)> = models
        .iter()
        .map(|m| (m, TwinStyle::Eager))
        .chain(
            models
                .iter()
                .filter(|m| LEAN_TWINS.contains(&m.as_str()))
                .map(|m| (m, TwinStyle::Lean)),
        )
        .collect();
    for &(m, style) in &runs {
        log(&format!("{}/{m}", styled("step", style)));
        figures.push(step_figure(
            registry,
            m,
            opts,
            &py,
            &work,
            tch::Device::Cpu,
            style,
        )?);
    }
    // On a machine with a GPU the steps are timed there too (untested on a GPU while this was
    // written: no device was lent to that session).
    if let Some(gpu) = opts.gpu {
        for &(m, style) in &runs {
            log(&format!("gpu/{}/{m}", styled("step", style)));
            figures.push(step_figure(registry, m, opts, &py, &work, gpu, style)?);
        }
    }
    if opts.subset == Subset::Full {
        for style in [TwinStyle::Eager, TwinStyle::Lean] {
            log(&format!(
                "{} (vs PyTorch {})",
                epoch_id(style),
                style.word()
            ));
            figures.push(epoch_figure(registry, opts, &py, &work, style)?);
        }
    }
    let datasets: &[&str] = match opts.subset {
        Subset::Ci => &["ml-1m"],
        Subset::Full => &crate::bench::workers::DATA_DATASETS,
    };
    for ds in datasets {
        log(&format!("data/{ds} (vs pandas)"));
        let dir = work.join("data").join(ds);
        let (ours_dir, peer_dir) = (dir.join("longtail"), dir.join("pandas"));
        let rounds = interleave(
            opts.rounds,
            || {
                // Its own process, so the peak RSS is this dataset's alone.
                run_json(
                    std::process::Command::new(
                        std::env::current_exe()
                            .map_err(|e| crate::error::io(Path::new("longtail"), e))?,
                    )
                    .args([
                        "bench",
                        "worker",
                        "data",
                        "--dataset",
                        ds,
                        "--repeats",
                        "1",
                        "--out",
                    ])
                    .arg(&ours_dir),
                    "longtail bench worker data",
                )
            },
            || {
                run_json(
                    py.script("benches/data_vs_pandas.py")
                        .args(["--dataset", ds, "--repeats", "3", "--out"])
                        .arg(&peer_dir),
                    "benches/data_vs_pandas.py",
                )
            },
        )?;
        figures.extend(paired_figures(&rounds, "pandas")?);
    }
    log("metrics/auc_10m, gauc_10m (vs scikit-learn, pandas)");
    let auc_dir = work.join("auc");
    crate::bench::workers::auc_inputs(&auc_dir, AUC_SAMPLES, AUC_USERS, 42)?;
    let rounds = interleave(
        opts.rounds,
        || crate::bench::workers::auc_worker(&auc_dir, 1),
        || {
            run_json(
                py.script("benches/auc_vs_sklearn.py")
                    .arg(&auc_dir)
                    .args(["--repeats", "1"]),
                "benches/auc_vs_sklearn.py",
            )
        },
    )?;
    let auc_figs = paired_figures(&rounds, "scikit-learn / pandas")?;
    for f in &auc_figs {
        if let (Some(a), Some(b)) = (f.extra.get("value"), f.extra.get("peer_value")) {
            if (a - b).abs() > 1e-9 {
                return Err(TrainError::Config {
                    key: "bench".into(),
                    message: format!("{}: longtail gives {a}, the peer {b}", f.id),
                });
            }
        }
    }
    figures.extend(auc_figs);
    log("density/sleep_phase (vs PyTorch eager)");
    let den = work.join("density");
    crate::bench::workers::density_inputs(&den, 3706, 16, 1)?;
    let threads = opts.threads.to_string();
    let rounds = interleave(
        opts.rounds,
        || crate::bench::workers::density_worker(&den, 2048, 3, tch::Device::Cpu),
        || {
            let out = den.join(crate::bench::workers::DENSITY_OUTPUT);
            run_json(
                py.script("benches/peers/density_twin.py")
                    .arg(&den)
                    .args([
                        "--repeats",
                        "1",
                        "--threads",
                        &threads,
                        "--tol",
                        "1e-5",
                        "--compare",
                    ])
                    .arg(&out),
                "benches/peers/density_twin.py",
            )
        },
    )?;
    figures.extend(paired_figures(&rounds, "pytorch-eager")?);
    let quality: Vec<QualityRun> = match &gate_cfgs {
        Some(cfgs) => crate::bench::gate::run_gate(registry, cfgs, &work.join("gate"), log)?,
        None => Vec::new(),
    };
    let rt = longtail_core::runtime::info();
    let gpu = opts.gpu.map(longtail_core::device::device_name);
    let report = BenchReport {
        longtail_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: opts.git_revision.clone(),
        subset: opts.subset.name().into(),
        rounds: opts.rounds,
        started_unix_s,
        wall_s: started.elapsed().as_secs_f64(),
        machine: Machine::this(opts.threads, gpu),
        tch: rt.tch.clone(),
        libtorch: rt.libtorch.clone(),
        peer_versions: py.versions(),
        figures,
        quality,
        family_spread: BTreeMap::new(),
        other_machines: Vec::new(),
    };
    write_outputs(&report, out)?;
    Ok(report)
}

/// Samples and users of the AUC / GAUC benchmark.
const AUC_SAMPLES: usize = 10_000_000;
const AUC_USERS: usize = 1_000_000;

/// Runs `rounds` rounds of both sides, alternating which goes first (so neither always gets the
/// warm caches or the quiet seconds); returns each side's JSON per round.
fn interleave(
    rounds: usize,
    mut ours: impl FnMut() -> Result<serde_json::Value>,
    mut peer: impl FnMut() -> Result<serde_json::Value>,
) -> Result<Vec<(serde_json::Value, serde_json::Value)>> {
    let mut out = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let (o, p) = if r % 2 == 0 {
            let o = ours()?;
            (o, peer()?)
        } else {
            let p = peer()?;
            (ours()?, p)
        };
        out.push((o, p));
    }
    Ok(out)
}

/// Figures from rounds of `{"figures": {id: {"ms": .., extra..}}}` on both sides: every id
/// longtail reported, with the peer's time where the peer reported the same id.
fn paired_figures(
    rounds: &[(serde_json::Value, serde_json::Value)],
    peer_name: &str,
) -> Result<Vec<Figure>> {
    let Some((first, _)) = rounds.first() else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = first["figures"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for id in ids {
        let side = |v: &serde_json::Value| v["figures"][&id].clone();
        // A round's time is its best repeat (both sides repeat the same number of times).
        let ms = |v: &serde_json::Value| side(v)["best_ms"].as_f64().or(side(v)["ms"].as_f64());
        let ours: Vec<f64> = rounds.iter().filter_map(|(o, _)| ms(o)).collect();
        let peer: Vec<f64> = rounds.iter().filter_map(|(_, p)| ms(p)).collect();
        let mut extra = BTreeMap::new();
        for (prefix, pick) in [("", 0usize), ("peer_", 1)] {
            let keys: Vec<String> = rounds
                .iter()
                .filter_map(|r| {
                    let v = if pick == 0 { &r.0 } else { &r.1 };
                    side(v)
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>())
                })
                .next()
                .unwrap_or_default();
            for k in keys.iter().filter(|k| *k != "ms" && *k != "best_ms") {
                let vals: Vec<f64> = rounds
                    .iter()
                    .filter_map(|r| side(if pick == 0 { &r.0 } else { &r.1 })[k].as_f64())
                    .collect();
                if !vals.is_empty() {
                    extra.insert(format!("{prefix}{k}"), crate::bench::report::median(&vals));
                }
            }
        }
        let peer_name = (!peer.is_empty()).then_some(peer_name);
        out.push(Figure::new(&id, peer_name, ours, peer, extra));
    }
    Ok(out)
}

/// Runs a command that prints one JSON object on stdout; its stderr tail names a failure.
fn run_json(cmd: &mut std::process::Command, what: &str) -> Result<serde_json::Value> {
    let o = cmd.output().map_err(|e| TrainError::Config {
        key: "bench".into(),
        message: format!("cannot start {what}: {e}"),
    })?;
    let fail = |why: String| {
        let err = String::from_utf8_lossy(&o.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        TrainError::Config {
            key: "bench".into(),
            message: format!(
                "{what} {why}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ),
        }
    };
    if !o.status.success() {
        return Err(fail(format!("failed ({})", o.status)));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    // The JSON object is the last thing a peer prints.
    let start = text
        .find('{')
        .ok_or_else(|| fail("printed no JSON".into()))?;
    serde_json::from_str(text[start..].trim()).map_err(|e| fail(format!("printed bad JSON ({e})")))
}

/// The peers' interpreter (the torch venv's, with the packages of `scripts/setup-bench`).
struct Peers {
    python: PathBuf,
    repo: PathBuf,
    threads: usize,
}

impl Peers {
    fn new(opts: &SuiteOptions) -> Result<Peers> {
        let python = std::env::var_os("VIRTUAL_ENV")
            .map(|v| PathBuf::from(v).join("bin").join("python"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("python3"));
        let setup = opts.repo.join("scripts/setup-bench");
        if !opts.repo.join("benches/peers").is_dir() || !setup.is_file() {
            return Err(TrainError::Config {
                key: "bench".into(),
                message: format!(
                    "{} is not a longtail checkout (no benches/peers or scripts/setup-bench): run                      the suite from the project folder",
                    opts.repo.display()
                ),
            });
        }
        let st = std::process::Command::new(&setup)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| crate::error::io(&setup, e))?;
        if !st.success() {
            return Err(TrainError::Config {
                key: "bench".into(),
                message: format!("{} failed ({st}): the peers cannot run", setup.display()),
            });
        }
        Ok(Peers {
            python,
            repo: opts.repo.clone(),
            threads: opts.threads,
        })
    }

    /// `python <repo>/<script>` with the pinned threads in its environment.
    fn script(&self, script: &str) -> std::process::Command {
        let mut c = std::process::Command::new(&self.python);
        c.arg(self.repo.join(script))
            .env("OMP_NUM_THREADS", self.threads.to_string())
            .env("MKL_NUM_THREADS", self.threads.to_string())
            .env("OPENBLAS_NUM_THREADS", self.threads.to_string());
        c
    }

    /// Versions of the interpreter and the peers' packages.
    fn versions(&self) -> BTreeMap<String, String> {
        let code = "import json, sys, importlib.metadata as m\n\
            v = {'python': sys.version.split()[0]}\n\
            for p in ['torch', 'numpy', 'pandas', 'scikit-learn', 'pyarrow']:\n\
            \x20   try: v[p] = m.version(p)\n\
            \x20   except Exception: pass\n\
            print(json.dumps(v))";
        std::process::Command::new(&self.python)
            .args(["-c", code])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<BTreeMap<String, String>>(&o.stdout).ok())
            .unwrap_or_default()
    }
}

/// The twin's first losses must equal longtail's to this relative difference: both run the same
/// float32 kernels of one libtorch on the same parameters and batches (0 is measured on CPU; a
/// deliberate change of one model's aggregation moved its first loss by 7.6e-6), so anything
/// larger means the twin is another model and its time says nothing.
const TWIN_TOLERANCE: f64 = 1e-6;

/// A figure family against a twin of `style`: `family` itself for the eager twin, and
/// `family-lean` (`step-lean`, `epoch-lean`) for the lean one.
fn styled(family: &str, style: TwinStyle) -> String {
    match style {
        TwinStyle::Eager => family.to_string(),
        TwinStyle::Lean => format!("{family}-lean"),
    }
}

/// The id of the epoch figure against a twin of `style`.
fn epoch_id(style: TwinStyle) -> String {
    format!("{}/twotower/ml-1m", styled("epoch", style))
}

/// The peer's name in a figure: `pytorch-eager` or `pytorch-lean`.
fn twin_peer(style: TwinStyle) -> String {
    format!("pytorch-{}", style.word())
}

/// `step/<model>` (`step-lean/<model>`): longtail's training step at fixed shapes beside its
/// PyTorch twin of `style`, which loads the same initial parameters and batches and must
/// reproduce the first losses.
fn step_figure(
    registry: &Registry,
    model: &str,
    opts: &SuiteOptions,
    py: &Peers,
    work: &Path,
    device: tch::Device,
    style: TwinStyle,
) -> Result<Figure> {
    let shape = StepShape::default();
    let mut ours = StepBench::new(registry, model, &shape, device, 1)?;
    let prefix = gpu_prefix(device);
    let family = styled("step", style);
    let dir = work.join("twins").join(format!("{prefix}{family}-{model}"));
    let what = format!("'{model}' ({} style)", style.word());
    let (mut twin, worst) = checked_twin(&ours, registry, opts, py, &dir, &what, style)?;
    // Warm-up on both sides (allocator, caches, lazy init), then many short interleaved pairs:
    // a step is milliseconds, so pairs are cheap, and the median of many paired ratios is what
    // holds still on a shared machine.
    let (o, p) = timed_pairs(
        &mut ours,
        &mut twin,
        (STEP_PAIRS_PER_ROUND * opts.rounds).max(MIN_STEP_PAIRS),
        STEPS,
        1.0,
    )?;
    let extra: BTreeMap<String, f64> = [
        ("batch_size".to_string(), shape.batch_size as f64),
        ("hist_len".to_string(), shape.hist_len as f64),
        ("twin_loss_rel_diff".to_string(), worst),
    ]
    .into();
    Ok(Figure::new(
        &format!("{prefix}{family}/{model}"),
        Some(twin_peer(style).as_str()),
        o,
        p,
        extra,
    ))
}

/// A [`STEPS`]-step warm-up on both sides, then `pairs` interleaved pairs of `steps` steps per
/// side; each side's milliseconds per step times `scale` (1: per step; the step count: per
/// epoch), pair by pair.
fn timed_pairs(
    ours: &mut StepBench,
    twin: &mut crate::bench::twin::Twin,
    pairs: usize,
    steps: usize,
    scale: f64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    ours.time(STEPS)?;
    twin.time(STEPS)?;
    let rounds = interleave(
        pairs,
        || Ok(serde_json::json!(ours.time(steps)?.0 * scale)),
        || Ok(serde_json::json!(twin.time(steps)?.0 * scale)),
    )?;
    Ok(rounds
        .iter()
        .map(|(o, p)| {
            (
                o.as_f64().unwrap_or(f64::NAN),
                p.as_f64().unwrap_or(f64::NAN),
            )
        })
        .unzip())
}

/// Starts the PyTorch twin of `ours` in `dir` and checks it is the same model: its first three
/// losses (total and every term) equal longtail's to [`TWIN_TOLERANCE`]. Returns the twin and
/// the largest relative difference; `what` names the benchmark in the error.
fn checked_twin(
    ours: &StepBench,
    registry: &Registry,
    opts: &SuiteOptions,
    py: &Peers,
    dir: &Path,
    what: &str,
    style: TwinStyle,
) -> Result<(crate::bench::twin::Twin, f64)> {
    crate::bench::twin::write_twin_inputs(ours, registry, dir, 3)?;
    let mut twin = crate::bench::twin::Twin::start_styled(
        &py.python,
        &opts.repo.join("benches/peers/twin.py"),
        dir,
        style,
    )?;
    let worst = twin
        .compare()?
        .iter()
        .map(|p| p.rel_diff())
        .fold(0.0, f64::max);
    if worst.is_nan() || worst > TWIN_TOLERANCE {
        return Err(TrainError::Config {
            key: "bench".into(),
            message: format!(
                "the PyTorch twin of {what} is not the same model: its first losses differ from \
                 longtail's by {worst:.2e} (relative; limit {TWIN_TOLERANCE:e})"
            ),
        });
    }
    Ok((twin, worst))
}

/// `epoch/twotower/ml-1m`: one whole training epoch of the two-tower model (M = 5 interests) on
/// ML-1M users 1-2999 with IDW's protocol (`configs/idw-ml-1m.toml`: the last 30 items in
/// non-overlapping chunks, batches of 512, Adam at lr 0.01), beside its PyTorch twin replaying the
/// same batches from the same parameters.
fn epoch_figure(
    registry: &Registry,
    opts: &SuiteOptions,
    py: &Peers,
    work: &Path,
    style: TwinStyle,
) -> Result<Figure> {
    // The protocol is the config's own `mur` block, so the benchmark follows the reproduction.
    let path = opts.repo.join("configs/idw-ml-1m.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::Config {
        key: "bench".into(),
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    let cfg = crate::experiment::load_experiment(&text, &path.display().to_string(), Some("mur"))?;
    let sc = cfg.sequences.clone().unwrap_or_default();
    let (rd, _) = crate::experiment::retrieval_data(&cfg, &sc, &work.join("epoch-data"))?;
    let mut ours = StepBench::retrieval_epoch(
        registry,
        &cfg.model.name,
        &cfg.model.params,
        &rd,
        cfg.train.batch_size,
        cfg.train.lr,
        tch::Device::Cpu,
        1,
    )?;
    let steps = ours.hosts.len();
    let dir = work.join("twins").join(epoch_id(style).replace('/', "-"));
    let what = format!("the epoch benchmark ({} style)", style.word());
    let (mut twin, worst) = checked_twin(&ours, registry, opts, py, &dir, &what, style)?;
    // A short warm-up per side (allocator, lazy init), then one whole epoch per side and round;
    // epoch time = steps x the mean ms per step.
    let (o, p) = timed_pairs(&mut ours, &mut twin, opts.rounds, steps, steps as f64)?;
    let extra: BTreeMap<String, f64> = [
        ("batches".to_string(), steps as f64),
        ("samples".to_string(), rd.seq.train.len() as f64),
        ("twin_loss_rel_diff".to_string(), worst),
    ]
    .into();
    Ok(Figure::new(
        &epoch_id(style),
        Some(twin_peer(style).as_str()),
        o,
        p,
        extra,
    ))
}

/// Figures measured on a GPU carry `gpu/` in front of their id (the CPU ones are the gated
/// baseline on every machine; a GPU machine adds these beside them).
fn gpu_prefix(device: tch::Device) -> &'static str {
    if matches!(device, tch::Device::Cuda(_)) {
        "gpu/"
    } else {
        ""
    }
}

/// `bench.json`, `bench.md` and the ratios plot.
fn write_outputs(report: &BenchReport, out: &Path) -> Result<()> {
    report.write(&out.join("bench.json"))?;
    longtail_data::atomic::write_bytes(&out.join("bench.md"), report.markdown().as_bytes())?;
    let bars: Vec<(String, f64, f64)> = report
        .figures
        .iter()
        .filter_map(|f| f.ratio.map(|r| (f.id.clone(), r, 0.0)))
        .collect();
    if !bars.is_empty() {
        let png = longtail_eval::plot_group_bars(
            &[("peer / longtail".to_string(), bars)],
            "Peer time / longtail time (above 1: longtail is faster)",
            "ratio",
        )?;
        longtail_data::atomic::write_bytes(&out.join("ratios.png"), &png)?;
    }
    Ok(())
}

/// docs/benchmarks.md: `template` (`benches/docs-template.md`) with its `<!-- GENERATED -->`
/// line saying where the page comes from and `<!-- RESULTS -->` replaced by the report's tables.
pub fn docs_page(template: &str, report: &BenchReport, source: &Path) -> Result<String> {
    if !template.contains(RESULTS_MARK) {
        return Err(TrainError::Config {
            key: "template".into(),
            message: format!("the docs template has no {RESULTS_MARK} line"),
        });
    }
    let note = format!(
        "{GENERATED_BY} {}` from benches/docs-template.md: edit those, not this page. -->",
        source.display()
    );
    Ok(template
        .replace(GENERATED_MARK, &note)
        .replace(RESULTS_MARK, report.markdown().trim_end()))
}

/// How the generated-by note of every page `bench docs` writes begins (so a later run may replace
/// the page and nothing else).
pub const GENERATED_BY: &str = "<!-- Generated by `longtail bench docs";
/// Where the docs template says which file generated the page.
pub const GENERATED_MARK: &str = "<!-- GENERATED -->";
/// Where the docs template takes the report's tables.
pub const RESULTS_MARK: &str = "<!-- RESULTS -->";
