//! Pointwise CTR samples with sampled negatives, in a memory-light layout.
//!
//! Each user's chronological positive interactions are stored once, in CSR form
//! ([`UserSequences`]); a sample only points into them (`user`, `hist_end`), so a history is never
//! copied per sample. For a positive at time `t` the history is `seq(user)[..hist_end]`: every
//! positive of the user strictly before `t` (most recent last; positives tied with `t` are not
//! history, so no input is at or after the target's time), and its `neg_per_pos` sampled
//! negatives share the user, the time and the history.
//!
//! Labels: implicit feedback (every row positive) or `positive_threshold` (rating > t positive).
//! The other rows are kept as [`CtrDataset::negative_feedback`] and, with `rated_negatives`, also
//! become label-0 samples.
//!
//! Splits ([`SplitRule`]):
//! - `LeaveLastOut`: per user, the last positive is test, the one before it valid (only for users
//!   with >= 3 positives), the rest train. A user with 1 positive has only a test sample (with an
//!   empty history); a user with 2 has one train and one test sample.
//! - `Random { valid, test }`: each positive goes independently to test with probability `test`,
//!   to valid with `valid`, else to train (the HIM protocol uses 70/10/20). Histories still hold
//!   every earlier positive, whatever split it went to.
//! - `Temporal { valid, test }`: one global time cut (the latest `test` share of positives by
//!   time is test, the `valid` share before it valid); ties at a cut go to the later split.
//!
//! A split that leaves the train or the test set empty is an error (config key `split`).
//!
//! Negatives: items drawn uniformly, with replacement, from `1..num_items` minus every item the
//! user ever interacted with (positives of all splits and rated negatives, so a held-out positive
//! is never used as a negative). A user
//! who has seen every item gets no negatives (there is nothing to draw); sampling never loops:
//! after a few rejected draws it picks the r-th unseen item directly.
//!
//! Groups: user groups from the number of TRAIN positives ([`ActivenessRule`]), item groups from
//! the train item frequencies ([`item_groups`]); both stored per sample.
//!
//! Randomness: the split (Random) and the negatives use the named streams "split" and
//! "negatives" of the seed, one ChaCha sub-stream per user, so the result is the same for any
//! number of threads.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::feature_map::FeatureMap;
use crate::groups::{item_groups, ActivenessRule};
use crate::seed;
use crate::table::Interactions;

/// Users per parallel work unit when building samples.
const USER_BLOCK: usize = 1024;
/// Rejection-sampling attempts before falling back to direct selection of an unseen item.
const MAX_REJECTIONS: usize = 32;

/// Per-user chronological positive sequences in CSR form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserSequences {
    /// `offsets[u]..offsets[u + 1]` is user u's range in `items`/`ts`; len = num_users + 1.
    pub offsets: Vec<usize>,
    pub items: Vec<u32>,
    pub ts: Vec<i64>,
}

impl UserSequences {
    /// User `user`'s positive items, oldest first; empty for an unknown user.
    pub fn seq(&self, user: u32) -> &[u32] {
        let (a, b) = self.range(user);
        &self.items[a..b]
    }

    /// Timestamps matching [`UserSequences::seq`].
    pub fn seq_ts(&self, user: u32) -> &[i64] {
        let (a, b) = self.range(user);
        &self.ts[a..b]
    }

    /// Number of users (vocabulary size, padding id 0 included).
    pub fn num_users(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn range(&self, user: u32) -> (usize, usize) {
        let u = user as usize;
        match (self.offsets.get(u), self.offsets.get(u + 1)) {
            (Some(&a), Some(&b)) if a <= b && b <= self.items.len() => (a, b),
            _ => (0, 0),
        }
    }

    /// Builds the sequences from the rows of `inter` where `keep` is true: stable by timestamp,
    /// ties in input order.
    pub fn from_interactions(inter: &Interactions, keep: &[bool]) -> UserSequences {
        let num_users = inter.num_users();
        let mut offsets = vec![0usize; num_users + 1];
        for (r, &u) in inter.user.iter().enumerate() {
            if keep.get(r).copied().unwrap_or(false) {
                offsets[u as usize + 1] += 1;
            }
        }
        for u in 0..num_users {
            offsets[u + 1] += offsets[u];
        }
        // Counting sort by user keeps the input order inside each user...
        let mut rows = vec![0usize; offsets[num_users]];
        let mut fill = offsets.clone();
        for (r, &u) in inter.user.iter().enumerate() {
            if keep.get(r).copied().unwrap_or(false) {
                rows[fill[u as usize]] = r;
                fill[u as usize] += 1;
            }
        }
        // ...and a stable sort by time inside each user keeps it for ties.
        let mut segments: Vec<&mut [usize]> = Vec::with_capacity(num_users);
        let mut rest = rows.as_mut_slice();
        for u in 0..num_users {
            let (seg, tail) = rest.split_at_mut(offsets[u + 1] - offsets[u]);
            segments.push(seg);
            rest = tail;
        }
        segments
            .into_par_iter()
            .for_each(|seg| seg.sort_by_key(|&r| inter.ts[r]));
        UserSequences {
            items: rows.iter().map(|&r| inter.item[r]).collect(),
            ts: rows.iter().map(|&r| inter.ts[r]).collect(),
            offsets,
        }
    }
}

/// Pointwise samples; the history of sample s is `seq(user[s])[..hist_end[s]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CtrSamples {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub label: Vec<f32>,
    /// Time of the sample's target event (a sampled negative has its positive's time).
    pub ts: Vec<i64>,
    /// The history is `seq(user)[..hist_end]`: the user's positives strictly before `ts`.
    pub hist_end: Vec<u32>,
    /// `UserGroup as u8` of the sample's user.
    pub user_group: Vec<u8>,
    /// `ItemGroup as u8` of the sample's item.
    pub item_group: Vec<u8>,
}

