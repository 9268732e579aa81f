//! DIEN: Deep Interest Evolution Network (Zhou et al., "Deep Interest Evolution Network for
//! Click-Through Rate Prediction", AAAI 2019).
//!
//! Choices, in the order the data flows:
//! - **Embeddings**: one item table (dim `embedding_dim`, default 8, `padding_idx = 0`) shared by
//!   the target item, the behaviors and the sampled negatives, plus an optional user table
//!   (`user_embedding`, default true; off gives a pure behavior model).
//! - **Interest extractor** (paper §4.2): a one-layer GRU (`nn::gru`, hidden `hidden_size`,
//!   default `embedding_dim`) over the left-aligned history `e_1..e_L`, giving `h_t`. Histories
//!   are padded *after* the last real item, so `h_t` of a real step never sees padding.
//! - **Auxiliary loss** (paper eq. 5), term `"aux"`: for every step `t` with `t + 1 < len`,
//!   `h_t` should score the next clicked behavior `e_{t+1}` above a negative `e'_{t+1}`:
//!   `L_aux = -Σ_b w_b Σ_t m_{b,t} [log σ(⟨h_t, e_{t+1}⟩) + log(1 − σ(⟨h_t, e'_{t+1}⟩))]
//!   / Σ_b w_b Σ_t m_{b,t}`, with `m_{b,t}` = mask of step `t + 1` (so padding steps and the last
//!   real step are out) and `w_b` the row weight. The paper scores pairs with a small MLP; here
//!   the score is the inner product `⟨h_t, e⟩` (parameter-free, and it ties `h_t` directly to
//!   the embedding space), and when `hidden_size != embedding_dim` it is `⟨h_t, P e⟩` with a
//!   bias-free projection `aux_proj` (`P: D → H`). Negatives are drawn uniformly from item ids
//!   `1..vocab` with `Tensor::randint_low` on the batch's device, in *training* forwards only; a
//!   draw equal to the positive is moved to the next id (cyclically within `1..vocab`), so a
//!   negative is never the clicked item (the paper samples from items other than the clicked
//!   one). Non-training forwards carry a zero `"aux"` term, and `score` never samples, so it is
//!   deterministic. The CTR term `"ctr"` is `bce_with_logits`; `losses` returns
//!   `["ctr", "aux"]` unweighted (weight them with `[train] loss_weights = { aux = ... }`; the
//!   paper's α is 1.0, the default weight).
//! - **Interest evolving layer** (paper §4.3): attention `a_t = softmax_t(h_t W e_target)`
//!   (eq. 6; bilinear `W: D → H`, no bias) as a masked softmax over real steps
//!   (`layers::masked_softmax`, which gives all-zero weights for an empty history instead of
//!   NaN), then an AUGRU (eqs. 8-9) written by hand with two linear layers in PyTorch's GRU gate
//!   order (reset, update, new): `r = σ(W_ir x + b_ir + W_hr h + b_hr)`,
//!   `u = σ(W_iz x + b_iz + W_hz h + b_hz)`, `h̃ = tanh(W_in x + b_in + r ∘ (W_hn h + b_hn))`,
//!   `u' = a_t · u`, `h' = (1 − u') ∘ h + u' ∘ h̃`. Its input is `h_t`, its hidden size is
//!   `hidden_size`, its initial state is zero and a padding step keeps the state unchanged (the
//!   mask selects the old state), so the final state is the state after the last real step:
//!   the user's interest for this target. An empty history leaves it at zero. (This is the
//!   paper's gate convention; PyTorch's GRU writes `h' = (1 − z) ∘ h̃ + z ∘ h`, i.e. `z = 1 − u`,
//!   which the AUGRU test checks against `gru_cell`.)
//! - **Output**: `[user?, interest, e_target, Σ_t m_t e_t]` (sum pooling as in HIM's BaseModel)
//!   → `layers::Mlp` (hidden `hidden`, default `[256, 128, 32]` as in HIM §4.1; ReLU; `dropout`
//!   default 0.0) → logit; `score = σ(logit)`.

use crate::checks;
use longtail_core::layers::{masked_softmax, masked_sum, Mlp};
use longtail_core::losses::bce_with_logits;
use longtail_core::tch::nn::{self, Module, RNN};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{
    BuildContext, Check, DeviceBatch, Losses, Model, ModelParams, ModelSpec, Output, Result,
};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "dien";

