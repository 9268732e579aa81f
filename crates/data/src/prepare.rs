//! `longtail prepare`: one TOML config turned into a prepared dataset folder that every model
//! reads the same way. Deterministic for a seed (same config + seed = byte-identical Parquet).
//!
//! Steps, in order: load the source ([`DataSource`]); apply the filters (duplicate rule,
//! minimum counts, iterative k-core, re-indexing); build pointwise CTR samples (labels by
//! threshold or implicit, `neg_per_pos` sampled negatives the user never interacted with, the
//! split, user activeness and item popularity groups: [`crate::ctr`]); optionally HIM sessions
//! for every sample ([`crate::sessions`]) and IDW sequences ([`crate::sequences`]).
//!
//! The folder (built under a temporary name and swapped in whole when complete, so a failed or
//! killed run never leaves a half-written folder; an existing folder is replaced only if its
//! `prepare.json` is a manifest longtail wrote ([`is_prepared_folder`]), and never when it holds
//! an input of the job). `prepare.json` records the
//! SHA-256 of every other file, and [`load_prepared_ctr`] refuses a folder whose files changed:
//!
//! ```text
//! OUT/prepare.json                     manifest: config, hashes, counts, group shares, warnings
//! OUT/feature_map.json                 vocab sizes and shapes, with a content hash
//! OUT/interactions.parquet             the filtered table (dense ids, canonical schema)
//! OUT/user_vocab.json, item_vocab.json raw id per dense id (imports only)
//! OUT/item_clusters.json               ground-truth item clusters (synthetic data only)
//! OUT/items.parquet                    item side features of the output ids (when configured)
//! OUT/samples/{train,valid,test}.parquet   user item label ts hist_end user_group item_group
//! OUT/sessions/{train,valid,test}.parquet  row-aligned with samples: pos_items pos_counts
//!                                          neg_items neg_counts, each [S * n]   (with [sessions])
//! OUT/sequences/{train,valid,test}.parquet user target target_ts hist [L] hist_len
//!                                          (+ negatives [k] for valid/test)     (with [sequences])
//!                                          (+ hist_<feature> aligned with hist: [L] per
//!                                          categorical field, [L * A] per list field, MFN)
//! ```
//!
//! A sample's history is `seq(user)[..hist_end]` where `seq` is the user's positives in time
//! order, rebuilt from `interactions.parquet` by [`load_prepared_ctr`]; histories are not copied
//! per sample.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ctr::{build_ctr_dataset, CtrConfig, CtrDataset, CtrSamples, UserSequences};
use crate::error::{DataError, Result};
use crate::feature_map::{FeatureKind, FeatureMap, FeatureSpec};
use crate::filter::{apply_filters, FilterConfig, FilterReport};
use crate::frame::{
    take_f32, take_i64, take_u32, take_u32_list, take_u8, Column, Frame, FrameWriter,
};
use crate::groups::{ActivenessRule, ITEM_GROUP_NAMES, USER_GROUP_NAMES};
use crate::items::ItemFeatures;
use crate::sequences::{
    align_attribute, align_list_attribute, build_sequences, SeqDataset, SeqSamples, SequenceConfig,
};
use crate::sessions::{SessionConfig, Sessions};
use crate::source::{load_source, DataSource};
use crate::table::Interactions;

/// Rows of sessions computed and written at a time (bounds memory on large datasets).
const SESSION_CHUNK: usize = 1 << 15;
/// The split names, in file order.
pub const SPLITS: [&str; 3] = ["train", "valid", "test"];

/// A whole `prepare` job as one TOML document (unknown keys are errors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareConfig {
    /// Dataset name recorded in the feature map and manifest.
    #[serde(default = "default_dataset")]
    pub dataset: String,
    #[serde(default)]
    pub seed: u64,
    pub data: DataSource,
    /// Duplicate rule, minimum counts, k-core; absent = no filtering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<FilterConfig>,
    /// Labels, negatives, split, activeness and item groups.
    #[serde(default)]
    pub samples: CtrConfig,
    /// HIM sessions for every CTR sample; absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionConfig>,
    /// IDW sequence samples; absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<SequenceConfig>,
}

fn default_dataset() -> String {
    "dataset".into()
}

