//! The one error type of longtail-train.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Core(#[from] longtail_core::CoreError),
    #[error(transparent)]
    Data(#[from] longtail_data::DataError),
    #[error(transparent)]
    Eval(#[from] longtail_eval::EvalError),
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    ConfigFile { origin: String, message: String },
    #[error("config key '{key}': {message}")]
    Config { key: String, message: String },
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// libtorch refused something (an allocation, a shape) by a panic inside tch.
    #[error(
        "model '{model}': libtorch failed: {message} (check [model.params] and [train] sizes)"
    )]
    Libtorch { model: String, message: String },
    /// A non-finite loss: the run stops at once, before anything claims success.
    #[error(
        "training diverged: the loss is not finite at epoch {epoch}, step {step} ({terms}); {hint}"
    )]
    Diverged {
        epoch: usize,
        step: usize,
        terms: String,
        hint: String,
    },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