/// Hyper-parameters (`[model.params]`). Defaults: embedding 8 and MLP [256, 128, 32] (HIM §4.1),
/// GRU/AUGRU hidden size = embedding size. Checked before any data is read: widths
/// (`embedding_dim`, `hidden_size`, `hidden`) in `[1, 65536]`, `embedding_std` in `(0, 10]`,
/// `dropout` in `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct DienParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01] (small, as in
    /// the TensorFlow implementations of the papers; libtorch's N(0, 1) overfits sparse ids).
    pub embedding_std: f64,
    /// Hidden size of the interest extractor GRU and the AUGRU; unset = `embedding_dim`.
    pub hidden_size: Option<i64>,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for DienParams {
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

impl ModelParams for DienParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        c.opt_dim("hidden_size", self.hidden_size)?;
        checks::tower(c, &self.hidden, self.dropout)
    }
    /// The CTR term and the auxiliary loss (eq. 5), whatever the params.
    fn loss_terms(&self) -> Vec<String> {
        vec!["ctr".to_string(), "aux".to_string()]
    }
}

/// GRU with attentional update gate (DIEN eqs. 8-9), PyTorch gate order (reset, update, new).
#[derive(Debug)]
pub struct Augru {
    /// Input to gates: `[3H, in]` weight and `[3H]` bias.
    x2g: nn::Linear,
    /// Hidden to gates: `[3H, H]` weight and `[3H]` bias.
    h2g: nn::Linear,
}

impl Augru {
    pub fn new(path: &nn::Path, in_dim: i64, hidden: i64) -> Self {
        Self {
            x2g: nn::linear(path / "x2g", in_dim, 3 * hidden, Default::default()),
            h2g: nn::linear(path / "h2g", hidden, 3 * hidden, Default::default()),
        }
    }

    /// One step: `x [B, in]`, `h [B, H]`, attention `a [B, 1]` -> `h' [B, H]`.
    pub fn step(&self, x: &Tensor, h: &Tensor, a: &Tensor) -> Tensor {
        let gx = self.x2g.forward(x).chunk(3, -1);
        let gh = self.h2g.forward(h).chunk(3, -1);
        let r = (&gx[0] + &gh[0]).sigmoid();
        let u = (&gx[1] + &gh[1]).sigmoid();
        let n = (&gx[2] + r * &gh[2]).tanh();
        let u = u * a;
        (1.0 - &u) * h + u * n
    }

    /// Runs over `x [B, L, in]` with attention `a [B, L]` and mask `m [B, L]` from a zero state;
    /// masked-out steps keep the state. Returns the final state `[B, H]`.
    pub fn run(&self, x: &Tensor, a: &Tensor, m: &Tensor) -> Tensor {
        let (b, l) = (x.size()[0], x.size()[1]);
        let hidden = self.h2g.ws.size()[1];
        let mut h = Tensor::zeros([b, hidden], (x.kind(), x.device()));
        let keep = m.gt(0.0).unsqueeze(-1);
        for t in 0..l {
            let next = self.step(&x.select(1, t), &h, &a.narrow(1, t, 1));
            h = next.where_self(&keep.select(1, t), &h);
        }
        h
    }
}

pub struct Dien {
    user: Option<nn::Embedding>,
    /// Shared by target items, behaviors and sampled negatives.
    item: nn::Embedding,
    items: i64,
    extractor: nn::GRU,
    /// Projects item embeddings to the GRU size for the auxiliary score when sizes differ.
    aux_proj: Option<nn::Linear>,
    /// Bilinear attention `h_t W e_target`, stored as a bias-free `D -> H` linear.
    attention: nn::Linear,
    augru: Augru,
    mlp: Mlp,
}

/// What one pass computes before the MLP.
struct Parts {
    logits: Tensor,
    aux: Option<Tensor>,
    /// The AUGRU's final state `[B, H]` (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    interest: Tensor,
}

impl ModelSpec for Dien {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str = "DIEN: GRU interest extractor with auxiliary loss + attentional AUGRU (Zhou et al., AAAI 2019)";
    type Params = DienParams;

