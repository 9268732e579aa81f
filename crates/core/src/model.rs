//! The `Model` contract shared by pointwise CTR models and softmax two-tower retrieval models.

use crate::batch::DeviceBatch;
use crate::checkpoint::Pretrained;
use crate::error::Result;
use longtail_data::{FeatureMap, ItemFeatures};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

/// What a model predicts, which decides its scoring and evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Pointwise: one probability per (user, item) row, trained with labels.
    Ctr,
    /// Two-tower: user representations `[B, K, D]` against item representations `[N, D]`.
    Retrieval,
}

/// Raw forward output. `logits` is `[B]` for CTR models and `[B, B]` (in-batch) for retrieval
/// models; `extras` carries whatever a model's losses need (auxiliary logits, embeddings).
#[derive(Debug)]
pub struct Output {
    pub logits: Tensor,
    pub extras: Vec<(String, Tensor)>,
}

impl Output {
    pub fn new(logits: Tensor) -> Self {
        Self {
            logits,
            extras: Vec::new(),
        }
    }
    pub fn extra(&self, name: &str) -> Option<&Tensor> {
        self.extras.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Named, unweighted scalar loss terms (e.g. HIM: `ctr`, `group_hinge`). The trainer weights them.
#[derive(Debug, Default)]
pub struct Losses(pub Vec<(String, Tensor)>);

impl Losses {
    pub fn one(name: &str, t: Tensor) -> Self {
        Self(vec![(name.to_string(), t)])
    }
    pub fn push(&mut self, name: &str, t: Tensor) {
        self.0.push((name.to_string(), t));
    }
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
    /// `sum_k w_k * L_k`; `None` when there are no terms.
    pub fn weighted_total(&self, weight: impl Fn(&str) -> f64) -> Option<Tensor> {
        let mut it = self.0.iter();
        let (n0, t0) = it.next()?;
        Some(it.fold(t0 * weight(n0), |acc, (n, t)| acc + t * weight(n)))
    }
}

/// What a builder receives: the dataset's feature map, the model's own config table, the device,
/// and, when the experiment has them, the item side features and a stage-1 model's tensors.
pub struct BuildContext<'a> {
    pub feature_map: &'a FeatureMap,
    pub params: &'a toml::Table,
    pub device: Device,
    /// Item side features (index = item id), e.g. MovieLens genres (MFN's fine-grained inputs).
    pub items: Option<&'a ItemFeatures>,
    /// The tensors of a stage-1 model trained first (`[pretrain]` in the experiment), e.g. the
    /// fixed behavior embeddings MFN attends with.
    pub pretrained: Option<&'a Pretrained>,
}

impl<'a> BuildContext<'a> {
    /// A context without item features or stage-1 tensors.
    pub fn new(feature_map: &'a FeatureMap, params: &'a toml::Table, device: Device) -> Self {
        Self {
            feature_map,
            params,
            device,
            items: None,
            pretrained: None,
        }
    }
    pub fn with_items(mut self, items: Option<&'a ItemFeatures>) -> Self {
        self.items = items;
        self
    }
    pub fn with_pretrained(mut self, pretrained: Option<&'a Pretrained>) -> Self {
        self.pretrained = pretrained;
        self
    }
}

/// What a model's own pre-training step did (e.g. MFN's interest centers, Algorithm 1); the
/// trainer records it in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainLog {
    /// What was pre-trained, e.g. `interest_centers`.
    pub what: String,
    pub steps: usize,
    pub loss_first: f64,
    pub loss_last: f64,
    /// Why it stopped: `max_steps` or `tolerance`.
    pub stopped_by: String,
}

/// A trainable model: a forward pass, its loss terms and its scores. Its parameters live in a
/// `VarStore` that the engine owns ([`Instance`]): a model is built under an `nn::Path`, so a
/// checkpoint reads like the model's fields and the engine can save, restore, freeze and optimise
/// every model the same way.
///
/// What only some papers need is an optional capability, reached through the `as_*` methods
/// (default: absent): [`Towers`] (retrieval: user and item towers), [`Phases`] (PIN's training
/// phases) and [`Pretrain`] (a model's own step before training, e.g. MFN's interest centers).
pub trait Model {
    /// One forward pass; `train` switches dropout and other training-only behaviour.
    fn forward(&self, batch: &DeviceBatch, train: bool) -> Result<Output>;
    /// Unweighted loss terms for an output of `forward`.
    fn losses(&self, out: &Output, batch: &DeviceBatch) -> Result<Losses>;
    /// One score per row `[B]` for its `(user, item)` pair, in eval mode: a probability for CTR
    /// models, an affinity for retrieval models. Evaluation and checkpoints compare these.
    fn score(&self, batch: &DeviceBatch) -> Result<Tensor>;
    /// A retrieval model returns its towers here (`Some(self)`); its task is then
    /// [`Task::Retrieval`].
    fn as_towers(&self) -> Option<&dyn Towers> {
        None
    }
    /// A model with training phases returns itself here.
    fn as_phases(&mut self) -> Option<&mut dyn Phases> {
        None
    }
    /// A model with its own step before training returns itself here.
    fn as_pretrain(&mut self) -> Option<&mut dyn Pretrain> {
        None
    }
}

