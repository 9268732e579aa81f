//! One experiment end to end: data -> CTR samples -> model from the registry -> training ->
//! test metrics -> a run folder with `run.json`, `metrics.json`, the feature map and the model.

use crate::error::{io, Result, TrainError};
use crate::evaluate::{evaluate_scores, write_metrics, TEST_SCORES};
use crate::fit::Journal;
use crate::manifest::{hash_json, DatasetInfo, RunManifest, ScheduleRecord};
use crate::resume::Checkpoints;
use crate::retrieval::{full_catalogue_metrics_with, sampled_metrics, IdwConfig, RetrievalData};
use crate::schedule::{
    ScheduleContext, ScheduleData, ScheduleOutcome, ScheduleRegistry, ScheduleSection,
};
use crate::trainer::TrainConfig;
use longtail_core::{
    checkpoint, device::device_name, runtime, seed::seed_everything, DeviceSpec, Registry,
};
use longtail_data::config_file::{merge, Assignment};
use longtail_data::{
    apply_filters, build_ctr_dataset, CtrConfig, FilterConfig, Interactions, ItemFeatures,
    SequenceConfig, SessionConfig, SynthConfig,
};
use longtail_eval::Metrics;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use longtail_data::source::{real_data_dir, DataSource};

/// `[model]`: a registry name and the model's own params table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub name: String,
    #[serde(default)]
    pub params: toml::Table,
}

/// `[pretrain]`: stage 1 of a two-stage pipeline. A vanilla model (e.g. `basemodel`) is trained
/// first on the same training split, the auxiliary CTR task; its checkpoint
/// (`<run>/stage1/model.safetensors`) is handed to the main model's builder, which takes what it
/// needs from it (MFN: the fixed behavior embeddings `item.weight`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainSection {
    pub model: ModelSection,
    /// Stage-1 training; absent = the main `[train]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainConfig>,
}

/// A whole experiment as one TOML document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub name: String,
    /// A label for ablations and options of one model (e.g. `wo-pretrain`); reports group by it.
    #[serde(default = "default_variant")]
    pub variant: String,
    #[serde(default = "default_dataset")]
    pub dataset: String,
    #[serde(default)]
    pub seed: u64,
    pub data: DataSource,
    /// Duplicate rule, minimum counts and k-core, applied to the interactions before samples are
    /// built; absent = no filtering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<FilterConfig>,
    #[serde(default)]
    pub samples: CtrConfig,
    /// HIM sessions carried by every batch (models that read them: `him`); absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionConfig>,
    pub model: ModelSection,
    #[serde(default)]
    pub train: TrainConfig,
    /// Stage 1 of a two-stage pipeline, trained before the main model; absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<PretrainSection>,
    /// Next-item sequences (IDW §4.1): present = a retrieval run (the model must be a retrieval
    /// model such as `twotower`), trained with in-batch softmax and evaluated by ranking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<SequenceConfig>,
    /// Iterative Density Weighting (retrieval runs): sleep/wake iterations after the first
    /// training, then user-tower calibration; absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idw: Option<IdwConfig>,
    /// PIN's schedule (CTR runs): stratified aggregated gradients, then the plugin stage;
    /// absent = plain joint training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<crate::stratified::PinConfig>,
    /// A registered schedule by name with its own keys (`[schedule] name = "..."`); absent = the
    /// built-in whose section is present (`[pretrain]`, `[pin]`, `[idw]`), else `plain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSection>,
}

/// BaseModel's params in the demo, spelled out so the run manifest shows them.
fn demo_params() -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("embedding_dim".into(), toml::Value::Integer(8));
    let hidden = [256, 128, 32].map(toml::Value::Integer).to_vec();
    t.insert("hidden".into(), toml::Value::Array(hidden));
    t
}

fn default_variant() -> String {
    "default".into()
}

fn default_dataset() -> String {
    "synthetic".into()
}

impl ExperimentConfig {
    /// The built-in default that `longtail demo` runs: a small long-tailed synthetic dataset,
    /// leave-last-out CTR samples with 4 negatives, BaseModel, 5 epochs of Adam at lr 5e-3.
    /// `configs/demo.toml` spells out the same job (a test keeps them equal).
    pub fn demo() -> Self {
        Self {
            name: "demo".into(),
            variant: default_variant(),
            dataset: "synthetic-demo".into(),
            seed: 42,
            data: DataSource::Synth {
                synth: SynthConfig {
                    users: 4000,
                    ..SynthConfig::default()
                },
            },
            filters: None,
            samples: CtrConfig::default(),
            sessions: None,
            model: ModelSection {
                name: "basemodel".into(),
                params: demo_params(),
            },
            train: TrainConfig {
                epochs: 5,
                lr: 5e-3,
                ..TrainConfig::default()
            },
            pretrain: None,
            sequences: None,
            idw: None,
            pin: None,
            schedule: None,
        }
    }

    /// Parses TOML; unknown keys are errors naming the key, the file and the line.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            // toml places errors inside [data.synth] at the [data] header without the key.
            match longtail_data::source::synth_section_error(text, origin) {
                Some((origin, message)) => TrainError::ConfigFile { origin, message },
                None => TrainError::ConfigFile {
                    origin: longtail_data::source::toml_error_origin(text, origin, &e),
                    message: e.message().trim().to_string(),
                },
            }
        })
    }
}

