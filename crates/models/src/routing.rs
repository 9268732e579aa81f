//! Behavior-to-interest dynamic routing shared by MIND and ComiRec-DR (capsule routing after
//! Sabour et al., "Dynamic Routing Between Capsules", NIPS 2017, as adapted by MIND §4.2 and
//! ComiRec §3.2).
//!
//! Choices:
//! - **Predictions in, capsules out**: [`dynamic_routing`] takes the per-(interest, behavior)
//!   predictions `ê_{j|i}` already transformed (`[B, K, L, D]`, or `[B, 1, L, D]` when one
//!   transformation is shared by all interests as in MIND), so the two models differ only in how
//!   they build `ê` and the initial logits.
//! - **Coupling coefficients**: `w_ij = softmax_j(b_ij)` over the interests `j` for each behavior
//!   `i` (both papers), then multiplied by the history mask, so padded behaviors contribute
//!   nothing (as the ComiRec code zeroes them after the softmax).
//! - **Iterations**: `iters` rounds of `s_j = Σ_i w_ij ê_{j|i}`, `v_j = squash(s_j)`; the logits
//!   are updated by agreement `b_ij += v_j · ê_{j|i}` between rounds (not after the last one,
//!   whose update would be unused).
//! - **Stop-gradient** (optional): with `stop_gradient`, every round but the last routes the
//!   *detached* predictions, so the logits `b` (hence the coupling coefficients) are constants
//!   for back-propagation and the gradient reaches `ê` only through the last round's weighted
//!   sum; this is what the ComiRec authors' code does. Without it the gradient flows through all
//!   rounds.
//! - **Squash**: `‖s‖² / (1 + ‖s‖²) · s / sqrt(‖s‖² + 1e-9)`; the epsilon (as in the ComiRec
//!   code) maps a zero vector (empty history) to zero with a finite gradient.

use longtail_core::tch::{Kind, Tensor};

/// Added to `‖s‖²` under the square root of [`squash`], so `squash(0) = 0` without NaN.
pub const SQUASH_EPS: f64 = 1e-9;

/// The capsule non-linearity over the last dimension: `‖s‖² / (1 + ‖s‖²) · s / ‖s‖`.
pub fn squash(s: &Tensor) -> Tensor {
    let n2 = s.square().sum_dim_intlist(-1, true, Kind::Float);
    let scale = &n2 / (&n2 + 1.0) / (&n2 + SQUASH_EPS).sqrt();
    s * scale
}

