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
    #[error("training diverged: {0}")]
    Diverged(String),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
