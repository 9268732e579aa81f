//! Ranking metrics: HR@K, NDCG@K and MRR@K.
//!
//! Two protocols:
//!
//! * **Candidate lists** ([`list_metrics`], [`list_metrics_by_group`], [`RankingMetric`]): every row
//!   is one (list, candidate) pair with a score and a 0/1 label, e.g. the IDW protocol of one held-out
//!   positive plus 99 sampled negatives per user. Rows of one list need not be contiguous.
//! * **Full-catalogue top-K** ([`topk_metrics`]): per user, the model's ranked item ids (seen items
//!   already excluded) and the one held-out item.
//!
//! # Conventions
//!
//! * **Rank of a positive** in a candidate list = `1 + #negatives with a strictly higher score +
//!   #negatives with an equal score / 2`: the expected rank under uniformly random tie-breaking
//!   (neither optimistic nor pessimistic). It can be fractional (e.g. 2.5), and the formulas below
//!   are applied to that fractional rank as is: a positive at rank 2.5 is a miss for K = 2 and a hit
//!   for K = 3. `-0.0` ties with `0.0`.
//! * For one positive at rank `r`: `hr@K = [r <= K]`, `ndcg@K = [r <= K] / log2(r + 1)`,
//!   `mrr@K = [r <= K] / r`.
//! * **Several positives in one list**: each positive is ranked against the list's negatives only
//!   (other positives are ignored), and the list's value is the mean over its positives, so every
//!   list weighs the same in the average over lists.
//! * **Lists with no positive** are skipped and counted in `lists_skipped`; `lists` counts the lists
//!   used. When no list is usable every metric value is NaN.
//! * A label is positive when it is above one half (as everywhere in this crate).
//! * In [`topk_metrics`] the target's rank is its 1-based position in the user's top-K list (it is
//!   a miss when absent); the top-K list must be at least `max(ks)` long unless the catalogue is
//!   smaller (a shorter list only means that later positions are misses).

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::auc::is_pos;
use crate::error::{check_len, check_scores_labels, EvalError, Result};
use crate::metric::{Direction, Metric, ScoredSlice};
use crate::report::Metrics;

/// Above this many rows, sort in parallel.
const PAR_SORT_MIN: usize = 1 << 16;

/// Checks `ks`: non-empty, every K >= 1.
fn check_ks(ks: &[usize]) -> Result<()> {
    if ks.is_empty() {
        return Err(EvalError::InvalidArgument("ks must not be empty".into()));
    }
    if ks.contains(&0) {
        return Err(EvalError::InvalidArgument(
            "every K in ks must be >= 1".into(),
        ));
    }
    Ok(())
}

/// `(hr, ndcg, mrr)` at cut-off `k` for a positive at (possibly fractional) rank `rank`.
#[inline]
pub(crate) fn rank_gains(rank: f64, k: usize) -> (f64, f64, f64) {
    if rank <= k as f64 {
        (1.0, 1.0 / (rank + 1.0).log2(), 1.0 / rank)
    } else {
        (0.0, 0.0, 0.0)
    }
}

/// Sums of hr/ndcg/mrr per K over a number of units (lists or users).
#[derive(Debug, Clone)]
struct Acc {
    n: usize,
    /// `[hr, ndcg, mrr]` per K, in the order of `ks`.
    sums: Vec<[f64; 3]>,
}

impl Acc {
    fn new(n_ks: usize) -> Self {
        Acc {
            n: 0,
            sums: vec![[0.0; 3]; n_ks],
        }
    }

    /// Adds one unit whose positives have ranks `ranks` (mean over them).
    fn add(&mut self, ranks: impl Iterator<Item = f64> + Clone, ks: &[usize]) {
        let m = ranks.clone().count();
        if m == 0 {
            return;
        }
        self.n += 1;
        for (sum, &k) in self.sums.iter_mut().zip(ks) {
            let mut u = [0.0; 3];
            for r in ranks.clone() {
                let (h, d, q) = rank_gains(r, k);
                u[0] += h;
                u[1] += d;
                u[2] += q;
            }
            for j in 0..3 {
                sum[j] += u[j] / m as f64;
            }
        }
    }

