//! The training loop: fixed-shape batches, weighted named loss terms, Adam, a progress bar,
//! per-epoch losses, wall times and validation metrics.

use crate::error::{Result, TrainError};
use indicatif::{ProgressBar, ProgressStyle};
use longtail_core::{DeviceBatch, Model};
use longtail_data::batch::item_logq;
use longtail_data::{
    batch::prefetch_batches, seed, BatchIter, CtrDataset, CtrSamples, ITEM_GROUP_NAMES,
    USER_GROUP_NAMES,
};
use longtail_eval::{ctr_metrics, Metrics, ScoredSlice};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// A copy of every named parameter (early stopping keeps the best epoch's).
pub(crate) type Snapshot = Vec<(String, Tensor)>;

/// Training batches built ahead of the step by the prefetch thread.
const PREFETCH: usize = 4;

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
    /// Stop when the validation metric (`early_stopping_metric`, higher is better) has not
    /// improved for this many epochs, and keep the parameters of the best epoch; 0 = off: train
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

impl TrainConfig {
    /// Range checks of every value; errors name the key (`train.*`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(TrainError::Config {
                key: format!("train.{key}"),
                message,
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if self.eval_batch_size == 0 {
            return bad("eval_batch_size", "must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr <= MAX_LR) {
            return bad("lr", format!("must be in (0, {MAX_LR}], got {}", self.lr));
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

/// Trains `model` on `data.train`, validating on `data.valid` after each epoch.
pub fn fit(
    model: &mut dyn Model,
    data: &CtrDataset,
    cfg: &TrainConfig,
    seed_base: u64,
    device: Device,
) -> Result<Vec<EpochLog>> {
    fit_stratified(model, data, cfg, None, seed_base, device)
}

/// [`fit`] where the starting parameters compete too: they are validated first and kept when
/// no epoch beats them (needs early stopping; PIN's stage 2, so plugins that start from the
/// shared head cannot end below it on validation).
pub fn fit_keeping_start(
    model: &mut dyn Model,
    data: &CtrDataset,
    cfg: &TrainConfig,
    seed_base: u64,
    device: Device,
) -> Result<Vec<EpochLog>> {
    fit_inner(model, data, cfg, None, true, seed_base, device)
}

/// [`fit`] with PIN's aggregated gradient when `strata = Some((prior, how))`: every epoch visits
/// the samples in a stratified order, and each step's gradient is `Σ_z P(z) ∇L_z`
/// ([`crate::stratified`]). The epoch log then has the weighted `total` only.
pub fn fit_stratified(
    model: &mut dyn Model,
    data: &CtrDataset,
    cfg: &TrainConfig,
    strata: Option<(&[f64], crate::stratified::Aggregation)>,
    seed_base: u64,
    device: Device,
) -> Result<Vec<EpochLog>> {
    fit_inner(model, data, cfg, strata, false, seed_base, device)
}

fn fit_inner(
    model: &mut dyn Model,
    data: &CtrDataset,
    cfg: &TrainConfig,
    strata: Option<(&[f64], crate::stratified::Aggregation)>,
    keep_start: bool,
    seed_base: u64,
    device: Device,
) -> Result<Vec<EpochLog>> {
    cfg.validate()?;
    let logq = item_logq(&data.item_freq);
    let max_len = data
        .feature_map
        .get("hist")
        .and_then(|f| f.max_len)
        .unwrap_or(50);
    let mut opt = nn::Adam::default().build(model.var_store(), cfg.lr)?;
    let weight = |n: &str| cfg.loss_weights.get(n).copied().unwrap_or(1.0);
    let mut logs = Vec::with_capacity(cfg.epochs);
    let mut stopper = EarlyStopping::new(cfg);
    if keep_start && cfg.early_stopping_patience > 0 && !data.valid.is_empty() {
        let v = evaluate_ctr(
            model,
            &data.valid,
            data,
            max_len,
            cfg.eval_batch_size,
            device,
        )?;
        let start = v.get(&cfg.early_stopping_metric).copied();
        if let (Some(a), true) = (start, cfg.progress) {
            eprintln!("start: valid {} {a:.4}", cfg.early_stopping_metric);
        }
        stopper = stopper.with_baseline(model, start.filter(|x| x.is_finite()));
    }
    for epoch in 1..=cfg.epochs {
        let shuffle = seed::derive_seed(seed_base, &format!("shuffle/epoch{epoch}"));
        let mut batches = BatchIter::try_new(
            &data.train,
            &data.sequences,
            cfg.batch_size,
            max_len,
            Some(shuffle),
            Some(&logq),
        )?;
        if let Some(s) = &data.sessions {
            batches = batches.with_sessions(s, &data.negative_feedback);
        }
        if strata.is_some() {
            let mut rng = seed::rng(seed_base, &format!("strata/epoch{epoch}"));
            batches =
                batches.with_order(crate::stratified::stratified_order(&data.train, &mut rng));
        }
        let pb = progress_bar(
            cfg.progress,
            batches.len() as u64,
            &format!("epoch {epoch}/{}", cfg.epochs),
        );
        let start = Instant::now();
        // Sums stay on the device: no host sync inside the step.
        let mut sums: Vec<(String, Tensor)> = Vec::new();
        let mut total_sum = Tensor::zeros([], (Kind::Float, device));
        let mut seen = 0usize;
        let mut step = 0usize;
        let mut watch = LossWatch::new(device, cfg.lr);
        // Batches are built on a background thread, PREFETCH ahead of the step.
        prefetch_batches(&batches, PREFETCH, |host| -> Result<()> {
            let mut batch = DeviceBatch::from_host(&host, device)?;
            if let Some((prior, how)) = &strata {
                opt.zero_grad();
                let t = crate::stratified::aggregated_backward(
                    model, &mut batch, &host, prior, *how, &weight,
                )?;
                opt.step();
                let n = host.valid as f64;
                seen += host.valid;
                total_sum += t * n;
                watch.observe(&Tensor::from(t), &[]);
                pb.inc(1);
                step += 1;
                if step % cfg.log_every == 0 {
                    watch.check(epoch)?;
                }
                return Ok(());
            }
            let out = model.forward(&batch, true)?;
            let losses = model.losses(&out, &batch)?;
            let total = losses
                .weighted_total(weight)
                .ok_or_else(|| TrainError::Config {
                    key: "model".into(),
                    message: format!("model '{}' returned no loss terms", model.name()),
                })?;
            opt.zero_grad();
            total.backward();
            opt.step();
            watch.observe(&total, &losses.0);
            let n = host.valid as f64;
            seen += host.valid;
            tch::no_grad(|| {
                total_sum += total.detach() * n;
                for (name, t) in &losses.0 {
                    match sums.iter_mut().find(|(s, _)| s == name) {
                        Some((_, acc)) => *acc += t.detach() * n,
                        None => sums.push((name.clone(), t.detach() * n)),
                    }
                }
            });
            pb.inc(1);
            if (step + 1) % cfg.log_every == 0 {
                watch.check(epoch)?;
                pb.set_message(format!(
                    "loss {:.4}",
                    total_sum.double_value(&[]) / seen.max(1) as f64
                ));
            }
            step += 1;
            Ok(())
        })?;
        watch.check(epoch)?;
        let train_wall_s = start.elapsed().as_secs_f64();
        pb.finish_and_clear();
        let mut losses: BTreeMap<String, f64> = sums
            .iter()
            .map(|(n, t)| (n.clone(), t.double_value(&[]) / seen.max(1) as f64))
            .collect();
        let total = total_sum.double_value(&[]) / seen.max(1) as f64;
        losses.insert("total".into(), total);
        let eval_start = Instant::now();
        let valid = if data.valid.is_empty() {
            Metrics::new()
        } else {
            evaluate_ctr(
                model,
                &data.valid,
                data,
                max_len,
                cfg.eval_batch_size,
                device,
            )?
        };
        let log = EpochLog {
            epoch,
            losses,
            train_wall_s,
            eval_wall_s: eval_start.elapsed().as_secs_f64(),
            samples_per_s: seen as f64 / train_wall_s.max(1e-9),
            kept: false,
            valid,
        };
        if cfg.progress {
            let auc = log
                .valid
                .get("auc")
                .map(|a| format!(" valid auc {a:.4}"))
                .unwrap_or_default();
            eprintln!(
                "epoch {epoch}/{}: loss {:.4}{auc}  ({:.1}s train, {:.0} samples/s)",
                cfg.epochs, total, log.train_wall_s, log.samples_per_s
            );
        }
        let stop = stopper.observe(model, &log, cfg.progress)?;
        logs.push(log);
        if stop {
            break;
        }
    }
    stopper.finish(model, &mut logs);
    Ok(logs)
}

/// Watches every step's loss for a non-finite value without a host sync inside the step: the
/// first bad step and the loss terms at that step stay on the device and are read by
/// [`LossWatch::check`] at the loop's read points (every `log_every` steps, the end of an epoch).
pub(crate) struct LossWatch {
    /// Steps observed so far (on the device, so the step number needs no host copy).
    step: Tensor,
    /// The first step whose total was not finite; `i64::MAX` while none was.
    first_bad: Tensor,
    /// `[total, term...]` at the first bad step.
    at_bad: Option<Tensor>,
    names: Vec<String>,
    lr: f64,
}

impl LossWatch {
    pub(crate) fn new(device: Device, lr: f64) -> Self {
        Self {
            step: Tensor::zeros([], (Kind::Int64, device)),
            first_bad: Tensor::full([], i64::MAX, (Kind::Int64, device)),
            at_bad: None,
            names: Vec::new(),
            lr,
        }
    }

    /// Records one step's weighted total and its terms (device ops only).
    pub(crate) fn observe(&mut self, total: &Tensor, terms: &[(String, Tensor)]) {
        tch::no_grad(|| {
            let _ = self.step.g_add_scalar_(1);
            let total = total.detach().to_kind(Kind::Float).reshape([1]);
            let mut parts = vec![total.shallow_clone()];
            parts.extend(
                terms
                    .iter()
                    .map(|(_, t)| t.detach().to_kind(Kind::Float).reshape([1])),
            );
            let now = Tensor::cat(&parts, 0);
            let bad = total
                .isfinite()
                .logical_not()
                .squeeze()
                .logical_and(&self.first_bad.eq(i64::MAX));
            if self.names.is_empty() || self.names.len() + 1 != now.size()[0] as usize {
                self.names = terms.iter().map(|(n, _)| n.clone()).collect();
                self.at_bad = None;
            }
            self.at_bad = Some(match &self.at_bad {
                Some(prev) => now.where_self(&bad, prev),
                None => now.where_self(&bad, &Tensor::full_like(&now, f64::NAN)),
            });
            self.first_bad = self.step.where_self(&bad, &self.first_bad);
        });
    }

    /// Fails with the epoch, the step (1-based, counted from the watch's start: make one per
    /// epoch), the loss terms at that step and a hint when a non-finite loss was observed.
    pub(crate) fn check(&self, epoch: usize) -> Result<()> {
        let first = self.first_bad.int64_value(&[]);
        if first == i64::MAX {
            return Ok(());
        }
        let values: Vec<f64> = self
            .at_bad
            .as_ref()
            .and_then(|t| Vec::<f64>::try_from(t.to_kind(Kind::Double).to_device(Device::Cpu)).ok())
            .unwrap_or_default();
        let mut terms: Vec<String> = Vec::new();
        if let Some(t) = values.first() {
            terms.push(format!("total = {t}"));
        }
        for (n, v) in self.names.iter().zip(values.iter().skip(1)) {
            terms.push(format!("{n} = {v}"));
        }
        Err(TrainError::Diverged {
            epoch,
            step: first.max(0) as usize,
            terms: terms.join(", "),
            hint: format!(
                "lower train.lr (now {}), check train.loss_weights, and look for extreme values in \
                 the data; no run folder was written",
                self.lr
            ),
        })
    }
}

/// Early stopping on a validation metric (higher is better), shared by the CTR and retrieval
/// loops: remembers the best epoch's parameters and restores them at the end.
pub(crate) struct EarlyStopping {
    metric: String,
    patience: usize,
    /// (best value, its epoch, its parameters); epoch 0 = the starting point.
    best: Option<(f64, usize, Snapshot)>,
}

impl EarlyStopping {
    pub(crate) fn new(cfg: &TrainConfig) -> Self {
        Self {
            metric: cfg.early_stopping_metric.clone(),
            patience: cfg.early_stopping_patience,
            best: None,
        }
    }

    /// Makes the current parameters, whose validation value is `v`, the one to beat ("epoch 0").
    pub(crate) fn with_baseline(mut self, model: &dyn Model, v: Option<f64>) -> Self {
        if let (Some(v), true) = (v, self.patience > 0) {
            self.best = Some((v, 0, snapshot(model)));
        }
        self
    }

    /// Records an epoch; true when training should stop.
    pub(crate) fn observe(
        &mut self,
        model: &dyn Model,
        log: &EpochLog,
        progress: bool,
    ) -> Result<bool> {
        if self.patience == 0 {
            return Ok(false);
        }
        let Some(v) = log
            .valid
            .get(&self.metric)
            .copied()
            .filter(|v| v.is_finite())
        else {
            return Err(TrainError::Config {
                key: "train.early_stopping_metric".into(),
                message: format!(
                    "validation has no finite '{}' (is the valid split empty? CTR runs report \
                     auc, gauc, logloss; retrieval runs hr@5, hr@20, ndcg@5, ndcg@20, mrr@20, auc)",
                    self.metric
                ),
            });
        };
        let epoch = log.epoch;
        if self.best.as_ref().is_none_or(|(b, _, _)| v > *b) {
            // A copy of every parameter, restored if later epochs do not beat it.
            self.best = Some((v, epoch, snapshot(model)));
            return Ok(false);
        }
        let (b, e) = self.best.as_ref().map_or((f64::NAN, 0), |x| (x.0, x.1));
        if epoch - e >= self.patience {
            if progress {
                eprintln!(
                    "early stopping after epoch {epoch}: best valid {} {b:.4} at epoch {e}",
                    self.metric
                );
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Restores the best parameters and marks their epoch `kept` (the last epoch without early
    /// stopping; none when the starting point was best).
    pub(crate) fn finish(self, model: &dyn Model, logs: &mut [EpochLog]) {
        match self.best {
            Some((_, epoch, snap)) => {
                restore(model, &snap);
                if let Some(l) = logs.iter_mut().find(|l| l.epoch == epoch) {
                    l.kept = true;
                }
            }
            None => {
                if let Some(l) = logs.last_mut() {
                    l.kept = true;
                }
            }
        }
    }
}

/// A copy of every variable of the model (early stopping keeps the best epoch's).
pub(crate) fn snapshot(model: &dyn Model) -> Snapshot {
    tch::no_grad(|| {
        model
            .var_store()
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect()
    })
}

/// Writes a [`snapshot`] back into the model's variables.
pub(crate) fn restore(model: &dyn Model, snap: &Snapshot) {
    let vars = model.var_store().variables();
    tch::no_grad(|| {
        for (name, saved) in snap {
            if let Some(t) = vars.get(name) {
                let mut t = t.shallow_clone();
                t.copy_(saved);
            }
        }
    });
}

fn progress_bar(show: bool, len: u64, prefix: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(prefix.to_string());
    pb
}

/// Scores every sample in order (eval mode, no gradients); padding rows are dropped.
pub fn score_samples(
    model: &dyn Model,
    samples: &CtrSamples,
    data: &CtrDataset,
    max_len: usize,
    batch_size: usize,
    device: Device,
) -> Result<Vec<f32>> {
    let mut iter = BatchIter::try_new(samples, &data.sequences, batch_size, max_len, None, None)?;
    if let Some(s) = &data.sessions {
        iter = iter.with_sessions(s, &data.negative_feedback);
    }
    let mut out = Vec::with_capacity(samples.len());
    for host in iter {
        let batch = DeviceBatch::from_host(&host, device)?;
        let s = tch::no_grad(|| model.score(&batch))?;
        let v = Vec::<f32>::try_from(s.to_kind(Kind::Float).to_device(Device::Cpu))?;
        out.extend_from_slice(&v[..host.valid]);
    }
    Ok(out)
}

/// AUC, logloss, GAUC and per user/item group AUC of `model` on a split.
pub fn evaluate_ctr(
    model: &dyn Model,
    samples: &CtrSamples,
    data: &CtrDataset,
    max_len: usize,
    batch_size: usize,
    device: Device,
) -> Result<Metrics> {
    let scores = score_samples(model, samples, data, max_len, batch_size, device)?;
    let slice = ScoredSlice::new(&scores, &samples.label)
        .with_users(&samples.user)
        .with_user_group(&samples.user_group)
        .with_item_group(&samples.item_group);
    Ok(ctr_metrics(&slice, &USER_GROUP_NAMES, &ITEM_GROUP_NAMES)?)
}
