//! Exact ROC AUC, GAUC and per-group AUC.
//!
//! AUC is the Mann–Whitney U statistic: sort by score, give tied scores their average rank, i.e. a
//! positive tied with a negative counts one half. This is exactly what scikit-learn's `roc_auc_score`
//! computes (its trapezoidal ROC area treats ties the same way). O(n log n): one sort, one scan.
//!
//! The pair count is accumulated in integers (`u128`, doubled to keep the halves exact) so the only
//! rounding is the final division.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{check_len, check_scores_labels, EvalError, Result};

/// Above this many samples, sort in parallel.
const PAR_SORT_MIN: usize = 1 << 20;

/// A label is positive when it is above one half (labels are 0/1; this tolerates 0.0/1.0 noise).
#[inline]
pub(crate) fn is_pos(label: f32) -> bool {
    label > 0.5
}

/// Maps a finite score to a `u32` whose unsigned order is the float order. `-0.0` and `0.0` map to
/// the same key, so they tie as they do in scikit-learn.
#[inline]
fn score_key(s: f32) -> u32 {
    let s = if s == 0.0 { 0.0 } else { s };
    let b = s.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Doubled Mann–Whitney numerator and class counts for entries already sorted by score key.
/// `key` and `pos` read one entry. Returns `None` when only one class is present.
fn auc_sorted<T: Copy>(
    entries: &[T],
    key: impl Fn(T) -> u32,
    pos: impl Fn(T) -> bool,
) -> Option<f64> {
    let n = entries.len();
    let mut neg_below: u64 = 0;
    let mut n_pos: u64 = 0;
    // 2 * sum over positives of (#negatives strictly below + #tied negatives / 2).
    let mut num2: u128 = 0;
    let mut i = 0;
    while i < n {
        let k = key(entries[i]);
        let (mut p, mut q) = (0u64, 0u64);
        let mut j = i;
        while j < n && key(entries[j]) == k {
            if pos(entries[j]) {
                p += 1;
            } else {
                q += 1;
            }
            j += 1;
        }
        num2 += p as u128 * (2 * neg_below + q) as u128;
        neg_below += q;
        n_pos += p;
        i = j;
    }
    let n_neg = neg_below;
    if n_pos == 0 || n_neg == 0 {
        None
    } else {
        Some(num2 as f64 / (2.0 * n_pos as f64 * n_neg as f64))
    }
}

fn sort_u64(v: &mut [u64], parallel: bool) {
    if parallel {
        v.par_sort_unstable();
    } else {
        v.sort_unstable();
    }
}

fn sort_u128(v: &mut [u128], parallel: bool) {
    if parallel {
        v.par_sort_unstable();
    } else {
        v.sort_unstable();
    }
}

pub(crate) fn auc_impl(scores: &[f32], labels: &[f32], parallel: bool) -> Result<Option<f64>> {
    check_scores_labels(scores, labels)?;
    if scores.is_empty() {
        return Err(EvalError::Empty("auc: no samples".into()));
    }
    // Pack (score key, label) into one u64 so the sort is a plain integer sort.
    let mut packed: Vec<u64> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &l)| (u64::from(score_key(s)) << 32) | u64::from(is_pos(l)))
        .collect();
    sort_u64(&mut packed, parallel);
    Ok(auc_sorted(&packed, |e| (e >> 32) as u32, |e| e & 1 == 1))
}

/// Exact ROC AUC of `scores` against 0/1 `labels` (label > 0.5 is positive), ties given average
/// ranks exactly as scikit-learn's `roc_auc_score`. `Ok(None)` when only one class is present.
///
/// Errors on a length mismatch, a non-finite score or label, or empty input.
pub fn auc(scores: &[f32], labels: &[f32]) -> Result<Option<f64>> {
    auc_impl(scores, labels, scores.len() >= PAR_SORT_MIN)
}

