//! PIN: Personalizing Intervened Network (Lv et al., "Personalizing Intervened Network for
//! Long-tailed Sequential User Behavior Modeling", WSDM 2023, arXiv 2208.09130). Only the
//! paper's abstract is available: this model is **reconstructed from the abstract** following the
//! project's specification (`papers/PIN-method-as-we-implement-it.md`); nothing below is taken
//! from the paper's method section, equations or code (none is public).
//!
//! The model is a backbone shared by all users plus three prediction heads. Its training is in
//! two phases, switched by [`Phases::set_phase`]: `shared` (stage 1: backbone + shared head,
//! trained by the schedule with the stratified, backdoor-adjusted aggregated gradient) and
//! `plugins` (stage 2: one plugin network per user stratum). The schedule (strata, `P(z)`, the
//! aggregated gradient, the stage lengths and learning rates) lives in the train crate; this file
//! is only the network.
//!
//! Choices:
//! - **Backbone** (`backbone`, default `"din"`; every variable under `backbone.`): one item table
//!   (`backbone.item`, dim `embedding_dim` = 8, `padding_idx = 0`, N(0, `embedding_std` = 0.01))
//!   shared by the behaviors and the target, an optional user table (`backbone.user`,
//!   `user_embedding`, default true) and the sequence encoder of one of the project's base models,
//!   built exactly as that model builds it so that "PIN on X" differs from X only by the heads
//!   and the schedule:
//!   - `"din"`: DIN's activation unit (`backbone.attention`, PReLU hidden layers
//!     `attention_hidden`, default `[36]`), pooling `v = Σ_j m_j a_j e_j` **without softmax**
//!     (as `din`);
//!   - `"gru4rec"`: a one-layer GRU (`backbone.gru`, hidden `hidden_size`, unset =
//!     `embedding_dim`) from a zero state; `v` = the output after the row's last real behavior
//!     (zero for an empty history), as `gru4rec`;
//!   - `"transformer"`: `TransformerEncoder` (`backbone.encoder`: learned positions, `layers`
//!     = 1 post-LN blocks of `heads` = 2 heads, GELU feed-forward `ffn_dim`, unset = 4 × D) and
//!     target attention `a = masked_softmax(H t / √D)`, `v = Σ_j a_j h_j`, as `transformerrec`.
//!
//!   An option of another backbone (e.g. `layers` with `backbone = "din"`) is an error naming it
//!   rather than silently ignored. Padding never reaches `v` (masked weights, last *real* GRU
//!   state, masked attention keys), so trailing padding leaves scores unchanged and empty
//!   histories give `v = 0`.
//! - **Representation** `r = [v, t, u?]` (`[B, R]`, R = `|v|` + D + D if `user_embedding`):
//!   the interest vector, the target item embedding and the user embedding. This is the
//!   knowledge shared by all users that the aggregated gradient trains.
//! - **Shared head** (`shared_head.`): `layers::Mlp` r → `hidden` (default `[256, 128, 32]`, the
//!   tower all MLP baselines share; ReLU) → 1 logit.
//! - **Plugins** (`plugin_head.`, `plugin_tail.`): each a `layers::Mlp` r → `plugin_hidden`
//!   (default `[64, 32]`) → 1 logit, freshly initialised (`plugin_init = "fresh"`, default), or
//!   (`plugin_init = "shared_head"`, which needs `plugin_hidden == hidden`) copied from the
//!   trained shared head when the model enters the plugin phase, so each plugin starts from the
//!   shared knowledge and stage 2 personalises it (a reading the abstract equally allows; the
//!   copy happens once, on the switch from `shared`, not when a stage-2 checkpoint is
//!   reloaded). The abstract only says "plugin prediction networks"; we put them on the
//!   **backbone representation r**, not on the shared head's last hidden layer, so a plugin is
//!   a full prediction network of its stratum over the shared knowledge and does not inherit
//!   the shared head's (head-user dominated) decision layers. `dropout` (default 0.0) applies
//!   between the hidden layers of all three heads and inside the transformer encoder.
//! - **Phase** (a non-trainable scalar variable `phase`: 0 = `shared`, 1 = `plugins`, saved with
//!   the checkpoint so a model reloads in the phase it was saved in). Phase 0: logit = shared
//!   head. Phase 1: **routing by stratum**: rows with `user_group == 2` (the head stratum) use
//!   `plugin_head`, every other row (tail, and body when a dataset makes three groups) uses
//!   `plugin_tail`; both plugins are computed and the logit selected per row (`where`), so each
//!   plugin gets gradient only from its own stratum's rows. The shared head is then unused
//!   (kept for the ablation "backbone + shared head").
//! - **Freezing is done by the model**: `set_phase("plugins")` with `freeze_backbone = true`
//!   (default) sets `requires_grad(false)` on every `backbone.` and `shared_head.` variable, so
//!   they get no gradient and Adam (libtorch's `zero_grad` clears gradients to undefined) leaves
//!   them alone even with an optimizer carried over from stage 1; a frozen backbone also runs in
//!   eval mode (no encoder dropout) in stage 2. `set_phase("shared")` restores
//!   `requires_grad(true)`. With `freeze_backbone = false` nothing is frozen and the schedule
//!   fine-tunes the backbone with its own smaller learning rate. Loading a checkpoint restores
//!   the `phase` value but not the freeze: a trainer resuming stage 2 calls `set_phase` again.
//!   Unknown phase names are a params error naming the key `phase`.
//! - **Loss**: one term `"ctr"`, the weighted BCE on the routed logit (`batch.weight` carries the
//!   schedule's per-sample stratum weights `P(z) / n_z`); `score = σ(logit)`.

