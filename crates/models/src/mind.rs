//! MIND: Multi-Interest Network with Dynamic Routing (Li et al., "Multi-Interest Network with
//! Dynamic Routing for Recommendation at Tmall", CIKM 2019), a multi-interest baseline of the MFN
//! paper, used here as a pointwise CTR model.
//!
//! Choices:
//! - **Embeddings**: one item table (dim `embedding_dim`, default 8, `padding_idx = 0`, N(0,
//!   `embedding_std`)) shared by the behaviors and the target, plus an optional user table
//!   (`user_embedding`, default true; the paper's user-profile features). Ids only, no item side
//!   features.
//! - **Behavior-to-interest (B2I) dynamic routing** (paper §4.2, Algorithm 1, shared code in
//!   [`crate::routing`]): one bilinear map `S` (`D × D`, no bias, N(0, 1) like ComiRec's
//!   routing weights) shared by every (behavior, interest) pair, predictions `S e_i`; coupling
//!   coefficients `w_ij = softmax_j(b_ij)` over the interests for each behavior, zeroed on
//!   padding; `routing_iters` rounds (default 3, the paper's); `u_j = squash(Σ_i w_ij S e_i)`;
//!   agreement update `b_ij += u_j · S e_i` between rounds.
//! - **Initial routing logits**: the paper draws `b_ij` from N(0, 1) ("initialize randomly"); a
//!   fresh draw per forward pass would make scores random, so they are drawn **once at build
//!   time** (from the seeded global generator) into a non-trainable variable `routing_logits`
//!   `[K, max_len]` (`max_len` = the feature map's `hist` length). It is saved in checkpoints, so
//!   a reloaded model scores identically; a batch of history length `L` uses its first `L`
//!   columns (positions are oldest first, so a behavior's logits do not depend on how much
//!   padding follows it). Histories longer than `max_len` are a caller error (panic).
//! - **Gradient through routing**: the paper does not stop gradients, so by default they flow
//!   through every round (`stop_gradient = false`); `stop_gradient = true` detaches the
//!   predictions in all rounds but the last, as ComiRec's re-implementation of MIND does.
//! - **Fixed K**: `interests` (default 4) capsules for every user. The paper's adaptive
//!   `K'_u = max(1, min(K, log2 |I_u|))` is not used (optional in the paper's ablation; a fixed
//!   K keeps the tensor shapes static); empty and padded behaviors get zero coupling instead.
//! - **Label-aware attention** (paper §4.3) against the target item `e_t`:
//!   `v_u = Σ_k softmax_k((V_k · e_t)^p) V_k` with `pow_p` (default 2, the paper's best; a
//!   non-negative integer so the power of a negative score is defined; 0 = mean of the
//!   capsules). The paper uses it at training time only and serves the K capsules for
//!   retrieval; as a CTR model the target is always known, so it is used for scoring too.
//! - **Output**: the paper's per-capsule ReLU layers over `[capsule, user profile]` are replaced
//!   by the CTR head every baseline shares (as in DIN): `[user?, v_u, e_t]` → `layers::Mlp`
//!   (hidden `hidden`, default `[256, 128, 32]`, ReLU, `dropout` default 0.0) → one logit,
//!   trained with the weighted BCE `"ctr"` term instead of the paper's sampled softmax;
//!   `score = σ(logit)`. An empty history gives zero capsules and `v_u = 0` (finite scores).

use crate::{checks, routing};
use longtail_core::layers::Mlp;
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, ModelSpec, Result};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "mind";

/// Hyper-parameters (`[model.params]`). Defaults: embedding 8 and MLP [256, 128, 32] (as the
/// other baselines), K = 4 interests, 3 routing rounds and p = 2 (MIND paper).
/// Checked before any data is read: widths (`embedding_dim`, `hidden`) in `[1, 65536]`,
/// `interests` in `[1, 256]`, `routing_iters` in `[1, 100]`, `pow_p` in `[0, 8]`,
/// `embedding_std` in `(0, 10]`, `dropout` in `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct MindParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01].
    pub embedding_std: f64,
    /// Number of interest capsules K.
    pub interests: i64,
    /// Dynamic routing rounds.
    pub routing_iters: i64,
    /// Detach the routing predictions in every round but the last (ComiRec's code) [false].
    pub stop_gradient: bool,
    /// Exponent p of the label-aware attention (non-negative integer).
    pub pow_p: i64,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for MindParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            interests: 4,
            routing_iters: 3,
            stop_gradient: false,
            pow_p: 2,
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
        }
    }
}