/// Sorts `(group, score key, label)` and returns, per group present, `(group, n, auc)` in group
/// order. Groups are found by sorting, so the input need not be grouped.
fn per_group(
    groups: impl Fn(usize) -> u32,
    scores: &[f32],
    labels: &[f32],
) -> Vec<(u32, usize, Option<f64>)> {
    let n = scores.len();
    let mut packed: Vec<u128> = (0..n)
        .map(|i| {
            (u128::from(groups(i)) << 64)
                | (u128::from(score_key(scores[i])) << 32)
                | u128::from(is_pos(labels[i]))
        })
        .collect();
    sort_u128(&mut packed, n >= PAR_SORT_MIN);
    let group_of = |e: u128| (e >> 64) as u32;
    // Segment boundaries, one per group.
    let mut bounds = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || group_of(packed[i]) != group_of(packed[start]) {
            bounds.push((start, i));
            start = i;
        }
    }
    bounds
        .into_par_iter()
        .with_min_len(64)
        .map(|(a, b)| {
            let seg = &packed[a..b];
            let auc = auc_sorted(seg, |e| (e >> 32) as u32, |e| e & 1 == 1);
            (group_of(seg[0]), b - a, auc)
        })
        .collect()
}

/// GAUC and how many users and samples went into it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaucResult {
    /// Sample-weighted mean of per-user AUC; `None` when no user has both classes.
    pub gauc: Option<f64>,
    /// Users with both classes.
    pub users_used: usize,
    /// Users with only one class (their AUC is undefined), left out of the mean.
    pub users_skipped: usize,
    /// Samples of the used users (the denominator of the weighted mean).
    pub samples_used: usize,
}

/// Group AUC: per-user AUC weighted by the user's number of samples. Users with a single class are
/// skipped and counted. The input need not be sorted by user; users are processed in parallel.
///
/// Errors on a length mismatch, a non-finite score or label, or empty input.
pub fn gauc(users: &[u32], scores: &[f32], labels: &[f32]) -> Result<GaucResult> {
    check_scores_labels(scores, labels)?;
    check_len("users (vs scores)", scores.len(), users.len())?;
    if scores.is_empty() {
        return Err(EvalError::Empty("gauc: no samples".into()));
    }
    let per_user = per_group(|i| users[i], scores, labels);
    let mut r = GaucResult {
        gauc: None,
        users_used: 0,
        users_skipped: 0,
        samples_used: 0,
    };
    // Summed sequentially in user order so the result does not depend on thread scheduling.
    let mut weighted = 0.0f64;
    for (_, n, a) in per_user {
        match a {
            Some(a) => {
                weighted += a * n as f64;
                r.users_used += 1;
                r.samples_used += n;
            }
            None => r.users_skipped += 1,
        }
    }
    if r.samples_used > 0 {
        r.gauc = Some(weighted / r.samples_used as f64);
    }
    Ok(r)
}

