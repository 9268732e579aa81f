//! HIM: Hybrid Interest Modeling (Deng et al., "Hybrid Interest Modeling for Long-tailed Users",
//! §3, eqs. 1-12; settings of §4.1). Registry name `"him"`.
//!
//! Inputs: the reorganization layer (§3.1) is done by the data pipeline: `batch.sessions` holds,
//! per sample, S disjoint time-window sessions before the target time, each with the top n
//! positive and negative feedback items ranked by frequency (descending) and their counts
//! (padding = item 0 / count 0). S and n come from the feature map's `sessions` feature
//! (`dims = [S, n]`); a feature map without it is refused with "him needs HIM sessions: add a
//! [sessions] section to the config".
//!
//! Choices, in the order the data flows (d = `embedding_dim`, h = `gru_hidden`):
//! - **Embeddings**: one item table (`padding_idx = 0`, default d = 8 as in §4.1) shared by the
//!   positive and negative feedback and the target item; an optional user table
//!   (`user_embedding`, default true) whose vector joins the MLP input as the "other features".
//! - **UBP, frequency weighting** (eq. 1): `ê_j = f_j · e_j` with `f_j` the count of slot j;
//!   `frequency_weighting = false` uses `f_j = 1` for real slots (0 for padding). A slot is real
//!   when its item id is not 0.
//! - **Compact negative** (eq. 2): `ê_neg = Σ_j f_j^neg · e_j^neg`, a frequency-weighted *sum*
//!   pooling as the text says (not a mean), over the real negative slots.
//! - **Distance attention** (eqs. 2-3): `d_j = ||ê_j − ê_neg||_2` (computed as
//!   `sqrt(Σ (·)² + 1e-12)` so the gradient is finite at distance 0), `α = softmax_j(d_j)` over the
//!   real positive slots only (`layers::masked_softmax`; an all-padding session gets all-zero
//!   weights, never NaN), `ẽ_j = α_j · ê_j`. Larger distance from the negative → more weight.
//! - **GRU** (eq. 4): one GRU (`nn::gru`, input d, hidden h, default h = d) *shared by all
//!   sessions* ("for each session, we follow the same scheme"), run on `[B·S, n, d]` over the
//!   positives in the given frequency order, from a zero state. Its n hidden states are flattened
//!   into an `n·h` vector; states of padding slots are zeroed (padding trails the real slots, so
//!   real states never see it). `p_x = concat(GRU states; ê_neg)`, of dimension
//!   `D = n·h + d` (`D = n·h` without negative feedback).
//! - **Ablations** (`ubp`, Table 3): `"positive"` is the paper's public-data variant — no negative
//!   feedback at all (no pooling, no distance attention; the GRU reads `ê_j`);
//!   `"negative_pooling"` adds `ê_neg` to `p_x` but no distance attention (the GRU reads `ê_j`);
//!   `"full"` (default) adds the distance attention (the GRU reads `ẽ_j`).
//! - **Self-attention across sessions** (eq. 5): scaled dot product with shared bias-free maps
//!   `W_q, W_k, W: D → D`: `w_t^i = (W_q p_x^i)·(W_k p_x^t)/sqrt(D)`,
//!   `p_z^i = Σ_t softmax_t(w_t^i) W p_x^t`, so `p_z` has `p_x`'s dimension D. Sessions with no
//!   real item (positive, or negative when used) are masked out as keys; if a row has none, its
//!   `p_z` is zero.
//! - **UBC** (`ubc`, default true; eqs. 6-7), with parameters *per session* (the superscripts i):
//!   `β = softmax(W_c p_x + b_c)` over `k = groups` (default 5, the best k of Fig. 6),
//!   `μ = Σ_s β_s g_s` with `G ∈ R^{k × d_g}` (`group_dim` d_g default 16, §4.1; rows initialised
//!   N(0, 1) like embeddings), `p̂_x = σ(W_r μ + b_r) ∈ R^D`, and the hard choice
//!   `c_z = g_{argmax β}` (eq. 7; ties → first index). Gradients reach the chosen row of G
//!   through `c_z`; β itself (and `W_c`) gets gradient only through the reconstruction loss.
//! - **Group loss** (eq. 8), term `"group"`:
//!   `L_g = Σ_i Σ_{j=1..p} max(0, 1 − cos(p̂_x^i, p_z^i) + cos(p̂_x^i, p̂_x^{i,(j)}))` where
//!   `p̂_x^{i,(j)}` is the same session's reconstruction of another row of the batch. The text
//!   speaks of cosine similarity while the formula writes a dot product: cosine is used (eps
//!   1e-8). `p = negative_users` (the paper gives no value; default 4). In training forwards the
//!   partners are drawn with `Tensor::randint_low` (reproducible under tch's manual seed) as a
//!   random offset in `1..valid` from the row, modulo the number of real rows, so a row is never
//!   paired with itself nor with a padding row (another row may still be the same user); in
//!   non-training forwards the offsets are the fixed `1, 2, …, p` (cyclic in `1..valid`), so a
//!   validation loss is deterministic. Fewer than 2 real rows give a zero term. Each row's
//!   `Σ_i Σ_j` is averaged over rows weighted by `batch.weight`. Gradients flow into both `p̂_x`
//!   and `p_z` (the loss keeps individual and group interests consistent).
//! - **Prediction** (eqs. 9-10): `p_z = concat_i p_z^i ∈ R^{S·D}`, `c_z = concat_i c_z^i ∈
//!   R^{S·d_g}`, `e_t` = target item embedding; `a_p = p_z · (W_p e_t)`, `a_c = c_z · (W_c e_t)`
//!   (bilinear: bias-free `nn::linear` d → S·D resp. S·d_g, then a dot product);
//!   `(w_p, w_c) = softmax(a_p, a_c)`, `e_p = w_p p_z`, `e_c = w_c c_z`;
//!   `MLP([e_p, e_c, e_t, user?])` (hidden `hidden`, default `[256, 128, 32]` of §4.1, ReLU,
//!   `dropout` default 0.0) → one logit. The paper's two-logit softmax cross-entropy equals a
//!   one-logit sigmoid BCE (the logit difference is the one logit), so term `"ctr"` is
//!   `bce_with_logits` (eq. 11) and `score = σ(logit)`. With `ubc = false` there is no `c_z`, no
//!   attention (a one-way softmax is 1: `e_p = p_z`) and no group term.
//! - **Joint loss** (eq. 12, `L = α L_g + L_c`): `losses` returns the unweighted terms
//!   `["ctr", "group"]` (`["ctr"]` without UBC); the paper's α is the trainer's loss weight,
//!   e.g. `[train] loss_weights = { group = 1e-4 }` (the best α on the public data; 0.1 on the
//!   industrial data). The default weight is 1.0.
//!
//! `score` runs a non-training pass with no randomness, so it is deterministic.

