//! Sleep phase of Iterative Density Weighting (IDW; Mehta et al., "Density Weighting for
//! Multi-Interest Personalized Recommendation", §3.3, eqs. 7-9, Algorithms 1-2).
//!
//! Given the item tower's representations `v_k` and the current item weights `w(t)`:
//! - eq. 7: kernel-smoothed density `p̃(y) = (1/ℓ) Σ_k w_k K(‖v_y − v_k‖ / ℓ)`, Gaussian `K`,
//!   bandwidth `ℓ` by Scott's rule;
//! - eq. 8: relative normalization `p' = (p̃ − min p̃) / (max p̃ − min p̃)`;
//! - eq. 9: `h = 1 − p'`, `w(t+1) = m · w(t) + (1 − m) · h / Σ h`.
//!
//! Everything is computed in `Float` on the device of the representations; the `[N, N]`
//! kernel matrix is never materialized, only `[chunk, N]` slices of it.

use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Bandwidth used when Scott's rule has nothing to measure (fewer than two points, or all points
/// identical so σ = 0). Any positive value gives the same relative densities in that case: with
/// all points equal every kernel value is 1, and eq. 8 then maps everything to 0.
const FALLBACK_BANDWIDTH: f64 = 1e-6;

/// `torch.cdist` compute mode that never uses the `‖a‖² + ‖b‖² − 2a·b` matmul trick: the direct
/// difference is exact on the diagonal (distance 0) and identical for a row whatever the chunk.
const CDIST_DIRECT: i64 = 2;

fn bad(key: &str, message: impl Into<String>) -> CoreError {
    CoreError::Params {
        model: "idw".into(),
        key: key.into(),
        message: message.into(),
    }
}

/// Diagnostics of one sleep phase.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SleepStats {
    /// The bandwidth ℓ used in eq. 7: Scott's rule times [`SleepOptions::bandwidth_scale`].
    pub bandwidth: f64,
    /// `‖w(t+1) − w(t)‖₂`, the quantity of Algorithm 1's stopping rule (`< η` stops).
    pub weight_change: f64,
    /// Smallest eq. 7 density over the valid rows (the leave-one-out density when that is on).
    pub density_min: f64,
    /// Largest eq. 7 density over the valid rows.
    pub density_max: f64,
    /// Median over the valid rows of the share of an item's full eq. 7 density that is its own
    /// kernel term `w_y K(0) / Σ_k w_k K(‖v_y − v_k‖/ℓ)`: near 1, the density mostly measures
    /// the item's own weight and the representation space barely shapes it.
    #[serde(default)]
    pub self_share_median: f64,
    /// The same share for the item of lowest full density (the "sparsest" item).
    #[serde(default)]
    pub self_share_sparsest: f64,
}

/// How a sleep phase estimates the density. The paper fixes eq. 7 with Scott's bandwidth; the
/// bandwidth multiplier and the leave-one-out estimate are our options (defaults = eq. 7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SleepOptions {
    /// Momentum m of eq. 9, in `[0, 1]`.
    pub momentum: f64,
    /// Rows per chunk of the pairwise kernel (`>= 1`).
    pub chunk: i64,
    /// Multiplier on Scott's-rule bandwidth (`> 0`; 1 = the paper).
    pub bandwidth_scale: f64,
    /// Leave each item's own kernel term `w_y K(0)` out of its density, so that the density
    /// measures the item's neighbourhood rather than its own weight.
    pub leave_one_out: bool,
}

impl SleepOptions {
    /// The paper's eq. 7 (Scott's bandwidth, own term included) with momentum `m`.
    pub fn paper(momentum: f64, chunk: i64) -> Self {
        Self {
            momentum,
            chunk,
            bandwidth_scale: 1.0,
            leave_one_out: false,
        }
    }
}

/// What one sleep phase computed ([`sleep_phase_with`]).
#[derive(Debug)]
pub struct SleepPhase {
    /// `w(t+1) [N]` (`Float`, 0 on invalid rows).
    pub weights: Tensor,
    pub stats: SleepStats,
    /// The density eq. 8 normalised `[N]` (leave-one-out when set), 0 on invalid rows.
    pub density: Tensor,
    /// Each item's own-term share of its full density `[N]`, 0 on invalid rows.
    pub self_share: Tensor,
}

