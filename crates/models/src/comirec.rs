//! ComiRec (Cen et al., "Controllable Multi-Interest Framework for Recommendation", KDD 2020),
//! two multi-interest baselines of the MFN paper, used here as pointwise CTR models:
//! `comirec-dr` (dynamic routing) and `comirec-sa` (self-attentive extraction).
//!
//! Choices:
//! - **Embeddings**: one item table (dim `embedding_dim`, default 8, `padding_idx = 0`, N(0,
//!   `embedding_std`)) shared by the behaviors and the target, plus an optional user table
//!   (`user_embedding`, default true). Ids only, no item side features. `interests` (K, default
//!   4) interest vectors per user, fixed for every user (ComiRec has no adaptive K).
//! - **ComiRec-DR** (paper §3.2, shared code in [`crate::routing`]): a separate transformation
//!   per (behavior position i, interest j), `ê_{j|i} = W_ij e_i` with `W` `[max_len, K, D, D]`
//!   (the authors' default "bilinear type 2"; `max_len` = the feature map's `hist` length,
//!   positions oldest first, so a behavior's `W` does not depend on the padding after it),
//!   initialised N(0, 1) as in the authors' code; routing logits start at 0 (deterministic, so
//!   nothing to store); coupling `softmax_j(b_ij)` over the interests, zeroed on padding;
//!   `routing_iters` rounds (default 3), squash, agreement update `b_ij += v_j · ê_{j|i}`.
//!   **Stop-gradient** (`stop_gradient`, default true): the paper's text does not say, the
//!   authors' code routes `stop_gradient(ê)` in every round but the last, so the routing logits
//!   are constants for back-propagation and the gradient reaches `W` and the embeddings through
//!   the last round's weighted sum only; we follow the code (`false` back-propagates through all
//!   rounds).
//! - **ComiRec-SA** (paper §3.3): `A = softmax(W2ᵀ tanh(W1 (H + P)ᵀ))` over the positions, with
//!   learned position embeddings `P` `[max_len, D]` (N(0, `embedding_std`), the id scale),
//!   `W1` `[attention_hidden, D]` (default `4 D`, the paper's `d_a`; with a bias, as the
//!   authors' dense layer) and `W2` `[K, attention_hidden]` (no bias: a per-interest constant
//!   cancels in the softmax over positions); padding is masked out of the softmax (an empty
//!   history gets all-zero weights). `V_u = A H` pools the item embeddings *without* the
//!   position embeddings: the paper only says positions are added to the input, the authors'
//!   code feeds `H + P` to the attention and pools `H`, and we follow the code.
//! - **Aggregation for CTR** (`aggregation`): the paper trains by picking the interest with the
//!   largest inner product with the target, `v_u = V_{argmax_k V_k · e_t}` (`"argmax"`, the
//!   default: a hard one-hot choice, so the gradient flows through the selected interest only and
//!   not through the choice); `"softmax"` uses `v_u = Σ_k softmax_k(V_k · e_t) V_k` (soft,
//!   differentiable in the scores). The paper's retrieval-time controllable aggregation (λ
//!   diversity) does not apply to pointwise CTR and is not implemented.
//! - **Output**: the CTR head every baseline shares (as in DIN): `[user?, v_u, e_t]` →
//!   `layers::Mlp` (hidden `hidden`, default `[256, 128, 32]`, ReLU, `dropout` default 0.0) →
//!   one logit, trained with the weighted BCE `"ctr"` term instead of the paper's sampled
//!   softmax; `score = σ(logit)`. Histories longer than `max_len` are a caller error (panic).

use crate::{checks, routing};
use longtail_core::layers::{self, Mlp};
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{BuildContext, Check, CtrLogits, DeviceBatch, ModelParams, Registry, Result};
use serde::{Deserialize, Serialize};

pub const NAME_DR: &str = "comirec-dr";
pub const NAME_SA: &str = "comirec-sa";

