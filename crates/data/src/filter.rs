//! Interaction-table filters: duplicate handling, minimum-count filters, iterative k-core, and
//! re-indexing of the surviving ids.
//!
//! [`apply_filters`] runs the steps in a fixed order:
//! 1. duplicates ([`DuplicateRule`]): rows with the same (user, item) pair;
//! 2. `min_user_interactions`, one pass: users with fewer rows are dropped;
//! 3. `min_item_interactions`, one pass, counted on what step 2 left: items with fewer rows are
//!    dropped. Because each min-count filter is a single pass (users first, then items), dropping
//!    items can leave a user below `min_user_interactions`; use `k_core` when every user and item
//!    must meet the threshold in the result;
//! 4. `k_core` (iterative): every round counts the rows of each user and item on the current table
//!    and drops, at once, every row whose user or item has fewer than k rows; rounds repeat until
//!    nothing is dropped (the table is a k-core: `converged = true`) or `max_k_core_rounds` rounds
//!    have dropped rows (`converged` then says whether the result happens to be stable already);
//! 5. re-indexing (`reindex`, on by default): surviving users and items get dense ids 1.. in order
//!    of first appearance in the output rows; [`Filtered::user_map`] / [`Filtered::item_map`] map a
//!    new id back to the input id.
//!
//! Counts are row counts after the earlier steps (with [`DuplicateRule::KeepAll`], repeated
//! (user, item) rows all count). Every step only drops rows: the output rows keep the input's
//! relative order, and the `rating`/`label` columns stay aligned with them. A step that would
//! leave no row is an error naming the step, never an empty table.
//!
//! Cost: O(rows + vocabulary) per step and per k-core round (counting uses `Vec<u32>` indexed by
//! id, and each k-core round only visits the rows that are still alive).

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::table::Interactions;

/// What to do with rows that share the same (user, item) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateRule {
    /// Keep every row (repeat consumption is signal) [default].
    #[default]
    KeepAll,
    /// Keep one row per pair: the one with the latest `ts`; among rows tied on the latest `ts`,
    /// the one that comes last in table order.
    KeepLast,
    /// Keep one row per pair: the first occurrence, i.e. the one with the earliest `ts`; among
    /// rows tied on the earliest `ts`, the one that comes first in table order.
    Dedupe,
}

/// Configuration of [`apply_filters`] (defaults in brackets). The default config only re-indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Rule for rows with the same (user, item) [keep_all].
    pub duplicates: DuplicateRule,
    /// One pass: drop users with fewer rows than this [0 = off].
    pub min_user_interactions: usize,
    /// One pass, after the user pass: drop items with fewer rows than this [0 = off].
    pub min_item_interactions: usize,
    /// Iterative k-core: repeat until every user and item has >= k rows [None = off]; must be >= 1.
    pub k_core: Option<usize>,
    /// Most k-core rounds that drop rows [100]; must be >= 1 when `k_core` is set.
    pub max_k_core_rounds: usize,
    /// Remap surviving ids to dense 1.. in order of first appearance [true].
    pub reindex: bool,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            duplicates: DuplicateRule::KeepAll,
            min_user_interactions: 0,
            min_item_interactions: 0,
            k_core: None,
            max_k_core_rounds: 100,
            reindex: true,
        }
    }
}

impl FilterConfig {
    /// Checks the config on its own.
    pub fn validate(&self) -> Result<()> {
        if let Some(k) = self.k_core {
            if k == 0 {
                return Err(DataError::config(
                    "k_core",
                    "must be >= 1 (leave it out, or null, to turn the k-core filter off)",
                ));
            }
            if self.max_k_core_rounds == 0 {
                return Err(DataError::config(
                    "max_k_core_rounds",
                    "must be >= 1 when k_core is set",
                ));
            }
        }
        Ok(())
    }
}

/// What [`apply_filters`] did. User and item counts are numbers of distinct ids with >= 1 row.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FilterReport {
    pub rows_in: usize,
    pub rows_out: usize,
    pub users_in: usize,
    pub users_out: usize,
    pub items_in: usize,
    pub items_out: usize,
    /// Rows dropped by the duplicate rule (0 with `keep_all`).
    pub duplicates_removed: usize,
    /// k-core rounds that dropped rows (0 when `k_core` is off or the table already was a k-core).
    pub k_core_rounds: usize,
    /// Whether the result is a k-core (every user and item has >= k rows); true when `k_core` is
    /// off. False only when `max_k_core_rounds` stopped the iteration early.
    pub converged: bool,
}

