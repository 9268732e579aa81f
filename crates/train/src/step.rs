//! The train step: the one place where a batch becomes a parameter update. Every training run,
//! the benchmark and the PyTorch twin's reference go through [`Optimizer::update`] (zero the
//! gradients, let a [`TrainStep`] compute them, run the gradient hook, apply Adam), so speed work
//! (CUDA graphs, fused optimizers) and a data-parallel all-reduce ([`GradHook`]) are written once.
//!
//! A step is a function of the parameters and one fixed-shape batch; it leaves its loss values
//! on the device ([`StepOut`]) so the loop reads them only every `log_every` steps.

use crate::error::{Result, TrainError};
use longtail_core::state::Adam;
use longtail_core::{DeviceBatch, Instance, Losses};
use longtail_data::HostBatch;
use std::collections::BTreeMap;
use tch::Tensor;

/// The losses of one step, detached and still on the device.
pub struct StepOut {
    /// The weighted total the gradient was taken of.
    pub total: Tensor,
    /// Each unweighted named term (empty when the step has no single set of terms, as PIN's
    /// per-stratum aggregation).
    pub terms: Vec<(String, Tensor)>,
}

/// How one batch's gradient is computed into the model's `.grad`s (already zeroed by
/// [`Optimizer::update`], which also applies the update).
pub trait TrainStep {
    /// A short name for logs (`standard`, `aggregated`).
    fn name(&self) -> &'static str;
    /// Backward pass of one batch; `host` is the same batch on the host (row groups, counts).
    fn backward(
        &mut self,
        model: &Instance,
        batch: &mut DeviceBatch,
        host: &HostBatch,
    ) -> Result<StepOut>;
}

/// Runs between the backward pass and the optimizer step with the gradients in place: the seam
/// for a data-parallel all-reduce, gradient clipping or gradient statistics.
pub trait GradHook {
    fn after_backward(&mut self, model: &Instance) -> Result<()>;
}

/// Loss-term weights (`[train] loss_weights`; a term not named weighs 1).
#[derive(Debug, Clone, Default)]
pub struct LossWeights(pub BTreeMap<String, f64>);

impl LossWeights {
    pub fn of(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(1.0)
    }
}

/// The standard step: forward, the model's named loss terms, their weighted total, backward.
#[derive(Debug, Clone, Default)]
pub struct StandardStep {
    pub weights: LossWeights,
}

impl StandardStep {
    pub fn new(weights: &BTreeMap<String, f64>) -> Self {
        Self {
            weights: LossWeights(weights.clone()),
        }
    }

    /// Forward and the weighted total of the model's loss terms (with the graph, for a
    /// backward pass): the only forward -> losses code of training.
    pub fn total(
        model: &Instance,
        batch: &DeviceBatch,
        weights: &LossWeights,
    ) -> Result<(Tensor, Losses)> {
        let out = model.forward(batch, true)?;
        let losses = model.losses(&out, batch)?;
        let total = losses
            .weighted_total(|n| weights.of(n))
            .ok_or_else(|| TrainError::Config {
                key: "model".into(),
                message: format!("model '{}' returned no loss terms", model.name()),
            })?;
        Ok((total, losses))
    }
}

impl TrainStep for StandardStep {
    fn name(&self) -> &'static str {
        "standard"
    }

    fn backward(
        &mut self,
        model: &Instance,
        batch: &mut DeviceBatch,
        _host: &HostBatch,
    ) -> Result<StepOut> {
        let (total, losses) = Self::total(model, batch, &self.weights)?;
        total.backward();
        Ok(StepOut {
            total: total.detach(),
            terms: losses.0.into_iter().map(|(n, t)| (n, t.detach())).collect(),
        })
    }
}

/// Adam over the model's trainable variables, with an optional [`GradHook`]. The Adam is
/// libtorch's computation with its state held by longtail ([`Adam`]), so a checkpoint saves it.
pub struct Optimizer {
    pub(crate) opt: Adam,
    hook: Option<Box<dyn GradHook>>,
}

impl Optimizer {
    /// Adam (tch defaults: betas 0.9/0.999, eps 1e-8, no weight decay) at `lr` over the
    /// variables that require gradients now (freeze before building it).
    pub fn adam(model: &Instance, lr: f64) -> Result<Self> {
        Ok(Self {
            opt: Adam::new(model.vs(), lr),
            hook: None,
        })
    }

    pub fn with_hook(mut self, hook: Box<dyn GradHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// One update: zero the gradients, `step`'s backward pass, the hook, the Adam step. The only
    /// `zero_grad` of the engine.
    pub fn update(
        &mut self,
        step: &mut dyn TrainStep,
        model: &Instance,
        batch: &mut DeviceBatch,
        host: &HostBatch,
    ) -> Result<StepOut> {
        self.opt.zero_grad();
        let out = step.backward(model, batch, host)?;
        if let Some(h) = self.hook.as_mut() {
            h.after_backward(model)?;
        }
        self.opt.step()?;
        Ok(out)
    }
}