impl PrepareConfig {
    /// Parses TOML; unknown keys are errors naming the key, the file and the line. Sections that
    /// only `train` uses (`name`, `variant`, `model`, `train`) are ignored, so an experiment
    /// config can be prepared as it is.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e: toml::de::Error| {
            DataError::config(
                crate::source::toml_error_origin(text, origin, &e),
                e.message().trim(),
            )
        })?;
        for k in ["name", "variant", "model", "train"] {
            table.remove(k);
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| DataError::config(origin, e.message().trim()))
    }

    /// Checks every section on its own (data-dependent checks come later).
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        if let Some(f) = &self.filters {
            f.validate()?;
        }
        self.samples.validate()?;
        if let Some(s) = &self.sessions {
            s.validate()?;
        }
        if let Some(s) = &self.sequences {
            s.validate()?;
        }
        Ok(())
    }
}

/// Counts of one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub samples: usize,
    pub positives: usize,
    /// Samples per user group (tail, body, head).
    pub user_groups: [usize; 3],
    /// Samples per item group (tail, head).
    pub item_groups: [usize; 2],
    /// Sequence samples (with `[sequences]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequences: Option<usize>,
}

/// `prepare.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareManifest {
    pub longtail_version: String,
    pub config: PrepareConfig,
    /// Content hash of the loaded table before filtering.
    pub source_hash: String,
    /// Content hash of `interactions.parquet`.
    pub interactions_hash: String,
    pub feature_map_hash: String,
    pub interactions: usize,
    pub users: usize,
    pub items: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<FilterReport>,
    /// The activeness rule as applied (quantile rules resolved to thresholds).
    pub activeness: ActivenessRule,
    pub user_group_names: Vec<String>,
    pub item_group_names: Vec<String>,
    /// Users with train positives per group (tail, body, head).
    pub users_per_group: [usize; 3],
    /// Items with train positives that are head items.
    pub head_items: usize,
    pub train: SplitCounts,
    pub valid: SplitCounts,
    pub test: SplitCounts,
    pub warnings: Vec<String>,
    pub wall_s: f64,
    /// SHA-256 of every file of the folder but `prepare.json`, by path relative to the folder
    /// (`/`-separated): what [`verify_files`] checks before a folder is used.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// Runs `cfg` and writes the folder `out` (see the module docs). `log` gets one line per stage.
