//! The `longtail` command line. [`main_with`] runs it with any model registry and schedule
//! registry, so a crate outside this workspace that registers its own model or schedule gets
//! every subcommand without forking:
//!
//! ```no_run
//! let mut registry = longtail_models::builtin_registry().unwrap();
//! // my_model::register(&mut registry).unwrap();
//! let mut schedules = longtail_train::ScheduleRegistry::builtin();
//! // schedules.register(Box::new(my_schedule::Warmup)).unwrap();
//! std::process::exit(match longtail_cli::main_with(registry, schedules) { _ => 0 });
//! ```
//!
//! This crate only parses arguments and loads configs; the work is in the library crates.

mod bench;
mod commands;

use clap::{Parser, Subcommand};
use longtail_core::Registry;
use longtail_train::ScheduleRegistry;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "longtail",
    version,
    about = "Long-tailed and multi-interest user modeling: HIM, MFN, PIN, IDW and their baselines on one pipeline"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// CPU kernels libtorch may use: `native` (this CPU's fastest) or `avx2` (the same numbers
    /// across generations of one CPU family; docs/guarantees.md). Default: `avx2` for `bench`,
    /// else `native`.
    #[arg(long, global = true, env = "LONGTAIL_CPU_KERNELS")]
    pub cpu_kernels: Option<longtail_core::numerics::CpuKernels>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Folder that receives the run folder.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// auto | cpu | cuda | cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Overrides the config's seed (one seed drives libtorch and every host RNG).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides the number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a small long-tailed synthetic dataset, train BaseModel on it, and report AUC
    /// overall and for tail/body/head users (the built-in default job; under a minute on a CPU).
    Demo {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Train a model from a TOML experiment config (see configs/ and docs/configs.md).
    Train {
        /// The experiment config (TOML; unknown keys are errors).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A named block `[experiments.NAME]` of the config file (merged over its `[base]`);
        /// several as `a,b,c`, or `all` for every block in file order.
        #[arg(long)]
        experiment: Option<String>,
        /// Model to train; overrides the config's [model].name. Checked before anything else.
        #[arg(long)]
        model: Option<String>,
        /// Run every chosen experiment once per seed, e.g. `--seeds 1,2,3` (overrides --seed).
        #[arg(long, value_delimiter = ',', conflicts_with = "seed")]
        seeds: Vec<u64>,
        /// Skip a run whose folder already holds a finished run of exactly this config (the same
        /// `config_hash` in its run.json, overrides included), e.g. to complete a `--seeds`
        /// sweep that was interrupted; other runs train as usual.
        #[arg(long)]
        skip_finished: bool,
        /// Continue runs that were killed, from the checkpoint every epoch writes
        /// (`OUT/.<run>.resume/`): the result is bit-identical on the CPU to an uninterrupted
        /// run. Implies --skip-finished; a run with no checkpoint starts from the beginning.
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Write a synthetic interaction table (IDW Appendix A generator) as Parquet.
    Synth {
        /// Output Parquet file; OUT's stem + `.item_clusters.json` gets each item's ground-truth
        /// cluster (index = item id; entry 0 is padding).
        #[arg(long, alias = "output")]
        out: PathBuf,
        /// Optional TOML file with generator settings (keys of SynthConfig); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[command(flatten)]
        params: SynthArgs,
    },
    /// Import raw logs into the canonical Parquet table (lossless: every row kept; ids remapped to
    /// dense integers, vocabularies written beside the output).
    Import {
        /// movielens-dat | movielens-tsv | movielens-csv | movietweetings | amazon-csv |
        /// amazon-json | csv | parquet (the last two need --columns)
        #[arg(long)]
        format: String,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// Column mapping for csv/parquet: `user=COL,item=COL,timestamp=COL[,rating=COL]
        /// [,label=COL][,delimiter=tab|comma|...][,header=false]` (COL is a header name, or a
        /// 1-based column number without a header), or a JSON object.
        #[arg(long)]
        columns: Option<String>,
        /// Item side features to import beside the table (written to OUT.items.parquet).
        #[arg(long, requires = "items_format")]
        items: Option<PathBuf>,
        /// Format of --items: movielens-movies (movies.dat genres, ml-1m / MovieTweetings),
        /// movielens-100k (u.item genre flags), amazon-meta (metadata JSON lines).
        #[arg(long, requires = "items")]
        items_format: Option<String>,
        /// Equal-frequency price buckets for amazon-meta (0 = no price feature).
        #[arg(long, default_value_t = 10)]
        price_buckets: usize,
    },
    /// Filter, label, split and reorganize a dataset from a TOML config into a prepared folder
    /// (Parquet samples, sessions, sequences, feature map, prepare.json); see docs/data.md.
    Prepare {
        /// A prepare config ([data], [filters], [samples], [sessions], [sequences]); an
        /// experiment config works too (its [model] and [train] are ignored).
        #[arg(long)]
        config: PathBuf,
        /// The output folder (replaced if it is an earlier prepared folder).
        #[arg(long)]
        out: PathBuf,
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Compute metrics from a scores Parquet file (columns user, item, label, score; optional
    /// user_group, item_group, list) or from a run folder's test_scores.parquet; writes
    /// OUT/metrics.json with flat keys (auc, gauc, auc/user=tail, hr@20, ndcg@20/item=tail, ...).
    Eval {
        /// A scores Parquet file.
        #[arg(long, conflicts_with = "run", required_unless_present = "run")]
        scores: Option<PathBuf>,
        /// A run folder written by `train` or `demo` (reads its test_scores.parquet).
        #[arg(long)]
        run: Option<PathBuf>,
        /// Output folder (default with --run: RUN/eval).
        #[arg(long, required_unless_present = "run")]
        out: Option<PathBuf>,
        /// Cut-offs for ranking metrics (used when the table has a `list` column).
        #[arg(long, value_delimiter = ',', default_value = "5,20")]
        k: Vec<usize>,
    },
    /// Mean ± std over seeds, grouped by model, variant and dataset: OUT/report.md and
    /// OUT/report.json (rows {model, variant, dataset, metric, mean, std, n}), and per dataset
    /// PNG plots: AUC by user group per model, training loss per run.
    Report {
        runs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Base model for RelaImpr (MFN eq. 13): `MODEL` or `MODEL:VARIANT`.
        #[arg(long)]
        base: Option<String>,
        /// Output file stem: OUT/NAME.md and OUT/NAME.json (default "report").
        #[arg(long)]
        name: Option<String>,
        /// A markdown file put before the tables (e.g. a results page's discussion).
        #[arg(long)]
        preamble: Option<PathBuf>,
        /// Copy every run's run.json and metrics.json to OUT/NAME-runs/ and link them.
        #[arg(long)]
        copy_manifests: bool,
    },
    /// Time one IDW sleep phase (Scott bandwidth, chunked Gaussian-kernel density over every pair
    /// of items, normalisation, momentum update) on random item representations; prints JSON.
    BenchDensity {
        /// Catalogue size N (the kernel touches N² pairs, `chunk` rows at a time).
        #[arg(long, default_value_t = 3706)]
        items: i64,
        #[arg(long, default_value_t = 16)]
        dim: i64,
        #[arg(long, default_value_t = 2048)]
        chunk: i64,
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Benchmarks: one model's training step (JSON), or with a subcommand the suite measured
    /// beside its peers, the comparison CI gates on, the quality gate, and blessing a baseline.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        #[arg(long, default_value = "basemodel")]
        model: String,
        #[arg(long, default_value = "auto")]
        device: String,
        /// Training steps to time (after warm-up).
        #[arg(long, default_value_t = 200)]
        steps: usize,
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// List the registered models.
    Models,
    /// List the registered training schedules and the run kinds each trains.
    Schedules,
    /// Versions, the libtorch in use, and whether CUDA and a GPU are visible.
    Doctor,
}

/// The IDW paper's Table 3 parameters (plus long-tailed sequence lengths) as flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SynthArgs {
    /// |U|: number of users.
    #[arg(long)]
    pub users: Option<usize>,
    /// |I|: number of items (a multiple of --clusters).
    #[arg(long)]
    pub items: Option<usize>,
    /// C: number of interest clusters.
    #[arg(long)]
    pub clusters: Option<usize>,
    /// |Y_u|: interests per user.
    #[arg(long)]
    pub interests_per_user: Option<usize>,
    /// Power-law exponent of cluster popularity (interest skew).
    #[arg(long)]
    pub interest_skew: Option<f64>,
    /// Power-law exponent of items within a cluster.
    #[arg(long)]
    pub item_exponent: Option<f64>,
    /// alpha: stay in an interest cluster.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// gamma: switch to another interest cluster (volatility).
    #[arg(long)]
    pub gamma: Option<f64>,
    /// epsilon: stay in a non-interest cluster.
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// T: a fixed sequence length (sets min and max length).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Shortest and longest sequence when lengths are drawn from a power law.
    #[arg(long)]
    pub min_len: Option<usize>,
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Power-law exponent of sequence lengths (0 = uniform).
    #[arg(long)]
    pub length_exponent: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Every benchmark beside its peer in this run, interleaved and repeated: the training step
    /// of each model vs a PyTorch eager twin, import + prepare vs pandas, AUC/GAUC on 10M scores
    /// vs scikit-learn and pandas, an IDW sleep phase vs PyTorch, and the quality gate. Writes
    /// OUT/bench.json, OUT/bench.md and OUT/ratios.png.
    Suite {
        #[arg(long)]
        out: PathBuf,
        /// `ci` (a few models, ML-1M only, the gate: minutes) or `full` (every model, one whole
        /// retrieval epoch on ML-1M users 1-2999, both datasets).
        #[arg(long, default_value = "ci")]
        subset: String,
        /// Interleaved rounds per figure (medians are reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Only these models' steps (comma-separated; default: the subset's).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Skip the quality gate.
        #[arg(long)]
        no_gate: bool,
        /// The gate's config.
        #[arg(long, default_value = "benches/gate.toml")]
        gate: PathBuf,
        /// CPU threads for libtorch, rayon and the peers (pinned, so same-seed runs repeat and
        /// both sides of a ratio get the same). 1 keeps ratios steady on a shared machine, where
        /// two threads per side mostly wait for each other; the baseline is measured with it.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// `auto`: when a GPU is visible, also time every step there (`gpu/step/<model>`);
        /// `off`: CPU figures only. The CPU figures are always measured (they are the baseline).
        #[arg(long, default_value = "auto")]
        gpu: String,
    },
    /// Compares two bench.json files: every ratio and metric, old and new. Exit 1 when a peer
    /// ratio fell by more than --max-drop or a quality metric moved by more than --quality-tol.
    Compare {
        base: PathBuf,
        /// One suite run, or several of the same tree (CI's re-measure): each figure is then the
        /// run with the highest ratio, so a slowdown fails only when every run shows it.
        #[arg(required = true, num_args = 1..)]
        new: Vec<PathBuf>,
        #[arg(long, default_value_t = 0.15)]
        max_drop: f64,
        #[arg(long, default_value_t = 1e-4)]
        quality_tol: f64,
        /// How far a quality metric may move against a value blessed on another machine (a
        /// CPU model the baseline has no quality for; docs/benchmarks.md).
        #[arg(long, default_value_t = longtail_train::bench::report::CROSS_MACHINE_TOL)]
        cross_machine_tol: f64,
        /// Also write the comparison table (Markdown) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare only figures and quality runs whose id starts with this (e.g. `step/`).
        #[arg(long)]
        only: Option<String>,
    },
    /// Makes NEW the committed baseline (benches/baseline/bench.json) and prints what changed;
    /// with several NEW runs of one tree, each figure is the median run's and remembers how far
    /// the runs spread.
    Bless {
        /// One suite run, or several runs of the same tree: each figure is then the median
        /// run's, with the runs' spread recorded so `compare` gates it no tighter than that.
        #[arg(required = true, num_args = 1..)]
        new: Vec<PathBuf>,
        #[arg(long, default_value = "benches/baseline/bench.json")]
        baseline: PathBuf,
        /// Figures and quality runs (ids, comma-separated, e.g. `step/twotower,idw`; or `all`)
        /// whose numbers this change moves: what other machines blessed for them is dropped,
        /// not carried over (those machines then compare them with this machine's values, the
        /// quality at the cross-machine tolerance, until blessed there).
        #[arg(long, value_delimiter = ',')]
        stale: Vec<String>,
    },
    /// Runs the quality gate alone and prints its metrics (JSON).
    Gate {
        #[arg(long, default_value = "benches/gate.toml")]
        config: PathBuf,
        /// Only these runs (comma-separated block names).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// As in `bench suite`: the gate's expected values hold at this thread count.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// One measurement in its own process, printed as the suite's figures JSON (the suite runs
    /// the data pipeline this way, so each peak RSS is one dataset's).
    #[command(hide = true)]
    Worker {
        /// `data`.
        kind: String,
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        repeats: usize,
    },
    /// Writes docs/benchmarks.md from a bench.json and benches/docs-template.md.
    Docs {
        report: PathBuf,
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        #[arg(long, default_value = "benches/docs-template.md")]
        template: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Interactions, users, items, time range, user activeness group shares (HIM Table 1), item
    /// head/tail shares and popularity Gini of a canonical Parquet table (or a raw file with --format).
    Stats {
        file: PathBuf,
        /// Read FILE as a raw log in this import format instead of canonical Parquet.
        #[arg(long)]
        format: Option<String>,
        /// Column mapping for --format csv/parquet (as in `import --columns`).
        #[arg(long, requires = "format")]
        columns: Option<String>,
        /// Print JSON (keys include interactions, users, items).
        #[arg(long)]
        json: bool,
        /// Share of items counted as head (the most frequent ones).
        #[arg(long, default_value_t = 0.2)]
        head_item_share: f64,
        /// Write PLOTS/user_activeness.png and PLOTS/item_popularity.png (log-log rank plots).
        #[arg(long)]
        plots: Option<PathBuf>,
    },
}

/// Runs the CLI with the model `registry` and the training `schedules`; returns the process exit
/// code. Errors are one line on stderr,
/// with the paths the user gave (never a temporary name), and exit code 1. A panic anywhere (a
/// bug, or libtorch refusing something) is caught and reported the same way: never exit 101.
pub fn main_with(registry: Registry, schedules: ScheduleRegistry) -> ExitCode {
    let cli = Cli::parse();
    // Before any tensor work: libtorch reads these when it first dispatches a kernel.
    longtail_core::numerics::pin(cli.cpu_kernels.unwrap_or(match cli.command {
        Command::Bench { .. } => longtail_core::numerics::CpuKernels::Avx2,
        _ => longtail_core::numerics::CpuKernels::Native,
    }));
    // The default hook prints a multi-line panic report; keep only the message and place.
    let last_panic = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = last_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut slot) = seen.lock() {
            *slot = Some(format!("{msg}{at}"));
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commands::run(&registry, &schedules, cli.command)
    }));
    let message = match result {
        Ok(Ok(())) => return ExitCode::SUCCESS,
        Ok(Err(e)) => one_line(&e),
        Err(_) => {
            let what = last_panic
                .lock()
                .ok()
                .and_then(|s| s.clone())
                .unwrap_or_else(|| "unknown panic".into());
            // The reader of our output went away (`longtail data stats F | head`): stop quietly
            // with the shell's code for SIGPIPE, as other command-line tools do.
            if what.contains("failed printing to stdout") && what.contains("Broken pipe") {
                return ExitCode::from(141);
            }
            format!("internal error (please report it): {what}")
        }
    };
    let message = longtail_data::atomic::user_text(&message);
    eprintln!(
        "error: {}",
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    ExitCode::from(1)
}

/// The error and its causes on one line, skipping causes whose text the message already holds
/// (library errors often embed their source, e.g. "path: No such file or directory").
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(text.trim()) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(text.trim());
        }
    }
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}
