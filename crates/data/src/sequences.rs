//! IDW sequence samples: fixed-length, left-padded item histories with next-item targets,
//! leave-one-out splits and sampled evaluation negatives, following the IDW paper ("Density
//! weighting for multi-interest recommendation", `shared/papers/IDW-density-weighting-multi-interest.md`,
//! §4.1 Datasets and §4.2 Evaluation Metrics).
//!
//! Paper rules:
//! - Maximum sequence length L = 30 ([`SequenceConfig::max_len`]); shorter histories are padded,
//!   longer sequences "are truncated and treated as multiple sequences".
//! - Leave-one-out: for each user sequence the last item is the test item, the one before it the
//!   validation item, and the rest is training data.
//! - At evaluation the ground-truth item is paired with 99 ([`SequenceConfig::eval_negatives`])
//!   randomly sampled negative items the user has not interacted with.
//!
//! Choices made here (the paper leaves them open):
//! - Layout: a history row has exactly `max_len` slots, LEFT padded with item 0, most recent item
//!   last; `hist_len` counts the real items. Item ids are `1..num_items`, 0 is padding.
//! - Train part: all of a user's items but the last two, for a user with >= 3 items. A user with
//!   fewer than 3 items has no validation/test item; their whole sequence is used for TRAINING
//!   only (a 1-item user yields nothing, since a sample needs a history and a target).
//! - [`TrainCut::Chunks`] (default, the paper's "truncated and treated as multiple sequences"):
//!   the train part is cut from its END into non-overlapping windows of L + 1 items, each being
//!   L history items followed by 1 target. The oldest remainder, when it has >= 2 items, forms a
//!   shorter (left-padded) window; a remainder of exactly 1 item has no history and is dropped.
//!   Items of one window never appear in another window's history.
//! - [`TrainCut::Sliding`]: every train position p >= 1 is a target, with the last <= L items
//!   before it as history (the common next-item-prediction augmentation).
//! - Validation sample: target = second-to-last item, history = the last <= L items before it.
//!   Test sample: target = last item, history = the last <= L items before it, so the
//!   validation item is part of the test history (the standard leave-one-out protocol).
//! - History strictly precedes the target in time: items whose timestamp is >= the target's
//!   (ties with the target) are removed from its history. Sliding/valid/test histories are then
//!   the last <= L items strictly earlier than the target; a chunk window only loses its tied
//!   items (it is not refilled from the previous window). A sample whose history ends up empty
//!   is dropped, in every split (a user whose items all share one timestamp yields nothing).
//! - Evaluation negatives: `eval_negatives` DISTINCT items drawn uniformly from `1..num_items`
//!   minus every item of the user's whole sequence (train, valid and test items), drawn
//!   independently for the validation and the test sample, in random order. The draw is exact
//!   (Floyd's subset sampling over the ranks of the unseen items, then a merge with the user's
//!   sorted seen list), so it never loops, whatever share of the catalogue the user has seen. A
//!   user with fewer unseen items than `eval_negatives` is an error naming the user and the
//!   counts (reduce `eval_negatives` or filter the data); it is checked only for users that get
//!   an evaluation sample.
//! - Sample order: by user id, then chronological within a user (train windows oldest first).
//! - Input checks: each user's timestamps must be non-decreasing (as [`UserSequences`]
//!   promises) and every item must lie in `1..num_items`; otherwise [`DataError::Invalid`].
//! - An empty validation or test set is an error ([`DataError::Invalid`]); an empty train set is
//!   allowed here (the trainer decides).
//!
//! Randomness: the named stream "sequences/negatives" of the seed, one ChaCha sub-stream per user
//! ([`seed::rng_indexed`]), so the result is identical for any number of rayon threads.
//!
//! For models with attribute sequences (MFN), [`align_attribute`] and [`align_list_attribute`]
//! map a history row to the matching attribute ids.

use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ctr::UserSequences;
use crate::error::{DataError, Result};
use crate::seed;

/// Users per parallel work unit.
const USER_BLOCK: usize = 1024;
/// Fewest items a user needs to get a validation and a test item.
pub const MIN_EVAL_LEN: usize = 3;

const TRAIN: usize = 0;
const VALID: usize = 1;
const TEST: usize = 2;

/// How a user's train part is cut into training samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainCut {
    /// Non-overlapping windows of `max_len + 1` items cut from the end (the paper's rule).
    #[default]
    Chunks,
    /// Every train position >= 1 is a target with the last <= `max_len` earlier items.
    Sliding,
}

/// Configuration of [`build_sequences`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequenceConfig {
    /// Longest history L (default 30); every history row has exactly this many slots.
    pub max_len: usize,
    /// Sampled negatives per validation/test sample (default 99).
    pub eval_negatives: usize,
    /// How the train part is cut (default `chunks`).
    pub train_cut: TrainCut,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        SequenceConfig {
            max_len: 30,
            eval_negatives: 99,
            train_cut: TrainCut::Chunks,
        }
    }
}

