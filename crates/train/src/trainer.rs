//! The `[train]` section ([`TrainConfig`]), the epoch log ([`EpochLog`]), and CTR scoring and
//! evaluation. The epoch loop itself is [`crate::fit::fit`].

use crate::error::{Result, TrainError};
use longtail_core::{DeviceBatch, Instance};
use longtail_data::{BatchIter, CtrDataset, CtrSamples, ITEM_GROUP_NAMES, USER_GROUP_NAMES};
use longtail_eval::{ctr_metrics, Metrics, ScoredSlice};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Device, Kind};

/// `[train]` section of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Weight of each named loss term (e.g. HIM: `group_hinge = 1e-4`); unnamed terms weigh 1.
    pub loss_weights: BTreeMap<String, f64>,
    /// Steps between reads of the loss for the progress bar (each read syncs the device).
    pub log_every: usize,
    pub eval_batch_size: usize,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Stop when the validation metric (`early_stopping_metric`; losses such as `logloss` lower
    /// is better, every other metric higher) has not improved for this many epochs, and keep the parameters of the best epoch; 0 = off: train
    /// every epoch and keep the last parameters [0].
    pub early_stopping_patience: usize,
    /// The validation metric early stopping watches ["auc"; retrieval runs: e.g. "ndcg@20"].
    pub early_stopping_metric: String,
    /// Retrieval runs: static per-item loss weights (`none`, or `frequency` = IDW eq. 5).
    pub item_weighting: crate::retrieval::ItemWeighting,
    /// Retrieval runs: also rank the full catalogue with the user's seen items left among the
    /// candidates (`full_all_*` metrics, beside `full_*` which removes them) [false].
    pub full_catalogue_keep_seen: bool,
    /// L2 penalty added to every gradient, as `torch.optim.Adam(weight_decay=...)` does [0].
    pub weight_decay: f64,
    /// Apply `weight_decay` to the weights instead of the gradients (AdamW, Loshchilov & Hutter
    /// 2019): every update first scales each parameter by `1 - lr * weight_decay` [false].
    pub decoupled_weight_decay: bool,
    /// When positive, the gradients are scaled before each update so that their global L2 norm
    /// is at most this (as `torch.nn.utils.clip_grad_norm_`); 0 = off [0].
    pub clip_grad_norm: f64,
    /// The learning rate over each training phase: `{ kind = "constant" }` (default), or a
    /// linear warm-up then cosine or step decay (see [`LrSchedule`]).
    pub lr_schedule: LrSchedule,
}

/// `[train] lr_schedule`: the learning rate of every optimizer step of a training phase, from
/// `lr` (the peak). The warm-up is linear: step `s` (0-based) of the first `warmup_steps` uses
/// `lr * (s + 1) / warmup_steps`. A resumed run continues the same curve (it is a function of
/// the epoch and the step within it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// `lr` at every step.
    #[default]
    Constant,
    /// Warm-up, then half a cosine from `lr` down to `min_lr` at the phase's last step (the
    /// phase's `epochs`, even when early stopping ends it sooner).
    Cosine {
        #[serde(default)]
        warmup_steps: usize,
        #[serde(default)]
        min_lr: f64,
    },
    /// Warm-up, then `lr * gamma^floor((epoch - 1) / every_epochs)`.
    Step {
        #[serde(default)]
        warmup_steps: usize,
        every_epochs: usize,
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
}

fn default_gamma() -> f64 {
    0.1
}

impl LrSchedule {
    /// The learning rate of step `step` (0-based over the phase) in `epoch` (1-based) of a phase
    /// of `total_steps` steps, for the peak rate `lr`.
    pub fn lr_at(&self, lr: f64, step: usize, epoch: usize, total_steps: usize) -> f64 {
        let warm = |w: usize| (w > 0 && step < w).then(|| lr * (step + 1) as f64 / w as f64);
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine {
                warmup_steps,
                min_lr,
            } => warm(warmup_steps).unwrap_or_else(|| {
                let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                let t = ((step - warmup_steps.min(step)) as f64 / span).min(1.0);
                min_lr + (lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }),
            LrSchedule::Step {
                warmup_steps,
                every_epochs,
                gamma,
            } => warm(warmup_steps).unwrap_or_else(|| {
                lr * gamma.powi(((epoch.max(1) - 1) / every_epochs.max(1)) as i32)
            }),
        }
    }