/// Initial weights of Algorithm 1: `w_k(0) = n_k / Σ n`.
///
/// The paper writes `n_k / |U|`; we normalize to sum 1 instead, so that `w(0)` is on the same
/// scale as the `h / Σ h` term of eq. 9 (which sums to 1) and momentum mixes like with like.
/// If every count is 0 the weights are uniform `1/N` (an empty slice gives an empty vector).
pub fn initial_weights(item_freq: &[u64]) -> Vec<f32> {
    let total: f64 = item_freq.iter().map(|&n| n as f64).sum();
    if total == 0.0 {
        let uniform = 1.0 / item_freq.len().max(1) as f64;
        return vec![uniform as f32; item_freq.len()];
    }
    // Sum in f64: counts of large catalogs overflow f32's exact integer range.
    item_freq
        .iter()
        .map(|&n| (n as f64 / total) as f32)
        .collect()
}

/// Scott's rule bandwidth for an isotropic Gaussian kernel over `reps [N, D]`:
/// `ℓ = σ · N^(−1/(D+4))`, where σ is the mean over the D dimensions of the per-dimension
/// standard deviation (unbiased, `N − 1` in the denominator, as `numpy.cov` in scipy's
/// `gaussian_kde`).
///
/// scipy's `gaussian_kde` scales the full covariance matrix by the same factor; eq. 7 has a single
/// scalar bandwidth, so we collapse the covariance to one isotropic σ.
///
/// Returns a fallback of `1e-6` if `reps` is not 2-D, has fewer than two rows, or σ is zero or
/// not finite (all points identical): there is no spread to measure, and any positive bandwidth
/// gives the same normalized densities then.
pub fn scott_bandwidth(reps: &Tensor) -> f64 {
    let size = reps.size();
    if size.len() != 2 || size[0] < 2 || size[1] < 1 {
        return FALLBACK_BANDWIDTH;
    }
    let (n, d) = (size[0] as f64, size[1] as f64);
    let sigma = reps
        .to_kind(Kind::Float)
        .std_dim(0, true, false)
        .mean(Kind::Float)
        .double_value(&[]);
    if !(sigma.is_finite() && sigma > 0.0) {
        return FALLBACK_BANDWIDTH;
    }
    (sigma * n.powf(-1.0 / (d + 4.0))).max(FALLBACK_BANDWIDTH)
}

/// Eq. 7: `p̃(y) = (1/ℓ) Σ_k w_k K(‖v_y − v_k‖ / ℓ)` for every row `y` of `reps [N, D]`, with
/// `K(u) = exp(−u²/2)` and `weights [N]`.
///
/// The Gaussian normalizing constant `1/sqrt(2π)^D` is left out (and the prefactor is the
/// paper's `1/ℓ`, not a D-dimensional `1/ℓ^D`): both are common to every item and cancel in
/// eq. 8, and leaving them out keeps the values away from f32 under/overflow for large D.
///
/// Rows are processed `chunk` at a time against all N (`[chunk, N]` live at once) on the device
/// of `reps`; `weights` is moved there. Returns a `Float` tensor `[N]`.
///
/// Errors (`CoreError::Params`, key = the argument): `reps` not 2-D, `weights` not `[N]`,
/// `bandwidth` not finite and positive, `chunk < 1`.
pub fn kernel_density(
    reps: &Tensor,
    weights: &Tensor,
    bandwidth: f64,
    chunk: i64,
) -> Result<Tensor> {
    kernel_density_with(reps, weights, bandwidth, chunk, &mut |_, _| {})
}

