//! User activeness groups and item popularity groups: the slices on which long-tail methods are
//! evaluated (tail users / head items ...).

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// A user's activeness group, by number of (train) positives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum UserGroup {
    Tail = 0,
    Body = 1,
    Head = 2,
}

/// Names of the user groups, indexed by `UserGroup as usize`.
pub const USER_GROUP_NAMES: [&str; 3] = ["tail", "body", "head"];

/// An item's popularity group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ItemGroup {
    Tail = 0,
    Head = 1,
}

/// Names of the item groups, indexed by `ItemGroup as usize`.
pub const ITEM_GROUP_NAMES: [&str; 2] = ["tail", "head"];

impl UserGroup {
    /// The group's name ("tail", "body", "head").
    pub fn name(self) -> &'static str {
        USER_GROUP_NAMES[self as usize]
    }
}

impl ItemGroup {
    /// The group's name ("tail", "head").
    pub fn name(self) -> &'static str {
        ITEM_GROUP_NAMES[self as usize]
    }
}

/// How user activeness groups are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivenessMode {
    /// Fixed thresholds on the number of train positives (`tail_max`, `body_max`) [default].
    #[default]
    Threshold,
    /// Shares of users: the most active `head_share` of the users are head, the next
    /// `body_share` body, the rest tail (PIN's "top 20% of users = head"). Resolved into
    /// thresholds on the training counts ([`ActivenessRule::resolve`]), so every user with the
    /// same count lands in the same group and an unseen user can be routed by the same rule.
    Quantile,
}

/// The user activeness rule. In `threshold` mode a user with `n` train positives is tail when
/// `n <= tail_max`, body when `n <= body_max`, head above. In `quantile` mode the thresholds come
/// from the data ([`ActivenessRule::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivenessRule {
    /// `threshold` [default] or `quantile`.
    pub mode: ActivenessMode,
    /// Default 2: fewer than 3 positives is a tail user (the HIM paper's rule on public data).
    pub tail_max: u32,
    /// Default 5.
    pub body_max: u32,
    /// Quantile mode: share of users (those with at least one positive) that are head [0.2].
    pub head_share: f64,
    /// Quantile mode: share of users that are body, below the head [0.0: two strata].
    pub body_share: f64,
}

impl Default for ActivenessRule {
    fn default() -> Self {
        ActivenessRule {
            mode: ActivenessMode::Threshold,
            tail_max: 2,
            body_max: 5,
            head_share: 0.2,
            body_share: 0.0,
        }
    }
}

impl ActivenessRule {
    /// A threshold rule.
    pub fn thresholds(tail_max: u32, body_max: u32) -> Self {
        ActivenessRule {
            tail_max,
            body_max,
            ..Default::default()
        }
    }

    /// A quantile rule.
    pub fn quantile(head_share: f64, body_share: f64) -> Self {
        ActivenessRule {
            mode: ActivenessMode::Quantile,
            head_share,
            body_share,
            ..Default::default()
        }
    }

    /// The group of a user with `n_positives` positives, by the thresholds (a quantile rule must
    /// be [`resolve`](ActivenessRule::resolve)d first; its thresholds are used as they are).
    pub fn classify(&self, n_positives: u32) -> UserGroup {
        if n_positives <= self.tail_max {
            UserGroup::Tail
        } else if n_positives <= self.body_max {
            UserGroup::Body
        } else {
            UserGroup::Head
        }
    }

