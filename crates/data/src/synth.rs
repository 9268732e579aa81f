//! Synthetic multi-interest data: the generator of the IDW paper's Appendix A (a finite-state
//! hidden Markov model over interest clusters), with long-tailed user activeness added so that it
//! exercises tail users.
//!
//! Per user u:
//! 1. interests `Y_u`: `interests_per_user` distinct clusters drawn without replacement by the
//!    power-law weights `pi_c ∝ c^-interest_skew` (c = 1..C, so cluster 0 is the most popular);
//! 2. a sequence length `L` drawn from `P(L) ∝ L^-length_exponent` on `[min_len, max_len]`
//!    (`min_len == max_len` gives the paper's fixed `T`);
//! 3. a cluster sequence: the first cluster uniform over `Y_u`, then transitions by eq. (12)
//!    ([`transition_matrix`]);
//! 4. an item per step: cluster c holds items `c*K+1 ..= c*K+K` (`K = items / clusters`), drawn
//!    by `p_k ∝ k^-item_exponent`;
//! 5. increasing timestamps: a random start in `[start_ts, start_ts + mean_gap_s)`, then gaps
//!    drawn from an exponential distribution with mean `mean_gap_s`, at least 1 second.
//!
//! Each user draws from its own ChaCha stream, so generation runs in parallel and the output
//! depends only on the config and the seed.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::import::MAX_TIMESTAMP_SECS;
use crate::seed;
use crate::table::Interactions;

/// Parameters of the synthetic generator (defaults in brackets; Table 3 of the IDW paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Number of users |U| [2000].
    pub users: usize,
    /// Number of items |I| [500]; must be a multiple of `clusters`.
    pub items: usize,
    /// Number of interest clusters C [10].
    pub clusters: usize,
    /// |Y_u|, interests per user [2].
    pub interests_per_user: usize,
    /// Power-law exponent of the cluster weights pi_c ∝ c^-skew [1.0]; 0 is uniform.
    pub interest_skew: f64,
    /// Power-law exponent of the item weights inside a cluster p_k ∝ k^-exp [0.5].
    pub item_exponent: f64,
    /// Probability of staying in an interesting cluster [0.6].
    pub alpha: f64,
    /// Interest volatility: total probability of moving to another interesting cluster [0.3].
    pub gamma: f64,
    /// Probability of staying in a non-interesting cluster [0.1].
    pub epsilon: f64,
    /// Shortest user sequence [1].
    pub min_len: usize,
    /// Longest user sequence [60].
    pub max_len: usize,
    /// Exponent of the sequence-length law P(L) ∝ L^-exp [1.5]; 0 is uniform.
    pub length_exponent: f64,
    /// Earliest timestamp, seconds [1_600_000_000]: in `0..=`[`MAX_TIMESTAMP_SECS`] (what import
    /// accepts), and `start_ts + max_len * mean_gap_s` may not pass it either.
    pub start_ts: i64,
    /// Mean gap between a user's consecutive events, seconds [86_400].
    pub mean_gap_s: i64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            users: 2000,
            items: 500,
            clusters: 10,
            interests_per_user: 2,
            interest_skew: 1.0,
            item_exponent: 0.5,
            alpha: 0.6,
            gamma: 0.3,
            epsilon: 0.1,
            min_len: 1,
            max_len: 60,
            length_exponent: 1.5,
            start_ts: 1_600_000_000,
            mean_gap_s: 86_400,
        }
    }
}

