//! What libtorch this process actually loaded, and what CUDA it sees (for `doctor` and manifests).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// The tch crate version this binary was built with.
    pub tch: String,
    /// `torch.__version__` of the loaded libtorch (from `version.py` beside it), if found.
    pub libtorch: Option<String>,
    /// Folder of the loaded `libtorch_cpu.so`.
    pub libtorch_path: Option<PathBuf>,
    /// Whether `libtorch_cuda.so` is loaded into this process (needed to ever see a GPU).
    pub cuda_linked: bool,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    /// CUDA version the loaded torch was built for (`torch.version.cuda`), if known.
    pub cuda_version: Option<String>,
    pub cudnn_available: bool,
    pub threads: i32,
    /// Which CPU kernels were pinned ([`crate::numerics::describe`]: `native` or the variables).
    #[serde(default)]
    pub cpu_kernels: String,
    /// The CPU model (`/proc/cpuinfo`'s `model name`): same-seed CPU runs repeat exactly on one
    /// CPU model, not always across models, even with the kernels pinned.
    #[serde(default)]
    pub cpu_model: String,
}

/// This machine's CPU model (`model name` in `/proc/cpuinfo`), or `unknown`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub const TCH_VERSION: &str = "0.24.0";

/// Reads `/proc/self/maps` to find the libtorch really in use (not the one we hoped for).
fn loaded_libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| PathBuf::from(p).parent().map(|d| d.to_path_buf()))
}

fn libtorch_cuda_loaded() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.contains("/libtorch_cuda.so"))
        .unwrap_or(false)
}

fn version_py_field(dir: &std::path::Path, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.parent()?.join("version.py")).ok()?;
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == field)
                .then(|| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        })
        .filter(|v| v != "None")
}

pub fn info() -> RuntimeInfo {
    let cuda_available = tch::Cuda::is_available();
    let dir = loaded_libtorch_dir();
    RuntimeInfo {
        tch: TCH_VERSION.to_string(),
        libtorch: dir
            .as_deref()
            .and_then(|d| version_py_field(d, "__version__")),
        cuda_version: dir.as_deref().and_then(|d| version_py_field(d, "cuda")),
        libtorch_path: dir,
        cuda_linked: libtorch_cuda_loaded(),
        cuda_available,
        cuda_devices: if cuda_available {
            tch::Cuda::device_count()
        } else {
            0
        },
        cudnn_available: cuda_available && tch::Cuda::cudnn_is_available(),
        threads: tch::get_num_threads(),
        cpu_kernels: crate::numerics::describe(),
        cpu_model: cpu_model(),
    }
}
