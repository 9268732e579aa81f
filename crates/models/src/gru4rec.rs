//! GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks",
//! ICLR 2016), one of the HIM paper's baselines (§4.1), used here as a pointwise CTR scorer.
//!
//! Choices:
//! - **Embeddings**: one item table (dim `embedding_dim`, default 8, `padding_idx = 0`) shared by
//!   the behaviors and the target item (the feature map's `hist` shares `item`), plus an optional
//!   user table (`user_embedding`, default true; off gives a pure sequence model).
//! - **Sequence encoder**: a one-layer GRU (`nn::gru`, batch-first, hidden `hidden_size`, unset =
//!   `embedding_dim`) over the history embeddings `e_1..e_L`, oldest first, from a zero state,
//!   as in the paper's embedding-input variant. Histories are left-aligned and padded with id 0
//!   *after* the last real item, so the output at step `t < len` never sees padding; the user's
//!   state is the output at step `hist_len − 1` (gathered per row; `hist_len` clamped to `L`).
//!   A row with an empty history gets the zero state (the GRU's initial state), whatever the
//!   padding width `L` (including the `[B, 1]` all-zero history of a batch with no histories).
//! - **Scoring**: the paper scores all items from the final state with a ranking loss
//!   (BPR / TOP1) over session-parallel mini-batches. Here, as a CTR baseline on the same rows and
//!   loss as the others, `[user?, state, e_target]` → `layers::Mlp` (hidden `hidden`, default
//!   `[256, 128, 32]` as in HIM §4.1; ReLU; `dropout` default 0.0) → logit, trained with the
//!   weighted BCE `"ctr"` term; `score = σ(logit)`.

use crate::checks;
use longtail_core::layers::Mlp;
use longtail_core::tch::nn::{self, Module, RNN};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, ModelSpec, Result};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "gru4rec";

/// Hyper-parameters (`[model.params]`). Defaults follow HIM §4.1: embedding 8, MLP [256, 128, 32].
/// Checked before any data is read: widths (`embedding_dim`, `hidden_size`, `hidden`) in
/// `[1, 65536]`, `embedding_std` in `(0, 10]`, `dropout` in `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct Gru4RecParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01] (small, as in
    /// the TensorFlow implementations of the papers; libtorch's N(0, 1) overfits sparse ids).
    pub embedding_std: f64,
    /// Hidden size of the GRU; unset = `embedding_dim`.
    pub hidden_size: Option<i64>,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for Gru4RecParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            hidden_size: None,
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
        }
    }
}

impl ModelParams for Gru4RecParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        c.opt_dim("hidden_size", self.hidden_size)?;
        checks::tower(c, &self.hidden, self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

pub struct Gru4Rec {
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    gru: nn::GRU,
    mlp: Mlp,
}

impl ModelSpec for Gru4Rec {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "GRU4Rec: GRU over the history, last real state + target (+ user) -> MLP (CTR)";
    type Params = Gru4RecParams;

    fn build(root: &nn::Path, p: Gru4RecParams, ctx: &BuildContext) -> Result<Self> {
        let d = p.embedding_dim;
        let hidden_size = p.hidden_size.unwrap_or(d);
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
        let gru = nn::gru(root / "gru", d, hidden_size, Default::default());
        let inputs = hidden_size + d * if p.user_embedding { 2 } else { 1 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.dropout);
        Ok(Self {
            user,
            item,
            gru,
            mlp,
        })
    }
}

impl Gru4Rec {
    /// The GRU state after each row's last real behavior, `[B, H]`; zeros for empty histories.
    pub fn state(&self, b: &DeviceBatch) -> Tensor {
        let (out, _) = self.gru.seq(&self.item.forward(&b.hist));
        let (rows, l, h) = out.size3().expect("GRU output is [B, L, H]");
        let len = b.hist_len.clamp(0, l);
        let idx = (&len - 1)
            .clamp_min(0)
            .view([rows, 1, 1])
            .expand([rows, 1, h], false);
        let last = out.gather(1, &idx, false).squeeze_dim(1);
        let real = len.gt(0).to_kind(last.kind()).unsqueeze(-1);
        last * real
    }

    fn logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        let mut parts = vec![self.state(b), self.item.forward(&b.item)];
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        self.mlp
            .forward(&Tensor::cat(&parts, -1), train)
            .squeeze_dim(-1)
            .to_kind(Kind::Float)
    }
}