use crate::checks;
use longtail_core::layers::{masked_softmax, Mlp};
use longtail_core::losses::bce_with_logits;
use longtail_core::tch::nn::{self, Module, RNN};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{
    BuildContext, Check, CoreError, DeviceBatch, Losses, Model, ModelParams, ModelSpec, Output,
    Result,
};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "him";

const NO_SESSIONS: &str = "him needs HIM sessions: add a [sessions] section to the config";

/// Which UBP variant to run (HIM Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum UbpMode {
    /// Positive feedback only (the paper's public-data variant).
    Positive,
    /// + frequency-weighted sum pooling of the negative feedback in `p_x` (eq. 4).
    NegativePooling,
    /// + Euclidean distance attention between positives and the compact negative (eqs. 2-3).
    Full,
}

impl UbpMode {
    fn uses_negatives(self) -> bool {
        self != UbpMode::Positive
    }
}

/// Hyper-parameters (`[model.params]`). Defaults follow HIM §4.1 (public data). Checked before
/// any data is read: widths (`embedding_dim`, `group_dim`, `gru_hidden`, `hidden`) in
/// `[1, 65536]`, `groups` in `[1, 1024]`, `negative_users` in `[1, 256]`, `embedding_std` in
/// `(0, 10]`, `dropout` in `[0, 1)`; `ubp` is `positive`, `negative_pooling` or `full`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct HimParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01] (small, as in
    /// the TensorFlow implementations of the papers; libtorch's N(0, 1) overfits sparse ids).
    pub embedding_std: f64,
    /// d_g, the group embedding size.
    pub group_dim: i64,
    /// k, the number of user groups per session.
    pub groups: i64,
    /// p, the negative users per row in the group loss (eq. 8).
    pub negative_users: i64,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
    /// GRU hidden size h; unset = `embedding_dim`.
    pub gru_hidden: Option<i64>,
    /// UBP variant (HIM Table 3): positive feedback only, + negative pooling (eq. 4), or the full
    /// distance attention (eqs. 2-3).
    pub ubp: UbpMode,
    /// The UBC module (group interest, eqs. 6-8).
    pub ubc: bool,
    /// Multiply embeddings by their counts (eq. 1); off = count 1 for every real slot.
    pub frequency_weighting: bool,
}