/// A config file holds either one experiment (top-level keys) or named blocks:
///
/// ```toml
/// [base]                      # optional: shared by every block (tables merge key by key)
/// dataset = "movietweetings"
/// [base.train]
/// epochs = 10
///
/// [experiments.him-k5]        # `--experiment him-k5`; `name` defaults to the block's name
/// [experiments.him-k5.model]
/// name = "him"
/// ```
pub fn load_experiment(
    text: &str,
    origin: &str,
    experiment: Option<&str>,
) -> Result<ExperimentConfig> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e: toml::de::Error| TrainError::ConfigFile {
            origin: longtail_data::source::toml_error_origin(text, origin, &e),
            message: e.message().trim().to_string(),
        })?;
    experiment_from_table(&table, Some(text), origin, experiment, &[])
}

/// Reads the config file at `path` (its `include`s resolved and relative data paths anchored,
/// [`longtail_data::config_file`]) and returns the chosen experiments, each with `sets`
/// (`--set KEY=VALUE`) applied over it: `selection` is `None` (the file's one experiment),
/// `Some("all")` (every block, in file order) or `Some("a,b")`. Every block is parsed before
/// anything runs, so a typo in the last block is found first.
pub fn load_experiments(
    path: &Path,
    selection: Option<&str>,
    sets: &[Assignment],
) -> Result<Vec<(String, ExperimentConfig)>> {
    let doc = longtail_data::config_file::read_config(path)?;
    let names: Vec<String> = match selection {
        Some("all") => {
            let names = block_names(&doc.table);
            if names.is_empty() {
                return Err(TrainError::Config {
                    key: "experiment".into(),
                    message: format!(
                        "--experiment all was given but {} has no [experiments.*] blocks",
                        doc.origin
                    ),
                });
            }
            names
        }
        Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        None => Vec::new(),
    };
    let text = doc.text.as_deref();
    if names.is_empty() {
        let cfg = experiment_from_table(&doc.table, text, &doc.origin, None, sets)?;
        return Ok(vec![(cfg.name.clone(), cfg)]);
    }
    names
        .iter()
        .map(|n| {
            experiment_from_table(&doc.table, text, &doc.origin, Some(n), sets)
                .map(|c| (n.clone(), c))
        })
        .collect()
}

/// One experiment of a config document (see [`load_experiment`]); `text` is the file's text when
/// it is the whole document (its errors then name lines), `sets` go over the chosen experiment.
fn experiment_from_table(
    table: &toml::Table,
    text: Option<&str>,
    origin: &str,
    experiment: Option<&str>,
    sets: &[Assignment],
) -> Result<ExperimentConfig> {
    let Some(blocks) = table.get("experiments") else {
        if let Some(name) = experiment {
            return Err(TrainError::Config {
                key: "experiment".into(),
                message: format!(
                    "--experiment {name} was given but {origin} has no [experiments.*] blocks"
                ),
            });
        }
        if let (Some(text), true) = (text, sets.is_empty()) {
            return ExperimentConfig::from_toml(text, origin);
        }
        let mut t = table.clone();
        for s in sets {
            s.apply(&mut t)?;
        }
        return typed(t, origin.to_string(), sets);
    };
    let blocks = blocks.as_table().ok_or_else(|| TrainError::ConfigFile {
        origin: origin.to_string(),
        message: "`experiments` must be a table of named blocks".into(),
    })?;
    if let Some(k) = table.keys().find(|k| *k != "experiments" && *k != "base") {
        return Err(TrainError::ConfigFile {
            origin: origin.to_string(),
            message: format!(
                "unknown top-level key `{k}` beside [experiments] (shared settings go in [base])"
            ),
        });
    }
    let names: Vec<&str> = blocks.keys().map(String::as_str).collect();
    let name = match experiment {
        Some(n) => n,
        None if names.len() == 1 => names[0],
        None => {
            return Err(TrainError::Config {
                key: "experiment".into(),
                message: format!(
                    "{origin} holds several experiments; choose one with --experiment: {}",
                    names.join(", ")
                ),
            })
        }
    };
    let block = blocks
        .get(name)
        .and_then(|b| b.as_table())
        .ok_or_else(|| TrainError::Config {
            key: "experiment".into(),
            message: format!(
                "no experiment '{name}' in {origin}; it has: {}",
                names.join(", ")
            ),
        })?;
    let mut merged = match table.get("base") {
        Some(toml::Value::Table(b)) => b.clone(),
        Some(_) => {
            return Err(TrainError::ConfigFile {
                origin: origin.to_string(),
                message: "`base` must be a table".into(),
            })
        }
        None => toml::Table::new(),
    };
    merge(&mut merged, block);
    merged
        .entry("name")
        .or_insert_with(|| toml::Value::String(name.to_string()));
    for s in sets {
        s.apply(&mut merged)?;
    }
    typed(merged, format!("{origin}, experiment '{name}'"), sets)
}

/// The typed experiment of a merged table; an error on a key that a `--set` wrote says so.
fn typed(t: toml::Table, origin: String, sets: &[Assignment]) -> Result<ExperimentConfig> {
    toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let mut message = e.message().trim().to_string();
            let named = |s: &&Assignment| {
                let last = s.key.rsplit('.').next().unwrap_or(&s.key);
                message.contains(&format!("`{last}`"))
            };
            if let Some(s) = sets.iter().find(named) {
                message = format!("{message} (from --set {})", s.key);
            }
            TrainError::ConfigFile { origin, message }
        })
}