use crate::checks;
use crate::din::ActivationUnit;
use longtail_core::attention::TransformerEncoder;
use longtail_core::layers::{masked_softmax, Mlp};
use longtail_core::tch::nn::{self, Module, RNN};
use longtail_core::tch::{Kind, Tensor};
use longtail_core::{
    params, BuildContext, Check, DeviceBatch, Losses, Model, ModelParams, ModelSpec, Output,
    Phases, Result,
};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "pin";

/// The `user_group` value of the head stratum (routed to `plugin_head`).
pub const HEAD_GROUP: i64 = 2;

/// Hyper-parameters (`[model.params]`). Backbone options are unset unless given; unset means the
/// default of the chosen backbone (`attention_hidden = [36]`, `hidden_size = embedding_dim`,
/// `layers = 1`, `heads = 2`, `ffn_dim = 4 × embedding_dim`), and an option of another backbone is
/// rejected. Checked before any data is read: `backbone` one of `din`, `gru4rec`,
/// `transformer`; `plugin_init` one of `fresh`, `shared_head` (which needs
/// `plugin_hidden == hidden`); widths (`embedding_dim`, `attention_hidden`, `hidden_size`,
/// `ffn_dim`, `hidden`, `plugin_hidden`) in `[1, 65536]`, `layers` in `[1, 64]`, `heads` in
/// `[1, 65536]` dividing `embedding_dim`, `embedding_std` in `(0, 10]`, `dropout` in `[0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(deny_unknown_fields, default)]
pub struct PinParams {
    /// `"din"`, `"gru4rec"` or `"transformer"`.
    pub backbone: Backbone,
    /// Width of the id embeddings.
    pub embedding_dim: i64,
    /// Standard deviation of the normal initialisation of id embeddings [0.01].
    pub embedding_std: f64,
    /// Include a user-id embedding in the representation.
    pub user_embedding: bool,
    /// DIN: hidden layers of the activation unit [36].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention_hidden: Option<Vec<i64>>,
    /// GRU4Rec: hidden size of the GRU [embedding_dim].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<i64>,
    /// Transformer: blocks [1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<i64>,
    /// Transformer: attention heads, dividing `embedding_dim` [2].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<i64>,
    /// Transformer: feed-forward width [4 × embedding_dim].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffn_dim: Option<i64>,
    /// Hidden layers of the shared head [256, 128, 32].
    pub hidden: Vec<i64>,
    /// Hidden layers of each plugin [64, 32].
    pub plugin_hidden: Vec<i64>,
    /// Dropout between the heads' hidden layers and inside the transformer encoder [0.0].
    pub dropout: f64,
    /// Stage 2 trains the plugins only (the model freezes `backbone.` and `shared_head.`) [true].
    pub freeze_backbone: bool,
    /// How the plugins start stage 2: `"fresh"` (their own initialisation) or `"shared_head"`
    /// (a copy of the trained shared head; needs `plugin_hidden == hidden`) ["fresh"].
    pub plugin_init: PluginInit,
}

