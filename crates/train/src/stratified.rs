//! PIN's training schedule (`../shared/papers/PIN-method-as-we-implement-it.md`; the paper is
//! known from its abstract only, so this is a reconstruction): the backdoor-adjusted objective
//! `L_do = Σ_z P(z) L_z` over user-activeness strata z, trained with the aggregated gradient
//! `g = Σ_z P(z) ∇L_z` from stratified batches; then, for models with phases (`pin`), the
//! plugin networks per stratum.
//!
//! Strata are the dataset's user groups (`samples.activeness`; two strata, tail and head, with
//! `{ mode = "quantile", head_share = 0.2, body_share = 0.0 }`), measured on training data; or,
//! with `pin.buckets = K`, K quantile buckets of training activeness for stage 1's adjustment
//! ([`activeness_buckets`]; the plugins of stage 2 still follow the head/tail user groups).
//! Two implementations of the step give the same gradient (tested): one pass with per-sample
//! weights `P(z) / n_z` (`aggregation = "weighted"`, the default: one forward and backward) or one
//! backward pass per stratum (`"per_stratum"`). A batch that lacks a stratum renormalises the
//! prior over the strata it has.

use crate::error::{Result, TrainError};
use crate::step::{LossWeights, StandardStep, StepOut, TrainStep};
use longtail_core::{DeviceBatch, Instance};
use longtail_data::{CtrSamples, HostBatch};
use serde::{Deserialize, Serialize};
use tch::Kind;

/// Number of user groups (tail, body, head).
pub const GROUPS: usize = 3;

