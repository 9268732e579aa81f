//! Host-side data of a retrieval run (IDW, Mehta et al. §4): next-item sequence samples with
//! their item frequencies, head/tail item groups and seen sets ([`RetrievalData`]), and the
//! training batches of an epoch ([`SeqBatches`]), built on any thread ahead of the step. No
//! tensors here: the training crate turns these into device batches.

use crate::batch::{BatchSource, HostBatch};
use crate::error::Result;
use crate::{FeatureMap, SeqDataset, SeqSamples};
use rand::seq::SliceRandom;

/// A sequence dataset with what training and evaluation need.
pub struct RetrievalData {
    pub feature_map: FeatureMap,
    pub seq: SeqDataset,
    /// Item vocabulary size (padding included).
    pub num_items: usize,
    /// Training-label count per item (the batches' sampling frequency, for logQ and weights).
    pub label_freq: Vec<u64>,
    /// Item group per item: 1 = head (the most frequent `head_share` of items by training
    /// interactions), 0 = tail.
    pub item_group: Vec<u8>,
    /// Every item each user interacted with (excluded from full-catalogue ranking except the
    /// target), sorted.
    pub seen: Vec<Vec<u32>>,
    /// Ground-truth cluster per item (synthetic data).
    pub item_cluster: Option<Vec<u32>>,
    /// Synthetic data: 1 when the item's cluster is a head cluster (the most frequent
    /// `head_share` of clusters by training interactions, at least one), else 0.
    pub cluster_group: Option<Vec<u8>>,
}

impl RetrievalData {
    /// Builds item frequencies, groups and seen sets from the positives and the sequences.
    pub fn new(
        dataset: &str,
        positives: &crate::UserSequences,
        seq: SeqDataset,
        num_items: usize,
        head_share: f64,
        item_cluster: Option<Vec<u32>>,
    ) -> Self {
        let mut label_freq = vec![0u64; num_items];
        for &t in &seq.train.target {
            label_freq[t as usize] += 1;
        }
        // Head items by training interactions: each user's items but the last two (valid, test).
        let mut freq = vec![0u64; num_items];
        let num_users = positives.offsets.len().saturating_sub(1);
        let mut seen = Vec::with_capacity(num_users);
        for u in 0..num_users {
            let s = positives.seq(u as u32);
            for &i in &s[..s.len().saturating_sub(2)] {
                freq[i as usize] += 1;
            }
            let mut v = s.to_vec();
            v.sort_unstable();
            v.dedup();
            seen.push(v);
        }
        // The one item-group rule of CTR and retrieval runs (`groups::item_groups`): head = the
        // most frequent `head_share` of the items seen in training.
        let item_group = crate::groups::item_groups(&freq, head_share);
        let feature_map = FeatureMap::standard(dataset, num_users, num_items, seq.max_len);
        let cluster_group = item_cluster.as_ref().map(|c| {
            let k = c.iter().copied().max().unwrap_or(0) as usize + 1;
            let mut cf = vec![0u64; k];
            for (i, &f) in freq.iter().enumerate().skip(1) {
                cf[c[i] as usize] += f;
            }
            let mut order: Vec<usize> = (0..k).filter(|&j| cf[j] > 0).collect();
            order.sort_by(|&a, &b| cf[b].cmp(&cf[a]).then(a.cmp(&b)));
            let heads = ((order.len() as f64 * head_share).round() as usize).max(1);
            let head: Vec<usize> = order.into_iter().take(heads).collect();
            c.iter()
                .map(|&x| u8::from(head.contains(&(x as usize))))
                .collect()
        });
        Self {
            feature_map,
            seq,
            num_items,
            label_freq,
            item_group,
            seen,
            item_cluster,
            cluster_group,
        }
    }
}

/// The real history of row `i` (left padding dropped), as i64 ids.
fn real_history(s: &SeqSamples, i: usize) -> Vec<i64> {
    s.hist_row(i)
        .iter()
        .filter(|&&x| x != 0)
        .map(|&x| i64::from(x))
        .collect()
}