impl Default for PinParams {
    fn default() -> Self {
        Self {
            backbone: Backbone::Din,
            embedding_dim: 8,
            embedding_std: 0.01,
            user_embedding: true,
            attention_hidden: None,
            hidden_size: None,
            layers: None,
            heads: None,
            ffn_dim: None,
            hidden: vec![256, 128, 32],
            plugin_hidden: vec![64, 32],
            dropout: 0.0,
            freeze_backbone: true,
            plugin_init: PluginInit::Fresh,
        }
    }
}

/// The sequence encoder of the backbone (`backbone`), each built as its base model builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
pub enum Backbone {
    /// `"din"`: DIN's activation unit, pooling without softmax.
    #[serde(rename = "din")]
    Din,
    /// `"gru4rec"`: a one-layer GRU, the state after the last real behavior.
    #[serde(rename = "gru4rec")]
    Gru4Rec,
    /// `"transformer"`: `TransformerEncoder` and target attention, as `transformerrec`.
    #[serde(rename = "transformer")]
    Transformer,
}

/// Every `backbone`.
pub const BACKBONES: [Backbone; 3] = [Backbone::Din, Backbone::Gru4Rec, Backbone::Transformer];

/// How the plugins start stage 2 (`plugin_init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, longtail_core::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum PluginInit {
    /// `"fresh"`: their own initialisation.
    Fresh,
    /// `"shared_head"`: a copy of the trained shared head, made on entering the plugin phase.
    SharedHead,
}

impl ModelParams for PinParams {
    fn validate(&self, c: &Check) -> Result<()> {
        // Options that belong to another backbone are errors, not silently ignored.
        let given = [
            (
                "attention_hidden",
                self.attention_hidden.is_some(),
                Backbone::Din,
            ),
            ("hidden_size", self.hidden_size.is_some(), Backbone::Gru4Rec),
            ("layers", self.layers.is_some(), Backbone::Transformer),
            ("heads", self.heads.is_some(), Backbone::Transformer),
            ("ffn_dim", self.ffn_dim.is_some(), Backbone::Transformer),
        ];
        for (key, set, owner) in given {
            if set && owner != self.backbone {
                return Err(c.bad(
                    key,
                    format!(
                        "'{key}' is an option of backbone '{}', not of '{}'",
                        params::word(&owner),
                        params::word(&self.backbone)
                    ),
                ));
            }
        }
        if self.plugin_init == PluginInit::SharedHead && self.plugin_hidden != self.hidden {
            return Err(c.bad(
                "plugin_hidden",
                format!(
                    "plugin_init = \"shared_head\" copies the shared head, so plugin_hidden \
                     ({:?}) must equal hidden ({:?})",
                    self.plugin_hidden, self.hidden
                ),
            ));
        }
        let d = self.embedding_dim;
        checks::embedding(c, d, self.embedding_std)?;
        match self.backbone {
            Backbone::Din => c.dims(
                "attention_hidden",
                self.attention_hidden.as_deref().unwrap_or_default(),
            )?,
            Backbone::Gru4Rec => c.opt_dim("hidden_size", self.hidden_size)?,
            Backbone::Transformer => {
                let (layers, heads) = (self.layers.unwrap_or(1), self.heads.unwrap_or(2));
                checks::encoder(c, layers, heads, d, self.ffn_dim)?;
            }
        }
        c.dims("hidden", &self.hidden)?;
        c.dims("plugin_hidden", &self.plugin_hidden)?;
        c.prob("dropout", self.dropout)
    }
    fn loss_terms(&self) -> Vec<String> {
        checks::ctr_terms()
    }
}

/// The sequence encoder of the backbone.
#[derive(Debug)]
enum Encoder {
    Din(ActivationUnit),
    Gru(nn::GRU),
    Transformer(TransformerEncoder),
}

/// The training phase, stored in the `phase` variable as 0 / 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Stage 1: backbone + shared head.
    Shared,
    /// Stage 2: plugins routed by user stratum.
    Plugins,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Shared => "shared",
            Phase::Plugins => "plugins",
        }
    }
}

pub struct Pin {
    p: PinParams,
    user: Option<nn::Embedding>,
    item: nn::Embedding,
    encoder: Encoder,
    shared_head: Mlp,
    plugin_head: Mlp,
    plugin_tail: Mlp,
    /// Non-trainable scalar: 0 = shared, 1 = plugins.
    phase: Tensor,
}