    fn validate(&self, lr: f64) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(TrainError::Config {
                key: format!("train.lr_schedule.{key}"),
                message,
            })
        };
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Cosine { min_lr, .. } if !(min_lr >= 0.0 && min_lr <= lr) => bad(
                "min_lr",
                format!("must be in [0, lr = {lr:e}], got {min_lr:e}"),
            ),
            LrSchedule::Step {
                every_epochs: 0, ..
            } => bad("every_epochs", "must be at least 1".into()),
            LrSchedule::Step { gamma, .. } if !(gamma > 0.0 && gamma <= 1.0) => {
                bad("gamma", format!("must be in (0, 1], got {gamma}"))
            }
            _ => Ok(()),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 256,
            lr: 1e-3,
            loss_weights: BTreeMap::new(),
            log_every: 50,
            eval_batch_size: 1024,
            progress: true,
            early_stopping_patience: 0,
            early_stopping_metric: "auc".into(),
            item_weighting: Default::default(),
            full_catalogue_keep_seen: false,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            clip_grad_norm: 0.0,
            lr_schedule: LrSchedule::Constant,
        }
    }
}

/// The largest learning rate accepted: far above any useful Adam step, low enough that a typo
/// such as `1e300` is caught before it turns every parameter into inf.
pub const MAX_LR: f64 = 100.0;

/// The most epochs a phase may ask for: more is a typo (a million epochs of the smallest data set
/// run for days), and the epoch log is sized by it.
pub const MAX_EPOCHS: usize = 1_000_000;

impl TrainConfig {
    /// Range checks of every value; errors name the key (`train.*`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(TrainError::Config {
                key: format!("train.{key}"),
                message,
            })
        };
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad(
                "epochs",
                format!("must be in [1, {MAX_EPOCHS}], got {}", self.epochs),
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if self.eval_batch_size == 0 {
            return bad("eval_batch_size", "must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr <= MAX_LR) {
            return bad("lr", format!("must be in (0, {MAX_LR}], got {:e}", self.lr));
        }
        if self.log_every == 0 {
            return bad("log_every", "must be at least 1".into());
        }
        for (name, &w) in &self.loss_weights {
            if !(w.is_finite() && w >= 0.0) {
                return bad(
                    &format!("loss_weights.{name}"),
                    format!("must be a finite number >= 0, got {w}"),
                );
            }
        }
        if !(self.weight_decay.is_finite() && (0.0..=1e3).contains(&self.weight_decay)) {
            return bad(
                "weight_decay",
                format!("must be in [0, 1000], got {}", self.weight_decay),
            );
        }
        if self.decoupled_weight_decay && self.lr * self.weight_decay >= 1.0 {
            return bad(
                "weight_decay",
                format!(
                    "lr * weight_decay must be < 1 with decoupled_weight_decay (each step scales \
                     the weights by 1 - lr * weight_decay), got {}",
                    self.lr * self.weight_decay
                ),
            );
        }
        if !(self.clip_grad_norm.is_finite() && self.clip_grad_norm >= 0.0) {
            return bad(
                "clip_grad_norm",
                format!("must be a finite number >= 0, got {}", self.clip_grad_norm),
            );
        }
        self.lr_schedule.validate(self.lr)?;
        if self.early_stopping_patience > 0 && self.early_stopping_metric.trim().is_empty() {
            return bad(
                "early_stopping_metric",
                "must name a validation metric".into(),
            );
        }
        Ok(())
    }
}

/// One epoch of the run log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    /// Mean of each unweighted loss term over the epoch's real samples, plus `total` (weighted).
    pub losses: BTreeMap<String, f64>,
    pub train_wall_s: f64,
    pub eval_wall_s: f64,
    pub samples_per_s: f64,
    /// Whether these parameters are the ones kept (the best epoch under early stopping, else
    /// the last).
    #[serde(default)]
    pub kept: bool,
    /// Validation metrics after the epoch (flat keys, as in metrics.json).
    pub valid: Metrics,
}

/// Scores every sample in order (eval mode, no gradients); padding rows are dropped. With
/// `progress = Some(label)`, a progress bar with ETA named `label` counts the batches.
pub fn score_samples(
    model: &Instance,
    samples: &CtrSamples,
    data: &CtrDataset,
    max_len: usize,
    batch_size: usize,
    device: Device,
    progress: Option<&str>,
) -> Result<Vec<f32>> {
    let mut iter = BatchIter::try_new(samples, &data.sequences, batch_size, max_len, None, None)?;
    if let Some(s) = &data.sessions {
        iter = iter.with_sessions(s, &data.negative_feedback);
    }
    let pb = crate::fit::progress_bar(
        progress.is_some(),
        iter.num_batches() as u64,
        progress.unwrap_or(""),
    )
    .with_finish(indicatif::ProgressFinish::AndClear);
    let mut out = Vec::with_capacity(samples.len());
    for host in pb.wrap_iter(iter) {
        let batch = DeviceBatch::from_host(&host, device)?;
        let s = tch::no_grad(|| model.score(&batch))?;
        let v = Vec::<f32>::try_from(s.to_kind(Kind::Float).to_device(Device::Cpu))?;
        out.extend_from_slice(&v[..host.valid]);
    }
    Ok(out)
}