impl CtrSamples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.user.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// The samples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> CtrSamples {
        let pick_u32 = |v: &[u32]| idx.iter().map(|&i| v[i]).collect();
        let pick_u8 = |v: &[u8]| idx.iter().map(|&i| v[i]).collect();
        CtrSamples {
            user: pick_u32(&self.user),
            item: pick_u32(&self.item),
            label: idx.iter().map(|&i| self.label[i]).collect(),
            ts: idx.iter().map(|&i| self.ts[i]).collect(),
            hist_end: pick_u32(&self.hist_end),
            user_group: pick_u8(&self.user_group),
            item_group: pick_u8(&self.item_group),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, user: u32, item: u32, label: f32, ts: i64, hist_end: u32, ug: u8, ig: u8) {
        self.user.push(user);
        self.item.push(item);
        self.label.push(label);
        self.ts.push(ts);
        self.hist_end.push(hist_end);
        self.user_group.push(ug);
        self.item_group.push(ig);
    }

    /// Splits off the samples from `at` on (like `Vec::split_off`).
    pub fn split_off(&mut self, at: usize) -> CtrSamples {
        CtrSamples {
            user: self.user.split_off(at),
            item: self.item.split_off(at),
            label: self.label.split_off(at),
            ts: self.ts.split_off(at),
            hist_end: self.hist_end.split_off(at),
            user_group: self.user_group.split_off(at),
            item_group: self.item_group.split_off(at),
        }
    }

    /// Moves every sample of `other` to the end of `self`.
    pub fn append(&mut self, other: &mut CtrSamples) {
        self.user.append(&mut other.user);
        self.item.append(&mut other.item);
        self.label.append(&mut other.label);
        self.ts.append(&mut other.ts);
        self.hist_end.append(&mut other.hist_end);
        self.user_group.append(&mut other.user_group);
        self.item_group.append(&mut other.item_group);
    }

    /// Number of positive samples (label > 0.5).
    pub fn num_positives(&self) -> usize {
        self.label.iter().filter(|&&l| l > 0.5).count()
    }
}

/// How positives are split into train / valid / test.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitRule {
    /// Per user: last positive test, the one before valid (users with >= 3 positives), rest train.
    #[default]
    LeaveLastOut,
    /// Each positive independently: test with probability `test`, valid with `valid`, else train.
    Random { valid: f64, test: f64 },
    /// Global temporal split: one time cut for everybody. With the positives' timestamps sorted,
    /// the latest `test` share is test and the `valid` share before it valid; every event at
    /// the cut's timestamp goes to the later split, so a timestamp is never split in two.
    Temporal { valid: f64, test: f64 },
}

/// Configuration of CTR sample construction (defaults in brackets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CtrConfig {
    /// Sampled negatives per positive [4].
    pub neg_per_pos: usize,
    /// Longest history fed to a model [50]; recorded in the feature map, must be >= 1.
    pub max_hist_len: usize,
    /// The split [leave_last_out].
    pub split: SplitRule,
    /// User activeness groups [tail <= 2 < body <= 5 < head].
    pub activeness: ActivenessRule,
    /// Share of seen items that are head items [0.2].
    pub head_item_share: f64,
    /// None: implicit feedback, every interaction is positive [None]. Some(t): a row is positive
    /// when its `rating` (or, without a rating column, its `label`) is > t (HIM: 3 on 1-5).
    pub positive_threshold: Option<f32>,
    /// With a threshold, what the other rows become: `false` [default]: they are not samples
    /// (they stay negative feedback for HIM sessions and are never sampled as negatives);
    /// `true`: each is also a label-0 sample at its own time, in the split its time falls in.
    pub rated_negatives: bool,
}

impl Default for CtrConfig {
    fn default() -> Self {
        CtrConfig {
            neg_per_pos: 4,
            max_hist_len: 50,
            split: SplitRule::LeaveLastOut,
            activeness: ActivenessRule::default(),
            head_item_share: 0.2,
            positive_threshold: None,
            rated_negatives: false,
        }
    }
}

/// Checks a share of items counted as head (`[samples] head_item_share`, `data stats
/// --head-item-share`): a number in `[0, 1]` (NaN and infinities are not). The message names no
/// key: the caller adds the key or flag.
pub fn check_head_item_share(share: f64) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&share) {
        Ok(())
    } else {
        Err(format!("must be in [0, 1], got {share}"))
    }
}