/// The most quantile buckets `pin.buckets` may ask for (strata are stored as `u8`).
pub const MAX_BUCKETS: usize = 64;

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
    /// Stage 2's starting point competes with its epochs on validation and is kept when none
    /// beats it (with early stopping) [true]. It matters when the plugins start from the shared
    /// head or the backbone is fine-tuned; fresh plugins start near chance.
    pub stage2_keep_start: bool,
    /// Stage 1's strata: K quantile buckets of the users' training positives (2..=64) instead
    /// of the dataset's user groups [unset: the user groups]. Ties stay in one bucket, so fewer
    /// than K may result; `run.json` records the buckets made.
    pub buckets: Option<usize>,
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
            stage2_keep_start: true,
            buckets: None,
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
        if let Some(k) = self.buckets {
            if !(2..=MAX_BUCKETS).contains(&k) {
                return Err(TrainError::Config {
                    key: "pin.buckets".into(),
                    message: format!("must be in 2..={MAX_BUCKETS}, got {k}"),
                });
            }
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

/// The prior over `strata` strata for `samples` (training samples, whose `user_group` holds
/// each row's stratum): `None` for `sample_share` (weights 1: joint training).
pub fn group_prior(samples: &CtrSamples, prior: Prior, strata: usize) -> Option<Vec<f64>> {
    let mut users: Vec<std::collections::BTreeSet<u32>> = vec![Default::default(); strata];
    for (u, &g) in samples.user.iter().zip(&samples.user_group) {
        users[usize::from(g).min(strata - 1)].insert(*u);
    }
    let present = users.iter().filter(|s| !s.is_empty()).count().max(1) as f64;
    match prior {
        Prior::SampleShare => None,
        Prior::Uniform => Some(
            users
                .iter()
                .map(|s| if s.is_empty() { 0.0 } else { 1.0 / present })
                .collect(),
        ),
        Prior::UserShare => {
            let total: usize = users.iter().map(|s| s.len()).sum();
            Some(
                users
                    .iter()
                    .map(|s| s.len() as f64 / total.max(1) as f64)
                    .collect(),
            )
        }
    }
}

/// K quantile buckets of user activeness (training positives, `label > 0.5`, per user of
/// `samples`): with the counts sorted ascending, boundary j (1 <= j < K) is the count at rank
/// `ceil(j n / K)`, and a user's bucket is the number of boundaries its count exceeds, so ties
/// share a bucket. Empty buckets are dropped and the rest renumbered from 0 (least active).
/// Returns each sample's bucket and each bucket's smallest count.
pub fn activeness_buckets(samples: &CtrSamples, k: usize) -> (Vec<u8>, Vec<u32>) {
    let mut count: std::collections::BTreeMap<u32, u32> = Default::default();
    for (&u, &y) in samples.user.iter().zip(&samples.label) {
        *count.entry(u).or_default() += u32::from(y > 0.5);
    }
    let mut sorted: Vec<u32> = count.values().copied().collect();
    sorted.sort_unstable();
    let n = sorted.len();
    let bounds: Vec<u32> = (1..k)
        .map(|j| sorted[(j * n).div_ceil(k).clamp(1, n.max(1)) - 1])
        .collect();
    let raw = |c: u32| bounds.iter().filter(|&&b| c > b).count();
    // Renumber the buckets that occur, keeping their order.
    let mut lowest: std::collections::BTreeMap<usize, u32> = Default::default();
    for &c in count.values() {
        let e = lowest.entry(raw(c)).or_insert(c);
        *e = (*e).min(c);
    }
    let index: std::collections::BTreeMap<usize, u8> = lowest
        .keys()
        .enumerate()
        .map(|(i, &b)| (b, i as u8))
        .collect();
    let strata = samples.user.iter().map(|u| index[&raw(count[u])]).collect();
    (strata, lowest.into_values().collect())
}

/// Per-row weights `P(z) / n_z · n` of a batch (n = its real rows), so the weighted mean loss
/// `Σ w l / Σ w` is `Σ_z P(z) L_z` renormalised over the strata present; padding rows keep 0.
pub fn stratum_weights(h: &HostBatch, prior: &[f64]) -> Vec<f32> {
    let n = h.valid;
    let last = prior.len() - 1;
    let mut count = vec![0usize; prior.len()];
    for &g in &h.user_group[..n] {
        count[usize::from(g).min(last)] += 1;
    }
    let mut w = vec![0.0f32; h.size];
    for (r, wr) in w.iter_mut().enumerate().take(n) {
        let g = usize::from(h.user_group[r]).min(last);
        *wr = (prior[g] / count[g] as f64 * n as f64) as f32;
    }
    w
}

/// A visiting order in which every batch holds each stratum in proportion to its samples: each
/// stratum is shuffled (by `rng`) and the strata are interleaved evenly.
pub fn stratified_order(samples: &CtrSamples, rng: &mut impl rand::Rng) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let strata = samples
        .user_group
        .iter()
        .max()
        .map_or(1, |&m| usize::from(m) + 1);
    let mut by: Vec<Vec<usize>> = vec![Vec::new(); strata];
    for (i, &g) in samples.user_group.iter().enumerate() {
        by[usize::from(g)].push(i);
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

/// PIN's aggregated gradient as a [`TrainStep`]: for a batch whose `weight` holds its plain row
/// weights (1 on real rows), `Weighted` takes one backward pass with `P(z)/n_z` row weights;
/// `PerStratum` one per stratum present, of the mean loss over its rows times `P(z)`
/// (renormalised over the present strata). Both give `Σ_z P(z) ∇L_z`; the loss values stay on
/// the device.
pub struct AggregatedStep {
    pub prior: Vec<f64>,
    pub how: Aggregation,
    pub weights: LossWeights,
}

impl TrainStep for AggregatedStep {
    fn name(&self) -> &'static str {
        "aggregated"
    }

    fn backward(
        &mut self,
        model: &Instance,
        batch: &mut DeviceBatch,
        host: &HostBatch,
    ) -> Result<StepOut> {
        let prior = &self.prior;
        match self.how {
            Aggregation::Weighted => {
                let w = stratum_weights(host, prior);
                batch.weight = tch::Tensor::from_slice(&w).to_device(batch.device());
                let (t, _) = StandardStep::total(model, batch, &self.weights)?;
                t.backward();
                Ok(StepOut {
                    total: t.detach(),
                    terms: Vec::new(),
                })
            }
            Aggregation::PerStratum => {
                let plain = batch.weight.shallow_clone();
                let strata = prior.len();
                let mut present = vec![false; strata];
                for &g in &host.user_group[..host.valid] {
                    present[usize::from(g).min(strata - 1)] = true;
                }
                let mass: f64 = (0..strata).filter(|&g| present[g]).map(|g| prior[g]).sum();
                let groups = batch.user_group.clamp_max((strata - 1) as i64);
                let mut total = tch::Tensor::zeros([], (Kind::Float, batch.device()));
                for g in (0..strata).filter(|&g| present[g] && prior[g] > 0.0) {
                    // The stratum's rows with weight 1 (a mean over them), the others 0.
                    batch.weight = &plain * groups.eq(g as i64).to_kind(Kind::Float);
                    let (t, _) = StandardStep::total(model, batch, &self.weights)?;
                    let t = t * (prior[g] / mass);
                    t.backward();
                    total += t.detach();
                }
                batch.weight = plain;
                Ok(StepOut {
                    total,
                    terms: Vec::new(),
                })
            }
        }
    }
}

/// What the PIN schedule did, for `run.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PinLog {
    /// P(z) as used (absent for `sample_share`: plain joint weights): P(tail), P(body), P(head)
    /// over user groups, or one entry per activeness bucket (least active first).
    pub prior: Option<Vec<f64>>,
    /// With `pin.buckets`: each bucket's smallest number of training positives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<u32>>,
    /// Training samples after `train_users`.
    pub train_samples: usize,
    /// Epochs of stage 1 (backbone + shared head) and stage 2 (plugins); `epochs` in `run.json`
    /// lists stage 1's then stage 2's.
    pub stage1_epochs: usize,
    pub stage2_epochs: usize,
    /// Stage 2 ended on its starting point: no stage-2 epoch beat it on validation.
    #[serde(default)]
    pub stage2_kept_start: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One positive row per count unit and one negative per user, users 0.. in `counts` order.
    fn samples(counts: &[u32]) -> CtrSamples {
        let mut s = CtrSamples::default();
        for (u, &c) in counts.iter().enumerate() {
            for r in 0..=c {
                s.user.push(u as u32);
                s.label.push(if r < c { 1.0 } else { 0.0 });
            }
        }
        s
    }

    fn per_user(s: &CtrSamples, strata: &[u8], users: usize) -> Vec<u8> {
        (0..users as u32)
            .map(|u| strata[s.user.iter().position(|&x| x == u).unwrap()])
            .collect()
    }

    #[test]
    fn quantile_buckets_by_hand() {
        // Sorted counts 1 1 2 3 5 8 8 9, K = 4: boundaries at ranks 2, 4, 6 are 1, 3, 8.
        let s = samples(&[8, 1, 5, 2, 9, 1, 3, 8]);
        let (strata, lowest) = activeness_buckets(&s, 4);
        assert_eq!(per_user(&s, &strata, 8), vec![2, 0, 2, 1, 3, 0, 1, 2]);
        assert_eq!(lowest, vec![1, 2, 5, 9]);
        // Every row of a user carries its bucket.
        for (r, &u) in s.user.iter().enumerate() {
            assert_eq!(strata[r], per_user(&s, &strata, 8)[u as usize]);
        }
    }

    #[test]
    fn tied_counts_share_a_bucket_and_empty_buckets_are_dropped() {
        let s = samples(&[3, 3, 3, 3]);
        let (strata, lowest) = activeness_buckets(&s, 4);
        assert!(strata.iter().all(|&b| b == 0));
        assert_eq!(lowest, vec![3]);
        // Boundary at rank ceil(5/2) = 3 is count 1: the four 1s are one bucket, the 10 another.
        let s = samples(&[1, 10, 1, 1, 1]);
        let (strata, lowest) = activeness_buckets(&s, 2);
        assert_eq!(per_user(&s, &strata, 5), vec![0, 1, 0, 0, 0]);
        assert_eq!(lowest, vec![1, 10]);
    }

    #[test]
    fn priors_over_buckets() {
        let mut s = samples(&[8, 1, 5, 2, 9, 1, 3, 8]);
        let (strata, _) = activeness_buckets(&s, 4);
        s.user_group = strata;
        let us = group_prior(&s, Prior::UserShare, 4).unwrap();
        assert_eq!(us, vec![2.0 / 8.0, 2.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0]);
        assert_eq!(group_prior(&s, Prior::Uniform, 4).unwrap(), vec![0.25; 4]);
        assert_eq!(group_prior(&s, Prior::SampleShare, 4), None);
        // A stratum without users gets no mass under `uniform`.
        assert_eq!(
            group_prior(&s, Prior::Uniform, 5).unwrap(),
            vec![0.25, 0.25, 0.25, 0.25, 0.0]
        );
    }

    #[test]
    fn buckets_are_validated() {
        for k in [0, 1, MAX_BUCKETS + 1] {
            let c = PinConfig {
                buckets: Some(k),
                ..Default::default()
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("pin.buckets"), "{e}");
        }
        let c = PinConfig {
            buckets: Some(4),
            ..Default::default()
        };
        assert!(c.validate().is_ok());
    }
}