impl ModelSpec for Pin {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "PIN (Personalizing Intervened Network, WSDM 2023; reconstructed from the abstract): \
         DIN / GRU4Rec / transformer backbone + shared head, then head and tail plugins routed by \
         user stratum";
    type Params = PinParams;

    fn build(root: &nn::Path, p: PinParams, ctx: &BuildContext) -> Result<Self> {
        let d = p.embedding_dim;
        let attention_hidden = p.attention_hidden.clone().unwrap_or_else(|| vec![36]);
        let hidden_size = p.hidden_size.unwrap_or(d);
        let layers = p.layers.unwrap_or(1);
        let heads = p.heads.unwrap_or(2);
        let ffn_dim = p.ffn_dim.unwrap_or(4 * d);

        let fm = ctx.feature_map;
        let items = fm.require("item", NAME)?.vocab as i64;
        let hist_spec = fm.require("hist", NAME)?;
        let bb = root / "backbone";
        let cfg = longtail_core::layers::id_embedding_config(p.embedding_std);
        let user = if p.user_embedding {
            let users = fm.require("user", NAME)?.vocab as i64;
            Some(nn::embedding(&bb / "user", users, d, cfg))
        } else {
            None
        };
        let item = nn::embedding(&bb / "item", items, d, cfg);
        let (encoder, interest_dim) = match p.backbone {
            Backbone::Din => (
                Encoder::Din(ActivationUnit::new(
                    &(&bb / "attention"),
                    d,
                    &attention_hidden,
                )),
                d,
            ),
            Backbone::Gru4Rec => (
                Encoder::Gru(nn::gru(&bb / "gru", d, hidden_size, Default::default())),
                hidden_size,
            ),
            Backbone::Transformer => {
                let max_len = checks::hist_max_len(hist_spec, NAME, checks::POSITIONS)?;
                let encoder = TransformerEncoder::new(
                    &(&bb / "encoder"),
                    d,
                    heads,
                    layers,
                    ffn_dim,
                    p.dropout,
                    max_len,
                )?;
                (Encoder::Transformer(encoder), d)
            }
        };
        let r = interest_dim + d * if p.user_embedding { 2 } else { 1 };
        let shared_head = Mlp::new(&(root / "shared_head"), r, &p.hidden, 1, p.dropout);
        let plugin_head = Mlp::new(&(root / "plugin_head"), r, &p.plugin_hidden, 1, p.dropout);
        let plugin_tail = Mlp::new(&(root / "plugin_tail"), r, &p.plugin_hidden, 1, p.dropout);
        let phase = root.zeros_no_train("phase", &[]);
        Ok(Self {
            p,
            user,
            item,
            encoder,
            shared_head,
            plugin_head,
            plugin_tail,
            phase,
        })
    }
}

impl Pin {
    /// The current phase, read from the `phase` variable (so a loaded checkpoint's phase counts).
    pub fn phase(&self) -> Phase {
        if self.phase.double_value(&[]) >= 0.5 {
            Phase::Plugins
        } else {
            Phase::Shared
        }
    }

    /// The shared prediction head (r → `hidden` → 1).
    pub fn shared_head(&self) -> &Mlp {
        &self.shared_head
    }

    /// The head-stratum plugin (r → `plugin_hidden` → 1).
    pub fn plugin_head(&self) -> &Mlp {
        &self.plugin_head
    }

    /// The tail-stratum plugin (r → `plugin_hidden` → 1).
    pub fn plugin_tail(&self) -> &Mlp {
        &self.plugin_tail
    }

    /// The interest vector `[B, |v|]` of each row's history for its target embedding `t`.
    fn interest(&self, b: &DeviceBatch, t: &Tensor, train: bool) -> Tensor {
        let hist = self.item.forward(&b.hist);
        match &self.encoder {
            Encoder::Din(unit) => {
                let a = unit.forward(&hist, t) * &b.hist_mask;
                (hist * a.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float)
            }
            Encoder::Gru(gru) => {
                let (out, _) = gru.seq(&hist);
                let (rows, l, h) = out.size3().expect("GRU output is [B, L, H]");
                let len = b.hist_len.clamp(0, l);
                let idx = (&len - 1)
                    .clamp_min(0)
                    .view([rows, 1, 1])
                    .expand([rows, 1, h], false);
                let last = out.gather(1, &idx, false).squeeze_dim(1);
                last * len.gt(0).to_kind(Kind::Float).unsqueeze(-1)
            }
            Encoder::Transformer(encoder) => {
                let h = encoder.forward(&hist, &b.hist_mask, train);
                let scale = (self.p.embedding_dim as f64).sqrt();
                let scores = h.matmul(&t.unsqueeze(-1)).squeeze_dim(-1) / scale;
                let a = masked_softmax(&scores, &b.hist_mask, 1);
                (h * a.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float)
            }
        }
    }