    /// Writes `hr@K<suffix>`, `ndcg@K<suffix>`, `mrr@K<suffix>` (NaN when no unit was added).
    fn write(&self, ks: &[usize], suffix: &str, out: &mut Metrics) {
        for (sum, &k) in self.sums.iter().zip(ks) {
            for (j, name) in ["hr", "ndcg", "mrr"].iter().enumerate() {
                let v = if self.n == 0 {
                    f64::NAN
                } else {
                    sum[j] / self.n as f64
                };
                out.insert(format!("{name}@{k}{suffix}"), v);
            }
        }
    }
}

/// The positives of one list: `(row index of the positive, expected rank)`.
type ListRanks = Vec<(usize, f64)>;

/// Ranks of the positives of every list, and the number of lists without a positive. Lists come
/// out in increasing list id order.
fn rank_lists(list_ids: &[u64], scores: &[f32], labels: &[f32]) -> Result<(Vec<ListRanks>, usize)> {
    check_scores_labels(scores, labels)?;
    check_len("list_ids (vs scores)", scores.len(), list_ids.len())?;
    if scores.is_empty() {
        return Err(EvalError::Empty("ranking: no rows".into()));
    }
    let n = scores.len();
    let mut order: Vec<usize> = (0..n).collect();
    if n >= PAR_SORT_MIN {
        order.par_sort_by_key(|&i| list_ids[i]);
    } else {
        order.sort_by_key(|&i| list_ids[i]);
    }
    let mut runs: Vec<&[usize]> = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || list_ids[order[i]] != list_ids[order[start]] {
            runs.push(&order[start..i]);
            start = i;
        }
    }
    let ranked: Vec<ListRanks> = runs
        .par_iter()
        .map(|rows| {
            rows.iter()
                .filter(|&&p| is_pos(labels[p]))
                .map(|&p| {
                    let sp = scores[p];
                    let (mut higher, mut tied) = (0u64, 0u64);
                    for &q in rows.iter() {
                        if is_pos(labels[q]) {
                            continue;
                        }
                        let sq = scores[q];
                        if sq > sp {
                            higher += 1;
                        } else if sq == sp {
                            tied += 1;
                        }
                    }
                    (p, 1.0 + higher as f64 + tied as f64 / 2.0)
                })
                .collect()
        })
        .collect();
    let skipped = ranked.iter().filter(|r| r.is_empty()).count();
    Ok((ranked, skipped))
}

/// HR@K, NDCG@K and MRR@K over candidate lists, averaged over lists (see the module docs for the
/// tie, multi-positive and skipping conventions).
///
/// Keys: `hr@K`, `ndcg@K`, `mrr@K` for every K in `ks`; `lists` (lists used) and `lists_skipped`
/// (lists without a positive). Parallel over lists.
///
/// Errors on length mismatches, non-finite scores or labels, empty input, empty `ks` or K = 0.
pub fn list_metrics(
    list_ids: &[u64],
    scores: &[f32],
    labels: &[f32],
    ks: &[usize],
) -> Result<Metrics> {
    check_ks(ks)?;
    let (ranked, skipped) = rank_lists(list_ids, scores, labels)?;
    let mut acc = Acc::new(ks.len());
    for list in &ranked {
        acc.add(list.iter().map(|&(_, r)| r), ks);
    }
    let mut out = Metrics::new();
    acc.write(ks, "", &mut out);
    out.insert("lists".into(), acc.n as f64);
    out.insert("lists_skipped".into(), skipped as f64);
    Ok(out)
}

