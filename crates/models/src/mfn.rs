//! MFN: Multiple interest and Fine granularity Network (Xie, Wei, Hua, Zhang, "Multiple Interest
//! and Fine Granularity Network for User Modeling", Alibaba, 2021;
//! `../shared/papers/MFN-multiple-interest-fine-granularity.md`).
//!
//! The paper's equations and the choices where it is vague:
//! - **Behavior embeddings** (§3.1): a trainable `ℰ_t = [item id ; fine-grained features]`: the
//!   item-id embedding (`embedding_dim`, default 8) concatenated with one embedding per item side
//!   feature (`attribute_dim`, default 8; a list feature such as MovieLens genres is the mean of
//!   its values' embeddings). `attributes` picks the features (default: every `item_<name>` the
//!   dataset has; `[]` = ids only). The candidate item is embedded the same way (the item profile).
//! - **Fixed embeddings E** (§3.2): the paper's option for id features, "a vanilla model under an
//!   auxiliary CTR prediction task": the experiment's `[pretrain]` stage trains one (e.g.
//!   `basemodel`) and MFN copies its `item.weight` (`fixed_tensor`) into the non-trainable
//!   `fixed_item` table. E covers item ids only (the stage-1 model sees no side features).
//!   `fixed_embeddings = "random"` uses a frozen N(0, `embedding_std`) table instead (benchmarks
//!   without a stage 1; not a paper setting).
//! - **Interest centers C** (eqs. 1-3, Algorithm 1): `K = interests` (default 4) centers in E's
//!   space, pre-trained by [`Pretrain::pretrain`] on shuffled training batches (each row's history is
//!   one `E^l`; a user appears once per training sample, so active users weigh more than in the
//!   paper's uniform user sampling) to minimise `L_E = L_SE - L_ME` ([`entropy_loss`]), averaged
//!   over the rows with a history. Update: Algorithm 1's plain gradient step
//!   (`center_optimizer = "sgd"`) or Adam (`"adam"`, the default, lr `center_lr` = 0.1: the SGD
//!   step size would depend on the scale of the stage-1 embeddings, which are small, so the
//!   centers must grow large to make peaked assignments). Stop after `center_steps` (default
//!   2000) or when the mean `L_E` of two consecutive windows of `center_window` (20) steps
//!   differs by less than `center_tol` (1e-4). Both the random start and the result are stored in the non-trainable
//!   `centers`; the main task does not train them (the paper lists C only as Algorithm 1's
//!   output). `centers = "random"` is the paper's "w/o pretrain" ablation: random centers drawn
//!   from N(0, s²) with s the standard deviation of E's rows (so `E C^T` has E's scale), not
//!   pre-trained.
//! - **Similarity interests** (eqs. 4-5): `P = softmax_K(E C^T)` per behavior (padding rows 0),
//!   `R_s = P^T ℰ`, `[B, K, D]`, a sum over behaviors as written (`similarity_pooling = "sum"`;
//!   `"mean"` divides by the history length).
//! - **Combination interests** (eqs. 6-7): `A = softmax_N(W_2^T swish(W_1 MSA(ℰ)^T))` with
//!   multi-head self-attention (`heads`, default 2; `core::attention`), `W_1` of size `d_h × D`
//!   (`combination_hidden`, default 16) and `W_2` of `d_h × K`, the softmax over the behaviors
//!   (masked), `R_c = A ℰ`. `combination = false` is the "w/o combination" ablation.
//! - **Aggregation** (eqs. 8-11): two feed-forward attention nets `a_1` (over the K similarity
//!   interests) and `a_2` (over the K combination interests), each an MLP over `[r, t, r ∗ t,
//!   r − t]` (`attention_hidden`, default `[36]`, as DIN's unit) to one weight, softmax-normalised
//!   within its half (the paper's Σ w = 1), `R(i_c) = Σ w_1 r + Σ w_2 r`.
//! - **Output** (eq. 12): `[R(i_c), ℰ(i_c), user?]` → `layers::Mlp` (`hidden`, default
//!   `[256, 128, 32]`) → one logit, cross-entropy `ctr`. Our datasets have no context features.