/// Lists the named experiment blocks of a config file (empty for a single-experiment file).
pub fn experiment_names(text: &str) -> Vec<String> {
    toml::from_str::<toml::Table>(text)
        .map(|t| block_names(&t))
        .unwrap_or_default()
}

fn block_names(t: &toml::Table) -> Vec<String> {
    t.get("experiments")
        .and_then(|e| e.as_table())
        .map(|e| e.keys().cloned().collect())
        .unwrap_or_default()
}

/// Runs the model's own pre-training step, if it has one, on shuffled passes over the
/// training samples (a new shuffle per pass, for as long as the model pulls batches).
pub fn pretrain_model(
    model: &mut longtail_core::Instance,
    data: &longtail_data::CtrDataset,
    train: &TrainConfig,
    seed: u64,
    device: tch::Device,
) -> Result<Option<longtail_core::PretrainLog>> {
    let max_len = data
        .feature_map
        .get("hist")
        .and_then(|f| f.max_len)
        .unwrap_or(50);
    let logq = longtail_data::batch::item_logq(&data.item_freq);
    let mut passes = (0u64..).map(|pass| {
        let shuffle = longtail_data::seed::derive_seed(seed, &format!("pretrain/pass{pass}"));
        longtail_data::BatchIter::try_new(
            &data.train,
            &data.sequences,
            train.batch_size,
            max_len,
            Some(shuffle),
            Some(&logq),
        )
    });
    // The first pass is built here so a data error surfaces as an error, not mid-iteration.
    let first = passes
        .next()
        .map(|p| p.map_err(TrainError::from))
        .transpose()?;
    let mut batches = first
        .into_iter()
        .flatten()
        .chain(passes.flat_map(|p| p.into_iter().flatten()))
        .map(|h| longtail_core::DeviceBatch::from_host(&h, device));
    Ok(model.pretrain(&mut batches)?)
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub manifest: RunManifest,
}

/// Loads or generates the interactions ([`longtail_data::load_source`]); generated data are
/// written to `data_dir` as Parquet and read back, so the run exercises the same path as real
/// data.
pub fn load_interactions(src: &DataSource, seed: u64, data_dir: &Path) -> Result<Interactions> {
    Ok(load_interactions_and_items(src, seed, data_dir)?.0)
}

/// [`load_interactions`] with the source's item side features, when it has them.
pub fn load_interactions_and_items(
    src: &DataSource,
    seed: u64,
    data_dir: &Path,
) -> Result<(Interactions, Option<ItemFeatures>)> {
    let l = load_run_data(src, None, seed, data_dir)?;
    Ok((l.interactions, l.items))
}

/// A run's data after `[filters]`: interactions, item side features and (synthetic data) the
/// ground-truth item clusters, re-indexed with the filtered ids.
pub struct RunData {
    pub interactions: Interactions,
    pub items: Option<ItemFeatures>,
    pub item_cluster: Option<Vec<u32>>,
    pub filter_report: Option<longtail_data::FilterReport>,
    /// Raw user id per dense user id of `interactions` (entry 0 = padding), when the source has
    /// raw ids (imports, canonical tables with their vocabularies, prepared folders of them).
    pub user_vocab: Option<Vec<String>>,
    /// Raw item id per dense item id, likewise.
    pub item_vocab: Option<Vec<String>>,
}

/// Writes a run folder's `user_vocab.json` and `item_vocab.json` (raw id per dense id, the ids of
/// `test_scores.parquet`) when the run's data have raw ids.
fn write_vocabs(dir: &Path, user: Option<&[String]>, item: Option<&[String]>) -> Result<()> {
    for (name, v) in [("user_vocab.json", user), ("item_vocab.json", item)] {
        if let Some(v) = v {
            longtail_data::atomic::write_json(&dir.join(name), &v, true)?;
        }
    }
    Ok(())
}

/// A vocabulary: the raw id of each dense id (entry 0 is padding).
type Vocab = Vec<String>;

/// A prepared folder's user and item vocabularies (present when prepared from raw ids).
fn prepared_vocabs(dir: &Path) -> Result<(Option<Vocab>, Option<Vocab>)> {
    let read = |name: &str| {
        let p = dir.join(name);
        p.exists()
            .then(|| longtail_data::read_vocab(&p))
            .transpose()
    };
    Ok((read("user_vocab.json")?, read("item_vocab.json")?))
}

/// Loads (or generates) the source and applies the filters. Generated data are written to
/// `data_dir` as Parquet and read back, so the run exercises the same path as real data.
pub fn load_run_data(
    src: &DataSource,
    filters: Option<&FilterConfig>,
    seed: u64,
    data_dir: &Path,
) -> Result<RunData> {
    let loaded = longtail_data::load_source(src, seed)?;
    let mut inter = loaded.interactions;
    if matches!(src, DataSource::Synth { .. }) {
        std::fs::create_dir_all(data_dir).map_err(|e| io(data_dir, e))?;
        let path = data_dir.join("interactions.parquet");
        inter.write_parquet(&path)?;
        inter = Interactions::read_parquet(&path)?;
    }
    let (mut items, mut item_cluster) = (loaded.items, loaded.item_cluster);
    let (mut user_vocab, mut item_vocab) = (loaded.user_vocab, loaded.item_vocab);
    let mut filter_report = None;
    if let Some(f) = filters {
        f.validate()?;
        let filtered = apply_filters(&inter, f)?;
        inter = filtered.interactions;
        filter_report = Some(filtered.report);
        let remap = longtail_data::prepare::remap_vocab;
        user_vocab = user_vocab.map(|v| remap(&v, Some(&filtered.user_map)));
        item_vocab = item_vocab.map(|v| remap(&v, Some(&filtered.item_map)));
        items = items.map(|it| it.select(&filtered.item_map));
        item_cluster = item_cluster.map(|c| {
            filtered
                .item_map
                .iter()
                .map(|&old| c.get(old as usize).copied().unwrap_or(0))
                .collect()
        });
    }
    Ok(RunData {
        interactions: inter,
        items,
        item_cluster,
        filter_report,
        user_vocab,
        item_vocab,
    })
}

