//! PIN's training schedule (`../shared/papers/PIN-method-as-we-implement-it.md`; the paper is
//! known from its abstract only, so this is a reconstruction): the backdoor-adjusted objective
//! `L_do = Σ_z P(z) L_z` over user-activeness strata z, trained with the aggregated gradient
//! `g = Σ_z P(z) ∇L_z` from stratified batches; then, for models with phases (`pin`), the
//! plugin networks per stratum.
//!
//! Strata are the dataset's user groups (`samples.activeness`; two strata, tail and head, with
//! `{ mode = "quantile", head_share = 0.2, body_share = 0.0 }`), measured on training data.
//! Two implementations of the step give the same gradient (tested): one pass with per-sample
//! weights `P(z) / n_z` (`aggregation = "weighted"`, the default: one forward and backward) or one
//! backward pass per stratum (`"per_stratum"`). A batch that lacks a stratum renormalises the
//! prior over the strata it has.

use crate::error::{Result, TrainError};
use longtail_core::{DeviceBatch, Model};
use longtail_data::{CtrSamples, HostBatch};
use serde::{Deserialize, Serialize};
use tch::Kind;

/// Number of user groups (tail, body, head).
pub const GROUPS: usize = 3;

/// The prior P(z) of the backdoor adjustment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prior {
    /// Each stratum's share of the training users (the default): the many tail users weigh in
    /// proportion to their number, not to their few samples.
    #[default]
    UserShare,
    /// Each stratum equally.
    Uniform,
    /// Each stratum's share of the batch's samples: exactly ordinary joint training (ablation).
    SampleShare,
}

/// How the aggregated gradient is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// One pass with per-sample weights `P(z) / n_z`.
    #[default]
    Weighted,
    /// One backward pass per stratum, gradients summed with weights `P(z)`.
    PerStratum,
}

/// Which users' samples train the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainUsers {
    #[default]
    All,
    /// Tail users only (the "trained on tail users alone" baseline).
    Tail,
}

/// `[pin]`: stratified training with aggregated gradients and, optionally, PIN's plugin stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinConfig {
    pub prior: Prior,
    pub aggregation: Aggregation,
    pub train_users: TrainUsers,
    /// Stage 2: switch the model to its `plugins` phase and train it on every stratum's own
    /// samples (each row reaches only its stratum's plugin) [true]; the model must have phases.
    pub stage2: bool,
    /// Stage-2 epochs [the main `epochs`].
    pub stage2_epochs: Option<usize>,
    /// Stage-2 learning rate [the main `lr`]; smaller when the model fine-tunes its backbone.
    pub stage2_lr: Option<f64>,
}

impl Default for PinConfig {
    fn default() -> Self {
        Self {
            prior: Prior::UserShare,
            aggregation: Aggregation::Weighted,
            train_users: TrainUsers::All,
            stage2: true,
            stage2_epochs: None,
            stage2_lr: None,
        }
    }
}

impl PinConfig {
    pub fn validate(&self) -> Result<()> {
        if self.stage2_epochs == Some(0) {
            return Err(TrainError::Config {
                key: "pin.stage2_epochs".into(),
                message: "must be >= 1".into(),
            });
        }
        if let Some(lr) = self.stage2_lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(TrainError::Config {
                    key: "pin.stage2_lr".into(),
                    message: "must be a positive number".into(),
                });
            }
        }
        Ok(())
    }
}

/// The prior over user groups for `samples` (training samples): `None` for `sample_share`
/// (weights 1: joint training).
pub fn group_prior(samples: &CtrSamples, prior: Prior) -> Option<[f64; GROUPS]> {
    let mut present = [false; GROUPS];
    let mut users: [std::collections::BTreeSet<u32>; GROUPS] = Default::default();
    for (u, &g) in samples.user.iter().zip(&samples.user_group) {
        let g = usize::from(g).min(GROUPS - 1);
        present[g] = true;
        users[g].insert(*u);
    }
    let k = present.iter().filter(|&&p| p).count().max(1) as f64;
    match prior {
        Prior::SampleShare => None,
        Prior::Uniform => Some(present.map(|p| if p { 1.0 / k } else { 0.0 })),
        Prior::UserShare => {
            let total: usize = users.iter().map(|s| s.len()).sum();
            let mut p = [0.0; GROUPS];
            for g in 0..GROUPS {
                p[g] = users[g].len() as f64 / total.max(1) as f64;
            }
            Some(p)
        }
    }
}