/// The filtered table, its report, and the id maps.
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    pub interactions: Interactions,
    pub report: FilterReport,
    /// Index = output user id, value = input user id; entry 0 is 0 (padding). Without `reindex`
    /// it is the identity over the output vocabulary (`0..interactions.num_users()`).
    pub user_map: Vec<u32>,
    /// Index = output item id, value = input item id; entry 0 is 0 (padding). Without `reindex`
    /// it is the identity over the output vocabulary (`0..interactions.num_items()`).
    pub item_map: Vec<u32>,
}

/// Applies the filters of `cfg` to `t` (see the [module docs](self) for the order and the rules).
///
/// Errors: an invalid config, an invalid table ([`Interactions::validate`]), an empty input, or a
/// step that leaves no row ([`DataError::Invalid`] naming the step and suggesting a smaller
/// threshold).
pub fn apply_filters(t: &Interactions, cfg: &FilterConfig) -> Result<Filtered> {
    cfg.validate()?;
    t.validate()?;
    if t.is_empty() {
        return Err(DataError::Invalid(
            "filters: the input interaction table has no rows".to_string(),
        ));
    }
    let mut ucount = vec![0u32; t.num_users()];
    let mut icount = vec![0u32; t.num_items()];
    let users_in = count_distinct(t.user.iter().copied(), &mut ucount);
    let items_in = count_distinct(t.item.iter().copied(), &mut icount);

    // 1. Duplicates (never empties a non-empty table: each pair keeps one row).
    let mut rows = dedupe_rows(t, cfg.duplicates);
    let duplicates_removed = t.len() - rows.len();

    // 2./3. One-pass min counts, users first, then items.
    let steps: [(&str, usize, &[u32], &mut Vec<u32>); 2] = [
        (
            "min_user_interactions",
            cfg.min_user_interactions,
            &t.user,
            &mut ucount,
        ),
        (
            "min_item_interactions",
            cfg.min_item_interactions,
            &t.item,
            &mut icount,
        ),
    ];
    for (key, min, ids, counts) in steps {
        if min == 0 {
            continue;
        }
        count_rows(&rows, ids, counts);
        let before = rows.len();
        rows.retain(|&r| counts[ids[r] as usize] as usize >= min);
        if rows.is_empty() {
            return Err(DataError::Invalid(format!(
                "filters: {key} = {min} removed every row ({before} rows were left before this \
                 step); try a smaller {key}"
            )));
        }
    }

    // 4. Iterative k-core.
    let mut k_core_rounds = 0;
    let mut converged = true;
    if let Some(k) = cfg.k_core {
        converged = false;
        let before = rows.len();
        loop {
            count_rows(&rows, &t.user, &mut ucount);
            count_rows(&rows, &t.item, &mut icount);
            let ok = |r: &usize| {
                ucount[t.user[*r] as usize] as usize >= k
                    && icount[t.item[*r] as usize] as usize >= k
            };
            if rows.iter().all(ok) {
                converged = true;
                break;
            }
            if k_core_rounds == cfg.max_k_core_rounds {
                break;
            }
            rows.retain(ok);
            k_core_rounds += 1;
            if rows.is_empty() {
                return Err(DataError::Invalid(format!(
                    "filters: k_core = {k} removed every row in round {k_core_rounds} ({before} \
                     rows were left before the k-core step); the table has no {k}-core, try a \
                     smaller k_core"
                )));
            }
        }
    }

    // Output, columns gathered in table order.
    let gather_f =
        |col: &Option<Vec<f32>>| col.as_ref().map(|c| rows.iter().map(|&r| c[r]).collect());
    let mut out = Interactions {
        user: rows.iter().map(|&r| t.user[r]).collect(),
        item: rows.iter().map(|&r| t.item[r]).collect(),
        ts: rows.iter().map(|&r| t.ts[r]).collect(),
        rating: gather_f(&t.rating),
        label: gather_f(&t.label),
    };
    let users_out = count_distinct(out.user.iter().copied(), &mut ucount);
    let items_out = count_distinct(out.item.iter().copied(), &mut icount);

    // 5. Re-indexing.
    let (user_map, item_map) = if cfg.reindex {
        (
            reindex(&mut out.user, ucount.len()),
            reindex(&mut out.item, icount.len()),
        )
    } else {
        (
            (0..out.num_users() as u32).collect(),
            (0..out.num_items() as u32).collect(),
        )
    };

    Ok(Filtered {
        report: FilterReport {
            rows_in: t.len(),
            rows_out: out.len(),
            users_in,
            users_out,
            items_in,
            items_out,
            duplicates_removed,
            k_core_rounds,
            converged,
        },
        interactions: out,
        user_map,
        item_map,
    })
}