/// [`kernel_density`], calling `on_chunk(rows done, rows)` after each chunk of rows (a progress
/// bar; on a GPU the chunks are queued, so it runs ahead of the device).
pub fn kernel_density_with(
    reps: &Tensor,
    weights: &Tensor,
    bandwidth: f64,
    chunk: i64,
    on_chunk: &mut dyn FnMut(u64, u64),
) -> Result<Tensor> {
    let size = reps.size();
    if size.len() != 2 {
        return Err(bad("reps", format!("expected [N, D], got {size:?}")));
    }
    let n = size[0];
    if weights.size() != [n] {
        return Err(bad(
            "weights",
            format!(
                "expected [{n}] to match reps {size:?}, got {:?}",
                weights.size()
            ),
        ));
    }
    if !(bandwidth.is_finite() && bandwidth > 0.0) {
        return Err(bad(
            "bandwidth",
            format!("must be finite and > 0, got {bandwidth}"),
        ));
    }
    if chunk < 1 {
        return Err(bad("chunk", format!("must be >= 1, got {chunk}")));
    }
    let device = reps.device();
    let reps = reps.to_kind(Kind::Float);
    if n == 0 {
        return Ok(Tensor::zeros([0], (Kind::Float, device)));
    }
    let w = weights.to_kind(Kind::Float).to_device(device);
    // exp(−d²/(2ℓ²)): fold the scale into one multiplier.
    let neg_half_inv_l2 = -0.5 / (bandwidth * bandwidth);
    let mut parts = Vec::with_capacity(((n + chunk - 1) / chunk) as usize);
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let rows = reps.narrow(0, start, len);
        let dist = Tensor::f_cdist(&rows, &reps, 2.0, CDIST_DIRECT)?;
        let kernel = (dist.square() * neg_half_inv_l2).exp();
        parts.push(kernel.mv(&w));
        start += len;
        on_chunk(start as u64, n as u64);
    }
    Ok(Tensor::cat(&parts, 0) / bandwidth)
}

/// Min and max of `p` restricted to `mask` (all of `p` when `mask` is `None`); `None` if empty.
fn min_max(p: &Tensor, mask: Option<&Tensor>) -> Option<(f64, f64)> {
    let vals = match mask {
        Some(m) => p.masked_select(m),
        None => p.flatten(0, -1),
    };
    if vals.numel() == 0 {
        return None;
    }
    Some((vals.min().double_value(&[]), vals.max().double_value(&[])))
}

