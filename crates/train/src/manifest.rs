//! `run.json`: everything needed to cite or repeat a run (config and its hash, dataset hash,
//! git revision, versions, device, seed, per-epoch losses and times, final metrics).

use crate::error::{io, Result};
use crate::trainer::EpochLog;
use longtail_core::runtime::RuntimeInfo;
use longtail_eval::Metrics;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunManifest {
    pub longtail_version: String,
    pub git_revision: Option<String>,
    pub command: String,
    pub experiment: String,
    pub model: String,
    #[serde(default)]
    pub variant: String,
    pub dataset: DatasetInfo,
    pub seed: u64,
    pub device: String,
    pub runtime: RuntimeInfo,
    pub config: serde_json::Value,
    pub config_hash: String,
    pub started_unix_s: u64,
    pub wall_s: f64,
    pub epochs: Vec<EpochLog>,
    /// Test-split metrics, the same flat keys as metrics.json.
    pub metrics: Metrics,
    /// Stage 1 of a two-stage pipeline (`[pretrain]`), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage1: Option<StageRecord>,
    /// The model's own pre-training step (e.g. MFN's interest centers), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_pretrain: Option<longtail_core::PretrainLog>,
    /// Retrieval runs: the training phases and the IDW iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<crate::retrieval::RetrievalLog>,
    /// PIN's stratified schedule (`[pin]`), when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<crate::stratified::PinLog>,
    /// The schedule that trained the model and its own record (absent in manifests written
    /// before schedules were plugins; `stage1`, `pin` and `retrieval` above stay for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleRecord>,
    /// How many training phases (fit calls) a `--resume` found checkpointed, when the run was
    /// continued from a killed one (its results equal an uninterrupted run's on the CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_phases: Option<usize>,
}

/// `run.json` `schedule`: the schedule's registered name and what it chose to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub name: String,
    pub record: serde_json::Value,
}

/// Stage 1 of a two-stage run: the model, its checkpoint (relative to the run folder) and hash,
/// its epochs and its test metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub model: String,
    pub checkpoint: String,
    pub checkpoint_sha256: String,
    pub epochs: Vec<EpochLog>,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    /// sha256 of the interaction table's columns.
    pub interactions_hash: String,
    pub feature_map_hash: String,
    /// Interactions after filtering.
    pub interactions: usize,
    /// What the filters removed, when `[filters]` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<longtail_data::FilterReport>,
    pub train_samples: usize,
    pub valid_samples: usize,
    pub test_samples: usize,
    /// Synthetic data with true clusters: each cluster's share of the training targets, by
    /// cluster id (the generator's cluster 0 is the most popular), i.e. the interest shares the
    /// skew actually produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_shares: Option<Vec<f64>>,
}

/// sha256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 hex of a value's canonical JSON (serde_json keeps struct field order; maps are sorted).
pub fn hash_json(v: &serde_json::Value) -> String {
    sha256_hex(v.to_string().as_bytes())
}

impl RunManifest {
    /// Writes the manifest as pretty JSON, atomically (`longtail_data::atomic`).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| io(path, std::io::Error::other(e)))?;
        Ok(longtail_data::atomic::write_bytes(path, &json)?)
    }
}