/// The scored test split of `data` as a scores table (`user`, `item`, `label`, `score`, groups):
/// what runs keep as `test_scores.parquet`.
pub fn test_scores(
    model: &Instance,
    data: &CtrDataset,
    max_len: usize,
    batch_size: usize,
    device: Device,
    progress: Option<&str>,
) -> Result<longtail_data::ScoresTable> {
    let t = &data.test;
    let score = score_samples(model, t, data, max_len, batch_size, device, progress)?;
    Ok(longtail_data::ScoresTable {
        user: t.user.clone(),
        item: t.item.clone(),
        label: t.label.clone(),
        score,
        user_group: Some(t.user_group.clone()),
        item_group: Some(t.item_group.clone()),
        list: None,
    })
}

/// AUC, logloss, GAUC and per user/item group AUC of `model` on a split.
pub fn evaluate_ctr(
    model: &Instance,
    samples: &CtrSamples,
    data: &CtrDataset,
    max_len: usize,
    batch_size: usize,
    device: Device,
    progress: Option<&str>,
) -> Result<Metrics> {
    let scores = score_samples(model, samples, data, max_len, batch_size, device, progress)?;
    let slice = ScoredSlice::new(&scores, &samples.label)
        .with_users(&samples.user)
        .with_user_group(&samples.user_group)
        .with_item_group(&samples.item_group);
    Ok(ctr_metrics(&slice, &USER_GROUP_NAMES, &ITEM_GROUP_NAMES)?)
}

#[cfg(test)]
mod lr_tests {
    use super::*;

    #[test]
    fn warm_up_then_cosine_or_step() {
        let c = LrSchedule::Cosine {
            warmup_steps: 4,
            min_lr: 0.1,
        };
        let at = |s: usize, e: usize| c.lr_at(1.0, s, e, 14);
        assert_eq!([at(0, 1), at(1, 1), at(3, 1)], [0.25, 0.5, 1.0]);
        assert!(
            (at(4, 1) - 1.0).abs() < 1e-12,
            "the peak right after the warm-up"
        );
        assert!(
            (at(9, 2) - 0.55).abs() < 1e-12,
            "half-way down: (1 + 0.1) / 2"
        );
        assert!((at(14, 3) - 0.1).abs() < 1e-12 && (at(99, 9) - 0.1).abs() < 1e-12);
        let s = LrSchedule::Step {
            warmup_steps: 0,
            every_epochs: 2,
            gamma: 0.5,
        };
        let lrs: Vec<f64> = (1..=5).map(|e| s.lr_at(0.8, 7, e, 100)).collect();
        assert_eq!(lrs, [0.8, 0.8, 0.4, 0.4, 0.2]);
        assert_eq!(LrSchedule::Constant.lr_at(0.3, 5, 2, 10), 0.3);
    }

    #[test]
    fn optimizer_settings_are_range_checked_naming_the_key() {
        let err = |f: &dyn Fn(&mut TrainConfig)| {
            let mut c = TrainConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(err(&|c| c.weight_decay = -1.0).contains("train.weight_decay"));
        assert!(err(&|c| c.clip_grad_norm = f64::NAN).contains("train.clip_grad_norm"));
        assert!(err(&|c| {
            c.lr = 1.0;
            c.weight_decay = 2.0;
            c.decoupled_weight_decay = true;
        })
        .contains("lr * weight_decay"));
        assert!(err(&|c| c.lr_schedule = LrSchedule::Cosine {
            warmup_steps: 0,
            min_lr: 1.0
        })
        .contains("train.lr_schedule.min_lr"));
        assert!(err(&|c| c.lr_schedule = LrSchedule::Step {
            warmup_steps: 0,
            every_epochs: 0,
            gamma: 0.5
        })
        .contains("train.lr_schedule.every_epochs"));
        let t: TrainConfig =
            toml::from_str("lr_schedule = { kind = \"cosine\", warmup_steps = 10 }\n").unwrap();
        assert_eq!(
            t.lr_schedule,
            LrSchedule::Cosine {
                warmup_steps: 10,
                min_lr: 0.0
            }
        );
        assert!(toml::from_str::<TrainConfig>("lr_schedule = { kind = \"linear\" }\n").is_err());
    }
}