/// Host batch of rows `idx` of `s`: target as `item`, label 1, `weight = item_weight[target]`
/// (1 without weights), `item_logq` of the target.
pub fn host_batch(
    s: &SeqSamples,
    idx: &[usize],
    logq: &[f32],
    item_weight: Option<&[f32]>,
) -> Result<HostBatch> {
    let user: Vec<i64> = idx.iter().map(|&i| i64::from(s.user[i])).collect();
    let item: Vec<i64> = idx.iter().map(|&i| i64::from(s.target[i])).collect();
    let hist: Vec<Vec<i64>> = idx.iter().map(|&i| real_history(s, i)).collect();
    let mut h = HostBatch::from_dense(user, item, vec![1.0; idx.len()], &hist)?;
    h.item_logq = idx.iter().map(|&i| logq[s.target[i] as usize]).collect();
    if let Some(w) = item_weight {
        h.weight = idx.iter().map(|&i| w[s.target[i] as usize]).collect();
    }
    Ok(h)
}

/// Scales weights so their mean over the training labels is 1 (the loss keeps eq. 3's scale
/// for the batch normalisation to work on); unseen items keep their value.
pub fn mean_one(w: &[f32], labels: &[u32]) -> Vec<f32> {
    let mean = labels
        .iter()
        .map(|&t| f64::from(w[t as usize]))
        .sum::<f64>()
        / labels.len().max(1) as f64;
    if mean <= 0.0 || !mean.is_finite() {
        return w.to_vec();
    }
    w.iter().map(|&x| (f64::from(x) / mean) as f32).collect()
}

/// IDW's loss-share reading of eq. 10: `w` is a distribution over items giving each item's share
/// of the loss, so a sample of item `y` weighs `w_y / p_y`, where `p` is the label distribution
/// (`w(0)`, `longtail_core::density::initial_weights`). With `w = p` every labelled item weighs exactly
/// 1 (the unweighted loss, eq. 3); items with `p_y = 0` are never a target and get 0. The result
/// still goes through [`mean_one`] (it already has mean one when `w` sums to 1 over the labels).
pub fn loss_share_weights(w: &[f32], p: &[f32]) -> Vec<f32> {
    w.iter()
        .zip(p)
        .map(|(&w, &p)| if p > 0.0 { w / p } else { 0.0 })
        .collect()
}

/// Frequency-balance weights (eq. 5): `1 / n_y` for training labels, 0 elsewhere.
pub fn frequency_weights(label_freq: &[u64]) -> Vec<f32> {
    label_freq
        .iter()
        .map(|&n| if n > 0 { 1.0 / n as f32 } else { 0.0 })
        .collect()
}

/// The training batches of one retrieval epoch: every sample of `samples` once, in `order`,
/// `batch_size` rows per batch, the last one padded to the same shape (fixed shapes for the
/// engine, as CTR batches: padding rows repeat the batch's first row with weight 0 and
/// `valid` counts the real rows; the in-batch softmax masks the columns of rows `>= valid`, so
/// a padding row is nobody's negative and adds nothing to the loss), the target's log-frequency as
/// `item_logq`, and optional per-item loss weights as row weights.
pub struct SeqBatches<'a> {
    samples: &'a SeqSamples,
    order: Vec<usize>,
    batch_size: usize,
    logq: &'a [f32],
    item_weight: Option<&'a [f32]>,
}

impl<'a> SeqBatches<'a> {
    /// Batches over `samples` in a permutation drawn from `rng` (the epoch's stream).
    pub fn shuffled(
        samples: &'a SeqSamples,
        batch_size: usize,
        logq: &'a [f32],
        rng: &mut impl rand::Rng,
    ) -> Self {
        let mut order: Vec<usize> = (0..samples.len()).collect();
        order.shuffle(rng);
        Self {
            samples,
            order,
            batch_size: batch_size.max(1),
            logq,
            item_weight: None,
        }
    }