/// ComiRec-DR hyper-parameters (`[model.params]`). Defaults: embedding 8 and MLP [256, 128, 32]
/// (as the other baselines), K = 4, 3 routing rounds (ComiRec paper).
/// Checked before any data is read: widths (`embedding_dim`, `hidden`) in `[1, 65536]`,
/// `interests` in `[1, 256]`, `routing_iters` in `[1, 100]`, `embedding_std` in `(0, 10]`,
/// `dropout` in `[0, 1)`, `aggregation` one of `argmax`, `softmax`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct ComiRecDrParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01].
    pub embedding_std: f64,
    /// Number of interests K.
    pub interests: i64,
    /// Dynamic routing rounds.
    pub routing_iters: i64,
    /// Detach the routing predictions in every round but the last (the authors' code) [true].
    pub stop_gradient: bool,
    /// How the K interests meet the target: `"argmax"` (paper) or `"softmax"`.
    pub aggregation: Aggregation,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for ComiRecDrParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            interests: 4,
            routing_iters: 3,
            stop_gradient: true,
            aggregation: Aggregation::Argmax,
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
        }
    }
}

/// ComiRec-SA hyper-parameters (`[model.params]`). Checked before any data is read: widths
/// (`embedding_dim`, `attention_hidden`, `hidden`) in `[1, 65536]`, `interests` in `[1, 256]`,
/// `embedding_std` in `(0, 10]`, `dropout` in `[0, 1)`, `aggregation` one of `argmax`, `softmax`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct ComiRecSaParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id and position embeddings [0.01].
    pub embedding_std: f64,
    /// Number of interests K (attention heads).
    pub interests: i64,
    /// Hidden size `d_a` of the self-attention; unset = `4 * embedding_dim` (the paper's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention_hidden: Option<i64>,
    /// How the K interests meet the target: `"argmax"` (paper) or `"softmax"`.
    pub aggregation: Aggregation,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for ComiRecSaParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            interests: 4,
            attention_hidden: None,
            aggregation: Aggregation::Argmax,
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
        }
    }
}

/// How the K interest vectors are combined against the target item (`aggregation`: `"argmax"`
/// or `"softmax"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The interest with the largest inner product with the target (hard, one-hot).
    Argmax,
    /// `softmax_k(V_k · e_t)`-weighted sum of the interests.
    Softmax,
}

/// The most values ComiRec-DR's routing weights `[max_len, K, D, D]` may hold (2^30 floats,
/// 4 GiB).
pub const MAX_ROUTING_WEIGHTS: i64 = 1 << 30;

/// The fields both variants share, checked by [`Common::validate`].
struct Common<'a> {
    model: &'static str,
    embedding_dim: i64,
    embedding_std: f64,
    interests: i64,
    aggregation: Aggregation,
    hidden: &'a [i64],
    dropout: f64,
    user_embedding: bool,
}

impl Common<'_> {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        checks::interests(c, self.interests)?;
        checks::tower(c, self.hidden, self.dropout)
    }
}

impl ComiRecDrParams {
    fn common(&self) -> Common<'_> {
        Common {
            model: NAME_DR,
            embedding_dim: self.embedding_dim,
            embedding_std: self.embedding_std,
            interests: self.interests,
            aggregation: self.aggregation,
            hidden: &self.hidden,
            dropout: self.dropout,
            user_embedding: self.user_embedding,
        }
    }
}

