//! MeanPool: a tiny CTR model defined outside the longtail workspace, to show how a team adds
//! its own model as a crate. Paper: none (a teaching example: logistic regression on the
//! mean-pooled behavior embedding times the target item embedding).

use longtail_core::layers::masked_mean;
use longtail_core::losses::bce_with_logits;
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{
    params, BuildContext, Check, DeviceBatch, Losses, Model, ModelParams, Output, Registry, Result,
    Task,
};
use serde::{Deserialize, Serialize};

pub mod warmup;

pub const NAME: &str = "meanpool";

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub dim: i64,
}

impl Default for Params {
    fn default() -> Self {
        Self { dim: 16 }
    }
}

/// The registry calls these before any data is read (`longtail train` checks every experiment of
/// a config up front), and `params::parse` calls `validate` again when the model is built.
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
    vs: nn::VarStore,
    item: nn::Embedding,
    bias: Tensor,
}

impl MeanPool {
    pub fn build(ctx: &BuildContext) -> Result<Box<dyn Model>> {
        // Parsed and validated (`Params::validate`) before anything is allocated.
        let p: Params = params::parse(NAME, ctx.params)?;
        // Size from the feature map; a missing feature is a clear build-time error.
        let items = ctx.feature_map.require("item", NAME)?.vocab as i64;
        ctx.feature_map.require("hist", NAME)?;
        let vs = nn::VarStore::new(ctx.device);
        let root = vs.root();
        let item = nn::embedding(&root / "item", items, p.dim, Default::default());
        let bias = root.zeros("bias", &[1]);
        Ok(Box::new(Self { vs, item, bias }))
    }

    fn logits(&self, b: &DeviceBatch) -> Tensor {
        let user = masked_mean(&self.item.forward(&b.hist), &b.hist_mask);
        (user * self.item.forward(&b.item)).sum_dim_intlist(-1, false, Kind::Float) + &self.bias
    }
}

impl Model for MeanPool {
    fn name(&self) -> &str {
        NAME
    }
    fn task(&self) -> Task {
        Task::Ctr
    }
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }
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
    r.register_model::<Params>(
        NAME,
        "mean-pooled behaviors dot target item (outside-crate example)",
        MeanPool::build,
    )
}
