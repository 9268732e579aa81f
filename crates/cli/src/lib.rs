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

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
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
    /// Less on stderr: warnings and errors only (progress bars and results stay).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More on stderr: `-v` adds debug messages, `-vv` trace. `RUST_LOG` (e.g.
    /// `RUST_LOG=longtail_train=debug`) overrides both.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Folder that receives the run folder.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Where to train: `auto` (the first GPU if one is visible, else the CPU), `cpu`, `cuda`
    /// (GPU 0) or `cuda:N`.
    #[arg(long, default_value = "auto", value_parser = DeviceArg)]
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
        /// Override one config key in every chosen experiment (repeatable): `--set train.lr=0.01
        /// --set model.params.embedding_dim=16`. The value is read as TOML (`[64, 32]`, `true`),
        /// else as a string (`model.name=din`); the run's config hash includes it.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_assignment)]
        set: Vec<longtail_data::config_file::Assignment>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Validate a config without training: every chosen block's data paths, model params
    /// (ranges included), schedule sections, loss-term names and section combinations; prints
    /// each block's effective config (TOML, every default filled in) and its config hash.
    Check {
        /// The experiment config (TOML).
        config: PathBuf,
        /// Blocks to check (`a,b`; default: every block of the file).
        #[arg(long)]
        experiment: Option<String>,
        /// Overrides, as in `train --set` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_assignment)]
        set: Vec<longtail_data::config_file::Assignment>,
        /// Print only the summary line, not the effective configs.
        #[arg(long)]
        brief: bool,
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
        /// Generator seed: the same seed writes the same bytes.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[command(flatten)]
        params: SynthArgs,
    },
    /// Import raw logs into the canonical Parquet table (lossless: every row kept; ids remapped to
    /// dense integers, vocabularies written beside the output).
    Import {
        /// The raw log's format (`csv` and `parquet` need --columns).
        #[arg(long, value_parser = PossibleValuesParser::new(longtail_data::ImportFormat::names()))]
        format: String,
        /// The raw log (plain or gzip).
        #[arg(long)]
        input: PathBuf,
        /// The canonical Parquet table to write (vocabularies go beside it:
        /// OUT.user_vocab.json, OUT.item_vocab.json).
        #[arg(long)]
        output: PathBuf,
        /// Column mapping for csv/parquet: `user=COL,item=COL,timestamp=COL[,rating=COL]
        /// [,label=COL][,timestamp_unit=s|ms|us|ns][,timestamp_format=auto|unix|iso8601]
        /// [,delimiter=tab|comma|...][,header=false]` (COL is a header name, or a 1-based column
        /// number without a header), `order=file` instead of `timestamp=COL` for a log without
        /// timestamps (rows keep file order), or a JSON object; see docs/data.md.
        #[arg(long)]
        columns: Option<String>,
        /// Item side features to import beside the table (written to OUT.items.parquet).
        #[arg(long, requires = "items_format")]
        items: Option<PathBuf>,
        /// Format of --items: movielens-movies (movies.dat genres, ml-1m / MovieTweetings),
        /// movielens-100k (u.item genre flags), amazon-meta (metadata JSON lines), table (any
        /// CSV or Parquet with an id column and categorical columns; needs --items-columns).
        #[arg(long, requires = "items", value_parser = PossibleValuesParser::new(longtail_data::ItemSource::FORMAT_NAMES))]
        items_format: Option<String>,
        /// For `--items-format table`: `id=COL[,columns=A;B][,lists=COL:pipe][,delimiter=C]`
        /// (columns omitted = every other column), or a JSON object.
        #[arg(long, requires = "items")]
        items_columns: Option<String>,
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
        /// Run folders (or folders holding run folders) to summarise.
        runs: Vec<PathBuf>,
        /// Output folder for the report, its JSON and its plots.
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
        /// Width of the item representations.
        #[arg(long, default_value_t = 16)]
        dim: i64,
        /// Rows of the pairwise kernel computed at a time (bounds the memory of a phase).
        #[arg(long, default_value_t = 2048)]
        chunk: i64,
        /// `auto`, `cpu`, `cuda` or `cuda:N` (as in `train --device`).
        #[arg(long, default_value = "auto", value_parser = DeviceArg)]
        device: String,
    },
    /// Benchmarks: one model's training step (JSON), or with a subcommand the suite measured
    /// beside its peers, the comparison CI gates on, the quality gate, and blessing a baseline.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        /// The registered model to time (`longtail models` lists them).
        #[arg(long, default_value = "basemodel")]
        model: String,
        /// `auto`, `cpu`, `cuda` or `cuda:N` (as in `train --device`).
        #[arg(long, default_value = "auto", value_parser = DeviceArg)]
        device: String,
        /// Training steps to time (after warm-up).
        #[arg(long, default_value_t = 200)]
        steps: usize,
        /// Samples per training step.
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// List the registered models, or describe one: `longtail models din` prints its params.
    Models {
        /// A model to describe: every `[model.params]` key with its default, type and doc comment.
        name: Option<String>,
        /// Print the description as JSON (with NAME).
        #[arg(long, requires = "name")]
        json: bool,
    },
    /// Print a shell completion script: `longtail completions bash > ~/.local/share/bash-completion/completions/longtail`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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
    /// Shortest sequence when lengths are drawn from a power law.
    #[arg(long)]
    pub min_len: Option<usize>,
    /// Longest sequence when lengths are drawn from a power law.
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
        /// Output folder for bench.json, bench.md and ratios.png.
        #[arg(long)]
        out: PathBuf,
        /// `ci` (a few models, ML-1M only, the gate: minutes) or `full` (every model, one whole
        /// retrieval epoch on ML-1M users 1-2999, both datasets).
        #[arg(long, default_value = "ci", value_parser = ["ci", "full"])]
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
        #[arg(long, default_value = "auto", value_parser = ["auto", "off"])]
        gpu: String,
    },
    /// Compares two bench.json files: every ratio and metric, old and new. Exit 1 when a peer
    /// ratio fell by more than --max-drop or a quality metric moved by more than --quality-tol.
    Compare {
        /// The baseline bench.json (the committed one: benches/baseline/bench.json).
        base: PathBuf,
        /// One suite run, or several of the same tree (CI's re-measure): each figure is then the
        /// run with the highest ratio, so a slowdown fails only when every run shows it.
        #[arg(required = true, num_args = 1..)]
        new: Vec<PathBuf>,
        /// Largest allowed relative fall of a peer ratio (0.15 = 15%), unless the baseline's
        /// recorded spread for that figure is wider.
        #[arg(long, default_value_t = 0.15)]
        max_drop: f64,
        /// Largest allowed move of a quality metric against a value blessed on this machine.
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
        /// The baseline file to write.
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
        /// The gate's config.
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
        /// The dataset to measure (a name from the suite's dataset list).
        #[arg(long)]
        dataset: String,
        /// Scratch folder for the worker's outputs.
        #[arg(long)]
        out: PathBuf,
        /// Timed repeats (the median is reported).
        #[arg(long, default_value_t = 1)]
        repeats: usize,
    },
    /// Writes docs/benchmarks.md from a bench.json and benches/docs-template.md.
    Docs {
        /// A suite run's bench.json.
        report: PathBuf,
        /// The page to write.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        /// The page's template (figures are filled in by id).
        #[arg(long, default_value = "benches/docs-template.md")]
        template: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Interactions, users, items, time range, user activeness group shares (HIM Table 1), item
    /// head/tail shares and popularity Gini of a canonical Parquet table (or a raw file with --format).
    Stats {
        /// A canonical Parquet table (as `import` writes it), or a raw log with --format.
        file: PathBuf,
        /// Read FILE as a raw log in this import format instead of canonical Parquet.
        #[arg(long, value_parser = PossibleValuesParser::new(longtail_data::ImportFormat::names()))]
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

/// `--set KEY=VALUE` for clap (the error is clap's usual one, naming the argument).
fn parse_assignment(s: &str) -> Result<longtail_data::config_file::Assignment, String> {
    s.parse()
        .map_err(|e: longtail_data::DataError| e.to_string())
}

/// `--device`: checked when the arguments are parsed; `--help` and completions list the forms.
#[derive(Clone)]
struct DeviceArg;

impl TypedValueParser for DeviceArg {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let text = value.to_string_lossy();
        match text.parse::<longtail_core::DeviceSpec>() {
            Ok(_) => Ok(text.into_owned()),
            Err(e) => {
                let mut err = clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd);
                use clap::error::{ContextKind, ContextValue};
                if let Some(a) = arg {
                    err.insert(ContextKind::InvalidArg, ContextValue::String(a.to_string()));
                }
                err.insert(ContextKind::InvalidValue, ContextValue::String(text.into()));
                err.insert(
                    ContextKind::ValidValue,
                    ContextValue::Strings(vec![
                        "auto".into(),
                        "cpu".into(),
                        "cuda".into(),
                        "cuda:N".into(),
                    ]),
                );
                let _ = e;
                Err(err)
            }
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            [
                PossibleValue::new("auto").help("the first GPU if one is visible, else the CPU"),
                PossibleValue::new("cpu"),
                PossibleValue::new("cuda").help("GPU 0"),
                PossibleValue::new("cuda:N").help("GPU N, e.g. cuda:1"),
            ]
            .into_iter(),
        ))
    }
}

/// Runs the CLI with the model `registry` and the training `schedules`; returns the process exit
/// code. Errors are one line on stderr,
/// with the paths the user gave (never a temporary name), and exit code 1. A panic anywhere (a
/// bug, or libtorch refusing something) is caught and reported the same way: never exit 101.
pub fn main_with(registry: Registry, schedules: ScheduleRegistry) -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
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

/// Diagnostics go to stderr through `tracing`: info by default (what longtail always printed:
/// per-epoch lines, notes, "wrote ..."), warnings only with `-q`, debug with `-v`, trace with
/// `-vv`; `RUST_LOG` overrides. Lines look as before: `warning: ...`, a plain info line.
fn init_logging(quiet: bool, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(v.trim()),
        _ => EnvFilter::try_new(level),
    }
    .unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Plain)
        .try_init();
}

/// One line per event: the level as a word for anything but info, then the message.
struct Plain;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let prefix = match *event.metadata().level() {
            tracing::Level::ERROR => "error: ",
            tracing::Level::WARN => "warning: ",
            tracing::Level::INFO => "",
            tracing::Level::DEBUG => "debug: ",
            tracing::Level::TRACE => "trace: ",
        };
        w.write_str(prefix)?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
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