/// The run folder of `cfg` under `out_root`: `<name>-<model>-seed<seed>`.
pub fn run_dir(out_root: &Path, cfg: &ExperimentConfig) -> PathBuf {
    out_root.join(format!("{}-{}-seed{}", cfg.name, cfg.model.name, cfg.seed))
}

/// The run folder of `cfg` under `out_root` when it already holds a finished run of exactly this
/// config (its `run.json` reads and has the config hash `cfg` has), else `None`.
pub fn finished_run(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    out_root: &Path,
    cfg: &ExperimentConfig,
) -> Option<PathBuf> {
    let dir = run_dir(out_root, cfg);
    let text = std::fs::read(dir.join("run.json")).ok()?;
    let m: RunManifest = serde_json::from_slice(&text).ok()?;
    let want = config_record(registry, schedules, cfg).ok()?.1;
    (m.config_hash == want).then_some(dir)
}

/// `cfg` with every default filled in: the typed sections have theirs already; the model's
/// `[model.params]` (and `[pretrain.model.params]`) get the params type's, and a registered
/// schedule's keys its [`crate::Schedule::effective_params`]. What `longtail check` prints and
/// `run.json` records; equivalent configs (`{}` and the defaults spelled out) become equal.
pub fn effective_config(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    cfg: &ExperimentConfig,
) -> Result<ExperimentConfig> {
    let mut eff = cfg.clone();
    let filled = |m: &ModelSection| -> Result<toml::Table> {
        let info = registry.params_info(&m.name, &m.params)?;
        json_to_toml_table(&info.effective).ok_or_else(|| TrainError::Config {
            key: "model.params".into(),
            message: format!("model '{}': its params cannot be written as TOML", m.name),
        })
    };
    eff.model.params = crate::check::in_section("model.params", filled(&cfg.model))?;
    if let Some(p) = eff.pretrain.as_mut() {
        p.model.params = crate::check::in_section("pretrain.model.params", filled(&p.model))?;
    }
    if let Some(s) = eff.schedule.as_mut() {
        let schedule = schedules.get(&s.name)?;
        s.params = crate::check::in_section("schedule", schedule.effective_params(&s.params))?;
    }
    Ok(eff)
}

/// A JSON object as a TOML table (nulls, which TOML cannot hold, dropped: they are absent
/// options); `None` for a value TOML has no type for.
fn json_to_toml_table(v: &serde_json::Value) -> Option<toml::Table> {
    fn conv(v: &serde_json::Value) -> Option<Option<toml::Value>> {
        use serde_json::Value as J;
        Some(Some(match v {
            J::Null => return Some(None),
            J::Bool(b) => toml::Value::Boolean(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => toml::Value::Integer(i),
                None => toml::Value::Float(n.as_f64()?),
            },
            J::String(s) => toml::Value::String(s.clone()),
            J::Array(a) => toml::Value::Array(
                a.iter()
                    .map(|x| conv(x).and_then(|x| x))
                    .collect::<Option<_>>()?,
            ),
            J::Object(o) => {
                let mut t = toml::Table::new();
                for (k, x) in o {
                    if let Some(x) = conv(x)? {
                        t.insert(k.clone(), x);
                    }
                }
                toml::Value::Table(t)
            }
        }))
    }
    match conv(v)?? {
        toml::Value::Table(t) => Some(t),
        _ => None,
    }
}

/// The effective config ([`effective_config`]) as TOML text, as `longtail check` prints it.
pub fn effective_toml(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    cfg: &ExperimentConfig,
) -> Result<String> {
    let eff = effective_config(registry, schedules, cfg)?;
    toml::to_string(&eff).map_err(|e| TrainError::Config {
        key: "config".into(),
        message: format!("cannot write the effective config as TOML: {e}"),
    })
}

/// The effective `cfg` ([`effective_config`]) as the JSON value `run.json` records, and its
/// `config_hash`: the one place the hash is computed, so `--skip-finished` and `--resume` match
/// what runs record.
pub fn config_record(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    cfg: &ExperimentConfig,
) -> Result<(serde_json::Value, String)> {
    let eff = effective_config(registry, schedules, cfg)?;
    let v = serde_json::to_value(&eff).map_err(|e| TrainError::Config {
        key: "config".into(),
        message: e.to_string(),
    })?;
    let hash = hash_json(&v);
    Ok((v, hash))
}