pub fn prepare(cfg: &PrepareConfig, out: &Path, log: &dyn Fn(&str)) -> Result<PrepareManifest> {
    let started = Instant::now();
    cfg.validate()?;
    let inputs = cfg.data.input_paths();
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    crate::atomic::guard_output(
        out,
        &inputs,
        true,
        crate::atomic::Replaceable::If(&is_prepared_folder),
        "prepared folder",
    )?;
    let sessions = cfg.sessions.as_ref().map(Sessions::new).transpose()?;

    log("loading data");
    let loaded = load_source(&cfg.data, cfg.seed)?;
    let source_hash = loaded.interactions.content_hash();
    let (inter, report, user_map, item_map) = match &cfg.filters {
        Some(f) => {
            log("filtering");
            let r = apply_filters(&loaded.interactions, f)?;
            (
                r.interactions,
                Some(r.report),
                Some(r.user_map),
                Some(r.item_map),
            )
        }
        None => (loaded.interactions, None, None, None),
    };
    let items = match (&loaded.items, &item_map) {
        (Some(f), Some(m)) => Some(f.select(m)),
        (Some(f), None) => Some(f.clone()),
        _ => None,
    };
    log("building CTR samples");
    let mut data = build_ctr_dataset(&inter, &cfg.dataset, &cfg.samples, cfg.seed)?;
    check_memory(cfg, &data, items.as_ref())?;
    let seq = match &cfg.sequences {
        Some(sc) => {
            log("building sequences");
            Some(build_sequences(
                &data.sequences,
                data.num_items(),
                sc,
                cfg.seed,
            )?)
        }
        None => None,
    };
    if let Some(c) = &cfg.sessions {
        data.with_sessions(c)?;
    }
    if let Some(q) = &seq {
        data.feature_map.features.push(FeatureSpec {
            name: "seq_hist".into(),
            kind: FeatureKind::Sequence,
            vocab: data.num_items(),
            max_len: Some(q.max_len),
            table: "item".into(),
            dims: None,
        });
    }
    if let Some(f) = &items {
        // Item side features: a categorical input per field, a list input per list field.
        data.with_items(f.clone())?;
    }
    data.feature_map.hash = data.feature_map.compute_hash();

    let staged = crate::atomic::Staged::dir(out)?;
    let tmp = staged.path().to_path_buf();
    let result = (|| -> Result<PrepareManifest> {
        for d in ["samples", "sessions", "sequences"] {
            if d == "samples"
                || (d == "sessions" && sessions.is_some())
                || (d == "sequences" && seq.is_some())
            {
                let p = tmp.join(d);
                std::fs::create_dir_all(&p).map_err(|e| DataError::io(&p, e))?;
            }
        }
        log("writing interactions and samples");
        inter.write_parquet(&tmp.join("interactions.parquet"))?;
        data.feature_map.write_json(&tmp.join("feature_map.json"))?;
        if let (Some(v), Some(_)) = (&loaded.user_vocab, &loaded.item_vocab) {
            write_json(
                &tmp.join("user_vocab.json"),
                &remap_vocab(v, user_map.as_deref()),
            )?;
        }
        if let Some(v) = &loaded.item_vocab {
            write_json(
                &tmp.join("item_vocab.json"),
                &remap_vocab(v, item_map.as_deref()),
            )?;
        }
        if let Some(f) = &items {
            f.write_parquet(&tmp.join("items.parquet"))?;
        }
        if let Some(c) = &loaded.item_cluster {
            let c: Vec<u32> = match &item_map {
                Some(m) => m
                    .iter()
                    .map(|&old| c.get(old as usize).copied().unwrap_or(0))
                    .collect(),
                None => c.clone(),
            };
            write_json(&tmp.join("item_clusters.json"), &c)?;
        }
        let splits = [&data.train, &data.valid, &data.test];
        for (name, s) in SPLITS.iter().zip(splits) {
            samples_frame(s).write_parquet(&tmp.join("samples").join(format!("{name}.parquet")))?;
        }
        if let Some(sess) = &sessions {
            log("computing HIM sessions");
            for (name, s) in SPLITS.iter().zip(splits) {
                write_sessions(
                    sess,
                    &data,
                    s,
                    &tmp.join("sessions").join(format!("{name}.parquet")),
                )?;
            }
        }
        if let Some(q) = &seq {
            log("writing sequences");
            for (name, s) in SPLITS.iter().zip([&q.train, &q.valid, &q.test]) {
                sequences_frame(s, q.max_len, items.as_ref())
                    .write_parquet(&tmp.join("sequences").join(format!("{name}.parquet")))?;
            }
        }
        let counts = |s: &CtrSamples, n_seq: Option<usize>| {
            let mut ug = [0usize; 3];
            let mut ig = [0usize; 2];
            s.user_group
                .iter()
                .for_each(|&g| ug[(g as usize).min(2)] += 1);
            s.item_group
                .iter()
                .for_each(|&g| ig[(g as usize).min(1)] += 1);
            SplitCounts {
                samples: s.len(),
                positives: s.num_positives(),
                user_groups: ug,
                item_groups: ig,
                sequences: n_seq,
            }
        };
        let mut users_per_group = [0usize; 3];
        for &c in data.user_train_positives.iter().filter(|&&c| c > 0) {
            users_per_group[data.activeness.classify(c) as usize] += 1;
        }
        let igroups = crate::groups::item_groups(&data.item_freq, cfg.samples.head_item_share);
        let manifest = PrepareManifest {
            longtail_version: env!("CARGO_PKG_VERSION").to_string(),
            config: cfg.clone(),
            source_hash: source_hash.clone(),
            interactions_hash: inter.content_hash(),
            feature_map_hash: data.feature_map.hash.clone(),
            interactions: inter.len(),
            users: inter.num_users() - 1,
            items: inter.num_items() - 1,
            filters: report.clone(),
            activeness: data.activeness,
            user_group_names: USER_GROUP_NAMES.iter().map(|s| s.to_string()).collect(),
            item_group_names: ITEM_GROUP_NAMES.iter().map(|s| s.to_string()).collect(),
            users_per_group,
            head_items: igroups.iter().filter(|&&g| g == 1).count(),
            train: counts(&data.train, seq.as_ref().map(|q| q.train.len())),
            valid: counts(&data.valid, seq.as_ref().map(|q| q.valid.len())),
            test: counts(&data.test, seq.as_ref().map(|q| q.test.len())),
            warnings: data.warnings.clone(),
            wall_s: started.elapsed().as_secs_f64(),
            files: file_hashes(&tmp)?,
        };
        write_json(&tmp.join("prepare.json"), &manifest)?;
        Ok(manifest)
    })();
    // On error `staged` is dropped: the temporary folder goes, `out` is untouched.
    let m = result?;
    staged.commit()?;
    Ok(m)
}

