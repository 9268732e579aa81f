//! Everything about an experiment that can be checked without reading its data, checked before
//! any block of a config runs: the model's name and params (ranges included), every schedule
//! section, the loss-weight term names against the model's terms, the data step's numbers, and
//! section combinations that would otherwise be ignored. Errors name the full config key.

use crate::error::{Result, TrainError};
use crate::experiment::{DataSource, ExperimentConfig};
use longtail_core::{CoreError, Registry};
use longtail_data::DataError;

/// Puts `section.` in front of a config error's key (unless it is there already), so a key from a
/// section's own validator names its place in the experiment config.
pub(crate) fn in_section<T>(section: &str, r: Result<T>) -> Result<T> {
    let prefix = |key: String| {
        if key.starts_with(&format!("{section}.")) || key == section {
            key
        } else {
            format!("{section}.{key}")
        }
    };
    r.map_err(|e| match e {
        TrainError::Config { key, message } => TrainError::Config {
            key: prefix(key),
            message,
        },
        TrainError::Data(DataError::Config { key, message }) => TrainError::Config {
            key: prefix(key),
            message,
        },
        TrainError::Core(CoreError::Params {
            model,
            key,
            message,
        }) => TrainError::Config {
            key: prefix(key),
            message: format!("(model '{model}') {message}"),
        },
        other => other,
    })
}

/// The checks of one experiment that need no data (see the module docs). `run_experiment` runs
/// them too; the CLI runs them for every block before the first one trains.
pub fn check_experiment(registry: &Registry, cfg: &ExperimentConfig) -> Result<()> {
    check_experiment_with(registry, &crate::schedule::ScheduleRegistry::builtin(), cfg)
}

/// [`check_experiment`] with `schedules`: also the run's schedule (registered, accepting the
/// run's task, its own keys checked).
pub fn check_experiment_with(
    registry: &Registry,
    schedules: &crate::schedule::ScheduleRegistry,
    cfg: &ExperimentConfig,
) -> Result<()> {
    // The schedule first: it decides what kind of run this is (an `[idw]` section without
    // `[sequences]` is that mistake, not a CTR run with a retrieval metric).
    schedules.resolve(cfg)?;
    check_sections(registry, cfg)
}

/// The longest run name: folder names stay well under file-system limits with the model and seed.
const MAX_NAME_LEN: usize = 128;