impl Default for HimParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            embedding_std: 0.01,
            group_dim: 16,
            groups: 5,
            negative_users: 4,
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
            gru_hidden: None,
            ubp: UbpMode::Full,
            ubc: true,
            frequency_weighting: true,
        }
    }
}

/// Upper bound of `groups` (k user groups per session).
pub const MAX_GROUPS: i64 = 1024;
/// Upper bound of `negative_users` (p partner rows per row in the group loss).
pub const MAX_NEGATIVE_USERS: i64 = 256;

impl ModelParams for HimParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        c.dim("group_dim", self.group_dim)?;
        c.int("groups", self.groups, 1, MAX_GROUPS)?;
        c.int("negative_users", self.negative_users, 1, MAX_NEGATIVE_USERS)?;
        c.opt_dim("gru_hidden", self.gru_hidden)?;
        checks::tower(c, &self.hidden, self.dropout)
    }
    /// `ctr`, plus the group loss `group` (eq. 8) with UBC.
    fn loss_terms(&self) -> Vec<String> {
        let mut t = vec!["ctr".to_string()];
        if self.ubc {
            t.push("group".to_string());
        }
        t
    }
}

/// `f` of eq. 1: the counts on real slots (`mask` = 1), or 1 there when weighting is off.
pub(crate) fn frequency_weights(counts: &Tensor, mask: &Tensor, weighting: bool) -> Tensor {
    if weighting {
        counts.to_kind(Kind::Float) * mask
    } else {
        mask.shallow_clone()
    }
}

/// Compact negative (eq. 2): `Σ_j f_j e_j` over the slot dim; `e [.., n, d]`, `f [.., n]`.
pub(crate) fn compact_negative(e: &Tensor, f: &Tensor) -> Tensor {
    (e * f.unsqueeze(-1)).sum_dim_intlist(-2, false, Kind::Float)
}

/// Distance attention (eqs. 2-3): `e_hat [.., n, d]` (frequency-weighted positives), `neg [.., d]`,
/// `mask [.., n]`. Returns `(α [.., n], α_j ê_j [.., n, d])`; padding slots get weight 0.
pub(crate) fn distance_attention(e_hat: &Tensor, neg: &Tensor, mask: &Tensor) -> (Tensor, Tensor) {
    let diff = e_hat - neg.unsqueeze(-2);
    let dist = ((&diff * &diff).sum_dim_intlist(-1, false, Kind::Float) + 1e-12).sqrt();
    let alpha = masked_softmax(&dist, mask, -1);
    let weighted = e_hat * alpha.unsqueeze(-1);
    (alpha, weighted)
}

/// Group hinge loss (eq. 8) with cosine similarity: `p_hat, p_z [B, S, D]`, `partners [B, p]`
/// row indices of the negative users, `weight [B]`. Returns
/// `Σ_b w_b Σ_{i,j} max(0, 1 − cos(p̂_b^i, p_z,b^i) + cos(p̂_b^i, p̂_{partner}^i)) / max(Σ w, 1)`.
pub(crate) fn group_hinge(
    p_hat: &Tensor,
    p_z: &Tensor,
    partners: &Tensor,
    weight: &Tensor,
) -> Tensor {
    let (b, s, d) = p_hat.size3().expect("p_hat is [B, S, D]");
    let p = partners.size()[1];
    let pos = Tensor::cosine_similarity(p_hat, p_z, -1, 1e-8); // [B, S]
    let others = p_hat
        .index_select(0, &partners.reshape([-1]))
        .view([b, p, s, d]);
    let neg = Tensor::cosine_similarity(&p_hat.unsqueeze(1), &others, -1, 1e-8); // [B, p, S]
    let hinge = (neg - pos.unsqueeze(1) + 1.0).clamp_min(0.0);
    let per_row = hinge.sum_dim_intlist([1, 2].as_slice(), false, Kind::Float);
    (per_row * weight).sum(Kind::Float) / weight.sum(Kind::Float).clamp_min(1.0)
}

