//! The two-tower retrieval backbone of IDW (Mehta et al., "Density Weighting for
//! Multi-Interest Personalized Recommendation"): a transformer user tower with parametric
//! attention into M user representations (§3.1; M = 1 is SUR, M = 5 MUR), an MLP item tower, the
//! candidate-aware affinity of eq. 4 and the in-batch softmax with logQ correction (eqs. 1-3),
//! plus the loss-side baselines of §4.3 (focal, Qmargin, item normalization). Frequency balance
//! (eq. 5) and IDW's density weights (eq. 10) are sample weights the trainer multiplies into
//! `batch.weight`; this model only has to honour them.
//!
//! Choices:
//! - **Two id tables** (`user_tower.embedding` for the history, `item_tower.embedding` for the
//!   candidates, both `[items, embedding_dim]`, `padding_idx = 0`, N(0, `embedding_std` =
//!   0.05)). The paper's figure 2 feeds the item tower a one-hot item and the user tower the
//!   history, and TFRS builds one embedding per tower. A shared table would sit under the item
//!   tower's prefix, so IDW's user-tower calibration (which freezes the item tower) would freeze
//!   the history embeddings too and leave only the encoder and queries to calibrate; with two
//!   tables calibration retrains the whole user tower against fixed item representations. The
//!   price: 2 × |I| × D embedding parameters and no tying between an item's history and
//!   candidate vectors. 0.05 is the scale of Keras' default `uniform(-0.05, 0.05)` embedding
//!   init (TFRS, §4.4); libtorch's N(0, 1) overfits sparse ids.
//! - **Encoder** (§4.4: "a self-attention encoder with two multi-head attention layers and four
//!   attention heads per layer"): `longtail_core::attention::TransformerEncoder`, learned
//!   positions (N(0, 0.02), `max_len` = the feature map's `hist` length, oldest first with
//!   padding after so slot p is position p), `layers` = 2 post-LayerNorm blocks of `heads` = 4
//!   heads, GELU feed-forward of width `ffn_dim` (absent = 4 × D, BERT's ratio), `dropout` = 0.0
//!   (the paper names none). Padding keys are masked and padding rows zeroed, so trailing
//!   padding never changes a user's representations. `attention` = `"fused"` (default) computes
//!   the attention product with libtorch's `scaled_dot_product_attention`, `"math"` writes it
//!   out as runs before 2026-12-02 did (`longtail_core::attention::AttentionKernel`; the two
//!   agree to about 1e-7, so a `"math"` run repeats those runs' numbers exactly and a `"fused"`
//!   one does not).
//! - **Parametric attention** (§3.1, after Humeau et al.'s poly-encoder): M learned global
//!   queries `user_tower.queries [M, D]`, `α_m = softmax_i(q_mᵀ h_i)` over the real positions
//!   (unscaled, as the paper's formula; padding gets weight 0, an empty history all-zero weights
//!   so `z = 0` and finite scores), `z_m = Σ_i α_m^(i) h_i` → `user_repr [B, M, D]`. Queries
//!   start N(0, 1/D): with LayerNorm'd `h` the attention logits start with unit variance, so
//!   each query attends differently from the first step.
//! - **Item tower** (§4.4: "an MLP with two fully connected layers each with 16 output nodes"):
//!   `item_hidden` = [16, 16] Linear layers on the item's id embedding, ReLU between, none after
//!   the last (a representation, not an activation); no dropout. The last width must equal
//!   `embedding_dim` (the user side's width).
//! - **Affinity**: eq. 4 (`longtail_core::losses::candidate_aware_scores`, the trait's default
//!   `score_candidates`): each candidate mixes the user's M interests by `softmax_m(z_mᵀ g)`.
//!   `forward` gives the in-batch `[B, B]` logits, `score` the diagonal (each row's own pair) in
//!   eval mode.
//! - **Loss** (one term, `softmax`, whatever `loss` is, so loss weights stay comparable):
//!   `"softmax"` = in-batch softmax (eqs. 1-3) via `longtail_core::losses::in_batch_softmax`:
//!   logQ correction (`logq_correction` = true, eq. 2, `log p(y)` from `batch.item_logq`),
//!   padding columns and accidental hits (another column holding the row's own item) masked,
//!   mean over rows weighted by `batch.weight` (`Σ w_i l_i / max(Σ w_i, 1)`: the core kernel's
//!   clamp). `"focal"` (Lin et al. 2017): the same corrected, masked softmax probability `p_y`,
//!   per row `-(1 - p_y)^γ log p_y` (`focal_gamma` = 2.0, Lin et al.'s default; the modulating
//!   factor is not detached), the same weighted mean; γ = 0 is exactly `"softmax"`. `"qmargin"`
//!   (Cao et al. 2019, LDAM): the positive logit of each row is lowered by
//!   `δ_y = C · p(y)^(-1/4)` (`p(y) = exp(item_logq)`, the same sampling frequency as logQ)
//!   before the corrected softmax, so rare items must win by a larger margin. LDAM tunes C so
//!   the largest margin is 0.5; `qmargin_scale` = 0.015 gives 0.5 for an item seen once in
//!   about a million interactions (MovieLens-1M's size; δ ≈ 0.08 at p = 10⁻³).
//! - **Item normalization** (`item_norm`, §4.3 "Item Norm" and its post-hoc variant):
//!   `"none"` (default); `"train"`: `g / ‖g‖` always (training and inference); `"posthoc"`: the
//!   item tower trains unnormalized and `g / ‖g‖` is applied only outside training (`item_repr`,
//!   `score`, `forward(train = false)`). Normalized items are further divided by `temperature`
//!   (default 1.0, so they have norm 1/τ): a τ < 1 widens the logit range of normalized items;
//!   the user side is not normalized and can learn its own scale, so 1.0 needs no tuning. The
//!   temperature lives in the item representation so training, eq. 4's interest mixing and
//!   evaluation all see the same scale; it is ignored with `"none"` (as `focal_gamma` and
//!   `qmargin_scale` are for the other losses).
//! - **Variable names**: every item-tower variable is under `item_tower.` (`embedding.weight`,
//!   `mlp.{i}.weight|bias`), every user-tower variable under `user_tower.` (`embedding.weight`,
//!   `encoder.position`, `encoder.layers.{i}.…`, `queries`); `item_tower_prefixes()` is
//!   `["item_tower"]`, the part IDW's calibration freezes.
//! - Histories longer than `max_len` are a caller error (the encoder panics).