/// AUC within each group: element `g` of the result is the AUC of the samples with `groups[i] == g`,
/// for `g < n_groups`; `None` when the group has no samples or only one class.
///
/// Errors on a length mismatch, a non-finite score or label, a group id `>= n_groups`, or empty input.
pub fn auc_by_group(
    groups: &[u8],
    n_groups: usize,
    scores: &[f32],
    labels: &[f32],
) -> Result<Vec<Option<f64>>> {
    check_scores_labels(scores, labels)?;
    check_len("groups (vs scores)", scores.len(), groups.len())?;
    if let Some(index) = groups.iter().position(|&g| usize::from(g) >= n_groups) {
        return Err(EvalError::GroupOutOfRange {
            what: "auc_by_group".into(),
            index,
            group: groups[index],
            n_groups,
        });
    }
    if scores.is_empty() {
        return Err(EvalError::Empty("auc_by_group: no samples".into()));
    }
    let mut out = vec![None; n_groups];
    for (g, _, a) in per_group(|i| u32::from(groups[i]), scores, labels) {
        out[g as usize] = a;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_reversed_tied() {
        let l = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(auc(&[0.1, 0.2, 0.3, 0.4], &l).unwrap(), Some(1.0));
        assert_eq!(auc(&[0.4, 0.3, 0.2, 0.1], &l).unwrap(), Some(0.0));
        assert_eq!(auc(&[0.5; 4], &l).unwrap(), Some(0.5));
    }

    #[test]
    fn hand_case_with_ties() {
        // positives: 0.35, 0.8, 0.4, 0.1; negatives: 0.1, 0.4.
        // pairs (pos, neg): 0.35>0.1 1, 0.35<0.4 0, 0.8 1+1, 0.4>0.1 1, 0.4=0.4 0.5,
        // 0.1=0.1 0.5, 0.1<0.4 0  => 5 / 8.
        let s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.1];
        let l = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        assert!(close(auc(&s, &l).unwrap().unwrap(), 5.0 / 8.0));
    }

    #[test]
    fn negative_zero_ties_with_zero_and_negatives_sort() {
        assert_eq!(auc(&[-0.0, 0.0], &[0.0, 1.0]).unwrap(), Some(0.5));
        assert_eq!(auc(&[0.0, -0.0], &[0.0, 1.0]).unwrap(), Some(0.5));
        assert_eq!(
            auc(&[-3.0, -1.0, 2.0], &[0.0, 1.0, 1.0]).unwrap(),
            Some(1.0)
        );
        assert_eq!(auc(&[-1.0, -3.0], &[0.0, 1.0]).unwrap(), Some(0.0));
    }

    #[test]
    fn one_class_is_none() {
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 1.0]).unwrap(), None);
        assert_eq!(auc(&[0.1], &[0.0]).unwrap(), None);
    }

    #[test]
    fn bad_input_errors() {
        assert!(matches!(
            auc(&[0.1, 0.2], &[1.0]),
            Err(EvalError::LengthMismatch {
                expected: 2,
                found: 1,
                ..
            })
        ));
        assert!(matches!(
            auc(&[0.1, f32::NAN], &[1.0, 0.0]),
            Err(EvalError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            auc(&[0.1, 0.2], &[f32::INFINITY, 0.0]),
            Err(EvalError::NonFinite { index: 0, .. })
        ));
        assert!(matches!(auc(&[], &[]), Err(EvalError::Empty(_))));
        assert!(matches!(
            gauc(&[1], &[0.1, 0.2], &[1.0, 0.0]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(gauc(&[], &[], &[]), Err(EvalError::Empty(_))));
        assert!(matches!(
            auc_by_group(&[0, 2], 2, &[0.1, 0.2], &[1.0, 0.0]),
            Err(EvalError::GroupOutOfRange {
                index: 1,
                group: 2,
                n_groups: 2,
                ..
            })
        ));
    }

    /// Deterministic pseudo-random numbers for tests (no rand dependency).
    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 40) as f32 / (1u64 << 24) as f32
    }

    #[test]
    fn parallel_sort_matches_sequential() {
        let mut seed = 7;
        let n = PAR_SORT_MIN + 12345;
        let scores: Vec<f32> = (0..n)
            .map(|_| (lcg(&mut seed) * 1000.0).round() / 1000.0)
            .collect();
        let labels: Vec<f32> = scores
            .iter()
            .map(|&s| f32::from(u8::from(lcg(&mut seed) < 0.2 + 0.5 * s)))
            .collect();
        let seq = auc_impl(&scores, &labels, false).unwrap().unwrap();
        let par = auc_impl(&scores, &labels, true).unwrap().unwrap();
        assert_eq!(seq, par);
        assert_eq!(auc(&scores, &labels).unwrap().unwrap(), seq);
        assert!(seq > 0.6 && seq < 0.9, "{seq}");
    }

    #[test]
    fn gauc_unsorted_users_and_skips() {
        // user 5: perfect (3 samples); user 2: reversed (2 samples); user 9: one class.
        let users = [5, 2, 9, 5, 2, 5, 9];
        let scores = [0.9, 0.1, 0.3, 0.2, 0.8, 0.5, 0.4];
        let labels = [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let r = gauc(&users, &scores, &labels).unwrap();
        assert_eq!(r.users_used, 2);
        assert_eq!(r.users_skipped, 1);
        assert_eq!(r.samples_used, 5);
        assert!(close(r.gauc.unwrap(), (1.0 * 3.0 + 0.0 * 2.0) / 5.0));

        let r = gauc(&[1, 1], &[0.1, 0.2], &[1.0, 1.0]).unwrap();
        assert_eq!(r.gauc, None);
        assert_eq!((r.users_used, r.users_skipped, r.samples_used), (0, 1, 0));
    }

    #[test]
    fn by_group_matches_subsets() {
        let groups = [0u8, 1, 0, 1, 0, 1, 3];
        let scores = [0.1, 0.5, 0.9, 0.5, 0.4, 0.2, 0.3];
        let labels = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
        let r = auc_by_group(&groups, 4, &scores, &labels).unwrap();
        assert_eq!(r[0], auc(&[0.1, 0.9, 0.4], &[0.0, 1.0, 1.0]).unwrap());
        assert_eq!(r[1], auc(&[0.5, 0.5, 0.2], &[1.0, 0.0, 1.0]).unwrap());
        assert_eq!(r[2], None);
        assert_eq!(r[3], None);
    }
}