impl dyn Model + '_ {
    /// CTR unless the model has towers.
    pub fn task(&self) -> Task {
        if self.as_towers().is_some() {
            Task::Retrieval
        } else {
            Task::Ctr
        }
    }
}

/// Retrieval models (IDW's two towers): representations the evaluator ranks the catalogue with.
pub trait Towers {
    /// User representations `[B, K, D]` (K = number of interests), in eval mode.
    fn user_repr(&self, batch: &DeviceBatch) -> Result<Tensor>;
    /// Representations `[N, D]` of the item ids `items [N]`, in eval mode, so evaluation can rank
    /// the catalogue in chunks.
    fn item_repr(&self, items: &Tensor) -> Result<Tensor>;
    /// Scores `[B, N]` of user representations `users [B, K, D]` against candidate
    /// representations `items [N, D]` (shared) or `[B, N, D]` (per row). Default: the
    /// candidate-aware interest weighting of IDW eq. 4 ([`crate::losses::candidate_aware_scores`]).
    fn score_candidates(&self, users: &Tensor, items: &Tensor) -> Result<Tensor> {
        Ok(crate::losses::candidate_aware_scores(users, items))
    }
    /// Name prefixes of the item tower's variables (e.g. `item_tower`), which IDW's user-tower
    /// calibration freezes; empty for models without a separate item tower.
    fn item_tower_prefixes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Models with training phases (PIN: `shared` head, then `plugins` routed by user stratum).
pub trait Phases {
    /// Switches to `phase`; `vars` is the model's variable store (the engine's), for phases that
    /// freeze or copy variables. An unknown phase is an error naming the phases there are.
    fn set_phase(&mut self, vars: &nn::VarStore, phase: &str) -> Result<()>;
}

/// Models with their own step before training (MFN's interest centers, Algorithm 1).
pub trait Pretrain {
    /// Fed with shuffled training batches for as long as it pulls them; `None` when these params
    /// need no pre-training (e.g. MFN with random centers).
    fn pretrain(
        &mut self,
        batches: &mut dyn Iterator<Item = Result<DeviceBatch>>,
    ) -> Result<Option<PretrainLog>>;
}

/// A built model with the variables it trains: the registry builds one, the engine owns it.
/// It derefs to the [`Model`], so `instance.forward(..)` works; the capability methods here turn
/// an absent capability into an error naming the model.
pub struct Instance {
    name: String,
    vs: nn::VarStore,
    model: Box<dyn Model>,
}

impl Instance {
    /// A model built by `build` under the root of a fresh `VarStore` on `device`.
    pub fn build(
        name: &str,
        device: Device,
        build: impl FnOnce(&nn::Path) -> Result<Box<dyn Model>>,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let model = build(&vs.root())?;
        Ok(Self {
            name: name.to_string(),
            vs,
            model,
        })
    }
    /// The registry name.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn task(&self) -> Task {
        self.model.task()
    }
    /// Every variable of the model (the checkpoint's contents).
    pub fn vs(&self) -> &nn::VarStore {
        &self.vs
    }
    pub fn vs_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }
    /// The towers of a retrieval model; an error naming the model for a CTR one.
    pub fn towers(&self) -> Result<&dyn Towers> {
        self.model.as_towers().ok_or_else(|| {
            self.lacks(
                "is not a retrieval model (it has no user and item towers); [sequences] runs \
                     need one, e.g. `twotower`",
            )
        })
    }
    /// Switches a model with phases to `phase`; models without phases refuse.
    pub fn set_phase(&mut self, phase: &str) -> Result<()> {
        if let Some(p) = self.model.as_phases() {
            return p.set_phase(&self.vs, phase);
        }
        Err(self.lacks(&format!("has no training phases (asked for '{phase}')")))
    }
    /// The model's own step before training, if it has one.
    pub fn pretrain(
        &mut self,
        batches: &mut dyn Iterator<Item = Result<DeviceBatch>>,
    ) -> Result<Option<PretrainLog>> {
        match self.model.as_pretrain() {
            Some(p) => p.pretrain(batches),
            None => Ok(None),
        }
    }
    fn lacks(&self, what: &str) -> crate::error::CoreError {
        crate::error::CoreError::Params {
            model: self.name.clone(),
            key: "model".into(),
            message: format!("model '{}' {what}", self.name),
        }
    }
}

impl std::ops::Deref for Instance {
    type Target = dyn Model;
    fn deref(&self) -> &Self::Target {
        self.model.as_ref()
    }
}

/// The plain CTR model shape: one logit per row, the `ctr` binary cross-entropy loss, the sigmoid
/// as score. Implement this (the logits) and [`Model`] comes with it.
pub trait CtrLogits {
    /// `[B]` logits; `train` switches dropout.
    fn ctr_logits(&self, batch: &DeviceBatch, train: bool) -> Tensor;
}

impl<T: CtrLogits> Model for T {
    fn forward(&self, batch: &DeviceBatch, train: bool) -> Result<Output> {
        Ok(Output::new(self.ctr_logits(batch, train)))
    }
    fn losses(&self, out: &Output, batch: &DeviceBatch) -> Result<Losses> {
        Ok(Losses::one(
            "ctr",
            crate::losses::bce_with_logits(&out.logits, batch),
        ))
    }
    fn score(&self, batch: &DeviceBatch) -> Result<Tensor> {
        Ok(self.ctr_logits(batch, false).sigmoid())
    }
}
