//! The retrieval path (IDW, Mehta et al. §3-4): next-item sequence samples, in-batch softmax
//! training with per-item loss weights (none, frequency balance, or IDW's density weights),
//! sampled evaluation (the target against 99 negatives), full-catalogue ranking in item chunks,
//! and Iterative Density Weighting (Algorithms 1-2) with user-tower calibration.
//!
//! Item weights are a first-class part of training: every weighting scheme only sets
//! `w_y` per item, the batch's sample weight becomes `w_y`, and the model's loss (eq. 3, or
//! focal / margin variants) is the weighted mean `Σ w_i l_i / Σ w_i` over the batch (eq. 10 with
//! the per-batch normalisation that keeps the loss on eq. 3's scale).

use crate::error::{Result, TrainError};
use crate::fit::{fit, Fit, Journal};
use crate::step::StandardStep;
use crate::task::RetrievalTask;
use crate::trainer::{EpochLog, TrainConfig};
use longtail_core::density::SleepStats;
use longtail_core::{DeviceBatch, Instance};
pub use longtail_data::retrieval::{
    frequency_weights, host_batch, loss_share_weights, mean_one, RetrievalData,
};
use longtail_data::{ScoresTable, SeqSamples};
use longtail_eval::{topk_metrics_by_group, Metrics};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Cut-offs of every retrieval metric (IDW reports @20 and, in its appendix, @5).
pub const RETRIEVAL_KS: [usize; 2] = [5, 20];
/// The retrieval metrics a run's summary shows, in this order.
pub const RETRIEVAL_SUMMARY: [&str; 10] = [
    "hr@20",
    "ndcg@20",
    "hr@20/item=tail",
    "hr@20/item=head",
    "ndcg@20/item=tail",
    "ndcg@20/item=head",
    "hr@5",
    "ndcg@5",
    "full_hr@20",
    "full_ndcg@20",
];
/// Item-group names of retrieval metrics (`/item=tail`, `/item=head`).
pub const ITEM_GROUPS: [&str; 2] = ["tail", "head"];

/// Static per-item loss weights (`[train] item_weighting`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemWeighting {
    /// Every sample weighs 1 (eq. 3).
    #[default]
    None,
    /// Frequency balance (eq. 5): `w_y ∝ 1 / n_y`.
    Frequency,
}

/// How IDW's weights `w` become per-sample loss weights in a wake phase (`[idw] weights`).
///
/// Eq. 10 writes the loss of a sample with label y as `w_y` times its cross-entropy, with
/// `w(0)` = the label frequency `p(y)`. Read literally, that multiplies every sample by its
/// item's frequency: in the first wake phase on ML-1M users 1-2999 the 20% most frequent items
/// then carry at least 77% of the loss (55.5% unweighted), the opposite of §3.3's balanced loss
/// that up-weights low-density regions, and m = 1 (w stays w(0)) is not the unweighted baseline
/// that §4.6.2 says it is. Reading `w` as each item's share of the loss satisfies all three.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdwWeights {
    /// `w` is a distribution over items giving each item's share of the loss: a sample of item
    /// y weighs `w_y / p(y)` (mean one over the samples), so `w(0) = p` is exactly the
    /// unweighted loss (3) and m = 1 the baseline.
    #[default]
    LossShare,
    /// Eq. 10 read literally: a sample of item y weighs `w_y` (scaled to mean one).
    Literal,
}

