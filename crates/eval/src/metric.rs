//! Streaming metrics: `update` with each scored batch, `compute` once at the end, `reset` between
//! epochs. Exact AUC needs every score, so the AUC-style metrics buffer their inputs and do the work
//! in `compute`; logloss keeps a running sum.
//!
//! `compute` returns flat `(key, value)` pairs ("auc", "auc/user=tail", ...) ready for a report.
//! Where a value is undefined for the whole set (AUC with one class) it is NaN, written as `null` in
//! JSON; a group with no samples or one class is left out instead.

use serde::{Deserialize, Serialize};

use crate::auc::{auc, auc_by_group, gauc};
use crate::error::{check_len, check_scores_labels, EvalError, Result};
use crate::logloss;

/// Whether a larger value of a metric is better (for early stopping and model selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

impl Direction {
    /// The direction of a flat metric key, its `@K` and `/group=value` parts ignored: losses
    /// (`logloss`, any name ending in `loss`) and errors (`mse`, `rmse`, `mae`) are lower-is-better,
    /// every other metric (AUC, GAUC, HR, NDCG, MRR, recall) higher-is-better.
    pub fn of_key(key: &str) -> Self {
        let base = key.split(['/', '@']).next().unwrap_or(key).trim();
        let base = base.strip_prefix("full_").unwrap_or(base);
        if base.ends_with("loss") || matches!(base, "mse" | "rmse" | "mae") {
            Direction::LowerIsBetter
        } else {
            Direction::HigherIsBetter
        }
    }

    /// True when `a` is strictly better than `b` in this direction.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::HigherIsBetter => a > b,
            Direction::LowerIsBetter => a < b,
        }
    }
}

/// One scored batch on the host: parallel slices, the optional ones present when the data has them.
#[derive(Debug, Clone, Copy)]
pub struct ScoredSlice<'a> {
    /// Predicted probabilities (AUC only needs their order; logloss needs them in [0, 1]).
    pub scores: &'a [f32],
    /// 0/1 labels (label > 0.5 is positive).
    pub labels: &'a [f32],
    /// User id per sample, for GAUC.
    pub users: Option<&'a [u32]>,
    /// User activeness group id per sample (index into the user group names).
    pub user_group: Option<&'a [u8]>,
    /// Item popularity group id per sample (index into the item group names).
    pub item_group: Option<&'a [u8]>,
}

impl<'a> ScoredSlice<'a> {
    /// A slice with scores and labels only.
    pub fn new(scores: &'a [f32], labels: &'a [f32]) -> Self {
        ScoredSlice {
            scores,
            labels,
            users: None,
            user_group: None,
            item_group: None,
        }
    }

    /// Adds user ids.
    pub fn with_users(mut self, users: &'a [u32]) -> Self {
        self.users = Some(users);
        self
    }

    /// Adds user group ids.
    pub fn with_user_group(mut self, g: &'a [u8]) -> Self {
        self.user_group = Some(g);
        self
    }

    /// Adds item group ids.
    pub fn with_item_group(mut self, g: &'a [u8]) -> Self {
        self.item_group = Some(g);
        self
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Checks that every present column has the length of `scores` and that scores and labels are
    /// finite.
    pub fn validate(&self) -> Result<()> {
        check_scores_labels(self.scores, self.labels)?;
        let n = self.scores.len();
        if let Some(u) = self.users {
            check_len("users (vs scores)", n, u.len())?;
        }
        if let Some(g) = self.user_group {
            check_len("user_group (vs scores)", n, g.len())?;
        }
        if let Some(g) = self.item_group {
            check_len("item_group (vs scores)", n, g.len())?;
        }
        Ok(())
    }
}

/// A streaming evaluation metric.
pub trait Metric: Send {
    /// Short name, also the prefix of its keys ("auc", "logloss", "gauc", "auc/user").
    fn name(&self) -> &str;
    /// Whether higher values are better.
    fn direction(&self) -> Direction;
    /// Adds one batch. On error nothing is added.
    fn update(&mut self, s: &ScoredSlice) -> Result<()>;
    /// The metric over everything added since the last reset, as flat `(key, value)` pairs.
    fn compute(&self) -> Result<Vec<(String, f64)>>;
    /// Forgets everything added.
    fn reset(&mut self);
}

/// Buffered scores and labels, shared by the AUC-style metrics.
#[derive(Debug, Clone, Default)]
struct Buffer {
    scores: Vec<f32>,
    labels: Vec<f32>,
}

impl Buffer {
    fn push(&mut self, s: &ScoredSlice) {
        self.scores.extend_from_slice(s.scores);
        self.labels.extend_from_slice(s.labels);
    }

