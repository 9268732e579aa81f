//! Relative improvement over a base model's AUC (the MFN paper's eq. 13).

use crate::error::{EvalError, Result};

/// `RelaImpr = ((model_auc - 0.5) / (base_auc - 0.5) - 1) * 100`, in percent.
///
/// Errors when `base_auc <= 0.5` (no improvement over random to compare with) or either AUC is not
/// finite.
pub fn rela_impr(model_auc: f64, base_auc: f64) -> Result<f64> {
    if !model_auc.is_finite() || !base_auc.is_finite() {
        return Err(EvalError::InvalidArgument(format!(
            "rela_impr: non-finite AUC (model {model_auc}, base {base_auc})"
        )));
    }
    if base_auc <= 0.5 {
        return Err(EvalError::InvalidArgument(format!(
            "rela_impr: base AUC must be > 0.5, got {base_auc}"
        )));
    }
    Ok(((model_auc - 0.5) / (base_auc - 0.5) - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_errors() {
        assert!((rela_impr(0.8, 0.75).unwrap() - 20.0).abs() < 1e-12);
        assert_eq!(rela_impr(0.75, 0.75).unwrap(), 0.0);
        assert!((rela_impr(0.7, 0.75).unwrap() + 20.0).abs() < 1e-12);
        assert!(rela_impr(0.8, 0.5).is_err());
        assert!(rela_impr(0.8, 0.4).is_err());
        assert!(rela_impr(f64::NAN, 0.7).is_err());
    }
}
