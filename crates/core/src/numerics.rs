//! Which CPU kernels libtorch may use, so that "the same seed gives the same CPU results" holds
//! across machines and not only on one.
//!
//! libtorch picks its vectorised kernels (ATen's own, MKL's BLAS, oneDNN) by the instruction set
//! of the CPU it runs on, and the picks round differently: the same seed gave MFN's gate run an
//! AUC of 0.7753 on an AVX2 machine and 0.7735 on an AVX-512 one (2026-12-01, both AMD EPYC).
//! [`CpuKernels::Avx2`] pins all three to their AVX2 code paths (every x86-64 CPU of the last
//! decade has them), so numbers repeat across generations of one CPU family; the benchmark suite
//! and its quality gate run so by default. They still differ across CPU models (an AMD EPYC and
//! an Intel Xeon, both pinned, by up to 1.3e-2 on the gate's small test sets, 2026-12-02), which
//! is why run manifests record the CPU model and the gate keeps a baseline per machine. The pins are environment variables libtorch reads when
//! it first dispatches a kernel, so [`pin`] must run before any tensor work, and child processes
//! (the benchmark's PyTorch peers, data workers) inherit them.

use serde::{Deserialize, Serialize};

/// The variables and their AVX2 values: ATen's dispatch, MKL's conditional numerical
/// reproducibility branch, oneDNN's highest instruction set.
pub const AVX2_VARS: [(&str, &str); 3] = [
    ("ATEN_CPU_CAPABILITY", "avx2"),
    ("MKL_CBWR", "AVX2"),
    ("ONEDNN_MAX_CPU_ISA", "AVX2"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuKernels {
    /// Whatever this CPU's best kernels are (fastest; numbers can differ between CPU models).
    Native,
    /// AVX2 kernels everywhere (numbers repeat across generations of one CPU family).
    Avx2,
}

impl std::str::FromStr for CpuKernels {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Self::Native),
            "avx2" => Ok(Self::Avx2),
            other => Err(format!("cpu kernels must be native or avx2, got '{other}'")),
        }
    }
}

/// Pins the kernels for this process and its children. A variable the user already set is left
/// as it is (theirs wins; [`describe`] records what is in force). Call before any tensor work.
pub fn pin(kernels: CpuKernels) {
    if kernels == CpuKernels::Native {
        return;
    }
    for (k, v) in AVX2_VARS {
        if std::env::var_os(k).is_none() {
            // Set while the process is still single-threaded (the CLI's first step).
            std::env::set_var(k, v);
        }
    }
}

/// The pins in force, as `VAR=value` pairs separated by spaces, or `native` when none is set
/// (recorded in run manifests and benchmark reports).
pub fn describe() -> String {
    let set: Vec<String> = AVX2_VARS
        .iter()
        .filter_map(|(k, _)| std::env::var(k).ok().map(|v| format!("{k}={v}")))
        .collect();
    if set.is_empty() {
        "native".into()
    } else {
        set.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_names_and_refuses_others() {
        assert_eq!("native".parse::<CpuKernels>(), Ok(CpuKernels::Native));
        assert_eq!("avx2".parse::<CpuKernels>(), Ok(CpuKernels::Avx2));
        let e = "avx512".parse::<CpuKernels>().unwrap_err();
        assert!(e.contains("avx512") && e.contains("native or avx2"), "{e}");
    }
}
