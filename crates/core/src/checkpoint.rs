//! Checkpoints in safetensors, written atomically (temporary name, then rename).

use crate::error::{CoreError, Result};
use crate::model::Model;
use std::path::Path;

fn ckpt_err(path: &Path, message: impl ToString) -> CoreError {
    CoreError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Saves every variable of the model. The file name must end in `.safetensors`.
pub fn save(model: &dyn Model, path: &Path) -> Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        return Err(ckpt_err(path, "checkpoint files must end in .safetensors"));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ckpt_err(path, "not a file name"))?;
    // Keep the extension so tch picks the safetensors format for the temporary file too.
    let tmp = path.with_file_name(format!(".{name}.tmp-{}.safetensors", std::process::id()));
    if let Err(e) = model.var_store().save(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ckpt_err(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ckpt_err(path, e)
    })
}

/// Loads every variable of the model from `path`; a missing variable is an error naming it.
pub fn load(model: &mut dyn Model, path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(ckpt_err(path, "no such file"));
    }
    model
        .var_store_mut()
        .load(path)
        .map_err(|e| ckpt_err(path, e))
}