impl CtrLogits for Gru4Rec {
    fn ctr_logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.logits(b, train)
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

    fn model(params: &str) -> crate::test_util::Built<Gru4Rec> {
        let fm = conformance::tiny_feature_map();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        longtail_core::seed::seed_everything(3);
        crate::test_util::build::<Gru4Rec>(&ctx).unwrap()
    }

    fn batch(hist: &[Vec<i64>]) -> DeviceBatch {
        let n = hist.len();
        let h = HostBatch::from_dense(vec![1; n], vec![6; n], vec![1.0; n], hist).unwrap();
        DeviceBatch::from_host(&h, Device::Cpu).unwrap()
    }

    fn vec2(t: &Tensor) -> Vec<Vec<f32>> {
        Vec::<Vec<f32>>::try_from(t).unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn conformance() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME).unwrap();
        conformance::check_with(&reg, NAME, &table("user_embedding = false")).unwrap();
        conformance::check_with(&reg, NAME, &table("hidden_size = 5\nhidden = [16]")).unwrap();
    }

    #[test]
    fn bad_size_is_rejected() {
        let fm = conformance::tiny_feature_map();
        let t = table("hidden_size = 0");
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        let err = crate::test_util::build::<Gru4Rec>(&ctx)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("hidden_size"), "{err}");
    }

    #[test]
    fn state_is_taken_after_the_last_real_item() {
        let m = model("");
        longtail_core::tch::no_grad(|| {
            let b = batch(&[vec![3, 5, 7], vec![3, 5], vec![]]);
            let s = vec2(&m.state(&b));
            // Row 1's state is the GRU run over exactly [3, 5].
            let (out, _) = m
                .gru
                .seq(&m.item.forward(&Tensor::from_slice(&[3i64, 5]).view([1, 2])));
            let want = vec2(&out.select(1, 1));
            assert!(close(&s[1], &want[0]), "{:?} vs {:?}", s[1], want[0]);
            // Row 0 went one step further, so its state differs; row 2 is the zero state.
            assert!(!close(&s[0], &s[1]), "{s:?}");
            assert!(s[2].iter().all(|v| *v == 0.0), "{s:?}");
            let sc: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
            assert_ne!(sc[0], sc[1], "same prefix, different lengths: {sc:?}");
        });
    }

    #[test]
    fn trailing_padding_does_not_change_scores() {
        let m = model("");
        let rows = [vec![3, 5, 7], vec![3, 5], vec![9], vec![]];
        let padded: Vec<Vec<i64>> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.resize(6, 0);
                r
            })
            .collect();
        let a = batch(&rows);
        let b = batch(&padded);
        assert_eq!(a.hist.size(), [4, 3]);
        assert_eq!(b.hist.size(), [4, 6]);
        let sa: Vec<f32> = Vec::try_from(m.score(&a).unwrap()).unwrap();
        let sb: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
        assert!(close(&sa, &sb), "{sa:?} vs {sb:?}");
        // A batch whose histories are all empty has shape [B, 1] of zeros: zero state again.
        let e = batch(&[vec![], vec![]]);
        assert_eq!(e.hist.size(), [2, 1]);
        let se: Vec<f32> = Vec::try_from(m.score(&e).unwrap()).unwrap();
        assert!(close(&se, &[sa[3], sa[3]]), "{se:?} vs {}", sa[3]);
    }
}