/// Checks that `cfg`'s run folder may be written before anything runs: it must not be (or hold)
/// an input, and an existing folder must be an earlier run of the same dataset. A re-run replaces
/// it whole; a folder longtail did not write is never touched.
pub fn check_run_dir(out_root: &Path, cfg: &ExperimentConfig) -> Result<PathBuf> {
    if out_root.exists() && !out_root.is_dir() {
        return Err(TrainError::Config {
            key: "--out".into(),
            message: format!(
                "{} exists and is not a folder; run folders go inside a folder",
                out_root.display()
            ),
        });
    }
    let dir = run_dir(out_root, cfg);
    if let Ok(text) = std::fs::read_to_string(dir.join("run.json")) {
        // A run of another dataset with the same name (the same block in two dataset configs)
        // is never replaced.
        let other = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["dataset"]["name"].as_str().map(str::to_string));
        if let Some(other) = other.filter(|o| *o != cfg.dataset) {
            return Err(TrainError::Config {
                key: "out".into(),
                message: format!(
                    "{} holds a run on dataset '{other}', not '{}'; use another --out folder",
                    dir.display(),
                    cfg.dataset
                ),
            });
        }
    }
    let inputs = cfg.data.input_paths();
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let is_run = |p: &Path| {
        std::fs::read_to_string(p.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<RunManifest>(&t).ok())
            .is_some()
    };
    longtail_data::atomic::guard_output(
        &dir,
        &inputs,
        true,
        longtail_data::atomic::Replaceable::If(&is_run),
        "run folder",
    )?;
    Ok(dir)
}

/// Runs `cfg` and writes `out_root/<name>-<model>-seed<seed>/` ([`run_dir`]). The folder is
/// built under a temporary name and swapped in whole when the run succeeded: a failed or killed
/// run leaves an earlier run folder as it was and no half-written one. `command` and
/// `git_revision` go into the manifest.
/// [`run_experiment_with`] with the built-in schedules.
pub fn run_experiment(
    registry: &Registry,
    cfg: &ExperimentConfig,
    device: DeviceSpec,
    out_root: &Path,
    command: &str,
    git_revision: Option<&str>,
) -> Result<RunOutcome> {
    run_experiment_with(
        registry,
        &ScheduleRegistry::builtin(),
        cfg,
        device,
        out_root,
        command,
        git_revision,
        false,
    )
}

/// The whole job: checks, data, samples, the model trained by its schedule, test metrics, and
/// the run folder `out_root/<name>-<model>-seed<seed>` (staged, swapped in whole at the end).
/// Every epoch is checkpointed into `out_root/.<run>.resume/` ([`crate::resume`]); with
/// `resume`, a checkpoint of an interrupted run of this config there is continued (bit-identical
/// on the CPU), else the run starts over.
#[allow(clippy::too_many_arguments)]
pub fn run_experiment_with(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    cfg: &ExperimentConfig,
    device: DeviceSpec,
    out_root: &Path,
    command: &str,
    git_revision: Option<&str>,
    resume: bool,
) -> Result<RunOutcome> {
    // Fail on the cheap checks before touching data.
    crate::check::check_experiment_with(registry, schedules, cfg)?;
    let device = device.resolve()?;
    let dir = check_run_dir(out_root, cfg)?;
    let started = Instant::now();
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    seed_everything(cfg.seed);

    let ck_dir = crate::resume::resume_dir(&dir);
    let hash = config_record(registry, schedules, cfg)?.1;
    let checkpoints = match resume
        .then(|| Checkpoints::open(&ck_dir, &hash))
        .transpose()?
    {
        Some(Some(c)) => {
            tracing::info!(
                "resuming {} from its checkpoint ({} training phase(s) saved)",
                dir.display(),
                c.saved_calls()
            );
            c
        }
        found => {
            if found.is_none() && ck_dir.join("resume.json").exists() {
                tracing::info!(
                    "note: starting over; the checkpoint of an interrupted run in {} is replaced \
                     (pass --resume to continue it instead)",
                    ck_dir.display()
                );
            }
            Checkpoints::start(&ck_dir, &hash)?
        }
    };

    let staged = longtail_data::atomic::Staged::dir(&dir)?;
    // libtorch reports some failures (an allocation it cannot make, a shape it rejects) by a
    // panic inside tch; it becomes this run's error instead of an abort.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_in(
            registry,
            schedules,
            cfg,
            device,
            staged.path(),
            command,
            git_revision,
            started,
            started_unix_s,
            checkpoints,
        )
    }))
    .unwrap_or_else(|payload| {
        Err(TrainError::Libtorch {
            model: cfg.model.name.clone(),
            message: panic_message(payload.as_ref()),
        })
    });
    // On error `staged` is dropped: its temporary folder goes, `dir` is as it was. The
    // checkpoints go too: an error (unlike a kill) would only repeat on resuming.
    let mut outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&ck_dir);
            return Err(e);
        }
    };
    staged.commit()?;
    let _ = std::fs::remove_dir_all(&ck_dir);
    outcome.dir = dir;
    Ok(outcome)
}