/// Zeroes `counts`, counts the ids, and returns how many distinct ids occur.
fn count_distinct(ids: impl Iterator<Item = u32>, counts: &mut [u32]) -> usize {
    counts.fill(0);
    let mut distinct = 0;
    for id in ids {
        let c = &mut counts[id as usize];
        if *c == 0 {
            distinct += 1;
        }
        *c = c.saturating_add(1);
    }
    distinct
}

/// Zeroes `counts` and counts `ids[r]` over the rows `rows`.
fn count_rows(rows: &[usize], ids: &[u32], counts: &mut [u32]) {
    count_distinct(rows.iter().map(|&r| ids[r]), counts);
}

/// Row indices (ascending) that survive the duplicate rule. Linear: rows are bucketed by user
/// with a stable counting sort, then each user's rows are scanned with a per-item slot that is
/// reset after the user.
fn dedupe_rows(t: &Interactions, rule: DuplicateRule) -> Vec<usize> {
    let n = t.len();
    // Whether a later row (in table order) replaces the current pick, given (new ts, picked ts).
    let replaces: fn(i64, i64) -> bool = match rule {
        DuplicateRule::KeepAll => return (0..n).collect(),
        DuplicateRule::KeepLast => |new, old| new >= old,
        DuplicateRule::Dedupe => |new, old| new < old,
    };
    let nu = t.num_users();
    let mut start = vec![0usize; nu + 1];
    for &u in &t.user {
        start[u as usize + 1] += 1;
    }
    for u in 0..nu {
        start[u + 1] += start[u];
    }
    let mut order = vec![0usize; n];
    let mut fill = start.clone();
    for (r, &u) in t.user.iter().enumerate() {
        order[fill[u as usize]] = r;
        fill[u as usize] += 1;
    }
    const NONE: usize = usize::MAX;
    let mut pick = vec![NONE; t.num_items()];
    let mut touched = Vec::new();
    let mut keep = vec![false; n];
    for u in 0..nu {
        for &r in &order[start[u]..start[u + 1]] {
            let i = t.item[r] as usize;
            let p = pick[i];
            if p == NONE {
                pick[i] = r;
                touched.push(i);
            } else if replaces(t.ts[r], t.ts[p]) {
                pick[i] = r;
            }
        }
        for i in touched.drain(..) {
            keep[pick[i]] = true;
            pick[i] = NONE;
        }
    }
    (0..n).filter(|&r| keep[r]).collect()
}