impl ModelParams for ComiRecDrParams {
    fn validate(&self, c: &Check) -> Result<()> {
        self.common().validate(c)?;
        c.int(
            "routing_iters",
            self.routing_iters,
            1,
            checks::MAX_ROUTING_ITERS,
        )
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

impl ComiRecSaParams {
    fn common(&self) -> Common<'_> {
        Common {
            model: NAME_SA,
            embedding_dim: self.embedding_dim,
            embedding_std: self.embedding_std,
            interests: self.interests,
            aggregation: self.aggregation,
            hidden: &self.hidden,
            dropout: self.dropout,
            user_embedding: self.user_embedding,
        }
    }
}

impl ModelParams for ComiRecSaParams {
    fn validate(&self, c: &Check) -> Result<()> {
        self.common().validate(c)?;
        c.opt_dim("attention_hidden", self.attention_hidden)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

/// The interest extractor of each variant.
#[derive(Debug)]
enum Extractor {
    /// Dynamic routing: per-(position, interest) maps `W` `[max_len, K, D, D]`.
    Routing {
        weights: Tensor,
        iters: i64,
        stop_gradient: bool,
    },
    /// Self-attention: `W1` (with bias), `W2` (no bias), positions `[max_len, D]`.
    SelfAttentive {
        w1: nn::Linear,
        w2: nn::Linear,
        positions: Tensor,
    },
}

pub struct ComiRec {
    name: &'static str,
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    extractor: Extractor,
    interests: i64,
    max_len: i64,
    aggregation: Aggregation,
    mlp: Mlp,
}

impl ComiRec {
    /// Builds the embeddings and the head from validated shared params; `extractor` adds the
    /// variant's own parameters under the root path.
    fn with_extractor(
        root: &nn::Path,
        ctx: &BuildContext,
        c: Common,
        extractor: impl FnOnce(&nn::Path, i64) -> Result<Extractor>,
    ) -> Result<Self> {
        let name = c.model;
        let d = c.embedding_dim;
        let fm = ctx.feature_map;
        let items = fm.require("item", name)?.vocab as i64;
        let max_len = checks::hist_max_len(
            fm.require("hist", name)?,
            name,
            "parameters are per position",
        )?;
        let cfg = layers::id_embedding_config(c.embedding_std);
        let user = if c.user_embedding {
            let users = fm.require("user", name)?.vocab as i64;
            Some(nn::embedding(root / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, d, cfg);
        let extractor = extractor(root, max_len)?;
        let inputs = d * if c.user_embedding { 3 } else { 2 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, c.hidden, 1, c.dropout);
        Ok(Self {
            name,
            user,
            item,
            extractor,
            interests: c.interests,
            max_len,
            aggregation: c.aggregation,
            mlp,
        })
    }

    /// ComiRec-DR.
    pub fn new_dr(root: &nn::Path, p: ComiRecDrParams, ctx: &BuildContext) -> Result<Self> {
        let (d, k) = (p.embedding_dim, p.interests);
        Self::with_extractor(root, ctx, p.common(), |root, max_len| {
            // W is [max_len, K, D, D]: quadratic in D, so widths that pass the range checks can
            // still ask for more memory than any device has (the check needs the history length).
            let elements = [max_len, k, d, d]
                .iter()
                .try_fold(1i64, |acc, &x| acc.checked_mul(x))
                .filter(|&n| n <= MAX_ROUTING_WEIGHTS);
            if elements.is_none() {
                return Err(Check { model: NAME_DR }.bad(
                    "embedding_dim",
                    format!(
                        "the routing weights [max_len {max_len}, interests {k}, {d}, {d}] would \
                         exceed {MAX_ROUTING_WEIGHTS} values; use a smaller embedding_dim or \
                         fewer interests"
                    ),
                ));
            }
            let weights = root.var(
                "routing_weights",
                &[max_len, k, d, d],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            );
            Ok(Extractor::Routing {
                weights,
                iters: p.routing_iters,
                stop_gradient: p.stop_gradient,
            })
        })
    }

    /// ComiRec-SA.
    pub fn new_sa(root: &nn::Path, p: ComiRecSaParams, ctx: &BuildContext) -> Result<Self> {
        let (d, k) = (p.embedding_dim, p.interests);
        let da = p.attention_hidden.unwrap_or(4 * d);
        let std = p.embedding_std;
        Self::with_extractor(root, ctx, p.common(), |root, max_len| {
            let att = root / "attention";
            let w1 = nn::linear(&att / "w1", d, da, Default::default());
            let no_bias = nn::LinearConfig {
                bias: false,
                ..Default::default()
            };
            let w2 = nn::linear(&att / "w2", da, k, no_bias);
            let positions = root.var(
                "positions",
                &[max_len, d],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: std,
                },
            );
            Ok(Extractor::SelfAttentive { w1, w2, positions })
        })
    }

    pub fn aggregation(&self) -> Aggregation {
        self.aggregation
    }

    /// The K interest vectors `[B, K, D]` of the batch's histories.
    pub fn interests(&self, b: &DeviceBatch) -> Tensor {
        let l = b.hist.size()[1];
        assert!(
            l <= self.max_len,
            "{}: history length {l} exceeds the feature map's hist max_len {}",
            self.name,
            self.max_len
        );
        let hist = self.item.forward(&b.hist); // [B, L, D]
        match &self.extractor {
            Extractor::Routing {
                weights,
                iters,
                stop_gradient,
            } => {
                // ê_{j|i} = W_ij e_i: [L, K, D, D] × [B, L, D] → [B, K, L, D].
                let w = weights.narrow(0, 0, l);
                let pred = Tensor::einsum("lkde,ble->bkld", &[&w, &hist], None::<&[i64]>);
                let init = Tensor::zeros([self.interests, l], (Kind::Float, hist.device()));
                routing::dynamic_routing(&pred, &b.hist_mask, &init, *iters, *stop_gradient)
            }
            Extractor::SelfAttentive { w1, w2, positions } => {
                let with_pos = &hist + positions.narrow(0, 0, l).unsqueeze(0);
                let scores = w2.forward(&w1.forward(&with_pos).tanh()); // [B, L, K]
                                                                        // Softmax over the positions of each head, padding masked: [B, K, L].
                let mask = b.hist_mask.unsqueeze(1);
                let a = layers::masked_softmax(&scores.transpose(1, 2), &mask, -1);
                a.matmul(&hist)
            }
        }
    }

    /// The weights `[B, K]` of the interests against the targets `[B, D]`: one-hot at the
    /// largest inner product (`argmax`, constant for back-propagation) or its softmax.
    fn selection(&self, interests: &Tensor, target: &Tensor) -> Tensor {
        let s = interests.matmul(&target.unsqueeze(-1)).squeeze_dim(-1); // [B, K]
        match self.aggregation {
            Aggregation::Argmax => s
                .argmax(-1, false)
                .one_hot(self.interests)
                .to_kind(Kind::Float),
            Aggregation::Softmax => s.softmax(-1, Kind::Float),
        }
    }

    /// The selection weights `[B, K]` of the batch's targets over its interests.
    pub fn weights(&self, b: &DeviceBatch) -> Tensor {
        self.selection(&self.interests(b), &self.item.forward(&b.item))
    }

    /// The user interest vector for the target, `[B, D]`.
    pub fn pooled(&self, b: &DeviceBatch) -> Tensor {
        let v = self.interests(b);
        let w = self.selection(&v, &self.item.forward(&b.item));
        (v * w.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float)
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

impl CtrLogits for ComiRec {
    fn ctr_logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.logits(b, train)
    }
}

pub fn register(r: &mut Registry) -> Result<()> {
    r.register_model::<ComiRecDrParams>(
        NAME_DR,
        "ComiRec-DR: dynamic routing (per-position maps) into K interests, the interest closest \
         to the target (argmax) + MLP",
        |root, p, ctx| Ok(Box::new(ComiRec::new_dr(root, p, ctx)?)),
    )?;
    r.register_model::<ComiRecSaParams>(
        NAME_SA,
        "ComiRec-SA: K-head self-attention over behaviors (+ positions) into K interests, the \
         interest closest to the target (argmax) + MLP",
        |root, p, ctx| Ok(Box::new(ComiRec::new_sa(root, p, ctx)?)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch, close, rows, table};
    use longtail_core::conformance;
    use longtail_core::tch::Device;
    use longtail_core::Model;

    /// Variant `name` built from `ctx` as the registry builds it (params parsed and validated).
    fn built(name: &str, ctx: &BuildContext) -> Result<crate::test_util::Built<ComiRec>> {
        crate::test_util::build_with(ctx, |root| {
            if name == NAME_DR {
                ComiRec::new_dr(root, longtail_core::params::parse(name, ctx.params)?, ctx)
            } else {
                ComiRec::new_sa(root, longtail_core::params::parse(name, ctx.params)?, ctx)
            }
        })
    }

    fn model(name: &str, params: &str) -> crate::test_util::Built<ComiRec> {
        let fm = conformance::tiny_feature_map();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        longtail_core::seed::seed_everything(5);
        built(name, &ctx).unwrap()
    }

    #[test]
    fn conformance_dr() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME_DR).unwrap();
        conformance::check_with(&reg, NAME_DR, &table("interests = 1")).unwrap();
        conformance::check_with(&reg, NAME_DR, &table("routing_iters = 1")).unwrap();
        conformance::check_with(
            &reg,
            NAME_DR,
            &table("aggregation = \"softmax\"\nstop_gradient = false\nuser_embedding = false"),
        )
        .unwrap();
    }

    #[test]
    fn conformance_sa() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME_SA).unwrap();
        conformance::check_with(&reg, NAME_SA, &table("interests = 1")).unwrap();
        conformance::check_with(
            &reg,
            NAME_SA,
            &table("aggregation = \"softmax\"\nattention_hidden = 3\nuser_embedding = false"),
        )
        .unwrap();
    }

    #[test]
    fn bad_params_are_rejected() {
        let fm = conformance::tiny_feature_map();
        let common = [
            ("interests = 0", "interests"),
            ("embedding_dim = 0", "embedding_dim"),
            ("hidden = [0]", "hidden"),
            ("dropout = -0.5", "dropout"),
            ("aggregation = \"max\"", "aggregation"),
            ("heads = 2", "heads"),
        ];
        let dr = [
            ("routing_iters = 0", "routing_iters"),
            ("attention_hidden = 8", "attention_hidden"),
        ];
        let sa = [
            ("attention_hidden = 0", "attention_hidden"),
            ("routing_iters = 3", "routing_iters"),
        ];
        for (params, key) in common.iter().chain(&dr) {
            let t = table(params);
            let ctx = BuildContext::new(&fm, &t, Device::Cpu);
            let err = built(NAME_DR, &ctx).err().unwrap().to_string();
            assert!(err.contains(key) && err.contains(NAME_DR), "{err}");
        }
        for (params, key) in common.iter().chain(&sa) {
            let t = table(params);
            let ctx = BuildContext::new(&fm, &t, Device::Cpu);
            let err = built(NAME_SA, &ctx).err().unwrap().to_string();
            assert!(err.contains(key) && err.contains(NAME_SA), "{err}");
        }
    }

    #[test]
    fn dr_predictions_are_per_position_and_interest() {
        // With one routing round the coupling is uniform (1/K on real behaviors), so
        // V_j = squash(Σ_i W_ij e_i / K): check against a plain computation.
        let m = model(
            NAME_DR,
            "routing_iters = 1\ninterests = 2\nembedding_std = 1.0",
        );
        let Extractor::Routing { weights, .. } = &m.extractor else {
            panic!("DR uses routing");
        };
        longtail_core::tch::no_grad(|| {
            let b = batch(&[6], &[vec![3, 5]]);
            let e = rows(&m.item.forward(&b.hist).squeeze_dim(0)); // [2, 8]
            let w = Vec::<f32>::try_from(weights.view([-1])).unwrap(); // [6, 2, 8, 8]
            let v = rows(&m.interests(&b).squeeze_dim(0));
            for (j, vj) in v.iter().enumerate() {
                let mut s = [0f64; 8];
                for (i, ei) in e.iter().enumerate() {
                    for (r, sr) in s.iter_mut().enumerate() {
                        let base = ((i * 2 + j) * 8 + r) * 8;
                        let dot: f64 = (0..8).map(|c| (w[base + c] * ei[c]) as f64).sum();
                        *sr += dot / 2.0;
                    }
                }
                let n2: f64 = s.iter().map(|x| x * x).sum();
                let want: Vec<f32> = s
                    .iter()
                    .map(|x| (n2 / (1.0 + n2) * x / n2.sqrt()) as f32)
                    .collect();
                assert!(close(vj, &want), "{vj:?} vs {want:?}");
            }
        });
    }

    #[test]
    fn sa_attention_masks_padding_and_pools_item_embeddings() {
        let m = model(NAME_SA, "embedding_std = 1.0");
        longtail_core::tch::no_grad(|| {
            // One behavior: every head puts all its weight on it, so each interest equals that
            // behavior's embedding (positions only steer the attention).
            let b = batch(&[6, 6], &[vec![3], vec![3, 5, 7]]);
            let v = rows(&m.interests(&b).view([2, -1]));
            let e3 = rows(&m.item.forward(&Tensor::from_slice(&[3i64])))[0].clone();
            let want: Vec<f32> = (0..4).flat_map(|_| e3.clone()).collect();
            assert!(close(&v[0], &want), "{:?} vs {want:?}", v[0]);
            // Different heads attend differently over a longer history.
            let v1 = &v[1];
            assert!(!close(&v1[..8], &v1[8..16]), "{v1:?}");
        });
    }

    #[test]
    fn aggregation_selects_the_closest_interest() {
        for name in [NAME_DR, NAME_SA] {
            let hard = model(name, "embedding_std = 1.0");
            let soft = model(name, "embedding_std = 1.0\naggregation = \"softmax\"");
            assert_eq!(hard.aggregation(), Aggregation::Argmax);
            assert_eq!(soft.aggregation(), Aggregation::Softmax);
            longtail_core::tch::no_grad(|| {
                let b = batch(&[6, 11], &[vec![3, 5, 7, 9], vec![3, 5, 7, 9]]);
                let v = hard.interests(&b);
                let t = hard.item.forward(&b.item);
                let dots = rows(&v.matmul(&t.unsqueeze(-1)).squeeze_dim(-1));
                let soft_dots = rows(
                    &soft
                        .interests(&b)
                        .matmul(&soft.item.forward(&b.item).unsqueeze(-1))
                        .squeeze_dim(-1),
                );
                let w = rows(&hard.weights(&b));
                let pooled = rows(&hard.pooled(&b));
                let vr = rows(&v.view([2, -1]));
                for r in 0..2 {
                    let best = (0..4)
                        .max_by(|&x, &y| dots[r][x].total_cmp(&dots[r][y]))
                        .unwrap();
                    let one_hot: Vec<f32> =
                        (0..4).map(|k| if k == best { 1.0 } else { 0.0 }).collect();
                    assert_eq!(w[r], one_hot, "{name}");
                    assert!(close(&pooled[r], &vr[r][best * 8..best * 8 + 8]), "{name}");
                    // Softmax weights are the softmax of the soft model's own inner products
                    // (built separately: tests share libtorch's global RNG across threads, so
                    // the two models' parameters need not match).
                    let e: Vec<f32> = soft_dots[r].iter().map(|x| x.exp()).collect();
                    let z: f32 = e.iter().sum();
                    let want: Vec<f32> = e.iter().map(|x| x / z).collect();
                    assert!(close(&rows(&soft.weights(&b))[r], &want), "{name}");
                }
            });
        }
    }

    #[test]
    fn argmax_gradient_flows_through_the_selected_interest_only() {
        // Interests = 2, SA: the unselected head's attention parameters get no gradient from
        // the pooled vector (W2's row of the other head is untouched).
        let m = model(NAME_SA, "embedding_std = 1.0\ninterests = 2");
        let b = batch(&[6], &[vec![3, 5, 7]]);
        let w = m.weights(&b);
        let best = w.argmax(-1, false).int64_value(&[0]);
        m.pooled(&b).sum(Kind::Float).backward();
        let Extractor::SelfAttentive { w2, .. } = &m.extractor else {
            panic!("SA uses self-attention");
        };
        let g = rows(&w2.ws.grad());
        let other = (1 - best) as usize;
        assert!(g[other].iter().all(|x| *x == 0.0), "{g:?}");
        assert!(g[best as usize].iter().any(|x| *x != 0.0), "{g:?}");
    }

    #[test]
    fn trailing_padding_does_not_change_scores() {
        for name in [NAME_DR, NAME_SA] {
            for agg in ["argmax", "softmax"] {
                let m = model(name, &format!("aggregation = \"{agg}\""));
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
                assert!(close(&sa, &sb), "{name} {agg}: {sa:?} vs {sb:?}");
            }
        }
    }

    #[test]
    fn empty_history_gives_finite_scores() {
        for name in [NAME_DR, NAME_SA] {
            for agg in ["argmax", "softmax"] {
                let m = model(name, &format!("aggregation = \"{agg}\""));
                let b = batch(&[6, 7], &[vec![], vec![]]);
                let s: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
                assert!(s.iter().all(|x| x.is_finite()), "{name}: {s:?}");
                longtail_core::tch::no_grad(|| {
                    let p = rows(&m.pooled(&b));
                    assert!(p.iter().flatten().all(|x| *x == 0.0), "{name}: {p:?}");
                });
                m.forward(&b, true)
                    .unwrap()
                    .logits
                    .sum(Kind::Float)
                    .backward();
                for t in m.vs.trainable_variables() {
                    let g = t.grad();
                    if g.defined() {
                        assert!(g.isfinite().all().int64_value(&[]) == 1, "{name}");
                    }
                }
            }
        }
    }
}