impl CtrConfig {
    /// Checks the config on its own (data-dependent checks happen in [`build_ctr_dataset`]).
    pub fn validate(&self) -> Result<()> {
        if self.max_hist_len == 0 {
            return Err(DataError::config("max_hist_len", "must be >= 1"));
        }
        check_head_item_share(self.head_item_share)
            .map_err(|m| DataError::config("head_item_share", m))?;
        if self.rated_negatives && self.positive_threshold.is_none() {
            return Err(DataError::config(
                "rated_negatives",
                "needs positive_threshold (without it every row is a positive)",
            ));
        }
        if let Some(t) = self.positive_threshold {
            if t.is_nan() {
                return Err(DataError::config(
                    "positive_threshold",
                    "must be a number, got NaN",
                ));
            }
        }
        if let SplitRule::Random { valid, test } | SplitRule::Temporal { valid, test } = self.split
        {
            for (k, v) in [("split.valid", valid), ("split.test", test)] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(DataError::config(k, format!("must be in [0, 1], got {v}")));
                }
            }
            if valid + test >= 1.0 {
                return Err(DataError::config(
                    "split",
                    format!("valid + test must be < 1 (something must be left to train), got {valid} + {test}"),
                ));
            }
        }
        self.activeness.validate()
    }
}

/// Everything a CTR experiment needs on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct CtrDataset {
    pub feature_map: FeatureMap,
    /// Every user's positives, oldest first: histories point into it.
    pub sequences: UserSequences,
    /// Every user's non-positive rows (rating <= threshold), oldest first; empty for implicit
    /// feedback. HIM's sessions read their negative feedback from it.
    pub negative_feedback: UserSequences,
    pub train: CtrSamples,
    pub valid: CtrSamples,
    pub test: CtrSamples,
    /// Train positives per item (index = item id; len = item vocab).
    pub item_freq: Vec<u64>,
    /// Train positives per user (index = user id; len = user vocab).
    pub user_train_positives: Vec<u32>,
    /// The activeness rule as applied (a quantile rule resolved into thresholds).
    pub activeness: ActivenessRule,
    /// Things worth telling the user (an empty user group...); callers print them.
    pub warnings: Vec<String>,
    /// HIM sessions that batches carry ([`CtrDataset::with_sessions`]); None without.
    pub sessions: Option<crate::sessions::Sessions>,
    /// Item side features (index = item id), when the source has them ([`CtrDataset::with_items`]).
    pub items: Option<crate::items::ItemFeatures>,
}

impl CtrDataset {
    /// Makes every batch carry HIM sessions built by `cfg` (computed per batch from
    /// `sequences` and `negative_feedback`, strictly before each sample's time) and records them in
    /// the feature map as `sessions` with `dims = [S, n]`.
    pub fn with_sessions(&mut self, cfg: &crate::sessions::SessionConfig) -> Result<()> {
        let s = crate::sessions::Sessions::new(cfg)?;
        self.feature_map.features.retain(|f| f.name != "sessions");
        self.feature_map
            .features
            .push(crate::feature_map::FeatureSpec {
                name: "sessions".into(),
                kind: crate::feature_map::FeatureKind::Sequence,
                vocab: self.num_items(),
                max_len: Some(s.num_sessions() * s.top_n()),
                table: "item".into(),
                dims: Some(vec![s.num_sessions(), s.top_n()]),
            });
        self.feature_map.hash = self.feature_map.compute_hash();
        self.sessions = Some(s);
        Ok(())
    }

    /// Attaches item side features and records each field in the feature map (`item_<name>`,
    /// see [`crate::items::ItemFeatures::feature_specs`]). The rows must match the item vocabulary.
    pub fn with_items(&mut self, items: crate::items::ItemFeatures) -> Result<()> {
        items.validate()?;
        if items.num_items != self.num_items() {
            return Err(crate::error::DataError::Invalid(format!(
                "item features have {} rows but the dataset has {} item ids",
                items.num_items,
                self.num_items()
            )));
        }
        let specs = items.feature_specs();
        self.feature_map
            .features
            .retain(|f| !specs.iter().any(|s| s.name == f.name));
        self.feature_map.features.extend(specs);
        self.feature_map.hash = self.feature_map.compute_hash();
        self.items = Some(items);
        Ok(())
    }
}

impl CtrDataset {
    /// User vocabulary size (padding included).
    pub fn num_users(&self) -> usize {
        self.user_train_positives.len()
    }

    /// Item vocabulary size (padding included).
    pub fn num_items(&self) -> usize {
        self.item_freq.len()
    }
}

const TRAIN: u8 = 0;
const VALID: u8 = 1;
const TEST: u8 = 2;