/// Partner rows `[B, p]` for the group loss: for every row, `p` other real rows (offsets in
/// `1..valid`, random when `train`, else `1, 2, …` cyclic). `None` with fewer than 2 real rows.
pub(crate) fn partners(b: &DeviceBatch, p: i64, train: bool) -> Option<Tensor> {
    let valid = b.valid as i64;
    if valid < 2 || p < 1 {
        return None;
    }
    let dev = b.device();
    let size = b.size as i64;
    let base = Tensor::arange(size, (Kind::Int64, dev))
        .remainder(valid)
        .unsqueeze(1);
    let offsets = if train {
        Tensor::randint_low(1, valid, [size, p], (Kind::Int64, dev))
    } else {
        (Tensor::arange(p, (Kind::Int64, dev)).remainder(valid - 1) + 1)
            .unsqueeze(0)
            .expand([size, p], false)
    };
    Some((base + offsets).remainder(valid))
}

/// UBC parameters of one session (eq. 6).
#[derive(Debug)]
struct Ubc {
    /// `W_c, b_c`: D → k.
    encode: nn::Linear,
    /// `G`: `[k, d_g]`.
    groups: Tensor,
    /// `W_r, b_r`: d_g → D.
    decode: nn::Linear,
}

pub struct Him {
    user: Option<nn::Embedding>,
    /// Shared by positive/negative feedback and the target item.
    item: nn::Embedding,
    gru: nn::GRU,
    attn_q: nn::Linear,
    attn_k: nn::Linear,
    attn_v: nn::Linear,
    /// One per session; empty without UBC.
    ubc: Vec<Ubc>,
    /// Bilinear `W_p`, `W_c` of eq. 10 (UBC only).
    att_p: Option<nn::Linear>,
    att_c: Option<nn::Linear>,
    mlp: Mlp,
    sessions: i64,
    top_n: i64,
    /// D, the dimension of `p_x` and `p_z`.
    d_x: i64,
    p: HimParams,
}

/// What one pass computes.
struct Pass {
    logits: Tensor,
    group: Option<Tensor>,
}

fn model_err(message: impl Into<String>) -> CoreError {
    CoreError::Model {
        model: NAME.to_string(),
        message: message.into(),
    }
}

impl ModelSpec for Him {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "HIM: frequency-ranked sessions, UBP (distance attention + GRU + self-attention) and UBC \
         group auto-encoder (Hybrid Interest Modeling for Long-tailed Users)";
    type Params = HimParams;

    fn build(root: &nn::Path, p: HimParams, ctx: &BuildContext) -> Result<Self> {
        let h = p.gru_hidden.unwrap_or(p.embedding_dim);
        let fm = ctx.feature_map;
        let spec = fm.get("sessions").ok_or_else(|| model_err(NO_SESSIONS))?;
        let (sessions, top_n) = match spec.dims.as_deref() {
            Some(&[s, n]) if s >= 1 && n >= 1 => (s as i64, n as i64),
            other => {
                return Err(model_err(format!(
                    "{NO_SESSIONS} (feature 'sessions' must have dims [S, n], got {other:?})"
                )))
            }
        };
        let items = fm.require("item", NAME)?.vocab as i64;
        let cfg = longtail_core::layers::id_embedding_config(p.embedding_std);
        let d = p.embedding_dim;
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(root / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, d, cfg);
        let gru = nn::gru(root / "gru", d, h, Default::default());
        let d_x = top_n * h + if p.ubp.uses_negatives() { d } else { 0 };
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let attn = root / "attention";
        let attn_q = nn::linear(&attn / "q", d_x, d_x, no_bias);
        let attn_k = nn::linear(&attn / "k", d_x, d_x, no_bias);
        let attn_v = nn::linear(&attn / "v", d_x, d_x, no_bias);
        let mut ubc = Vec::new();
        let (mut att_p, mut att_c) = (None, None);
        if p.ubc {
            for i in 0..sessions {
                let path = root / "ubc" / i;
                ubc.push(Ubc {
                    encode: nn::linear(&path / "encode", d_x, p.groups, Default::default()),
                    groups: path.var(
                        "groups",
                        &[p.groups, p.group_dim],
                        nn::Init::Randn {
                            mean: 0.0,
                            stdev: 1.0,
                        },
                    ),
                    decode: nn::linear(&path / "decode", p.group_dim, d_x, Default::default()),
                });
            }
            att_p = Some(nn::linear(root / "att_p", d, sessions * d_x, no_bias));
            att_c = Some(nn::linear(
                root / "att_c",
                d,
                sessions * p.group_dim,
                no_bias,
            ));
        }
        let inputs = sessions * d_x
            + if p.ubc { sessions * p.group_dim } else { 0 }
            + d
            + if p.user_embedding { d } else { 0 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.dropout);
        Ok(Self {
            user,
            item,
            gru,
            attn_q,
            attn_k,
            attn_v,
            ubc,
            att_p,
            att_c,
            mlp,
            sessions,
            top_n,
            d_x,
            p,
        })
    }
}

