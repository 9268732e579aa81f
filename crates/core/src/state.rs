//! Training state outside the model that a bit-identical resume must save and restore: the
//! default random generators (every draw of dropout, `randint`, initialisers) and the optimizer's
//! moments ([`Adam`], libtorch's Adam with its state held here instead of inside libtorch).
//! tch 0.24 exposes neither, so `csrc/state.cpp` does, compiled against the same libtorch by
//! `build.rs`.

use crate::error::{CoreError, Result};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Arc, Mutex};
use tch::{nn, Device, Tensor};

extern "C" {
    fn longtail_rng_get_state(cuda_index: c_int, err: *mut *mut c_char) -> *mut c_void;
    fn longtail_rng_set_state(
        cuda_index: c_int,
        state: *const c_void,
        err: *mut *mut c_char,
    ) -> c_int;
    fn longtail_grad_set_none(tensor: *mut c_void);
    fn longtail_zero_grad(n: i64, params: *const *mut c_void);
    #[allow(clippy::too_many_arguments)]
    fn longtail_adam_step(
        n: i64,
        params: *const *mut c_void,
        exp_avg: *const *mut c_void,
        exp_avg_sq: *const *mut c_void,
        steps: *mut i64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        err: *mut *mut c_char,
    ) -> c_int;
    fn longtail_free_error(err: *mut c_char);
}

fn cuda_index(device: Device) -> c_int {
    match device {
        Device::Cuda(i) => i as c_int,
        _ => -1,
    }
}

/// Takes the error string the shim allocated (if any) and frees it.
fn take_error(err: *mut c_char) -> Option<String> {
    if err.is_null() {
        return None;
    }
    // SAFETY: the shim returns a NUL-terminated malloc'd copy or null.
    let s = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { longtail_free_error(err) };
    Some(s)
}

/// The state of the default generator of `device` (the CPU's for `Device::Cpu`), as a uint8
/// tensor on the CPU that [`set_rng_state`] accepts back.
pub fn rng_state(device: Device) -> Result<Tensor> {
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: the shim returns a new heap at::Tensor* (owned by the returned Tensor) or null.
    let ptr = unsafe { longtail_rng_get_state(cuda_index(device), &mut err) };
    if let Some(e) = take_error(err) {
        return Err(CoreError::Runtime(format!(
            "reading the random generator's state: {e}"
        )));
    }
    if ptr.is_null() {
        return Err(CoreError::Runtime(
            "reading the random generator's state: no state returned".into(),
        ));
    }
    Ok(unsafe { Tensor::from_ptr(ptr.cast()) })
}

/// Restores a state from [`rng_state`] into `device`'s default generator.
pub fn set_rng_state(device: Device, state: &Tensor) -> Result<()> {
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: `state` is a live tensor handle; the shim only reads it.
    let rc = unsafe { longtail_rng_set_state(cuda_index(device), state.as_ptr().cast(), &mut err) };
    match (rc, take_error(err)) {
        (0, None) => Ok(()),
        (_, e) => Err(CoreError::Runtime(format!(
            "restoring the random generator's state: {}",
            e.unwrap_or_else(|| "refused".into())
        ))),
    }
}

/// Makes `t`'s gradient undefined, as `zero_grad(set_to_none = true)` does: the next backward
/// pass allocates a fresh one, and a parameter the step did not reach keeps none (so Adam skips
/// it, as libtorch's Adam does).
pub fn grad_set_none(t: &mut Tensor) {
    // SAFETY: a live tensor handle; resetting its grad is what libtorch's optimizers do.
    unsafe { longtail_grad_set_none(t.as_mut_ptr().cast()) }
}

/// Adam over a `VarStore`'s trainable variables, computed exactly as libtorch's
/// `torch::optim::Adam` (what `tch::nn::Adam` runs: the same operations in the same order, so
/// training numbers are unchanged), with its moments and step counts held here so a checkpoint
/// can save them ([`Adam::state`]) and a resumed run load them ([`Adam::load_state`]).
/// Variables added to the store later join at the next step, as with tch's optimizer.
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    vars: Arc<Mutex<nn::Variables>>,
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    steps: Vec<i64>,
}