use crate::checks;
use longtail_core::attention::MultiHeadSelfAttention;
use longtail_core::layers::{id_embedding_config, masked_softmax, Mlp};
use longtail_core::params::MAX_DIM;
use longtail_core::tch::nn::{self, Module, OptimizerConfig};
use longtail_core::tch::{Device, Kind, Tensor};
use longtail_core::{
    BuildContext, Check, CoreError, DeviceBatch, Losses, Model, ModelParams, ModelSpec, Output,
    Pretrain, PretrainLog, Result,
};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "mfn";

/// Hyper-parameters (`[model.params]`); see the module header for each choice.
/// Checked before any data is read: widths (`embedding_dim`, `attribute_dim`,
/// `combination_hidden`, `attention_hidden`, `hidden`) in `[1, 65536]`, `interests` in `[1, 256]`,
/// `heads` in `[1, 65536]` (dividing the behavior width `embedding_dim + attribute_dim × the
/// number of attributes`, checked here when `attributes` is given and when built otherwise),
/// `center_lr` in `(0, 100]`, `center_steps` in `[1, 10^7]`, `center_window` in `[1, 10^5]`,
/// `center_tol` in `[0, 100]`, `embedding_std` in `(0, 10]`, `dropout` in `[0, 1)`, and the
/// words of `fixed_embeddings`, `centers`, `center_optimizer` and `similarity_pooling` (enums:
/// parsing refuses any other word, naming the key and the words it takes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct MfnParams {
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Width of each item attribute embedding (concatenated to the id embedding).
    pub attribute_dim: i64,
    /// Standard deviation of the normal initialisation of id and attribute embeddings.
    pub embedding_std: f64,
    /// Item side features embedded beside the id; absent = all the dataset has, `[]` = none.
    pub attributes: Option<Vec<String>>,
    /// Number of interest centers K.
    pub interests: i64,
    /// `stage1` (from `[pretrain]`) or `random` (frozen random table).
    pub fixed_embeddings: FixedEmbeddings,
    /// The stage-1 tensor holding the item embeddings (any tensor name of the stage-1
    /// checkpoint, checked when built).
    pub fixed_tensor: String,
    /// `pretrained` (Algorithm 1) or `random` (the w/o-pretrain ablation).
    pub centers: Centers,
    /// `adam` or `sgd` (Algorithm 1's plain step).
    pub center_optimizer: CenterOptimizer,
    /// Learning rate of Algorithm 1 (the center pretraining).
    pub center_lr: f64,
    /// Most steps of Algorithm 1; it stops earlier once the loss settles (`center_window`,
    /// `center_tol`).
    pub center_steps: usize,
    /// Steps over which Algorithm 1 compares the mean loss to decide it has settled.
    pub center_window: usize,
    /// Algorithm 1 stops when the windowed mean loss improves by less than this.
    pub center_tol: f64,
    /// `sum` (eq. 5 as written) or `mean`.
    pub similarity_pooling: SimilarityPooling,
    /// Combination interests (eqs. 6-7); false = the w/o-combination ablation.
    pub combination: bool,
    /// Attention heads of the combination interests (eqs. 6-7); must divide the behavior width.
    pub heads: i64,
    /// Hidden width of each combination head.
    pub combination_hidden: i64,
    /// Hidden layers of the target-attention unit over the interests.
    pub attention_hidden: Vec<i64>,
    /// Hidden layers of the output MLP (ReLU), one width per layer; empty = one linear layer.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer of the output MLP (0 = none).
    pub dropout: f64,
    /// Include a user-id embedding in the MLP input.
    pub user_embedding: bool,
}

impl Default for MfnParams {
    fn default() -> Self {
        Self {
            embedding_dim: 8,
            attribute_dim: 8,
            embedding_std: 0.01,
            attributes: None,
            interests: 4,
            fixed_embeddings: FixedEmbeddings::Stage1,
            fixed_tensor: "item.weight".into(),
            centers: Centers::Pretrained,
            center_optimizer: CenterOptimizer::Adam,
            center_lr: 0.1,
            center_steps: 2000,
            center_window: 20,
            center_tol: 1e-4,
            similarity_pooling: SimilarityPooling::Sum,
            combination: true,
            heads: 2,
            combination_hidden: 16,
            attention_hidden: vec![36],
            hidden: vec![256, 128, 32],
            dropout: 0.0,
            user_embedding: true,
        }
    }
}

