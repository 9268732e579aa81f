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
    /// AdamW's decoupled decay (applied to the weights before the Adam step); 0 = none.
    decoupled_decay: f64,
    /// Global gradient-norm limit; 0 = off.
    clip_grad_norm: f64,
}

impl Optimizer {
    /// Adam (tch defaults: betas 0.9/0.999, eps 1e-8, no weight decay) at `lr` over the
    /// variables that require gradients now (freeze before building it).
    pub fn adam(model: &Instance, lr: f64) -> Result<Self> {
        Ok(Self {
            opt: Adam::new(model.vs(), lr),
            hook: None,
            decoupled_decay: 0.0,
            clip_grad_norm: 0.0,
        })
    }

    /// Adam with `[train]`'s settings: `lr`, `weight_decay` (L2 on the gradient, or decoupled
    /// as AdamW) and `clip_grad_norm`. With the defaults it is [`Optimizer::adam`] exactly.
    pub fn from_config(model: &Instance, cfg: &crate::TrainConfig) -> Result<Self> {
        let mut o = Self::adam(model, cfg.lr)?;
        if cfg.decoupled_weight_decay {
            o.decoupled_decay = cfg.weight_decay;
        } else {
            o.opt.weight_decay = cfg.weight_decay;
        }
        o.clip_grad_norm = cfg.clip_grad_norm;
        Ok(o)
    }

    /// The learning rate of the next updates (a schedule sets it before each step).
    pub fn set_lr(&mut self, lr: f64) {
        self.opt.lr = lr;
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
        if self.clip_grad_norm > 0.0 || self.decoupled_decay > 0.0 {
            self.adjust(model);
        }
        self.opt.step()?;
        Ok(out)
    }

    /// Gradient clipping and AdamW's weight decay on the model's parameters that have gradients.
    fn adjust(&self, model: &Instance) {
        let params: Vec<Tensor> = model
            .vs()
            .trainable_variables()
            .into_iter()
            .filter(|p| p.grad().defined())
            .collect();
        clip_and_decay(
            &params,
            self.clip_grad_norm,
            self.opt.lr * self.decoupled_decay,
        );
    }
}

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm` (0 =
/// off; the factor `min(1, max_norm / (norm + 1e-6))` stays a tensor, as PyTorch computes it, so
/// there is no host sync), then scales each parameter by `1 - decay` (AdamW's decoupled decay,
/// `decay = lr * weight_decay`; 0 = off).
fn clip_and_decay(params: &[Tensor], max_norm: f64, decay: f64) {
    if params.is_empty() {
        return;
    }
    tch::no_grad(|| {
        if max_norm > 0.0 {
            let sq: Vec<Tensor> = params
                .iter()
                .map(|p| {
                    p.grad()
                        .to_kind(tch::Kind::Float)
                        .square()
                        .sum(tch::Kind::Float)
                })
                .collect();
            let norm = Tensor::stack(&sq, 0).sum(tch::Kind::Float).sqrt();
            let scale = ((norm + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
            for p in params {
                let mut g = p.grad();
                let _ = g.g_mul_(&scale.to_kind(g.kind()));
            }
        }
        if decay > 0.0 {
            for p in params {
                let _ = p.shallow_clone().g_mul_scalar_(1.0 - decay);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two parameters with gradients 2·p of the loss Σ p².
    fn with_grads(a: &[f32], b: &[f32]) -> Vec<Tensor> {
        let p: Vec<Tensor> = [a, b]
            .iter()
            .map(|v| Tensor::from_slice(v).set_requires_grad(true))
            .collect();
        let loss = p
            .iter()
            .map(|t| t.square().sum(tch::Kind::Float))
            .sum::<Tensor>();
        loss.backward();
        p
    }

    fn grad_norm(p: &[Tensor]) -> f64 {
        p.iter()
            .map(|t| t.grad().square().sum(tch::Kind::Double).double_value(&[]))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn clipping_bounds_the_global_norm_and_leaves_small_gradients_alone() {
        // Gradients (6, 8) and (0): norm 10.
        let p = with_grads(&[3.0, 4.0], &[0.0]);
        clip_and_decay(&p, 2.5, 0.0);
        assert!((grad_norm(&p) - 2.5).abs() < 1e-5, "{}", grad_norm(&p));
        // The direction is kept.
        let g: Vec<f32> = Vec::try_from(p[0].grad()).unwrap();
        assert!((g[0] / g[1] - 0.75).abs() < 1e-6, "{g:?}");
        let p = with_grads(&[0.3, 0.4], &[0.0]);
        clip_and_decay(&p, 2.5, 0.0);
        assert!(
            (grad_norm(&p) - 1.0).abs() < 1e-6,
            "a norm under the limit is unchanged"
        );
    }

    #[test]
    fn decoupled_decay_scales_the_weights_not_the_gradients() {
        let p = with_grads(&[3.0, 4.0], &[-2.0]);
        clip_and_decay(&p, 0.0, 0.1);
        let w: Vec<f32> = Vec::try_from(p[0].detach()).unwrap();
        assert_eq!(w, [3.0f32 * 0.9, 4.0f32 * 0.9]);
        let w: Vec<f32> = Vec::try_from(p[1].detach()).unwrap();
        assert_eq!(w, [-2.0f32 * 0.9]);
        assert!((grad_norm(&p) - (36.0f64 + 64.0 + 16.0).sqrt()).abs() < 1e-5);
    }
}
