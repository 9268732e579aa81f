//! Dataset statistics (`longtail data stats`): sizes, time range, and how long the tails are —
//! user activeness groups as in HIM's Table 1 and the share of interactions on head items.

use crate::error::{DataError, Result};
use crate::groups::{item_groups, ActivenessRule, ITEM_GROUP_NAMES, USER_GROUP_NAMES};
use crate::table::Interactions;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetStats {
    pub interactions: usize,
    /// Users and items with at least one interaction.
    pub users: usize,
    pub items: usize,
    pub ts_min: i64,
    pub ts_max: i64,
    /// interactions / (users * items).
    pub density: f64,
    pub interactions_per_user: Summary,
    pub interactions_per_item: Summary,
    /// Share of users in each activeness group (`tail`, `body`, `head`), counting all of a user's
    /// interactions with the given rule (HIM public data: tail < 3, body 3-5, head > 5).
    pub user_group_share: BTreeMap<String, f64>,
    /// Share of interactions made by each user group.
    pub user_group_interaction_share: BTreeMap<String, f64>,
    /// Share of items that are head (the most frequent `head_item_share`) and tail.
    pub item_group_share: BTreeMap<String, f64>,
    /// Share of interactions that fall on head and on tail items.
    pub item_group_interaction_share: BTreeMap<String, f64>,
    /// Gini coefficient of item popularity (0 = uniform, near 1 = a few items take everything).
    pub item_gini: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub min: u64,
    pub median: f64,
    pub mean: f64,
    pub p90: u64,
    pub max: u64,
}

fn summary(mut counts: Vec<u64>) -> Summary {
    counts.sort_unstable();
    let n = counts.len();
    let median = if n % 2 == 1 {
        counts[n / 2] as f64
    } else {
        (counts[n / 2 - 1] + counts[n / 2]) as f64 / 2.0
    };
    Summary {
        min: counts[0],
        median,
        mean: counts.iter().sum::<u64>() as f64 / n as f64,
        // Nearest-rank percentile.
        p90: counts[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1],
        max: counts[n - 1],
    }
}

fn gini(counts: &[u64]) -> f64 {
    let mut c: Vec<u64> = counts.to_vec();
    c.sort_unstable();
    let n = c.len() as f64;
    let total: f64 = c.iter().map(|&x| x as f64).sum();
    if total == 0.0 || c.len() < 2 {
        return 0.0;
    }
    let weighted: f64 = c
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as f64 + 1.0) * x as f64)
        .sum();
    (2.0 * weighted) / (n * total) - (n + 1.0) / n
}

/// Interactions per user and per item (entities with none left out), for long-tail plots.
pub fn activity_counts(t: &Interactions) -> (Vec<u64>, Vec<u64>) {
    let mut per_user = vec![0u64; t.num_users()];
    let mut per_item = vec![0u64; t.num_items()];
    for (&u, &i) in t.user.iter().zip(&t.item) {
        per_user[u as usize] += 1;
        per_item[i as usize] += 1;
    }
    per_user.retain(|&c| c > 0);
    per_item.retain(|&c| c > 0);
    (per_user, per_item)
}