use crate::checks;
use longtail_core::attention::{AttentionKernel, TransformerEncoder};
use longtail_core::layers::{id_embedding_config, masked_softmax, Mlp};
use longtail_core::losses::in_batch_softmax;
use longtail_core::tch::nn::{self, Module};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{
    BuildContext, Check, DeviceBatch, Losses, Model, ModelParams, ModelSpec, Output, Result, Towers,
};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "twotower";
/// Prefix of every item-tower variable (frozen by IDW's user-tower calibration).
pub const ITEM_TOWER: &str = "item_tower";
/// Prefix of every user-tower variable.
pub const USER_TOWER: &str = "user_tower";

/// Hyper-parameters (`[model.params]`). Defaults are IDW §4.4: D = 16, M = 5, a 2-layer 4-head
/// transformer user tower and a [16, 16] MLP item tower, in-batch softmax with logQ correction.
/// Checked before any data is read: widths (`embedding_dim`, `ffn_dim`, `item_hidden`, whose
/// last entry must equal `embedding_dim`) in `[1, 65536]`, `interests` in `[1, 256]`, `layers` in
/// `[1, 64]`, `heads` in `[1, 65536]` dividing `embedding_dim`, `embedding_std` in `(0, 10]`,
/// `dropout` in `[0, 1)`, `focal_gamma` and `qmargin_scale` in `[0, 10]`, `temperature` in
/// `(0, 100]`, and the words of `loss`, `item_norm` and `attention`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct TwoTowerParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of both id tables [0.05].
    pub embedding_std: f64,
    /// Number of user representations M (1 = SUR).
    pub interests: i64,
    /// Transformer blocks in the user tower.
    pub layers: i64,
    /// Attention heads per block; must divide `embedding_dim`.
    pub heads: i64,
    /// Feed-forward width; absent = 4 × `embedding_dim`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffn_dim: Option<i64>,
    /// Dropout inside the encoder (input and both residual branches).
    pub dropout: f64,
    /// The encoder's attention kernel: `"fused"` or `"math"` (same model, float rounding apart).
    pub attention: AttentionKernel,
    /// Output widths of the item tower's layers; the last must equal `embedding_dim`.
    pub item_hidden: Vec<i64>,
    /// Subtract `log p(y)` from every in-batch logit (IDW eq. 2).
    pub logq_correction: bool,
    /// `"softmax"`, `"focal"` or `"qmargin"`.
    pub loss: LossKind,
    /// Focusing parameter γ of `loss = "focal"`.
    pub focal_gamma: f64,
    /// C in the Qmargin margin `δ_y = C · p(y)^(-1/4)`.
    pub qmargin_scale: f64,
    /// `"none"`, `"train"` or `"posthoc"`.
    pub item_norm: ItemNorm,
    /// Normalized item representations are divided by this (norm 1/τ).
    pub temperature: f64,
}

impl Default for TwoTowerParams {
    fn default() -> Self {
        Self {
            embedding_dim: 16,
            embedding_std: 0.05,
            interests: 5,
            layers: 2,
            heads: 4,
            ffn_dim: None,
            dropout: 0.0,
            attention: AttentionKernel::Fused,
            item_hidden: vec![16, 16],
            logq_correction: true,
            loss: LossKind::Softmax,
            focal_gamma: 2.0,
            qmargin_scale: 0.015,
            item_norm: ItemNorm::None,
            temperature: 1.0,
        }
    }
}

