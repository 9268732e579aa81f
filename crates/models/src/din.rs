//! DIN: Deep Interest Network (Zhou et al., "Deep Interest Network for Click-Through Rate
//! Prediction", KDD 2018), one of the HIM paper's baselines (§4.1).
//!
//! Choices:
//! - **Embeddings**: one item table (dim `embedding_dim`, default 8, `padding_idx = 0`) shared by
//!   the behaviors and the target (the feature map's `hist` shares `item`), plus an optional user
//!   table (`user_embedding`, default true; the paper's user-profile features).
//! - **Activation unit** (paper §4.3, Fig. 2): for each behavior `e_j` and the target `t`, an MLP
//!   over `[e_j, t, e_j − t, e_j ∗ t]` (4D inputs; the difference and element-wise product stand
//!   in for the figure's "out product", as in the authors' released code) with hidden layers
//!   `attention_hidden` (default `[36]`, the paper's size) and a final linear layer to one scalar
//!   `a_j`. Hidden activation: **PReLU** with one learned slope per unit (initialised to 0.25),
//!   the paper's baseline activation. Dice (paper §5.2) is not used: it adapts the rectifier
//!   point with *batch* statistics, which would make a row's score depend on the rest of its
//!   batch in training and need running statistics for scoring; PReLU keeps the score a function
//!   of the row alone. Checkpoint names: `attention.<i>.{weight,bias,alpha}`, `attention.out.*`.
//! - **Pooling**: `v_U = Σ_j m_j a_j e_j` (paper eq. 3) with `m = hist_mask`. The weights are
//!   **not** softmax-normalised (the paper's stated choice, "to reserve the intensity of user
//!   interests": a user with many relevant behaviors gets a larger `v_U`); the raw `a_j` can be
//!   negative or above one. (The authors' released code does apply a softmax; we follow the paper
//!   text.) Padding slots and empty histories contribute 0.
//! - **Output**: `[user?, v_U, t]` → `layers::Mlp` (hidden `hidden`, default `[256, 128, 32]` as
//!   in HIM §4.1, ReLU rather than the paper's PReLU/Dice so all MLP baselines share one tower;
//!   `dropout` default 0.0) → logit, trained with the weighted BCE `"ctr"` term (the paper's
//!   mini-batch aware regularisation is not used: HIM trains all baselines the same way);
//!   `score = σ(logit)`.

use crate::checks;
use longtail_core::layers::Mlp;
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, ModelSpec, Result};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "din";

/// Hyper-parameters (`[model.params]`). Defaults: embedding 8 and MLP [256, 128, 32] (HIM §4.1),
/// activation unit [36] (DIN paper). Checked before any data is read: widths (`embedding_dim`,
/// `attention_hidden`, `hidden`) in `[1, 65536]`, `embedding_std` in `(0, 10]`, `dropout` in
/// `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct DinParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01] (small, as in
    /// the TensorFlow implementations of the papers; libtorch's N(0, 1) overfits sparse ids).
    pub embedding_std: f64,
    /// Hidden layers of the activation unit (PReLU); empty = one linear layer.
    pub attention_hidden: Vec<i64>,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for DinParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            attention_hidden: vec![36],
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
        }
    }
}