impl SequenceConfig {
    /// Checks the config on its own (data-dependent checks happen in [`build_sequences`]).
    pub fn validate(&self) -> Result<()> {
        if self.max_len == 0 {
            return Err(DataError::config("sequences.max_len", "must be >= 1"));
        }
        if self.eval_negatives == 0 {
            return Err(DataError::config(
                "sequences.eval_negatives",
                "must be >= 1",
            ));
        }
        Ok(())
    }
}

/// Sequence samples of one split, column-wise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeqSamples {
    /// User id per sample.
    pub user: Vec<u32>,
    /// Histories, `[n * max_len]`, LEFT padded with 0, most recent item last.
    pub hist: Vec<u32>,
    /// Number of real (non-padding) items per history, in `1..=max_len`.
    pub hist_len: Vec<u32>,
    /// Target item per sample.
    pub target: Vec<u32>,
    /// Timestamp of the target interaction.
    pub target_ts: Vec<i64>,
    /// Evaluation negatives, `[n * eval_negatives]` for valid/test; empty for train.
    pub negatives: Vec<u32>,
}

impl SeqSamples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.target.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.target.is_empty()
    }

    /// Slots per history row (0 when empty).
    pub fn row_len(&self) -> usize {
        self.hist.len().checked_div(self.len()).unwrap_or(0)
    }

    /// Negatives per sample (0 for train samples, or when empty).
    pub fn negatives_per_sample(&self) -> usize {
        self.negatives.len().checked_div(self.len()).unwrap_or(0)
    }

    /// The history row of sample `i` (`max_len` slots, left padded). Panics when out of range.
    pub fn hist_row(&self, i: usize) -> &[u32] {
        let w = self.row_len();
        &self.hist[i * w..(i + 1) * w]
    }

    /// The negatives of sample `i` (empty for train samples). Panics when out of range.
    pub fn negatives_row(&self, i: usize) -> &[u32] {
        let w = self.negatives_per_sample();
        &self.negatives[i * w..(i + 1) * w]
    }

    /// Adds a sample; `hist` (1..=max_len items, oldest first) is left padded to `max_len`.
    fn push(&mut self, user: u32, hist: &[u32], max_len: usize, target: u32, ts: i64) {
        debug_assert!(!hist.is_empty() && hist.len() <= max_len);
        self.user.push(user);
        self.hist.resize(self.hist.len() + max_len - hist.len(), 0);
        self.hist.extend_from_slice(hist);
        self.hist_len.push(hist.len() as u32);
        self.target.push(target);
        self.target_ts.push(ts);
    }

    fn append(&mut self, other: &mut SeqSamples) {
        self.user.append(&mut other.user);
        self.hist.append(&mut other.hist);
        self.hist_len.append(&mut other.hist_len);
        self.target.append(&mut other.target);
        self.target_ts.append(&mut other.target_ts);
        self.negatives.append(&mut other.negatives);
    }
}

/// Train/valid/test sequence samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqDataset {
    /// History slots per sample (L).
    pub max_len: usize,
    /// Negatives per validation/test sample.
    pub eval_negatives: usize,
    pub train: SeqSamples,
    pub valid: SeqSamples,
    pub test: SeqSamples,
}

/// Builds IDW sequence samples from per-user chronological sequences (see the module doc for every
/// rule); deterministic for `seed` whatever the thread count. `num_items` is the item vocabulary
/// size, padding id 0 included.
pub fn build_sequences(
    seqs: &UserSequences,
    num_items: usize,
    cfg: &SequenceConfig,
    seed: u64,
) -> Result<SeqDataset> {
    cfg.validate()?;
    // Every caller (prepare, train from raw data, bench) gets the size check before the samples
    // are built; prepare also counts its item-feature slots first.
    let rows = crate::prepare::max_sequence_samples(seqs, cfg);
    crate::memory::check_fits(
        crate::prepare::sequences_bytes(rows, cfg.max_len, cfg.eval_negatives, 1),
        "sequences.max_len",
        &format!(
            "a history of {} items for each of up to {rows} sequence samples",
            cfg.max_len
        ),
    )?;
    if num_items < 2 {
        return Err(DataError::Invalid(format!(
            "sequences: num_items = {num_items}, need at least one real item (ids 1..num_items)"
        )));
    }
    if num_items - 1 > u32::MAX as usize {
        return Err(DataError::Invalid(format!(
            "sequences: num_items = {num_items} does not fit u32 item ids"
        )));
    }
    check_csr(seqs)?;
    let num_users = seqs.num_users();
    let neg_seed = seed::derive_seed(seed, "sequences/negatives");

    let blocks: Vec<Result<[SeqSamples; 3]>> = (0..num_users.div_ceil(USER_BLOCK))
        .into_par_iter()
        .map(|blk| {
            let mut out: [SeqSamples; 3] = Default::default();
            let mut scratch = Scratch::default();
            for u in blk * USER_BLOCK..((blk + 1) * USER_BLOCK).min(num_users) {
                user_samples(
                    u,
                    seqs.seq(u as u32),
                    seqs.seq_ts(u as u32),
                    num_items,
                    cfg,
                    neg_seed,
                    &mut out,
                    &mut scratch,
                )?;
            }
            Ok(out)
        })
        .collect();

    let mut train = SeqSamples::default();
    let mut valid = SeqSamples::default();
    let mut test = SeqSamples::default();
    // Blocks are in user order, so the first error is the lowest user's: deterministic.
    for block in blocks {
        let [mut tr, mut va, mut te] = block?;
        train.append(&mut tr);
        valid.append(&mut va);
        test.append(&mut te);
    }
    for (name, split) in [("validation", &valid), ("test", &test)] {
        if split.is_empty() {
            let eligible = (0..num_users)
                .filter(|&u| seqs.seq(u as u32).len() >= MIN_EVAL_LEN)
                .count();
            return Err(DataError::Invalid(format!(
                "sequences: the {name} set is empty: leave-one-out needs users with >= {MIN_EVAL_LEN} \
                 interactions whose held-out item has an earlier-timestamped history; \
                 {eligible} of {num_users} users have >= {MIN_EVAL_LEN} interactions"
            )));
        }
    }
    Ok(SeqDataset {
        max_len: cfg.max_len,
        eval_negatives: cfg.eval_negatives,
        train,
        valid,
        test,
    })
}