/// Builds CTR samples, splits and groups from an interaction table; deterministic for `seed`.
pub fn build_ctr_dataset(
    inter: &Interactions,
    dataset_name: &str,
    cfg: &CtrConfig,
    seed: u64,
) -> Result<CtrDataset> {
    cfg.validate()?;
    if inter.is_empty() {
        return Err(DataError::Invalid(format!(
            "dataset '{dataset_name}': the interaction table is empty"
        )));
    }
    inter.validate()?;
    let num_users = inter.num_users();
    let num_items = inter.num_items();
    if cfg.neg_per_pos > 0 && num_items < 3 {
        return Err(DataError::config(
            "neg_per_pos",
            format!(
                "dataset '{dataset_name}' has a single item, so no negative can be sampled; set neg_per_pos = 0"
            ),
        ));
    }

    let (seqs, negative_feedback) =
        feedback_sequences(inter, cfg.positive_threshold, dataset_name)?;
    if seqs.items.is_empty() {
        return Err(DataError::Invalid(format!(
            "dataset '{dataset_name}': no positive interactions (positive_threshold {:?})",
            cfg.positive_threshold
        )));
    }

    let (split, cuts) = split_positives(&seqs, cfg.split, seed);
    let count = |x: u8| split.iter().filter(|&&s| s == x).count();
    let what = match cfg.split {
        SplitRule::LeaveLastOut => "leave_last_out".to_string(),
        SplitRule::Random { valid, test } => format!("random (valid {valid}, test {test})"),
        SplitRule::Temporal { valid, test } => format!("temporal (valid {valid}, test {test})"),
    };
    for (x, name) in [(TEST, "test"), (TRAIN, "train")] {
        if count(x) == 0 {
            return Err(DataError::config(
                "split",
                format!(
                    "dataset '{dataset_name}': the {what} split leaves the {name} set empty \
                     ({} positives)",
                    split.len()
                ),
            ));
        }
    }

    let mut item_freq = vec![0u64; num_items];
    let mut user_train_positives = vec![0u32; num_users];
    for (u, n_train) in user_train_positives.iter_mut().enumerate() {
        for p in seqs.offsets[u]..seqs.offsets[u + 1] {
            if split[p] == TRAIN {
                item_freq[seqs.items[p] as usize] += 1;
                *n_train = n_train.saturating_add(1);
            }
        }
    }
    let igroup = item_groups(&item_freq, cfg.head_item_share);
    let activeness = cfg.activeness.resolve(&user_train_positives);
    let mut warnings = crate::groups::empty_group_warnings(&activeness, &user_train_positives);
    if cfg.activeness.mode == crate::groups::ActivenessMode::Quantile
        && cfg.activeness.body_share == 0.0
    {
        // Two strata were asked for: an empty body group is the design, not a problem.
        warnings.retain(|w| !w.contains("'body' is empty"));
    }

    check_sample_plan(&seqs, &negative_feedback, num_items, cfg)?;
    let neg_seed = seed::derive_seed(seed, "negatives");
    let low_seed = seed::derive_seed(seed, "rated-negatives");
    let blocks: Vec<[CtrSamples; 3]> = (0..num_users.div_ceil(USER_BLOCK))
        .into_par_iter()
        .map(|blk| {
            let mut out: [CtrSamples; 3] = Default::default();
            let mut seen: Vec<u32> = Vec::new();
            for u in blk * USER_BLOCK..((blk + 1) * USER_BLOCK).min(num_users) {
                let (a, b) = (seqs.offsets[u], seqs.offsets[u + 1]);
                let user = u as u32;
                let low = negative_feedback.seq(user);
                if a == b && (low.is_empty() || !cfg.rated_negatives) {
                    continue;
                }
                let n_train = user_train_positives.get(u).copied().unwrap_or(0);
                let ug = activeness.classify(n_train) as u8;
                let ts = &seqs.ts[a..b];
                seen.clear();
                seen.extend_from_slice(&seqs.items[a..b]);
                seen.extend_from_slice(low);
                seen.sort_unstable();
                seen.dedup();
                let candidates = (num_items - 1).saturating_sub(seen.len());
                let mut rng = seed::rng_indexed(neg_seed, "users", u as u64);
                for p in a..b {
                    let dst = &mut out[split[p] as usize];
                    let t = seqs.ts[p];
                    // Strictly before t: positives tied with the target's time are not history.
                    let hist_end = ts[..p - a].partition_point(|&x| x < t) as u32;
                    let item = seqs.items[p];
                    dst.push(user, item, 1.0, t, hist_end, ug, group_of(&igroup, item));
                    if candidates == 0 {
                        continue;
                    }
                    for _ in 0..cfg.neg_per_pos {
                        let neg = sample_negative(&mut rng, num_items, &seen, candidates);
                        dst.push(user, neg, 0.0, t, hist_end, ug, group_of(&igroup, neg));
                    }
                }
                if cfg.rated_negatives {
                    let low_ts = negative_feedback.seq_ts(user);
                    let mut lrng = seed::rng_indexed(low_seed, "users", u as u64);
                    for (&item, &t) in low.iter().zip(low_ts) {
                        let part = split_of_event(cfg.split, &split[a..b], ts, &cuts, t, &mut lrng);
                        let hist_end = ts.partition_point(|&x| x < t) as u32;
                        out[part as usize].push(
                            user,
                            item,
                            0.0,
                            t,
                            hist_end,
                            ug,
                            group_of(&igroup, item),
                        );
                    }
                }
            }
            out
        })
        .collect();

    let mut train = CtrSamples::default();
    let mut valid = CtrSamples::default();
    let mut test = CtrSamples::default();
    for [mut tr, mut va, mut te] in blocks {
        train.append(&mut tr);
        valid.append(&mut va);
        test.append(&mut te);
    }
    Ok(CtrDataset {
        feature_map: FeatureMap::standard(dataset_name, num_users, num_items, cfg.max_hist_len),
        sequences: seqs,
        negative_feedback,
        train,
        valid,
        test,
        item_freq,
        user_train_positives,
        activeness,
        warnings,
        sessions: None,
        items: None,
    })
}