/// The training loss (`loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// `"softmax"`: in-batch softmax (IDW eqs. 1-3).
    Softmax,
    /// `"focal"`: focal loss on the in-batch softmax probability (Lin et al. 2017).
    Focal,
    /// `"qmargin"`: per-item margin `C · p(y)^(-1/4)` on the positive logit (Cao et al. 2019).
    #[serde(rename = "qmargin")]
    QMargin,
}

/// When item representations are L2-normalized (`item_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum ItemNorm {
    /// `"none"`: never.
    None,
    /// `"train"`: in training and inference.
    Train,
    /// `"posthoc"`: only outside training.
    Posthoc,
}

/// Upper bound of `focal_gamma` (Lin et al. use at most 5).
pub const MAX_FOCAL_GAMMA: f64 = 10.0;
/// Upper bound of `qmargin_scale` (the default 0.015 already gives a 0.5 margin to an item seen
/// once in a million).
pub const MAX_QMARGIN_SCALE: f64 = 10.0;
/// Upper bound of `temperature`.
pub const MAX_TEMPERATURE: f64 = 100.0;

impl ModelParams for TwoTowerParams {
    fn validate(&self, c: &Check) -> Result<()> {
        let d = self.embedding_dim;
        checks::embedding(c, d, self.embedding_std)?;
        checks::interests(c, self.interests)?;
        checks::encoder(c, self.layers, self.heads, d, self.ffn_dim)?;
        c.prob("dropout", self.dropout)?;
        c.dims("item_hidden", &self.item_hidden)?;
        match self.item_hidden.last() {
            None => return Err(c.bad("item_hidden", "the item tower needs at least one layer")),
            Some(&last) if last != d => {
                return Err(c.bad(
                    "item_hidden",
                    format!(
                        "the last item-tower width ({last}) must equal embedding_dim ({d}), the \
                         user representations' width"
                    ),
                ))
            }
            Some(_) => {}
        }
        c.non_negative("focal_gamma", self.focal_gamma, MAX_FOCAL_GAMMA)?;
        c.non_negative("qmargin_scale", self.qmargin_scale, MAX_QMARGIN_SCALE)?;
        c.positive("temperature", self.temperature, MAX_TEMPERATURE)
    }
    /// One term, `softmax`, whatever `loss` is (so loss weights stay comparable).
    fn loss_terms(&self) -> Vec<String> {
        vec!["softmax".to_string()]
    }
}

pub struct TwoTower {
    user_embedding: nn::Embedding,
    encoder: TransformerEncoder,
    /// `[M, D]` global attention queries.
    queries: Tensor,
    item_embedding: nn::Embedding,
    item_mlp: Mlp,
    loss: LossKind,
    logq_correction: bool,
    focal_gamma: f64,
    qmargin_scale: f64,
    item_norm: ItemNorm,
    temperature: f64,
}

impl ModelSpec for TwoTower {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "IDW two-tower retrieval: transformer user tower + parametric attention into M interests, \
         MLP item tower, candidate-aware scores (eq. 4), in-batch softmax with logQ \
         (focal / qmargin / item-norm variants)";
    type Params = TwoTowerParams;

    fn build(root: &nn::Path, p: TwoTowerParams, ctx: &BuildContext) -> Result<Self> {
        let d = p.embedding_dim;
        let ffn_dim = p.ffn_dim.unwrap_or(4 * d);
        let (loss, item_norm) = (p.loss, p.item_norm);
        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        let max_len = checks::hist_max_len(fm.require("hist", NAME)?, NAME, checks::POSITIONS)?;
        let user = root / USER_TOWER;
        let item = root / ITEM_TOWER;
        let cfg = id_embedding_config(p.embedding_std);
        let user_embedding = nn::embedding(&user / "embedding", items, d, cfg);
        let encoder = TransformerEncoder::new(
            &(&user / "encoder"),
            d,
            p.heads,
            p.layers,
            ffn_dim,
            p.dropout,
            max_len,
        )?
        .with_kernel(p.attention);
        let queries = user.var(
            "queries",
            &[p.interests, d],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0 / (d as f64).sqrt(),
            },
        );
        let item_embedding = nn::embedding(&item / "embedding", items, d, cfg);
        let (last, hidden) = p
            .item_hidden
            .split_last()
            .expect("item_hidden was checked to be non-empty");
        let item_mlp = Mlp::new(&(&item / "mlp"), d, hidden, *last, 0.0);
        Ok(Self {
            user_embedding,
            encoder,
            queries,
            item_embedding,
            item_mlp,
            loss,
            logq_correction: p.logq_correction,
            focal_gamma: p.focal_gamma,
            qmargin_scale: p.qmargin_scale,
            item_norm,
            temperature: p.temperature,
        })
    }
}