/// Whether `dir` is a prepared folder that longtail wrote, the only kind of existing folder
/// `prepare --out` may replace: its `prepare.json` must be a JSON object with the fields every
/// manifest has, a non-empty `longtail_version`, the `config` it was prepared with, and the
/// SHA-256 hex digests `source_hash`, `interactions_hash` and `feature_map_hash` (and `files`,
/// when present, an object). A folder that merely holds a file of that name (`{}`, `not json`)
/// is not one. The config itself is not parsed, so a folder prepared by another version of
/// longtail can still be prepared again.
pub fn is_prepared_folder(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("prepare.json")) else {
        return false;
    };
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&text) else {
        return false;
    };
    let digest = |k: &str| {
        m.get(k).and_then(|v| v.as_str()).is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    };
    m.get("longtail_version")
        .and_then(|v| v.as_str())
        .is_some_and(|v| !v.is_empty())
        && m.get("config").is_some_and(|c| c.is_object())
        && ["source_hash", "interactions_hash", "feature_map_hash"]
            .iter()
            .all(|k| digest(k))
        && m.get("files").is_none_or(|f| f.is_object())
}

/// Bytes the sessions stage ([`write_sessions`]) holds at its peak, an estimate: one chunk of
/// rows (at most [`SESSION_CHUNK`], and at most the largest split's `largest_split` samples),
/// each row four `[num_sessions * top_n]` vectors of 4-byte values (items and counts of both
/// feedback kinds), held three times (the slots computed per row, the chunk's columns, the copy
/// handed to the Parquet writer), plus one set of slots per worker thread.
pub fn sessions_bytes(
    largest_split: usize,
    num_sessions: usize,
    top_n: usize,
    threads: usize,
) -> f64 {
    let rows = largest_split.min(SESSION_CHUNK) as f64;
    let row = num_sessions as f64 * top_n as f64 * 16.0;
    (3.0 * rows + threads as f64) * row
}

/// An upper bound of the sequence samples [`build_sequences`] cuts from `seqs` with `cfg`, from
/// the sequence lengths alone: the same rules, before samples whose history is empty once the
/// items tied with the target are removed are dropped (exact when no timestamps tie).
pub fn max_sequence_samples(seqs: &UserSequences, cfg: &SequenceConfig) -> usize {
    use crate::sequences::{TrainCut, MIN_EVAL_LEN};
    (0..seqs.num_users())
        .map(|u| {
            let n = seqs.seq(u as u32).len();
            let (n_train, eval) = if n >= MIN_EVAL_LEN {
                (n - 2, 2)
            } else {
                (n, 0)
            };
            let train = match cfg.train_cut {
                // Windows of `max_len + 1` items from the end; a 1-item remainder is dropped.
                TrainCut::Chunks => {
                    let w = cfg.max_len.saturating_add(1);
                    n_train / w + usize::from(n_train % w >= 2)
                }
                TrainCut::Sliding => n_train.saturating_sub(1),
            };
            train + eval
        })
        .sum()
}

/// Bytes the sequences stage holds at its peak, an estimate for `rows` sequence samples: the
/// samples themselves (user, target and history length as `u32`, the target's `i64` time, the
/// `max_len` history slots and `eval_negatives` negatives, as 4-byte ids), with as much again
/// while the splits are appended; then, while a split is written, its history and the item
/// features aligned with it (`slots_per_position` values per history slot: 1 for the history,
/// plus one per categorical field and the widest list per list field) copied into the frame and
/// again into the writer's batches.
pub fn sequences_bytes(
    rows: usize,
    max_len: usize,
    eval_negatives: usize,
    slots_per_position: usize,
) -> f64 {
    let (rows, l) = (rows as f64, max_len as f64);
    let sample = 20.0 + 4.0 * l + 4.0 * eval_negatives as f64;
    rows * (2.0 * sample + 2.0 * 4.0 * l * slots_per_position as f64)
}

