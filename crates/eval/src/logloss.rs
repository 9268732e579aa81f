//! Binary cross-entropy (logloss) of predicted probabilities.
//!
//! Probabilities are clipped to `[LOGLOSS_EPS, 1 - LOGLOSS_EPS]` with `LOGLOSS_EPS = 1e-7` before
//! taking logs, so a confident wrong prediction costs at most `-ln(1e-7) ≈ 16.1` instead of infinity.
//! scikit-learn's `log_loss` clips with `eps = np.finfo(y_pred.dtype).eps` instead (2.2e-16 for
//! float64, 1.2e-7 for float32), so results differ from it only for predictions closer to 0 or 1 than
//! 1e-7; the goldens clip their inputs to our range first and then agree to 1e-9.

use crate::auc::is_pos;
use crate::error::{check_scores_labels, EvalError, Result};

/// Predictions are clipped to `[LOGLOSS_EPS, 1 - LOGLOSS_EPS]`.
pub const LOGLOSS_EPS: f64 = 1e-7;

/// Adds the per-sample losses of a (checked) slice to `acc`, sequentially, so a streaming sum over
/// several slices equals the one-shot sum bit for bit.
pub(crate) fn accumulate(scores: &[f32], labels: &[f32], acc: &mut f64) {
    for (&s, &l) in scores.iter().zip(labels) {
        let p = f64::from(s).clamp(LOGLOSS_EPS, 1.0 - LOGLOSS_EPS);
        *acc -= if is_pos(l) { p.ln() } else { (1.0 - p).ln() };
    }
}

/// Mean logloss of probabilities `scores` against 0/1 `labels` (label > 0.5 is positive), with
/// probabilities clipped to `[1e-7, 1 - 1e-7]` (see the module docs for the difference to
/// scikit-learn). Errors on a length mismatch, a non-finite value, or empty input.
pub fn logloss(scores: &[f32], labels: &[f32]) -> Result<f64> {
    check_scores_labels(scores, labels)?;
    if scores.is_empty() {
        return Err(EvalError::Empty("logloss: no samples".into()));
    }
    let mut acc = 0.0;
    accumulate(scores, labels, &mut acc);
    Ok(acc / scores.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values() {
        let v = logloss(&[0.8, 0.3], &[1.0, 0.0]).unwrap();
        let want = -(0.8f32 as f64).ln() / 2.0 - (1.0 - 0.3f32 as f64).ln() / 2.0;
        assert!((v - want).abs() < 1e-15);
        // Clipping: a certain wrong prediction costs -ln(1e-7).
        let v = logloss(&[0.0, 1.0], &[1.0, 0.0]).unwrap();
        assert!((v + (1e-7f64).ln()).abs() < 1e-9);
        let v = logloss(&[1.0, 0.0], &[1.0, 0.0]).unwrap();
        assert!(v > 0.0 && v < 1e-6);
    }

    #[test]
    fn bad_input_errors() {
        assert!(matches!(
            logloss(&[0.5], &[]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(
            logloss(&[f32::NAN], &[1.0]),
            Err(EvalError::NonFinite { .. })
        ));
        assert!(matches!(logloss(&[], &[]), Err(EvalError::Empty(_))));
    }
}