impl TwoTower {
    pub fn loss_kind(&self) -> LossKind {
        self.loss
    }

    pub fn item_norm(&self) -> ItemNorm {
        self.item_norm
    }

    /// The parametric-attention weights `[B, M, L]` (0 on padding) and the user representations
    /// `[B, M, D]` of the batch's histories.
    fn attend(&self, b: &DeviceBatch, train: bool) -> (Tensor, Tensor) {
        let e = self.user_embedding.forward(&b.hist);
        let h = self.encoder.forward(&e, &b.hist_mask, train); // [B, L, D]
        let scores = h.matmul(&self.queries.tr()).transpose(1, 2); // [B, M, L]
        let alpha = masked_softmax(&scores, &b.hist_mask.unsqueeze(1), -1);
        let z = alpha.matmul(&h);
        (alpha, z)
    }

    /// User representations `[B, M, D]`.
    fn users(&self, b: &DeviceBatch, train: bool) -> Tensor {
        self.attend(b, train).1
    }

    /// Whether item representations are normalized in this mode.
    fn normalizes(&self, train: bool) -> bool {
        match self.item_norm {
            ItemNorm::None => false,
            ItemNorm::Train => true,
            ItemNorm::Posthoc => !train,
        }
    }

    /// Item representations `[N, D]` of `ids [N]`: the MLP on the id embedding, divided by
    /// `temperature · ‖g‖` when this mode normalizes.
    fn items(&self, ids: &Tensor, train: bool) -> Tensor {
        let g = self
            .item_mlp
            .forward(&self.item_embedding.forward(ids), train);
        if self.normalizes(train) {
            let norm = g.norm_scalaropt_dim(2.0, [-1i64], true).clamp_min(1e-12);
            g / (norm * self.temperature)
        } else {
            g
        }
    }

    /// Eq. 4 for each row's own pair: `users [B, M, D]`, `items [B, D]` -> `[B]` (the diagonal
    /// of `candidate_aware_scores(users, items)` without the `[B, B]` matrix).
    fn pair_scores(users: &Tensor, items: &Tensor) -> Tensor {
        let a = users
            .matmul(&items.unsqueeze(-1))
            .squeeze_dim(-1)
            .to_kind(Kind::Float); // [B, M]
        let w = a.softmax(-1, Kind::Float);
        (w * a).sum_dim_intlist(-1, false, Kind::Float)
    }

    /// Qmargin's per-row margin `δ_y = C · p(y)^(-1/4)` with `p(y) = exp(item_logq)`, `[B]`.
    fn margins(&self, b: &DeviceBatch) -> Tensor {
        (&b.item_logq * -0.25).exp() * self.qmargin_scale
    }

    /// `log p_y` `[B]` of each row's positive under the in-batch softmax, with exactly the
    /// corrections and masks of `longtail_core::losses::in_batch_softmax` (logQ, padding
    /// columns, accidental hits).
    fn positive_log_probs(&self, logits: &Tensor, b: &DeviceBatch) -> Tensor {
        let n = logits.size()[0];
        let l = if self.logq_correction {
            logits - b.item_logq.unsqueeze(0)
        } else {
            logits.shallow_clone()
        };
        let pad_col = b.padding_rows().unsqueeze(0);
        let eye = Tensor::eye(n, (Kind::Bool, logits.device()));
        let hit = b
            .item
            .unsqueeze(1)
            .eq_tensor(&b.item.unsqueeze(0))
            .logical_and(&eye.logical_not());
        let l = l.masked_fill(&pad_col, -1e9).masked_fill(&hit, -1e9);
        let target = Tensor::arange(n, (Kind::Int64, logits.device()));
        l.log_softmax(-1, Kind::Float)
            .gather(1, &target.unsqueeze(1), false)
            .squeeze_dim(1)
    }

    /// The scalar training loss of in-batch `logits [B, B]`.
    fn loss_value(&self, logits: &Tensor, b: &DeviceBatch) -> Tensor {
        match self.loss {
            LossKind::Softmax => in_batch_softmax(logits, b, self.logq_correction),
            LossKind::QMargin => {
                let lowered = logits - self.margins(b).diag_embed(0, -2, -1);
                in_batch_softmax(&lowered, b, self.logq_correction)
            }
            LossKind::Focal => {
                let logp = self.positive_log_probs(logits, b);
                // 1 - p_y, accurately for p_y near 1; clamped so a non-integer γ < 1 has a
                // finite gradient at p_y = 1.
                let factor = logp
                    .expm1()
                    .neg()
                    .clamp_min(1e-12)
                    .pow_tensor_scalar(self.focal_gamma);
                let per = (factor * logp).neg();
                (per * &b.weight).sum(Kind::Float) / b.weight_sum()
            }
        }
    }
}