fn check_csr(seqs: &UserSequences) -> Result<()> {
    let o = &seqs.offsets;
    let ok = !o.is_empty()
        && o[0] == 0
        && o.windows(2).all(|w| w[0] <= w[1])
        && o[o.len() - 1] == seqs.items.len()
        && seqs.ts.len() == seqs.items.len();
    if ok {
        Ok(())
    } else {
        Err(DataError::Invalid(format!(
            "sequences: malformed UserSequences (offsets len {}, first {:?}, last {:?}, {} items, {} timestamps)",
            o.len(),
            o.first(),
            o.last(),
            seqs.items.len(),
            seqs.ts.len()
        )))
    }
}

/// Per-block reusable buffers.
#[derive(Default)]
struct Scratch {
    seen: Vec<u32>,
    ranks: Vec<u32>,
}

/// Number of leading entries of `ts` (sorted) strictly earlier than `t`.
fn earlier(ts: &[i64], t: i64) -> usize {
    ts.partition_point(|&x| x < t)
}

#[allow(clippy::too_many_arguments)]
fn user_samples(
    u: usize,
    items: &[u32],
    ts: &[i64],
    num_items: usize,
    cfg: &SequenceConfig,
    neg_seed: u64,
    out: &mut [SeqSamples; 3],
    scratch: &mut Scratch,
) -> Result<()> {
    let n = items.len();
    if n == 0 {
        return Ok(());
    }
    if let Some(&bad) = items.iter().find(|&&i| i == 0 || i as usize >= num_items) {
        return Err(DataError::Invalid(format!(
            "sequences: user {u} has item {bad}, outside 1..{num_items}"
        )));
    }
    if let Some(w) = ts.windows(2).position(|w| w[0] > w[1]) {
        return Err(DataError::Invalid(format!(
            "sequences: user {u}'s timestamps are not chronological ({} at position {w} before {} at {})",
            ts[w],
            ts[w + 1],
            w + 1
        )));
    }
    let user = u as u32;
    let l = cfg.max_len;
    let n_train = if n >= MIN_EVAL_LEN { n - 2 } else { n };

    match cfg.train_cut {
        TrainCut::Chunks => {
            // Window starts, cut from the end; emitted oldest first.
            let mut windows: Vec<(usize, usize)> = Vec::new();
            let mut end = n_train;
            while end >= 2 {
                let start = end.saturating_sub(l + 1);
                windows.push((start, end));
                end = start;
            }
            for &(start, end) in windows.iter().rev() {
                let p = end - 1;
                let q = start + earlier(&ts[start..p], ts[p]);
                if q > start {
                    out[TRAIN].push(user, &items[start..q], l, items[p], ts[p]);
                }
            }
        }
        TrainCut::Sliding => {
            for p in 1..n_train {
                let q = earlier(&ts[..p], ts[p]);
                if q > 0 {
                    out[TRAIN].push(user, &items[q.saturating_sub(l)..q], l, items[p], ts[p]);
                }
            }
        }
    }

    if n < MIN_EVAL_LEN {
        return Ok(());
    }
    let mut rng = seed::rng_indexed(neg_seed, "users", u as u64);
    let mut candidates: Option<usize> = None;
    for (split, p) in [(VALID, n - 2), (TEST, n - 1)] {
        let q = earlier(&ts[..p], ts[p]);
        if q == 0 {
            continue;
        }
        let cands = match candidates {
            Some(c) => c,
            None => {
                let seen = &mut scratch.seen;
                seen.clear();
                seen.extend_from_slice(items);
                seen.sort_unstable();
                seen.dedup();
                let c = (num_items - 1) - seen.len();
                if c < cfg.eval_negatives {
                    return Err(DataError::config(
                        "sequences.eval_negatives",
                        format!(
                            "user {u} has only {c} unseen items (catalogue of {} items, {} seen), \
                             fewer than the {} distinct evaluation negatives asked for",
                            num_items - 1,
                            seen.len(),
                            cfg.eval_negatives
                        ),
                    ));
                }
                candidates = Some(c);
                c
            }
        };
        let dst = &mut out[split];
        dst.push(user, &items[q.saturating_sub(l)..q], l, items[p], ts[p]);
        sample_distinct(
            &mut rng,
            cfg.eval_negatives,
            cands,
            &scratch.seen,
            &mut scratch.ranks,
            &mut dst.negatives,
        );
    }
    Ok(())
}