/// `[idw]`: Iterative Density Weighting (Algorithm 1). Present = the run trains with IDW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdwConfig {
    /// Momentum m of the weight update (eq. 9) [0.9, the paper's best].
    pub momentum: f64,
    /// Stop when `||w(t+1) - w(t)||_2 < eta` [4e-4, the paper's best].
    pub eta: f64,
    /// Most sleep/wake iterations [10].
    pub max_iterations: usize,
    /// How `w` weighs samples: `"loss_share"` (default) or `"literal"` ([`IdwWeights`]).
    pub weights: IdwWeights,
    /// The null control (`idw-null`): the same schedule (plain training, sleep phases, wake
    /// phases, selection, calibration) with every sample weighing 1 in the wake phases, so a
    /// gain of IDW over it is the density's, not the extra training's [false].
    pub null_control: bool,
    /// Leave each item's own kernel term out of its density (eq. 7 otherwise counts it, and in
    /// 16 dimensions with Scott's bandwidth it is most of a sparse item's density) [false].
    pub leave_one_out: bool,
    /// Multiplier on Scott's-rule bandwidth (eq. 7) [1.0, the paper].
    pub bandwidth_scale: f64,
    /// Most training epochs per wake phase [the main `epochs`: eq. 11 trains each wake phase to
    /// convergence]; with `wake_early_stopping` the phase ends at the validation optimum.
    pub wake_epochs: Option<usize>,
    /// Early stopping inside each wake phase (the main `early_stopping_patience`, best epoch
    /// kept) [true].
    pub wake_early_stopping: bool,
    /// One Adam for the whole schedule: the wake phases continue the moments of the plain
    /// training and of each other, instead of a fresh Adam per phase, whose first steps (bias
    /// correction: about `lr` per parameter whatever the gradient) perturb the model by
    /// themselves [true]. Calibration always starts a fresh one (it trains other variables).
    pub keep_optimizer: bool,
    /// Retrain the user tower unweighted with the item tower frozen afterwards [true].
    pub calibration: bool,
    /// Most calibration epochs (early stopping applies) [the main `epochs`].
    pub calibration_epochs: Option<usize>,
    /// Items per row chunk of the pairwise kernel [2048].
    pub density_chunk: i64,
    /// Keep the iteration with the best validation metric (0 = the unweighted model) rather
    /// than the last, like every model's early stopping [true; needs
    /// `train.early_stopping_patience > 0`].
    pub select_best: bool,
}

impl Default for IdwConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            eta: 4e-4,
            max_iterations: 10,
            weights: IdwWeights::LossShare,
            null_control: false,
            leave_one_out: false,
            bandwidth_scale: 1.0,
            wake_epochs: None,
            wake_early_stopping: true,
            keep_optimizer: true,
            calibration: true,
            calibration_epochs: None,
            density_chunk: 2048,
            select_best: true,
        }
    }
}

impl IdwConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: &str| {
            Err(TrainError::Config {
                key: format!("idw.{key}"),
                message: message.into(),
            })
        };
        if !(0.0..=1.0).contains(&self.momentum) {
            return bad("momentum", "must be in [0, 1]");
        }
        if self.eta.is_nan() || self.eta < 0.0 {
            return bad("eta", "must be >= 0");
        }
        if self.max_iterations == 0 {
            return bad("max_iterations", "must be >= 1");
        }
        if self.wake_epochs == Some(0) {
            return bad("wake_epochs", "must be >= 1");
        }
        if !(self.bandwidth_scale.is_finite() && self.bandwidth_scale > 0.0) {
            return bad("bandwidth_scale", "must be finite and > 0");
        }
        if self.calibration_epochs == Some(0) {
            return bad("calibration_epochs", "must be >= 1");
        }
        if self.density_chunk < 1 {
            return bad("density_chunk", "must be >= 1");
        }
        Ok(())
    }
}

/// One IDW iteration as `run.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdwIteration {
    pub iteration: usize,
    pub sleep: SleepStats,
    /// Mean silhouette of the item representations under the ground-truth clusters (synthetic
    /// data), before this iteration's wake phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silhouette: Option<f64>,
    /// Whether the stopping rule fired (no wake phase followed).
    pub stopped: bool,
    /// What the new weights do to the loss (absent in manifests of earlier builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<IdwDiagnostics>,
}

/// Per sleep phase: whether the density says more than the frequency, and where the loss goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdwDiagnostics {
    /// Spearman's ρ of the relative density (eq. 8) with the label frequency over the labelled
    /// items: near 1, the density only restates the frequency.
    pub density_frequency_spearman: f64,
    /// Share of the wake phase's loss weight on head items (the most frequent 20%, as the
    /// metrics' `item=head`), under the per-sample weights the wake phase uses.
    pub head_loss_share: f64,
    /// The same share with every sample weighing 1 (the label share of head items).
    pub head_loss_share_unweighted: f64,
    /// Per-sample weight of the most frequent item over that of the least frequent one.
    pub most_over_least_frequent_weight: f64,
}