    fn build(root: &nn::Path, p: DienParams, ctx: &BuildContext) -> Result<Self> {
        let hidden_size = p.hidden_size.unwrap_or(p.embedding_dim);
        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        fm.require("hist", NAME)?;
        let cfg = longtail_core::layers::id_embedding_config(p.embedding_std);
        let d = p.embedding_dim;
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(root / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, d, cfg);
        let extractor = nn::gru(root / "extractor", d, hidden_size, Default::default());
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let aux_proj =
            (hidden_size != d).then(|| nn::linear(root / "aux_proj", d, hidden_size, no_bias));
        let attention = nn::linear(root / "attention", d, hidden_size, no_bias);
        let augru = Augru::new(&(root / "augru"), hidden_size, hidden_size);
        let inputs = hidden_size + 2 * d + if p.user_embedding { d } else { 0 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.dropout);
        Ok(Self {
            user,
            item,
            items,
            extractor,
            aux_proj,
            attention,
            augru,
            mlp,
        })
    }
}

impl Dien {
    /// `⟨h, e⟩` (or `⟨h, P e⟩`) along the last dim: `h [B, T, H]`, `e [B, T, D]` -> `[B, T]`.
    fn aux_score(&self, h: &Tensor, e: &Tensor) -> Tensor {
        let e = match &self.aux_proj {
            Some(p) => p.forward(e),
            None => e.shallow_clone(),
        };
        (h * e).sum_dim_intlist(-1, false, Kind::Float)
    }

    /// Auxiliary loss (DIEN eq. 5) with fresh uniform negatives; training only.
    fn aux_loss(&self, b: &DeviceBatch, h: &Tensor, e: &Tensor) -> Tensor {
        let l = h.size()[1];
        let steps = l - 1;
        let h_t = h.narrow(1, 0, steps);
        let pos_ids = b.hist.narrow(1, 1, steps);
        let valid = b.hist_mask.narrow(1, 1, steps);
        let mut neg_ids = Tensor::randint_low(
            1,
            self.items.max(2),
            [b.size as i64, steps],
            (Kind::Int64, b.device()),
        );
        if self.items > 2 {
            let shifted = neg_ids.remainder(self.items - 1) + 1;
            neg_ids = shifted.where_self(&neg_ids.eq_tensor(&pos_ids), &neg_ids);
        }
        let pos = self.aux_score(&h_t, &e.narrow(1, 1, steps));
        let neg = self.aux_score(&h_t, &self.item.forward(&neg_ids));
        // log σ(s+) + log(1 − σ(s−)) = log σ(s+) + log σ(−s−).
        let ll = pos.log_sigmoid() + neg.neg().log_sigmoid();
        let w = valid * b.weight.unsqueeze(1);
        let denom = w.sum(Kind::Float).clamp_min(1e-12);
        -(ll * &w).sum(Kind::Float) / denom
    }

    fn pass(&self, b: &DeviceBatch, train: bool) -> Parts {
        let e = self.item.forward(&b.hist);
        let (h, _) = self.extractor.seq(&e);
        let target = self.item.forward(&b.item);
        let att = (&h * self.attention.forward(&target).unsqueeze(1)).sum_dim_intlist(
            -1,
            false,
            Kind::Float,
        );
        let a = masked_softmax(&att, &b.hist_mask, 1);
        let interest = self.augru.run(&h, &a, &b.hist_mask);
        let mut parts = vec![
            interest.shallow_clone(),
            target,
            masked_sum(&e, &b.hist_mask),
        ];
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        let logits = self
            .mlp
            .forward(&Tensor::cat(&parts, -1), train)
            .squeeze_dim(-1)
            .to_kind(Kind::Float);
        let aux = train.then(|| self.aux_loss(b, &h, &e));
        Parts {
            logits,
            aux,
            interest,
        }
    }
}