impl Him {
    fn pass(&self, b: &DeviceBatch, train: bool) -> Result<Pass> {
        let s = b.sessions.as_ref().ok_or_else(|| model_err(NO_SESSIONS))?;
        let bs = b.size as i64;
        let (ns, n, dx) = (self.sessions, self.top_n, self.d_x);
        let want = [bs, ns, n];
        for (what, t) in [("pos_items", &s.pos_items), ("neg_items", &s.neg_items)] {
            if t.size() != want {
                return Err(model_err(format!(
                    "sessions.{what} has shape {:?}, the feature map says {want:?}",
                    t.size()
                )));
            }
        }
        let d = self.p.embedding_dim;
        let fw = self.p.frequency_weighting;

        // UBP within each session (eqs. 1-4).
        let pos_mask = s.pos_items.ne(0).to_kind(Kind::Float); // [B, S, n]
        let f_pos = frequency_weights(&s.pos_counts, &pos_mask, fw);
        let e_hat = self.item.forward(&s.pos_items) * f_pos.unsqueeze(-1); // [B, S, n, d]
        let mut real = pos_mask.sum_dim_intlist(-1, false, Kind::Float).gt(0.0); // [B, S]
        let (gru_in, neg) = if self.p.ubp.uses_negatives() {
            let neg_mask = s.neg_items.ne(0).to_kind(Kind::Float);
            let f_neg = frequency_weights(&s.neg_counts, &neg_mask, fw);
            let neg = compact_negative(&self.item.forward(&s.neg_items), &f_neg); // [B, S, d]
            real = real.logical_or(&neg_mask.sum_dim_intlist(-1, false, Kind::Float).gt(0.0));
            let gru_in = if self.p.ubp == UbpMode::Full {
                distance_attention(&e_hat, &neg, &pos_mask).1
            } else {
                e_hat
            };
            (gru_in, Some(neg))
        } else {
            (e_hat, None)
        };
        let (states, _) = self.gru.seq(&gru_in.reshape([bs * ns, n, d]));
        let states = states * pos_mask.reshape([bs * ns, n, 1]);
        let mut p_x = states.reshape([bs, ns, -1]);
        if let Some(neg) = &neg {
            p_x = Tensor::cat(&[p_x, neg.shallow_clone()], -1);
        }

        // Self-attention across sessions (eq. 5).
        let q = self.attn_q.forward(&p_x);
        let k = self.attn_k.forward(&p_x);
        let v = self.attn_v.forward(&p_x);
        let scores = q.matmul(&k.transpose(1, 2)) / (dx as f64).sqrt(); // [B, S, S]
        let att = masked_softmax(&scores, &real.to_kind(Kind::Float).unsqueeze(1), -1);
        let p_z = att.matmul(&v); // [B, S, D]

        // Prediction (eqs. 9-10), with UBC (eqs. 6-8) when on.
        let p_z_flat = p_z.reshape([bs, ns * dx]);
        let e_t = self.item.forward(&b.item);
        let mut parts = Vec::new();
        let mut group = None;
        if let (Some(att_p), Some(att_c)) = (&self.att_p, &self.att_c) {
            let mut p_hat = Vec::new();
            let mut c_z = Vec::new();
            for (i, u) in self.ubc.iter().enumerate() {
                let beta = u
                    .encode
                    .forward(&p_x.select(1, i as i64))
                    .softmax(-1, Kind::Float);
                let mu = beta.matmul(&u.groups);
                p_hat.push(u.decode.forward(&mu).sigmoid());
                c_z.push(u.groups.index_select(0, &beta.argmax(-1, false)));
            }
            let p_hat = Tensor::stack(&p_hat, 1); // [B, S, D]
            let c_z = Tensor::cat(&c_z, -1); // [B, S * d_g]
            group = Some(match partners(b, self.p.negative_users, train) {
                Some(pt) => group_hinge(&p_hat, &p_z, &pt, &b.weight),
                None => Tensor::zeros([], (Kind::Float, b.device())),
            });
            let dot = |x: &Tensor, y: &Tensor| (x * y).sum_dim_intlist(-1, false, Kind::Float);
            let a_p = dot(&p_z_flat, &att_p.forward(&e_t));
            let a_c = dot(&c_z, &att_c.forward(&e_t));
            let w = Tensor::stack(&[a_p, a_c], -1).softmax(-1, Kind::Float); // [B, 2]
            parts.push(&p_z_flat * w.narrow(1, 0, 1));
            parts.push(c_z * w.narrow(1, 1, 1));
        } else {
            parts.push(p_z_flat);
        }
        parts.push(e_t);
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        let logits = self
            .mlp
            .forward(&Tensor::cat(&parts, -1), train)
            .squeeze_dim(-1)
            .to_kind(Kind::Float);
        Ok(Pass { logits, group })
    }
}