/// Describes `t`; `head_item_share` must be in `[0, 1]` as `[samples] head_item_share`
/// ([`crate::ctr::check_head_item_share`]; an error names the key `head_item_share`).
pub fn dataset_stats(
    t: &Interactions,
    rule: &ActivenessRule,
    head_item_share: f64,
) -> Result<DatasetStats> {
    crate::ctr::check_head_item_share(head_item_share)
        .map_err(|m| DataError::config("head_item_share", m))?;
    if t.is_empty() {
        return Err(DataError::Invalid("no interactions to describe".into()));
    }
    t.validate()?;
    let mut per_user = vec![0u64; t.num_users()];
    let mut per_item = vec![0u64; t.num_items()];
    for (&u, &i) in t.user.iter().zip(&t.item) {
        per_user[u as usize] += 1;
        per_item[i as usize] += 1;
    }
    let users: Vec<u64> = per_user.iter().copied().filter(|&c| c > 0).collect();
    let items: Vec<u64> = per_item.iter().copied().filter(|&c| c > 0).collect();
    let n = t.len() as f64;

    let mut ug_users = [0usize; 3];
    let mut ug_rows = [0u64; 3];
    for &c in &users {
        let g = rule.classify(u32::try_from(c).unwrap_or(u32::MAX)) as usize;
        ug_users[g] += 1;
        ug_rows[g] += c;
    }
    let share = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    let ig = item_groups(&per_item, head_item_share);
    let mut ig_items = [0usize; 2];
    let mut ig_rows = [0u64; 2];
    for (i, &c) in per_item.iter().enumerate().skip(1) {
        if c > 0 {
            ig_items[ig[i] as usize] += 1;
            ig_rows[ig[i] as usize] += c;
        }
    }
    let map3 = |v: [f64; 3]| {
        USER_GROUP_NAMES
            .iter()
            .zip(v)
            .map(|(k, x)| (k.to_string(), x))
            .collect()
    };
    let map2 = |v: [f64; 2]| {
        ITEM_GROUP_NAMES
            .iter()
            .zip(v)
            .map(|(k, x)| (k.to_string(), x))
            .collect()
    };
    Ok(DatasetStats {
        interactions: t.len(),
        users: users.len(),
        items: items.len(),
        ts_min: t.ts.iter().copied().min().unwrap_or(0),
        ts_max: t.ts.iter().copied().max().unwrap_or(0),
        density: n / (users.len() as f64 * items.len() as f64),
        user_group_share: map3(ug_users.map(|x| share(x as f64, users.len() as f64))),
        user_group_interaction_share: map3(ug_rows.map(|x| share(x as f64, n))),
        item_group_share: map2(ig_items.map(|x| share(x as f64, items.len() as f64))),
        item_group_interaction_share: map2(ig_rows.map(|x| share(x as f64, n))),
        item_gini: gini(&items),
        interactions_per_user: summary(users),
        interactions_per_item: summary(items),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_case() {
        // user 1: 1 row (tail), user 2: 4 rows (body), user 3: 6 rows (head); 11 rows.
        let mut user = vec![1];
        user.extend([2; 4]);
        user.extend([3; 6]);
        let item = vec![1, 1, 2, 3, 4, 1, 1, 1, 1, 2, 5];
        let t = Interactions {
            ts: (0..11).collect(),
            user,
            item,
            rating: None,
            label: None,
        };
        let s = dataset_stats(&t, &ActivenessRule::default(), 0.2).unwrap();
        assert_eq!(
            (s.interactions, s.users, s.items, s.ts_min, s.ts_max),
            (11, 3, 5, 0, 10)
        );
        assert!((s.user_group_share["tail"] - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.user_group_interaction_share["head"] - 6.0 / 11.0).abs() < 1e-12);
        // 20% of 5 seen items = 1 head item (item 1 with 6 rows).
        assert!((s.item_group_share["head"] - 0.2).abs() < 1e-12);
        assert!((s.item_group_interaction_share["head"] - 6.0 / 11.0).abs() < 1e-12);
        assert_eq!(s.interactions_per_user.median, 4.0);
        assert_eq!(s.interactions_per_item.max, 6);
        assert!((s.density - 11.0 / 15.0).abs() < 1e-12);
        // Item counts 1,1,1,2,6: Gini = 2*(1+2+3+8+30)/(5*11) - 6/5.
        assert!((s.item_gini - (88.0 / 55.0 - 1.2)).abs() < 1e-12);
    }

    #[test]
    fn head_item_share_takes_the_samples_range() {
        let t = Interactions {
            user: vec![1, 2, 2],
            item: vec![1, 1, 2],
            ts: vec![1, 2, 3],
            rating: None,
            label: None,
        };
        for v in [1.5, f64::NAN, f64::INFINITY, -0.1, f64::NEG_INFINITY] {
            match dataset_stats(&t, &ActivenessRule::default(), v) {
                Err(DataError::Config { key, message }) => {
                    assert_eq!(key, "head_item_share");
                    assert!(message.contains("[0, 1]"), "{message}");
                }
                other => panic!("{v}: expected a config error, got {other:?}"),
            }
            // The same rule as `[samples] head_item_share`.
            let cfg = crate::CtrConfig {
                head_item_share: v,
                ..Default::default()
            };
            assert!(cfg.validate().is_err(), "{v}");
        }
        for v in [0.0, -0.0, 0.2, 1.0] {
            dataset_stats(&t, &ActivenessRule::default(), v).unwrap();
        }
    }

    #[test]
    fn uniform_popularity_has_zero_gini() {
        assert_eq!(gini(&[3, 3, 3, 3]), 0.0);
        assert!(dataset_stats(&Interactions::default(), &ActivenessRule::default(), 0.2).is_err());
    }
}
