//! LR: logistic regression over one-hot ids, the linear baseline of the HIM paper ("Hybrid
//! Interest Modeling for Long-tailed Users", §4.1 Baselines).
//!
//! Choices:
//! - **Model**: `logit = b + w_user[u] + w_item[i] + (Σ_j m_j w_hist[h_j]) / sqrt(max(n, 1))`,
//!   where `h_j` are the behaviors, `m_j = hist_mask` and `n = Σ_j m_j` the number of real
//!   behaviors. Every id is a one-hot feature with one scalar weight (embedding tables of width 1,
//!   `padding_idx = 0`); the history is a multi-hot bag.
//! - **History table**: the history has its **own** weight table `hist.weight`, separate from
//!   `item.weight`: in LR a behavior's weight ("users who clicked `h` tend to click") is a
//!   different feature from the target's weight ("item `i` is clicked"), as in the usual
//!   one-hot encoding of separate fields. Sharing would tie popularity to "is predictive when in
//!   the history", which LR has no capacity to disentangle.
//! - **Normalisation**: the bag is divided by `sqrt(n)` (TensorFlow's `sqrtn` combiner): a sum
//!   would let long histories dominate the logit, a mean would make a 1-item history weigh as much
//!   as a 500-item one; `sqrt(n)` sits between. An empty history contributes 0.
//! - **Params**: `hist` (default true) switches the history term, `user_embedding` (default true)
//!   switches the user term (off: a model that generalises to unseen users), `dropout` is
//!   accepted for a uniform config and unused (no hidden layer).
//! - **Initialisation**: all weights and the bias start at 0 (the usual LR start, and it keeps the
//!   padding rows at 0); trained with the weighted BCE `"ctr"` term; `score = σ(logit)`.

use crate::checks;
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, ModelSpec, Result};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "lr";

/// Hyper-parameters (`[model.params]`). Checked before any data is read: `dropout` in `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct LrParams {
    /// Include the history bag term.
    pub hist: bool,
    /// Include the user-id weight.
    pub user_embedding: bool,
    /// Accepted for a uniform config; LR has no hidden layer to drop out.
    pub dropout: f64,
}

impl Default for LrParams {
    fn default() -> Self {
        Self {
            hist: true,
            user_embedding: true,
            dropout: 0.0,
        }
    }
}

impl ModelParams for LrParams {
    fn validate(&self, c: &Check) -> Result<()> {
        c.prob("dropout", self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

pub struct Lr {
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    hist: Option<nn::Embedding>,
    bias: Tensor,
}

impl ModelSpec for Lr {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "Logistic regression over one-hot user / item ids and a sqrt(n)-normalised history bag";
    type Params = LrParams;

    fn build(root: &nn::Path, p: LrParams, ctx: &BuildContext) -> Result<Self> {
        let fm = ctx.feature_map;
        let cfg = nn::EmbeddingConfig {
            padding_idx: 0,
            ws_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let table = |name: &str, vocab: usize| nn::embedding(root / name, vocab as i64, 1, cfg);
        let user = if p.user_embedding {
            Some(table("user", fm.require("user", NAME)?.vocab))
        } else {
            None
        };
        let item = table("item", fm.require("item", NAME)?.vocab);
        let hist = if p.hist {
            Some(table("hist", fm.require("hist", NAME)?.vocab))
        } else {
            None
        };
        let bias = root.zeros("bias", &[1]);
        Ok(Self {
            user,
            item,
            hist,
            bias,
        })
    }
}

impl Lr {
    fn logits(&self, b: &DeviceBatch) -> Tensor {
        let base = self.item.forward(&b.item).squeeze_dim(-1) + &self.bias;
        let user = self
            .user
            .as_ref()
            .map(|u| u.forward(&b.user).squeeze_dim(-1));
        let hist = self.hist.as_ref().map(|h| {
            let w = h.forward(&b.hist).squeeze_dim(-1) * &b.hist_mask;
            let n = b.hist_mask.sum_dim_intlist(1, false, Kind::Float);
            w.sum_dim_intlist(1, false, Kind::Float) / n.clamp_min(1.0).sqrt()
        });
        [user, hist]
            .into_iter()
            .flatten()
            .fold(base, |acc, t| acc + t)
            .to_kind(Kind::Float)
    }
}

impl CtrLogits for Lr {
    fn ctr_logits(&self, b: &DeviceBatch, _train: bool) -> Tensor {
        self.logits(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use longtail_core::conformance;
    use longtail_core::data::HostBatch;
    use longtail_core::tch::Device;
    use longtail_core::Model;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn conformance() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME).unwrap();
        conformance::check_with(&reg, NAME, &table("hist = false")).unwrap();
        conformance::check_with(&reg, NAME, &table("user_embedding = false")).unwrap();
    }

    #[test]
    fn logit_matches_hand_computation() {
        let fm = conformance::tiny_feature_map();
        let t = toml::Table::new();
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        let m = crate::test_util::build::<Lr>(&ctx).unwrap();
        let vars = m.vs.variables();
        let set = |name: &str, id: i64, v: f64| {
            let _ = vars[name].get(id).fill_(v);
        };
        longtail_core::tch::no_grad(|| {
            let _ = vars["bias"].shallow_clone().fill_(0.1);
            set("user.weight", 2, 0.2);
            set("item.weight", 3, -0.3);
            set("hist.weight", 4, 0.4);
            set("hist.weight", 5, 1.0);
            // The same id as a target has another weight: the tables are separate.
            set("item.weight", 4, 7.0);
        });
        let h = HostBatch::from_dense(
            vec![2, 1, 2],
            vec![3, 3, 4],
            vec![1.0, 0.0, 1.0],
            &[vec![4, 5, 4], vec![], vec![5]],
        )
        .unwrap();
        let b = DeviceBatch::from_host(&h, Device::Cpu).unwrap();
        let out = m.forward(&b, false).unwrap();
        let got: Vec<f32> = Vec::try_from(&out.logits).unwrap();
        let expect = [
            0.1 + 0.2 - 0.3 + (0.4 + 1.0 + 0.4) / 3f64.sqrt(),
            0.1 - 0.3,
            0.1 + 0.2 + 7.0 + 1.0,
        ];
        for (g, e) in got.iter().zip(expect) {
            assert!((f64::from(*g) - e).abs() < 1e-6, "{got:?} vs {expect:?}");
        }
        let s: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
        assert!((f64::from(s[1]) - 1.0 / (1.0 + 0.2f64.exp())).abs() < 1e-6);
    }
}
