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
