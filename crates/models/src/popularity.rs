//! Popularity: the item-popularity baseline of the HIM paper ("Hybrid Interest Modeling for
//! Long-tailed Users", §4.1 Baselines), written as a CTR model.
//!
//! Choices:
//! - **Model**: `logit = b + w_item[item]`, one learned scalar per item (`item.weight`, shape
//!   `[vocab, 1]`, `padding_idx = 0`) and a global bias `bias`. It sees neither the user nor the
//!   history, so every user gets the same ranking of items: a model that knows only how
//!   popular / clickable an item is.
//! - **Training**: the same weighted BCE on logits as every other CTR model (`"ctr"` term,
//!   `losses::bce_with_logits`). At the optimum `σ(b + w_i)` is the (weighted) empirical click
//!   rate of item `i` in the training rows, i.e. the best item-only predictor on the training
//!   data under log loss, rather than a raw click count (which would ignore impressions and
//!   negatives). Items never seen in training keep `w_i = 0` and score `σ(b)`, the global rate.
//! - **Initialisation**: all weights start at 0 (logit 0 everywhere), as is usual for linear
//!   models; Adam moves them from there.
//! - **Params**: none besides `dropout` (accepted for a uniform config, unused: there is no hidden
//!   layer). `score = σ(logit)`.

use crate::checks;
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, ModelSpec, Result};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "popularity";

/// Hyper-parameters (`[model.params]`). Checked before any data is read: `dropout` in `[0, 1)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct PopularityParams {
    /// Accepted for a uniform config; the model has no hidden layer to drop out.
    pub dropout: f64,
}

impl ModelParams for PopularityParams {
    fn validate(&self, c: &Check) -> Result<()> {
        c.prob("dropout", self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

pub struct Popularity {
    /// Per-item bias `w_item`, `[vocab, 1]`.
    item: nn::Embedding,
    /// Global bias `b`, `[1]`.
    bias: Tensor,
}

impl ModelSpec for Popularity {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "Popularity baseline: a learned per-item bias trained with BCE (no user, no history)";
    type Params = PopularityParams;

    fn build(root: &nn::Path, _p: PopularityParams, ctx: &BuildContext) -> Result<Self> {
        let items = ctx.feature_map.require("item", NAME)?.vocab as i64;
        let cfg = nn::EmbeddingConfig {
            padding_idx: 0,
            ws_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let item = nn::embedding(root / "item", items, 1, cfg);
        let bias = root.zeros("bias", &[1]);
        Ok(Self { item, bias })
    }
}

impl Popularity {
    fn logits(&self, b: &DeviceBatch) -> Tensor {
        (self.item.forward(&b.item).squeeze_dim(-1) + &self.bias).to_kind(Kind::Float)
    }
}

impl CtrLogits for Popularity {
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

    #[test]
    fn conformance() {
        let r = conformance::check(&crate::builtin_registry().unwrap(), NAME).unwrap();
        assert_eq!(r.loss_terms, vec!["ctr".to_string()]);
    }

    #[test]
    fn ignores_user_and_history() {
        let fm = conformance::tiny_feature_map();
        let t = toml::Table::new();
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        let m = crate::test_util::build::<Popularity>(&ctx).unwrap();
        let vars = m.vs.variables();
        longtail_core::tch::no_grad(|| {
            let w = &vars["item.weight"];
            for i in 0..w.size()[0] {
                let _ = w.get(i).fill_(0.1 * i as f64);
            }
        });
        let h = HostBatch::from_dense(
            vec![1, 5, 2],
            vec![3, 3, 4],
            vec![1.0, 0.0, 1.0],
            &[vec![1, 2], vec![], vec![7]],
        )
        .unwrap();
        let b = DeviceBatch::from_host(&h, Device::Cpu).unwrap();
        let s: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
        assert_eq!(s[0], s[1], "same item, different user/history: {s:?}");
        let expect = 1.0 / (1.0 + (-0.4f32).exp());
        assert!((s[2] - expect).abs() < 1e-6, "{s:?}");
    }
}