/// Refuses, naming the key, a `[sessions]` or `[sequences]` section whose sizes would not fit in
/// this machine's memory ([`crate::memory::check_fits`]), before anything that large is built.
fn check_memory(
    cfg: &PrepareConfig,
    data: &CtrDataset,
    items: Option<&ItemFeatures>,
) -> Result<()> {
    if let Some(sc) = &cfg.sessions {
        let largest = data.train.len().max(data.valid.len()).max(data.test.len());
        let rows = largest.min(SESSION_CHUNK);
        let s = sc.windows.len();
        crate::memory::check_fits(
            sessions_bytes(largest, s, sc.top_n, rayon::current_num_threads()),
            "sessions.top_n",
            &format!(
                "{s} sessions x {} items of both feedback kinds for each of the {rows} samples \
                 written at a time",
                sc.top_n
            ),
        )?;
    }
    if let Some(sc) = &cfg.sequences {
        let rows = max_sequence_samples(&data.sequences, sc);
        let slots = 1 + items.map_or(0, |f| {
            f.fields.len() + f.lists.iter().map(|l| l.max_len().max(1)).sum::<usize>()
        });
        crate::memory::check_fits(
            sequences_bytes(rows, sc.max_len, sc.eval_negatives, slots),
            "sequences.max_len",
            &format!(
                "a history of {} slots for each of up to {rows} sequence samples",
                sc.max_len
            ),
        )?;
    }
    Ok(())
}

/// SHA-256 of every file under `dir` but `prepare.json`, by `/`-separated relative path.
fn file_hashes(dir: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| DataError::io(dir, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| DataError::io(dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out)?;
            } else {
                let rel = p.strip_prefix(root).unwrap_or(&p);
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let rel = rel.join("/");
                if rel != "prepare.json" {
                    out.insert(rel, sha256_file(&p)?);
                }
            }
        }
        Ok(())
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// SHA-256 (hex) of a file's bytes, read in blocks.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::table::hex(&h.finalize()))
}

/// Checks every file that `prepare.json` lists against its recorded SHA-256: a missing,
/// replaced or edited file is an error naming it. Folders written before hashes were recorded
/// are refused too (they cannot be checked).
pub fn verify_files(dir: &Path, m: &PrepareManifest) -> Result<()> {
    if m.files.is_empty() {
        return Err(DataError::Schema {
            path: dir.join("prepare.json"),
            message: "records no file hashes (written by an older longtail), so the folder \
                      cannot be checked: run `longtail prepare` again"
                .into(),
        });
    }
    for (rel, want) in &m.files {
        let p = dir.join(rel);
        if !p.is_file() {
            return Err(DataError::Schema {
                path: p,
                message: "listed in prepare.json but missing: the prepared folder was modified"
                    .into(),
            });
        }
        if sha256_file(&p)? != *want {
            return Err(DataError::Schema {
                path: p,
                message: "content differs from the hash in prepare.json: the prepared folder \
                          was modified after `longtail prepare` wrote it (prepare it again)"
                    .into(),
            });
        }
    }
    Ok(())
}

/// The item features of a prepared folder (`items.parquet`), if it has them.
pub fn load_prepared_items(dir: &Path) -> Result<Option<ItemFeatures>> {
    let p = dir.join("items.parquet");
    if p.exists() {
        ItemFeatures::read_parquet(&p).map(Some)
    } else {
        Ok(None)
    }
}