    /// The threshold rule that this rule means on users with the given activeness counts (users
    /// with count 0 are not counted as users). Threshold mode: itself. Quantile mode: with the
    /// counts sorted in descending order, the head threshold is the count of the user at rank
    /// `ceil(head_share * n)`; every user with at least that count is head (so ties can make the
    /// head share a little larger than asked; the achieved shares are what reports show). The
    /// body threshold is found the same way at rank `ceil((head_share + body_share) * n)`.
    pub fn resolve(&self, counts: &[u32]) -> ActivenessRule {
        if self.mode == ActivenessMode::Threshold {
            return *self;
        }
        let mut c: Vec<u32> = counts.iter().copied().filter(|&x| x > 0).collect();
        c.sort_unstable_by(|a, b| b.cmp(a));
        // The count at rank ceil(share * n) (1-based); None when that rank is 0 (share 0).
        let at = |share: f64| -> Option<u32> {
            let rank = (share * c.len() as f64).ceil() as usize;
            (rank > 0).then(|| c[rank.min(c.len()) - 1])
        };
        // Head: count >= h, i.e. body_max = h - 1. No head (share 0) = body_max u32::MAX.
        let body_max = at(self.head_share).map_or(u32::MAX, |h| h.saturating_sub(1));
        let tail_max = if self.body_share > 0.0 {
            at(self.head_share + self.body_share)
                .map_or(body_max, |b| b.saturating_sub(1).min(body_max))
        } else {
            body_max
        };
        ActivenessRule {
            mode: ActivenessMode::Threshold,
            tail_max,
            body_max,
            ..*self
        }
    }