/// Upper bound of `pow_p`: `s^p` of a float32 score overflows for |s| above `3.4e38^(1/p)`
/// (about 7e4 at p = 8), and the paper's best is 2.
pub const MAX_POW_P: i64 = 8;

impl ModelParams for MindParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        checks::interests(c, self.interests)?;
        c.int(
            "routing_iters",
            self.routing_iters,
            1,
            checks::MAX_ROUTING_ITERS,
        )?;
        c.int("pow_p", self.pow_p, 0, MAX_POW_P)?;
        checks::tower(c, &self.hidden, self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

pub struct Mind {
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    /// The shared bilinear map `S` `[D, D]`.
    bilinear: Tensor,
    /// Fixed initial routing logits `[K, max_len]` (non-trainable, drawn at build time).
    routing_logits: Tensor,
    max_len: i64,
    iters: i64,
    stop_gradient: bool,
    pow_p: i64,
    mlp: Mlp,
}

impl ModelSpec for Mind {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "MIND: B2I dynamic routing (shared bilinear map) into K interests, label-aware attention \
         to the target + MLP";
    type Params = MindParams;

    fn build(root: &nn::Path, p: MindParams, ctx: &BuildContext) -> Result<Self> {
        let d = p.embedding_dim;
        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        let max_len = checks::hist_max_len(
            fm.require("hist", NAME)?,
            NAME,
            "routing logits are per position",
        )?;
        let cfg = longtail_core::layers::id_embedding_config(p.embedding_std);
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(root / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, d, cfg);
        let bilinear = root.var(
            "bilinear",
            &[d, d],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        let mut routing_logits = root.zeros_no_train("routing_logits", &[p.interests, max_len]);
        longtail_core::tch::no_grad(|| {
            let draw = Tensor::randn([p.interests, max_len], (Kind::Float, ctx.device));
            routing_logits.copy_(&draw);
        });
        let inputs = d * if p.user_embedding { 3 } else { 2 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.dropout);
        Ok(Self {
            user,
            item,
            bilinear,
            routing_logits,
            max_len,
            iters: p.routing_iters,
            stop_gradient: p.stop_gradient,
            pow_p: p.pow_p,
            mlp,
        })
    }
}

impl Mind {
    /// The interest capsules `[B, K, D]` (B2I dynamic routing over the history).
    pub fn interests(&self, b: &DeviceBatch) -> Tensor {
        let l = b.hist.size()[1];
        assert!(
            l <= self.max_len,
            "{NAME}: history length {l} exceeds the feature map's hist max_len {}",
            self.max_len
        );
        let hist = self.item.forward(&b.hist); // [B, L, D]
        let pred = hist.matmul(&self.bilinear.tr()).unsqueeze(1); // S e_i, [B, 1, L, D]
        let init = self.routing_logits.narrow(1, 0, l); // [K, L]
        routing::dynamic_routing(&pred, &b.hist_mask, &init, self.iters, self.stop_gradient)
    }

    /// Label-aware attention weights `softmax_k((V_k · e_t)^p)` `[B, K]` over `capsules`.
    fn label_weights(&self, capsules: &Tensor, target: &Tensor) -> Tensor {
        let s = capsules.matmul(&target.unsqueeze(-1)).squeeze_dim(-1); // [B, K]
        s.pow_tensor_scalar(self.pow_p).softmax(-1, Kind::Float)
    }

    /// The label-aware attention weights `[B, K]` of the batch's targets over its capsules.
    pub fn attention(&self, b: &DeviceBatch) -> Tensor {
        self.label_weights(&self.interests(b), &self.item.forward(&b.item))
    }

    /// The user interest vector `v_u = Σ_k a_k V_k` `[B, D]` for the batch's targets.
    pub fn pooled(&self, b: &DeviceBatch) -> Tensor {
        let capsules = self.interests(b);
        let a = self.label_weights(&capsules, &self.item.forward(&b.item));
        (capsules * a.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float)
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

impl CtrLogits for Mind {
    fn ctr_logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.logits(b, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch, close, rows, table};
    use longtail_core::conformance;
    use longtail_core::tch::nn::OptimizerConfig;
    use longtail_core::tch::Device;
    use longtail_core::Model;

    fn model(params: &str) -> crate::test_util::Built<Mind> {
        let fm = conformance::tiny_feature_map();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        longtail_core::seed::seed_everything(5);
        crate::test_util::build::<Mind>(&ctx).unwrap()
    }

    #[test]
    fn conformance() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME).unwrap();
        conformance::check_with(&reg, NAME, &table("interests = 1")).unwrap();
        conformance::check_with(&reg, NAME, &table("routing_iters = 1\npow_p = 0")).unwrap();
        conformance::check_with(
            &reg,
            NAME,
            &table("stop_gradient = true\nuser_embedding = false"),
        )
        .unwrap();
    }

    #[test]
    fn bad_params_are_rejected() {
        let fm = conformance::tiny_feature_map();
        for (params, key) in [
            ("interests = 0", "interests"),
            ("routing_iters = 0", "routing_iters"),
            ("embedding_dim = 0", "embedding_dim"),
            ("hidden = [8, 0]", "hidden"),
            ("pow_p = -1", "pow_p"),
            ("dropout = 1.0", "dropout"),
            ("capsules = 3", "capsules"),
        ] {
            let t = table(params);
            let ctx = BuildContext::new(&fm, &t, Device::Cpu);
            let err = crate::test_util::build::<Mind>(&ctx)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn routing_logits_are_fixed_and_saved() {
        let m = model("");
        let names: Vec<String> = m.vs.variables().into_keys().collect();
        assert!(names.iter().any(|n| n == "routing_logits"), "{names:?}");
        assert!(!m.routing_logits.requires_grad());
        assert_eq!(m.routing_logits.size(), [4, conformance::HIST_LEN as i64]);
        // Drawn from N(0, 1), not left at zero; the trainable list excludes them.
        assert!(m.routing_logits.abs().sum(Kind::Float).double_value(&[]) > 0.1);
        assert_eq!(m.vs.trainable_variables().len() + 1, m.vs.variables().len());
        // Scoring gives the same scores twice, and neither scoring nor an optimiser step
        // changes the logits (compared with a copy: tests share libtorch's global RNG across
        // threads, so a second build need not draw the same values).
        let before = m.routing_logits.copy();
        let b = batch(&[6, 7], &[vec![3, 5], vec![4]]);
        let s1: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
        let s2: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
        assert_eq!(s1, s2);
        let mut opt = nn::Adam::default().build(&m.vs, 0.1).unwrap();
        let out = m.forward(&b, true).unwrap();
        opt.backward_step(&m.losses(&out, &b).unwrap().0[0].1);
        assert!(m.routing_logits.equal(&before));
    }

    #[test]
    fn label_aware_attention_matches_formula() {
        // Unit-scale embeddings so the capsules and target scores are far from zero.
        let m = model("embedding_std = 1.0");
        longtail_core::tch::no_grad(|| {
            let b = batch(&[6, 11], &[vec![3, 5, 7], vec![3, 5, 7]]);
            let caps = m.interests(&b);
            assert_eq!(caps.size(), [2, 4, 8]);
            let caps = rows(&caps.view([2, 32]));
            let t = rows(&m.item.forward(&b.item));
            let a = rows(&m.attention(&b));
            let pooled = rows(&m.pooled(&b));
            for r in 0..2 {
                let dots: Vec<f32> = (0..4)
                    .map(|k| (0..8).map(|d| caps[r][k * 8 + d] * t[r][d]).sum())
                    .collect();
                let e: Vec<f32> = dots.iter().map(|x| (x * x).exp()).collect();
                let z: f32 = e.iter().sum();
                let want: Vec<f32> = e.iter().map(|x| x / z).collect();
                assert!(close(&a[r], &want), "{:?} vs {want:?}", a[r]);
                let v: Vec<f32> = (0..8)
                    .map(|d| (0..4).map(|k| want[k] * caps[r][k * 8 + d]).sum())
                    .collect();
                assert!(close(&pooled[r], &v), "{:?} vs {v:?}", pooled[r]);
            }
            // Same history, different targets: same capsules, target-dependent pooling.
            assert!(!close(&pooled[0], &pooled[1]));
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

    #[test]
    fn empty_history_gives_finite_scores() {
        let m = model("");
        let b = batch(&[6, 7], &[vec![], vec![]]);
        let s: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
        assert!(s.iter().all(|x| x.is_finite()), "{s:?}");
        longtail_core::tch::no_grad(|| {
            let p = rows(&m.pooled(&b));
            assert!(p.iter().flatten().all(|x| *x == 0.0), "{p:?}");
        });
        // Gradients stay finite too.
        let loss = m.forward(&b, true).unwrap().logits.sum(Kind::Float);
        loss.backward();
        for t in m.vs.trainable_variables() {
            let g = t.grad();
            if g.defined() {
                assert!(g.isfinite().all().int64_value(&[]) == 1, "non-finite grad");
            }
        }
    }
}