/// The raw-id vocabulary of the output ids: `map[new] = old` when filters re-indexed.
pub fn remap_vocab(vocab: &[String], map: Option<&[u32]>) -> Vec<String> {
    match map {
        Some(m) => m
            .iter()
            .map(|&old| vocab.get(old as usize).cloned().unwrap_or_default())
            .collect(),
        None => vocab.to_vec(),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    crate::atomic::write_json(path, value, true)
}

fn samples_frame(s: &CtrSamples) -> Frame {
    Frame::new()
        .with("user", Column::U32(s.user.clone()))
        .with("item", Column::U32(s.item.clone()))
        .with("label", Column::F32(s.label.clone()))
        .with("ts", Column::I64(s.ts.clone()))
        .with("hist_end", Column::U32(s.hist_end.clone()))
        .with("user_group", Column::U8(s.user_group.clone()))
        .with("item_group", Column::U8(s.item_group.clone()))
}

fn sequences_frame(s: &SeqSamples, max_len: usize, items: Option<&ItemFeatures>) -> Frame {
    let mut f = Frame::new()
        .with("user", Column::U32(s.user.clone()))
        .with("target", Column::U32(s.target.clone()))
        .with("target_ts", Column::I64(s.target_ts.clone()))
        .with(
            "hist",
            Column::U32List {
                width: max_len,
                values: s.hist.clone(),
            },
        )
        .with("hist_len", Column::U32(s.hist_len.clone()));
    // MFN inputs: each item feature aligned with the history, slot by slot (0 = padding).
    if let Some(feats) = items {
        for c in &feats.fields {
            f = f.with(
                &format!("hist_{}", c.name),
                Column::U32List {
                    width: max_len,
                    values: align_attribute(&s.hist, &c.values),
                },
            );
        }
        for l in &feats.lists {
            let a = l.max_len().max(1);
            f = f.with(
                &format!("hist_{}", l.name),
                Column::U32List {
                    width: max_len * a,
                    values: align_list_attribute(&s.hist, &l.offsets, &l.values, a),
                },
            );
        }
    }
    let k = s.negatives_per_sample();
    if k > 0 {
        f = f.with(
            "negatives",
            Column::U32List {
                width: k,
                values: s.negatives.clone(),
            },
        );
    }
    f
}

/// Sessions of every sample of `s`, row-aligned with the samples file, streamed in chunks.
fn write_sessions(sess: &Sessions, data: &CtrDataset, s: &CtrSamples, path: &Path) -> Result<()> {
    let w = sess.slot_len();
    let chunk_frame = |a: usize, b: usize| -> Frame {
        // A positive and its sampled negatives share (user, time), hence their sessions: compute
        // each run of equal keys once.
        let starts: Vec<usize> = (a..b)
            .filter(|&i| i == a || s.user[i] != s.user[i - 1] || s.ts[i] != s.ts[i - 1])
            .collect();
        let unique: Vec<_> = starts
            .par_iter()
            .map_init(
                || sess.new_slots(),
                |slots, &i| {
                    let u = s.user[i];
                    sess.fill(
                        data.sequences.seq(u),
                        data.sequences.seq_ts(u),
                        data.negative_feedback.seq(u),
                        data.negative_feedback.seq_ts(u),
                        s.ts[i],
                        slots,
                    );
                    (
                        slots.pos_items.clone(),
                        slots.pos_counts.clone(),
                        slots.neg_items.clone(),
                        slots.neg_counts.clone(),
                    )
                },
            )
            .collect();
        let mut rows = Vec::with_capacity(b - a);
        let mut k = 0;
        for i in a..b {
            if k + 1 < starts.len() && starts[k + 1] == i {
                k += 1;
            }
            rows.push(&unique[k]);
        }
        let n = b - a;
        let (mut pi, mut pc, mut ni, mut nc) = (
            Vec::with_capacity(n * w),
            Vec::with_capacity(n * w),
            Vec::with_capacity(n * w),
            Vec::with_capacity(n * w),
        );
        for (a, b, c, d) in rows {
            pi.extend_from_slice(a);
            pc.extend_from_slice(b);
            ni.extend_from_slice(c);
            nc.extend_from_slice(d);
        }
        Frame::new()
            .with(
                "pos_items",
                Column::U32List {
                    width: w,
                    values: pi,
                },
            )
            .with(
                "pos_counts",
                Column::F32List {
                    width: w,
                    values: pc,
                },
            )
            .with(
                "neg_items",
                Column::U32List {
                    width: w,
                    values: ni,
                },
            )
            .with(
                "neg_counts",
                Column::F32List {
                    width: w,
                    values: nc,
                },
            )
    };
    let mut first = chunk_frame(0, 0);
    first.metadata.insert(
        "longtail.sessions".into(),
        serde_json::json!({"num_sessions": sess.num_sessions(), "top_n": sess.top_n(),
            "bounds_s": sess.bounds()})
        .to_string(),
    );
    let mut writer = FrameWriter::create(path, &first)?;
    let mut a = 0;
    while a < s.len() {
        let b = (a + SESSION_CHUNK).min(s.len());
        writer.write(&chunk_frame(a, b))?;
        a = b;
    }
    writer.finish()
}

/// Reads `prepare.json` of a prepared folder.
pub fn read_manifest(dir: &Path) -> Result<PrepareManifest> {
    let path = dir.join("prepare.json");
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| DataError::Schema {
        path,
        message: format!("not a prepare manifest: {e}"),
    })
}

/// The columns of a prepared samples file, in file order.
pub const SAMPLE_COLUMNS: [&str; 7] = [
    "user",
    "item",
    "label",
    "ts",
    "hist_end",
    "user_group",
    "item_group",
];