/// A run's `name` is one folder-name component: `<name>-<model>-seed<seed>` under `--out`, so a
/// name with a path separator, `..`, a leading dot (a hidden folder) or control characters would
/// write elsewhere or out of sight.
fn check_name(name: &str) -> Result<()> {
    let bad = |message: String| {
        Err(TrainError::Config {
            key: "name".into(),
            message,
        })
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad(format!(
            "must be 1 to {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.+=@,".contains(*c)))
    {
        return bad(format!(
            "{c:?} is not allowed: a run name is a folder name of letters, digits and - _ . + = @ ,"
        ));
    }
    if name.starts_with('.') {
        return bad(format!(
            "'{name}' starts with '.': the run folder would be hidden"
        ));
    }
    Ok(())
}

/// `early_stopping_metric` names a metric the run's validation computes: CTR runs `auc`, `gauc`,
/// `logloss` (and `auc/user=<group>`, `auc/item=<group>`); retrieval runs `hr@K`, `ndcg@K`,
/// `mrr@K` for the run's cut-offs (and `/item=<group>`) and `auc`. A misspelling would otherwise
/// only fail after the first epoch (or, without patience, select epochs by nothing).
fn known_metric(section: &str, train: &crate::TrainConfig, retrieval: bool) -> Result<()> {
    let key = train.early_stopping_metric.trim();
    let (head, group) = match key.split_once('/') {
        Some((h, g)) => (h, Some(g)),
        None => (key, None),
    };
    let groups: &[&str] = if retrieval {
        &["item"]
    } else {
        &["user", "item"]
    };
    let group_ok = group.is_none_or(|g| match g.split_once('=') {
        Some((kind, value)) => groups.contains(&kind) && ["tail", "body", "head"].contains(&value),
        None => false,
    });
    let ks: Vec<String> = crate::retrieval::RETRIEVAL_KS
        .iter()
        .map(|k| k.to_string())
        .collect();
    let head_ok = if retrieval {
        head == "auc"
            || head.split_once('@').is_some_and(|(m, k)| {
                ["hr", "ndcg", "mrr"].contains(&m) && ks.iter().any(|x| x == k)
            })
    } else {
        ["auc", "gauc", "logloss"].contains(&head) && (group.is_none() || head == "auc")
    };
    if head_ok && group_ok {
        return Ok(());
    }
    let known = if retrieval {
        format!(
            "auc, hr@K, ndcg@K, mrr@K with K in {{{}}}, optionally /item=tail|head",
            ks.join(", ")
        )
    } else {
        "auc, gauc, logloss, auc/user=tail|body|head, auc/item=tail|head".to_string()
    };
    Err(TrainError::Config {
        key: format!("{section}.early_stopping_metric"),
        message: format!(
            "'{key}' is not a validation metric of {} runs (known: {known})",
            if retrieval { "retrieval" } else { "CTR" }
        ),
    })
}

/// Every `loss_weights` name in `section` is a loss term the model returns for its params.
fn known_loss_terms(
    section: &str,
    model: &str,
    train: &crate::TrainConfig,
    terms: &[String],
) -> Result<()> {
    match train.loss_weights.keys().find(|n| !terms.contains(n)) {
        Some(name) => Err(TrainError::Config {
            key: format!("{section}.loss_weights.{name}"),
            message: format!(
                "model '{model}' has no loss term '{name}' (its terms: {})",
                terms.join(", ")
            ),
        }),
        None => Ok(()),
    }
}

fn check_sections(registry: &Registry, cfg: &ExperimentConfig) -> Result<()> {
    check_name(&cfg.name)?;
    let terms = in_section(
        "model.params",
        registry
            .check_params(&cfg.model.name, &cfg.model.params)
            .map_err(TrainError::from),
    )?;
    in_section("train", cfg.train.validate())?;
    known_loss_terms("train", &cfg.model.name, &cfg.train, &terms)?;
    known_metric("train", &cfg.train, cfg.sequences.is_some())?;
    in_section("samples", cfg.samples.validate().map_err(Into::into))?;
    if let Some(f) = &cfg.filters {
        in_section("filters", f.validate().map_err(Into::into))?;
    }
    if let Some(s) = &cfg.sessions {
        in_section("sessions", s.validate().map_err(Into::into))?;
        if matches!(cfg.data, DataSource::Prepared { .. }) {
            // It would be silently ignored: prepared folders do not feed sessions to training.
            return Err(TrainError::Config {
                key: "sessions".into(),
                message: "a prepared folder's samples are trained without HIM sessions (its \
                          sessions/ are not read yet): train [sessions] runs from the raw, \
                          parquet or synth source"
                    .into(),
            });
        }
    }
    if let DataSource::Synth { synth } = &cfg.data {
        in_section("data.synth", synth.validate().map_err(Into::into))?;
    }
    if let Some(p) = &cfg.pretrain {
        registry.check(&p.model.name)?;
        let terms = in_section(
            "pretrain.model.params",
            registry
                .check_params(&p.model.name, &p.model.params)
                .map_err(TrainError::from),
        )?;
        if let Some(t) = &p.train {
            in_section("pretrain.train", t.validate())?;
            known_loss_terms("pretrain.train", &p.model.name, t, &terms)?;
            known_metric("pretrain.train", t, false)?;
        }
    }
    let combo = |key: &str, message: &str| {
        Err(TrainError::Config {
            key: key.into(),
            message: message.into(),
        })
    };
    // Which schedule sections a run kind accepts is the schedules' rule (`ScheduleRegistry::
    // resolve`: `[pin]`, `[pretrain]` train CTR runs, `[idw]` retrieval runs); here only what
    // belongs to no schedule.
    match &cfg.sequences {
        Some(sc) => {
            in_section("sequences", sc.validate().map_err(Into::into))?;
            if cfg.sessions.is_some() {
                return combo(
                    "sessions",
                    "HIM sessions feed CTR batches; retrieval runs ([sequences]) do not use them",
                );
            }
        }
        None => {
            if cfg.train.item_weighting != crate::retrieval::ItemWeighting::None {
                return combo(
                    "train.item_weighting",
                    "per-item loss weights apply to retrieval runs ([sequences]) only; CTR runs \
                     would ignore them",
                );
            }
            if cfg.train.full_catalogue_keep_seen {
                return combo(
                    "train.full_catalogue_keep_seen",
                    "full-catalogue ranking is for retrieval runs ([sequences]) only; CTR runs \
                     would ignore it",
                );
            }
        }
    }
    check_batch_memory(cfg)
}

/// Bytes per history position of one batch row: the `i64` id, the `f32` mask, and room for the
/// activations and gradients of a small model (32 floats each way). A lower-bound estimate.
pub(crate) const BYTES_PER_POSITION: f64 = 8.0 + 4.0 + 32.0 * 4.0 * 2.0;

/// One training batch (and one evaluation batch) must fit in memory: batches have a fixed shape,
/// so `batch_size` rows are allocated even when the data are smaller. Retrieval batches also hold
/// `[B, B]` in-batch logits with their softmax and gradient.
fn check_batch_memory(cfg: &ExperimentConfig) -> Result<()> {
    let (len, retrieval) = match &cfg.sequences {
        Some(sc) => (sc.max_len, true),
        None => (cfg.samples.max_hist_len, false),
    };
    let mut row = (len as f64 + 1.0) * BYTES_PER_POSITION;
    if let Some(sc) = &cfg.sessions {
        // `[B, S, n]` items and counts, with their embeddings' share of the activations.
        row += (sc.windows.len() * sc.top_n) as f64 * BYTES_PER_POSITION;
    }
    for (key, b) in [
        ("train.batch_size", cfg.train.batch_size),
        ("train.eval_batch_size", cfg.train.eval_batch_size),
    ] {
        let b = b as f64;
        let mut bytes = b * row;
        if retrieval && key == "train.batch_size" {
            bytes += b * b * 4.0 * 3.0;
        }
        // The row size comes from other keys: name them, so lowering the right one is obvious.
        let len_key = if retrieval {
            "sequences.max_len"
        } else {
            "samples.max_hist_len"
        };
        let sessions = match &cfg.sessions {
            Some(sc) => format!(
                " and {} x {} session slots (sessions.windows x sessions.top_n)",
                sc.windows.len(),
                sc.top_n
            ),
            None => String::new(),
        };
        longtail_data::memory::check_fits(
            bytes,
            key,
            &format!("one batch of {b:.0} rows with histories of {len} ({len_key}){sessions}"),
        )?;
    }
    Ok(())
}