impl Model for Him {
    fn forward(&self, b: &DeviceBatch, train: bool) -> Result<Output> {
        let p = self.pass(b, train)?;
        let mut out = Output::new(p.logits);
        if let Some(g) = p.group {
            out.extras.push(("group".to_string(), g));
        }
        Ok(out)
    }
    fn losses(&self, out: &Output, b: &DeviceBatch) -> Result<Losses> {
        let mut l = Losses::one("ctr", bce_with_logits(&out.logits, b));
        if self.p.ubc {
            let g = match out.extra("group") {
                Some(t) => t.shallow_clone(),
                None => Tensor::zeros([], (Kind::Float, b.device())),
            };
            l.push("group", g);
        }
        Ok(l)
    }
    fn score(&self, b: &DeviceBatch) -> Result<Tensor> {
        Ok(self.pass(b, false)?.logits.sigmoid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use longtail_core::conformance;
    use longtail_core::data::{FeatureKind, FeatureMap, FeatureSpec};
    use longtail_core::tch::Device;
    use longtail_core::Model;

    fn t(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    fn vals(x: &Tensor) -> Vec<f32> {
        Vec::try_from(x.reshape([-1]).to_kind(Kind::Float)).unwrap()
    }

    fn close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    fn feature_map(s: usize, n: usize) -> FeatureMap {
        let (users, items) = (conformance::USERS, conformance::ITEMS);
        let mut fm = FeatureMap::standard("him-test", users, items, conformance::HIST_LEN);
        fm.features.push(FeatureSpec {
            name: "sessions".into(),
            kind: FeatureKind::Sequence,
            vocab: items,
            max_len: Some(s * n),
            table: "item".into(),
            dims: Some(vec![s, n]),
        });
        fm.hash = fm.compute_hash();
        fm
    }

    fn build(fm: &FeatureMap, params: &toml::Table) -> Result<crate::test_util::Built<Him>> {
        longtail_core::seed::seed_everything(3);
        let ctx = BuildContext::new(fm, params, Device::Cpu);
        crate::test_util::build::<Him>(&ctx)
    }

    fn check(params: &str) -> conformance::Report {
        let t: toml::Table = toml::from_str(params).unwrap();
        conformance::check_with(&crate::builtin_registry().unwrap(), NAME, &t).unwrap()
    }

    #[test]
    fn conformance_default() {
        let r = conformance::check(&crate::builtin_registry().unwrap(), NAME).unwrap();
        assert_eq!(r.loss_terms, vec!["ctr", "group"]);
        assert!(r.loss_last < r.loss_first, "{r:?}");
    }

    #[test]
    fn conformance_positive_ubp_without_ubc() {
        let r = check("ubp = \"positive\"\nubc = false");
        assert_eq!(r.loss_terms, vec!["ctr"]);
    }

    #[test]
    fn conformance_negative_pooling() {
        let r = check("ubp = \"negative_pooling\"");
        assert_eq!(r.loss_terms, vec!["ctr", "group"]);
    }

    #[test]
    fn conformance_other_sizes_without_weighting() {
        let r = check(
            "frequency_weighting = false\nuser_embedding = false\ngru_hidden = 5\n\
             group_dim = 3\ngroups = 2\nnegative_users = 1\nhidden = [16]",
        );
        assert_eq!(r.loss_terms, vec!["ctr", "group"]);
    }

    #[test]
    fn ubp_attention_matches_hand_values() {
        // d = 2, n = 2: positives [1,0] x2 and [0,1] x1; one negative [1,1] x1 (+ a padding slot).
        let e_pos = t(&[1.0, 0.0, 0.0, 1.0], &[1, 2, 2]);
        let pos_counts = t(&[2.0, 1.0], &[1, 2]);
        let pos_mask = t(&[1.0, 1.0], &[1, 2]);
        let e_neg = t(&[1.0, 1.0, 5.0, 5.0], &[1, 2, 2]);
        let neg_counts = t(&[1.0, 0.0], &[1, 2]);
        let neg_mask = t(&[1.0, 0.0], &[1, 2]);

        let f = frequency_weights(&pos_counts, &pos_mask, true);
        let e_hat = &e_pos * f.unsqueeze(-1);
        close(&vals(&e_hat), &[2.0, 0.0, 0.0, 1.0]);
        let neg = compact_negative(&e_neg, &frequency_weights(&neg_counts, &neg_mask, true));
        close(&vals(&neg), &[1.0, 1.0]);

        let (alpha, weighted) = distance_attention(&e_hat, &neg, &pos_mask);
        let (d1, d2) = (2f64.sqrt(), 1f64);
        let a1 = d1.exp() / (d1.exp() + d2.exp());
        let a2 = 1.0 - a1;
        close(&vals(&alpha), &[a1, a2]);
        close(&vals(&weighted), &[2.0 * a1, 0.0, 0.0, a2]);

        // A trailing padding slot (item 0, count 0) gets weight 0 and leaves the others unchanged.
        let e_pos3 = t(&[1.0, 0.0, 0.0, 1.0, 7.0, 7.0], &[1, 3, 2]);
        let counts3 = t(&[2.0, 1.0, 0.0], &[1, 3]);
        let mask3 = t(&[1.0, 1.0, 0.0], &[1, 3]);
        let e_hat3 = &e_pos3 * frequency_weights(&counts3, &mask3, true).unsqueeze(-1);
        let (alpha3, weighted3) = distance_attention(&e_hat3, &neg, &mask3);
        close(&vals(&alpha3), &[a1, a2, 0.0]);
        close(&vals(&weighted3), &[2.0 * a1, 0.0, 0.0, a2, 0.0, 0.0]);

        // Without frequency weighting every real slot counts 1.
        close(
            &vals(&frequency_weights(&counts3, &mask3, false)),
            &[1.0, 1.0, 0.0],
        );

        // An all-padding session: zero weights, no NaN.
        let zero_mask = t(&[0.0, 0.0], &[1, 2]);
        let zeros = t(&[0.0, 0.0, 0.0, 0.0], &[1, 2, 2]);
        let (a0, w0) = distance_attention(&zeros, &t(&[0.0, 0.0], &[1, 2]), &zero_mask);
        close(&vals(&a0), &[0.0, 0.0]);
        close(&vals(&w0), &[0.0; 4]);
    }

    #[test]
    fn group_hinge_matches_hand_values() {
        // S = 1, D = 2, p = 2; row 2 is padding (weight 0).
        let p_hat = t(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 1, 2]);
        let p_z = t(&[1.0, 0.0, 1.0, 1.0, -1.0, -1.0], &[3, 1, 2]);
        let partners = Tensor::from_slice(&[1i64, 2, 0, 2, 0, 1]).view([3, 2]);
        let weight = Tensor::from_slice(&[1.0f32, 1.0, 0.0]);
        // Row 0: cos+ = 1; cos- = 0, 1/√2 → 0 + 1/√2.
        // Row 1: cos+ = 1/√2; cos- = 0, 1/√2 → (1 − 1/√2) + 1.
        // Mean over the two real rows: (1/√2 + 2 − 1/√2) / 2 = 1.
        let l = group_hinge(&p_hat, &p_z, &partners, &weight).double_value(&[]);
        assert!((l - 1.0).abs() < 1e-6, "{l}");
        // The padding row alone would contribute 2 · (1 + 1 + 1/√2).
        let w2 = Tensor::from_slice(&[0.0f32, 0.0, 1.0]);
        let l2 = group_hinge(&p_hat, &p_z, &partners, &w2).double_value(&[]);
        assert!((l2 - 2.0 * (2.0 + 0.5f64.sqrt())).abs() < 1e-5, "{l2}");
        // The hinge clamps at 0: identical p̂/p_z and an opposite partner.
        let p_hat = t(&[1.0, 0.0, -1.0, 0.0], &[2, 1, 2]);
        let p_z = t(&[1.0, 0.0, 0.0, 1.0], &[2, 1, 2]);
        let partners = Tensor::from_slice(&[1i64, 0]).view([2, 1]);
        let l = group_hinge(&p_hat, &p_z, &partners, &Tensor::from_slice(&[1.0f32, 1.0]));
        assert_eq!(l.double_value(&[]), 0.0);
    }

    #[test]
    fn partners_avoid_self_and_padding() {
        let mut host = conformance::tiny_batch().unwrap();
        host.valid = 5;
        for w in host.weight.iter_mut().skip(5) {
            *w = 0.0;
        }
        let b = DeviceBatch::from_host(&host, Device::Cpu).unwrap();
        longtail_core::seed::seed_everything(1);
        for train in [true, false] {
            let pt = partners(&b, 4, train).unwrap();
            assert_eq!(pt.size(), [b.size as i64, 4]);
            let v: Vec<i64> = Vec::try_from(pt.reshape([-1])).unwrap();
            for (k, &x) in v.iter().enumerate() {
                let row = (k / 4) as i64;
                assert!((0..5).contains(&x), "{v:?}");
                if row < 5 {
                    assert_ne!(x, row, "{v:?}");
                }
            }
        }
    }

    #[test]
    fn missing_sessions_feature_is_a_clear_error() {
        let fm = FeatureMap::standard("plain", 9, 24, 6);
        let err = build(&fm, &toml::Table::new()).err().unwrap().to_string();
        assert!(err.contains(NO_SESSIONS), "{err}");
        let err = conformance::check_with(
            &crate::builtin_registry().unwrap(),
            NAME,
            &toml::from_str("ubp = \"negative\"").unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ubp"), "{err}");
    }

    #[test]
    fn score_is_deterministic() {
        let fm = conformance::tiny_feature_map();
        let m = build(&fm, &toml::Table::new()).unwrap();
        let host = conformance::tiny_batch().unwrap();
        let b = DeviceBatch::from_host(&host, Device::Cpu).unwrap();
        let s1 = vals(&m.score(&b).unwrap());
        let s2 = vals(&m.score(&b).unwrap());
        assert_eq!(s1, s2);
        assert!(s1.iter().all(|x| x.is_finite() && *x > 0.0 && *x < 1.0));
        // Eval losses are deterministic too.
        let l = |m: &Him| {
            let out = m.forward(&b, false).unwrap();
            let ls = m.losses(&out, &b).unwrap();
            ls.0.iter()
                .map(|(_, t)| t.double_value(&[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(l(&m), l(&m));
    }

    #[test]
    fn gradients_reach_ubc_and_ubp() {
        let fm = conformance::tiny_feature_map();
        let m = build(&fm, &toml::Table::new()).unwrap();
        let host = conformance::tiny_batch().unwrap();
        let b = DeviceBatch::from_host(&host, Device::Cpu).unwrap();
        let out = m.forward(&b, true).unwrap();
        let total = m.losses(&out, &b).unwrap().weighted_total(|_| 1.0).unwrap();
        total.backward();
        for (name, v) in m.vs.variables() {
            let g = v.grad();
            assert!(g.defined(), "{name} has no gradient");
            let g = g.abs().sum(Kind::Float).double_value(&[]);
            assert!(g.is_finite(), "{name}: {g}");
            if name.starts_with("ubc") || name.starts_with("gru") || name.starts_with("attention") {
                assert!(g > 0.0, "{name} gets no gradient");
            }
        }
    }

    #[test]
    fn parameter_count_for_defaults() {
        // S = 4, n = 10, d = h = 8, D = 10·8 + 8 = 88, k = 5, d_g = 16.
        let fm = feature_map(4, 10);
        let m = build(&fm, &toml::Table::new()).unwrap();
        let total: i64 =
            m.vs.trainable_variables()
                .iter()
                .map(|v| v.numel() as i64)
                .sum();
        let (d, h, n, s, k, g) = (8, 8, 10, 4, 5, 16);
        let dx = n * h + d;
        let gru = 3 * h * (d + h) + 6 * h;
        let attention = 3 * dx * dx;
        let ubc = s * ((dx * k + k) + k * g + (g * dx + dx));
        let bilinear = d * s * dx + d * s * g;
        let inputs = s * dx + s * g + 2 * d;
        let mlp = inputs * 256 + 256 + 256 * 128 + 128 + 128 * 32 + 32 + 32 + 1;
        let emb = d * (conformance::ITEMS + conformance::USERS) as i64;
        let non_emb = gru + attention + ubc + bilinear + mlp;
        assert_eq!(non_emb, 182_981);
        assert_eq!(total, non_emb + emb, "total {total}");
    }
}