impl SynthConfig {
    /// Checks every parameter; the error names the offending key.
    pub fn validate(&self) -> Result<()> {
        let err = |k: &str, m: String| Err(DataError::config(k, m));
        if self.users == 0 || self.users >= u32::MAX as usize {
            return err(
                "users",
                format!("must be in 1..{}, got {}", u32::MAX, self.users),
            );
        }
        if self.clusters == 0 {
            return err("clusters", "must be >= 1".into());
        }
        if self.items == 0 || self.items >= u32::MAX as usize {
            return err(
                "items",
                format!("must be in 1..{}, got {}", u32::MAX, self.items),
            );
        }
        if self.items % self.clusters != 0 {
            return err(
                "items",
                format!(
                    "must be a multiple of clusters ({}), got {}",
                    self.clusters, self.items
                ),
            );
        }
        if self.interests_per_user == 0 || self.interests_per_user > self.clusters {
            return err(
                "interests_per_user",
                format!(
                    "must be in 1..=clusters ({}), got {}",
                    self.clusters, self.interests_per_user
                ),
            );
        }
        for (k, v) in [
            ("interest_skew", self.interest_skew),
            ("item_exponent", self.item_exponent),
            ("length_exponent", self.length_exponent),
        ] {
            if !v.is_finite() || v < 0.0 {
                return err(k, format!("must be a finite number >= 0, got {v}"));
            }
        }
        for (k, v) in [
            ("alpha", self.alpha),
            ("gamma", self.gamma),
            ("epsilon", self.epsilon),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return err(k, format!("must be a probability in [0, 1], got {v}"));
            }
        }
        if self.alpha + self.gamma > 1.0 + 1e-12 {
            return err(
                "gamma",
                format!(
                    "alpha + gamma must be <= 1, got {} + {}",
                    self.alpha, self.gamma
                ),
            );
        }
        if self.min_len == 0 {
            return err("min_len", "must be >= 1".into());
        }
        if self.min_len > self.max_len {
            return err(
                "min_len",
                format!(
                    "must be <= max_len ({}), got {}",
                    self.max_len, self.min_len
                ),
            );
        }
        if self.mean_gap_s < 1 {
            return err(
                "mean_gap_s",
                format!("must be >= 1 second, got {}", self.mean_gap_s),
            );
        }
        if !(0..=MAX_TIMESTAMP_SECS).contains(&self.start_ts) {
            return err(
                "start_ts",
                format!(
                    "must be unix seconds in 0..={MAX_TIMESTAMP_SECS} (1970 to 2100-01-01, the \
                     timestamps import accepts), got {}",
                    self.start_ts
                ),
            );
        }
        // The span the timestamps are expected to cover: a start within one mean gap, then up to
        // max_len - 1 gaps of mean_gap_s on average.
        let end = i64::try_from(self.max_len)
            .ok()
            .and_then(|l| l.checked_mul(self.mean_gap_s))
            .and_then(|span| span.checked_add(self.start_ts));
        if end.is_none_or(|e| e > MAX_TIMESTAMP_SECS) {
            return err(
                "start_ts",
                format!(
                    "start_ts + max_len * mean_gap_s = {} + {} * {} is after 2100-01-01 \
                     ({MAX_TIMESTAMP_SECS}), the latest timestamp import accepts; lower start_ts, \
                     mean_gap_s or max_len",
                    self.start_ts, self.max_len, self.mean_gap_s
                ),
            );
        }
        Ok(())
    }

    /// Items per cluster K.
    pub fn items_per_cluster(&self) -> usize {
        self.items / self.clusters.max(1)
    }
}

/// The generated data with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthData {
    /// Rows sorted by (user, ts); users 1..=users, items 1..=items; no rating or label.
    pub interactions: Interactions,
    /// Cluster of each item (index = item id; entry 0 is padding and unused).
    pub item_cluster: Vec<u32>,
    /// Interest clusters Y_u of each user (index = user id; entry 0 is empty).
    pub user_interests: Vec<Vec<u32>>,
    pub config: SynthConfig,
}

impl SynthData {
    /// Item vocabulary size of the configured catalogue (`items + 1`), which can exceed
    /// `interactions.num_items()` when the highest ids were never drawn.
    pub fn num_items(&self) -> usize {
        self.config.items + 1
    }

    /// User vocabulary size (`users + 1`).
    pub fn num_users(&self) -> usize {
        self.config.users + 1
    }
}

/// Power-law weights `w_k = k^-exponent`, k = 1..=n (unnormalized).
pub fn power_law(n: usize, exponent: f64) -> Vec<f64> {
    (1..=n).map(|k| (k as f64).powf(-exponent)).collect()
}