    fn clear(&mut self) {
        self.scores.clear();
        self.labels.clear();
    }
}

/// Exact ROC AUC over all updates. Key "auc" (NaN when only one class was seen).
#[derive(Debug, Clone, Default)]
pub struct AucMetric {
    buf: Buffer,
}

impl AucMetric {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for AucMetric {
    fn name(&self) -> &str {
        "auc"
    }
    fn direction(&self) -> Direction {
        Direction::HigherIsBetter
    }
    fn update(&mut self, s: &ScoredSlice) -> Result<()> {
        check_scores_labels(s.scores, s.labels)?;
        self.buf.push(s);
        Ok(())
    }
    fn compute(&self) -> Result<Vec<(String, f64)>> {
        let a = auc(&self.buf.scores, &self.buf.labels)?;
        Ok(vec![("auc".into(), a.unwrap_or(f64::NAN))])
    }
    fn reset(&mut self) {
        self.buf.clear();
    }
}

/// Mean logloss over all updates (running sum, no buffering). Key "logloss".
#[derive(Debug, Clone, Default)]
pub struct LoglossMetric {
    sum: f64,
    n: usize,
}

impl LoglossMetric {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for LoglossMetric {
    fn name(&self) -> &str {
        "logloss"
    }
    fn direction(&self) -> Direction {
        Direction::LowerIsBetter
    }
    fn update(&mut self, s: &ScoredSlice) -> Result<()> {
        check_scores_labels(s.scores, s.labels)?;
        logloss::accumulate(s.scores, s.labels, &mut self.sum);
        self.n += s.scores.len();
        Ok(())
    }
    fn compute(&self) -> Result<Vec<(String, f64)>> {
        if self.n == 0 {
            return Err(EvalError::Empty("logloss: no samples".into()));
        }
        Ok(vec![("logloss".into(), self.sum / self.n as f64)])
    }
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// GAUC over all updates; needs `users`. Keys "gauc" (NaN when no user has both classes) and
/// "gauc_users_skipped".
#[derive(Debug, Clone, Default)]
pub struct GaucMetric {
    buf: Buffer,
    users: Vec<u32>,
}

impl GaucMetric {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for GaucMetric {
    fn name(&self) -> &str {
        "gauc"
    }
    fn direction(&self) -> Direction {
        Direction::HigherIsBetter
    }
    fn update(&mut self, s: &ScoredSlice) -> Result<()> {
        let users = s.users.ok_or_else(|| {
            EvalError::MissingInput("gauc needs user ids (ScoredSlice::users)".into())
        })?;
        check_scores_labels(s.scores, s.labels)?;
        check_len("users (vs scores)", s.scores.len(), users.len())?;
        self.buf.push(s);
        self.users.extend_from_slice(users);
        Ok(())
    }
    fn compute(&self) -> Result<Vec<(String, f64)>> {
        let r = gauc(&self.users, &self.buf.scores, &self.buf.labels)?;
        Ok(vec![
            ("gauc".into(), r.gauc.unwrap_or(f64::NAN)),
            ("gauc_users_skipped".into(), r.users_skipped as f64),
        ])
    }
    fn reset(&mut self) {
        self.buf.clear();
        self.users.clear();
    }
}

/// Which group column a [`GroupedAucMetric`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    User,
    Item,
}

/// AUC within each user group or item group. Keys "auc/user=<name>" or "auc/item=<name>", in group id
/// order; a group with no samples or only one class is left out.
#[derive(Debug, Clone)]
pub struct GroupedAucMetric {
    /// `None` when `new` got a kind other than "user"/"item": reported by `update`/`compute`.
    kind: Option<GroupKind>,
    kind_str: String,
    name: String,
    names: Vec<String>,
    buf: Buffer,
    groups: Vec<u8>,
}

impl GroupedAucMetric {
    /// `kind` is "user" (reads `ScoredSlice::user_group`) or "item" (reads `item_group`); `names[g]`
    /// names group id `g`. Any other kind makes `update` and `compute` return
    /// [`EvalError::InvalidArgument`] (so this constructor cannot fail).
    pub fn new(kind: &str, names: &[&str]) -> Self {
        let k = match kind {
            "user" => Some(GroupKind::User),
            "item" => Some(GroupKind::Item),
            _ => None,
        };
        GroupedAucMetric {
            kind: k,
            kind_str: kind.to_string(),
            name: format!("auc/{kind}"),
            names: names.iter().map(|s| s.to_string()).collect(),
            buf: Buffer::default(),
            groups: Vec::new(),
        }
    }