impl Adam {
    /// tch's defaults: betas 0.9 / 0.999, eps 1e-8, no weight decay.
    pub fn new(vs: &nn::VarStore, lr: f64) -> Self {
        let mut a = Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            vars: vs.variables_.clone(),
            params: Vec::new(),
            exp_avg: Vec::new(),
            exp_avg_sq: Vec::new(),
            steps: Vec::new(),
        };
        a.add_missing_variables();
        a
    }

    fn add_missing_variables(&mut self) {
        let v = self.vars.lock().unwrap_or_else(|p| p.into_inner());
        for var in &v.trainable_variables[self.params.len().min(v.trainable_variables.len())..] {
            // Zero moments, as libtorch creates them before a parameter's first update.
            self.exp_avg.push(var.tensor.zeros_like());
            self.exp_avg_sq.push(var.tensor.zeros_like());
            self.params.push(var.tensor.shallow_clone());
            self.steps.push(0);
        }
    }

    /// Every parameter's gradient becomes undefined (libtorch's `zero_grad(set_to_none)`): a
    /// parameter the next backward pass does not reach is not updated.
    pub fn zero_grad(&mut self) {
        self.add_missing_variables();
        let ptrs: Vec<*mut c_void> = self
            .params
            .iter_mut()
            .map(|t| t.as_mut_ptr().cast())
            .collect();
        // SAFETY: live tensor handles, owned by `self.params` for the call.
        unsafe { longtail_zero_grad(ptrs.len() as i64, ptrs.as_ptr()) }
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self) -> Result<()> {
        self.add_missing_variables();
        let ptrs = |v: &mut Vec<Tensor>| -> Vec<*mut c_void> {
            v.iter_mut().map(|t| t.as_mut_ptr().cast()).collect()
        };
        let (p, m, v) = (
            ptrs(&mut self.params),
            ptrs(&mut self.exp_avg),
            ptrs(&mut self.exp_avg_sq),
        );
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: three arrays of live handles and one of counts, all of the same length.
        let rc = unsafe {
            longtail_adam_step(
                p.len() as i64,
                p.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                self.steps.as_mut_ptr(),
                self.lr,
                self.beta1,
                self.beta2,
                self.eps,
                self.weight_decay,
                &mut err,
            )
        };
        match (rc, take_error(err)) {
            (0, None) => Ok(()),
            (_, e) => Err(CoreError::Runtime(format!(
                "Adam step: {}",
                e.unwrap_or_else(|| "failed".into())
            ))),
        }
    }

    /// The state to checkpoint: each parameter's update count (by position among the store's
    /// trainable variables) and its two moments, named `adam/<i>/exp_avg`, `adam/<i>/exp_avg_sq`.
    pub fn state(&self) -> (Vec<i64>, Vec<(String, Tensor)>) {
        let mut t = Vec::with_capacity(2 * self.params.len());
        for (i, (m, v)) in self.exp_avg.iter().zip(&self.exp_avg_sq).enumerate() {
            t.push((format!("adam/{i}/exp_avg"), m.shallow_clone()));
            t.push((format!("adam/{i}/exp_avg_sq"), v.shallow_clone()));
        }
        (self.steps.clone(), t)
    }

    /// Loads a [`Adam::state`] saved from an optimizer over the same variables.
    pub fn load_state(&mut self, steps: &[i64], tensors: &HashMap<String, Tensor>) -> Result<()> {
        self.add_missing_variables();
        if steps.len() != self.params.len() {
            return Err(CoreError::Runtime(format!(
                "the saved optimizer state has {} parameters, the model {}",
                steps.len(),
                self.params.len()
            )));
        }
        for i in 0..self.params.len() {
            for (name, slot) in [
                ("exp_avg", &mut self.exp_avg[i]),
                ("exp_avg_sq", &mut self.exp_avg_sq[i]),
            ] {
                let key = format!("adam/{i}/{name}");
                let saved = tensors.get(&key).ok_or_else(|| {
                    CoreError::Runtime(format!("the saved optimizer state lacks '{key}'"))
                })?;
                if saved.size() != slot.size() {
                    return Err(CoreError::Runtime(format!(
                        "the saved optimizer state '{key}' has shape {:?}, the parameter {:?}",
                        saved.size(),
                        slot.size()
                    )));
                }
                tch::no_grad(|| slot.copy_(saved));
            }
        }
        self.steps = steps.to_vec();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn a_foreign_tensor_is_refused_as_an_error() {
        let bad = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        let e = set_rng_state(Device::Cpu, &bad).unwrap_err().to_string();
        assert!(e.contains("random generator"), "{e}");
    }

    /// The same updates as tch's optimizer (libtorch's Adam) bit for bit, including a
    /// parameter that gets no gradient in some steps; and saving the state mid-way and loading
    /// it into a fresh optimizer continues identically.
    #[test]
    fn adam_matches_libtorch_and_resumes_identically() {
        // Fixed values, not the global generator (other tests draw from it concurrently).
        let wave = |n: i64, f: f64| (Tensor::arange(n, (Kind::Float, Device::Cpu)) * f).sin();
        let build = |seed: i64| {
            let vs = nn::VarStore::new(Device::Cpu);
            let root = vs.root();
            let a = root.var_copy("a", &wave(12, 0.7 + seed as f64).reshape([4, 3]));
            let b = root.var_copy("b", &wave(3, 1.3 + seed as f64));
            (vs, a, b)
        };
        let x = wave(32, 0.37).reshape([8, 4]);
        let loss = |a: &Tensor, b: &Tensor, i: usize| {
            let y = x.matmul(a);
            // Every third step leaves `b` out: no gradient, no update, no step counted.
            if i % 3 == 2 {
                y.square().mean(Kind::Float)
            } else {
                (y + b).square().mean(Kind::Float)
            }
        };
        use tch::nn::OptimizerConfig;
        let (vs1, a1, b1) = build(5);
        let mut reference = nn::Adam::default().build(&vs1, 0.05).unwrap();
        let (vs2, a2, b2) = build(5);
        let mut ours = Adam::new(&vs2, 0.05);
        for i in 0..7 {
            reference.zero_grad();
            loss(&a1, &b1, i).backward();
            reference.step();
            ours.zero_grad();
            loss(&a2, &b2, i).backward();
            ours.step().unwrap();
            assert!(
                a1.equal(&a2) && b1.equal(&b2),
                "step {i} differs: {} {}",
                (&a1 - &a2).abs().max().double_value(&[]),
                (&b1 - &b2).abs().max().double_value(&[])
            );
        }
        let (steps, tensors) = ours.state();
        assert_eq!(steps, vec![7, 5]);
        let saved: HashMap<String, Tensor> =
            tensors.into_iter().map(|(k, t)| (k, t.copy())).collect();
        let (vs3, a3, b3) = build(6);
        tch::no_grad(|| {
            a3.shallow_clone().copy_(&a2);
            b3.shallow_clone().copy_(&b2);
        });
        let mut resumed = Adam::new(&vs3, 0.05);
        resumed.load_state(&steps, &saved).unwrap();
        for i in 7..12 {
            ours.zero_grad();
            loss(&a2, &b2, i).backward();
            ours.step().unwrap();
            resumed.zero_grad();
            loss(&a3, &b3, i).backward();
            resumed.step().unwrap();
            assert!(a2.equal(&a3) && b2.equal(&b3), "resumed step {i} differs");
        }
        let e = resumed.load_state(&[1], &saved).unwrap_err().to_string();
        assert!(e.contains("2"), "{e}");
    }

    #[test]
    fn grad_set_none_leaves_no_gradient() {
        let mut x = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        (&x * 3.0).sum(Kind::Float).backward();
        assert!(x.grad().defined());
        grad_set_none(&mut x);
        assert!(!x.grad().defined());
    }
}