/// Eq. 8 on `p` with the given extremes; rows outside `mask` are set to 0.
fn normalize_with(p: &Tensor, lo: f64, hi: f64, mask: Option<&Tensor>) -> Tensor {
    let p = p.to_kind(Kind::Float);
    // max == min: every item is equally dense, so none is relatively denser than another; 0
    // everywhere (h = 1 everywhere) is the only reading that does not divide by zero.
    let out = if hi > lo {
        // Clamp: f32 rounding can leave values a hair outside [0, 1].
        ((p - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        p.zeros_like()
    };
    match mask {
        Some(m) => out.masked_fill(&m.logical_not(), 0.0),
        None => out,
    }
}

/// Eq. 8: relative normalization `(p̃ − min) / (max − min) ∈ [0, 1]` over all entries of `p`.
///
/// If `max == min` (including a single entry) the result is all zeros: every item is equally
/// dense, so no item is relatively denser than another, and eq. 9 then sees a uniform `h = 1`.
/// Returns a `Float` tensor of `p`'s shape.
pub fn relative_normalize(p: &Tensor) -> Tensor {
    match min_max(p, None) {
        Some((lo, hi)) => normalize_with(p, lo, hi, None),
        None => p.to_kind(Kind::Float),
    }
}

/// Eq. 9 with `h = 1 − p'`: `w(t+1) = m · w(t) + (1 − m) · h / Σ h`.
///
/// `valid [N]` (bool, or anything that casts to bool) marks the rows that count: invalid rows
/// (e.g. the padding item 0) get `h = 0` and a new weight of 0. If `Σ h == 0` over the valid rows
/// (every valid item at the maximal density, which eq. 8 only produces when they are all equal)
/// a uniform `h` over the valid rows is used, so the `(1 − m)` share of mass is not lost. With no
/// valid rows at all the result is all zeros.
///
/// If `Σ w(t) = 1` over the valid rows, `Σ w(t+1) = 1`. `momentum` is expected in `[0, 1]`
/// ([`sleep_phase`] checks it). `p_rel` and `valid` are moved to `w`'s device.
///
/// # Panics
/// If `w`, `p_rel` and `valid` are not all of the same shape `[N]`.
pub fn momentum_update(w: &Tensor, p_rel: &Tensor, momentum: f64, valid: &Tensor) -> Tensor {
    let n = w.size();
    assert!(
        n.len() == 1 && p_rel.size() == n && valid.size() == n,
        "momentum_update: w {:?}, p_rel {:?}, valid {:?} must all be [N]",
        n,
        p_rel.size(),
        valid.size()
    );
    let device = w.device();
    let w = w.to_kind(Kind::Float);
    let keep = valid
        .to_device(device)
        .to_kind(Kind::Bool)
        .to_kind(Kind::Float);
    let mut h: Tensor = (1.0 - p_rel.to_device(device).to_kind(Kind::Float)) * &keep;
    let mut total = h.sum(Kind::Float).double_value(&[]);
    if total <= 0.0 {
        h = keep.shallow_clone();
        total = h.sum(Kind::Float).double_value(&[]);
    }
    if total <= 0.0 {
        return w.zeros_like();
    }
    (w * momentum + h * ((1.0 - momentum) / total)) * keep
}

/// One sleep phase (Algorithm 2): Scott's bandwidth over the valid rows of `reps [N, D]`, eq. 7
/// with the current weights `w [N]` among the valid rows only (invalid rows are neither scored
/// nor neighbours), eq. 8 over the valid rows, eq. 9. Returns `w(t+1) [N]` (`Float`, on `reps`'
/// device, 0 on invalid rows) and its [`SleepStats`].
///
/// Errors (`CoreError::Params`, key = the argument): `reps` not 2-D, `w` or `valid` not `[N]`,
/// `valid` with no true row, `momentum` outside `[0, 1]`, `chunk < 1`.
pub fn sleep_phase(
    reps: &Tensor,
    w: &Tensor,
    momentum: f64,
    valid: &Tensor,
    chunk: i64,
) -> Result<(Tensor, SleepStats)> {
    let out = sleep_phase_with(
        reps,
        w,
        valid,
        &SleepOptions::paper(momentum, chunk),
        &mut |_, _| {},
    )?;
    Ok((out.weights, out.stats))
}

/// [`sleep_phase`] with every option ([`SleepOptions`]: bandwidth multiplier, leave-one-out),
/// calling `on_chunk(rows done, valid rows)` as the density (eq. 7) proceeds; returns the
/// densities and own-term shares beside the new weights. Errors as [`sleep_phase`], and for a
/// `bandwidth_scale` that is not finite and positive.
pub fn sleep_phase_with(
    reps: &Tensor,
    w: &Tensor,
    valid: &Tensor,
    opts: &SleepOptions,
    on_chunk: &mut dyn FnMut(u64, u64),
) -> Result<SleepPhase> {
    let (momentum, chunk) = (opts.momentum, opts.chunk);
    if !(opts.bandwidth_scale.is_finite() && opts.bandwidth_scale > 0.0) {
        return Err(bad(
            "bandwidth_scale",
            format!("must be finite and > 0, got {}", opts.bandwidth_scale),
        ));
    }
    let size = reps.size();
    if size.len() != 2 {
        return Err(bad("reps", format!("expected [N, D], got {size:?}")));
    }
    let n = size[0];
    if w.size() != [n] {
        return Err(bad(
            "w",
            format!("expected [{n}] to match reps {size:?}, got {:?}", w.size()),
        ));
    }
    if valid.size() != [n] {
        return Err(bad(
            "valid",
            format!(
                "expected [{n}] to match reps {size:?}, got {:?}",
                valid.size()
            ),
        ));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(bad(
            "momentum",
            format!("must be in [0, 1], got {momentum}"),
        ));
    }
    if chunk < 1 {
        return Err(bad("chunk", format!("must be >= 1, got {chunk}")));
    }
    let device = reps.device();
    let w = w.to_kind(Kind::Float).to_device(device);
    let valid = valid.to_device(device).to_kind(Kind::Bool);
    let idx = valid.nonzero().squeeze_dim(1);
    if idx.numel() == 0 {
        return Err(bad("valid", "no valid row: nothing to weight"));
    }

    // Work on the valid rows only, then scatter back: padding must not be a neighbour.
    let reps_v = reps.to_kind(Kind::Float).index_select(0, &idx);
    let w_v = w.index_select(0, &idx);
    let bandwidth = (scott_bandwidth(&reps_v) * opts.bandwidth_scale).max(FALLBACK_BANDWIDTH);
    let full_v = kernel_density_with(&reps_v, &w_v, bandwidth, chunk, on_chunk)?;
    // The own term of row y is w_y K(0) / ℓ = w_y / ℓ: cdist's direct mode gives exactly 0 on
    // the diagonal, so this is the very term the kernel sum holds.
    let own_v = &w_v / bandwidth;
    let self_v = (&own_v / full_v.clamp_min(f64::from(f32::MIN_POSITIVE))).clamp(0.0, 1.0);
    let dens_v = if opts.leave_one_out {
        (&full_v - &own_v).clamp_min(0.0)
    } else {
        full_v.shallow_clone()
    };
    let (lo, hi) = min_max(&dens_v, None).expect("non-empty: checked above");
    let p_rel_v = normalize_with(&dens_v, lo, hi, None);
    let scatter = |v: &Tensor| w.zeros_like().index_put(&[Some(&idx)], v, false);
    let p_rel = scatter(&p_rel_v);

    let new_w = momentum_update(&w, &p_rel, momentum, &valid);
    let weight_change = (&new_w - &w).norm().double_value(&[]);
    let sparsest = full_v.argmin(0, false);
    let stats = SleepStats {
        bandwidth,
        weight_change,
        density_min: lo,
        density_max: hi,
        // The lower median, as `torch.median` takes it.
        self_share_median: self_v.median().double_value(&[]),
        self_share_sparsest: self_v
            .index_select(0, &sparsest.unsqueeze(0))
            .double_value(&[0]),
    };
    Ok(SleepPhase {
        weights: new_w,
        stats,
        density: scatter(&dens_v),
        self_share: scatter(&self_v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn to_vec(x: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(x.to_kind(Kind::Double).to_device(Device::Cpu)).unwrap()
    }

    fn close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "{got:?} vs {want:?}");
        }
    }

    fn key_of(e: CoreError) -> String {
        match e {
            CoreError::Params { model, key, .. } => {
                assert_eq!(model, "idw");
                key
            }
            other => panic!("expected CoreError::Params, got {other}"),
        }
    }

    /// 3 items in 1-D at 0, 1, 3, weights (0.5, 0.3, 0.2), ℓ = 1, m = 0.9 — all by hand.
    #[test]
    fn hand_case_density_normalize_update() {
        let reps = t(&[0.0, 1.0, 3.0]).unsqueeze(1);
        let w = t(&[0.5, 0.3, 0.2]);
        // Distances: |0−1| = 1, |0−3| = 3, |1−3| = 2; K(u) = exp(−u²/2):
        // exp(−1/2) = 0.6065306597126334, exp(−9/2) = 0.011108996538242306,
        // exp(−4/2) = 0.1353352832366127.
        // p̃0 = 0.5 + 0.3·0.60653066 + 0.2·0.01110900 = 0.6841809972214384
        // p̃1 = 0.5·0.60653066 + 0.3 + 0.2·0.13533528 = 0.6303323865036392
        // p̃2 = 0.5·0.01110900 + 0.3·0.13533528 + 0.2 = 0.2461550832401050
        let p = kernel_density(&reps, &w, 1.0, 2).unwrap();
        close(
            &to_vec(&p),
            &[0.6841809972214384, 0.6303323865036392, 0.246155083240105],
            1e-6,
        );

        // Eq. 8: min = p̃2, max = p̃0, so p' = (1, (0.63033239 − 0.24615508)/0.43802591, 0)
        //      = (1, 0.8770652397517879, 0).
        let p_rel = relative_normalize(&p);
        close(&to_vec(&p_rel), &[1.0, 0.8770652397517879, 0.0], 1e-6);

        // h = 1 − p' = (0, 0.12293476024821215, 1), Σh = 1.1229347602482123.
        // w' = 0.9·w + 0.1·h/Σh = (0.45, 0.27 + 0.01094763, 0.18 + 0.08905237)
        //    = (0.45, 0.28094763156330105, 0.269052368436699).
        let valid = Tensor::ones([3], (Kind::Bool, Device::Cpu));
        let new_w = momentum_update(&w, &p_rel, 0.9, &valid);
        close(
            &to_vec(&new_w),
            &[0.45, 0.28094763156330105, 0.269052368436699],
            1e-6,
        );

        // The whole phase reproduces it except for ℓ, which Scott picks (eq. 8 is not
        // bandwidth-invariant), so only check the invariants there.
        let (sw, stats) = sleep_phase(&reps, &w, 0.9, &valid, 2).unwrap();
        assert!((to_vec(&sw).iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(stats.bandwidth > 0.0 && stats.density_max > stats.density_min);
    }

    /// N = 4 points in 2-D at the corners of a 2×4 rectangle.
    #[test]
    fn scott_bandwidth_hand_case() {
        let reps = t(&[0.0, 0.0, 2.0, 0.0, 0.0, 4.0, 2.0, 4.0]).view([4, 2]);
        // Unbiased std (N − 1 = 3): dim 0 values 0,2,0,2 → mean 1, Σ dev² = 4 → sqrt(4/3);
        // dim 1 values 0,0,4,4 → mean 2, Σ dev² = 16 → sqrt(16/3).
        // σ = (sqrt(4/3) + sqrt(16/3)) / 2 = (1.1547005 + 2.3094011) / 2 = sqrt(3).
        // Factor N^(−1/(D+4)) = 4^(−1/6) = 0.7937005259840998; ℓ = 1.3747296369986026.
        let l = scott_bandwidth(&reps);
        assert!((l - 1.3747296369986026).abs() < 1e-6, "{l}");
    }

    #[test]
    fn scott_bandwidth_degenerate_falls_back() {
        let same = Tensor::ones([5, 3], (Kind::Float, Device::Cpu));
        assert_eq!(scott_bandwidth(&same), FALLBACK_BANDWIDTH);
        let one = Tensor::ones([1, 3], (Kind::Float, Device::Cpu));
        assert_eq!(scott_bandwidth(&one), FALLBACK_BANDWIDTH);
    }

    #[test]
    fn chunked_and_unchunked_density_agree() {
        tch::manual_seed(7);
        let reps = Tensor::randn([50, 16], (Kind::Float, Device::Cpu));
        let w = Tensor::rand([50], (Kind::Float, Device::Cpu));
        let l = scott_bandwidth(&reps);
        let a = kernel_density(&reps, &w, l, 7).unwrap();
        let b = kernel_density(&reps, &w, l, 50).unwrap();
        let c = kernel_density(&reps, &w, l, 1000).unwrap();
        assert_eq!(a.size(), [50]);
        let diff = (&a - &b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "max abs diff {diff}");
        assert!((&b - &c).abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn relative_normalize_all_equal_gives_zeros() {
        let p = relative_normalize(&Tensor::full([4], 0.7, (Kind::Float, Device::Cpu)));
        assert_eq!(to_vec(&p), vec![0.0; 4]);
    }

    #[test]
    fn momentum_update_keeps_sum_and_zeroes_invalid() {
        let w = t(&[0.0, 0.25, 0.25, 0.5]);
        let p_rel = t(&[0.3, 1.0, 0.4, 0.0]);
        let valid = Tensor::from_slice(&[false, true, true, true]);
        let out = to_vec(&momentum_update(&w, &p_rel, 0.8, &valid));
        assert_eq!(out[0], 0.0);
        assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{out:?}");

        // Σh == 0 over the valid rows: uniform h over them, still Σ = 1.
        let all_dense = t(&[0.0, 1.0, 1.0, 1.0]);
        let out = to_vec(&momentum_update(&w, &all_dense, 0.7, &valid));
        let third = 0.3 / 3.0;
        close(
            &out,
            &[0.0, 0.175 + third, 0.175 + third, 0.35 + third],
            1e-6,
        );
    }

    #[test]
    fn kernel_density_rejects_bad_arguments() {
        let reps = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        let w3 = Tensor::ones([3], (Kind::Float, Device::Cpu));
        let w4 = Tensor::ones([4], (Kind::Float, Device::Cpu));
        let flat = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        let key = |r: Result<Tensor>| key_of(r.unwrap_err());
        assert_eq!(key(kernel_density(&reps, &w4, 1.0, 2)), "weights");
        assert_eq!(key(kernel_density(&flat, &w3, 1.0, 2)), "reps");
        assert_eq!(key(kernel_density(&reps, &w3, 1.0, 0)), "chunk");
        assert_eq!(key(kernel_density(&reps, &w3, 0.0, 2)), "bandwidth");
        assert_eq!(key(kernel_density(&reps, &w3, f64::NAN, 2)), "bandwidth");
        let err = kernel_density(&reps, &w3, 1.0, -1).unwrap_err().to_string();
        assert!(err.contains("chunk"), "{err}");
    }

    #[test]
    fn sleep_phase_rejects_bad_arguments() {
        let reps = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([3], (Kind::Float, Device::Cpu));
        let all = Tensor::ones([3], (Kind::Bool, Device::Cpu));
        let none = Tensor::zeros([3], (Kind::Bool, Device::Cpu));
        let key = |r: Result<(Tensor, SleepStats)>| key_of(r.unwrap_err());
        assert_eq!(key(sleep_phase(&reps, &w, 1.5, &all, 2)), "momentum");
        assert_eq!(key(sleep_phase(&reps, &w, 0.9, &none, 2)), "valid");
        assert_eq!(
            key(sleep_phase(&reps, &w.narrow(0, 0, 2), 0.9, &all, 2)),
            "w"
        );
        assert_eq!(key(sleep_phase(&reps, &w, 0.9, &all, 0)), "chunk");
    }

    /// Row 0 is padding (sitting on the cluster, it must not count), rows 1-8 a tight cluster
    /// near the origin, rows 9-10 isolated. Start from uniform weights over the valid rows.
    #[test]
    fn sleep_phase_upweights_isolated_items() {
        let mut pts = vec![0.0f32, 0.0];
        for i in 0..8 {
            let a = i as f32 * std::f32::consts::FRAC_PI_4;
            pts.extend([0.05 * a.cos(), 0.05 * a.sin()]);
        }
        pts.extend([5.0, 0.0, 0.0, -5.0]);
        let reps = t(&pts).view([11, 2]);
        let mut valid_v = vec![true; 11];
        valid_v[0] = false;
        let valid = Tensor::from_slice(&valid_v);
        let mut w0 = vec![0.1f32; 11];
        w0[0] = 0.0;
        let w = t(&w0);

        let (new_w, stats) = sleep_phase(&reps, &w, 0.9, &valid, 4).unwrap();
        // The progress callback sees every chunk of the 10 valid rows and changes nothing.
        let mut seen = Vec::new();
        let out = sleep_phase_with(
            &reps,
            &w,
            &valid,
            &SleepOptions::paper(0.9, 4),
            &mut |d, n| seen.push((d, n)),
        )
        .unwrap();
        assert_eq!(seen, [(4, 10), (8, 10), (10, 10)]);
        assert!(out.weights.equal(&new_w) && out.stats == stats);
        let nw = to_vec(&new_w);
        assert_eq!(nw[0], 0.0);
        assert!((nw.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{nw:?}");
        let max_cluster = nw[1..9].iter().cloned().fold(f64::MIN, f64::max);
        let min_isolated = nw[9].min(nw[10]);
        assert!(min_isolated > max_cluster, "{nw:?}");
        assert!(stats.bandwidth > 0.0);
        assert!(stats.density_max > stats.density_min);
        let change = to_vec(&(&new_w - &w))
            .iter()
            .map(|d| d * d)
            .sum::<f64>()
            .sqrt();
        assert!((stats.weight_change - change).abs() < 1e-6);
    }

    #[test]
    fn initial_weights_normalize_to_one() {
        let w = initial_weights(&[0, 6, 3, 1]);
        assert_eq!(w, vec![0.0, 0.6, 0.3, 0.1]);
        assert_eq!(initial_weights(&[0, 0]), vec![0.5, 0.5]);
        assert!(initial_weights(&[]).is_empty());
    }

    #[test]
    fn stats_round_trip_through_json() {
        let s = SleepStats {
            bandwidth: 0.5,
            weight_change: 1e-4,
            density_min: 0.1,
            density_max: 2.0,
            self_share_median: 0.4,
            self_share_sparsest: 0.9,
        };
        let back: SleepStats = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    /// The hand case of `hand_case_density_normalize_update` at ℓ = 1: own terms are the
    /// weights, so the shares are w_y / p̃_y and leave-one-out densities p̃_y − w_y.
    #[test]
    fn own_term_shares_and_leave_one_out_by_hand() {
        let reps = t(&[0.0, 1.0, 3.0]).unsqueeze(1);
        let w = t(&[0.5, 0.3, 0.2]);
        let valid = Tensor::ones([3], (Kind::Bool, Device::Cpu));
        // Scott's ℓ for (0, 1, 3): σ = std = 1.5275252316519468, N^(-1/5) = 3^-0.2.
        let scott = scott_bandwidth(&reps);
        let opts = |scale: f64, loo: bool| SleepOptions {
            bandwidth_scale: scale,
            leave_one_out: loo,
            ..SleepOptions::paper(0.9, 2)
        };
        // Scale so that ℓ = 1 exactly as in the hand case.
        let full =
            sleep_phase_with(&reps, &w, &valid, &opts(1.0 / scott, false), &mut |_, _| {}).unwrap();
        assert!((full.stats.bandwidth - 1.0).abs() < 1e-12);
        let dens = [0.6841809972214384, 0.6303323865036392, 0.246155083240105];
        close(&to_vec(&full.density), &dens, 1e-6);
        let shares: Vec<f64> = [0.5, 0.3, 0.2]
            .iter()
            .zip(dens)
            .map(|(w, p)| w / p)
            .collect();
        close(&to_vec(&full.self_share), &shares, 1e-6);
        // Shares (0.7308, 0.4759, 0.8125): median 0.7308, the sparsest item (2) has 0.8125.
        assert!((full.stats.self_share_median - shares[0]).abs() < 1e-6);
        assert!((full.stats.self_share_sparsest - shares[2]).abs() < 1e-6);

        let loo =
            sleep_phase_with(&reps, &w, &valid, &opts(1.0 / scott, true), &mut |_, _| {}).unwrap();
        let loo_dens: Vec<f64> = dens
            .iter()
            .zip([0.5, 0.3, 0.2])
            .map(|(p, w)| p - w)
            .collect();
        close(&to_vec(&loo.density), &loo_dens, 1e-6);
        // Own-term shares describe the full density either way.
        assert!(loo.self_share.equal(&full.self_share));
        // Leave-one-out ranks the items by neighbourhood: item 1 (neighbours at 1 and 2) is now
        // the densest, item 0 is no longer (its own weight 0.5 made it so).
        let p = to_vec(&loo.density);
        assert!(p[1] > p[0] && p[0] > p[2], "{p:?}");
        // A larger bandwidth spreads every kernel, so own terms weigh less.
        let wide =
            sleep_phase_with(&reps, &w, &valid, &opts(4.0 / scott, false), &mut |_, _| {}).unwrap();
        assert!(wide.stats.self_share_median < full.stats.self_share_median);
        for bad_scale in [0.0, -1.0, f64::NAN] {
            let e = sleep_phase_with(&reps, &w, &valid, &opts(bad_scale, false), &mut |_, _| {});
            assert_eq!(key_of(e.unwrap_err()), "bandwidth_scale");
        }
    }
}