/// Data-dependent checks of `neg_per_pos` before any sample is drawn: it may not exceed the
/// items any user has left unseen (negatives are drawn from those), and the samples must fit in
/// memory.
fn check_sample_plan(
    seqs: &UserSequences,
    low: &UserSequences,
    num_items: usize,
    cfg: &CtrConfig,
) -> Result<()> {
    let users = seqs.offsets.len().saturating_sub(1);
    let mut positives = 0usize;
    let mut most_unseen = 0usize;
    let mut seen: Vec<u32> = Vec::new();
    for u in 0..users {
        let p = seqs.seq(u as u32);
        if p.is_empty() {
            continue;
        }
        positives += p.len();
        seen.clear();
        seen.extend_from_slice(p);
        seen.extend_from_slice(low.seq(u as u32));
        seen.sort_unstable();
        seen.dedup();
        most_unseen = most_unseen.max((num_items - 1).saturating_sub(seen.len()));
    }
    if cfg.neg_per_pos > most_unseen {
        return Err(DataError::config(
            "samples.neg_per_pos",
            format!(
                "{} negatives per positive, but no user has that many unseen items to draw them                  from (at most {most_unseen} of the {} items); lower it",
                cfg.neg_per_pos,
                num_items - 1
            ),
        ));
    }
    // One sample row: user, item, hist_end (u32), label (f32), ts (i64), two groups (u8); twice
    // for the per-block buffers that are appended into the splits.
    let rows = positives as f64 * (1.0 + cfg.neg_per_pos as f64) + low.items.len() as f64;
    crate::memory::check_fits(
        rows * 26.0 * 2.0,
        "samples.neg_per_pos",
        &format!("{rows:.0} samples"),
    )
}

/// The label rule in one place: every user's positives (all rows without a threshold, else the
/// rows whose `rating`, or without one `label`, is > `threshold`) and the other rows as negative
/// feedback (empty without a threshold), both oldest first.
pub fn feedback_sequences(
    inter: &Interactions,
    threshold: Option<f32>,
    dataset_name: &str,
) -> Result<(UserSequences, UserSequences)> {
    let Some(t) = threshold else {
        let all = UserSequences::from_interactions(inter, &vec![true; inter.len()]);
        return Ok((all, UserSequences::default()));
    };
    let values = inter
        .rating
        .as_ref()
        .or(inter.label.as_ref())
        .ok_or_else(|| {
            DataError::config(
                "positive_threshold",
                format!(
                    "dataset '{dataset_name}' has neither a rating nor a label column to threshold"
                ),
            )
        })?;
    let positive: Vec<bool> = values.iter().map(|&v| v > t).collect();
    let rest: Vec<bool> = positive.iter().map(|&p| !p).collect();
    Ok((
        UserSequences::from_interactions(inter, &positive),
        UserSequences::from_interactions(inter, &rest),
    ))
}

/// The split of every positive (in the CSR layout of `seqs`) and, for a temporal split, the
/// (valid, test) time cuts: an event at or after `test` is test, at or after `valid` valid.
fn split_positives(seqs: &UserSequences, rule: SplitRule, seed: u64) -> (Vec<u8>, [i64; 2]) {
    let mut split = vec![TRAIN; seqs.items.len()];
    let mut cuts = [i64::MAX, i64::MAX];
    if let SplitRule::Temporal { valid, test } = rule {
        let mut sorted = seqs.ts.clone();
        sorted.par_sort_unstable();
        let n = sorted.len();
        // The cut is the timestamp at the first position of the later split.
        let cut = |share: f64| -> i64 {
            let k = (share * n as f64).ceil() as usize;
            if k == 0 {
                i64::MAX
            } else {
                sorted[n - k.min(n)]
            }
        };
        cuts = [cut(valid + test), cut(test)];
        for (x, &t) in split.iter_mut().zip(&seqs.ts) {
            *x = if t >= cuts[1] {
                TEST
            } else if t >= cuts[0] {
                VALID
            } else {
                TRAIN
            };
        }
        return (split, cuts);
    }
    let split_seed = seed::derive_seed(seed, "split");
    for u in 0..seqs.num_users() {
        let (a, b) = (seqs.offsets[u], seqs.offsets[u + 1]);
        let s = &mut split[a..b];
        match rule {
            SplitRule::LeaveLastOut => {
                let n = s.len();
                if n >= 1 {
                    s[n - 1] = TEST;
                }
                if n >= 3 {
                    s[n - 2] = VALID;
                }
            }
            SplitRule::Random { valid, test } => {
                let mut rng = seed::rng_indexed(split_seed, "users", u as u64);
                for x in s.iter_mut() {
                    *x = random_part(&mut rng, valid, test);
                }
            }
            SplitRule::Temporal { .. } => unreachable!("handled above"),
        }
    }
    (split, cuts)
}