/// Where the fixed behavior embeddings E come from (`fixed_embeddings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum FixedEmbeddings {
    /// `"stage1"`: the `[pretrain]` model's `fixed_tensor` (the paper's vanilla CTR model).
    #[serde(rename = "stage1")]
    Stage1,
    /// `"random"`: a frozen N(0, `embedding_std`) table (benchmarks without a stage 1).
    Random,
}

/// How the interest centers C start the main task (`centers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum Centers {
    /// `"pretrained"`: Algorithm 1 in [`Pretrain::pretrain`].
    Pretrained,
    /// `"random"`: drawn at E's scale and kept (the w/o-pretrain ablation).
    Random,
}

/// The optimizer of Algorithm 1 (`center_optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum CenterOptimizer {
    /// `"adam"` (the default).
    Adam,
    /// `"sgd"`: Algorithm 1's plain gradient step.
    Sgd,
}

/// How eq. 5 pools the behaviors into each similarity interest (`similarity_pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum SimilarityPooling {
    /// `"sum"`: eq. 5 as written.
    Sum,
    /// `"mean"`: the sum divided by the history length.
    Mean,
}

/// A params error of this model (for the checks that need the data or the stage-1 model).
fn bad(key: &str, message: String) -> CoreError {
    Check { model: NAME }.bad(key, message)
}

/// Upper bound of `center_lr`.
pub const MAX_CENTER_LR: f64 = 100.0;
/// Upper bound of `center_steps` (Algorithm 1's steps; the default is 2000).
pub const MAX_CENTER_STEPS: i64 = 10_000_000;
/// Upper bound of `center_window`.
pub const MAX_CENTER_WINDOW: i64 = 100_000;
/// Upper bound of `center_tol` (`L_E` lies in `[-ln K, ln K]`).
pub const MAX_CENTER_TOL: f64 = 100.0;