/// What the retrieval schedule did, for `run.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RetrievalLog {
    /// Training phases in order: `train` (unweighted or statically weighted), `wake1`, ...,
    /// `calibration`; each with its epochs.
    pub phases: Vec<(String, Vec<EpochLog>)>,
    pub idw: Vec<IdwIteration>,
    /// The IDW iteration whose parameters were kept (0 = the unweighted model), when selecting
    /// by validation (`idw.select_best`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idw_selected: Option<usize>,
    /// Whether calibration improved the validation metric (else its start was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_kept: Option<bool>,
    /// Silhouette of the final item representations (synthetic data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silhouette: Option<f64>,
}

/// Item representations of every item id `0..num_items` `[N, D]`, in chunks, no gradients.
pub fn all_item_reprs(model: &Instance, num_items: usize, device: Device) -> Result<Tensor> {
    let towers = model.towers()?;
    let mut parts = Vec::new();
    let chunk = 4096i64;
    let n = num_items as i64;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let ids = Tensor::arange_start(start, start + len, (Kind::Int64, device));
        parts.push(tch::no_grad(|| towers.item_repr(&ids))?);
        start += len;
    }
    Ok(Tensor::cat(&parts, 0))
}

/// Sampled evaluation: each case's target against its `eval_negatives` negatives (IDW §4.2).
/// Returns the metrics (`hr@K`, `ndcg@K`, `mrr@K`, per item group of the target, and the sampled
/// `auc`) and the scored candidates (one list per case).
pub fn sampled_metrics(
    model: &Instance,
    data: &RetrievalData,
    cases: &SeqSamples,
    batch_size: usize,
    device: Device,
    progress: Option<&str>,
) -> Result<(Metrics, ScoresTable)> {
    let towers = model.towers()?;
    let negs = cases.negatives_per_sample();
    let c = negs + 1;
    let mut t = ScoresTable {
        user: Vec::new(),
        item: Vec::new(),
        label: Vec::new(),
        score: Vec::new(),
        user_group: None,
        item_group: Some(Vec::new()),
        list: Some(Vec::new()),
    };
    let logq = vec![0.0f32; data.num_items];
    let all: Vec<usize> = (0..cases.len()).collect();
    let pb = eval_bar(progress, cases.len().div_ceil(batch_size.max(1)));
    for idx in pb.wrap_iter(all.chunks(batch_size.max(1))) {
        let host = host_batch(cases, idx, &logq, None)?;
        let batch = DeviceBatch::from_host(&host, device)?;
        let mut cand: Vec<i64> = Vec::with_capacity(idx.len() * c);
        for &i in idx {
            cand.push(i64::from(cases.target[i]));
            cand.extend(cases.negatives_row(i).iter().map(|&x| i64::from(x)));
        }
        let cand_t = Tensor::from_slice(&cand).to_device(device);
        let scores = tch::no_grad(|| -> Result<Tensor> {
            let users = towers.user_repr(&batch)?;
            let items = towers.item_repr(&cand_t)?;
            let d = items.size()[1];
            Ok(towers.score_candidates(&users, &items.view([idx.len() as i64, c as i64, d]))?)
        })?;
        let v = Vec::<f32>::try_from(
            scores
                .to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .view([-1]),
        )?;
        for (r, &i) in idx.iter().enumerate() {
            // The list's item group is its target's, so per-group metrics are per target group.
            let g = data.item_group[cases.target[i] as usize];
            for j in 0..c {
                t.user.push(cases.user[i]);
                t.item.push(cand[r * c + j] as u32);
                t.label.push(if j == 0 { 1.0 } else { 0.0 });
                t.score.push(v[r * c + j]);
                if let Some(ig) = t.item_group.as_mut() {
                    ig.push(g);
                }
                if let Some(l) = t.list.as_mut() {
                    l.push(i as u64);
                }
            }
        }
    }
    // Cut-offs longer than a candidate list are left out (tiny test sets).
    let mut ks: Vec<usize> = RETRIEVAL_KS.iter().copied().filter(|&k| k <= c).collect();
    if ks.is_empty() {
        ks.push(c);
    }
    let mut m = crate::evaluate::evaluate_scores(&t, &ks)?;
    // Affinities are not probabilities: logloss means nothing here.
    m.remove("logloss");
    Ok((m, t))
}