fn random_part(rng: &mut impl Rng, valid: f64, test: f64) -> u8 {
    let r: f64 = rng.gen();
    if r < test {
        TEST
    } else if r < test + valid {
        VALID
    } else {
        TRAIN
    }
}

/// The split of a rated-negative event at time `t` of a user whose positives (times `ts`) went
/// to `parts`: temporal by the global cuts; random by its own draw; leave-last-out by time: from
/// the time of the user's test positive on it is test, from the valid positive's time valid.
fn split_of_event(
    rule: SplitRule,
    parts: &[u8],
    ts: &[i64],
    cuts: &[i64; 2],
    t: i64,
    rng: &mut impl Rng,
) -> u8 {
    match rule {
        SplitRule::Temporal { .. } => {
            if t >= cuts[1] {
                TEST
            } else if t >= cuts[0] {
                VALID
            } else {
                TRAIN
            }
        }
        SplitRule::Random { valid, test } => random_part(rng, valid, test),
        SplitRule::LeaveLastOut => {
            let start = |x: u8| parts.iter().position(|&p| p == x).map(|i| ts[i]);
            match (start(TEST), start(VALID)) {
                (Some(s), _) if t >= s => TEST,
                (_, Some(s)) if t >= s => VALID,
                _ => TRAIN,
            }
        }
    }
}

fn group_of(groups: &[u8], item: u32) -> u8 {
    groups.get(item as usize).copied().unwrap_or(0)
}

