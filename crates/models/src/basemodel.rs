//! BaseModel: the Embedding & MLP baseline of the HIM paper
//! ("Hybrid Interest Modeling for Long-tailed Users", §4.1 Baselines): behaviors are aggregated
//! by sum pooling, concatenated with the user and target-item embeddings, and fed to an MLP
//! trained with cross-entropy. It uses no negative feedback and no group interest.

use crate::checks;
use longtail_core::layers::{masked_sum, Mlp};
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, ModelSpec, Result};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "basemodel";

/// Hyper-parameters (`[model.params]`). Defaults follow HIM §4.1: embedding 8, MLP [256, 128, 32].
/// Checked before any data is read: widths in `[1, 65536]`, `embedding_std` in `(0, 10]`,
/// `dropout` in `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct BaseModelParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01] (small, as in
    /// the TensorFlow implementations of the papers; libtorch's N(0, 1) overfits sparse ids).
    pub embedding_std: f64,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding (the paper's user profile features); off gives a pure
    /// behavior model that generalises to users unseen in training.
    pub user_embedding: bool,
}

impl Default for BaseModelParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
        }
    }
}

impl ModelParams for BaseModelParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        checks::tower(c, &self.hidden, self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

pub struct BaseModel {
    user: Option<nn::Embedding>,
    /// One table for target items and behaviors (the feature map says `hist` shares `item`).
    item: nn::Embedding,
    mlp: Mlp,
}

impl ModelSpec for BaseModel {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "Embedding & MLP with sum pooling over behaviors (HIM's BaseModel)";
    type Params = BaseModelParams;

    fn build(root: &nn::Path, p: BaseModelParams, ctx: &BuildContext) -> Result<Self> {
        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        fm.require("hist", NAME)?;
        let cfg = longtail_core::layers::id_embedding_config(p.embedding_std);
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(root / "user", users, p.embedding_dim, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, p.embedding_dim, cfg);
        let inputs = p.embedding_dim * if p.user_embedding { 3 } else { 2 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.dropout);
        Ok(Self { user, item, mlp })
    }
}

impl BaseModel {
    fn logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        let behaviors = masked_sum(&self.item.forward(&b.hist), &b.hist_mask);
        let mut parts = vec![behaviors, self.item.forward(&b.item)];
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        self.mlp
            .forward(&Tensor::cat(&parts, -1), train)
            .squeeze_dim(-1)
            .to_kind(Kind::Float)
    }
}

impl CtrLogits for BaseModel {
    fn ctr_logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.logits(b, train)
    }
}