impl Model for TwoTower {
    fn forward(&self, batch: &DeviceBatch, train: bool) -> Result<Output> {
        let users = self.users(batch, train);
        let items = self.items(&batch.item, train);
        Ok(Output::new(self.score_candidates(&users, &items)?))
    }
    fn losses(&self, out: &Output, batch: &DeviceBatch) -> Result<Losses> {
        Ok(Losses::one("softmax", self.loss_value(&out.logits, batch)))
    }
    fn score(&self, batch: &DeviceBatch) -> Result<Tensor> {
        Ok(Self::pair_scores(
            &self.users(batch, false),
            &self.items(&batch.item, false),
        ))
    }
    fn as_towers(&self) -> Option<&dyn Towers> {
        Some(self)
    }
}

impl Towers for TwoTower {
    fn user_repr(&self, batch: &DeviceBatch) -> Result<Tensor> {
        Ok(self.users(batch, false))
    }
    fn item_repr(&self, items: &Tensor) -> Result<Tensor> {
        Ok(self.items(items, false))
    }
    fn item_tower_prefixes(&self) -> Vec<String> {
        vec![ITEM_TOWER.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{rows, table};
    use longtail_core::conformance;
    use longtail_core::data::HostBatch;
    use longtail_core::losses::candidate_aware_scores;
    use longtail_core::tch::Device;
    use longtail_core::Model;

    fn model(params: &str) -> crate::test_util::Built<TwoTower> {
        let fm = conformance::tiny_feature_map();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        longtail_core::seed::seed_everything(5);
        crate::test_util::build::<TwoTower>(&ctx).unwrap()
    }

    fn host(items: &[i64], hist: &[Vec<i64>]) -> HostBatch {
        let n = items.len();
        HostBatch::from_dense(vec![2; n], items.to_vec(), vec![1.0; n], hist).unwrap()
    }

    fn dev(h: &HostBatch) -> DeviceBatch {
        DeviceBatch::from_host(h, Device::Cpu).unwrap()
    }

    /// A batch for hand-made logits: items, `log p(y)` and weights per row.
    fn hand_batch(items: &[i64], logq: &[f32], weight: &[f32]) -> DeviceBatch {
        let mut h = host(items, &vec![vec![1]; items.len()]);
        h.item_logq = logq.to_vec();
        h.weight = weight.to_vec();
        h.valid = weight.iter().take_while(|w| **w > 0.0).count();
        dev(&h)
    }

    fn matrix(rows: &[Vec<f64>]) -> Tensor {
        let n = rows.len() as i64;
        let flat: Vec<f32> = rows.iter().flatten().map(|v| *v as f32).collect();
        Tensor::from_slice(&flat).view([n, -1])
    }

    fn loss_of(m: &TwoTower, logits: &Tensor, b: &DeviceBatch) -> f64 {
        let l = m.losses(&Output::new(logits.shallow_clone()), b).unwrap();
        assert_eq!(l.names(), ["softmax"]);
        l.0[0].1.double_value(&[])
    }

    /// `log softmax(row)[t]` over the columns not in `masked`.
    fn log_prob(row: &[f64], t: usize, masked: &[usize]) -> f64 {
        let z: f64 = row
            .iter()
            .enumerate()
            .filter(|(j, _)| !masked.contains(j))
            .map(|(_, v)| v.exp())
            .sum();
        row[t] - z.ln()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < tol)
    }

    const LOGITS: [[f64; 3]; 3] = [[2.0, 0.5, -1.0], [0.0, 1.0, 0.3], [0.7, -0.2, 1.5]];

    fn logits3() -> Tensor {
        matrix(&LOGITS.iter().map(|r| r.to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn conformance_default_and_variants() {
        let reg = crate::builtin_registry().unwrap();
        let r = conformance::check(&reg, NAME).unwrap();
        assert_eq!(r.loss_terms, ["softmax"]);
        for params in [
            "interests = 1",
            "loss = \"focal\"",
            "loss = \"qmargin\"",
            "item_norm = \"train\"",
            "item_norm = \"posthoc\"",
            "item_norm = \"train\"\ntemperature = 0.2\nlogq_correction = false",
            "layers = 1\nheads = 2\nffn_dim = 8\nitem_hidden = [16]\ndropout = 0.1",
            "attention = \"math\"",
        ] {
            conformance::check_with(&reg, NAME, &table(params))
                .unwrap_or_else(|e| panic!("{params}: {e}"));
        }
    }

    #[test]
    fn logq_correction_matches_hand_computation() {
        let logq = [0.8f64.ln(), 0.15f64.ln(), 0.05f64.ln()];
        let lq: Vec<f32> = logq.iter().map(|v| *v as f32).collect();
        let b = hand_batch(&[1, 2, 3], &lq, &[1.0; 3]);
        let plain: f64 = (0..3).map(|i| -log_prob(&LOGITS[i], i, &[])).sum::<f64>() / 3.0;
        let corrected: f64 = (0..3)
            .map(|i| {
                let row: Vec<f64> = (0..3).map(|j| LOGITS[i][j] - logq[j]).collect();
                -log_prob(&row, i, &[])
            })
            .sum::<f64>()
            / 3.0;
        let with = loss_of(&model(""), &logits3(), &b);
        let without = loss_of(&model("logq_correction = false"), &logits3(), &b);
        assert!((with - corrected).abs() < 1e-5, "{with} vs {corrected}");
        assert!((without - plain).abs() < 1e-5, "{without} vs {plain}");
        assert!((with - without).abs() > 1e-2, "{with} vs {without}");
    }

    /// Rows 0 and 1 share item 5 (an accidental hit each), row 3 is padding.
    fn focal_case() -> (Tensor, DeviceBatch, Vec<Vec<f64>>, [f64; 4]) {
        let raw = vec![
            vec![1.0, 0.4, -0.5, 3.0],
            vec![0.2, -0.3, 0.8, 3.0],
            vec![-1.0, 0.6, 0.9, 3.0],
            vec![0.0, 0.0, 0.0, 0.0],
        ];
        let logq = [0.4f64.ln(), 0.4f64.ln(), 0.1f64.ln(), 0.1f64.ln()];
        let lq: Vec<f32> = logq.iter().map(|v| *v as f32).collect();
        let b = hand_batch(&[5, 5, 7, 9], &lq, &[1.0, 1.0, 1.0, 0.0]);
        (matrix(&raw), b, raw, logq)
    }

    #[test]
    fn focal_with_zero_gamma_is_softmax_and_matches_hand_value() {
        let (logits, b, raw, logq) = focal_case();
        let softmax = loss_of(&model(""), &logits, &b);
        let focal0 = loss_of(&model("loss = \"focal\"\nfocal_gamma = 0.0"), &logits, &b);
        assert!((softmax - focal0).abs() < 1e-6, "{softmax} vs {focal0}");
        let masked = [vec![1, 3], vec![0, 3], vec![3]];
        let mut sum_plain = 0.0;
        let mut sum_focal = 0.0;
        for i in 0..3 {
            let row: Vec<f64> = (0..4).map(|j| raw[i][j] - logq[j]).collect();
            let lp = log_prob(&row, i, &masked[i]);
            sum_plain += -lp;
            sum_focal += -(1.0 - lp.exp()).powi(2) * lp;
        }
        assert!((softmax - sum_plain / 3.0).abs() < 1e-5, "{softmax}");
        let focal2 = loss_of(&model("loss = \"focal\""), &logits, &b);
        assert!(
            (focal2 - sum_focal / 3.0).abs() < 1e-5,
            "{focal2} vs {}",
            sum_focal / 3.0
        );
        assert!(focal2 < softmax);
    }

    #[test]
    fn qmargin_lowers_the_positive_by_c_p_to_the_minus_quarter() {
        let p = [0.4f64, 0.1];
        let lq: Vec<f32> = p.iter().map(|v| v.ln() as f32).collect();
        let b = hand_batch(&[1, 2], &lq, &[1.0, 1.0]);
        let m = model("loss = \"qmargin\"\nqmargin_scale = 0.5");
        let got: Vec<f32> = Vec::try_from(m.margins(&b)).unwrap();
        let want: Vec<f32> = p.iter().map(|v| (0.5 * v.powf(-0.25)) as f32).collect();
        assert!(close(&got, &want, 1e-6), "{got:?} vs {want:?}");
        let raw = vec![vec![1.0, 0.2], vec![0.3, 0.9]];
        let hand: f64 = (0..2)
            .map(|i| {
                let mut row: Vec<f64> = (0..2).map(|j| raw[i][j] - p[j].ln()).collect();
                row[i] -= 0.5 * p[i].powf(-0.25);
                -log_prob(&row, i, &[])
            })
            .sum::<f64>()
            / 2.0;
        let l = loss_of(&m, &matrix(&raw), &b);
        assert!((l - hand).abs() < 1e-5, "{l} vs {hand}");
        // C = 0 is the plain softmax.
        let zero = loss_of(
            &model("loss = \"qmargin\"\nqmargin_scale = 0.0"),
            &matrix(&raw),
            &b,
        );
        let softmax = loss_of(&model(""), &matrix(&raw), &b);
        assert!((zero - softmax).abs() < 1e-6 && l > softmax);
    }

    #[test]
    fn sample_weights_weight_every_loss_kind() {
        // IDW eq. 10: Σ_i w_i l_i / Σ_i w_i (Σ w ≥ 1, below the core kernel's clamp).
        let w = [2.0f64, 1.0, 0.5];
        let wf: Vec<f32> = w.iter().map(|v| *v as f32).collect();
        let lq = [0.3f32.ln(), 0.3f32.ln(), 0.4f32.ln()];
        let b = hand_batch(&[1, 2, 3], &lq, &wf);
        let c = 0.2;
        for (params, kind) in [
            ("", 0),
            ("loss = \"focal\"\nfocal_gamma = 1.5", 1),
            ("loss = \"qmargin\"\nqmargin_scale = 0.2", 2),
        ] {
            let per: Vec<f64> = (0..3)
                .map(|i| {
                    let mut row: Vec<f64> =
                        (0..3).map(|j| LOGITS[i][j] - f64::from(lq[j])).collect();
                    if kind == 2 {
                        row[i] -= c * f64::from(lq[i]).exp().powf(-0.25);
                    }
                    let lp = log_prob(&row, i, &[]);
                    if kind == 1 {
                        -(1.0 - lp.exp()).powf(1.5) * lp
                    } else {
                        -lp
                    }
                })
                .collect();
            let hand = (0..3).map(|i| w[i] * per[i]).sum::<f64>() / w.iter().sum::<f64>();
            let got = loss_of(&model(params), &logits3(), &b);
            assert!((got - hand).abs() < 1e-5, "{params}: {got} vs {hand}");
        }
    }

    #[test]
    fn item_normalization_modes() {
        let ids = Tensor::from_slice(&[1i64, 4, 9, 23]);
        let norms = |t: &Tensor| -> Vec<f32> {
            Vec::try_from(t.norm_scalaropt_dim(2.0, [-1i64], false)).unwrap()
        };
        let ones = [1.0f32; 4];
        longtail_core::tch::no_grad(|| {
            let post = model("item_norm = \"posthoc\"");
            let raw = post.items(&ids, true);
            assert!(!close(&norms(&raw), &ones, 1e-3), "{:?}", norms(&raw));
            let eval = post.item_repr(&ids).unwrap();
            assert!(close(&norms(&eval), &ones, 1e-5));
            let want = &raw / raw.norm_scalaropt_dim(2.0, [-1i64], true);
            assert!(close(&rows(&eval).concat(), &rows(&want).concat(), 1e-6));
            // Training logits use the raw items, eval logits the normalized ones.
            let b = dev(&host(&[1, 4, 9], &[vec![3, 5], vec![7], vec![2, 4, 6]]));
            let users = post.users(&b, true);
            let raw_items = post.items(&b.item, true);
            let train = post.forward(&b, true).unwrap().logits;
            let want = candidate_aware_scores(&users, &raw_items);
            assert!(close(&rows(&train).concat(), &rows(&want).concat(), 1e-6));
            let eval_logits = post.forward(&b, false).unwrap().logits;
            let normed = candidate_aware_scores(&users, &post.item_repr(&b.item).unwrap());
            assert!(close(
                &rows(&eval_logits).concat(),
                &rows(&normed).concat(),
                1e-6
            ));

            let train_norm = model("item_norm = \"train\"\ntemperature = 0.5");
            for t in [true, false] {
                let n = norms(&train_norm.items(&ids, t));
                assert!(close(&n, &[2.0; 4], 1e-5), "{n:?}");
            }
            let none = model("");
            for t in [true, false] {
                assert!(!close(&norms(&none.items(&ids, t)), &ones, 1e-3));
            }
            assert_eq!(post.item_norm(), ItemNorm::Posthoc);
        });
    }

    #[test]
    fn item_tower_prefixes_cover_exactly_the_item_tower() {
        let m = model("");
        let prefixes = m.item_tower_prefixes();
        assert_eq!(prefixes, [ITEM_TOWER]);
        let names: Vec<String> = m.vs.variables().into_keys().collect();
        for n in &names {
            assert!(
                n.starts_with("item_tower.") || n.starts_with("user_tower."),
                "{n}"
            );
        }
        let mut frozen: Vec<&str> = names
            .iter()
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())))
            .map(String::as_str)
            .collect();
        frozen.sort_unstable();
        assert_eq!(
            frozen,
            [
                "item_tower.embedding.weight",
                "item_tower.mlp.0.bias",
                "item_tower.mlp.0.weight",
                "item_tower.mlp.1.bias",
                "item_tower.mlp.1.weight",
            ]
        );
        for n in [
            "user_tower.embedding.weight",
            "user_tower.queries",
            "user_tower.encoder.position",
            "user_tower.encoder.layers.1.attention.q.weight",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        // The item tower alone decides item_repr: it depends on no user-tower variable.
        let ids = Tensor::from_slice(&[3i64, 5]);
        m.item_repr(&ids).unwrap().sum(Kind::Float).backward();
        for (n, t) in m.vs.variables() {
            let g = t.grad();
            let touched = g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0;
            assert_eq!(touched, n.starts_with("item_tower."), "{n}");
        }
    }

    #[test]
    fn trailing_padding_does_not_change_user_repr() {
        let m = model("");
        let hist = [vec![3, 5, 7], vec![3, 5], vec![]];
        let padded: Vec<Vec<i64>> = hist
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.resize(6, 0);
                r
            })
            .collect();
        let a = dev(&host(&[6, 8, 10], &hist));
        let b = dev(&host(&[6, 8, 10], &padded));
        assert_eq!(b.hist.size(), [3, 6]);
        longtail_core::tch::no_grad(|| {
            let ua = m.user_repr(&a).unwrap();
            let ub = m.user_repr(&b).unwrap();
            assert_eq!(ua.size(), [3, 5, 16]);
            let (ra, rb) = (rows(&ua.view([3, -1])), rows(&ub.view([3, -1])));
            for r in 0..3 {
                assert!(close(&ra[r], &rb[r], 1e-5), "row {r}");
            }
            // The empty history: all-zero representations, finite scores.
            assert!(ra[2].iter().all(|v| *v == 0.0));
            let s: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
            assert!(s.iter().all(|v| v.is_finite()), "{s:?}");
            // Attention weights are 0 on padding and sum to 1 over real positions.
            let (alpha, _) = m.attend(&b, false);
            let al = rows(&alpha.get(1));
            for q in &al {
                assert!(q[2..].iter().all(|v| *v == 0.0), "{q:?}");
                assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        });
    }

    #[test]
    fn score_is_the_diagonal_of_the_in_batch_logits() {
        for params in ["", "interests = 1", "item_norm = \"posthoc\""] {
            let m = model(params);
            let b = dev(&host(
                &[1, 4, 9, 12],
                &[vec![3, 5], vec![7], vec![2, 4, 6], vec![11, 13, 15, 17]],
            ));
            longtail_core::tch::no_grad(|| {
                let s: Vec<f32> = Vec::try_from(m.score(&b).unwrap()).unwrap();
                let d: Vec<f32> =
                    Vec::try_from(m.forward(&b, false).unwrap().logits.diagonal(0, 0, 1)).unwrap();
                assert!(close(&s, &d, 1e-5), "{params}: {s:?} vs {d:?}");
                if params == "interests = 1" {
                    // One interest: the plain dot product.
                    let u = m.user_repr(&b).unwrap().squeeze_dim(1);
                    let i = m.item_repr(&b.item).unwrap();
                    let dot: Vec<f32> =
                        Vec::try_from((u * i).sum_dim_intlist(-1, false, Kind::Float)).unwrap();
                    assert!(close(&s, &dot, 1e-5));
                }
            });
        }
    }

    /// Both attention kernels compute the same model: the same seed gives the same parameters
    /// and in-batch logits equal to float rounding (a padded row and an empty history included).
    #[test]
    fn attention_kernels_give_the_same_logits() {
        let math = model("attention = \"math\"");
        let mut fused = model("");
        // Copied, not re-seeded: tests share the global generator across threads.
        fused.vs.copy(&math.vs).unwrap();
        let b = dev(&host(
            &[1, 4, 9, 12],
            &[vec![3, 5], vec![7], vec![], vec![11, 13, 15, 17]],
        ));
        longtail_core::tch::no_grad(|| {
            let (lf, lm) = (
                fused.forward(&b, true).unwrap().logits,
                math.forward(&b, true).unwrap().logits,
            );
            let diff = (&lf - &lm).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "logits differ by {diff}");
            assert!(lf.isfinite().all().int64_value(&[]) == 1);
        });
    }