/// An item uniform over `1..num_items` minus `seen` (sorted, deduplicated; `candidates` > 0 is
/// the number of unseen items).
fn sample_negative(rng: &mut impl Rng, num_items: usize, seen: &[u32], candidates: usize) -> u32 {
    for _ in 0..MAX_REJECTIONS {
        let x = rng.gen_range(1..num_items as u32);
        if seen.binary_search(&x).is_err() {
            return x;
        }
    }
    // The user has seen most of the catalogue: take the r-th unseen item directly. Walking the
    // sorted seen list, every seen id <= x pushes x one further.
    let mut x = rng.gen_range(0..candidates) as u32 + 1;
    for &s in seen {
        if s <= x {
            x += 1;
        } else {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::UserGroup;

    /// user 1: items 1@30 2@10 3@20 4@40 -> seq [2, 3, 1, 4]
    /// user 2: items 5@5 1@5 (a tie: input order) -> seq [5, 1]
    /// user 3: item 2@100 -> seq [2]
    fn tiny() -> Interactions {
        Interactions {
            user: vec![1, 2, 1, 1, 3, 2, 1],
            item: vec![1, 5, 2, 3, 2, 1, 4],
            ts: vec![30, 5, 10, 20, 100, 5, 40],
            rating: None,
            label: None,
        }
    }

    fn tiny_cfg() -> CtrConfig {
        CtrConfig {
            neg_per_pos: 2,
            max_hist_len: 3,
            activeness: ActivenessRule::thresholds(1, 1),
            ..Default::default()
        }
    }

    fn vocab7() -> Interactions {
        // Add an item-6 row for a 4th user so the catalogue is 1..=6.
        let mut t = tiny();
        t.user.push(4);
        t.item.push(6);
        t.ts.push(1);
        t
    }

    #[test]
    fn sequences_are_chronological_with_stable_ties() {
        let t = tiny();
        let s = UserSequences::from_interactions(&t, &[true; 7]);
        assert_eq!(s.num_users(), 4);
        assert_eq!(s.seq(0), &[] as &[u32]);
        assert_eq!(s.seq(1), &[2, 3, 1, 4]);
        assert_eq!(s.seq_ts(1), &[10, 20, 30, 40]);
        assert_eq!(s.seq(2), &[5, 1]);
        assert_eq!(s.seq(3), &[2]);
        assert_eq!(s.seq(99), &[] as &[u32]);
    }

    #[test]
    fn leave_last_out_on_a_tiny_table() {
        let d = build_ctr_dataset(&vocab7(), "tiny", &tiny_cfg(), 3).unwrap();
        let pos = |s: &CtrSamples| -> Vec<(u32, u32, u32)> {
            (0..s.len())
                .filter(|&i| s.label[i] == 1.0)
                .map(|i| (s.user[i], s.item[i], s.hist_end[i]))
                .collect()
        };
        assert_eq!(pos(&d.train), vec![(1, 2, 0), (1, 3, 1), (2, 5, 0)]);
        assert_eq!(pos(&d.valid), vec![(1, 1, 2)]);
        // User 2's items 5 and 1 share a timestamp: 5 is not in 1's history (strictly before).
        assert_eq!(
            pos(&d.test),
            vec![(1, 4, 3), (2, 1, 0), (3, 2, 0), (4, 6, 0)]
        );
        // Each positive is followed by its 2 negatives with the same user and history.
        assert_eq!(d.train.len(), 9);
        assert_eq!(d.valid.len(), 3);
        assert_eq!(d.test.len(), 12);
        assert_eq!(
            d.train.label,
            vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(d.train.hist_end, vec![0, 0, 0, 1, 1, 1, 0, 0, 0]);
        assert_eq!(d.train.user, vec![1, 1, 1, 1, 1, 1, 2, 2, 2]);

        // Negatives never hit the user's positive set (any split).
        for s in [&d.train, &d.valid, &d.test] {
            for i in 0..s.len() {
                if s.label[i] == 0.0 {
                    let seq = d.sequences.seq(s.user[i]);
                    assert!(
                        !seq.contains(&s.item[i]),
                        "user {} negative {}",
                        s.user[i],
                        s.item[i]
                    );
                    assert!((1..7).contains(&s.item[i]));
                }
            }
        }
        // User 1 has seen 1..=4, so its negatives are 5 or 6.
        assert!((0..d.valid.len()).all(|i| d.valid.item[i] >= 5 || d.valid.label[i] == 1.0));

        // Train positives: user 1 -> 2 (head under tail_max = body_max = 1), user 2 -> 1 (tail),
        // users 3 and 4 -> 0 (tail).
        assert_eq!(d.user_train_positives, vec![0, 2, 1, 0, 0]);
        assert_eq!(d.train.user_group[0], UserGroup::Head as u8);
        assert_eq!(d.train.user_group[6], UserGroup::Tail as u8);
        assert!(d.test.user_group[6..]
            .iter()
            .all(|&g| g == UserGroup::Tail as u8));
        // Train item freq: items 2, 3, 5 once each; 20% of 3 -> 1 head item: id 2 (tie by id).
        assert_eq!(d.item_freq, vec![0, 0, 1, 1, 0, 1, 0]);
        for s in [&d.train, &d.valid, &d.test] {
            for i in 0..s.len() {
                assert_eq!(
                    s.item_group[i],
                    u8::from(s.item[i] == 2),
                    "item {}",
                    s.item[i]
                );
            }
        }
        assert_eq!(d.feature_map.vocab("user"), Some(5));
        assert_eq!(d.feature_map.vocab("item"), Some(7));
        assert_eq!(d.feature_map.get("hist").unwrap().max_len, Some(3));
    }

    #[test]
    fn user_who_saw_everything_gets_no_negatives() {
        // Catalogue 1..=2; user 1 saw both, user 2 saw only item 1.
        let t = Interactions {
            user: vec![1, 1, 2],
            item: vec![1, 2, 1],
            ts: vec![1, 2, 3],
            rating: None,
            label: None,
        };
        // Two negatives per positive: no user has two unseen items, so that is refused by name.
        let e = build_ctr_dataset(&t, "full", &tiny_cfg(), 0).unwrap_err();
        assert!(
            matches!(&e, DataError::Config { key, message } if key == "samples.neg_per_pos"
                && message.contains("at most 1 of the 2 items")),
            "{e}"
        );
        let cfg = CtrConfig {
            neg_per_pos: 1,
            ..tiny_cfg()
        };
        let d = build_ctr_dataset(&t, "full", &cfg, 0).unwrap();
        let user1: Vec<f32> = (0..d.test.len())
            .filter(|&i| d.test.user[i] == 1)
            .map(|i| d.test.label[i])
            .collect();
        assert_eq!(user1, vec![1.0]);
        let user2: Vec<u32> = (0..d.test.len())
            .filter(|&i| d.test.user[i] == 2)
            .map(|i| d.test.item[i])
            .collect();
        assert_eq!(user2, vec![1, 2]);
    }

    #[test]
    fn huge_neg_per_pos_is_refused_before_sampling() {
        // 100000 negatives per positive on a 50-item catalogue: an error naming the key, at once.
        let t = Interactions {
            user: (1..=10).flat_map(|u| [u, u]).chain([1]).collect(),
            item: (1..=20).chain([50]).collect(),
            ts: (0..21).collect(),
            rating: None,
            label: None,
        };
        let cfg = CtrConfig {
            neg_per_pos: 100_000,
            ..tiny_cfg()
        };
        let e = build_ctr_dataset(&t, "small", &cfg, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("samples.neg_per_pos") && e.contains("unseen"),
            "{e}"
        );
    }

    #[test]
    fn dense_users_use_the_fallback_sampler() {
        // The user saw 98 of 100 items: rejection mostly fails, the fallback must find 37 or 64.
        let seen: Vec<u32> = (1..=100).filter(|&i| i != 37 && i != 64).collect();
        let mut rng = seed::rng(1, "t");
        let mut got = [0usize; 2];
        for _ in 0..400 {
            let x = sample_negative(&mut rng, 101, &seen, 2);
            assert!(x == 37 || x == 64, "{x}");
            got[usize::from(x == 64)] += 1;
        }
        assert!(got[0] > 100 && got[1] > 100, "{got:?}");
    }

    #[test]
    fn explicit_threshold_drops_low_ratings() {
        let mut t = vocab7();
        t.rating = Some(vec![5.0, 4.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0]);
        let cfg = CtrConfig {
            positive_threshold: Some(3.0),
            ..tiny_cfg()
        };
        let d = build_ctr_dataset(&t, "ml", &cfg, 0).unwrap();
        // Row 2 (user 1, item 2, rating 1) is not a positive, but item 2 stays in the vocab.
        assert_eq!(d.sequences.seq(1), &[3, 1, 4]);
        assert_eq!(d.feature_map.vocab("item"), Some(7));
        let no_rating = CtrConfig {
            positive_threshold: Some(3.0),
            ..tiny_cfg()
        };
        let e = build_ctr_dataset(&tiny(), "x", &no_rating, 0).unwrap_err();
        assert!(
            matches!(e, DataError::Config { ref key, .. } if key == "positive_threshold"),
            "{e}"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let e =
            build_ctr_dataset(&Interactions::default(), "e", &CtrConfig::default(), 0).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let one_item = Interactions {
            user: vec![1, 2],
            item: vec![1, 1],
            ts: vec![0, 0],
            rating: None,
            label: None,
        };
        let e = build_ctr_dataset(&one_item, "one", &CtrConfig::default(), 0).unwrap_err();
        assert!(
            matches!(e, DataError::Config { ref key, .. } if key == "neg_per_pos"),
            "{e}"
        );
        let ok = CtrConfig {
            neg_per_pos: 0,
            ..Default::default()
        };
        // Two users with one positive each: leave-last-out leaves nothing to train on.
        let e = build_ctr_dataset(&one_item, "one", &ok, 0).unwrap_err();
        assert!(e.to_string().contains("train set empty"), "{e}");
        let mut two = one_item.clone();
        two.user.push(1);
        two.item.push(1);
        two.ts.push(1);
        assert_eq!(
            build_ctr_dataset(&two, "one", &ok, 0).unwrap().test.len(),
            2
        );
        for split in [
            SplitRule::Random {
                valid: 0.5,
                test: 0.5,
            },
            SplitRule::Random {
                valid: -0.1,
                test: 0.2,
            },
            SplitRule::Random {
                valid: 0.1,
                test: f64::NAN,
            },
        ] {
            let cfg = CtrConfig {
                split,
                ..Default::default()
            };
            assert!(
                build_ctr_dataset(&tiny(), "t", &cfg, 0).is_err(),
                "{split:?}"
            );
        }
    }

    #[test]
    fn random_split_follows_the_fractions_and_is_deterministic() {
        let data = crate::synth::generate(
            &crate::synth::SynthConfig {
                users: 400,
                items: 100,
                clusters: 5,
                min_len: 10,
                max_len: 40,
                ..Default::default()
            },
            1,
        )
        .unwrap();
        let cfg = CtrConfig {
            split: SplitRule::Random {
                valid: 0.1,
                test: 0.2,
            },
            neg_per_pos: 1,
            ..Default::default()
        };
        let a = build_ctr_dataset(&data.interactions, "s", &cfg, 5).unwrap();
        let b = build_ctr_dataset(&data.interactions, "s", &cfg, 5).unwrap();
        let c = build_ctr_dataset(&data.interactions, "s", &cfg, 6).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.train, c.train);
        let n = data.interactions.len() as f64;
        let share = |s: &CtrSamples| s.num_positives() as f64 / n;
        assert!((share(&a.train) - 0.7).abs() < 0.03, "{}", share(&a.train));
        assert!((share(&a.valid) - 0.1).abs() < 0.02, "{}", share(&a.valid));
        assert!((share(&a.test) - 0.2).abs() < 0.03, "{}", share(&a.test));
        // hist_end of a positive is its position in the user's sequence.
        for s in [&a.train, &a.valid, &a.test] {
            for i in (0..s.len()).filter(|&i| s.label[i] == 1.0) {
                let seq = a.sequences.seq(s.user[i]);
                assert_eq!(seq[s.hist_end[i] as usize], s.item[i]);
            }
        }
        let total: u64 = a.item_freq.iter().sum();
        assert_eq!(total as usize, a.train.num_positives());
    }

    #[test]
    fn config_serde_is_strict() {
        let c: CtrConfig =
            serde_json::from_str(r#"{"split": {"kind": "random", "valid": 0.1, "test": 0.2}}"#)
                .unwrap();
        assert_eq!(
            c.split,
            SplitRule::Random {
                valid: 0.1,
                test: 0.2
            }
        );
        assert_eq!(c.neg_per_pos, 4);
        let e = serde_json::from_str::<CtrConfig>(r#"{"neg_per_positive": 1}"#).unwrap_err();
        assert!(e.to_string().contains("neg_per_positive"));
        let l: CtrConfig =
            serde_json::from_str(r#"{"split": {"kind": "leave_last_out"}}"#).unwrap();
        assert_eq!(l.split, SplitRule::LeaveLastOut);
    }
}