    fn repr(&self, b: &DeviceBatch, train: bool) -> Tensor {
        let t = self.item.forward(&b.item);
        let mut parts = vec![self.interest(b, &t, train), t];
        if let Some(user) = &self.user {
            parts.push(user.forward(&b.user));
        }
        Tensor::cat(&parts, -1).to_kind(Kind::Float)
    }

    /// The backbone representation `r = [v, t, u?]`, `[B, R]` (eval mode).
    pub fn representation(&self, b: &DeviceBatch) -> Tensor {
        self.repr(b, false)
    }

    fn logits(&self, b: &DeviceBatch, train: bool) -> Tensor {
        match self.phase() {
            Phase::Shared => self
                .shared_head
                .forward(&self.repr(b, train), train)
                .squeeze_dim(-1),
            Phase::Plugins => {
                // A frozen backbone runs in eval mode (no encoder dropout) in stage 2.
                let r = self.repr(b, train && !self.p.freeze_backbone);
                let head = self.plugin_head.forward(&r, train).squeeze_dim(-1);
                let tail = self.plugin_tail.forward(&r, train).squeeze_dim(-1);
                head.where_self(&b.user_group.eq(HEAD_GROUP), &tail)
            }
        }
    }

    /// `plugin_init = "shared_head"`: both plugins become copies of the shared head (same
    /// layout, checked at build time).
    fn copy_shared_head_into_plugins(&self, vars: &nn::VarStore) {
        let vars = vars.variables();
        longtail_core::tch::no_grad(|| {
            for (name, src) in &vars {
                if let Some(rest) = name.strip_prefix("shared_head.") {
                    for plugin in ["plugin_head.", "plugin_tail."] {
                        let mut dst = vars[&format!("{plugin}{rest}")].shallow_clone();
                        dst.copy_(src);
                    }
                }
            }
        });
    }
}

/// Sets `requires_grad` on every `backbone.` and `shared_head.` variable.
fn set_backbone_trainable(vars: &nn::VarStore, trainable: bool) {
    for (name, t) in vars.variables() {
        if name.starts_with("backbone.") || name.starts_with("shared_head.") {
            let _ = t.set_requires_grad(trainable);
        }
    }
}

impl Model for Pin {
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
    fn as_phases(&mut self) -> Option<&mut dyn Phases> {
        Some(self)
    }
}

