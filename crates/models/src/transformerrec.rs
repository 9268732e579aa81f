//! TransformerRec: the MFN paper's baseline that extracts multiple user interests with a
//! multi-head transformer over the behavior sequence (the MFN paper cites Lv et al., "SDM:
//! Sequential Deep Matching Model for Online Large-scale Recommender System", CIKM 2019, and Sun
//! et al., "BERT4Rec", CIKM 2019, for it).
//!
//! Choices:
//! - **Embeddings**: one item table (dim `embedding_dim`, default 8, `padding_idx = 0`,
//!   N(0, `embedding_std` = 0.01)) shared by the behaviors and the target (the feature map's
//!   `hist` shares `item`), plus an optional user table (`user_embedding`, default true), as in
//!   the other CTR baselines so that only the interest extractor differs.
//! - **Encoder** (`longtail_core::attention::TransformerEncoder`, BERT4Rec-style): learned
//!   position embeddings (one per slot, `max_len` from the feature map's `hist`; histories are
//!   oldest first with padding after, so slot p is position p) + `layers` (default 1)
//!   post-LayerNorm blocks of `heads`-head self-attention (default 2; SDM's multi-head
//!   self-attention where each head captures one interest aspect) and a GELU feed-forward of
//!   width `ffn_dim` (absent = 4 × `embedding_dim`, BERT's ratio), `dropout` default 0.0 (the
//!   tiny D = 8 model does not need it; the other baselines train without dropout too). Padding
//!   keys are masked, so padding never changes the encoded real positions.
//! - **Interests**: every encoded position is one interest vector (SDM's short-term interests
//!   from multi-head self-attention). They are pooled **target-aware** (SDM fuses interests with
//!   an attention against a query; in a CTR model the natural query is the target item, as in
//!   DIN): `a = masked_softmax(H t / √D)` over real positions, `v_U = Σ_j a_j h_j`. Scaled dot
//!   product rather than a DIN MLP keeps the baseline "transformer only"; the softmax is the
//!   transformer's usual normalisation. Empty histories give `v_U = 0` (finite scores).
//! - **Output**: `[user?, v_U, t]` → `layers::Mlp` (hidden `hidden`, default `[256, 128, 32]`,
//!   ReLU, `mlp_dropout` default 0.0, the tower all MLP baselines share) → logit, trained with
//!   the weighted BCE `"ctr"` term; `score = σ(logit)`.

use crate::checks;
use longtail_core::attention::TransformerEncoder;
use longtail_core::layers::{masked_softmax, Mlp};
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, ModelSpec, Result};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "transformerrec";

/// Hyper-parameters (`[model.params]`). Defaults: embedding 8 and MLP [256, 128, 32] as for the
/// other baselines; one 2-head transformer layer with a 4 × D feed-forward.
/// Checked before any data is read: widths (`embedding_dim`, `ffn_dim`, `hidden`) in
/// `[1, 65536]`, `layers` in `[1, 64]`, `heads` in `[1, 65536]` dividing `embedding_dim`,
/// `embedding_std` in `(0, 10]`, `dropout` and `mlp_dropout` in `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerRecParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01] (small, as in
    /// the TensorFlow implementations of the papers; libtorch's N(0, 1) overfits sparse ids).
    pub embedding_std: f64,
    /// Transformer blocks.
    pub layers: i64,
    /// Attention heads; must divide `embedding_dim`.
    pub heads: i64,
    /// Feed-forward width; absent = 4 × `embedding_dim`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffn_dim: Option<i64>,
    /// Dropout inside the encoder (input and both residual branches).
    pub dropout: f64,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout between the MLP's hidden layers.
    pub mlp_dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for TransformerRecParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            layers: 1,
            heads: 2,
            ffn_dim: None,
            dropout: 0.0,
            hidden: vec![256, 128, 32],
            mlp_dropout: 0.0,
            user_embedding: true,
        }
    }
}