impl ModelParams for DinParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        c.dims("attention_hidden", &self.attention_hidden)?;
        checks::tower(c, &self.hidden, self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

/// DIN's local activation unit: `[h, t, h − t, h ∗ t]` → (Linear → PReLU)* → Linear → scalar.
#[derive(Debug)]
pub(crate) struct ActivationUnit {
    /// Hidden layers with their PReLU slopes `[out]`.
    layers: Vec<(nn::Linear, Tensor)>,
    out: nn::Linear,
}

impl ActivationUnit {
    pub(crate) fn new(path: &nn::Path, dim: i64, hidden: &[i64]) -> Self {
        let mut in_dim = 4 * dim;
        let mut layers = Vec::new();
        for (i, &h) in hidden.iter().enumerate() {
            let p = path / i;
            let linear = nn::linear(&p, in_dim, h, Default::default());
            let alpha = p.var("alpha", &[h], nn::Init::Const(0.25));
            layers.push((linear, alpha));
            in_dim = h;
        }
        let out = nn::linear(path / "out", in_dim, 1, Default::default());
        Self { layers, out }
    }

    /// Raw weights `[B, L]` of behaviors `hist [B, L, D]` for targets `target [B, D]`.
    pub(crate) fn forward(&self, hist: &Tensor, target: &Tensor) -> Tensor {
        let t = target.unsqueeze(1).expand_as(hist);
        let mut x = Tensor::cat(&[hist, &t, &(hist - &t), &(hist * &t)], -1);
        for (linear, alpha) in &self.layers {
            let y = linear.forward(&x);
            // PReLU over the last (feature) dimension: max(0, y) + alpha * min(0, y).
            x = y.relu() + alpha * y.clamp_max(0.0);
        }
        self.out.forward(&x).squeeze_dim(-1)
    }
}

pub struct Din {
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    attention: ActivationUnit,
    mlp: Mlp,
}

impl ModelSpec for Din {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "DIN: target attention (activation unit, unnormalised weights) over behaviors + MLP";
    type Params = DinParams;

    fn build(root: &nn::Path, p: DinParams, ctx: &BuildContext) -> Result<Self> {
        let d = p.embedding_dim;
        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        fm.require("hist", NAME)?;
        let cfg = longtail_core::layers::id_embedding_config(p.embedding_std);
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(root / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, d, cfg);
        let attention = ActivationUnit::new(&(root / "attention"), d, &p.attention_hidden);
        let inputs = d * if p.user_embedding { 3 } else { 2 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.dropout);
        Ok(Self {
            user,
            item,
            attention,
            mlp,
        })
    }
}

impl Din {
    /// Behavior embeddings `[B, L, D]` and their masked, unnormalised weights `[B, L]`.
    fn attend(&self, b: &DeviceBatch) -> (Tensor, Tensor) {
        let hist = self.item.forward(&b.hist);
        let a = self.attention.forward(&hist, &self.item.forward(&b.item)) * &b.hist_mask;
        (hist, a)
    }

    /// The masked, unnormalised activation weights `[B, L]` (0 on padding).
    pub fn weights(&self, b: &DeviceBatch) -> Tensor {
        self.attend(b).1
    }

    /// The user interest `v_U = Σ_j m_j a_j e_j`, `[B, D]`.
    pub fn pooled(&self, b: &DeviceBatch) -> Tensor {
        let (hist, a) = self.attend(b);
        (hist * a.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float)
    }

    fn logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        let mut parts = vec![self.pooled(b), self.item.forward(&b.item)];
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        self.mlp
            .forward(&Tensor::cat(&parts, -1), train)
            .squeeze_dim(-1)
            .to_kind(Kind::Float)
    }
}

impl CtrLogits for Din {
    fn ctr_logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.logits(b, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch, close, rows, table};
    use longtail_core::conformance;
    use longtail_core::tch::Device;
    use longtail_core::Model;

    fn model(params: &str) -> crate::test_util::Built<Din> {
        let fm = conformance::tiny_feature_map();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        longtail_core::seed::seed_everything(5);
        crate::test_util::build::<Din>(&ctx).unwrap()
    }

    #[test]
    fn conformance() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME).unwrap();
        conformance::check_with(&reg, NAME, &table("user_embedding = false")).unwrap();
        conformance::check_with(&reg, NAME, &table("attention_hidden = [16, 8]")).unwrap();
        conformance::check_with(&reg, NAME, &table("attention_hidden = []")).unwrap();
    }

    #[test]
    fn bad_params_are_rejected() {
        let fm = conformance::tiny_feature_map();
        for (params, key) in [
            ("attention_hidden = [0]", "attention_hidden"),
            ("attn = 3", "attn"),
        ] {
            let t = table(params);
            let ctx = BuildContext::new(&fm, &t, Device::Cpu);
            let err = crate::test_util::build::<Din>(&ctx)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn weights_are_not_normalised() {
        let m = model("");
        longtail_core::tch::no_grad(|| {
            // A repeated behavior counts twice: no softmax, so the pooled interest doubles.
            let b = batch(&[6, 6, 6], &[vec![3], vec![3, 3], vec![]]);
            let p = rows(&m.pooled(&b));
            let doubled: Vec<f32> = p[0].iter().map(|v| 2.0 * v).collect();
            assert!(close(&p[1], &doubled), "{p:?}");
            assert!(p[2].iter().all(|v| *v == 0.0), "empty history: {p:?}");
            let w = rows(&m.weights(&b));
            assert_eq!(w[0][1], 0.0, "padding slot has weight 0: {w:?}");
            assert!(
                (w[1][0] - w[1][1]).abs() < 1e-6 && w[1][0] == w[0][0],
                "{w:?}"
            );
            // The weights depend on the target (local activation).
            let other = batch(&[6, 11], &[vec![3, 4], vec![3, 4]]);
            let w = rows(&m.weights(&other));
            assert!(!close(&w[0], &w[1]), "{w:?}");
        });
    }

    #[test]
    fn trailing_padding_does_not_change_scores() {
        let m = model("user_embedding = false");
        let hist = [vec![3, 5, 7], vec![3, 5], vec![]];
        let padded: Vec<Vec<i64>> = hist
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.resize(6, 0);
                r
            })
            .collect();
        let a = batch(&[6, 6, 6], &hist);
        let b = batch(&[6, 6, 6], &padded);
        assert_eq!(b.hist.size(), [3, 6]);
        let sa: Vec<f32> = Vec::try_from(m.score(&a).unwrap()).unwrap();
        let sb: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
        assert!(close(&sa, &sb), "{sa:?} vs {sb:?}");
    }
}