    /// Checks the rule: `tail_max <= body_max` in threshold mode (otherwise the body group
    /// would be empty by construction); shares in [0, 1] with a sum <= 1 in quantile mode.
    pub fn validate(&self) -> Result<()> {
        match self.mode {
            ActivenessMode::Threshold => {
                if self.tail_max > self.body_max {
                    return Err(DataError::config(
                        "activeness.tail_max",
                        format!(
                            "tail_max ({}) must be <= body_max ({})",
                            self.tail_max, self.body_max
                        ),
                    ));
                }
            }
            ActivenessMode::Quantile => {
                for (k, v) in [
                    ("activeness.head_share", self.head_share),
                    ("activeness.body_share", self.body_share),
                ] {
                    if !(0.0..=1.0).contains(&v) {
                        return Err(DataError::config(k, format!("must be in [0, 1], got {v}")));
                    }
                }
                if self.head_share + self.body_share > 1.0 {
                    return Err(DataError::config(
                        "activeness.body_share",
                        format!(
                            "head_share + body_share must be <= 1, got {} + {}",
                            self.head_share, self.body_share
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Warnings for user groups that hold no user under `rule` (already resolved) for these
/// activeness counts: an empty group makes its per-group metrics meaningless.
pub fn empty_group_warnings(rule: &ActivenessRule, counts: &[u32]) -> Vec<String> {
    let mut n = [0usize; 3];
    for &c in counts.iter().filter(|&&c| c > 0) {
        n[rule.classify(c) as usize] += 1;
    }
    let mut out = Vec::new();
    for (g, name) in USER_GROUP_NAMES.iter().enumerate() {
        if n[g] == 0 {
            out.push(format!(
                "user group '{name}' is empty under activeness tail_max = {}, body_max = {} \
                 ({} users with train positives; tail/body/head = {}/{}/{})",
                rule.tail_max,
                rule.body_max,
                n.iter().sum::<usize>(),
                n[0],
                n[1],
                n[2]
            ));
        }
    }
    out
}

/// Item groups (`ItemGroup as u8`, index = item id): head is the most frequent `head_share` of
/// the items with nonzero frequency (rounded up, so any share > 0 gives at least one head item),
/// ties broken by smaller id first; every other item, unseen items and padding id 0 included, is
/// tail. `head_share` is clamped to [0, 1] (NaN counts as 0).
pub fn item_groups(item_freq: &[u64], head_share: f64) -> Vec<u8> {
    let mut groups = vec![ItemGroup::Tail as u8; item_freq.len()];
    let mut seen: Vec<usize> = (1..item_freq.len()).filter(|&i| item_freq[i] > 0).collect();
    let share = if head_share.is_nan() {
        0.0
    } else {
        head_share.clamp(0.0, 1.0)
    };
    let n_head = ((seen.len() as f64) * share).ceil() as usize;
    seen.sort_by(|&a, &b| item_freq[b].cmp(&item_freq[a]).then(a.cmp(&b)));
    for &i in seen.iter().take(n_head) {
        groups[i] = ItemGroup::Head as u8;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_default_rule() {
        let r = ActivenessRule::default();
        assert_eq!(r.classify(0), UserGroup::Tail);
        assert_eq!(r.classify(2), UserGroup::Tail);
        assert_eq!(r.classify(3), UserGroup::Body);
        assert_eq!(r.classify(5), UserGroup::Body);
        assert_eq!(r.classify(6), UserGroup::Head);
        assert_eq!(UserGroup::Head.name(), "head");
        assert_eq!(ItemGroup::Tail as u8, 0);
        assert!(ActivenessRule::thresholds(6, 5).validate().is_err());
    }

    #[test]
    fn rule_config_rejects_unknown_keys() {
        let r: ActivenessRule = serde_json::from_str(r#"{"tail_max": 4}"#).unwrap();
        assert_eq!(r, ActivenessRule::thresholds(4, 5));
        let q: ActivenessRule =
            serde_json::from_str(r#"{"mode": "quantile", "head_share": 0.1}"#).unwrap();
        assert_eq!(q, ActivenessRule::quantile(0.1, 0.0));
        let e = serde_json::from_str::<ActivenessRule>(r#"{"tail_mx": 4}"#).unwrap_err();
        assert!(e.to_string().contains("tail_mx"));
    }

    #[test]
    fn item_groups_top_share_with_ties_by_id() {
        // ids:        0  1  2  3  4  5  6  7  8  9  10
        let freq = [9, 5, 1, 5, 0, 2, 0, 0, 7, 1, 1];
        // 7 nonzero real items; 20% -> ceil(1.4) = 2 head items: 8 (7), then 1 (5, id before 3).
        let g = item_groups(&freq, 0.2);
        let head: Vec<usize> = (0..g.len()).filter(|&i| g[i] == 1).collect();
        assert_eq!(head, vec![1, 8]);
        assert_eq!(g[0], 0, "padding is tail even with a count");
        assert!(item_groups(&freq, 0.0).iter().all(|&x| x == 0));
        let all = item_groups(&freq, 1.0);
        assert_eq!(all.iter().filter(|&&x| x == 1).count(), 7);
        assert_eq!(all[4], 0, "unseen items stay tail");
        assert!(item_groups(&[], 0.2).is_empty());
    }

    #[test]
    fn quantile_rule_resolves_to_thresholds() {
        // 10 users with counts 1..=10 (and two users without positives, not counted).
        let counts = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0];
        // Top 20% = 2 users: counts 10 and 9 -> head is >= 9.
        let r = ActivenessRule::quantile(0.2, 0.0).resolve(&counts);
        assert_eq!((r.tail_max, r.body_max), (8, 8));
        assert_eq!(r.classify(9), UserGroup::Head);
        assert_eq!(r.classify(8), UserGroup::Tail);
        // 20% head + 30% body: ranks 2 and 5 -> head >= 9, body 6..=8, tail <= 5.
        let r = ActivenessRule::quantile(0.2, 0.3).resolve(&counts);
        assert_eq!((r.tail_max, r.body_max), (5, 8));
        // Ties: 5 users with count 3 and 5 with count 1; the 20% head rank holds a 3, so every
        // user with 3 is head (50%): a tie is never split.
        let tied = [3, 3, 3, 3, 3, 1, 1, 1, 1, 1];
        let r = ActivenessRule::quantile(0.2, 0.0).resolve(&tied);
        assert_eq!(
            tied.iter()
                .filter(|&&c| r.classify(c) == UserGroup::Head)
                .count(),
            5
        );
        // Share 0: nobody is head.
        let r = ActivenessRule::quantile(0.0, 0.0).resolve(&counts);
        assert_eq!(r.classify(10), UserGroup::Tail);
        // Threshold rules resolve to themselves.
        assert_eq!(
            ActivenessRule::default().resolve(&counts),
            ActivenessRule::default()
        );
        assert!(ActivenessRule::quantile(0.7, 0.5).validate().is_err());
        assert!(ActivenessRule::quantile(-0.1, 0.0).validate().is_err());
    }

    #[test]
    fn empty_groups_are_warned_about() {
        let w = empty_group_warnings(&ActivenessRule::default(), &[0, 1, 2, 7]);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("'body' is empty"), "{}", w[0]);
        assert!(empty_group_warnings(&ActivenessRule::default(), &[1, 4, 9]).is_empty());
    }
}