/// The text of a panic payload (what `panic!` or tch's `unwrap` said).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    cfg: &ExperimentConfig,
    device: tch::Device,
    dir: &Path,
    command: &str,
    git_revision: Option<&str>,
    started: Instant,
    started_unix_s: u64,
    checkpoints: Checkpoints,
) -> Result<RunOutcome> {
    let dir = dir.to_path_buf();
    if let Some(sc) = &cfg.sequences {
        return run_retrieval_in(
            registry,
            schedules,
            cfg,
            sc,
            device,
            &dir,
            command,
            git_revision,
            started,
            started_unix_s,
            checkpoints,
        );
    }
    let (data, inter_hash, n_inter, filter_report) =
        if let DataSource::Prepared { path } = &cfg.data {
            // A prepared folder fixes the data: its samples, splits and groups are used as they are.
            let path = longtail_data::source::resolve_data_path(path);
            let (data, m) = longtail_data::load_prepared_ctr(&path)?;
            let (u, i) = prepared_vocabs(&path)?;
            write_vocabs(&dir, u.as_deref(), i.as_deref())?;
            (data, m.interactions_hash, m.interactions, m.filters)
        } else {
            let RunData {
                interactions: inter,
                items,
                filter_report,
                user_vocab,
                item_vocab,
                ..
            } = load_run_data(&cfg.data, cfg.filters.as_ref(), cfg.seed, &dir.join("data"))?;
            write_vocabs(&dir, user_vocab.as_deref(), item_vocab.as_deref())?;
            let mut data = build_ctr_dataset(&inter, &cfg.dataset, &cfg.samples, cfg.seed)?;
            if let Some(s) = &cfg.sessions {
                data.with_sessions(s)?;
            }
            if let Some(it) = items {
                data.with_items(it)?;
            }
            (data, inter.content_hash(), inter.len(), filter_report)
        };
    for w in &data.warnings {
        tracing::warn!("{w}");
    }
    data.feature_map.write_json(&dir.join("feature_map.json"))?;
    let journal = &Journal::create(&dir.join("epochs.jsonl"))?.with_checkpoints(checkpoints);

    let mut data = data;
    let (schedule, params) = schedules.resolve(cfg)?;
    let out = schedule.run(&mut ScheduleContext {
        models: registry,
        cfg,
        params: &params,
        data: ScheduleData::Ctr(&mut data),
        items: None,
        device,
        dir: &dir,
        journal,
    })?;
    let ScheduleOutcome {
        model,
        epochs,
        record,
        legacy,
    } = out;
    let schedule_record = ScheduleRecord {
        name: schedule.name().to_string(),
        record,
    };
    // The feature map is the truth for history length (a prepared folder fixes it).
    let max_len = data
        .feature_map
        .get("hist")
        .and_then(|f| f.max_len)
        .unwrap_or(cfg.samples.max_hist_len);
    // Scores of the test split are kept, so `longtail eval --run` and other tools can recompute
    // any metric without the model.
    let scores = crate::trainer::test_scores(
        &model,
        &data,
        max_len,
        cfg.train.eval_batch_size,
        device,
        cfg.train.progress.then_some("test"),
    )?;
    scores.write_parquet(&dir.join(TEST_SCORES))?;
    let metrics: Metrics = evaluate_scores(&scores, &[])?;
    checkpoint::save(&model, &dir.join("model.safetensors"))?;
    write_metrics(&dir.join("metrics.json"), &metrics)?;

    let dataset = DatasetInfo {
        name: cfg.dataset.clone(),
        interactions_hash: inter_hash,
        feature_map_hash: data.feature_map.hash.clone(),
        interactions: n_inter,
        filters: filter_report,
        train_samples: data.train.len(),
        valid_samples: data.valid.len(),
        test_samples: data.test.len(),
        cluster_shares: None,
    };
    let run = RunParts {
        registry,
        schedules,
        cfg,
        device,
        command,
        git_revision,
        started,
        started_unix_s,
    };
    let resumed = resumed_phases(journal);
    run.finish(&dir, dataset, epochs, metrics, |m| {
        m.stage1 = legacy.stage1;
        m.model_pretrain = legacy.model_pretrain;
        m.pin = legacy.pin;
        m.schedule = Some(schedule_record);
        m.resumed_phases = resumed;
    })
}

/// A retrieval run's data: the source loaded and filtered ([`load_run_data`], generated data
/// written under `data_dir`), each user's positives as next-item sequences (`sc`), frequencies,
/// groups and seen sets.
pub fn retrieval_data(
    cfg: &ExperimentConfig,
    sc: &SequenceConfig,
    data_dir: &Path,
) -> Result<(RetrievalData, RunData)> {
    if let DataSource::Prepared { path } = &cfg.data {
        // A prepared folder fixes the sequences: they are read as prepared, and the run's
        // [sequences] must be the folder's.
        let path = longtail_data::source::resolve_data_path(path);
        let p = longtail_data::load_prepared_sequences(&path)?;
        let prepared = p.manifest.config.sequences.as_ref();
        if prepared != Some(sc) {
            return Err(TrainError::Config {
                key: "sequences".into(),
                message: format!(
                    "differs from the prepared folder's (prepare.json: {}); a prepared folder \
                     fixes its sequences: use its [sequences] section or prepare again",
                    serde_json::to_string(&prepared).unwrap_or_default()
                ),
            });
        }
        let data = RetrievalData::new(
            &cfg.dataset,
            &p.positives,
            p.seq,
            p.num_items,
            p.manifest.config.samples.head_item_share,
            p.item_cluster.clone(),
        );
        let (user_vocab, item_vocab) = prepared_vocabs(&path)?;
        let rd = RunData {
            interactions: p.interactions,
            items: None,
            item_cluster: p.item_cluster,
            filter_report: p.manifest.filters.clone(),
            user_vocab,
            item_vocab,
        };
        return Ok((data, rd));
    }
    let rd = load_run_data(&cfg.data, cfg.filters.as_ref(), cfg.seed, data_dir)?;
    let inter = &rd.interactions;
    let (positives, _) = longtail_data::ctr::feedback_sequences(
        inter,
        cfg.samples.positive_threshold,
        &cfg.dataset,
    )?;
    let seq = longtail_data::build_sequences(&positives, inter.num_items(), sc, cfg.seed)?;
    let data = RetrievalData::new(
        &cfg.dataset,
        &positives,
        seq,
        inter.num_items(),
        cfg.samples.head_item_share,
        rd.item_cluster.clone(),
    );
    Ok((data, rd))
}