    #[test]
    fn bad_params_are_rejected_naming_the_key() {
        let fm = conformance::tiny_feature_map();
        for (params, key) in [
            ("embedding_dim = 0", "embedding_dim"),
            ("embedding_std = 0.0", "embedding_std"),
            ("interests = 0", "interests"),
            ("layers = 0", "layers"),
            ("heads = 3", "heads"),
            ("ffn_dim = 0", "ffn_dim"),
            ("dropout = 1.0", "dropout"),
            ("item_hidden = []", "item_hidden"),
            ("item_hidden = [16, 8]", "item_hidden"),
            ("item_hidden = [0, 16]", "item_hidden"),
            ("loss = \"bpr\"", "loss"),
            ("focal_gamma = -1.0", "focal_gamma"),
            ("qmargin_scale = -0.1", "qmargin_scale"),
            ("item_norm = \"l2\"", "item_norm"),
            ("attention = \"flash\"", "attention"),
            ("temperature = 0.0", "temperature"),
            ("logq = true", "logq"),
        ] {
            let t = table(params);
            let ctx = BuildContext::new(&fm, &t, Device::Cpu);
            let err = crate::test_util::build::<TwoTower>(&ctx)
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains(&format!("'{key}'")) && err.contains(NAME),
                "{params}: {err}"
            );
        }
        assert_eq!(model("loss = \"focal\"").loss_kind(), LossKind::Focal);
    }
}
