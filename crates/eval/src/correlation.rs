//! Spearman's rank correlation, as `scipy.stats.spearmanr` computes it: the Pearson correlation of
//! the two samples' ranks, tied values sharing the mean of the ranks they span. Used by IDW's
//! sleep-phase diagnostics (how far an item's density only restates its frequency).

use crate::error::{check_len, EvalError, Result};

/// Ranks 1..=n of `xs`, ties given their average rank (scipy's `rankdata(method="average")`).
fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && xs[order[j]] == xs[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) hold ranks i+1..=j; their mean is (i + 1 + j) / 2.
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Spearman's ρ of `x` and `y` (same length, at least 2, finite). NaN when either sample is
/// constant (its ranks have no spread), as scipy returns.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    check_len("y (vs x)", x.len(), y.len())?;
    if x.len() < 2 {
        return Err(EvalError::Empty(format!(
            "spearman needs at least 2 pairs, got {}",
            x.len()
        )));
    }
    for (what, v) in [("x", x), ("y", y)] {
        if let Some(index) = v.iter().position(|a| !a.is_finite()) {
            return Err(EvalError::NonFinite {
                what: what.into(),
                index,
            });
        }
    }
    let (rx, ry) = (average_ranks(x), average_ranks(y));
    // Both rank vectors have mean (n + 1) / 2.
    let mean = (x.len() + 1) as f64 / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (da, db) = (a - mean, b - mean);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Ok(f64::NAN);
    }
    Ok((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 30.0, 20.0]),
            [1.5, 3.5, 1.5, 5.0, 3.5]
        );
    }

    /// By hand: x = (1, 2, 3, 4), y = (1, 3, 2, 4): ranks differ by d = (0, 1, -1, 0), no ties,
    /// so ρ = 1 - 6 Σd² / (n (n² - 1)) = 1 - 12 / 60 = 0.8.
    #[test]
    fn hand_case_and_extremes() {
        let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        let up = spearman(&[1.0, 5.0, 7.0], &[-3.0, 0.0, 100.0]).unwrap();
        let down = spearman(&[1.0, 5.0, 7.0], &[3.0, 2.0, 1.0]).unwrap();
        assert_eq!((up, down), (1.0, -1.0));
        assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0])
            .unwrap()
            .is_nan());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            spearman(&[1.0, 2.0], &[1.0]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(spearman(&[1.0], &[1.0]), Err(EvalError::Empty(_))));
        assert!(matches!(
            spearman(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(EvalError::NonFinite { index: 1, .. })
        ));
    }
}
