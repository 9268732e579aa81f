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

/// A trainable model. Parameters live in its own `VarStore`, named after struct fields so a
/// checkpoint reads like the model.
pub trait Model {
    /// The registry name.
    fn name(&self) -> &str;
    fn task(&self) -> Task;
    fn var_store(&self) -> &nn::VarStore;
    fn var_store_mut(&mut self) -> &mut nn::VarStore;
    /// One forward pass; `train` switches dropout and other training-only behaviour.
    fn forward(&self, batch: &DeviceBatch, train: bool) -> Result<Output>;
    /// Unweighted loss terms for an output of `forward`.
    fn losses(&self, out: &Output, batch: &DeviceBatch) -> Result<Losses>;
    /// One score per row `[B]` for its `(user, item)` pair, in eval mode: a probability for CTR
    /// models, an affinity for retrieval models. Evaluation and checkpoints compare these.
    fn score(&self, batch: &DeviceBatch) -> Result<Tensor>;
    /// Retrieval models: user representations `[B, K, D]` (K = number of interests).
    fn user_repr(&self, _batch: &DeviceBatch) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// Retrieval models: representations `[N, D]` of the item ids `items [N]`, so evaluation can
    /// rank the catalogue in chunks.
    fn item_repr(&self, _items: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// Retrieval models: scores `[B, N]` of user representations `users [B, K, D]` against
    /// candidate representations `items [N, D]` (shared) or `[B, N, D]` (per row). Default: the candidate-aware interest weighting
    /// of IDW eq. 4 ([`crate::losses::candidate_aware_scores`]).
    fn score_candidates(&self, users: &Tensor, items: &Tensor) -> Result<Tensor> {
        Ok(crate::losses::candidate_aware_scores(users, items))
    }
    /// Retrieval models: name prefixes of the item tower's variables (e.g. `item_tower`), which
    /// IDW's user-tower calibration freezes; empty for models without a separate item tower.
    fn item_tower_prefixes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Switches a model with training phases (PIN: `shared` head, then `plugins` routed by user
    /// stratum) to `phase`; models without phases refuse.
    fn set_phase(&mut self, phase: &str) -> Result<()> {
        Err(crate::error::CoreError::Params {
            model: self.name().to_string(),
            key: "phase".into(),
            message: format!(
                "model '{}' has no training phases (asked for '{phase}')",
                self.name()
            ),
        })
    }
    /// A model's own step before training (e.g. MFN's interest centers, Algorithm 1), fed with
    /// shuffled training batches for as long as it pulls them; most models have none.
    fn pretrain(
        &mut self,
        _batches: &mut dyn Iterator<Item = Result<DeviceBatch>>,
    ) -> Result<Option<PretrainLog>> {
        Ok(None)
    }
}

/// The plain CTR model shape: one logit per row, the `ctr` binary cross-entropy loss, the sigmoid
/// as score. Implement this (a name, the var store, the logits) and [`Model`] comes with it.
pub trait CtrLogits {
    /// The registry name.
    fn ctr_name(&self) -> &str;
    fn ctr_var_store(&self) -> &nn::VarStore;
    fn ctr_var_store_mut(&mut self) -> &mut nn::VarStore;
    /// `[B]` logits; `train` switches dropout.
    fn ctr_logits(&self, batch: &DeviceBatch, train: bool) -> Tensor;
}

impl<T: CtrLogits> Model for T {
    fn name(&self) -> &str {
        self.ctr_name()
    }
    fn task(&self) -> Task {
        Task::Ctr
    }
    fn var_store(&self) -> &nn::VarStore {
        self.ctr_var_store()
    }
    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        self.ctr_var_store_mut()
    }
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