    fn kind(&self) -> Result<GroupKind> {
        self.kind.ok_or_else(|| {
            EvalError::InvalidArgument(format!(
                "GroupedAucMetric kind must be \"user\" or \"item\", got {:?}",
                self.kind_str
            ))
        })
    }
}

/// Flat keys "auc/<kind>=<name>" for the groups whose AUC is defined.
pub(crate) fn grouped_auc_keys(
    kind: &str,
    names: &[impl AsRef<str>],
    groups: &[u8],
    scores: &[f32],
    labels: &[f32],
) -> Result<Vec<(String, f64)>> {
    let per = auc_by_group(groups, names.len(), scores, labels).map_err(|e| match e {
        EvalError::GroupOutOfRange {
            index,
            group,
            n_groups,
            ..
        } => EvalError::GroupOutOfRange {
            what: format!("{kind} group"),
            index,
            group,
            n_groups,
        },
        e => e,
    })?;
    Ok(per
        .into_iter()
        .zip(names)
        .filter_map(|(a, name)| a.map(|a| (format!("auc/{kind}={}", name.as_ref()), a)))
        .collect())
}

impl Metric for GroupedAucMetric {
    fn name(&self) -> &str {
        &self.name
    }
    fn direction(&self) -> Direction {
        Direction::HigherIsBetter
    }
    fn update(&mut self, s: &ScoredSlice) -> Result<()> {
        let kind = self.kind()?;
        let groups = match kind {
            GroupKind::User => s.user_group,
            GroupKind::Item => s.item_group,
        }
        .ok_or_else(|| {
            EvalError::MissingInput(format!(
                "auc/{} needs {} group ids (ScoredSlice::{}_group)",
                self.kind_str, self.kind_str, self.kind_str
            ))
        })?;
        check_scores_labels(s.scores, s.labels)?;
        check_len(
            &format!("{}_group (vs scores)", self.kind_str),
            s.scores.len(),
            groups.len(),
        )?;
        if let Some(index) = groups
            .iter()
            .position(|&g| usize::from(g) >= self.names.len())
        {
            return Err(EvalError::GroupOutOfRange {
                what: format!("{} group", self.kind_str),
                index,
                group: groups[index],
                n_groups: self.names.len(),
            });
        }
        self.buf.push(s);
        self.groups.extend_from_slice(groups);
        Ok(())
    }
    fn compute(&self) -> Result<Vec<(String, f64)>> {
        self.kind()?;
        grouped_auc_keys(
            &self.kind_str,
            &self.names,
            &self.groups,
            &self.buf.scores,
            &self.buf.labels,
        )
    }
    fn reset(&mut self) {
        self.buf.clear();
        self.groups.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_directions_agree_with_the_metrics_own() {
        use Direction::*;
        for (key, want) in [
            ("logloss", LowerIsBetter),
            ("logloss/user=tail", LowerIsBetter),
            ("auc", HigherIsBetter),
            ("gauc", HigherIsBetter),
            ("auc/item=head", HigherIsBetter),
            ("ndcg@20", HigherIsBetter),
            ("hr@5/item=tail", HigherIsBetter),
            ("full_mrr@20", HigherIsBetter),
            ("rmse", LowerIsBetter),
        ] {
            assert_eq!(Direction::of_key(key), want, "{key}");
        }
        // The rule gives every metric's keys that metric's own direction.
        let (s, l, u, ug, ig) = data();
        let slice = ScoredSlice::new(&s, &l)
            .with_users(&u)
            .with_user_group(&ug)
            .with_item_group(&ig);
        for mut m in all_metrics() {
            m.update(&slice).unwrap();
            let keys = m.compute().unwrap();
            assert!(!keys.is_empty());
            for (key, _) in keys {
                assert_eq!(Direction::of_key(&key), m.direction(), "{key}");
            }
        }
        assert!(LowerIsBetter.better(0.3, 0.4) && !LowerIsBetter.better(0.4, 0.4));
        assert!(HigherIsBetter.better(0.5, 0.4));
    }

    /// scores, labels, users, user groups, item groups.
    type Columns = (Vec<f32>, Vec<f32>, Vec<u32>, Vec<u8>, Vec<u8>);

    fn data() -> Columns {
        let n = 200;
        let scores: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let labels: Vec<f32> = (0..n)
            .map(|i| f32::from(u8::from((i * 13) % 7 < 3)))
            .collect();
        let users: Vec<u32> = (0..n).map(|i| (i * 7 % 23) as u32).collect();
        let ug: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let ig: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        (scores, labels, users, ug, ig)
    }

    fn all_metrics() -> Vec<Box<dyn Metric>> {
        vec![
            Box::new(AucMetric::new()),
            Box::new(LoglossMetric::new()),
            Box::new(GaucMetric::new()),
            Box::new(GroupedAucMetric::new("user", &["tail", "body", "head"])),
            Box::new(GroupedAucMetric::new("item", &["rare", "popular"])),
        ]
    }

    #[test]
    fn two_halves_equal_one_shot() {
        let (s, l, u, ug, ig) = data();
        let full = ScoredSlice::new(&s, &l)
            .with_users(&u)
            .with_user_group(&ug)
            .with_item_group(&ig);
        let h = 77;
        let a = ScoredSlice::new(&s[..h], &l[..h])
            .with_users(&u[..h])
            .with_user_group(&ug[..h])
            .with_item_group(&ig[..h]);
        let b = ScoredSlice::new(&s[h..], &l[h..])
            .with_users(&u[h..])
            .with_user_group(&ug[h..])
            .with_item_group(&ig[h..]);
        for (mut one, mut two) in all_metrics().into_iter().zip(all_metrics()) {
            one.update(&full).unwrap();
            two.update(&a).unwrap();
            two.update(&b).unwrap();
            let (x, y) = (one.compute().unwrap(), two.compute().unwrap());
            assert!(!x.is_empty());
            assert_eq!(x, y, "{}", one.name());
            // Reset then the same data again gives the same answer.
            two.reset();
            two.update(&full).unwrap();
            assert_eq!(two.compute().unwrap(), x);
        }
    }

    #[test]
    fn grouped_keys_and_omitted_groups() {
        // group 0 both classes, group 1 one class, group 2 no samples.
        let s = [0.1, 0.9, 0.3, 0.4];
        let l = [0.0, 1.0, 1.0, 1.0];
        let g = [0u8, 0, 1, 1];
        let mut m = GroupedAucMetric::new("user", &["tail", "body", "head"]);
        assert_eq!(m.name(), "auc/user");
        m.update(&ScoredSlice::new(&s, &l).with_user_group(&g))
            .unwrap();
        assert_eq!(
            m.compute().unwrap(),
            vec![("auc/user=tail".to_string(), 1.0)]
        );

        let mut m = GroupedAucMetric::new("item", &["a", "b"]);
        let g = [1u8, 1, 0, 0];
        let l = [0.0, 1.0, 1.0, 0.0];
        m.update(&ScoredSlice::new(&s, &l).with_item_group(&g))
            .unwrap();
        let keys: Vec<String> = m.compute().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["auc/item=a", "auc/item=b"]);
    }

