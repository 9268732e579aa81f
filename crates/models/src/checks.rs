//! Range checks and bounds shared by the built-in models' [`ModelParams::validate`]
//! implementations (`longtail_core::params::Check` does the checking and names the key).
//!
//! Bounds beyond the widths' `[1, MAX_DIM]` (`longtail_core::params::MAX_DIM`):
//! - `embedding_std`: `(0, 10]`. Zero would start every id at the padding vector, and a wider
//!   normal than N(0, 10²) is a typo (the papers use 0.01-0.05; libtorch's own default is 1).
//! - interest counts (`interests`): `[1, 256]`; user groups (`groups`): `[1, 1024]`; negative
//!   users per row (`negative_users`): `[1, 256]`: each multiplies a per-row tensor.
//! - routing rounds (`routing_iters`): `[1, 100]` (the papers use 3).
//! - transformer blocks (`layers`): `[1, 64]`; attention heads (`heads`): `[1, MAX_DIM]` and they
//!   must divide the width they split.
//!
//! [`ModelParams::validate`]: longtail_core::ModelParams::validate

use longtail_core::data::FeatureSpec;
use longtail_core::params::MAX_DIM;
use longtail_core::{Check, CoreError, Result};

/// Upper bound of `embedding_std`.
pub(crate) const MAX_STD: f64 = 10.0;
/// Upper bound of `interests` (K interest vectors / capsules / centers).
pub(crate) const MAX_INTERESTS: i64 = 256;
/// Upper bound of `routing_iters`.
pub(crate) const MAX_ROUTING_ITERS: i64 = 100;
/// Upper bound of transformer `layers`.
pub(crate) const MAX_LAYERS: i64 = 64;

/// The loss terms of a plain CTR model (`CtrLogits`): one BCE term.
pub(crate) fn ctr_terms() -> Vec<String> {
    vec!["ctr".to_string()]
}

/// `embedding_dim` (a width) and `embedding_std` (`(0, MAX_STD]`).
pub(crate) fn embedding(c: &Check, dim: i64, std: f64) -> Result<()> {
    c.dim("embedding_dim", dim)?;
    c.positive("embedding_std", std, MAX_STD)
}

/// The CTR tower every MLP baseline shares: `hidden` widths and `dropout`.
pub(crate) fn tower(c: &Check, hidden: &[i64], dropout: f64) -> Result<()> {
    c.dims("hidden", hidden)?;
    c.prob("dropout", dropout)
}

/// `interests` in `[1, MAX_INTERESTS]`.
pub(crate) fn interests(c: &Check, k: i64) -> Result<()> {
    c.int("interests", k, 1, MAX_INTERESTS)
}

/// Attention `heads` in `[1, MAX_DIM]` that divide `dim` (the width named `dim_key`), as
/// `longtail_core::attention` requires.
pub(crate) fn heads(c: &Check, heads: i64, dim: i64, dim_key: &str) -> Result<()> {
    c.int("heads", heads, 1, MAX_DIM)?;
    if dim % heads != 0 {
        return Err(c.bad(
            "heads",
            format!("{heads} heads do not divide {dim_key} {dim}"),
        ));
    }
    Ok(())
}

/// A transformer encoder's `layers` in `[1, MAX_LAYERS]`, `heads` dividing `embedding_dim`
/// (`dim`) and the optional feed-forward width `ffn_dim`.
pub(crate) fn encoder(
    c: &Check,
    layers: i64,
    heads: i64,
    dim: i64,
    ffn_dim: Option<i64>,
) -> Result<()> {
    c.int("layers", layers, 1, MAX_LAYERS)?;
    self::heads(c, heads, dim, "embedding_dim")?;
    c.opt_dim("ffn_dim", ffn_dim)
}

/// The `why` of [`hist_max_len`] for a model with learned position embeddings.
pub(crate) const POSITIONS: &str = "the position embeddings need one";

/// The `max_len` of the feature map's `hist` (`spec`), which a model with per-position
/// parameters needs positive; otherwise an error of `model` saying `why` (a build-time check:
/// it needs the data).
pub(crate) fn hist_max_len(spec: &FeatureSpec, model: &str, why: &str) -> Result<i64> {
    match spec.max_len {
        Some(n) if n > 0 => Ok(n as i64),
        other => Err(CoreError::Model {
            model: model.to_string(),
            message: format!("feature 'hist' needs a positive max_len ({why}), got {other:?}"),
        }),
    }
}

/// A `usize` count in `[min, max]` (values above `i64::MAX` read as out of range).
pub(crate) fn count(c: &Check, key: &str, v: usize, min: i64, max: i64) -> Result<()> {
    c.int(key, i64::try_from(v).unwrap_or(i64::MAX), min, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use longtail_core::CoreError;

    fn key(r: Result<()>) -> String {
        match r {
            Err(CoreError::Params { key, .. }) => key,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shared_checks_name_their_keys() {
        let c = Check { model: "m" };
        assert_eq!(key(embedding(&c, 0, 0.01)), "embedding_dim");
        for std in [0.0, -0.1, f64::NAN, f64::INFINITY, 11.0] {
            assert_eq!(key(embedding(&c, 8, std)), "embedding_std", "{std}");
        }
        assert!(embedding(&c, 8, MAX_STD).is_ok());
        assert_eq!(key(tower(&c, &[8, 0], 0.0)), "hidden");
        assert_eq!(key(tower(&c, &[], f64::NAN)), "dropout");
        assert_eq!(key(interests(&c, MAX_INTERESTS + 1)), "interests");
        // Heads must be in range and divide the width they split.
        assert!(heads(&c, 4, 16, "embedding_dim").is_ok());
        for h in [0, -2, 3, MAX_DIM + 1] {
            assert_eq!(key(heads(&c, h, 16, "embedding_dim")), "heads", "{h}");
        }
        let msg = heads(&c, 3, 16, "embedding_dim").unwrap_err().to_string();
        assert!(msg.contains("embedding_dim 16"), "{msg}");
        // usize counts beyond i64 are out of range, not wrapped.
        assert_eq!(key(count(&c, "steps", usize::MAX, 1, 10)), "steps");
        assert_eq!(key(count(&c, "steps", 0, 1, 10)), "steps");
        assert!(count(&c, "steps", 10, 1, 10).is_ok());
        // A transformer encoder's three numbers, each under its own key.
        assert!(encoder(&c, 2, 4, 16, None).is_ok());
        assert_eq!(key(encoder(&c, 0, 4, 16, None)), "layers");
        assert_eq!(key(encoder(&c, MAX_LAYERS + 1, 4, 16, None)), "layers");
        assert_eq!(key(encoder(&c, 2, 3, 16, None)), "heads");
        assert_eq!(key(encoder(&c, 2, 4, 16, Some(0))), "ffn_dim");
    }

    #[test]
    fn hist_needs_a_positive_length() {
        let fm = longtail_core::data::FeatureMap::standard("d", 3, 5, 4);
        let mut hist = fm.get("hist").unwrap().clone();
        assert_eq!(hist_max_len(&hist, "m", POSITIONS).unwrap(), 4);
        for len in [None, Some(0)] {
            hist.max_len = len;
            let err = hist_max_len(&hist, "m", POSITIONS).unwrap_err().to_string();
            assert!(err.contains("'hist'") && err.contains(POSITIONS), "{err}");
        }
    }
}