/// Per-row weights `P(z) / n_z · n` of a batch (n = its real rows), so the weighted mean loss
/// `Σ w l / Σ w` is `Σ_z P(z) L_z` renormalised over the strata present; padding rows keep 0.
pub fn stratum_weights(h: &HostBatch, prior: &[f64; GROUPS]) -> Vec<f32> {
    let n = h.valid;
    let mut count = [0usize; GROUPS];
    for &g in &h.user_group[..n] {
        count[usize::from(g).min(GROUPS - 1)] += 1;
    }
    let mut w = vec![0.0f32; h.size];
    for (r, wr) in w.iter_mut().enumerate().take(n) {
        let g = usize::from(h.user_group[r]).min(GROUPS - 1);
        *wr = (prior[g] / count[g] as f64 * n as f64) as f32;
    }
    w
}

/// A visiting order in which every batch holds each stratum in proportion to its samples: each
/// stratum is shuffled (by `rng`) and the strata are interleaved evenly.
pub fn stratified_order(samples: &CtrSamples, rng: &mut impl rand::Rng) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut by: Vec<Vec<usize>> = vec![Vec::new(); GROUPS];
    for (i, &g) in samples.user_group.iter().enumerate() {
        by[usize::from(g).min(GROUPS - 1)].push(i);
    }
    for v in &mut by {
        v.shuffle(rng);
    }
    // Each index gets a position key (k + 0.5) / n_z in [0, 1); sorting by the key interleaves
    // the strata evenly (ties broken by stratum, stable).
    let mut keyed: Vec<(f64, usize, usize)> = Vec::with_capacity(samples.len());
    for (g, v) in by.iter().enumerate() {
        let n = v.len() as f64;
        for (k, &i) in v.iter().enumerate() {
            keyed.push(((k as f64 + 0.5) / n, g, i));
        }
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, _, i)| i).collect()
}

/// Backward pass of the aggregated gradient for one batch whose `weight` holds its plain row
/// weights (1 on real rows), into the model's `.grad`s (not zeroed here). `Weighted`: one pass
/// with `P(z)/n_z` weights; `PerStratum`: for each stratum present, the mean loss over its rows
/// times `P(z)` (renormalised over the present strata), one backward each. Returns the total loss.
pub fn aggregated_backward(
    model: &dyn Model,
    batch: &mut DeviceBatch,
    host: &HostBatch,
    prior: &[f64; GROUPS],
    how: Aggregation,
    weight_of: &dyn Fn(&str) -> f64,
) -> Result<f64> {
    let total_of = |model: &dyn Model, batch: &DeviceBatch| -> Result<tch::Tensor> {
        let out = model.forward(batch, true)?;
        model
            .losses(&out, batch)?
            .weighted_total(weight_of)
            .ok_or_else(|| TrainError::Config {
                key: "model".into(),
                message: format!("model '{}' returned no loss terms", model.name()),
            })
    };
    match how {
        Aggregation::Weighted => {
            let w = stratum_weights(host, prior);
            batch.weight = tch::Tensor::from_slice(&w).to_device(batch.device());
            let t = total_of(model, batch)?;
            t.backward();
            Ok(t.double_value(&[]))
        }
        Aggregation::PerStratum => {
            let plain = batch.weight.shallow_clone();
            let mut present = [false; GROUPS];
            for &g in &host.user_group[..host.valid] {
                present[usize::from(g).min(GROUPS - 1)] = true;
            }
            let mass: f64 = (0..GROUPS).filter(|&g| present[g]).map(|g| prior[g]).sum();
            let groups = batch.user_group.clamp_max((GROUPS - 1) as i64);
            let mut total = 0.0;
            for g in (0..GROUPS).filter(|&g| present[g] && prior[g] > 0.0) {
                // The stratum's rows with weight 1 (a mean over them), the others 0.
                batch.weight = &plain * groups.eq(g as i64).to_kind(Kind::Float);
                let t = total_of(model, batch)? * (prior[g] / mass);
                t.backward();
                total += t.double_value(&[]);
            }
            batch.weight = plain;
            Ok(total)
        }
    }
}

/// What the PIN schedule did, for `run.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PinLog {
    /// P(tail), P(body), P(head) as used (absent for `sample_share`: plain joint weights).
    pub prior: Option<[f64; GROUPS]>,
    /// Training samples after `train_users`.
    pub train_samples: usize,
    /// Epochs of stage 1 (backbone + shared head) and stage 2 (plugins); `epochs` in `run.json`
    /// lists stage 1's then stage 2's.
    pub stage1_epochs: usize,
    pub stage2_epochs: usize,
}