    #[test]
    fn errors() {
        let s = [0.1, 0.9];
        let l = [0.0, 1.0];
        let mut m = GroupedAucMetric::new("user", &["tail"]);
        assert!(matches!(
            m.update(&ScoredSlice::new(&s, &l).with_user_group(&[0, 1])),
            Err(EvalError::GroupOutOfRange {
                index: 1,
                group: 1,
                n_groups: 1,
                ..
            })
        ));
        assert!(matches!(
            m.update(&ScoredSlice::new(&s, &l)),
            Err(EvalError::MissingInput(_))
        ));
        assert!(matches!(m.compute(), Err(EvalError::Empty(_))));
        let mut m = GroupedAucMetric::new("session", &["x"]);
        assert!(matches!(
            m.update(&ScoredSlice::new(&s, &l).with_user_group(&[0, 0])),
            Err(EvalError::InvalidArgument(_))
        ));
        let mut m = GaucMetric::new();
        assert!(matches!(
            m.update(&ScoredSlice::new(&s, &l)),
            Err(EvalError::MissingInput(_))
        ));
        let mut m = AucMetric::new();
        assert!(matches!(
            m.update(&ScoredSlice::new(&s, &[0.0])),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(
            m.update(&ScoredSlice::new(&[f32::NAN, 0.0], &l)),
            Err(EvalError::NonFinite { .. })
        ));
        // Failed updates add nothing.
        assert!(matches!(m.compute(), Err(EvalError::Empty(_))));
        assert!(matches!(
            LoglossMetric::new().compute(),
            Err(EvalError::Empty(_))
        ));
    }

    #[test]
    fn one_class_auc_is_nan_and_directions() {
        let mut m = AucMetric::new();
        m.update(&ScoredSlice::new(&[0.1, 0.2], &[1.0, 1.0]))
            .unwrap();
        assert!(m.compute().unwrap()[0].1.is_nan());
        assert_eq!(m.direction(), Direction::HigherIsBetter);
        assert_eq!(LoglossMetric::new().direction(), Direction::LowerIsBetter);
        assert!(Direction::LowerIsBetter.better(0.1, 0.2));
        assert!(Direction::HigherIsBetter.better(0.2, 0.1));
    }
}