impl Phases for Pin {
    fn set_phase(&mut self, vars: &nn::VarStore, phase: &str) -> Result<()> {
        let (value, frozen) = match phase {
            "shared" => (0.0, false),
            "plugins" => (1.0, self.p.freeze_backbone),
            other => {
                return Err(Check { model: NAME }.bad(
                    "phase",
                    format!("unknown phase '{other}' (expected shared or plugins)"),
                ))
            }
        };
        if value == 1.0
            && self.phase() == Phase::Shared
            && self.p.plugin_init == PluginInit::SharedHead
        {
            self.copy_shared_head_into_plugins(vars);
        }
        longtail_core::tch::no_grad(|| {
            let _ = self.phase.shallow_clone().fill_(value);
        });
        set_backbone_trainable(vars, !frozen);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{table, values};
    use longtail_core::conformance;
    use longtail_core::data::HostBatch;
    use longtail_core::tch::nn::OptimizerConfig;
    use longtail_core::tch::Device;
    use longtail_core::Model;
    use std::collections::HashMap;

    fn build(params: &str, seed: u64) -> Result<crate::test_util::Built<Pin>> {
        let fm = conformance::tiny_feature_map();
        let t = table(params);
        let ctx = BuildContext::new(&fm, &t, Device::Cpu);
        longtail_core::seed::seed_everything(seed);
        crate::test_util::build::<Pin>(&ctx)
    }

    fn tiny() -> DeviceBatch {
        DeviceBatch::from_host(&conformance::tiny_batch().unwrap(), Device::Cpu).unwrap()
    }

    fn snapshot(m: &crate::test_util::Built<Pin>) -> HashMap<String, Tensor> {
        m.vs.variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect()
    }

    fn loss(m: &Pin, b: &DeviceBatch, train: bool) -> Tensor {
        let out = m.forward(b, train).unwrap();
        m.losses(&out, b).unwrap().weighted_total(|_| 1.0).unwrap()
    }

    #[test]
    fn conformance() {
        let reg = crate::builtin_registry().unwrap();
        conformance::check(&reg, NAME).unwrap();
        for p in [
            "backbone = \"gru4rec\"",
            "backbone = \"transformer\"",
            "backbone = \"din\"\nuser_embedding = false\nattention_hidden = []",
            "backbone = \"gru4rec\"\nhidden_size = 5\nplugin_hidden = [4]",
            "backbone = \"transformer\"\nlayers = 2\nheads = 4\nffn_dim = 16",
            "backbone = \"din\"\nhidden = [8]\nplugin_hidden = [8]\nplugin_init = \"shared_head\"",
        ] {
            conformance::check_with(&reg, NAME, &table(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    /// `plugin_init = "shared_head"`: entering the plugin phase copies the shared head into both
    /// plugins (so the scores do not change at the switch), once; a layout mismatch or an
    /// unknown value is a params error naming its key.
    #[test]
    fn plugins_can_start_as_copies_of_the_shared_head() {
        let params = "hidden = [8, 4]\nplugin_hidden = [8, 4]\nplugin_init = \"shared_head\"";
        let mut m = build(params, 5).unwrap();
        let b = tiny();
        let shared = m.score(&b).unwrap();
        m.set_phase("plugins").unwrap();
        let vars = m.vs.variables();
        for (name, t) in &vars {
            if let Some(rest) = name.strip_prefix("shared_head.") {
                for p in ["plugin_head.", "plugin_tail."] {
                    assert!(vars[&format!("{p}{rest}")].equal(t), "{p}{rest}");
                }
            }
        }
        assert!(m.score(&b).unwrap().equal(&shared));
        // A second switch (as after reloading a stage-2 checkpoint) keeps the plugins.
        longtail_core::tch::no_grad(|| {
            let _ = vars["plugin_tail.0.bias"].shallow_clone().fill_(0.5);
        });
        m.set_phase("plugins").unwrap();
        assert!(!vars["plugin_tail.0.bias"].equal(&vars["shared_head.0.bias"]));
        // Fresh plugins (the default) differ from the shared head.
        let mut f = build("hidden = [8, 4]\nplugin_hidden = [8, 4]", 5).unwrap();
        f.set_phase("plugins").unwrap();
        assert!(!f.score(&b).unwrap().equal(&shared));
        for (bad, key) in [
            ("plugin_init = \"shared_head\"", "plugin_hidden"),
            ("plugin_init = \"copy\"", "plugin_init"),
        ] {
            let e = build(bad, 1).err().unwrap().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn variables_are_laid_out_by_part() {
        for bb in BACKBONES.map(|b| params::word(&b)) {
            let m = build(&format!("backbone = \"{bb}\""), 1).unwrap();
            let vars = m.vs.variables();
            let prefixes = ["backbone.", "shared_head.", "plugin_head.", "plugin_tail."];
            for (name, _) in vars.iter().filter(|(n, _)| *n != "phase") {
                assert!(prefixes.iter().any(|p| name.starts_with(p)), "{bb}: {name}");
            }
            for p in prefixes {
                assert!(vars.keys().any(|n| n.starts_with(p)), "{bb}: no {p}");
            }
            assert!(vars.contains_key("backbone.item.weight"), "{bb}");
            assert!(vars.contains_key("backbone.user.weight"), "{bb}");
            assert!(!vars["phase"].requires_grad());
            assert_eq!(vars["phase"].size(), Vec::<i64>::new());
            assert_eq!(m.vs.trainable_variables().len() + 1, vars.len());
            assert_eq!(m.phase(), Phase::Shared);
        }
    }

    #[test]
    fn plugin_phase_trains_only_the_plugins() {
        for bb in BACKBONES.map(|b| params::word(&b)) {
            let mut m = build(&format!("backbone = \"{bb}\""), 2).unwrap();
            let b = tiny();
            // One optimizer across both stages: stage 1 leaves Adam state on the backbone.
            let mut opt = nn::Adam::default().build(&m.vs, 1e-2).unwrap();
            for _ in 0..5 {
                let l = loss(&m, &b, true);
                opt.zero_grad();
                l.backward();
                opt.step();
            }
            m.set_phase("plugins").unwrap();
            assert_eq!(m.phase(), Phase::Plugins);
            let before = snapshot(&m);
            let first = loss(&m, &b, false).double_value(&[]);
            for _ in 0..20 {
                let l = loss(&m, &b, true);
                opt.zero_grad();
                l.backward();
                opt.step();
            }
            let last = loss(&m, &b, false).double_value(&[]);
            assert!(last < first, "{bb}: {first} -> {last}");
            let after = snapshot(&m);
            for (name, t) in &before {
                let same = t.equal(&after[name]);
                if name.starts_with("backbone.") || name.starts_with("shared_head.") {
                    assert!(same, "{bb}: frozen {name} changed");
                } else if name.starts_with("plugin_") {
                    assert!(!same, "{bb}: plugin {name} did not change");
                }
            }
            // Back to the shared phase: everything trains again.
            m.set_phase("shared").unwrap();
            assert_eq!(m.phase(), Phase::Shared);
            assert_eq!(m.vs.trainable_variables().len() + 1, m.vs.variables().len());
            assert!(m.vs.trainable_variables().iter().all(|t| t.requires_grad()));
        }
    }

    #[test]
    fn unfrozen_plugin_phase_fine_tunes_the_backbone() {
        let mut m = build("freeze_backbone = false", 2).unwrap();
        m.set_phase("plugins").unwrap();
        let b = tiny();
        let before = snapshot(&m);
        let mut opt = nn::Adam::default().build(&m.vs, 1e-2).unwrap();
        for _ in 0..3 {
            let l = loss(&m, &b, true);
            opt.zero_grad();
            l.backward();
            opt.step();
        }
        let after = snapshot(&m);
        assert!(!before["backbone.item.weight"].equal(&after["backbone.item.weight"]));
        // The shared head is not on the stage-2 path: no gradient, unchanged.
        assert!(before["shared_head.0.weight"].equal(&after["shared_head.0.weight"]));
    }

    #[test]
    fn plugins_are_routed_by_user_group() {
        for bb in BACKBONES.map(|b| params::word(&b)) {
            let mut m = build(&format!("backbone = \"{bb}\""), 4).unwrap();
            let b = tiny();
            let groups = Vec::<i64>::try_from(&b.user_group).unwrap();
            assert!(groups.contains(&2) && groups.contains(&0));
            longtail_core::tch::no_grad(|| {
                let r = m.representation(&b);
                let shared = values(&m.shared_head().forward(&r, false).sigmoid());
                assert_eq!(values(&m.score(&b).unwrap()), shared, "{bb}: phase 0");
                m.set_phase("plugins").unwrap();
                let s = values(&m.score(&b).unwrap());
                let head = values(&m.plugin_head().forward(&r, false).sigmoid());
                let tail = values(&m.plugin_tail().forward(&r, false).sigmoid());
                for (i, g) in groups.iter().enumerate() {
                    let want = if *g == HEAD_GROUP { head[i] } else { tail[i] };
                    assert!(
                        (s[i] - want).abs() < 1e-6,
                        "{bb} row {i}: {} vs {want}",
                        s[i]
                    );
                }
                // The two plugins differ, so the routing is visible.
                assert!(head.iter().zip(&tail).any(|(a, b)| (a - b).abs() > 1e-6));
            });
            // A body row (group 1) goes to the tail plugin.
            let mut host = conformance::tiny_batch().unwrap();
            host.user_group = vec![1; host.user_group.len()];
            let b1 = DeviceBatch::from_host(&host, Device::Cpu).unwrap();
            longtail_core::tch::no_grad(|| {
                let tail = values(
                    &m.plugin_tail()
                        .forward(&m.representation(&b1), false)
                        .sigmoid(),
                );
                let s = values(&m.score(&b1).unwrap());
                assert!(s.iter().zip(&tail).all(|(a, b)| (a - b).abs() < 1e-6));
            });
        }
    }

    #[test]
    fn checkpoint_keeps_the_phase() {
        for bb in BACKBONES.map(|b| params::word(&b)) {
            let params = format!("backbone = \"{bb}\"");
            let mut m = build(&params, 5).unwrap();
            m.set_phase("plugins").unwrap();
            let b = tiny();
            let s = values(&longtail_core::tch::no_grad(|| m.score(&b)).unwrap());
            let dir =
                std::env::temp_dir().join(format!("longtail-pin-{}-{bb}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("model.safetensors");
            m.vs.save(&path).unwrap();
            let mut fresh = build(&params, 6).unwrap();
            assert_eq!(fresh.phase(), Phase::Shared);
            fresh.vs.load(&path).unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            assert_eq!(fresh.phase(), Phase::Plugins, "{bb}");
            let s2 = values(&longtail_core::tch::no_grad(|| fresh.score(&b)).unwrap());
            assert_eq!(s, s2, "{bb}");
        }
    }

    #[test]
    fn bad_params_are_errors_naming_the_key() {
        for (params, key) in [
            ("backbone = \"lstm\"", "backbone"),
            ("embedding_dim = 0", "embedding_dim"),
            ("hidden = [0]", "hidden"),
            ("plugin_hidden = [8, 0]", "plugin_hidden"),
            ("attention_hidden = [0]", "attention_hidden"),
            ("backbone = \"gru4rec\"\nhidden_size = 0", "hidden_size"),
            ("backbone = \"transformer\"\nheads = 3", "heads"),
            ("backbone = \"transformer\"\nlayers = 0", "layers"),
            ("layers = 2", "layers"),
            (
                "backbone = \"gru4rec\"\nattention_hidden = [8]",
                "attention_hidden",
            ),
            ("hidden_size = 4", "hidden_size"),
            ("dropout = 1.0", "dropout"),
            ("embedding_std = 0.0", "embedding_std"),
            ("freeze = true", "freeze"),
        ] {
            let err = build(params, 1).err().unwrap().to_string();
            assert!(err.contains(key), "{params}: {err}");
        }
        let mut m = build("", 1).unwrap();
        let err = m.set_phase("stage2").err().unwrap().to_string();
        assert!(err.contains("phase") && err.contains("stage2"), "{err}");
        assert_eq!(m.phase(), Phase::Shared);
    }

    #[test]
    fn trailing_padding_does_not_change_scores() {
        let batch = |hist: &[Vec<i64>]| {
            let n = hist.len();
            let mut h =
                HostBatch::from_dense(vec![2, 5, 3], vec![6, 7, 6], vec![1.0; n], hist).unwrap();
            h.user_group = vec![2, 0, 0];
            DeviceBatch::from_host(&h, Device::Cpu).unwrap()
        };
        let hist = [vec![3, 5, 7], vec![3, 5], vec![]];
        let padded: Vec<Vec<i64>> = hist
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.resize(conformance::HIST_LEN, 0);
                r
            })
            .collect();
        let (a, b) = (batch(&hist), batch(&padded));
        assert_eq!(b.hist.size(), [3, conformance::HIST_LEN as i64]);
        // A batch with no history at all has the [B, 1] all-padding shape.
        let empty = batch(&[vec![], vec![], vec![]]);
        for bb in BACKBONES.map(|b| params::word(&b)) {
            let mut m = build(&format!("backbone = \"{bb}\""), 7).unwrap();
            for phase in ["shared", "plugins"] {
                m.set_phase(phase).unwrap();
                let (sa, sb) = longtail_core::tch::no_grad(|| {
                    (values(&m.score(&a).unwrap()), values(&m.score(&b).unwrap()))
                });
                assert!(
                    sa.iter().zip(&sb).all(|(x, y)| (x - y).abs() < 1e-6),
                    "{bb} {phase}: {sa:?} {sb:?}"
                );
                let se = longtail_core::tch::no_grad(|| values(&m.score(&empty).unwrap()));
                assert!(sa.iter().chain(&se).all(|v| v.is_finite()), "{bb} {phase}");
                // The empty-history row scores the same whatever the padding width.
                assert!((sa[2] - se[2]).abs() < 1e-6, "{bb} {phase}: {sa:?} {se:?}");
            }
        }
    }
}
