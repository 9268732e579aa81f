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

use longtail_core::params::MAX_DIM;
use longtail_core::{Check, Result};

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

/// A `usize` count in `[min, max]` (values above `i64::MAX` read as out of range).
pub(crate) fn count(c: &Check, key: &str, v: usize, min: i64, max: i64) -> Result<()> {
    c.int(key, i64::try_from(v).unwrap_or(i64::MAX), min, max)
}