/// Appends `k` distinct items drawn uniformly from `1..=num_items - 1` minus `seen` (sorted,
/// deduplicated, `candidates` = number of unseen items >= k), in random order.
///
/// Floyd's algorithm picks a uniform k-subset of the ranks `0..candidates` without rejection;
/// a single merge with `seen` turns the sorted ranks into items (the r-th unseen item).
fn sample_distinct(
    rng: &mut impl Rng,
    k: usize,
    candidates: usize,
    seen: &[u32],
    ranks: &mut Vec<u32>,
    out: &mut Vec<u32>,
) {
    debug_assert!(k <= candidates);
    ranks.clear();
    for j in (candidates - k)..candidates {
        let j = j as u32;
        let t = rng.gen_range(0..=j);
        match ranks.binary_search(&t) {
            // Every rank drawn so far is < j, so j goes last.
            Ok(_) => ranks.push(j),
            Err(pos) => ranks.insert(pos, t),
        }
    }
    let first = out.len();
    let mut si = 0usize;
    for &r in ranks.iter() {
        // The r-th (0-based) unseen item x: x - #{seen <= x} = r + 1 and x is unseen.
        let mut x = r + 1 + si as u32;
        while si < seen.len() && seen[si] <= x {
            si += 1;
            x += 1;
        }
        out.push(x);
    }
    out[first..].shuffle(rng);
}

/// Maps each history item to its attribute id `item_attr[item]` (for MFN-style attribute
/// sequences). Padding (0) stays 0, and so does an item outside `item_attr`.
pub fn align_attribute(hist: &[u32], item_attr: &[u32]) -> Vec<u32> {
    hist.iter()
        .map(|&i| {
            if i == 0 {
                0
            } else {
                item_attr.get(i as usize).copied().unwrap_or(0)
            }
        })
        .collect()
}