/// Dynamic routing from behaviors to `K` interest capsules.
///
/// - `pred`: predictions `ê_{j|i}`, `[B, K, L, D]` or `[B, 1, L, D]` (shared by all interests);
/// - `mask`: `[B, L]`, 1 on real behaviors;
/// - `init`: initial routing logits, broadcastable to `[B, K, L]` (e.g. `[K, L]`); its size along
///   the interest axis gives `K` when `pred` is shared;
/// - `iters`: number of routing rounds (at least 1).
///
/// Returns the interest capsules `[B, K, D]` (zero rows for an empty history).
pub fn dynamic_routing(
    pred: &Tensor,
    mask: &Tensor,
    init: &Tensor,
    iters: i64,
    stop_gradient: bool,
) -> Tensor {
    assert!(iters >= 1, "dynamic routing needs at least one iteration");
    let mask = mask.unsqueeze(1); // [B, 1, L]
    let frozen = if stop_gradient {
        pred.detach()
    } else {
        pred.shallow_clone()
    };
    let mut logits = init.shallow_clone();
    let mut capsules = None;
    for it in 0..iters {
        let last = it + 1 == iters;
        let u = if last { pred } else { &frozen };
        // Softmax over the interests (dim -2 of [.., K, L]), padding zeroed afterwards.
        let w = logits.softmax(-2, Kind::Float) * &mask; // [B, K, L]
        let s = (w.unsqueeze(-1) * u).sum_dim_intlist(2, false, Kind::Float); // [B, K, D]
        let v = squash(&s);
        if !last {
            // Agreement b_ij += v_j · ê_{j|i}, out of place: `init` may be a model's stored
            // logits (MIND), and the first update broadcasts [K, L] to [B, K, L].
            let agreement = (u * v.unsqueeze(2)).sum_dim_intlist(-1, false, Kind::Float);
            logits = logits.g_add(&agreement);
        }
        capsules = Some(v);
    }
    capsules.expect("iters >= 1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).view([-1])).unwrap()
    }

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn squash_hand_case() {
        // s = (3, 4): ‖s‖² = 25, scale 25/26, unit vector (0.6, 0.8) → (0.576923, 0.769231).
        // s = (0, 0) → 0 (no NaN). s = (0.1, 0): ‖s‖² = 0.01 → 0.01/1.01 · (1, 0) = (0.009901, 0).
        let s = Tensor::from_slice(&[3.0f32, 4.0, 0.0, 0.0, 0.1, 0.0]).view([3, 2]);
        let v = flat(&squash(&s));
        assert_close(
            &v,
            &[
                25.0 / 26.0 * 0.6,
                25.0 / 26.0 * 0.8,
                0.0,
                0.0,
                0.01 / 1.01,
                0.0,
            ],
        );
    }

    /// Plain f64 dynamic routing for one row: `pred[j][i]` (D-vectors), `init[j][i]`.
    fn reference(
        pred: &[Vec<Vec<f64>>],
        mask: &[f64],
        init: &[Vec<f64>],
        iters: usize,
    ) -> Vec<Vec<f64>> {
        let k = init.len();
        let l = mask.len();
        let p = |j: usize, i: usize| &pred[if pred.len() == 1 { 0 } else { j }][i];
        let d = p(0, 0).len();
        let mut b = init.to_vec();
        let mut v = vec![vec![0.0; d]; k];
        for it in 0..iters {
            for (j, vj) in v.iter_mut().enumerate() {
                let mut s = vec![0.0; d];
                for i in 0..l {
                    let z: f64 = (0..k).map(|q| b[q][i].exp()).sum();
                    let w = b[j][i].exp() / z * mask[i];
                    for (x, y) in s.iter_mut().zip(p(j, i)) {
                        *x += w * y;
                    }
                }
                let n2: f64 = s.iter().map(|x| x * x).sum();
                *vj = s.iter().map(|x| n2 / (1.0 + n2) * x / n2.sqrt()).collect();
            }
            if it + 1 < iters {
                for (j, (vj, bj)) in v.iter().zip(b.iter_mut()).enumerate() {
                    for (i, bji) in bj.iter_mut().enumerate() {
                        *bji += vj.iter().zip(p(j, i)).map(|(x, y)| x * y).sum::<f64>();
                    }
                }
            }
        }
        v
    }

    /// ComiRec-style predictions: K = 2, L = 3 (the third behavior is padding), D = 2.
    fn comirec_case() -> (Vec<Vec<Vec<f64>>>, Tensor) {
        let pred = vec![
            vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![50.0, -50.0]],
            vec![vec![0.0, 2.0], vec![1.0, 1.0], vec![-50.0, 50.0]],
        ];
        let v: Vec<f32> = pred.iter().flatten().flatten().map(|&x| x as f32).collect();
        (pred, Tensor::from_slice(&v).view([1, 2, 3, 2]))
    }

    #[test]
    fn one_round_hand_case() {
        // One round with zero logits: every coupling coefficient is 1/2 (padding: 0).
        // s_1 = ½(1, 0) + ½(0, 1) = (0.5, 0.5), ‖s_1‖² = 0.5 → v_1 = (1/3)/√0.5 · (0.5, 0.5)
        //     = (0.235702, 0.235702).
        // s_2 = ½(0, 2) + ½(1, 1) = (0.5, 1.5), ‖s_2‖² = 2.5 → v_2 = (2.5/3.5)/√2.5 · (0.5, 1.5)
        //     = (0.225877, 0.677631).
        let (_, pred) = comirec_case();
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 0.0]).view([1, 3]);
        let init = Tensor::zeros([2, 3], (Kind::Float, longtail_core::tch::Device::Cpu));
        let v = flat(&dynamic_routing(&pred, &mask, &init, 1, false));
        assert_close(&v, &[0.235702, 0.235702, 0.225877, 0.677631]);
    }

    #[test]
    fn three_rounds_hand_case() {
        // Round 1 as in `one_round_hand_case`. Agreements:
        //   b_11 = v_1·(1,0) = 0.235702, b_12 = v_1·(0,1) = 0.235702,
        //   b_21 = v_2·(0,2) = 1.355262, b_22 = v_2·(1,1) = 0.903508.
        // Round 2: w_·1 = softmax(0.235702, 1.355262) = (0.246093, 0.753907),
        //          w_·2 = softmax(0.235702, 0.903508) = (0.338988, 0.661012), and so on; the
        //          f64 reference below carries the three rounds out.
        let (p, pred) = comirec_case();
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 0.0]).view([1, 3]);
        let init = Tensor::zeros([2, 3], (Kind::Float, longtail_core::tch::Device::Cpu));
        let want = reference(&p, &[1.0, 1.0, 0.0], &[vec![0.0; 3], vec![0.0; 3]], 3);
        for stop_gradient in [false, true] {
            let v = flat(&dynamic_routing(&pred, &mask, &init, 3, stop_gradient));
            assert_close(&v, &want.concat());
            // The reference's three rounds, written out (round 2 logits: b_1· = (0.323401,
            // 0.356506), b_2· = (2.956835, 1.948357)).
            assert_close(&v, &[0.011801, 0.029781, 0.261586, 0.849051]);
        }
        // Round 2 by hand: s_1 = 0.246093·(1,0) + 0.338988·(0,1), ‖s_1‖² = 0.175475,
        // v_1 = 0.149280/0.418897 · s_1 = (0.087699, 0.120803).
        let want2 = reference(&p, &[1.0, 1.0, 0.0], &[vec![0.0; 3], vec![0.0; 3]], 2);
        assert_close(&want2[0], &[0.087699, 0.120803]);
        let v = flat(&dynamic_routing(&pred, &mask, &init, 2, false));
        assert_close(&v[..2], &[0.087699, 0.120803]);
    }

    #[test]
    fn shared_predictions_with_fixed_logits() {
        // MIND-style: one prediction per behavior shared by K = 2 interests, random-looking
        // initial logits [K, L], L = 2, D = 2.
        let p = vec![vec![vec![0.5, -1.0], vec![2.0, 0.5]]];
        let init = vec![vec![0.3, -1.2], vec![-0.7, 0.9]];
        let pred = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.5]).view([1, 1, 2, 2]);
        let b0 = Tensor::from_slice(&[0.3f32, -1.2, -0.7, 0.9]).view([2, 2]);
        let mask = Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]);
        for iters in [1, 3] {
            let want = reference(&p, &[1.0, 1.0], &init, iters).concat();
            let v = flat(&dynamic_routing(&pred, &mask, &b0, iters as i64, false));
            assert_close(&v, &want);
        }
        // The caller's logits are not updated in place.
        assert_close(&flat(&b0), &[0.3, -1.2, -0.7, 0.9]);
        // One round by hand: w_·1 = softmax(0.3, −0.7) = (0.731059, 0.268941),
        // w_·2 = softmax(−1.2, 0.9) = (0.109097, 0.890903).
        // s_1 = 0.731059·(0.5, −1) + 0.109097·(2, 0.5) = (0.583724, −0.676511), ‖s_1‖² = 0.798400,
        // v_1 = 0.443950/0.893532 · s_1 = (0.290022, −0.336123).
        let v = flat(&dynamic_routing(&pred, &mask, &b0, 1, false));
        assert_close(&v[..2], &[0.290022, -0.336123]);
    }

    #[test]
    fn empty_history_gives_zero_capsules_and_finite_gradients() {
        let pred = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0])
            .view([1, 2, 1, 2])
            .set_requires_grad(true);
        let mask = Tensor::from_slice(&[0.0f32]).view([1, 1]);
        let init = Tensor::zeros([2, 1], (Kind::Float, longtail_core::tch::Device::Cpu));
        let v = dynamic_routing(&pred, &mask, &init, 3, true);
        assert!(flat(&v).iter().all(|x| *x == 0.0));
        v.sum(Kind::Float).backward();
        assert!(flat(&pred.grad()).iter().all(|x| x.is_finite()));
    }
}