/// Takes the [`SAMPLE_COLUMNS`] out of a frame read from `path` (errors name the file).
pub fn samples_from_frame(f: &mut Frame, path: &Path) -> Result<CtrSamples> {
    Ok(CtrSamples {
        user: take_u32(f, "user", path)?,
        item: take_u32(f, "item", path)?,
        label: take_f32(f, "label", path)?,
        ts: take_i64(f, "ts", path)?,
        hist_end: take_u32(f, "hist_end", path)?,
        user_group: take_u8(f, "user_group", path)?,
        item_group: take_u8(f, "item_group", path)?,
    })
}

/// Reads one split's CTR samples.
pub fn read_samples(path: &Path) -> Result<CtrSamples> {
    samples_from_frame(&mut Frame::read_parquet(path, &SAMPLE_COLUMNS)?, path)
}

/// Checks every file of a prepared folder against its manifest ([`verify_files`]) and reads its
/// interaction table, whose content hash must be the manifest's.
fn verified_interactions(dir: &Path, m: &PrepareManifest) -> Result<Interactions> {
    verify_files(dir, m)?;
    let inter_path = dir.join("interactions.parquet");
    let inter = Interactions::read_parquet(&inter_path)?;
    if inter.content_hash() != m.interactions_hash {
        return Err(DataError::Schema {
            path: inter_path,
            message: "content hash differs from prepare.json: the folder was modified".into(),
        });
    }
    Ok(inter)
}

/// What a retrieval run reads from a prepared folder: the IDW sequence samples of
/// `sequences/{train,valid,test}.parquet` as prepared, the users' positives they were cut from
/// (for seen sets and head items), the item vocabulary size and the manifest.
pub struct PreparedSequences {
    pub seq: SeqDataset,
    pub interactions: Interactions,
    /// Ground-truth item clusters (`item_clusters.json`, synthetic data only).
    pub item_cluster: Option<Vec<u32>>,
    pub positives: UserSequences,
    pub num_items: usize,
    pub manifest: PrepareManifest,
}

/// Reads a prepared folder's sequences (prepared with a `[sequences]` section). The files are
/// checked against `prepare.json` (hashes) and every row against the interactions (users, items,
/// history lengths within `max_len`, `eval_negatives` negatives per valid/test row), so a
/// hand-edited or mismatched folder is an error naming the file and row.
pub fn load_prepared_sequences(dir: &Path) -> Result<PreparedSequences> {
    let m = read_manifest(dir)?;
    let Some(sc) = m.config.sequences.clone() else {
        return Err(DataError::Schema {
            path: dir.join("prepare.json"),
            message: "the folder has no sequences/: prepare it with a [sequences] section for \
                      retrieval runs"
                .into(),
        });
    };
    let inter = verified_interactions(dir, &m)?;
    let (positives, _) = crate::ctr::feedback_sequences(
        &inter,
        m.config.samples.positive_threshold,
        &m.config.dataset,
    )?;
    let (users, items) = (inter.num_users(), inter.num_items());
    let mut parts = Vec::new();
    for name in SPLITS {
        let p = dir.join("sequences").join(format!("{name}.parquet"));
        let mut f = Frame::read_parquet(&p, &["user", "target", "target_ts", "hist", "hist_len"])?;
        let (width, hist) = take_u32_list(&mut f, "hist", &p)?;
        let negatives = if name == "train" {
            Vec::new()
        } else {
            let (k, v) = take_u32_list(&mut f, "negatives", &p)?;
            if k != sc.eval_negatives {
                return Err(DataError::Schema {
                    path: p,
                    message: format!(
                        "{k} negatives per row, prepare.json says eval_negatives = {}",
                        sc.eval_negatives
                    ),
                });
            }
            v
        };
        let s = SeqSamples {
            user: take_u32(&mut f, "user", &p)?,
            target: take_u32(&mut f, "target", &p)?,
            target_ts: take_i64(&mut f, "target_ts", &p)?,
            hist_len: take_u32(&mut f, "hist_len", &p)?,
            hist,
            negatives,
        };
        if width != sc.max_len {
            return Err(DataError::Schema {
                path: p,
                message: format!(
                    "histories of {width} slots, prepare.json says max_len = {}",
                    sc.max_len
                ),
            });
        }
        for i in 0..s.len() {
            let bad = s.user[i] as usize >= users
                || s.target[i] == 0
                || s.target[i] as usize >= items
                || s.hist_len[i] as usize > width
                || s.hist_row(i).iter().any(|&x| x as usize >= items)
                || s.negatives[i * s.negatives_per_sample()..(i + 1) * s.negatives_per_sample()]
                    .iter()
                    .any(|&x| x == 0 || x as usize >= items);
            if bad {
                return Err(DataError::Schema {
                    path: p,
                    message: format!(
                        "row {i}: a user, item or history length outside the interactions \
                         ({} users, {} items, max_len {width})",
                        users,
                        items - 1
                    ),
                });
            }
        }
        parts.push(s);
    }
    let test = parts.pop().unwrap_or_default();
    let valid = parts.pop().unwrap_or_default();
    let train = parts.pop().unwrap_or_default();
    let cpath = dir.join("item_clusters.json");
    let item_cluster = match std::fs::read_to_string(&cpath) {
        Ok(text) => {
            let c: Vec<u32> = serde_json::from_str(&text).map_err(|e| DataError::Schema {
                path: cpath.clone(),
                message: format!("not a list of cluster ids: {e}"),
            })?;
            if c.len() != items {
                return Err(DataError::Schema {
                    path: cpath,
                    message: format!("{} entries for {items} items", c.len()),
                });
            }
            Some(c)
        }
        Err(_) => None,
    };
    Ok(PreparedSequences {
        seq: SeqDataset {
            max_len: sc.max_len,
            eval_negatives: sc.eval_negatives,
            train,
            valid,
            test,
        },
        positives,
        num_items: items,
        manifest: m,
        interactions: inter,
        item_cluster,
    })
}