/// Multi-valued attributes in CSR form (`values[offsets[i]..offsets[i + 1]]` are item i's
/// attribute ids): returns `[hist.len() * max_per_item]`, each history slot's values left-aligned,
/// truncated to `max_per_item` and padded with 0. Padding items (0), items outside `offsets`, and
/// malformed ranges give all-zero slots.
pub fn align_list_attribute(
    hist: &[u32],
    offsets: &[usize],
    values: &[u32],
    max_per_item: usize,
) -> Vec<u32> {
    let mut out = vec![0u32; hist.len() * max_per_item];
    for (slot, &i) in out.chunks_exact_mut(max_per_item.max(1)).zip(hist) {
        if i == 0 || max_per_item == 0 {
            continue;
        }
        let i = i as usize;
        if let (Some(&a), Some(&b)) = (offsets.get(i), offsets.get(i + 1)) {
            if a <= b && b <= values.len() {
                let v = &values[a..b.min(a + max_per_item)];
                slot[..v.len()].copy_from_slice(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashSet;

    /// CSR sequences from per-user (item, ts) lists; user 0 (padding) is empty.
    fn seqs_of(users: &[Vec<(u32, i64)>]) -> UserSequences {
        let mut s = UserSequences {
            offsets: vec![0, 0],
            ..Default::default()
        };
        for u in users {
            for &(i, t) in u {
                s.items.push(i);
                s.ts.push(t);
            }
            s.offsets.push(s.items.len());
        }
        s
    }

    /// Items `first..first + n` at timestamps 10, 20, ...
    fn run(first: u32, n: u32) -> Vec<(u32, i64)> {
        (0..n).map(|k| (first + k, 10 * (k as i64 + 1))).collect()
    }

    fn cfg(max_len: usize, eval_negatives: usize, train_cut: TrainCut) -> SequenceConfig {
        SequenceConfig {
            max_len,
            eval_negatives,
            train_cut,
        }
    }

    fn rows(s: &SeqSamples) -> Vec<(u32, Vec<u32>, u32)> {
        (0..s.len())
            .map(|i| (s.user[i], s.hist_row(i).to_vec(), s.target[i]))
            .collect()
    }

    #[test]
    fn sizes_that_cannot_fit_are_refused_before_building() {
        // 20 000 users x 3 samples x a 10^7-item history: hundreds of GiB, refused at once
        // naming the key (train from raw data reached this without a check).
        let runs: Vec<_> = (0..20_000).map(|u| run(1 + (u % 7), 9)).collect();
        let s = seqs_of(&runs);
        let e = build_sequences(&s, 40, &cfg(10_000_000, 5, TrainCut::Chunks), 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        if crate::memory::available_bytes().is_some() {
            assert!(e.contains("sequences.max_len"), "{e}");
        }
    }

    #[test]
    fn chunks_are_cut_from_the_end_with_left_padding() {
        // User 1: 9 items -> train part 1..=7 -> windows [4 5 6 | 7] and [1 2 | 3] (padded).
        // User 2: 11 items (21..=31) -> train part 21..=29 -> [26 27 28 | 29], [22 23 24 | 25],
        // remainder [21] dropped.
        let s = seqs_of(&[run(1, 9), run(21, 11)]);
        let d = build_sequences(&s, 40, &cfg(3, 5, TrainCut::Chunks), 1).unwrap();
        assert_eq!(
            rows(&d.train),
            vec![
                (1, vec![0, 1, 2], 3),
                (1, vec![4, 5, 6], 7),
                (2, vec![22, 23, 24], 25),
                (2, vec![26, 27, 28], 29),
            ]
        );
        assert_eq!(d.train.hist_len, vec![2, 3, 3, 3]);
        assert_eq!(d.train.target_ts, vec![30, 70, 50, 90]);
        assert!(d.train.negatives.is_empty());
        assert!(d.train.negatives_row(0).is_empty());
        assert_eq!(
            rows(&d.valid),
            vec![(1, vec![5, 6, 7], 8), (2, vec![27, 28, 29], 30)]
        );
        assert_eq!(
            rows(&d.test),
            vec![(1, vec![6, 7, 8], 9), (2, vec![28, 29, 30], 31)]
        );
        assert_eq!(d.test.target_ts, vec![90, 110]);
        assert_eq!((d.max_len, d.eval_negatives), (3, 5));
        assert_eq!(d.valid.negatives.len(), 2 * 5);
    }

    #[test]
    fn sliding_uses_every_train_position() {
        let s = seqs_of(&[run(1, 6)]);
        let d = build_sequences(&s, 20, &cfg(3, 2, TrainCut::Sliding), 1).unwrap();
        assert_eq!(
            rows(&d.train),
            vec![
                (1, vec![0, 0, 1], 2),
                (1, vec![0, 1, 2], 3),
                (1, vec![1, 2, 3], 4)
            ]
        );
        assert_eq!(d.train.hist_len, vec![1, 2, 3]);
        assert_eq!(rows(&d.valid), vec![(1, vec![2, 3, 4], 5)]);
        assert_eq!(rows(&d.test), vec![(1, vec![3, 4, 5], 6)]);
    }

    #[test]
    fn leave_one_out_and_short_users() {
        // User 1: 3 items -> no train sample (a 1-item train part), valid 2, test 3.
        // User 2: 2 items -> train only. User 3: 1 item -> nothing. User 4: empty.
        let s = seqs_of(&[run(1, 3), run(5, 2), run(8, 1), vec![]]);
        for cut in [TrainCut::Chunks, TrainCut::Sliding] {
            let d = build_sequences(&s, 20, &cfg(4, 3, cut), 9).unwrap();
            assert_eq!(rows(&d.train), vec![(2, vec![0, 0, 0, 5], 6)], "{cut:?}");
            assert_eq!(rows(&d.valid), vec![(1, vec![0, 0, 0, 1], 2)]);
            assert_eq!(rows(&d.test), vec![(1, vec![0, 0, 1, 2], 3)]);
            assert_eq!(d.valid.hist_len, vec![1]);
            assert_eq!(d.test.hist_len, vec![2]);
        }
    }

    #[test]
    fn timestamp_ties_are_excluded_from_history() {
        // ts 1 2 3 3 4 4: train part = items 1..=4, valid = item 5, test = item 6.
        let u: Vec<(u32, i64)> = vec![(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (6, 4)];
        let s = seqs_of(&[u]);
        let d = build_sequences(&s, 20, &cfg(5, 2, TrainCut::Chunks), 1).unwrap();
        // One window [1 2 3 | 4]: item 3 shares the target's timestamp.
        assert_eq!(rows(&d.train), vec![(1, vec![0, 0, 0, 1, 2], 4)]);
        assert_eq!(rows(&d.valid), vec![(1, vec![0, 1, 2, 3, 4], 5)]);
        // Item 5 shares the test item's timestamp.
        assert_eq!(rows(&d.test), vec![(1, vec![0, 1, 2, 3, 4], 6)]);
        let d = build_sequences(&s, 20, &cfg(5, 2, TrainCut::Sliding), 1).unwrap();
        assert_eq!(
            rows(&d.train),
            vec![
                (1, vec![0, 0, 0, 0, 1], 2),
                (1, vec![0, 0, 0, 1, 2], 3),
                (1, vec![0, 0, 0, 1, 2], 4),
            ]
        );
        // Sliding with L = 1 refills from earlier items: the test history is item 4, not 5.
        let d = build_sequences(&s, 20, &cfg(1, 2, TrainCut::Sliding), 1).unwrap();
        assert_eq!(rows(&d.test), vec![(1, vec![4], 6)]);
        assert_eq!(rows(&d.valid), vec![(1, vec![4], 5)]);
    }

    #[test]
    fn samples_with_an_empty_history_are_dropped() {
        // User 1: all at one timestamp -> nothing. User 2: normal.
        let s = seqs_of(&[vec![(1, 5), (2, 5), (3, 5), (4, 5)], run(5, 4)]);
        let d = build_sequences(&s, 20, &cfg(3, 2, TrainCut::Sliding), 1).unwrap();
        assert!(d.train.user.iter().all(|&u| u == 2));
        assert_eq!(d.valid.user, vec![2]);
        assert_eq!(d.test.user, vec![2]);
        let s = seqs_of(&[vec![(1, 5), (2, 5), (3, 5), (4, 5)]]);
        let e = build_sequences(&s, 20, &cfg(3, 2, TrainCut::Sliding), 1).unwrap_err();
        assert!(matches!(e, DataError::Invalid(_)), "{e}");
    }

    #[test]
    fn negatives_are_distinct_unseen_and_deterministic() {
        // 3000 users (several rayon blocks) over a catalogue of 1..=150.
        let mut r = ChaCha8Rng::seed_from_u64(5);
        let users: Vec<Vec<(u32, i64)>> = (0..3000)
            .map(|_| {
                let n = r.gen_range(3..40);
                (0..n).map(|k| (r.gen_range(1..151u32), k as i64)).collect()
            })
            .collect();
        let s = seqs_of(&users);
        let c = cfg(30, 99, TrainCut::Chunks);
        let build = |threads: usize, seed: u64| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| build_sequences(&s, 151, &c, seed).unwrap())
        };
        let one = build(1, 7);
        let four = build(4, 7);
        assert_eq!(one, four);
        assert_eq!(one, build_sequences(&s, 151, &c, 7).unwrap());
        let other = build(4, 8);
        assert_ne!(one.test.negatives, other.test.negatives);
        assert_eq!(one.test.target, other.test.target);
        for split in [&one.valid, &one.test] {
            assert_eq!(split.negatives.len(), split.len() * 99);
            for i in 0..split.len() {
                let u = split.user[i];
                let seen: HashSet<u32> = s.seq(u).iter().copied().collect();
                let negs = split.negatives_row(i);
                assert_eq!(negs.len(), 99);
                let set: HashSet<u32> = negs.iter().copied().collect();
                assert_eq!(set.len(), 99, "distinct");
                assert!(negs
                    .iter()
                    .all(|n| (1..151).contains(n) && !seen.contains(n)));
            }
        }
        // Valid and test negatives are drawn independently.
        assert_ne!(one.valid.negatives_row(0), one.test.negatives_row(0));
    }

    #[test]
    fn negatives_are_uniform_over_unseen_items() {
        // Each user has seen {1, 2, 3}; 3 negatives out of the 7 unseen items 4..=10.
        let users: Vec<Vec<(u32, i64)>> = (0..7000).map(|_| vec![(2, 1), (1, 2), (3, 3)]).collect();
        let s = seqs_of(&users);
        let d = build_sequences(&s, 11, &cfg(2, 3, TrainCut::Chunks), 3).unwrap();
        let mut count = [0usize; 11];
        let mut first = [0usize; 11];
        for i in 0..d.test.len() {
            for &n in d.test.negatives_row(i) {
                count[n as usize] += 1;
            }
            first[d.test.negatives_row(i)[0] as usize] += 1;
        }
        assert_eq!(count[..4], [0, 0, 0, 0]);
        // Expected 3000 each (7000 * 3 / 7), and 1000 each in the first slot.
        for x in 4..11 {
            assert!((2800..3200).contains(&count[x]), "{count:?}");
            assert!((850..1150).contains(&first[x]), "{first:?}");
        }
    }

    #[test]
    fn all_unseen_items_when_exactly_enough() {
        // Catalogue 1..=9, user saw 1..=5 -> unseen 6..=9.
        let s = seqs_of(&[run(1, 5)]);
        let d = build_sequences(&s, 10, &cfg(3, 4, TrainCut::Chunks), 2).unwrap();
        for split in [&d.valid, &d.test] {
            let mut n = split.negatives_row(0).to_vec();
            n.sort_unstable();
            assert_eq!(n, vec![6, 7, 8, 9]);
        }
        let e = build_sequences(&s, 10, &cfg(3, 5, TrainCut::Chunks), 2).unwrap_err();
        match e {
            DataError::Config { key, message } => {
                assert_eq!(key, "sequences.eval_negatives");
                assert!(
                    message.contains("user 1") && message.contains("only 4 unseen"),
                    "{message}"
                );
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn empty_eval_sets_are_errors() {
        let s = seqs_of(&[run(1, 2), run(3, 1)]);
        let e = build_sequences(&s, 10, &cfg(3, 2, TrainCut::Chunks), 2).unwrap_err();
        match e {
            DataError::Invalid(m) => {
                assert!(
                    m.contains("validation set is empty") && m.contains("0 of 3 users"),
                    "{m}"
                )
            }
            e => panic!("unexpected {e}"),
        }
        // The validation item ties with the only earlier item: valid empty, test present.
        let s = seqs_of(&[vec![(1, 1), (2, 1), (3, 2)]]);
        let e = build_sequences(&s, 10, &cfg(3, 2, TrainCut::Chunks), 2).unwrap_err();
        assert!(e.to_string().contains("validation set is empty"), "{e}");
        let s = UserSequences::default();
        assert!(build_sequences(&s, 10, &SequenceConfig::default(), 0).is_err());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let c = cfg(3, 2, TrainCut::Chunks);
        let s = seqs_of(&[vec![(1, 1), (0, 2), (3, 3)]]);
        assert!(build_sequences(&s, 10, &c, 0)
            .unwrap_err()
            .to_string()
            .contains("item 0"));
        let s = seqs_of(&[vec![(1, 1), (10, 2), (3, 3)]]);
        assert!(build_sequences(&s, 10, &c, 0)
            .unwrap_err()
            .to_string()
            .contains("item 10"));
        let s = seqs_of(&[vec![(1, 3), (2, 2), (3, 4)]]);
        assert!(build_sequences(&s, 10, &c, 0)
            .unwrap_err()
            .to_string()
            .contains("not chronological"));
        let mut s = seqs_of(&[run(1, 4)]);
        s.ts.pop();
        assert!(build_sequences(&s, 10, &c, 0)
            .unwrap_err()
            .to_string()
            .contains("malformed"));
        let s = seqs_of(&[run(1, 4)]);
        assert!(build_sequences(&s, 1, &c, 0).is_err());
    }

    #[test]
    fn config_validation_and_serde() {
        assert!(SequenceConfig::default().validate().is_ok());
        let e = cfg(0, 99, TrainCut::Chunks).validate().unwrap_err();
        assert!(matches!(e, DataError::Config { ref key, .. } if key == "sequences.max_len"));
        let e = cfg(30, 0, TrainCut::Chunks).validate().unwrap_err();
        assert!(
            matches!(e, DataError::Config { ref key, .. } if key == "sequences.eval_negatives")
        );
        // build_sequences validates too.
        let s = seqs_of(&[run(1, 4)]);
        assert!(build_sequences(&s, 10, &cfg(0, 2, TrainCut::Chunks), 0).is_err());

        let d: SequenceConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(d, SequenceConfig::default());
        assert_eq!(
            (d.max_len, d.eval_negatives, d.train_cut),
            (30, 99, TrainCut::Chunks)
        );
        let c: SequenceConfig =
            serde_json::from_str(r#"{"max_len": 5, "train_cut": "sliding"}"#).unwrap();
        assert_eq!(c, cfg(5, 99, TrainCut::Sliding));
        assert!(serde_json::from_str::<SequenceConfig>(r#"{"maxlen": 5}"#).is_err());
        assert!(serde_json::from_str::<SequenceConfig>(r#"{"train_cut": "Sliding"}"#).is_err());
        let back: SequenceConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn attribute_alignment() {
        let attr = vec![7, 1, 2, 3];
        assert_eq!(
            align_attribute(&[0, 0, 3, 1, 9], &attr),
            vec![0, 0, 3, 1, 0]
        );
        assert!(align_attribute(&[], &attr).is_empty());
        // Item 1: [10, 11, 12], item 2: [], item 3: [13].
        let offsets = vec![0, 0, 3, 3, 4];
        let values = vec![10, 11, 12, 13];
        assert_eq!(
            align_list_attribute(&[0, 1, 2, 3, 8], &offsets, &values, 2),
            vec![0, 0, 10, 11, 0, 0, 13, 0, 0, 0]
        );
        assert_eq!(
            align_list_attribute(&[1, 3], &offsets, &values, 4),
            vec![10, 11, 12, 0, 13, 0, 0, 0]
        );
        assert!(align_list_attribute(&[1, 3], &offsets, &values, 0).is_empty());
        // Malformed ranges give zeros rather than panicking.
        assert_eq!(
            align_list_attribute(&[1], &[0, 5, 9], &values, 2),
            vec![0, 0]
        );
    }

    /// Random sequences with many timestamp ties: every sample's history is strictly earlier,
    /// matches the expected positions, and negatives avoid the user's items.
    #[test]
    fn property_random_sequences() {
        for case in 0..40u64 {
            let mut r = ChaCha8Rng::seed_from_u64(1000 + case);
            let num_items = r.gen_range(60..100usize);
            let l = r.gen_range(1..8usize);
            let k = r.gen_range(1..15usize);
            let cut = if case % 2 == 0 {
                TrainCut::Chunks
            } else {
                TrainCut::Sliding
            };
            let users: Vec<Vec<(u32, i64)>> = (0..r.gen_range(1..60))
                .map(|_| {
                    let n = r.gen_range(0..25);
                    let mut t = r.gen_range(-5..5i64);
                    (0..n)
                        .map(|_| {
                            t += r.gen_range(0..3); // ties are frequent
                            (r.gen_range(1..num_items as u32), t)
                        })
                        .collect()
                })
                .collect();
            // Ensure at least one user with distinct timestamps so eval sets are non-empty.
            let mut users = users;
            users.push(run(1, 5));
            let s = seqs_of(&users);
            let c = cfg(l, k, cut);
            let d = build_sequences(&s, num_items, &c, case).unwrap();

            // Expected samples, recomputed naively (filtering, not partition_point).
            let hist_before = |u: u32, p: usize, from: usize| -> Vec<u32> {
                let (items, ts) = (s.seq(u), s.seq_ts(u));
                let h: Vec<u32> = (from..p)
                    .filter(|&j| ts[j] < ts[p])
                    .map(|j| items[j])
                    .collect();
                h[h.len().saturating_sub(l)..].to_vec()
            };
            let pad = |h: &[u32]| -> Vec<u32> {
                let mut v = vec![0; l - h.len()];
                v.extend_from_slice(h);
                v
            };
            let mut exp: [Vec<(u32, Vec<u32>, u32)>; 3] = Default::default();
            for u in 0..s.num_users() as u32 {
                let items = s.seq(u);
                let n = items.len();
                let n_train = if n >= 3 { n - 2 } else { n };
                let mut train_pos: Vec<(usize, usize)> = Vec::new(); // (target, window start)
                match cut {
                    TrainCut::Chunks => {
                        let mut end = n_train;
                        while end >= 2 {
                            let start = end.saturating_sub(l + 1);
                            train_pos.push((end - 1, start));
                            end = start;
                        }
                        train_pos.reverse();
                    }
                    TrainCut::Sliding => train_pos.extend((1..n_train).map(|p| (p, 0))),
                }
                for (p, from) in train_pos {
                    let h = hist_before(u, p, from);
                    if !h.is_empty() {
                        exp[TRAIN].push((u, pad(&h), items[p]));
                    }
                }
                if n >= 3 {
                    for (split, p) in [(VALID, n - 2), (TEST, n - 1)] {
                        let h = hist_before(u, p, 0);
                        if !h.is_empty() {
                            exp[split].push((u, pad(&h), items[p]));
                        }
                    }
                }
            }
            for (split, got) in [(TRAIN, &d.train), (VALID, &d.valid), (TEST, &d.test)] {
                assert_eq!(rows(got), exp[split], "case {case} split {split}");
                for i in 0..got.len() {
                    let u = got.user[i];
                    let (items, ts) = (s.seq(u), s.seq_ts(u));
                    let row = got.hist_row(i);
                    assert_eq!(row.len(), l);
                    let hl = got.hist_len[i] as usize;
                    assert!(hl >= 1 && row[..l - hl].iter().all(|&x| x == 0));
                    assert!(row[l - hl..].iter().all(|&x| x != 0));
                    // Every history item has an occurrence strictly before the target time.
                    let t = got.target_ts[i];
                    for &h in &row[l - hl..] {
                        assert!(
                            items.iter().zip(ts).any(|(&x, &tx)| x == h && tx < t),
                            "case {case}: history item {h} not before {t}"
                        );
                    }
                    if split == TRAIN {
                        assert!(got.negatives_row(i).is_empty());
                    } else {
                        let negs = got.negatives_row(i);
                        assert_eq!(negs.len(), k);
                        let set: HashSet<u32> = negs.iter().copied().collect();
                        assert_eq!(set.len(), k);
                        assert!(negs
                            .iter()
                            .all(|n| (1..num_items as u32).contains(n) && !items.contains(n)));
                        let p = if split == VALID {
                            items.len() - 2
                        } else {
                            items.len() - 1
                        };
                        assert_eq!((got.target[i], t), (items[p], ts[p]));
                    }
                }
            }
        }
    }
}
