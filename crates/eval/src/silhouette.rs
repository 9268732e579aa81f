//! Mean silhouette coefficient with Euclidean distance, as scikit-learn's `silhouette_score`.
//!
//! For point `i` in cluster `C`: `a(i)` = mean distance to the other points of `C`, `b(i)` = the
//! smallest mean distance to the points of another cluster, `s(i) = (b - a) / max(a, b)` (0 when
//! both are 0), and `s(i) = 0` when `C` is a singleton. The score is the mean of `s(i)`.
//!
//! Exact computation is O(n^2 d) time and O(n * clusters) memory (the n x n distance matrix is never
//! stored), parallel over points. Above `max_exact` points the score is computed on a uniform random
//! sample (without replacement) of `max_exact` points, like `silhouette_score(..., sample_size=)`.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{check_len, EvalError, Result};

/// The usual `max_exact`: exact up to 20 000 points, sampled above.
pub const SILHOUETTE_MAX_EXACT: usize = 20_000;

/// Result of [`silhouette`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SilhouetteResult {
    /// Mean silhouette coefficient, in [-1, 1].
    pub score: f64,
    /// `Some(sample size)` when computed on a random sample, `None` when exact over all points.
    pub sampled: Option<usize>,
}

/// Mean silhouette of `points` (row-major, `dim` floats per point) under cluster `labels` (any
/// `u32` values), Euclidean distance. Exact when `n <= max_exact`, else on a uniform random sample
/// of `max_exact` points drawn with `seed` (ChaCha8).
///
/// Errors (as scikit-learn) unless the number of distinct labels (in the sample) is in
/// `2..=n - 1`; also on `dim == 0`, `points.len() != labels.len() * dim`, non-finite coordinates or
/// `max_exact < 2`.
pub fn silhouette(
    points: &[f32],
    dim: usize,
    labels: &[u32],
    max_exact: usize,
    seed: u64,
) -> Result<SilhouetteResult> {
    if dim == 0 {
        return Err(EvalError::InvalidArgument(
            "silhouette: dim must be >= 1".into(),
        ));
    }
    if max_exact < 2 {
        return Err(EvalError::InvalidArgument(
            "silhouette: max_exact must be >= 2".into(),
        ));
    }
    check_len("points (vs labels * dim)", labels.len() * dim, points.len())?;
    if let Some(i) = points.iter().position(|x| !x.is_finite()) {
        return Err(EvalError::NonFinite {
            what: "points".into(),
            index: i,
        });
    }
    let n = labels.len();
    if n <= max_exact {
        let idx: Vec<usize> = (0..n).collect();
        return Ok(SilhouetteResult {
            score: silhouette_on(points, dim, labels, &idx)?,
            sampled: None,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, max_exact).into_vec();
    idx.sort_unstable();
    Ok(SilhouetteResult {
        score: silhouette_on(points, dim, labels, &idx)?,
        sampled: Some(max_exact),
    })
}

/// Exact mean silhouette over the points `idx`.
fn silhouette_on(points: &[f32], dim: usize, labels: &[u32], idx: &[usize]) -> Result<f64> {
    let n = idx.len();
    // Dense cluster ids.
    let mut dense: HashMap<u32, usize> = HashMap::new();
    let cl: Vec<usize> = idx
        .iter()
        .map(|&i| {
            let next = dense.len();
            *dense.entry(labels[i]).or_insert(next)
        })
        .collect();
    let k = dense.len();
    if k < 2 || k > n.saturating_sub(1) {
        return Err(EvalError::InvalidArgument(format!(
            "silhouette: number of labels is {k}; valid values are 2 to n_samples - 1 ({})",
            n.saturating_sub(1)
        )));
    }
    let mut sizes = vec![0usize; k];
    for &c in &cl {
        sizes[c] += 1;
    }
    // Gathered f64 rows, so the inner loop reads contiguous memory.
    let x: Vec<f64> = idx
        .iter()
        .flat_map(|&i| points[i * dim..(i + 1) * dim].iter().map(|&v| f64::from(v)))
        .collect();
    // Per-point values are collected and summed in order: a parallel float sum would depend on
    // the thread split, and the same input must give the same bits.
    let per_point: Vec<f64> = (0..n)
        .into_par_iter()
        .map_init(
            || vec![0.0f64; k],
            |sums, i| {
                let ci = cl[i];
                if sizes[ci] <= 1 {
                    return 0.0;
                }
                sums.iter_mut().for_each(|s| *s = 0.0);
                let xi = &x[i * dim..(i + 1) * dim];
                for (j, xj) in x.chunks_exact(dim).enumerate() {
                    if j == i {
                        continue;
                    }
                    let d2: f64 = xi.iter().zip(xj).map(|(a, b)| (a - b) * (a - b)).sum();
                    sums[cl[j]] += d2.sqrt();
                }
                let a = sums[ci] / (sizes[ci] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != ci)
                    .map(|c| sums[c] / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let m = a.max(b);
                if m > 0.0 {
                    (b - a) / m
                } else {
                    0.0
                }
            },
        )
        .collect();
    let total: f64 = per_point.iter().sum();
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_case() {
        // 1-D: cluster 0 = {0, 1}, cluster 1 = {4}, cluster 2 = {10}.
        // point 0: a = 1, b = min(4, 10) = 4 -> 3/4; point 1: a = 1, b = 3 -> 2/3; singletons 0.
        let p = [0.0, 1.0, 4.0, 10.0];
        let l = [5, 5, 1, 9];
        let r = silhouette(&p, 1, &l, SILHOUETTE_MAX_EXACT, 0).unwrap();
        assert_eq!(r.sampled, None);
        assert!((r.score - (0.75 + 2.0 / 3.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn sampled_and_errors() {
        let n = 300;
        let p: Vec<f32> = (0..2 * n).map(|i| ((i * 37) % 101) as f32 / 7.0).collect();
        let l: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let exact = silhouette(&p, 2, &l, 1000, 1).unwrap();
        let a = silhouette(&p, 2, &l, 100, 7).unwrap();
        let b = silhouette(&p, 2, &l, 100, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.sampled, Some(100));
        assert!((-1.0..=1.0).contains(&a.score));
        assert!(exact.sampled.is_none());
        assert!(matches!(
            silhouette(&p, 2, &vec![0; n], 1000, 0),
            Err(EvalError::InvalidArgument(_))
        ));
        assert!(matches!(
            silhouette(&[0.0, 1.0], 1, &[0, 1], 1000, 0),
            Err(EvalError::InvalidArgument(_))
        ));
        assert!(matches!(
            silhouette(&p, 3, &l, 1000, 0),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(
            silhouette(&[f32::NAN, 0.0, 1.0], 1, &[0, 0, 1], 1000, 0),
            Err(EvalError::NonFinite { .. })
        ));
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p longtail-eval -- --ignored --nocapture silhouette_timing`
    #[test]
    #[ignore = "timing only"]
    fn silhouette_timing() {
        let (n, dim) = (SILHOUETTE_MAX_EXACT, 64);
        let p: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 7919) % 1009) as f32 / 1009.0)
            .collect();
        let l: Vec<u32> = (0..n as u32).map(|i| i % 8).collect();
        let t = std::time::Instant::now();
        let r = silhouette(&p, dim, &l, SILHOUETTE_MAX_EXACT, 0).unwrap();
        eprintln!("n={n} dim={dim}: {:?} in {:?}", r, t.elapsed());
    }
}