/// A prepared folder as the [`CtrDataset`] that [`build_ctr_dataset`] had built, and its
/// manifest. The interaction table is checked against the manifest's hash and every sample
/// against the sequences (`hist_end` within the user's positives), so a hand-edited or
/// mismatched folder is an error, not silently wrong histories.
pub fn load_prepared_ctr(dir: &Path) -> Result<(CtrDataset, PrepareManifest)> {
    let m = read_manifest(dir)?;
    let inter = verified_interactions(dir, &m)?;
    let feature_map = FeatureMap::read_json(&dir.join("feature_map.json"))?;
    let (sequences, negative_feedback) = crate::ctr::feedback_sequences(
        &inter,
        m.config.samples.positive_threshold,
        &m.config.dataset,
    )?;
    let mut parts = Vec::new();
    for name in SPLITS {
        let p = dir.join("samples").join(format!("{name}.parquet"));
        let s = read_samples(&p)?;
        for i in 0..s.len() {
            let len = sequences.seq(s.user[i]).len();
            if s.hist_end[i] as usize > len || s.item[i] as usize >= inter.num_items() {
                return Err(DataError::Schema {
                    path: p,
                    message: format!(
                        "row {i}: hist_end {} / item {} do not fit the interactions \
                         (user {} has {len} positives, {} items)",
                        s.hist_end[i],
                        s.item[i],
                        s.user[i],
                        inter.num_items() - 1
                    ),
                });
            }
        }
        parts.push(s);
    }
    let test = parts.pop().unwrap_or_default();
    let valid = parts.pop().unwrap_or_default();
    let train = parts.pop().unwrap_or_default();
    let mut item_freq = vec![0u64; inter.num_items()];
    let mut user_train_positives = vec![0u32; inter.num_users()];
    for i in (0..train.len()).filter(|&i| train.label[i] > 0.5) {
        item_freq[train.item[i] as usize] += 1;
        user_train_positives[train.user[i] as usize] += 1;
    }
    let data = CtrDataset {
        feature_map,
        sequences,
        negative_feedback,
        train,
        valid,
        test,
        item_freq,
        user_train_positives,
        activeness: m.activeness,
        warnings: m.warnings.clone(),
        sessions: None,
        items: None,
    };
    let mut data = data;
    if let Some(items) = load_prepared_items(dir)? {
        data.items = Some(items);
    }
    if let Some(c) = &m.config.sessions {
        // Same config, same sessions: they are recomputed per batch rather than read back.
        let hash = data.feature_map.hash.clone();
        data.sessions = Some(Sessions::new(c)?);
        if data.feature_map.get("sessions").is_none() || hash != m.feature_map_hash {
            return Err(DataError::Schema {
                path: dir.join("feature_map.json"),
                message: "does not match prepare.json (sessions entry or hash)".into(),
            });
        }
    }
    Ok((data, m))
}

/// The paths of one split's files in a prepared folder.
pub fn split_path(dir: &Path, kind: &str, split: &str) -> PathBuf {
    dir.join(kind).join(format!("{split}.parquet"))
}
