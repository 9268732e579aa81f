//! Two deliberately small models that exercise both halves of the `Model` contract.

use longtail_core::layers::masked_mean;
use longtail_core::losses::{bce_with_logits, in_batch_softmax};
use longtail_core::tch::{nn, Kind, Tensor};
use longtail_core::{
    params, BuildContext, DeviceBatch, Losses, Model, Output, Registry, Result, Task,
};
use serde::Deserialize;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
struct Dims {
    dim: i64,
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
    vs: nn::VarStore,
    user: nn::Embedding,
    item: nn::Embedding,
    frozen: bool,
}

impl TinyCtr {
    fn build(ctx: &BuildContext, frozen: bool) -> Result<Box<dyn Model>> {
        let name = if frozen { "frozen" } else { "tiny-ctr" };
        let p: Dims = params::parse(name, ctx.params)?;
        let fm = ctx.feature_map;
        let items = fm.require("item", name)?.vocab as i64;
        let users = fm.require("user", name)?.vocab as i64;
        let vs = nn::VarStore::new(ctx.device);
        let root = vs.root();
        let user = nn::embedding(&root / "user", users, p.dim, Default::default());
        let item = nn::embedding(&root / "item", items, p.dim, Default::default());
        Ok(Box::new(Self {
            vs,
            user,
            item,
            frozen,
        }))
    }
    fn logits(&self, b: &DeviceBatch) -> Tensor {
        use nn::Module;
        let h = masked_mean(&self.item.forward(&b.hist), &b.hist_mask) + self.user.forward(&b.user);
        (h * self.item.forward(&b.item)).sum_dim_intlist(-1, false, Kind::Float)
    }
}

impl Model for TinyCtr {
    fn name(&self) -> &str {
        if self.frozen {
            "frozen"
        } else {
            "tiny-ctr"
        }
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
    vs: nn::VarStore,
    item: nn::Embedding,
    queries: Tensor,
}

impl TinyTwoTower {
    fn build(ctx: &BuildContext) -> Result<Box<dyn Model>> {
        let p: Dims = params::parse("tiny-twotower", ctx.params)?;
        let items = ctx.feature_map.require("item", "tiny-twotower")?.vocab as i64;
        let vs = nn::VarStore::new(ctx.device);
        let root = vs.root();
        let item = nn::embedding(&root / "item", items, p.dim, Default::default());
        let queries = root.randn("queries", &[p.interests, p.dim], 0.0, 0.1);
        Ok(Box::new(Self { vs, item, queries }))
    }
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
    fn name(&self) -> &str {
        "tiny-twotower"
    }
    fn task(&self) -> Task {
        Task::Retrieval
    }
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }
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
    fn user_repr(&self, b: &DeviceBatch) -> Result<Option<Tensor>> {
        Ok(Some(self.users(b)))
    }
    fn item_repr(&self, items: &Tensor) -> Result<Option<Tensor>> {
        use nn::Module;
        Ok(Some(self.item.forward(items)))
    }
}

pub fn register(r: &mut Registry) -> Result<()> {
    r.register("tiny-ctr", "test CTR model", |ctx| {
        TinyCtr::build(ctx, false)
    })?;
    r.register("tiny-twotower", "test retrieval model", TinyTwoTower::build)
}

pub fn register_frozen(r: &mut Registry) -> Result<()> {
    r.register("frozen", "a model whose loss cannot fall", |ctx| {
        TinyCtr::build(ctx, true)
    })
}