/// [`list_metrics`] plus a breakdown by item group: a list belongs to the group of its positive
/// (`item_group[row]` of the positive row; `names[g]` names group id `g`).
///
/// Keys: everything [`list_metrics`] gives, plus `hr@K/item=<name>`, `ndcg@K/item=<name>`,
/// `mrr@K/item=<name>` and `lists/item=<name>` for every group with at least one list. A list with
/// positives in several groups counts in each of them, with the mean over its positives of that
/// group.
///
/// Errors as [`list_metrics`], and on group ids without a name.
pub fn list_metrics_by_group(
    list_ids: &[u64],
    scores: &[f32],
    labels: &[f32],
    item_group: &[u8],
    names: &[&str],
    ks: &[usize],
) -> Result<Metrics> {
    check_ks(ks)?;
    check_len("item_group (vs scores)", scores.len(), item_group.len())?;
    check_groups("item group", item_group, names.len())?;
    let (ranked, skipped) = rank_lists(list_ids, scores, labels)?;
    let mut acc = Acc::new(ks.len());
    let mut per: Vec<Acc> = vec![Acc::new(ks.len()); names.len()];
    for list in &ranked {
        acc.add(list.iter().map(|&(_, r)| r), ks);
        for (g, a) in per.iter_mut().enumerate() {
            a.add(
                list.iter()
                    .filter(|&&(p, _)| usize::from(item_group[p]) == g)
                    .map(|&(_, r)| r),
                ks,
            );
        }
    }
    let mut out = Metrics::new();
    acc.write(ks, "", &mut out);
    out.insert("lists".into(), acc.n as f64);
    out.insert("lists_skipped".into(), skipped as f64);
    for (a, name) in per.iter().zip(names) {
        if a.n > 0 {
            let suffix = format!("/item={name}");
            a.write(ks, &suffix, &mut out);
            out.insert(format!("lists{suffix}"), a.n as f64);
        }
    }
    Ok(out)
}

/// Errors at the first group id `>= n_groups`.
fn check_groups(what: &str, groups: &[u8], n_groups: usize) -> Result<()> {
    match groups.iter().position(|&g| usize::from(g) >= n_groups) {
        None => Ok(()),
        Some(index) => Err(EvalError::GroupOutOfRange {
            what: what.to_string(),
            index,
            group: groups[index],
            n_groups,
        }),
    }
}

/// HR@K, NDCG@K and MRR@K from full-catalogue top-K lists: `topk[u]` is user `u`'s ranked item ids
/// (seen items already excluded), `targets[u]` the held-out item. The target's rank is its 1-based
/// position in `topk[u]`; absent means a miss. Averaged over users.
///
/// Keys: `hr@K`, `ndcg@K`, `mrr@K` for every K in `ks`, and `users`.
///
/// Errors on `topk.len() != targets.len()`, no users, empty `ks` or K = 0.
pub fn topk_metrics(topk: &[Vec<u32>], targets: &[u32], ks: &[usize]) -> Result<Metrics> {
    check_ks(ks)?;
    check_len("targets (vs topk)", topk.len(), targets.len())?;
    if topk.is_empty() {
        return Err(EvalError::Empty("topk_metrics: no users".into()));
    }
    let kmax = ks.iter().copied().max().unwrap_or(0);
    // Per-user gains in parallel, summed in order: a parallel float reduction would depend on
    // the thread split, and the same input must give the same bits.
    let per_user: Vec<Vec<[f64; 3]>> = topk
        .par_iter()
        .zip(targets.par_iter())
        .map(|(list, &t)| {
            let rank = list
                .iter()
                .take(kmax)
                .position(|&i| i == t)
                .map(|p| (p + 1) as f64);
            ks.iter()
                .map(|&k| rank.map_or((0.0, 0.0, 0.0), |r| rank_gains(r, k)))
                .map(|(h, d, q)| [h, d, q])
                .collect::<Vec<_>>()
        })
        .collect();
    let mut sums = vec![[0.0f64; 3]; ks.len()];
    for u in &per_user {
        for (x, y) in sums.iter_mut().zip(u) {
            for j in 0..3 {
                x[j] += y[j];
            }
        }
    }
    let n = topk.len() as f64;
    let mut out = Metrics::new();
    for (sum, &k) in sums.iter().zip(ks) {
        for (j, name) in ["hr", "ndcg", "mrr"].iter().enumerate() {
            out.insert(format!("{name}@{k}"), sum[j] / n);
        }
    }
    out.insert("users".into(), n);
    Ok(out)
}