/// A retrieval run (`[sequences]`): sequence samples, the retrieval schedule (plain, weighted or
/// IDW), sampled and full-catalogue test metrics, and the run folder.
#[allow(clippy::too_many_arguments)]
fn run_retrieval_in(
    registry: &Registry,
    schedules: &ScheduleRegistry,
    cfg: &ExperimentConfig,
    sc: &SequenceConfig,
    device: tch::Device,
    dir: &Path,
    command: &str,
    git_revision: Option<&str>,
    started: Instant,
    started_unix_s: u64,
    checkpoints: Checkpoints,
) -> Result<RunOutcome> {
    let (data, rd) = retrieval_data(cfg, sc, &dir.join("data"))?;
    let inter = &rd.interactions;
    data.feature_map.write_json(&dir.join("feature_map.json"))?;
    write_vocabs(dir, rd.user_vocab.as_deref(), rd.item_vocab.as_deref())?;
    let journal = Journal::create(&dir.join("epochs.jsonl"))?.with_checkpoints(checkpoints);
    let (schedule, params) = schedules.resolve(cfg)?;
    let ScheduleOutcome {
        model,
        epochs,
        record,
        legacy,
    } = schedule.run(&mut ScheduleContext {
        models: registry,
        cfg,
        params: &params,
        data: ScheduleData::Retrieval(&data),
        items: rd.items.as_ref(),
        device,
        dir,
        journal: &journal,
    })?;
    let log = legacy.retrieval.unwrap_or_default();
    let (mut metrics, scores) = sampled_metrics(
        &model,
        &data,
        &data.seq.test,
        cfg.train.eval_batch_size,
        device,
        cfg.train.progress.then_some("test"),
    )?;
    // `full_*` removes the user's seen items from the candidates (IDW's protocol);
    // `full_catalogue_keep_seen` adds `full_all_*`, the same ranking with them left in (the
    // synthetic study's targets mostly repeat a seen item).
    let keep_seen = cfg.train.full_catalogue_keep_seen.then_some(false);
    for exclude_seen in std::iter::once(true).chain(keep_seen) {
        let label = if exclude_seen {
            "full-catalogue ranking"
        } else {
            "full-catalogue ranking, seen items kept"
        };
        let m = full_catalogue_metrics_with(
            &model,
            &data,
            &data.seq.test,
            cfg.train.eval_batch_size,
            4096,
            device,
            cfg.train.progress.then_some(label),
            exclude_seen,
        )?;
        metrics.extend(m.into_iter().map(|(k, v)| {
            if exclude_seen {
                (k, v)
            } else {
                (k.replacen("full_", "full_all_", 1), v)
            }
        }));
    }
    if let Some(s) = log.silhouette {
        metrics.insert("silhouette".into(), s);
    }
    scores.write_parquet(&dir.join(TEST_SCORES))?;
    checkpoint::save(&model, &dir.join("model.safetensors"))?;
    write_metrics(&dir.join("metrics.json"), &metrics)?;
    // `epochs` lists every phase's epochs in order (the loss plots read it).
    let dataset = DatasetInfo {
        name: cfg.dataset.clone(),
        interactions_hash: inter.content_hash(),
        feature_map_hash: data.feature_map.hash.clone(),
        interactions: inter.len(),
        filters: rd.filter_report.clone(),
        train_samples: data.seq.train.len(),
        valid_samples: data.seq.valid.len(),
        test_samples: data.seq.test.len(),
        cluster_shares: crate::retrieval::cluster_shares(&data),
    };
    let run = RunParts {
        registry,
        schedules,
        cfg,
        device,
        command,
        git_revision,
        started,
        started_unix_s,
    };
    let schedule_record = ScheduleRecord {
        name: schedule.name().to_string(),
        record,
    };
    let resumed = resumed_phases(&journal);
    run.finish(dir, dataset, epochs, metrics, |m| {
        m.retrieval = Some(log);
        m.schedule = Some(schedule_record);
        m.resumed_phases = resumed;
    })
}

/// The training phases a resumed run found checkpointed (`None` for a run from the start).
fn resumed_phases(journal: &Journal) -> Option<usize> {
    journal
        .checkpoints()
        .map(|c| c.saved_calls())
        .filter(|&n| n > 0)
}

/// What every run's manifest takes from the run itself.
struct RunParts<'a> {
    registry: &'a Registry,
    schedules: &'a ScheduleRegistry,
    cfg: &'a ExperimentConfig,
    device: tch::Device,
    command: &'a str,
    git_revision: Option<&'a str>,
    started: Instant,
    started_unix_s: u64,
}