    /// Weighs every row by `w[target]` (scale them first, e.g. with [`mean_one`]).
    pub fn with_item_weights(mut self, w: Option<&'a [f32]>) -> Self {
        self.item_weight = w;
        self
    }
}

impl BatchSource for SeqBatches<'_> {
    fn num_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    fn build(&self, b: usize) -> Result<HostBatch> {
        let start = (b * self.batch_size).min(self.order.len());
        let end = (start + self.batch_size).min(self.order.len());
        let real = &self.order[start..end];
        let Some(&first) = real.first() else {
            return host_batch(self.samples, real, self.logq, self.item_weight);
        };
        let mut idx = real.to_vec();
        idx.resize(self.batch_size, first);
        let mut h = host_batch(self.samples, &idx, self.logq, self.item_weight)?;
        for w in &mut h.weight[real.len()..] {
            *w = 0.0;
        }
        h.valid = real.len();
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// `w = p` (IDW's w(0) under the loss-share reading) is exactly the unweighted loss: every
    /// labelled item weighs 1, bit for bit, and mean_one leaves it so. Other `w` give each item
    /// the share `w_y` of the loss: Σ over samples of the weights of item y / Σ all = w_y.
    #[test]
    fn loss_share_weights_give_each_item_its_share() {
        let freq = [0u64, 6, 3, 1];
        let total = 10.0f64;
        let p: Vec<f32> = freq.iter().map(|&n| (n as f64 / total) as f32).collect();
        let labels: Vec<u32> = [1u32; 6].into_iter().chain([2; 3]).chain([3]).collect();
        let same = mean_one(&loss_share_weights(&p, &p), &labels);
        assert_eq!(same, [0.0, 1.0, 1.0, 1.0]);
        let w = [0.0f32, 0.2, 0.3, 0.5];
        let sw = mean_one(&loss_share_weights(&w, &p), &labels);
        let mass: Vec<f64> = (0..4).map(|i| f64::from(sw[i]) * freq[i] as f64).collect();
        let sum: f64 = mass.iter().sum();
        for i in 1..4 {
            assert!((mass[i] / sum - f64::from(w[i])).abs() < 1e-6, "{sw:?}");
        }
        // The literal reading would give the most frequent item the most weight per sample;
        // here its per-sample weight is the smallest (0.2 / 0.6 < 0.3 / 0.3 < 0.5 / 0.1).
        assert!(sw[1] < sw[2] && sw[2] < sw[3]);
    }

    /// Five samples in batches of 2: three batches of two rows; the last holds one real row and
    /// one padding row (a copy of it with weight 0, not counted in `valid`), and every sample
    /// appears exactly once among the real rows.
    #[test]
    fn the_last_batch_is_padded_to_the_batch_size() {
        let s = SeqSamples {
            user: vec![1, 2, 3, 4, 5],
            hist: vec![0, 7, 0, 8, 6, 7, 0, 9, 0, 6],
            hist_len: vec![1, 1, 2, 1, 1],
            target: vec![10, 11, 12, 13, 14],
            target_ts: vec![0; 5],
            negatives: vec![],
        };
        let logq = vec![-1.0f32; 15];
        let w: Vec<f32> = (0..15).map(|i| i as f32).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let b = SeqBatches::shuffled(&s, 2, &logq, &mut rng).with_item_weights(Some(&w));
        assert_eq!(b.num_batches(), 3);
        let mut seen = Vec::new();
        for k in 0..3 {
            let h = b.build(k).unwrap();
            h.validate().unwrap();
            assert_eq!(h.size, 2);
            assert_eq!(h.valid, if k < 2 { 2 } else { 1 });
            for r in 0..h.valid {
                assert_eq!(
                    h.weight[r], h.item[r] as f32,
                    "real rows keep their item weight"
                );
                seen.push(h.item[r]);
            }
            if k == 2 {
                assert_eq!(h.weight[1], 0.0);
                assert_eq!(h.item[1], h.item[0]);
                assert_eq!(h.user[1], h.user[0]);
            }
        }
        seen.sort();
        assert_eq!(seen, vec![10, 11, 12, 13, 14]);
    }
}