/// [`topk_metrics`] overall and per group of each user's target item: keys `hr@K/item=<name>` and
/// so on, plus `users/item=<name>`. A group with no users gets no keys.
pub fn topk_metrics_by_group(
    topk: &[Vec<u32>],
    targets: &[u32],
    target_group: &[u8],
    names: &[&str],
    ks: &[usize],
) -> Result<Metrics> {
    check_len(
        "target groups (vs targets)",
        targets.len(),
        target_group.len(),
    )?;
    let mut out = topk_metrics(topk, targets, ks)?;
    for (g, name) in names.iter().enumerate() {
        let idx: Vec<usize> = (0..targets.len())
            .filter(|&i| usize::from(target_group[i]) == g)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let sub_topk: Vec<Vec<u32>> = idx.iter().map(|&i| topk[i].clone()).collect();
        let sub_targets: Vec<u32> = idx.iter().map(|&i| targets[i]).collect();
        for (k, v) in topk_metrics(&sub_topk, &sub_targets, ks)? {
            out.insert(format!("{k}/item={name}"), v);
        }
    }
    if let Some(i) = target_group
        .iter()
        .position(|&g| usize::from(g) >= names.len())
    {
        return Err(EvalError::GroupOutOfRange {
            what: "target groups".into(),
            index: i,
            group: target_group[i],
            n_groups: names.len(),
        });
    }
    Ok(out)
}

/// Streaming HR/NDCG/MRR over candidate lists. Buffers every row; `compute` groups rows by list id
/// and gives the keys of [`list_metrics`] (or [`list_metrics_by_group`] when built with
/// [`RankingMetric::with_item_groups`]).
///
/// [`Metric::update`] takes the list ids from `ScoredSlice::users` (one candidate list per user, as
/// in the IDW protocol); [`RankingMetric::update_lists`] takes explicit `u64` list ids. Rows of one
/// list may arrive in different batches.
#[derive(Debug, Clone)]
pub struct RankingMetric {
    ks: Vec<usize>,
    names: Option<Vec<String>>,
    name: String,
    list_ids: Vec<u64>,
    scores: Vec<f32>,
    labels: Vec<f32>,
    groups: Vec<u8>,
}