impl RunParts<'_> {
    /// Writes `dir/run.json` from the run's parts; `extra` fills the kind-specific sections.
    fn finish(
        &self,
        dir: &Path,
        dataset: DatasetInfo,
        epochs: Vec<crate::trainer::EpochLog>,
        metrics: Metrics,
        extra: impl FnOnce(&mut RunManifest),
    ) -> Result<RunOutcome> {
        let cfg = self.cfg;
        let (config, config_hash) = config_record(self.registry, self.schedules, cfg)?;
        let mut manifest = RunManifest {
            longtail_version: env!("CARGO_PKG_VERSION").to_string(),
            git_revision: self.git_revision.map(str::to_string),
            command: self.command.to_string(),
            experiment: cfg.name.clone(),
            model: cfg.model.name.clone(),
            variant: cfg.variant.clone(),
            dataset,
            seed: cfg.seed,
            device: device_name(self.device),
            runtime: runtime::info(),
            config_hash,
            config,
            started_unix_s: self.started_unix_s,
            wall_s: self.started.elapsed().as_secs_f64(),
            epochs,
            metrics,
            stage1: None,
            model_pretrain: None,
            retrieval: None,
            pin: None,
            schedule: None,
            resumed_phases: None,
        };
        extra(&mut manifest);
        manifest.write(&dir.join("run.json"))?;
        Ok(RunOutcome {
            dir: dir.to_path_buf(),
            manifest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_round_trips_through_toml() {
        let demo = ExperimentConfig::demo();
        let text = toml::to_string(&demo).unwrap();
        assert_eq!(ExperimentConfig::from_toml(&text, "x").unwrap(), demo);
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = "name = \"a\"\nmodle = 3\n[data]\nkind = \"synth\"\n[model]\nname = \"m\"\n";
        let err = ExperimentConfig::from_toml(text, "f.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config f.toml, line 2:") && err.contains("modle"),
            "{err}"
        );
    }

    #[test]
    fn files_with_includes_and_sets_load_every_block() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/log.csv"), "u,i,t\n").unwrap();
        std::fs::write(
            d.path().join("data/shared.toml"),
            "dataset = \"mine\"\n[data]\nkind = \"raw\"\nformat = \"csv\"\npath = \"log.csv\"\n\
             columns = { user = \"u\", item = \"i\", timestamp = \"t\" }\n[train]\nepochs = 4\n",
        )
        .unwrap();
        let cfg = d.path().join("exp.toml");
        std::fs::write(
            &cfg,
            "include = [\"data/shared.toml\"]\n[experiments.a.model]\nname = \"din\"\n\
             [experiments.b.model]\nname = \"basemodel\"\n[experiments.b.train]\nepochs = 9\n",
        )
        .unwrap();
        let sets: Vec<Assignment> = ["train.lr=0.25", "model.params.embedding_dim=16"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let all = load_experiments(&cfg, Some("all"), &sets).unwrap();
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let (a, b) = (&all[0].1, &all[1].1);
        assert_eq!(
            (a.dataset.as_str(), a.train.epochs, b.train.epochs),
            ("mine", 4, 9)
        );
        assert_eq!(
            (a.train.lr, b.train.lr),
            (0.25, 0.25),
            "--set reaches every block"
        );
        assert_eq!(a.model.params["embedding_dim"].as_integer(), Some(16));
        match &a.data {
            DataSource::Raw { path, .. } => assert_eq!(path, &d.path().join("data/log.csv")),
            other => panic!("{other:?}"),
        }
        // A --set of a key the config does not have is the unknown-key error, and says so.
        let bad: Vec<Assignment> = vec!["train.lrr=1".parse().unwrap()];
        let e = load_experiments(&cfg, Some("b"), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("experiment 'b'") && e.contains("lrr") && e.contains("--set train.lrr"),
            "{e}"
        );
        // A single-experiment file keeps line numbers in its errors when nothing is set.
        let one = d.path().join("one.toml");
        std::fs::write(&one, "name = \"x\"\nmodle = 1\n").unwrap();
        let e = load_experiments(&one, None, &[]).unwrap_err().to_string();
        assert!(e.contains("one.toml, line 2"), "{e}");
        let e = load_experiments(&one, Some("all"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [experiments.*] blocks"), "{e}");
    }

    #[test]
    fn named_blocks_merge_over_base() {
        let text = r#"
[base]
dataset = "d"
[base.data]
kind = "synth"
[base.train]
epochs = 7
lr = 0.01
[experiments.a.model]
name = "m1"
[experiments.b]
seed = 3
[experiments.b.model]
name = "m2"
[experiments.b.train]
epochs = 2
"#;
        let b = load_experiment(text, "f.toml", Some("b")).unwrap();
        assert_eq!(
            (b.name.as_str(), b.seed, b.model.name.as_str()),
            ("b", 3, "m2")
        );
        assert_eq!(
            (b.train.epochs, b.train.lr, b.dataset.as_str()),
            (2, 0.01, "d")
        );
        let a = load_experiment(text, "f.toml", Some("a")).unwrap();
        assert_eq!((a.train.epochs, a.model.name.as_str()), (7, "m1"));
        let e = load_experiment(text, "f.toml", Some("c"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no experiment 'c'") && e.contains("a, b"), "{e}");
        let e = load_experiment(text, "f.toml", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--experiment") && e.contains("a, b"), "{e}");
        let typo = text.replace("epochs = 2", "epoch = 2");
        let e = load_experiment(&typo, "f.toml", Some("b"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("experiment 'b'") && e.contains("epoch"), "{e}");
        assert_eq!(experiment_names(text), vec!["a", "b"]);
    }

    #[test]
    fn bad_train_values_are_rejected() {
        let t = TrainConfig {
            epochs: 0,
            ..TrainConfig::default()
        };
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("train.epochs"));
        let t = TrainConfig {
            lr: -1.0,
            ..TrainConfig::default()
        };
        assert!(t.validate().unwrap_err().to_string().contains("train.lr"));
    }
}