/// The C×C transition matrix of eq. (12) for the interest set `interests` (row = from, column =
/// to), every row renormalized to sum to 1.
///
/// Edge cases of eq. (12), where a probability mass has nowhere to go:
/// - `|Y_u| = 1`: no other interesting cluster, so the volatility mass `gamma` is folded into
///   staying (the stay probability becomes `alpha + gamma`);
/// - `|Y_u| = C`: no non-interesting cluster, so `1 - alpha - gamma` is folded into staying.
///
/// Interests outside `0..clusters` and duplicates are ignored.
pub fn transition_matrix(
    clusters: usize,
    interests: &[u32],
    alpha: f64,
    gamma: f64,
    epsilon: f64,
) -> Vec<Vec<f64>> {
    let mut is_interest = vec![false; clusters];
    for &c in interests {
        if let Some(x) = is_interest.get_mut(c as usize) {
            *x = true;
        }
    }
    let y = is_interest.iter().filter(|&&b| b).count();
    let outside = clusters - y;
    let mut p = vec![vec![0.0; clusters]; clusters];
    for (i, row) in p.iter_mut().enumerate() {
        if is_interest[i] {
            let mut stay = alpha;
            if y > 1 {
                let each = gamma / (y - 1) as f64;
                for (j, pj) in row.iter_mut().enumerate() {
                    if j != i && is_interest[j] {
                        *pj = each;
                    }
                }
            } else {
                stay += gamma;
            }
            let rest = 1.0 - alpha - gamma;
            if outside > 0 {
                let each = rest / outside as f64;
                for (j, pj) in row.iter_mut().enumerate() {
                    if !is_interest[j] {
                        *pj = each;
                    }
                }
            } else {
                stay += rest;
            }
            row[i] = stay;
        } else if y > 0 {
            row[i] = epsilon;
            let each = (1.0 - epsilon) / y as f64;
            for (j, pj) in row.iter_mut().enumerate() {
                if is_interest[j] {
                    *pj = each;
                }
            }
        } else {
            // No interests at all: a user who never leaves where they are.
            row[i] = 1.0;
        }
        let sum: f64 = row.iter().sum();
        if sum > 0.0 {
            row.iter_mut().for_each(|x| *x /= sum);
        } else {
            // alpha = gamma = 0 with |Y_u| = C... cannot happen (rest = 1), but never emit a zero row.
            row[i] = 1.0;
        }
    }
    p
}

/// Cumulative sums of `w`, for inverse-CDF sampling.
fn cumulative(w: &[f64]) -> Vec<f64> {
    w.iter()
        .scan(0.0, |acc, &x| {
            *acc += x;
            Some(*acc)
        })
        .collect()
}

/// Index drawn by the cumulative weights `cdf` (last entry = total mass > 0).
fn draw(rng: &mut impl Rng, cdf: &[f64]) -> usize {
    let total = cdf.last().copied().unwrap_or(0.0);
    let u = rng.gen::<f64>() * total;
    cdf.partition_point(|&c| c <= u)
        .min(cdf.len().saturating_sub(1))
}

/// What the generator will hold, checked against memory before anything is allocated: the length
/// and item distributions, and the rows (users times the expected sequence length).
fn check_memory(cfg: &SynthConfig) -> Result<()> {
    let span = (cfg.max_len - cfg.min_len + 1) as f64;
    crate::memory::check_fits(span * 16.0, "max_len", "the sequence-length distribution")?;
    crate::memory::check_fits(cfg.items as f64 * 24.0, "items", "the item distribution")?;
    let (mut z, mut m) = (0.0, 0.0);
    for l in cfg.min_len..=cfg.max_len {
        let p = (l as f64).powf(-cfg.length_exponent);
        z += p;
        m += p * l as f64;
    }
    let mean_len = if z > 0.0 { m / z } else { cfg.max_len as f64 };
    // user, item, ts per row, twice (per-user buffers, then the table).
    let rows = cfg.users as f64 * mean_len;
    crate::memory::check_fits(
        rows * 16.0 * 2.0,
        "users",
        &format!("{rows:.0} interactions"),
    )
}