/// Full-catalogue ranking of each case's target among every item the user has not interacted
/// with (IDW's metrics without sampling): the catalogue is scored in chunks of `chunk` items,
/// keeping a running top-K, so no `[cases, items]` matrix is ever held. Keys `full_hr@K`,
/// `full_ndcg@K`, `full_mrr@K` (and `/item=<group>`, `full_users`).
pub fn full_catalogue_metrics(
    model: &Instance,
    data: &RetrievalData,
    cases: &SeqSamples,
    batch_size: usize,
    chunk: i64,
    device: Device,
    progress: Option<&str>,
) -> Result<Metrics> {
    full_catalogue_metrics_with(
        model, data, cases, batch_size, chunk, device, progress, true,
    )
}

/// [`full_catalogue_metrics`], with the user's seen items excluded from the candidates
/// (`exclude_seen`, IDW's protocol) or left among them (every item but the padding ranked).
#[allow(clippy::too_many_arguments)]
pub fn full_catalogue_metrics_with(
    model: &Instance,
    data: &RetrievalData,
    cases: &SeqSamples,
    batch_size: usize,
    chunk: i64,
    device: Device,
    progress: Option<&str>,
    exclude_seen: bool,
) -> Result<Metrics> {
    let towers = model.towers()?;
    let kmax = *RETRIEVAL_KS.iter().max().unwrap_or(&20) as i64;
    let items = all_item_reprs(model, data.num_items, device)?;
    let n = data.num_items as i64;
    let logq = vec![0.0f32; data.num_items];
    let all: Vec<usize> = (0..cases.len()).collect();
    let mut topk: Vec<Vec<u32>> = Vec::with_capacity(cases.len());
    let pb = eval_bar(progress, cases.len().div_ceil(batch_size.max(1)));
    for idx in pb.wrap_iter(all.chunks(batch_size.max(1))) {
        let host = host_batch(cases, idx, &logq, None)?;
        let batch = DeviceBatch::from_host(&host, device)?;
        // Seen items other than the target (and the padding item 0) are excluded.
        let b = idx.len() as i64;
        let mut mask_rows = Vec::new();
        let mut mask_cols = Vec::new();
        for (r, &i) in idx.iter().enumerate() {
            mask_rows.push(r as i64);
            mask_cols.push(0i64);
            let seen: &[u32] = if exclude_seen {
                &data.seen[cases.user[i] as usize]
            } else {
                &[]
            };
            for &x in seen {
                if x != cases.target[i] {
                    mask_rows.push(r as i64);
                    mask_cols.push(i64::from(x));
                }
            }
        }
        let (best_s, best_i) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
            let users = towers.user_repr(&batch)?;
            let mut best_s = Tensor::full([b, 0], f64::NEG_INFINITY, (Kind::Float, device));
            let mut best_i = Tensor::zeros([b, 0], (Kind::Int64, device));
            let rows = Tensor::from_slice(&mask_rows).to_device(device);
            let cols = Tensor::from_slice(&mask_cols).to_device(device);
            let mut start = 0;
            while start < n {
                let len = chunk.max(1).min(n - start);
                let s = towers
                    .score_candidates(&users, &items.narrow(0, start, len))?
                    .to_kind(Kind::Float);
                // Mask this chunk's seen items: shift their columns into the chunk.
                let in_chunk = cols.ge(start).logical_and(&cols.lt(start + len));
                let r = rows.masked_select(&in_chunk);
                let c = cols.masked_select(&in_chunk) - start;
                let s = s.index_put(
                    &[Some(r), Some(c)],
                    &Tensor::from(f32::NEG_INFINITY).to_device(device),
                    false,
                );
                let ids = Tensor::arange_start(start, start + len, (Kind::Int64, device))
                    .unsqueeze(0)
                    .expand([b, len], false);
                let cat_s = Tensor::cat(&[&best_s, &s], 1);
                let cat_i = Tensor::cat(&[&best_i, &ids], 1);
                let k = kmax.min(cat_s.size()[1]);
                let (ts, ti) = cat_s.topk(k, 1, true, true);
                best_i = cat_i.gather(1, &ti, false);
                best_s = ts;
                start += len;
            }
            Ok((best_s, best_i))
        })?;
        let _ = best_s;
        let ids = Vec::<Vec<i64>>::try_from(best_i.to_device(Device::Cpu))?;
        topk.extend(
            ids.into_iter()
                .map(|r| r.into_iter().map(|x| x as u32).collect()),
        );
    }
    let targets: Vec<u32> = cases.target.clone();
    let groups: Vec<u8> = targets
        .iter()
        .map(|&t| data.item_group[t as usize])
        .collect();
    let mut m = topk_metrics_by_group(&topk, &targets, &groups, &ITEM_GROUPS, &RETRIEVAL_KS)?;
    if let Some(cg) = &data.cluster_group {
        // Synthetic data: the same ranking per head / tail cluster of the target (IDW Fig. 3d-f).
        let groups: Vec<u8> = targets.iter().map(|&t| cg[t as usize]).collect();
        let by = topk_metrics_by_group(&topk, &targets, &groups, &ITEM_GROUPS, &RETRIEVAL_KS)?;
        m.extend(
            by.into_iter()
                .filter(|(k, _)| k.contains("/item="))
                .map(|(k, v)| (k.replace("/item=", "/cluster="), v)),
        );
    }
    Ok(m.into_iter()
        .map(|(k, v)| (format!("full_{k}"), v))
        .collect())
}