impl ModelParams for TransformerRecParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        checks::encoder(c, self.layers, self.heads, self.embedding_dim, self.ffn_dim)?;
        c.prob("dropout", self.dropout)?;
        c.dims("hidden", &self.hidden)?;
        c.prob("mlp_dropout", self.mlp_dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

pub struct TransformerRec {
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    encoder: TransformerEncoder,
    mlp: Mlp,
    dim: i64,
}

impl ModelSpec for TransformerRec {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "TransformerRec: multi-head transformer interests + target attention pooling + MLP";
    type Params = TransformerRecParams;

    fn build(root: &nn::Path, p: TransformerRecParams, ctx: &BuildContext) -> Result<Self> {
        // Validated with this model's key names (the encoder's own errors name "attention").
        let d = p.embedding_dim;
        let ffn_dim = p.ffn_dim.unwrap_or(4 * d);
        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        let max_len = checks::hist_max_len(fm.require("hist", NAME)?, NAME, checks::POSITIONS)?;
        let cfg = longtail_core::layers::id_embedding_config(p.embedding_std);
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(root / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, d, cfg);
        let encoder = TransformerEncoder::new(
            &(root / "encoder"),
            d,
            p.heads,
            p.layers,
            ffn_dim,
            p.dropout,
            max_len,
        )?;
        let inputs = d * if p.user_embedding { 3 } else { 2 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.mlp_dropout);
        Ok(Self {
            user,
            item,
            encoder,
            mlp,
            dim: d,
        })
    }
}

impl TransformerRec {
    /// The interests `[B, L, D]` (encoded positions, zero at padding).
    pub fn interests(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.encoder
            .forward(&self.item.forward(&b.hist), &b.hist_mask, train)
    }

    /// Target-aware pooling weights `[B, L]` (softmax over real positions, 0 on padding) and the
    /// pooled interest `[B, D]`.
    fn pool(&self, b: &DeviceBatch, target: &Tensor, train: bool) -> (Tensor, Tensor) {
        let h = self.interests(b, train);
        let scores = h.matmul(&target.unsqueeze(-1)).squeeze_dim(-1) / (self.dim as f64).sqrt();
        let a = masked_softmax(&scores, &b.hist_mask, 1);
        let pooled = (h * a.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float);
        (a, pooled)
    }

    /// The pooling weights `[B, L]` of the interests for each row's target.
    pub fn weights(&self, b: &DeviceBatch) -> Tensor {
        self.pool(b, &self.item.forward(&b.item), false).0
    }

    fn logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        let target = self.item.forward(&b.item);
        let pooled = self.pool(b, &target, train).1;
        let mut parts = Vec::with_capacity(3);
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        parts.push(pooled);
        parts.push(target);
        self.mlp
            .forward(&Tensor::cat(&parts, -1), train)
            .squeeze_dim(-1)
            .to_kind(Kind::Float)
    }
}

impl CtrLogits for TransformerRec {
    fn ctr_logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.logits(b, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch, close, table};
    use longtail_core::conformance;
    use longtail_core::tch::Device;
    use longtail_core::Model;

    fn model(params: &str) -> crate::test_util::Built<TransformerRec> {
        let fm = conformance::tiny_feature_map();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        longtail_core::seed::seed_everything(5);
        crate::test_util::build::<TransformerRec>(&ctx).unwrap()
    }

    #[test]
    fn conformance() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME).unwrap();
        conformance::check_with(&reg, NAME, &table("layers = 2\nheads = 1")).unwrap();
        conformance::check_with(&reg, NAME, &table("user_embedding = false\nffn_dim = 16"))
            .unwrap();
        conformance::check_with(&reg, NAME, &table("dropout = 0.1\nheads = 4")).unwrap();
    }

    #[test]
    fn bad_params_are_rejected() {
        let fm = conformance::tiny_feature_map();
        for (params, key) in [
            ("heads = 3", "heads"),
            ("heads = 0", "heads"),
            ("layers = 0", "layers"),
            ("ffn_dim = 0", "ffn_dim"),
            ("dropout = 1.0", "dropout"),
            ("head = 2", "head"),
        ] {
            let t = table(params);
            let ctx = BuildContext::new(&fm, &t, Device::Cpu);
            let err = crate::test_util::build::<TransformerRec>(&ctx)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(&format!("'{key}'")), "{params}: {err}");
        }
    }

    #[test]
    fn trailing_padding_does_not_change_scores() {
        for params in ["user_embedding = false", "layers = 2"] {
            let m = model(params);
            let hist = [vec![3, 5, 7], vec![3, 5], vec![]];
            let padded: Vec<Vec<i64>> = hist
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.resize(conformance::HIST_LEN, 0);
                    r
                })
                .collect();
            let a = batch(&[6, 6, 6], &hist);
            let b = batch(&[6, 6, 6], &padded);
            assert_eq!(b.hist.size(), [3, 6]);
            let sa: Vec<f32> = Vec::try_from(m.score(&a).unwrap()).unwrap();
            let sb: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
            assert!(sa.iter().all(|v| v.is_finite()), "{sa:?}");
            assert!(close(&sa, &sb), "{sa:?} vs {sb:?}");
        }
    }

    #[test]
    fn pooling_is_target_aware_and_ignores_padding() {
        let m = model("");
        longtail_core::tch::no_grad(|| {
            let b = batch(&[6, 11, 6], &[vec![3, 4], vec![3, 4], vec![]]);
            let w = Vec::<Vec<f32>>::try_from(m.weights(&b)).unwrap();
            assert!((w[0][0] + w[0][1] - 1.0).abs() < 1e-5, "{w:?}");
            assert!(w[2].iter().all(|v| *v == 0.0), "empty history: {w:?}");
            assert!(!close(&w[0], &w[1]), "weights depend on the target: {w:?}");
        });
    }
}