impl Model for Dien {
    fn forward(&self, b: &DeviceBatch, train: bool) -> Result<Output> {
        let p = self.pass(b, train);
        let mut out = Output::new(p.logits);
        let aux = p
            .aux
            .unwrap_or_else(|| Tensor::zeros([], (Kind::Float, b.device())));
        out.extras.push(("aux".to_string(), aux));
        Ok(out)
    }
    fn losses(&self, out: &Output, b: &DeviceBatch) -> Result<Losses> {
        let mut l = Losses::one("ctr", bce_with_logits(&out.logits, b));
        let aux = match out.extra("aux") {
            Some(t) => t.shallow_clone(),
            None => Tensor::zeros([], (Kind::Float, b.device())),
        };
        l.push("aux", aux);
        Ok(l)
    }
    fn score(&self, b: &DeviceBatch) -> Result<Tensor> {
        Ok(self.pass(b, false).logits.sigmoid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use longtail_core::conformance;
    use longtail_core::data::{FeatureMap, HostBatch};
    use longtail_core::tch::Device;
    use longtail_core::Model;

    fn build(fm: &FeatureMap, params: &toml::Table) -> crate::test_util::Built<Dien> {
        longtail_core::seed::seed_everything(3);
        let ctx = BuildContext::new(fm, params, Device::Cpu);
        crate::test_util::build::<Dien>(&ctx).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn conformance_default() {
        let r = conformance::check(&crate::builtin_registry().unwrap(), NAME).unwrap();
        assert_eq!(r.loss_terms, vec!["ctr", "aux"]);
        assert!(r.loss_last < r.loss_first, "{r:?}");
    }

    #[test]
    fn conformance_without_user_embedding() {
        let t: toml::Table = toml::from_str("user_embedding = false").unwrap();
        let r = conformance::check_with(&crate::builtin_registry().unwrap(), NAME, &t).unwrap();
        assert_eq!(r.loss_terms, vec!["ctr", "aux"]);
    }

    #[test]
    fn conformance_with_other_hidden_size() {
        let t: toml::Table = toml::from_str("hidden_size = 5\nhidden = [16]").unwrap();
        conformance::check_with(&crate::builtin_registry().unwrap(), NAME, &t).unwrap();
    }

    #[test]
    fn unknown_param_is_rejected() {
        let fm = conformance::tiny_feature_map();
        let t: toml::Table = toml::from_str("hiden_size = 4").unwrap();
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        let err = crate::test_util::build::<Dien>(&ctx)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("hiden_size"), "{err}");
    }

    #[test]
    fn augru_step_matches_hand_gru_cell() {
        longtail_core::seed::seed_everything(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let (b, i, hd) = (3, 4, 5);
        let cell = Augru::new(&(&vs.root() / "augru"), i, hd);
        let x = Tensor::randn([b, i], (Kind::Float, Device::Cpu));
        let h = Tensor::randn([b, hd], (Kind::Float, Device::Cpu));

        // Attention 0: the update gate is closed, the state is unchanged (exactly).
        let zero = Tensor::zeros([b, 1], (Kind::Float, Device::Cpu));
        let same = cell.step(&x, &h, &zero);
        assert_eq!(max_abs_diff(&same, &h), 0.0);

        // Attention 1: a plain GRU cell, computed by hand from the same weights.
        let one = Tensor::ones([b, 1], (Kind::Float, Device::Cpu));
        let got = cell.step(&x, &h, &one);
        let w_ih = &cell.x2g.ws;
        let b_ih = cell.x2g.bs.as_ref().unwrap();
        let w_hh = &cell.h2g.ws;
        let b_hh = cell.h2g.bs.as_ref().unwrap();
        let gate = |k: i64| {
            let wi = w_ih.narrow(0, k * hd, hd);
            let bi = b_ih.narrow(0, k * hd, hd);
            let wh = w_hh.narrow(0, k * hd, hd);
            let bh = b_hh.narrow(0, k * hd, hd);
            (x.matmul(&wi.tr()) + bi, h.matmul(&wh.tr()) + bh)
        };
        let (xr, hr) = gate(0);
        let (xz, hz) = gate(1);
        let (xn, hn) = gate(2);
        let r = (xr + hr).sigmoid();
        let z = (xz + hz).sigmoid();
        let n = (xn + r * hn).tanh();
        let want = (1.0 - &z) * &h + z * n;
        assert!(max_abs_diff(&got, &want) < 1e-6);
        // ... which is libtorch's own GRU cell once the update-gate rows are negated: PyTorch
        // writes h' = (1 - z) n + z h, the paper h' = (1 - u) h + u n, and σ(-s) = 1 - σ(s).
        let flip = Tensor::cat(
            &[
                Tensor::ones([hd], (Kind::Float, Device::Cpu)),
                Tensor::full([hd], -1.0, (Kind::Float, Device::Cpu)),
                Tensor::ones([hd], (Kind::Float, Device::Cpu)),
            ],
            0,
        );
        let torch = x.gru_cell(
            &h,
            &(w_ih * flip.unsqueeze(1)),
            &(w_hh * flip.unsqueeze(1)),
            Some(&(b_ih * &flip)),
            Some(&(b_hh * &flip)),
        );
        assert!(max_abs_diff(&got, &torch) < 1e-6);

        // Attention 0.5 halves the update gate.
        let half = Tensor::full([b, 1], 0.5, (Kind::Float, Device::Cpu));
        let got = cell.step(&x, &h, &half);
        let (xz, hz) = gate(1);
        let (xr, hr) = gate(0);
        let (xn, hn) = gate(2);
        let z = (xz + hz).sigmoid() * 0.5;
        let n = (xn + (xr + hr).sigmoid() * hn).tanh();
        let want = (1.0 - &z) * &h + z * n;
        assert!(max_abs_diff(&got, &want) < 1e-6);
    }

    #[test]
    fn augru_run_skips_padding_steps() {
        longtail_core::seed::seed_everything(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let cell = Augru::new(&(&vs.root() / "augru"), 3, 3);
        let x = Tensor::randn([1, 4, 3], (Kind::Float, Device::Cpu));
        let a = Tensor::from_slice(&[0.5f32, 0.5, 0.0, 0.0]).view([1, 4]);
        let m = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0]).view([1, 4]);
        let full = cell.run(&x, &a, &m);
        let short = cell.run(&x.narrow(1, 0, 2), &a.narrow(1, 0, 2), &m.narrow(1, 0, 2));
        assert_eq!(max_abs_diff(&full, &short), 0.0);
    }

    #[test]
    fn empty_histories_give_zero_interest_and_no_nan() {
        let fm = conformance::tiny_feature_map();
        let model = build(&fm, &toml::Table::new());
        let host = HostBatch::from_dense(
            vec![1, 2, 3],
            vec![4, 5, 6],
            vec![1.0, 0.0, 1.0],
            &[vec![], vec![], vec![]],
        )
        .unwrap();
        let b = DeviceBatch::from_host(&host, Device::Cpu).unwrap();
        assert_eq!(b.hist.size(), [3, 1]);
        for train in [false, true] {
            let p = model.pass(&b, train);
            assert_eq!(p.interest.abs().max().double_value(&[]), 0.0);
            let out = model.forward(&b, train).unwrap();
            for (name, t) in model.losses(&out, &b).unwrap().0 {
                let v = t.double_value(&[]);
                assert!(v.is_finite(), "{name} = {v}");
            }
        }
        let s = Vec::<f32>::try_from(model.score(&b).unwrap()).unwrap();
        assert!(s.iter().all(|v| v.is_finite()), "{s:?}");
    }

    #[test]
    fn mixed_batch_empty_rows_have_zero_interest_and_aux_is_positive() {
        let fm = conformance::tiny_feature_map();
        let model = build(&fm, &toml::Table::new());
        let host = HostBatch::from_dense(
            vec![1, 2],
            vec![4, 5],
            vec![1.0, 0.0],
            &[vec![], vec![3, 7, 9, 11]],
        )
        .unwrap();
        let b = DeviceBatch::from_host(&host, Device::Cpu).unwrap();
        let p = model.pass(&b, true);
        assert_eq!(p.interest.get(0).abs().max().double_value(&[]), 0.0);
        assert!(p.interest.get(1).abs().max().double_value(&[]) > 0.0);
        let aux = p.aux.unwrap().double_value(&[]);
        assert!(aux.is_finite() && aux > 0.0, "{aux}");
        // Eval forwards carry a zero aux term.
        let out = model.forward(&b, false).unwrap();
        assert_eq!(out.extra("aux").unwrap().double_value(&[]), 0.0);
    }

    #[test]
    fn score_is_deterministic() {
        let fm = conformance::tiny_feature_map();
        let model = build(&fm, &toml::Table::new());
        let b = DeviceBatch::from_host(&conformance::tiny_batch().unwrap(), Device::Cpu).unwrap();
        // A training forward in between draws negatives; scores must not depend on the RNG.
        let first = Vec::<f32>::try_from(model.score(&b).unwrap()).unwrap();
        let _ = model.forward(&b, true).unwrap();
        let second = Vec::<f32>::try_from(model.score(&b).unwrap()).unwrap();
        assert_eq!(first, second);
    }
}
