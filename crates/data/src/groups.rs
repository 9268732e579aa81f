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

/// Thresholds on a user's number of positives: `n <= tail_max` is tail, `n <= body_max` body,
/// above is head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivenessRule {
    /// Default 2: fewer than 3 positives is a tail user (the HIM paper's rule on public data).
    pub tail_max: u32,
    /// Default 5.
    pub body_max: u32,
}

impl Default for ActivenessRule {
    fn default() -> Self {
        ActivenessRule {
            tail_max: 2,
            body_max: 5,
        }
    }
}

impl ActivenessRule {
    /// The group of a user with `n_positives` positives.
    pub fn classify(&self, n_positives: u32) -> UserGroup {
        if n_positives <= self.tail_max {
            UserGroup::Tail
        } else if n_positives <= self.body_max {
            UserGroup::Body
        } else {
            UserGroup::Head
        }
    }

    /// Checks `tail_max <= body_max` (otherwise the body group would be empty by construction).
    pub fn validate(&self) -> Result<()> {
        if self.tail_max > self.body_max {
            return Err(DataError::config(
                "activeness.tail_max",
                format!(
                    "tail_max ({}) must be <= body_max ({})",
                    self.tail_max, self.body_max
                ),
            ));
        }
        Ok(())
    }
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
        assert!(ActivenessRule {
            tail_max: 6,
            body_max: 5
        }
        .validate()
        .is_err());
    }

    #[test]
    fn rule_config_rejects_unknown_keys() {
        let r: ActivenessRule = serde_json::from_str(r#"{"tail_max": 4}"#).unwrap();
        assert_eq!(
            r,
            ActivenessRule {
                tail_max: 4,
                body_max: 5
            }
        );
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
}
