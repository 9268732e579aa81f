//! The one error type of this crate. Bad input (length mismatch, NaN, empty slices, group ids out of
//! range) is reported here, never by panicking.

use std::path::PathBuf;

/// Result with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Everything that can go wrong while evaluating, rendering a report or plot, or reading a
/// metrics file (this crate writes no files).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Two inputs that must be parallel differ in length.
    #[error("length mismatch for {what}: expected {expected}, found {found}")]
    LengthMismatch {
        what: String,
        expected: usize,
        found: usize,
    },
    /// A NaN or infinite score or label.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite { what: String, index: usize },
    /// No samples where at least one is needed.
    #[error("empty input: {0}")]
    Empty(String),
    /// A metric needs an input column the slice does not carry (e.g. GAUC without user ids).
    #[error("missing input: {0}")]
    MissingInput(String),
    /// A group id with no name (id >= number of group names).
    #[error("{what}: group id {group} at index {index} is out of range ({n_groups} group names)")]
    GroupOutOfRange {
        what: String,
        index: usize,
        group: u8,
        n_groups: usize,
    },
    /// An argument that is not one of the accepted values.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Reading a file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serializing or parsing JSON failed.
    #[error("JSON error: {0}")]
    Json(String),
    /// Rendering a plot failed (font, drawing or PNG encoding); `plot` names it (its title).
    #[error("plot error on {plot:?}: {message}")]
    Plot { plot: String, message: String },
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Errors unless `found == expected`.
pub(crate) fn check_len(what: &str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(EvalError::LengthMismatch {
            what: what.to_string(),
            expected,
            found,
        })
    }
}

/// Errors at the first NaN or infinity.
pub(crate) fn check_finite(what: &str, xs: &[f32]) -> Result<()> {
    match xs.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(EvalError::NonFinite {
            what: what.to_string(),
            index,
        }),
    }
}

/// The checks every (scores, labels) metric starts with: same length, all finite.
pub(crate) fn check_scores_labels(scores: &[f32], labels: &[f32]) -> Result<()> {
    check_len("labels (vs scores)", scores.len(), labels.len())?;
    check_finite("scores", scores)?;
    check_finite("labels", labels)
}