/// Remaps `ids` in place to dense 1.. in order of first appearance; returns new -> old.
fn reindex(ids: &mut [u32], vocab: usize) -> Vec<u32> {
    let mut new_of = vec![0u32; vocab];
    let mut map = vec![0u32];
    for x in ids.iter_mut() {
        let old = *x as usize;
        if new_of[old] == 0 {
            new_of[old] = map.len() as u32;
            map.push(*x);
        }
        *x = new_of[old];
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table from (user, item, ts) rows; rating = row index, label = 10 * row index, so
    /// alignment after filtering is visible.
    fn tab(rows: &[(u32, u32, i64)]) -> Interactions {
        Interactions {
            user: rows.iter().map(|r| r.0).collect(),
            item: rows.iter().map(|r| r.1).collect(),
            ts: rows.iter().map(|r| r.2).collect(),
            rating: Some((0..rows.len()).map(|r| r as f32).collect()),
            label: Some((0..rows.len()).map(|r| 10.0 * r as f32).collect()),
        }
    }

    /// The input row indices that survived, read back from the rating column.
    fn kept(f: &Filtered) -> Vec<usize> {
        let r = f.interactions.rating.as_ref().unwrap();
        let l = f.interactions.label.as_ref().unwrap();
        for (a, b) in r.iter().zip(l) {
            assert_eq!(*b, 10.0 * a, "label misaligned with rating");
        }
        r.iter().map(|&x| x as usize).collect()
    }

    fn no_reindex() -> FilterConfig {
        FilterConfig {
            reindex: false,
            ..Default::default()
        }
    }

    fn dup_table() -> Interactions {
        tab(&[
            (1, 10, 5), // 0
            (2, 20, 1), // 1
            (1, 10, 3), // 2
            (1, 11, 7), // 3
            (1, 10, 5), // 4: ties row 0 on ts
            (2, 20, 1), // 5: ties row 1 on ts
            (3, 30, 9), // 6
        ])
    }

    #[test]
    fn duplicate_rules_exact_rows() {
        let t = dup_table();
        for (rule, want) in [
            (DuplicateRule::KeepAll, vec![0, 1, 2, 3, 4, 5, 6]),
            // (1,10): latest ts 5 on rows 0 and 4 -> the later, 4; (2,20): tie -> 5.
            (DuplicateRule::KeepLast, vec![3, 4, 5, 6]),
            // (1,10): earliest ts 3 -> row 2; (2,20): tie -> the first, 1.
            (DuplicateRule::Dedupe, vec![1, 2, 3, 6]),
        ] {
            let cfg = FilterConfig {
                duplicates: rule,
                ..no_reindex()
            };
            let f = apply_filters(&t, &cfg).unwrap();
            let rows = kept(&f);
            assert_eq!(rows, want, "{rule:?}");
            let i = &f.interactions;
            assert_eq!(i.user, want.iter().map(|&r| t.user[r]).collect::<Vec<_>>());
            assert_eq!(i.item, want.iter().map(|&r| t.item[r]).collect::<Vec<_>>());
            assert_eq!(i.ts, want.iter().map(|&r| t.ts[r]).collect::<Vec<_>>());
            assert_eq!(f.report.duplicates_removed, 7 - want.len());
            assert_eq!(f.report.rows_in, 7);
            assert_eq!(f.report.rows_out, want.len());
            assert_eq!((f.report.users_in, f.report.users_out), (3, 3));
            assert_eq!((f.report.items_in, f.report.items_out), (4, 4));
            assert_eq!(f.report.k_core_rounds, 0);
            assert!(f.report.converged);
            // Without reindex the maps are the identity over the output vocabulary.
            assert_eq!(f.user_map, vec![0, 1, 2, 3]);
            assert_eq!(f.item_map, (0..31).collect::<Vec<u32>>());
        }
    }

    #[test]
    fn dedupe_with_ts_out_of_table_order() {
        // Same pair, the later row is earlier in time: Dedupe keeps it, KeepLast keeps row 0.
        let t = tab(&[(1, 1, 9), (2, 1, 1), (1, 1, 4)]);
        let f = |rule| {
            let cfg = FilterConfig {
                duplicates: rule,
                ..no_reindex()
            };
            kept(&apply_filters(&t, &cfg).unwrap())
        };
        assert_eq!(f(DuplicateRule::Dedupe), vec![1, 2]);
        assert_eq!(f(DuplicateRule::KeepLast), vec![0, 1]);
    }

    #[test]
    fn reindex_maps_in_order_of_first_appearance() {
        let t = dup_table();
        let cfg = FilterConfig {
            duplicates: DuplicateRule::KeepLast,
            ..Default::default()
        };
        let f = apply_filters(&t, &cfg).unwrap();
        // Kept rows 3 (1,11), 4 (1,10), 5 (2,20), 6 (3,30).
        assert_eq!(f.interactions.user, vec![1, 1, 2, 3]);
        assert_eq!(f.interactions.item, vec![1, 2, 3, 4]);
        assert_eq!(f.user_map, vec![0, 1, 2, 3]);
        assert_eq!(f.item_map, vec![0, 11, 10, 20, 30]);
        assert_eq!(f.interactions.ts, vec![7, 5, 1, 9]);
        assert_eq!(kept(&f), vec![3, 4, 5, 6]);
        // Mapping back gives the input ids.
        for (k, &r) in kept(&f).iter().enumerate() {
            assert_eq!(f.user_map[f.interactions.user[k] as usize], t.user[r]);
            assert_eq!(f.item_map[f.interactions.item[k] as usize], t.item[r]);
        }
        f.interactions.validate().unwrap();
    }

    #[test]
    fn reindex_drops_gaps_left_by_filters() {
        // User 2 and item 5 vanish; ids 3 and 7 become 2 and 2.
        let t = tab(&[(3, 7, 0), (1, 1, 1), (2, 5, 2), (3, 1, 3), (1, 7, 4)]);
        let cfg = FilterConfig {
            min_user_interactions: 2,
            ..Default::default()
        };
        let f = apply_filters(&t, &cfg).unwrap();
        assert_eq!(kept(&f), vec![0, 1, 3, 4]);
        assert_eq!(f.user_map, vec![0, 3, 1]);
        assert_eq!(f.item_map, vec![0, 7, 1]);
        assert_eq!(f.interactions.user, vec![1, 2, 1, 2]);
        assert_eq!(f.interactions.item, vec![1, 2, 2, 1]);
        assert_eq!(f.interactions.num_users(), 3);
        assert_eq!(f.interactions.num_items(), 3);
    }

    #[test]
    fn min_counts_are_one_pass_users_then_items() {
        let t = tab(&[
            (1, 1, 0), // 0
            (1, 2, 1), // 1
            (2, 1, 2), // 2
            (2, 3, 3), // 3
            (3, 3, 4), // 4
        ]);
        let cfg = FilterConfig {
            min_user_interactions: 2,
            min_item_interactions: 2,
            ..no_reindex()
        };
        // Users: u3 has 1 row -> row 4 goes. Items then: i1 2 rows, i2 1, i3 1 -> rows 1, 3 go.
        // Users 1 and 2 end with 1 row each: one pass, no re-check.
        let f = apply_filters(&t, &cfg).unwrap();
        assert_eq!(kept(&f), vec![0, 2]);
        assert_eq!(f.interactions.user, vec![1, 2]);
        assert_eq!(f.interactions.item, vec![1, 1]);
        assert_eq!((f.report.users_out, f.report.items_out), (2, 1));
        assert_eq!((f.report.users_in, f.report.items_in), (3, 3));

        // Only users / only items.
        let only_users = FilterConfig {
            min_user_interactions: 2,
            ..no_reindex()
        };
        assert_eq!(
            kept(&apply_filters(&t, &only_users).unwrap()),
            vec![0, 1, 2, 3]
        );
        let only_items = FilterConfig {
            min_item_interactions: 2,
            ..no_reindex()
        };
        assert_eq!(
            kept(&apply_filters(&t, &only_items).unwrap()),
            vec![0, 2, 3, 4]
        );
    }

    #[test]
    fn min_counts_see_the_duplicate_step() {
        // u1 has 2 rows, both (1, 1): with Dedupe it has 1 and is dropped by min_user = 2.
        let t = tab(&[(1, 1, 0), (2, 1, 1), (1, 1, 2), (2, 2, 3)]);
        let mut cfg = FilterConfig {
            min_user_interactions: 2,
            ..no_reindex()
        };
        assert_eq!(kept(&apply_filters(&t, &cfg).unwrap()), vec![0, 1, 2, 3]);
        cfg.duplicates = DuplicateRule::Dedupe;
        assert_eq!(kept(&apply_filters(&t, &cfg).unwrap()), vec![1, 3]);
    }

    /// A chain where each k-core round (k = 2) exposes the next weak row.
    fn chain() -> Interactions {
        tab(&[
            (1, 1, 0), // 0
            (1, 2, 1), // 1
            (2, 1, 2), // 2
            (2, 2, 3), // 3
            (3, 2, 4), // 4
            (3, 3, 5), // 5
            (4, 3, 6), // 6
        ])
    }

    #[test]
    fn k_core_needs_several_rounds() {
        // Round 1: u4 has 1 row -> row 6. Round 2: i3 is left with 1 row -> row 5.
        // Round 3: u3 is left with 1 row -> row 4. Then u1, u2, i1, i2 have 2 rows each.
        let t = chain();
        let cfg = FilterConfig {
            k_core: Some(2),
            ..no_reindex()
        };
        let f = apply_filters(&t, &cfg).unwrap();
        assert_eq!(kept(&f), vec![0, 1, 2, 3]);
        assert_eq!(f.interactions.user, vec![1, 1, 2, 2]);
        assert_eq!(f.interactions.item, vec![1, 2, 1, 2]);
        assert_eq!(f.interactions.ts, vec![0, 1, 2, 3]);
        assert_eq!(f.report.k_core_rounds, 3);
        assert!(f.report.converged);
        assert_eq!((f.report.users_in, f.report.users_out), (4, 2));
        assert_eq!((f.report.items_in, f.report.items_out), (3, 2));

        // Capped at 2 rounds: rows 6 and 5 gone, row 4 still there, not converged.
        let capped = FilterConfig {
            max_k_core_rounds: 2,
            ..cfg.clone()
        };
        let f = apply_filters(&t, &capped).unwrap();
        assert_eq!(kept(&f), vec![0, 1, 2, 3, 4]);
        assert_eq!(f.report.k_core_rounds, 2);
        assert!(!f.report.converged);

        // Capped exactly at the rounds needed: converged.
        let exact = FilterConfig {
            max_k_core_rounds: 3,
            ..cfg.clone()
        };
        let f = apply_filters(&t, &exact).unwrap();
        assert_eq!(kept(&f), vec![0, 1, 2, 3]);
        assert!(f.report.converged);

        // Already a 2-core: zero rounds, unchanged.
        let again = apply_filters(&f.interactions, &cfg).unwrap();
        assert_eq!(again.interactions, f.interactions);
        assert_eq!(again.report.k_core_rounds, 0);
        assert!(again.report.converged);

        // k = 1 keeps everything.
        let one = FilterConfig {
            k_core: Some(1),
            ..no_reindex()
        };
        let f = apply_filters(&t, &one).unwrap();
        assert_eq!(f.interactions, t);
        assert_eq!(f.report.k_core_rounds, 0);
    }

    #[test]
    fn k_core_with_reindex() {
        // Same chain with users and items shifted: the 2-core is users {5, 6}, items {8, 9}.
        let mut t = chain();
        t.user.iter_mut().for_each(|u| *u += 4);
        t.item.iter_mut().for_each(|i| *i += 7);
        let cfg = FilterConfig {
            k_core: Some(2),
            ..Default::default()
        };
        let f = apply_filters(&t, &cfg).unwrap();
        assert_eq!(f.interactions.user, vec![1, 1, 2, 2]);
        assert_eq!(f.interactions.item, vec![1, 2, 1, 2]);
        assert_eq!(f.user_map, vec![0, 5, 6]);
        assert_eq!(f.item_map, vec![0, 8, 9]);
    }

    #[test]
    fn empty_results_name_the_step() {
        let t = chain();
        let msg = |cfg: FilterConfig| apply_filters(&t, &cfg).unwrap_err().to_string();
        let m = msg(FilterConfig {
            min_user_interactions: 3,
            ..Default::default()
        });
        assert_eq!(
            m,
            "filters: min_user_interactions = 3 removed every row (7 rows were left before this \
             step); try a smaller min_user_interactions"
        );
        let m = msg(FilterConfig {
            min_item_interactions: 4,
            ..Default::default()
        });
        assert!(
            m.contains("min_item_interactions = 4") && m.contains("smaller min_item_interactions"),
            "{m}"
        );
        let m = msg(FilterConfig {
            k_core: Some(3),
            ..Default::default()
        });
        assert!(
            m.contains("k_core = 3") && m.contains("try a smaller k_core") && m.contains("round"),
            "{m}"
        );
        assert!(matches!(
            apply_filters(
                &t,
                &FilterConfig {
                    k_core: Some(3),
                    ..Default::default()
                }
            ),
            Err(DataError::Invalid(_))
        ));
        let m = apply_filters(&Interactions::default(), &FilterConfig::default())
            .unwrap_err()
            .to_string();
        assert!(m.contains("no rows"), "{m}");
    }

    #[test]
    fn bad_configs_and_tables_are_rejected() {
        let t = chain();
        let e = apply_filters(
            &t,
            &FilterConfig {
                k_core: Some(0),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("config key 'k_core'"), "{e}");
        let e = FilterConfig {
            k_core: Some(5),
            max_k_core_rounds: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(
            e.to_string().starts_with("config key 'max_k_core_rounds'"),
            "{e}"
        );
        // Rounds = 0 is fine while the k-core is off.
        FilterConfig {
            max_k_core_rounds: 0,
            ..Default::default()
        }
        .validate()
        .unwrap();
        let mut bad = chain();
        bad.item[2] = 0;
        assert!(apply_filters(&bad, &FilterConfig::default()).is_err());
        let mut bad = chain();
        bad.rating.as_mut().unwrap().pop();
        assert!(apply_filters(&bad, &FilterConfig::default()).is_err());
    }

    #[test]
    fn optional_columns_may_be_absent() {
        let mut t = dup_table();
        t.rating = None;
        t.label = None;
        let cfg = FilterConfig {
            duplicates: DuplicateRule::Dedupe,
            ..no_reindex()
        };
        let f = apply_filters(&t, &cfg).unwrap();
        assert_eq!(f.interactions.rating, None);
        assert_eq!(f.interactions.label, None);
        assert_eq!(f.interactions.ts, vec![1, 3, 7, 9]);
    }

    #[test]
    fn config_serde() {
        let cfg: FilterConfig =
            serde_json::from_str(r#"{"duplicates": "keep_last", "k_core": 5}"#).unwrap();
        assert_eq!(
            cfg,
            FilterConfig {
                duplicates: DuplicateRule::KeepLast,
                k_core: Some(5),
                ..Default::default()
            }
        );
        assert_eq!(cfg.max_k_core_rounds, 100);
        assert!(cfg.reindex);
        let cfg: FilterConfig = serde_json::from_str(r#"{"duplicates": "dedupe"}"#).unwrap();
        assert_eq!(cfg.duplicates, DuplicateRule::Dedupe);
        let e = serde_json::from_str::<FilterConfig>(r#"{"kcore": 5}"#).unwrap_err();
        assert!(e.to_string().contains("kcore"), "{e}");
        let back: FilterConfig =
            serde_json::from_str(&serde_json::to_string(&FilterConfig::default()).unwrap())
                .unwrap();
        assert_eq!(back, FilterConfig::default());
        let r = FilterReport {
            converged: true,
            ..Default::default()
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""converged":true"#), "{json}");
    }

    /// Straightforward reference k-core: repeat whole-table recounts until stable.
    fn naive_k_core(t: &Interactions, k: usize) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..t.len()).collect();
        loop {
            let mut uc = std::collections::HashMap::new();
            let mut ic = std::collections::HashMap::new();
            for &r in &rows {
                *uc.entry(t.user[r]).or_insert(0usize) += 1;
                *ic.entry(t.item[r]).or_insert(0usize) += 1;
            }
            let next: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&r| uc[&t.user[r]] >= k && ic[&t.item[r]] >= k)
                .collect();
            if next.len() == rows.len() {
                return rows;
            }
            rows = next;
        }
    }

    #[test]
    fn k_core_matches_reference_and_is_deterministic() {
        let synth = crate::synth::SynthConfig {
            users: 300,
            items: 80,
            clusters: 4,
            max_len: 25,
            ..Default::default()
        };
        let mut t = crate::synth::generate(&synth, 11).unwrap().interactions;
        t.rating = Some((0..t.len()).map(|r| r as f32).collect());
        let mut non_empty = 0;
        for k in [2, 3, 4, 5, 8, 20] {
            let cfg = FilterConfig {
                k_core: Some(k),
                ..no_reindex()
            };
            let want = naive_k_core(&t, k);
            if want.is_empty() {
                let e = apply_filters(&t, &cfg).unwrap_err();
                assert!(e.to_string().contains(&format!("no {k}-core")), "{e}");
                continue;
            }
            non_empty += 1;
            let f = apply_filters(&t, &cfg).unwrap();
            let rows: Vec<usize> = f
                .interactions
                .rating
                .as_ref()
                .unwrap()
                .iter()
                .map(|&x| x as usize)
                .collect();
            assert_eq!(rows, want, "k = {k}");
            assert!(f.report.converged);
            assert!(f.report.k_core_rounds >= 1, "k = {k}");
            let g = apply_filters(&t, &cfg).unwrap();
            assert_eq!(f, g);
            let re_cfg = FilterConfig {
                reindex: true,
                ..cfg.clone()
            };
            let re = apply_filters(&t, &re_cfg).unwrap();
            assert_eq!(re, apply_filters(&t, &re_cfg).unwrap());
            for (j, &r) in rows.iter().enumerate() {
                assert_eq!(re.user_map[re.interactions.user[j] as usize], t.user[r]);
                assert_eq!(re.item_map[re.interactions.item[j] as usize], t.item[r]);
            }
        }
        assert!(
            non_empty >= 3,
            "only {non_empty} k values had a non-empty core"
        );
    }
}
