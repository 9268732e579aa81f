//! Checkpoints in safetensors, written atomically through `longtail_data::atomic`.

use crate::error::{CoreError, Result};
use crate::model::Instance;
use std::path::{Path, PathBuf};
use tch::Tensor;

fn ckpt_err(path: &Path, message: impl ToString) -> CoreError {
    CoreError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Saves every variable of the model. The file name must end in `.safetensors`.
pub fn save(model: &Instance, path: &Path) -> Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        return Err(ckpt_err(path, "checkpoint files must end in .safetensors"));
    }
    // tch picks the format by extension, so it writes a file of the target's own name inside a
    // staged folder; data::atomic renames it into place.
    longtail_data::atomic::write_with_path(path, |inner| {
        model
            .vs()
            .save(inner)
            .map_err(|e| longtail_data::DataError::Schema {
                path: path.to_path_buf(),
                message: format!("cannot save checkpoint: {e}"),
            })
    })
    .map_err(CoreError::from)
}

/// Loads every variable of the model from `path`; a missing variable is an error naming it.
pub fn load(model: &mut Instance, path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(ckpt_err(path, "no such file"));
    }
    model.vs_mut().load(path).map_err(|e| ckpt_err(path, e))
}

/// The named tensors of a saved model, read back to seed another model (the two-stage pipeline:
/// a vanilla stage-1 model gives MFN its fixed behavior embeddings).
#[derive(Debug)]
pub struct Pretrained {
    pub path: PathBuf,
    tensors: Vec<(String, Tensor)>,
}

impl Pretrained {
    /// Reads every tensor of a safetensors checkpoint (on the CPU).
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(ckpt_err(path, "no such file"));
        }
        let tensors = Tensor::read_safetensors(path).map_err(|e| ckpt_err(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// Wraps tensors already in memory (tests, tools).
    pub fn from_tensors(path: impl Into<PathBuf>, tensors: Vec<(String, Tensor)>) -> Self {
        Self {
            path: path.into(),
            tensors,
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.tensors.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The tensor `name`, or an error naming the checkpoint, the model that needs it and what the
    /// checkpoint holds.
    pub fn require(&self, name: &str, model: &str) -> Result<&Tensor> {
        self.get(name).ok_or_else(|| {
            ckpt_err(
                &self.path,
                format!(
                    "model '{model}' needs tensor '{name}' from the stage-1 checkpoint; it holds: {}",
                    self.names().join(", ")
                ),
            )
        })
    }
}
