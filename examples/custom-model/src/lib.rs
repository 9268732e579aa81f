//! MeanPool: a tiny CTR model defined outside the longtail workspace, to show how a team adds
//! its own model as a crate. Paper: none (a teaching example: logistic regression on the
//! mean-pooled behavior embedding times the target item embedding).

use longtail_core::layers::masked_mean;
use longtail_core::losses::bce_with_logits;
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{
    BuildContext, Check, DeviceBatch, Losses, Model, ModelParams, ModelSpec, Output, Registry,
    Result,
};
use serde::{Deserialize, Serialize};

pub mod warmup;

pub const NAME: &str = "meanpool";

#[derive(Debug, Deserialize, Serialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Width of the item embeddings (the user vector is their masked mean).
    pub dim: i64,
}

impl Default for Params {
    fn default() -> Self {
        Self { dim: 16 }
    }
}

/// The registry calls these before any data is read (`longtail train` checks every experiment of
/// a config up front), and again when it builds the model.
impl ModelParams for Params {
    /// Range checks of every value, each error naming its key: `dim = -3` is a one-line config
    /// error instead of a libtorch panic when the embedding is allocated, and `dim = 0` (a model
    /// that cannot learn) is refused too.
    fn validate(&self, c: &Check) -> Result<()> {
        c.dim("dim", self.dim)
    }
    /// The names `losses` returns: the terms `[train] loss_weights` may weight.
    fn loss_terms(&self) -> Vec<String> {
        vec!["ctr".to_string()]
    }
}

pub struct MeanPool {
    item: nn::Embedding,
    bias: Tensor,
}

/// How the registry builds it: `registry.add::<MeanPool>()`. The registry parses and validates
/// `Params` before anything is allocated, creates the variable store (the engine owns it: it
/// saves, restores and optimises it) and calls `build` under its root path.
impl ModelSpec for MeanPool {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "mean-pooled behaviors dot target item (outside-crate example)";
    type Params = Params;

    fn build(root: &nn::Path, p: Params, ctx: &BuildContext) -> Result<Self> {
        // Size from the feature map; a missing feature is a clear build-time error.
        let items = ctx.feature_map.require("item", NAME)?.vocab as i64;
        ctx.feature_map.require("hist", NAME)?;
        // Variables are named by path: the checkpoint holds `item.weight` and `bias`.
        let item = nn::embedding(root / "item", items, p.dim, Default::default());
        let bias = root.zeros("bias", &[1]);
        Ok(Self { item, bias })
    }
}

impl MeanPool {
    fn logits(&self, b: &DeviceBatch) -> Tensor {
        let user = masked_mean(&self.item.forward(&b.hist), &b.hist_mask);
        (user * self.item.forward(&b.item)).sum_dim_intlist(-1, false, Kind::Float) + &self.bias
    }
}

impl Model for MeanPool {
    fn forward(&self, b: &DeviceBatch, _train: bool) -> Result<Output> {
        Ok(Output::new(self.logits(b)))
    }
    fn losses(&self, out: &Output, b: &DeviceBatch) -> Result<Losses> {
        Ok(Losses::one("ctr", bce_with_logits(&out.logits, b)))
    }
    fn score(&self, b: &DeviceBatch) -> Result<Tensor> {
        Ok(self.logits(b).sigmoid())
    }
}

/// Adds `meanpool` to a registry.
pub fn register(r: &mut Registry) -> Result<()> {
    r.add::<MeanPool>()
}
