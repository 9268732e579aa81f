//! The one error type of longtail-core.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    #[error(transparent)]
    Data(#[from] longtail_data::DataError),
    #[error("device: {0}")]
    Device(String),
    #[error("{0}")]
    Registry(String),
    #[error("model '{model}': config key '{key}': {message}")]
    Params {
        model: String,
        key: String,
        message: String,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("model '{model}': {message}")]
    Model { model: String, message: String },
    /// libtorch's process state (random generators) could not be read or restored.
    #[error("{0}")]
    Runtime(String),
    #[error("conformance of '{model}' failed: {message}")]
    Conformance { model: String, message: String },
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