impl RankingMetric {
    /// Metrics at every K in `ks` (checked by `update`/`compute`, so this cannot fail). The name is
    /// `hr@K` of the first K, the natural early-stopping key.
    pub fn new(ks: &[usize]) -> Self {
        let name = ks
            .first()
            .map_or_else(|| "hr".to_string(), |k| format!("hr@{k}"));
        RankingMetric {
            ks: ks.to_vec(),
            names: None,
            name,
            list_ids: Vec::new(),
            scores: Vec::new(),
            labels: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Also breaks the metrics down by the item group of each list's positive; updates then need
    /// `ScoredSlice::item_group`.
    pub fn with_item_groups(mut self, names: &[&str]) -> Self {
        self.names = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Adds one batch with explicit list ids (parallel to `s.scores`). On error nothing is added.
    pub fn update_lists(&mut self, list_ids: &[u64], s: &ScoredSlice) -> Result<()> {
        check_ks(&self.ks)?;
        check_scores_labels(s.scores, s.labels)?;
        check_len("list_ids (vs scores)", s.scores.len(), list_ids.len())?;
        if let Some(names) = &self.names {
            let g = s.item_group.ok_or_else(|| {
                EvalError::MissingInput(
                    "ranking by item group needs item group ids (ScoredSlice::item_group)".into(),
                )
            })?;
            check_len("item_group (vs scores)", s.scores.len(), g.len())?;
            check_groups("item group", g, names.len())?;
            self.groups.extend_from_slice(g);
        }
        self.list_ids.extend_from_slice(list_ids);
        self.scores.extend_from_slice(s.scores);
        self.labels.extend_from_slice(s.labels);
        Ok(())
    }
}

impl Metric for RankingMetric {
    fn name(&self) -> &str {
        &self.name
    }
    fn direction(&self) -> Direction {
        Direction::HigherIsBetter
    }
    fn update(&mut self, s: &ScoredSlice) -> Result<()> {
        let users = s.users.ok_or_else(|| {
            EvalError::MissingInput(
                "ranking metrics need list ids: ScoredSlice::users (or use update_lists)".into(),
            )
        })?;
        let ids: Vec<u64> = users.iter().map(|&u| u64::from(u)).collect();
        self.update_lists(&ids, s)
    }
    fn compute(&self) -> Result<Vec<(String, f64)>> {
        let m: BTreeMap<String, f64> = match &self.names {
            None => list_metrics(&self.list_ids, &self.scores, &self.labels, &self.ks)?,
            Some(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                list_metrics_by_group(
                    &self.list_ids,
                    &self.scores,
                    &self.labels,
                    &self.groups,
                    &names,
                    &self.ks,
                )?
            }
        };
        Ok(m.into_iter().collect())
    }
    fn reset(&mut self) {
        self.list_ids.clear();
        self.scores.clear();
        self.labels.clear();
        self.groups.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn positive_third() {
        // list 7: positive 0.5, negatives 0.9, 0.6 above, 0.1, 0.2 below -> rank 3.
        let ids = [7u64, 7, 7, 7, 7];
        let s = [0.9, 0.5, 0.1, 0.6, 0.2];
        let l = [0.0, 1.0, 0.0, 0.0, 0.0];
        let m = list_metrics(&ids, &s, &l, &[2, 5]).unwrap();
        assert_eq!(m["hr@2"], 0.0);
        assert_eq!(m["ndcg@2"], 0.0);
        assert_eq!(m["mrr@2"], 0.0);
        assert_eq!(m["hr@5"], 1.0);
        assert!(close(m["ndcg@5"], 0.5));
        assert!(close(m["mrr@5"], 1.0 / 3.0));
        assert_eq!(m["lists"], 1.0);
        assert_eq!(m["lists_skipped"], 0.0);
    }

    #[test]
    fn ties_skips_and_multi_positive() {
        // list 1: positive 0.5 tied with two negatives, one above -> rank 1 + 1 + 1 = 3.
        // list 2: no positive -> skipped.
        // list 3 (rows interleaved): positives 0.8 (rank 1) and 0.3 (one negative 0.4 above,
        //   0.3 tie -> rank 2.5).
        let ids = [1u64, 3, 1, 2, 1, 3, 1, 3, 3, 2];
        let s = [0.5, 0.8, 0.5, 0.1, 0.5, 0.3, 0.7, 0.4, 0.3, 0.9];
        let l = [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let m = list_metrics(&ids, &s, &l, &[2, 3]).unwrap();
        assert_eq!(m["lists"], 2.0);
        assert_eq!(m["lists_skipped"], 1.0);
        // K = 2: list 1 miss; list 3 = (1 + 0) / 2.
        assert!(close(m["hr@2"], 0.25));
        assert!(close(m["mrr@2"], 0.25));
        // K = 3: list 1 hit at 3; list 3: (1 + 1) / 2 hits.
        assert!(close(m["hr@3"], 1.0));
        let l1 = 1.0 / 4f64.log2();
        let l3 = (1.0 + 1.0 / 3.5f64.log2()) / 2.0;
        assert!(close(m["ndcg@3"], (l1 + l3) / 2.0));
        assert!(close(
            m["mrr@3"],
            (1.0 / 3.0 + (1.0 + 1.0 / 2.5) / 2.0) / 2.0
        ));

        // Only skipped lists: NaN values.
        let m = list_metrics(&[1, 1], &[0.1, 0.2], &[0.0, 0.0], &[1]).unwrap();
        assert!(m["hr@1"].is_nan());
        assert_eq!(m["lists_skipped"], 1.0);
    }

    #[test]
    fn by_group_and_streaming() {
        let ids = [1u64, 1, 1, 2, 2, 2, 3, 3];
        let s = [0.9, 0.1, 0.2, 0.3, 0.8, 0.1, 0.5, 0.6];
        let l = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let g = [0u8, 1, 1, 1, 0, 0, 0, 1];
        // list 1: rank 1, tail; list 2: rank 2, body; list 3: rank 2, tail.
        let m = list_metrics_by_group(&ids, &s, &l, &g, &["tail", "body", "head"], &[1]).unwrap();
        assert!(close(m["hr@1"], 1.0 / 3.0));
        assert!(close(m["hr@1/item=tail"], 0.5));
        assert_eq!(m["hr@1/item=body"], 0.0);
        assert_eq!(m["lists/item=tail"], 2.0);
        assert!(!m.contains_key("hr@1/item=head"));
        assert!(matches!(
            list_metrics_by_group(&ids, &s, &l, &g, &["tail"], &[1]),
            Err(EvalError::GroupOutOfRange { .. })
        ));

        // Streaming in two batches (list 2 split across them) equals one shot.
        let users: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        let mut r = RankingMetric::new(&[1, 2]).with_item_groups(&["tail", "body", "head"]);
        assert_eq!(r.name(), "hr@1");
        let h = 4;
        r.update(
            &ScoredSlice::new(&s[..h], &l[..h])
                .with_users(&users[..h])
                .with_item_group(&g[..h]),
        )
        .unwrap();
        r.update(
            &ScoredSlice::new(&s[h..], &l[h..])
                .with_users(&users[h..])
                .with_item_group(&g[h..]),
        )
        .unwrap();
        let want =
            list_metrics_by_group(&ids, &s, &l, &g, &["tail", "body", "head"], &[1, 2]).unwrap();
        assert_eq!(r.compute().unwrap(), want.into_iter().collect::<Vec<_>>());
        r.reset();
        assert!(matches!(r.compute(), Err(EvalError::Empty(_))));
        assert!(matches!(
            r.update(&ScoredSlice::new(&s, &l).with_users(&users)),
            Err(EvalError::MissingInput(_))
        ));
        let mut r = RankingMetric::new(&[1]);
        r.update_lists(&ids, &ScoredSlice::new(&s, &l)).unwrap();
        let want = list_metrics(&ids, &s, &l, &[1]).unwrap();
        assert_eq!(r.compute().unwrap(), want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn topk() {
        let topk = vec![vec![5, 3, 9], vec![1, 2, 3], vec![4], vec![]];
        let targets = [3, 7, 4, 1];
        let m = topk_metrics(&topk, &targets, &[1, 2, 3]).unwrap();
        assert!(close(m["hr@1"], 0.25));
        assert!(close(m["hr@2"], 0.5));
        assert!(close(m["ndcg@2"], (1.0 / 3f64.log2() + 1.0) / 4.0));
        assert!(close(m["mrr@3"], (0.5 + 1.0) / 4.0));
        assert_eq!(m["users"], 4.0);
        assert!(matches!(
            topk_metrics(&topk, &[1], &[1]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(
            topk_metrics(&topk, &targets, &[0]),
            Err(EvalError::InvalidArgument(_))
        ));
        assert!(matches!(
            topk_metrics(&[], &[], &[1]),
            Err(EvalError::Empty(_))
        ));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            list_metrics(&[1], &[0.1, 0.2], &[0.0, 1.0], &[1]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(
            list_metrics(&[1, 1], &[f32::NAN, 0.2], &[0.0, 1.0], &[1]),
            Err(EvalError::NonFinite { .. })
        ));
        assert!(matches!(
            list_metrics(&[], &[], &[], &[1]),
            Err(EvalError::Empty(_))
        ));
        assert!(matches!(
            list_metrics(&[1], &[0.1], &[1.0], &[]),
            Err(EvalError::InvalidArgument(_))
        ));
    }
}

/// The strict IDW protocol check used by `longtail eval`: every candidate list has exactly one
/// positive, and no K is larger than a list. Errors name the first offending list.
pub fn check_candidate_lists(list_ids: &[u64], labels: &[f32], ks: &[usize]) -> Result<()> {
    if list_ids.len() != labels.len() {
        return Err(EvalError::LengthMismatch {
            what: "list ids vs labels".into(),
            expected: labels.len(),
            found: list_ids.len(),
        });
    }
    // (rows, positives) per list, in first-seen order for a stable first error.
    let mut order: Vec<u64> = Vec::new();
    let mut counts: std::collections::HashMap<u64, (usize, usize)> =
        std::collections::HashMap::new();
    for (&l, &y) in list_ids.iter().zip(labels) {
        let e = counts.entry(l).or_insert_with(|| {
            order.push(l);
            (0, 0)
        });
        e.0 += 1;
        e.1 += usize::from(y > 0.5);
    }
    let kmax = ks.iter().copied().max().unwrap_or(0);
    for l in order {
        let (rows, pos) = counts[&l];
        if pos != 1 {
            return Err(EvalError::InvalidArgument(format!(
                "candidate list {l} has {pos} positives; each list needs exactly one"
            )));
        }
        if kmax > rows {
            return Err(EvalError::InvalidArgument(format!(
                "K = {kmax} is larger than candidate list {l} ({rows} items)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod strict_tests {
    use super::*;

    #[test]
    fn strict_list_checks() {
        assert!(check_candidate_lists(&[1, 1, 2, 2], &[1.0, 0.0, 0.0, 1.0], &[2]).is_ok());
        let e = check_candidate_lists(&[1, 1, 2, 2], &[1.0, 0.0, 0.0, 0.0], &[1]).unwrap_err();
        assert!(e.to_string().contains("list 2 has 0 positives"), "{e}");
        let e = check_candidate_lists(&[1, 1], &[1.0, 1.0], &[1]).unwrap_err();
        assert!(e.to_string().contains("list 1 has 2 positives"), "{e}");
        let e = check_candidate_lists(&[1, 1], &[1.0, 0.0], &[5]).unwrap_err();
        assert!(
            e.to_string()
                .contains("K = 5 is larger than candidate list 1"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod topk_group_tests {
    use super::*;

    #[test]
    fn grouped_topk_matches_subsets() {
        let topk = vec![vec![5, 6, 7], vec![1, 2, 3], vec![9, 8, 4]];
        let targets = vec![6, 9, 4];
        let m =
            topk_metrics_by_group(&topk, &targets, &[0, 1, 0], &["tail", "head"], &[1, 3]).unwrap();
        assert_eq!(m["hr@3"], 2.0 / 3.0);
        assert_eq!(m["hr@3/item=tail"], 1.0); // ranks 2 and 3
        assert_eq!(m["hr@3/item=head"], 0.0);
        assert_eq!(m["hr@1/item=tail"], 0.0);
        assert!((m["mrr@3/item=tail"] - (0.5 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(m["users/item=head"], 1.0);
        assert!(
            topk_metrics_by_group(&topk, &targets, &[0, 2, 0], &["tail", "head"], &[1]).is_err()
        );
    }
}
