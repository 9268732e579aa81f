//! Two deliberately small models that exercise both halves of the `Model` contract.

use longtail_core::layers::masked_mean;
use longtail_core::losses::{bce_with_logits, in_batch_softmax};
use longtail_core::tch::{nn, Kind, Tensor};
use longtail_core::{
    BuildContext, DeviceBatch, Losses, Model, ModelSpec, Output, Registry, Result, Towers,
};
use serde::Deserialize;

#[derive(Debug, Deserialize, serde::Serialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
struct Dims {
    /// Embedding width.
    dim: i64,
    /// Interest vectors per user.
    interests: i64,
}
impl longtail_core::ModelParams for Dims {
    fn validate(&self, c: &longtail_core::Check) -> Result<()> {
        c.dim("dim", self.dim)?;
        c.int("interests", self.interests, 1, 64)
    }
    fn loss_terms(&self) -> Vec<String> {
        // Both tiny models have one term; the test registry never asks for it.
        Vec::new()
    }
}
impl Default for Dims {
    fn default() -> Self {
        Self {
            dim: 8,
            interests: 2,
        }
    }
}

/// CTR: logit = <mean(history) + user, item>.
struct TinyCtr {
    user: nn::Embedding,
    item: nn::Embedding,
    frozen: bool,
}

impl TinyCtr {
    fn build(root: &nn::Path, p: Dims, ctx: &BuildContext, frozen: bool) -> Result<Box<dyn Model>> {
        let name = if frozen { "frozen" } else { "tiny-ctr" };
        let fm = ctx.feature_map;
        let items = fm.require("item", name)?.vocab as i64;
        let users = fm.require("user", name)?.vocab as i64;
        let user = nn::embedding(root / "user", users, p.dim, Default::default());
        let item = nn::embedding(root / "item", items, p.dim, Default::default());
        Ok(Box::new(Self { user, item, frozen }))
    }
    fn logits(&self, b: &DeviceBatch) -> Tensor {
        use nn::Module;
        let h = masked_mean(&self.item.forward(&b.hist), &b.hist_mask) + self.user.forward(&b.user);
        (h * self.item.forward(&b.item)).sum_dim_intlist(-1, false, Kind::Float)
    }
}

impl Model for TinyCtr {
    fn forward(&self, b: &DeviceBatch, _train: bool) -> Result<Output> {
        let l = self.logits(b);
        // The frozen variant cuts the graph: its loss can never fall, which conformance must catch.
        Ok(Output::new(if self.frozen {
            l.detach() + Tensor::zeros_like(&l).set_requires_grad(true)
        } else {
            l
        }))
    }
    fn losses(&self, out: &Output, b: &DeviceBatch) -> Result<Losses> {
        Ok(Losses::one("ctr", bce_with_logits(&out.logits, b)))
    }
    fn score(&self, b: &DeviceBatch) -> Result<Tensor> {
        Ok(self.logits(b).sigmoid())
    }
}

/// Retrieval: K learned queries attend over the history; items are embeddings.
struct TinyTwoTower {
    item: nn::Embedding,
    queries: Tensor,
}

impl ModelSpec for TinyTwoTower {
    const NAME: &'static str = "tiny-twotower";
    const DESCRIPTION: &'static str = "test retrieval model";
    type Params = Dims;
    fn build(root: &nn::Path, p: Dims, ctx: &BuildContext) -> Result<Self> {
        let items = ctx.feature_map.require("item", Self::NAME)?.vocab as i64;
        let item = nn::embedding(root / "item", items, p.dim, Default::default());
        let queries = root.randn("queries", &[p.interests, p.dim], 0.0, 0.1);
        Ok(Self { item, queries })
    }
}

impl TinyTwoTower {
    fn users(&self, b: &DeviceBatch) -> Tensor {
        use nn::Module;
        let h = self.item.forward(&b.hist); // [B, L, D]
        let att = h.matmul(&self.queries.transpose(0, 1)); // [B, L, K]
        let att = longtail_core::layers::masked_softmax(
            &att.transpose(1, 2),
            &b.hist_mask.unsqueeze(1),
            -1,
        );
        att.matmul(&h) // [B, K, D]
    }
    fn pair_scores(u: &Tensor, i: &Tensor) -> Tensor {
        // [B, K, D] x [N, D] -> max over interests -> [B, N]
        u.matmul(&i.transpose(0, 1).unsqueeze(0))
            .amax(&[1i64][..], false)
    }
}

impl Model for TinyTwoTower {
    fn forward(&self, b: &DeviceBatch, _train: bool) -> Result<Output> {
        use nn::Module;
        Ok(Output::new(Self::pair_scores(
            &self.users(b),
            &self.item.forward(&b.item),
        )))
    }
    fn losses(&self, out: &Output, b: &DeviceBatch) -> Result<Losses> {
        Ok(Losses::one(
            "softmax",
            in_batch_softmax(&out.logits, b, true),
        ))
    }
    fn score(&self, b: &DeviceBatch) -> Result<Tensor> {
        use nn::Module;
        let u = self.users(b);
        let i = self.item.forward(&b.item);
        Ok((u * i.unsqueeze(1))
            .sum_dim_intlist(-1, false, Kind::Float)
            .amax(&[1i64][..], false))
    }
    fn as_towers(&self) -> Option<&dyn Towers> {
        Some(self)
    }
}

impl Towers for TinyTwoTower {
    fn user_repr(&self, b: &DeviceBatch) -> Result<Tensor> {
        Ok(self.users(b))
    }
    fn item_repr(&self, items: &Tensor) -> Result<Tensor> {
        use nn::Module;
        Ok(self.item.forward(items))
    }
}

pub fn register(r: &mut Registry) -> Result<()> {
    r.register_model::<Dims>("tiny-ctr", "test CTR model", |root, p, ctx| {
        TinyCtr::build(root, p, ctx, false)
    })?;
    r.add::<TinyTwoTower>()
}

pub fn register_frozen(r: &mut Registry) -> Result<()> {
    r.register_model::<Dims>(
        "frozen",
        "a model whose loss cannot fall",
        |root, p, ctx| TinyCtr::build(root, p, ctx, true),
    )
}