/// Mean silhouette of the item representations (items `1..`) under `clusters`.
pub fn item_silhouette(
    model: &Instance,
    data: &RetrievalData,
    device: Device,
) -> Result<Option<f64>> {
    let Some(clusters) = &data.item_cluster else {
        return Ok(None);
    };
    let reps = all_item_reprs(model, data.num_items, device)?;
    let n = data.num_items as i64;
    let reps = reps
        .narrow(0, 1, n - 1)
        .to_kind(Kind::Float)
        .to_device(Device::Cpu);
    let dim = reps.size()[1] as usize;
    let pts = Vec::<f32>::try_from(reps.contiguous().view([-1]))?;
    let labels: Vec<u32> = clusters[1..].to_vec();
    let s = longtail_eval::silhouette(&pts, dim, &labels, 5000, 0)?;
    Ok(Some(s.score))
}

/// The first (or only) training phase of a retrieval run: the standard step, with static
/// per-item loss weights (`none`, or frequency balance, eq. 5), as phase `train`.
#[allow(clippy::too_many_arguments)]
pub fn train_plain(
    model: &mut Instance,
    data: &RetrievalData,
    cfg: &TrainConfig,
    weighting: ItemWeighting,
    seed_base: u64,
    device: Device,
    journal: Option<&Journal>,
    optimizer: Option<&std::cell::RefCell<crate::step::Optimizer>>,
) -> Result<RetrievalLog> {
    let static_w = match weighting {
        ItemWeighting::None => None,
        ItemWeighting::Frequency => Some(frequency_weights(&data.label_freq)),
    };
    let first = fit(
        model,
        &RetrievalTask::new(data).with_item_weights(static_w.as_deref()),
        &mut StandardStep::new(&cfg.loss_weights),
        &Fit {
            journal,
            optimizer,
            ..Fit::new("train", cfg, seed_base, device)
        },
    )?;
    Ok(RetrievalLog {
        phases: vec![("train".into(), first)],
        ..Default::default()
    })
}

/// A progress bar over `batches` evaluation batches, shown when `progress` names it.
fn eval_bar(progress: Option<&str>, batches: usize) -> indicatif::ProgressBar {
    crate::fit::progress_bar(progress.is_some(), batches as u64, progress.unwrap_or(""))
        .with_finish(indicatif::ProgressFinish::AndClear)
}

/// Each true cluster's share of the training targets (synthetic data; `None` without clusters).
pub fn cluster_shares(data: &RetrievalData) -> Option<Vec<f64>> {
    let clusters = data.item_cluster.as_ref()?;
    let n = clusters.iter().skip(1).max().map_or(0, |&c| c as usize + 1);
    let mut counts = vec![0u64; n];
    for &t in &data.seq.train.target {
        if let Some(&c) = clusters.get(t as usize) {
            if let Some(x) = counts.get_mut(c as usize) {
                *x += 1;
            }
        }
    }
    let total: u64 = counts.iter().sum();
    (total > 0).then(|| counts.iter().map(|&c| c as f64 / total as f64).collect())
}