/// Generates the synthetic data set; deterministic for (`cfg`, `seed`).
pub fn generate(cfg: &SynthConfig, seed: u64) -> Result<SynthData> {
    cfg.validate()?;
    check_memory(cfg)?;
    let c = cfg.clusters;
    let k = cfg.items_per_cluster();
    let pi = power_law(c, cfg.interest_skew);
    let item_cdf = cumulative(&power_law(k, cfg.item_exponent));
    let lengths: Vec<usize> = (cfg.min_len..=cfg.max_len).collect();
    let len_cdf = cumulative(
        &lengths
            .iter()
            .map(|&l| (l as f64).powf(-cfg.length_exponent))
            .collect::<Vec<_>>(),
    );
    let base = seed::derive_seed(seed, "synth");

    struct User {
        interests: Vec<u32>,
        items: Vec<u32>,
        ts: Vec<i64>,
    }
    let users: Vec<User> = (1..=cfg.users as u32)
        .into_par_iter()
        .map(|u| {
            let mut rng = seed::rng_indexed(base, "users", u64::from(u));
            // Interests: weighted draws without replacement.
            let mut w = pi.clone();
            let mut interests = Vec::with_capacity(cfg.interests_per_user);
            for _ in 0..cfg.interests_per_user {
                let ci = draw(&mut rng, &cumulative(&w));
                w[ci] = 0.0;
                interests.push(ci as u32);
            }
            interests.sort_unstable();
            let trans: Vec<Vec<f64>> =
                transition_matrix(c, &interests, cfg.alpha, cfg.gamma, cfg.epsilon)
                    .iter()
                    .map(|row| cumulative(row))
                    .collect();
            let len = lengths[draw(&mut rng, &len_cdf)];
            let mut cluster = interests[rng.gen_range(0..interests.len())] as usize;
            // No overflow: validate() bounds start_ts + max_len * mean_gap_s.
            let mut t = cfg.start_ts + rng.gen_range(0..cfg.mean_gap_s);
            let mut items = Vec::with_capacity(len);
            let mut ts = Vec::with_capacity(len);
            for step in 0..len {
                if step > 0 {
                    cluster = draw(&mut rng, &trans[cluster]);
                    // Exponential gap; 1 - U lies in (0, 1], so ln is finite.
                    let gap = -(1.0 - rng.gen::<f64>()).ln() * cfg.mean_gap_s as f64;
                    t = t.saturating_add((gap.round() as i64).max(1));
                }
                let item = cluster * k + draw(&mut rng, &item_cdf) + 1;
                items.push(item as u32);
                ts.push(t);
            }
            User {
                interests,
                items,
                ts,
            }
        })
        .collect();

    // The gaps are random, so the drawn times can pass the expected span validate() checks.
    if let Some(&last) = users.iter().filter_map(|u| u.ts.last()).max() {
        if last > MAX_TIMESTAMP_SECS {
            return Err(DataError::config(
                "start_ts",
                format!(
                    "the generated timestamps reach {last}, after 2100-01-01 \
                     ({MAX_TIMESTAMP_SECS}), the latest timestamp import accepts; lower start_ts, \
                     mean_gap_s or max_len"
                ),
            ));
        }
    }
    let total: usize = users.iter().map(|u| u.items.len()).sum();
    let mut inter = Interactions {
        user: Vec::with_capacity(total),
        item: Vec::with_capacity(total),
        ts: Vec::with_capacity(total),
        rating: None,
        label: None,
    };
    let mut user_interests = Vec::with_capacity(cfg.users + 1);
    user_interests.push(Vec::new());
    for (i, u) in users.into_iter().enumerate() {
        inter
            .user
            .extend(std::iter::repeat_n(i as u32 + 1, u.items.len()));
        inter.item.extend_from_slice(&u.items);
        inter.ts.extend_from_slice(&u.ts);
        user_interests.push(u.interests);
    }
    let item_cluster = std::iter::once(0)
        .chain((0..cfg.items).map(|i| (i / k) as u32))
        .collect();
    Ok(SynthData {
        interactions: inter,
        item_cluster,
        user_interests,
        config: cfg.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig {
            users: 300,
            items: 50,
            clusters: 5,
            ..Default::default()
        }
    }

    #[test]
    fn rows_sum_to_one_and_match_eq_12() {
        let (a, g, e) = (0.6, 0.3, 0.1);
        let y = [1u32, 3, 4];
        let p = transition_matrix(6, &y, a, g, e);
        for row in &p {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let close = |x: f64, v: f64| (x - v).abs() < 1e-12;
        // i in Y
        assert!(close(p[1][1], a));
        assert!(close(p[1][3], g / 2.0));
        assert!(close(p[1][0], (1.0 - a - g) / 3.0));
        assert!(close(p[4][5], (1.0 - a - g) / 3.0));
        // i not in Y
        assert!(close(p[0][0], e));
        assert!(close(p[0][3], (1.0 - e) / 3.0));
        assert!(close(p[0][2], 0.0));
        assert!(close(p[5][2], 0.0));
    }

    #[test]
    fn edge_cases_fold_mass_into_staying() {
        let p = transition_matrix(4, &[2], 0.6, 0.3, 0.1);
        assert!((p[2][2] - 0.9).abs() < 1e-12, "gamma folded into staying");
        assert!((p[2][0] - 0.1 / 3.0).abs() < 1e-12);
        let p = transition_matrix(3, &[0, 1, 2], 0.6, 0.3, 0.1);
        assert!(
            (p[1][1] - 0.7).abs() < 1e-12,
            "outside mass folded into staying"
        );
        assert!((p[1][0] - 0.15).abs() < 1e-12);
        let p = transition_matrix(1, &[0], 0.6, 0.3, 0.1);
        assert_eq!(p, vec![vec![1.0]]);
        for row in transition_matrix(5, &[0, 4], 0.0, 0.0, 1.0) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn validate_names_the_key() {
        let bad = |f: fn(&mut SynthConfig), key: &str| {
            let mut c = SynthConfig::default();
            f(&mut c);
            match c.validate() {
                Err(DataError::Config { key: k, .. }) => assert_eq!(k, key),
                other => panic!("expected config error on {key}, got {other:?}"),
            }
        };
        bad(|c| c.items = 501, "items");
        bad(|c| c.interests_per_user = 11, "interests_per_user");
        bad(|c| c.interests_per_user = 0, "interests_per_user");
        bad(|c| c.alpha = 0.8, "gamma");
        bad(|c| c.epsilon = 1.5, "epsilon");
        bad(|c| c.min_len = 61, "min_len");
        bad(|c| c.users = 0, "users");
        bad(|c| c.interest_skew = f64::NAN, "interest_skew");
        SynthConfig::default().validate().unwrap();
        let e = serde_json::from_str::<SynthConfig>(r#"{"usres": 3}"#).unwrap_err();
        assert!(e.to_string().contains("usres"));
    }

    #[test]
    fn start_ts_and_its_span_stay_in_the_import_range() {
        let key_of = |r: Result<SynthData>| match r {
            Err(DataError::Config { key, message }) => format!("{key}: {message}"),
            other => panic!("expected a config error, got {other:?}"),
        };
        let cfg = |start_ts: i64| SynthConfig {
            start_ts,
            ..small()
        };
        for (start, want) in [
            (9_223_372_036_854_775_000, "start_ts: must be unix seconds"),
            (-1, "start_ts: must be unix seconds"),
            (MAX_TIMESTAMP_SECS + 1, "start_ts: must be unix seconds"),
            // In range, but 60 gaps of a day reach past 2100.
            (
                MAX_TIMESTAMP_SECS - 86_400,
                "start_ts: start_ts + max_len * mean_gap_s",
            ),
        ] {
            let msg = key_of(generate(&cfg(start), 1));
            assert!(msg.starts_with(want), "{start}: {msg}");
        }
        // A span too long for i64 is an error too, not a wrap.
        let c = SynthConfig {
            mean_gap_s: i64::MAX / 2,
            ..small()
        };
        assert!(key_of(generate(&c, 1)).contains("max_len * mean_gap_s"));
        // The expected span fits, but drawn gaps run past 2100: an error, never such a row.
        let c = SynthConfig {
            start_ts: MAX_TIMESTAMP_SECS - 60 * 86_400,
            min_len: 60,
            ..small()
        };
        assert!(key_of(generate(&c, 1)).contains("the generated timestamps reach"));
        // The edges of the range are fine.
        for start in [0, MAX_TIMESTAMP_SECS - 120 * 86_400] {
            let d = generate(&cfg(start), 1).unwrap();
            let ts = &d.interactions.ts;
            assert!(ts
                .iter()
                .all(|&t| (start..=MAX_TIMESTAMP_SECS).contains(&t)));
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(&small(), 1).unwrap();
        let b = generate(&small(), 1).unwrap();
        let c = generate(&small(), 2).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.interactions, c.interactions);
    }

    #[test]
    fn structure_matches_the_config() {
        let cfg = small();
        let d = generate(&cfg, 7).unwrap();
        let t = &d.interactions;
        t.validate().unwrap();
        assert!(t.item.iter().all(|&i| (1..=50).contains(&i)));
        assert_eq!(d.item_cluster.len(), 51);
        assert_eq!(d.item_cluster[1], 0);
        assert_eq!(d.item_cluster[10], 0);
        assert_eq!(d.item_cluster[11], 1);
        assert_eq!(d.item_cluster[50], 4);
        assert_eq!(d.user_interests.len(), 301);
        assert!(d.user_interests[0].is_empty());
        for ys in &d.user_interests[1..] {
            assert_eq!(ys.len(), 2);
            assert_ne!(ys[0], ys[1]);
        }
        // Sorted by (user, ts), timestamps strictly increasing per user, every user present.
        for r in 1..t.len() {
            assert!(
                t.user[r - 1] < t.user[r] || (t.user[r - 1] == t.user[r] && t.ts[r - 1] < t.ts[r])
            );
        }
        assert_eq!(t.num_users(), 301);
        // The first item of each user lies in one of its interests.
        let mut prev = 0;
        for r in 0..t.len() {
            if t.user[r] != prev {
                prev = t.user[r];
                let c = d.item_cluster[t.item[r] as usize];
                assert!(d.user_interests[prev as usize].contains(&c));
            }
        }
    }

    #[test]
    fn fixed_length_as_in_the_paper() {
        let cfg = SynthConfig {
            min_len: 20,
            max_len: 20,
            ..small()
        };
        let d = generate(&cfg, 3).unwrap();
        assert_eq!(d.interactions.len(), 300 * 20);
    }

    #[test]
    fn skew_concentrates_on_the_top_cluster() {
        let share = |skew: f64| {
            let cfg = SynthConfig {
                interest_skew: skew,
                users: 1000,
                ..small()
            };
            let d = generate(&cfg, 11).unwrap();
            let t = &d.interactions;
            let top = t
                .item
                .iter()
                .filter(|&&i| d.item_cluster[i as usize] == 0)
                .count();
            top as f64 / t.len() as f64
        };
        let flat = share(0.0);
        let skewed = share(2.0);
        assert!(
            (flat - 0.2).abs() < 0.05,
            "uniform interests give ~1/C, got {flat}"
        );
        assert!(skewed > flat + 0.1, "skewed {skewed} vs flat {flat}");
    }

    #[test]
    fn items_inside_a_cluster_follow_the_power_law() {
        let d = generate(
            &SynthConfig {
                users: 1000,
                ..small()
            },
            5,
        )
        .unwrap();
        let mut freq = vec![0usize; 51];
        d.interactions
            .item
            .iter()
            .for_each(|&i| freq[i as usize] += 1);
        // Rank 1 vs rank 10 of cluster 0: expected ratio 10^0.5 ≈ 3.2.
        assert!(freq[1] as f64 > 2.0 * freq[10] as f64, "{:?}", &freq[1..11]);
    }

    #[test]
    fn lengths_are_long_tailed() {
        let lens = |exp: f64| {
            let cfg = SynthConfig {
                length_exponent: exp,
                users: 2000,
                ..small()
            };
            let d = generate(&cfg, 9).unwrap();
            let mut n = vec![0usize; 2001];
            d.interactions.user.iter().for_each(|&u| n[u as usize] += 1);
            n.remove(0);
            n
        };
        let tailed = lens(1.5);
        let short = tailed.iter().filter(|&&l| l <= 2).count() as f64 / 2000.0;
        let long = tailed.iter().filter(|&&l| l >= 30).count();
        // P(L <= 2) = (1 + 2^-1.5) / sum_{1..60} L^-1.5 ≈ 0.56.
        assert!(short > 0.45, "share of users with <= 2 events: {short}");
        assert!(long > 0, "the head must still exist");
        let uniform = lens(0.0);
        let short_u = uniform.iter().filter(|&&l| l <= 2).count() as f64 / 2000.0;
        assert!(short_u < 0.1, "uniform lengths: {short_u}");
    }
}