impl ModelParams for MfnParams {
    fn validate(&self, c: &Check) -> Result<()> {
        checks::embedding(c, self.embedding_dim, self.embedding_std)?;
        c.dim("attribute_dim", self.attribute_dim)?;
        checks::interests(c, self.interests)?;
        c.positive("center_lr", self.center_lr, MAX_CENTER_LR)?;
        checks::count(c, "center_steps", self.center_steps, 1, MAX_CENTER_STEPS)?;
        checks::count(c, "center_window", self.center_window, 1, MAX_CENTER_WINDOW)?;
        c.non_negative("center_tol", self.center_tol, MAX_CENTER_TOL)?;
        c.int("heads", self.heads, 1, MAX_DIM)?;
        // With the attributes named, the behavior width is known here; with the default (all
        // the dataset has) the builder checks it.
        if let (true, Some(attributes)) = (self.combination, &self.attributes) {
            let width = self
                .attribute_dim
                .saturating_mul(attributes.len() as i64)
                .saturating_add(self.embedding_dim);
            checks::heads(c, self.heads, width, "the behavior embedding width")?;
        }
        c.dim("combination_hidden", self.combination_hidden)?;
        c.dims("attention_hidden", &self.attention_hidden)?;
        checks::tower(c, &self.hidden, self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

/// `P = softmax_K(E C^T)` for behaviors `e [B, N, d]` and centers `c [K, d]`: `[B, N, K]`, rows
/// at padding (`mask [B, N]` = 0) set to 0 (eq. 4, Algorithm 1 lines 5-6).
pub fn assignment(e: &Tensor, mask: &Tensor, c: &Tensor) -> Tensor {
    e.matmul(&c.tr()).softmax(-1, Kind::Float) * mask.unsqueeze(-1)
}

/// Algorithm 1's objective `L_E = L_SE - L_ME` (eqs. 1-3) per row `[B]`, from assignments
/// `p [B, N, K]` over the `mask`ed behaviors (N = the row's real behaviors); rows without a
/// behavior give 0.
pub fn entropy_loss(p: &Tensor, mask: &Tensor) -> Tensor {
    let k = p.size()[2] as f64;
    let n = mask.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
    let plogp = |x: &Tensor| x * x.clamp_min(1e-12).log();
    // L_SE = -(1/K)(1/N) Σ_j Σ_t P_tj log P_tj (padding rows are 0 and add 0).
    let l_se = -plogp(p).sum_dim_intlist(&[1i64, 2][..], false, Kind::Float) / (&n * k);
    // L_ME = -(1/K) Σ_j p̄_j log p̄_j with p̄_j = (1/N) Σ_t P_tj.
    let mean = p.sum_dim_intlist(1, false, Kind::Float) / n.unsqueeze(-1);
    let l_me = -plogp(&mean).sum_dim_intlist(1, false, Kind::Float) / k;
    l_se - l_me
}

/// One item side feature as MFN embeds it: a lookup `[items, width]` of value ids (0 = none)
/// and the values' embedding table; the item's vector is the mean over its values.
struct Attribute {
    lookup: Tensor,
    table: nn::Embedding,
}

impl Attribute {
    /// `[.., Da]` for item ids of any shape.
    fn embed(&self, ids: &Tensor) -> Tensor {
        let vals = self.lookup.index_select(0, &ids.flatten(0, -1));
        let mask = vals.ne(0).to_kind(Kind::Float);
        let e = self.table.forward(&vals) * mask.unsqueeze(-1);
        let n = mask.sum_dim_intlist(-1, true, Kind::Float).clamp_min(1.0);
        let pooled = e.sum_dim_intlist(1, false, Kind::Float) / n;
        let mut shape = ids.size();
        shape.push(-1);
        pooled.view(shape.as_slice())
    }
}

/// An attention net `a(r, t)`: MLP over `[r, t, r ∗ t, r − t]` → one weight per interest.
fn interest_weights(net: &Mlp, r: &Tensor, t: &Tensor, train: bool) -> Tensor {
    let t = t.unsqueeze(1).expand_as(r);
    let x = Tensor::cat(&[r, &t, &(r * &t), &(r - &t)], -1);
    net.forward(&x, train)
        .squeeze_dim(-1)
        .softmax(-1, Kind::Float)
}

pub struct Mfn {
    p: MfnParams,
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    attributes: Vec<Attribute>,
    /// The fixed behavior embeddings E `[items, d1]` (non-trainable).
    fixed_item: Tensor,
    /// The interest centers C `[K, d1]` (non-trainable; Algorithm 1 writes them).
    centers: Tensor,
    msa: Option<MultiHeadSelfAttention>,
    w1: Option<nn::Linear>,
    w2: Option<nn::Linear>,
    a1: Mlp,
    a2: Option<Mlp>,
    mlp: Mlp,
}

impl ModelSpec for Mfn {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "MFN: similarity interests (fixed stage-1 embeddings, pre-trained centers) + combination \
         interests (self-attention) + fine-grained item features, two attention heads";
    type Params = MfnParams;

    fn build(root: &nn::Path, p: MfnParams, ctx: &BuildContext) -> Result<Self> {
        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        fm.require("hist", NAME)?;
        let cfg = id_embedding_config(p.embedding_std);
        let d = p.embedding_dim;
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(root / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(root / "item", items, d, cfg);

        // Fine-grained features: the requested ones must exist; by default all that do.
        let names: Vec<String> = match &p.attributes {
            Some(a) => a.clone(),
            None => match ctx.items {
                Some(f) => f.names().iter().map(|s| s.to_string()).collect(),
                None => Vec::new(),
            },
        };
        let mut attributes = Vec::new();
        for name in &names {
            let spec = fm.require(&format!("item_{name}"), NAME)?;
            let feats = ctx.items.ok_or_else(|| {
                bad(
                    "attributes",
                    format!("'{name}' needs item side features, and the dataset has none"),
                )
            })?;
            let (values, width) = feats.padded(name).ok_or_else(|| {
                bad(
                    "attributes",
                    format!(
                        "no item feature '{name}' (have: {})",
                        feats.names().join(", ")
                    ),
                )
            })?;
            if feats.num_items as i64 != items {
                return Err(bad(
                    "attributes",
                    format!(
                        "item features have {} rows, the item vocabulary {items}",
                        feats.num_items
                    ),
                ));
            }
            let lookup = Tensor::from_slice(&values)
                .view([items, width as i64])
                .to_device(ctx.device);
            let table = nn::embedding(
                root / "attr" / name.as_str(),
                spec.vocab as i64,
                p.attribute_dim,
                cfg,
            );
            attributes.push(Attribute { lookup, table });
        }
        let dt = d + p.attribute_dim * attributes.len() as i64;

        let fixed_src = match p.fixed_embeddings {
            FixedEmbeddings::Stage1 => {
                let pre = ctx.pretrained.ok_or_else(|| {
                    bad(
                        "fixed_embeddings",
                        "'stage1' needs a stage-1 model: add a [pretrain] section to the \
                         experiment (e.g. model.name = \"basemodel\"), or set \
                         fixed_embeddings = \"random\""
                            .into(),
                    )
                })?;
                let t = pre.require(&p.fixed_tensor, NAME)?;
                let size = t.size();
                if size.len() != 2 || size[0] != items {
                    return Err(bad(
                        "fixed_tensor",
                        format!(
                            "stage-1 tensor '{}' has shape {size:?}; expected [{items}, d]",
                            p.fixed_tensor
                        ),
                    ));
                }
                t.to_kind(Kind::Float)
            }
            FixedEmbeddings::Random => {
                Tensor::randn([items, d], (Kind::Float, Device::Cpu)) * p.embedding_std
            }
        };
        let d1 = fixed_src.size()[1];
        let fixed_item = root.zeros_no_train("fixed_item", &[items, d1]);
        // Random start of the centers at E's scale (the w/o-pretrain centers, and Algorithm 1's
        // initialisation).
        let scale = fixed_src
            .narrow(0, 1, items - 1)
            .std(true)
            .double_value(&[]);
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            p.embedding_std
        };
        let centers = root.zeros_no_train("centers", &[p.interests, d1]);
        longtail_core::tch::no_grad(|| {
            fixed_item.shallow_clone().copy_(&fixed_src);
            let c0 = Tensor::randn([p.interests, d1], (Kind::Float, Device::Cpu)) * scale;
            centers.shallow_clone().copy_(&c0);
        });

        let (msa, w1, w2, a2) = if p.combination {
            // The width depends on the dataset's item features when `attributes` is unset.
            if dt % p.heads != 0 {
                return Err(bad(
                    "heads",
                    format!(
                        "the behavior embedding width {dt} is not divisible by {} heads",
                        p.heads
                    ),
                ));
            }
            let msa = MultiHeadSelfAttention::new(&(root / "msa"), dt, p.heads)?;
            let w1 = nn::linear(root / "w1", dt, p.combination_hidden, Default::default());
            let no_bias = nn::LinearConfig {
                bias: false,
                ..Default::default()
            };
            let w2 = nn::linear(root / "w2", p.combination_hidden, p.interests, no_bias);
            let a2 = Mlp::new(&(root / "a2"), 4 * dt, &p.attention_hidden, 1, 0.0);
            (Some(msa), Some(w1), Some(w2), Some(a2))
        } else {
            (None, None, None, None)
        };
        let a1 = Mlp::new(&(root / "a1"), 4 * dt, &p.attention_hidden, 1, 0.0);
        let inputs = 2 * dt + if p.user_embedding { d } else { 0 };
        let mlp = Mlp::new(&(root / "mlp"), inputs, &p.hidden, 1, p.dropout);
        Ok(Self {
            p,
            user,
            item,
            attributes,
            fixed_item,
            centers,
            msa,
            w1,
            w2,
            a1,
            a2,
            mlp,
        })
    }
}

impl Mfn {
    /// The trainable embedding `ℰ` of item ids of any shape: `[.., D + n_attr * Da]`.
    fn embed(&self, ids: &Tensor) -> Tensor {
        let mut parts = vec![self.item.forward(ids)];
        parts.extend(self.attributes.iter().map(|a| a.embed(ids)));
        Tensor::cat(&parts, -1)
    }

    /// The fixed embedding E of item ids.
    fn fixed(&self, ids: &Tensor) -> Tensor {
        self.fixed_item.index_select(0, &ids.flatten(0, -1)).view([
            ids.size()[0],
            ids.size()[1],
            -1,
        ])
    }

    /// The interest centers C `[K, d1]`.
    pub fn centers(&self) -> Tensor {
        self.centers.shallow_clone()
    }

    /// Similarity interests `R_s [B, K, D]` (eqs. 4-5) and their assignments `P [B, N, K]`.
    pub fn similarity(&self, b: &DeviceBatch, e: &Tensor) -> (Tensor, Tensor) {
        let p = assignment(&self.fixed(&b.hist), &b.hist_mask, &self.centers);
        let mut r = p.transpose(1, 2).matmul(e);
        if self.p.similarity_pooling == SimilarityPooling::Mean {
            let n = b
                .hist_mask
                .sum_dim_intlist(1, false, Kind::Float)
                .clamp_min(1.0);
            r /= n.view([-1, 1, 1]);
        }
        (r, p)
    }

    /// Combination interests `R_c [B, K, D]` (eqs. 6-7), when enabled.
    fn combination(&self, b: &DeviceBatch, e: &Tensor, train: bool) -> Option<Tensor> {
        let (msa, w1, w2) = (self.msa.as_ref()?, self.w1.as_ref()?, self.w2.as_ref()?);
        let h = msa.forward(e, &b.hist_mask, train);
        // [B, N, K] scores, softmax over the behaviors (dim 1), then A = [B, K, N].
        let s = w2.forward(&w1.forward(&h).silu());
        let a = masked_softmax(&s, &b.hist_mask.unsqueeze(-1), 1);
        Some(a.transpose(1, 2).matmul(e))
    }

    fn logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        let e = self.embed(&b.hist) * b.hist_mask.unsqueeze(-1);
        let t = self.embed(&b.item);
        let (rs, _) = self.similarity(b, &e);
        let w1 = interest_weights(&self.a1, &rs, &t, train);
        let mut r = (rs * w1.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float);
        if let (Some(rc), Some(a2)) = (self.combination(b, &e, train), &self.a2) {
            let w2 = interest_weights(a2, &rc, &t, train);
            r += (rc * w2.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float);
        }
        let mut parts = vec![r, t];
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        self.mlp
            .forward(&Tensor::cat(&parts, -1), train)
            .squeeze_dim(-1)
            .to_kind(Kind::Float)
    }

    /// Algorithm 1 on `batches`: returns the log; writes the trained centers into `centers`.
    fn pretrain_centers(
        &mut self,
        batches: &mut dyn Iterator<Item = Result<DeviceBatch>>,
    ) -> Result<PretrainLog> {
        let device = self.centers.device();
        let vs = nn::VarStore::new(device);
        let c = vs.root().var_copy("centers", &self.centers);
        let mut opt = match self.p.center_optimizer {
            CenterOptimizer::Sgd => nn::Sgd::default().build(&vs, self.p.center_lr)?,
            CenterOptimizer::Adam => nn::Adam::default().build(&vs, self.p.center_lr)?,
        };
        let w = self.p.center_window;
        let (mut first, mut last) = (f64::NAN, f64::NAN);
        let (mut window, mut prev_window): (Vec<f64>, Option<f64>) = (Vec::new(), None);
        let mut steps = 0;
        let mut stopped_by = "max_steps";
        while steps < self.p.center_steps {
            let Some(b) = batches.next() else {
                stopped_by = "data";
                break;
            };
            let b = b?;
            let rows =
                b.hist_len.gt(0).to_kind(Kind::Float) * &b.weight.gt(0.0).to_kind(Kind::Float);
            let p = assignment(&self.fixed(&b.hist), &b.hist_mask, &c);
            let loss = (entropy_loss(&p, &b.hist_mask) * &rows).sum(Kind::Float)
                / rows.sum(Kind::Float).clamp_min(1.0);
            opt.zero_grad();
            loss.backward();
            opt.step();
            let v = loss.double_value(&[]);
            if !v.is_finite() {
                return Err(CoreError::Conformance {
                    model: NAME.into(),
                    message: format!("interest-center loss became {v} at step {steps}"),
                });
            }
            if steps == 0 {
                first = v;
            }
            last = v;
            steps += 1;
            window.push(v);
            if window.len() == w {
                let mean = window.iter().sum::<f64>() / w as f64;
                window.clear();
                if prev_window.is_some_and(|p| (p - mean).abs() < self.p.center_tol) {
                    stopped_by = "tolerance";
                    break;
                }
                prev_window = Some(mean);
            }
        }
        longtail_core::tch::no_grad(|| self.centers.shallow_clone().copy_(&c));
        Ok(PretrainLog {
            what: "interest_centers".into(),
            steps,
            loss_first: first,
            loss_last: last,
            stopped_by: stopped_by.into(),
        })
    }
}

impl Model for Mfn {
    fn forward(&self, batch: &DeviceBatch, train: bool) -> Result<Output> {
        Ok(Output::new(self.logits(batch, train)))
    }
    fn losses(&self, out: &Output, batch: &DeviceBatch) -> Result<Losses> {
        Ok(Losses::one(
            "ctr",
            longtail_core::losses::bce_with_logits(&out.logits, batch),
        ))
    }
    fn score(&self, batch: &DeviceBatch) -> Result<Tensor> {
        Ok(self.logits(batch, false).sigmoid())
    }
    fn as_pretrain(&mut self) -> Option<&mut dyn Pretrain> {
        Some(self)
    }
}

impl Pretrain for Mfn {
    fn pretrain(
        &mut self,
        batches: &mut dyn Iterator<Item = Result<DeviceBatch>>,
    ) -> Result<Option<PretrainLog>> {
        match self.p.centers {
            Centers::Pretrained => self.pretrain_centers(batches).map(Some),
            Centers::Random => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch, table, values};
    use longtail_core::conformance;
    use longtail_core::Model;

    fn build(params: &str) -> Result<crate::test_util::Built<Mfn>> {
        let fm = conformance::tiny_feature_map();
        let items = conformance::tiny_item_features();
        let stage1 = conformance::tiny_pretrained();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu)
            .with_items(Some(&items))
            .with_pretrained(Some(&stage1));
        longtail_core::seed::seed_everything(3);
        crate::test_util::build::<Mfn>(&ctx)
    }

    #[test]
    fn conformance() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME).unwrap();
        for p in [
            "centers = \"random\"",
            "combination = false",
            "attributes = []",
            "attributes = [\"genre\"]",
            "fixed_embeddings = \"random\"",
            "center_optimizer = \"sgd\"\ncenter_lr = 0.5",
            "similarity_pooling = \"mean\"\nuser_embedding = false",
        ] {
            conformance::check_with(&reg, NAME, &table(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn assignment_and_entropy_loss_by_hand() {
        // E = [[1, 0], [0, 2]], C = I: P = softmax([1, 0]), softmax([0, 2]).
        let e = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0]).view([1, 2, 2]);
        let c = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let mask = Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]);
        let p = values(&assignment(&e, &mask, &c));
        let want = [0.731_058_6, 0.268_941_4, 0.119_202_9, 0.880_797_1];
        assert!(
            p.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{p:?}"
        );

        // P = [[0.9, 0.1], [0.2, 0.8]]: L_SE = -(0.9 ln 0.9 + 0.1 ln 0.1 + 0.2 ln 0.2 + 0.8 ln 0.8)
        // / 4 = 0.2063713; column means [0.55, 0.45]: L_ME = -(0.55 ln 0.55 + 0.45 ln 0.45) / 2 =
        // 0.3440694; L_E = -0.1376981. A third, masked behavior must not count.
        let p = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.8, 0.0, 0.0]).view([1, 3, 2]);
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 0.0]).view([1, 3]);
        let l = values(&entropy_loss(&p, &mask));
        assert!((l[0] - -0.137_698_1).abs() < 1e-6, "{l:?}");
        // A row with no behavior gives 0, not NaN.
        let empty = entropy_loss(
            &Tensor::zeros([1, 3, 2], (Kind::Float, Device::Cpu)),
            &(mask * 0.0),
        );
        assert_eq!(values(&empty), vec![0.0]);
    }

    #[test]
    fn algorithm_1_lowers_the_entropy_objective() {
        let host = conformance::tiny_batch().unwrap();
        let mut m = build("center_steps = 200\ncenter_tol = 0.0").unwrap();
        let before = m.centers();
        let before = before.copy();
        let mut batches = std::iter::repeat_with(|| DeviceBatch::from_host(&host, Device::Cpu));
        let log = m.pretrain(&mut batches).unwrap().unwrap();
        assert_eq!((log.steps, log.stopped_by.as_str()), (200, "max_steps"));
        assert!(log.loss_last < log.loss_first - 1e-3, "{log:?}");
        assert!(m.centers().ne_tensor(&before).any().int64_value(&[]) == 1);
        // The tolerance rule stops a converged run early; a short iterator stops it too.
        let mut m = build("center_steps = 100000\ncenter_tol = 1.0").unwrap();
        let log = m.pretrain(&mut batches).unwrap().unwrap();
        assert_eq!((log.steps, log.stopped_by.as_str()), (40, "tolerance"));
        let mut m = build("").unwrap();
        let mut few = (0..3).map(|_| DeviceBatch::from_host(&host, Device::Cpu));
        let log = m.pretrain(&mut few).unwrap().unwrap();
        assert_eq!((log.steps, log.stopped_by.as_str()), (3, "data"));
        // w/o pretrain: random centers stay as drawn.
        let mut m = build("centers = \"random\"").unwrap();
        let c0 = m.centers().copy();
        assert!(m.pretrain(&mut batches).unwrap().is_none());
        assert!(m.centers().equal(&c0));
    }

    #[test]
    fn fixed_embeddings_are_the_stage1_tensor_and_stay_fixed() {
        let m = build("").unwrap();
        let stage1 = conformance::tiny_pretrained();
        assert!(m.fixed_item.equal(stage1.get("item.weight").unwrap()));
        // Neither E nor C is handed to the optimizer.
        let vars = m.vs.variables();
        assert!(!vars["fixed_item"].requires_grad() && !vars["centers"].requires_grad());
        let trainable = m.vs.trainable_variables();
        assert!(!trainable.is_empty());
        assert!(trainable.iter().all(|t| t.requires_grad()));
        assert_eq!(trainable.len() + 2, vars.len());
    }

    #[test]
    fn bad_params_and_missing_inputs_are_errors_naming_the_key() {
        for (params, key) in [
            ("interests = 0", "interests"),
            ("centers = \"kmeans\"", "centers"),
            ("attributes = [\"colour\"]", "item_colour"),
            ("heads = 5", "heads"),
            ("fixed_tensor = \"user.weight\"", "user.weight"),
            ("intrests = 3", "intrests"),
        ] {
            let err = build(params).err().unwrap().to_string();
            assert!(err.contains(key), "{params}: {err}");
        }
        let fm = conformance::tiny_feature_map();
        let t = toml::Table::new();
        let err = crate::test_util::build::<Mfn>(&BuildContext::new(&fm, &t, Device::Cpu))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("[pretrain]"), "{err}");
    }

    #[test]
    fn padding_does_not_change_scores_and_empty_histories_are_finite() {
        let m = build("").unwrap();
        let hist = [vec![3, 5, 7], vec![3, 5], vec![]];
        let padded: Vec<Vec<i64>> = hist
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.resize(6, 0);
                r
            })
            .collect();
        let a = values(&m.score(&batch(&[6, 6, 6], &hist)).unwrap());
        let b = values(&m.score(&batch(&[6, 6, 6], &padded)).unwrap());
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6),
            "{a:?} {b:?}"
        );
        assert!(a.iter().all(|v| v.is_finite()));
    }
}
