//! Resumable runs: every [`crate::fit::fit`] call of a run checkpoints after each epoch into
//! `OUT/.<run>.resume/`, and `longtail train --resume` continues a killed run from there, with the
//! same final parameters and metrics, bit for bit on the CPU, as a run that was never stopped.
//!
//! A run is a fixed sequence of fit calls (its schedule's phases: MFN's stage 1 and main stage,
//! PIN's two stages, IDW's wake phases and calibration) with deterministic work between them (an
//! IDW sleep phase, building PIN's plugins or the main model). A resumed run replays the schedule
//! from the start: a call that had finished is not trained again, its kept parameters, epoch
//! logs and the random generator's state at its end are loaded (and Adam's moments when the
//! call shared its optimizer with the next one, as IDW's wake phases do); the call that was interrupted
//! continues after its last finished epoch with its parameters, Adam's moments, early stopping's
//! best epoch (and its parameters) and the generator state restored; the work between calls runs
//! again and, from the same state, gives the same result. Batch orders and negatives derive
//! from the seed and the epoch number, so they need no saved state.
//!
//! On disk: `resume.json` (the config hash and one record per fit call so far) and one tensor
//! file per call. A checkpoint writes the new tensor file under a new name first, then swaps
//! `resume.json` in atomically, then removes the file it replaced, so a kill at any moment leaves
//! a consistent checkpoint. The folder goes once the run folder is in place, and when a run ends
//! with an error (a deterministic failure would only repeat).

use crate::error::{Result, TrainError};
use crate::trainer::EpochLog;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::Tensor;

/// Bumped when the layout changes; an older checkpoint is refused with a clear error.
const VERSION: u32 = 1;
const STATE: &str = "resume.json";
/// Test hook: abort the process (as a kill would) right after this many epochs have been
/// checkpointed by this process. Used by the crash-injection tests; not a user setting.
pub const CRASH_AFTER_ENV: &str = "LONGTAIL_CRASH_AFTER_EPOCHS";

/// An f64 stored by its bits, so every value (NaN metrics included) round-trips exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bits(u64);

impl From<f64> for Bits {
    fn from(x: f64) -> Self {
        Bits(x.to_bits())
    }
}

impl Bits {
    fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

fn bits_map(m: &BTreeMap<String, f64>) -> BTreeMap<String, Bits> {
    m.iter().map(|(k, v)| (k.clone(), Bits::from(*v))).collect()
}

fn f64_map(m: &BTreeMap<String, Bits>) -> BTreeMap<String, f64> {
    m.iter().map(|(k, v)| (k.clone(), v.get())).collect()
}

/// An [`EpochLog`] as saved (exact floats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedLog {
    epoch: usize,
    losses: BTreeMap<String, Bits>,
    train_wall_s: Bits,
    eval_wall_s: Bits,
    samples_per_s: Bits,
    kept: bool,
    valid: BTreeMap<String, Bits>,
}

impl SavedLog {
    fn of(l: &EpochLog) -> Self {
        Self {
            epoch: l.epoch,
            losses: bits_map(&l.losses),
            train_wall_s: l.train_wall_s.into(),
            eval_wall_s: l.eval_wall_s.into(),
            samples_per_s: l.samples_per_s.into(),
            kept: l.kept,
            valid: bits_map(&l.valid),
        }
    }

    fn log(&self) -> EpochLog {
        EpochLog {
            epoch: self.epoch,
            losses: f64_map(&self.losses),
            train_wall_s: self.train_wall_s.get(),
            eval_wall_s: self.eval_wall_s.get(),
            samples_per_s: self.samples_per_s.get(),
            kept: self.kept,
            valid: f64_map(&self.valid),
        }
    }
}

/// One fit call as checkpointed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CallRecord {
    phase: String,
    /// The call returned: its tensors are the kept parameters and the generator at its end.
    finished: bool,
    logs: Vec<SavedLog>,
    /// Early stopping's best so far, `(value, epoch)` (epoch 0: the starting parameters), whose
    /// parameters are saved as `best/<name>`.
    best: Option<(Bits, usize)>,
    /// Adam's per-parameter update counts (its moments are `adam/<i>/...`).
    adam_steps: Vec<i64>,
    /// The tensor file, in the checkpoint folder.
    tensors: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    config_hash: String,
    calls: Vec<CallRecord>,
}

/// What a fit call finds when it starts.
pub(crate) enum CallStart {
    /// Train from the start (no checkpoint of this call).
    Fresh,
    /// The call had finished: load these and return its logs.
    Finished(Restored),
    /// The call was interrupted after `logs.len()` epochs: load these and go on.
    Partial(Restored),
}

/// A call's saved state.
pub(crate) struct Restored {
    pub logs: Vec<EpochLog>,
    pub best: Option<(f64, usize)>,
    pub adam_steps: Vec<i64>,
    /// `model/<name>`, `best/<name>`, `adam/<i>/...`, `rng/cpu` (`rng/cuda` on a GPU).
    pub tensors: HashMap<String, Tensor>,
}

/// Tensors by name (a model's variables, Adam's moments, generator states).
pub(crate) type Named = Vec<(String, Tensor)>;

/// What an epoch's checkpoint saves besides the model (see [`Checkpoints::save`]).
pub(crate) struct CallState<'a> {
    pub phase: &'a str,
    pub finished: bool,
    pub logs: &'a [EpochLog],
    /// Early stopping's best `(value, epoch)` and its parameters.
    pub best: Option<(f64, usize, &'a Named)>,
    /// Adam's update counts and moments ([`longtail_core::state::Adam::state`]).
    pub adam: Option<(Vec<i64>, Named)>,
    pub model: Named,
    pub rng: Named,
}

struct Inner {
    file: StateFile,
    /// The calls found on disk when the run started (replayed in order).
    saved: Vec<CallRecord>,
    next_call: usize,
    epochs_saved: usize,
}

/// The checkpoint folder of one run (`OUT/.<run>.resume/`).
pub struct Checkpoints {
    dir: PathBuf,
    inner: Mutex<Inner>,
    crash_after: Option<usize>,
}

/// The checkpoint folder of the run folder `run_dir`.
pub fn resume_dir(run_dir: &Path) -> PathBuf {
    let name = run_dir.file_name().unwrap_or_default().to_string_lossy();
    run_dir.with_file_name(format!(".{name}.resume"))
}

/// The operating system's words in a tch I/O error (`IoError(Os { code: 28, kind:
/// StorageFull, message: "No space left on device" })` -> `No space left on device`), so a
/// message does not repeat the file's path twice with Rust debug text around it.
fn os_message(e: &str) -> String {
    e.split_once("message: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(m, _)| m.to_string())
        .unwrap_or_else(|| e.to_string())
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Input {
        path: path.to_path_buf(),
        message: format!("checkpoint: {e}"),
    }
}

impl Checkpoints {
    /// A new, empty checkpoint folder at `dir` (an older one there is replaced).
    pub fn start(dir: &Path, config_hash: &str) -> Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Self::with(dir, config_hash, Vec::new()))
    }

    /// The checkpoint folder at `dir` of an interrupted run of the config `config_hash`, or
    /// `None` when there is none. A checkpoint of another config is an error: resuming it
    /// would continue a different run.
    pub fn open(dir: &Path, config_hash: &str) -> Result<Option<Self>> {
        let path = dir.join(STATE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        let file: StateFile = serde_json::from_str(&text).map_err(|e| io(&path, e))?;
        if file.version != VERSION {
            return Err(io(
                &path,
                format!(
                    "written by another longtail version (layout {}, this one reads {VERSION}); \
                     run without --resume to start over",
                    file.version
                ),
            ));
        }
        if file.config_hash != config_hash {
            return Err(TrainError::Config {
                key: "--resume".into(),
                message: format!(
                    "the checkpoint in {} is of a different config (hash {}, this run's is {}); \
                     resume with the config and overrides that started it, or run without \
                     --resume to start over",
                    dir.display(),
                    file.config_hash,
                    config_hash
                ),
            });
        }
        Ok(Some(Self::with(dir, config_hash, file.calls)))
    }

    fn with(dir: &Path, config_hash: &str, saved: Vec<CallRecord>) -> Self {
        let crash_after = std::env::var(CRASH_AFTER_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        Self {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                file: StateFile {
                    version: VERSION,
                    config_hash: config_hash.into(),
                    calls: Vec::new(),
                },
                saved,
                next_call: 0,
                epochs_saved: 0,
            }),
            crash_after,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many fit calls the folder held when the run started (0 for a fresh run).
    pub fn saved_calls(&self) -> usize {
        self.lock().saved.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the next fit call of the run: its index and what was saved of it.
    pub(crate) fn begin(&self, phase: &str) -> Result<(usize, CallStart)> {
        let mut inner = self.lock();
        let call = inner.next_call;
        inner.next_call += 1;
        let Some(rec) = inner.saved.get(call).cloned() else {
            return Ok((call, CallStart::Fresh));
        };
        if rec.phase != phase {
            return Err(io(
                &self.dir,
                format!(
                    "fit call {call} was phase '{}' when saved and is '{phase}' now: the run does \
                     not replay as it ran (run without --resume to start over)",
                    rec.phase
                ),
            ));
        }
        let path = self.dir.join(&rec.tensors);
        let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
            .map_err(|e| io(&path, e))?
            .into_iter()
            .collect();
        // The record stays the run's, as saved, until this call checkpoints again.
        inner.file.calls.push(rec.clone());
        let restored = Restored {
            logs: rec.logs.iter().map(SavedLog::log).collect(),
            best: rec.best.map(|(v, e)| (v.get(), e)),
            adam_steps: rec.adam_steps.clone(),
            tensors,
        };
        Ok((
            call,
            if rec.finished {
                CallStart::Finished(restored)
            } else {
                CallStart::Partial(restored)
            },
        ))
    }

    /// Checkpoints call `call` (after an epoch, or `finished` when it returns).
    pub(crate) fn save(&self, call: usize, s: CallState) -> Result<()> {
        let epochs = s.logs.len();
        let name = if s.finished {
            format!("call{call}-final.safetensors")
        } else {
            format!("call{call}-epoch{epochs}.safetensors")
        };
        let mut named: Vec<(String, Tensor)> = Vec::new();
        let cpu = |t: &Tensor| t.to_device(tch::Device::Cpu).contiguous();
        for (n, t) in &s.model {
            named.push((format!("model/{n}"), cpu(t)));
        }
        if let Some((_, _, snap)) = s.best {
            for (n, t) in snap {
                named.push((format!("best/{n}"), cpu(t)));
            }
        }
        if let Some((_, tensors)) = &s.adam {
            for (n, t) in tensors {
                named.push((n.clone(), cpu(t)));
            }
        }
        for (n, t) in &s.rng {
            named.push((n.clone(), cpu(t)));
        }
        let path = self.dir.join(&name);
        longtail_data::atomic::write_with_path(&path, |tmp| {
            Tensor::write_safetensors(&named, tmp).map_err(|e| longtail_data::DataError::Output {
                path: self.dir.clone(),
                message: format!(
                    "cannot write the per-epoch checkpoint: {}",
                    os_message(&e.to_string())
                ),
            })
        })?;
        let rec = CallRecord {
            phase: s.phase.into(),
            finished: s.finished,
            logs: s.logs.iter().map(SavedLog::of).collect(),
            best: s.best.map(|(v, e, _)| (v.into(), e)),
            adam_steps: s.adam.map(|(steps, _)| steps).unwrap_or_default(),
            tensors: name.clone(),
        };
        let mut inner = self.lock();
        let old = if call < inner.file.calls.len() {
            Some(std::mem::replace(&mut inner.file.calls[call], rec).tensors)
        } else {
            inner.file.calls.push(rec);
            None
        };
        let bytes = serde_json::to_vec(&inner.file).map_err(|e| io(&self.dir, e))?;
        longtail_data::atomic::write_bytes(&self.dir.join(STATE), &bytes)?;
        if let Some(old) = old.filter(|o| *o != name) {
            let _ = std::fs::remove_file(self.dir.join(old));
        }
        inner.epochs_saved += 1;
        if self.crash_after == Some(inner.epochs_saved) {
            tracing::info!(
                "{CRASH_AFTER_ENV}: aborting after {} checkpointed epochs (crash-injection test)",
                inner.epochs_saved
            );
            std::process::abort();
        }
        Ok(())
    }

    /// Removes the folder (the run is in place, or ended with an error).
    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_the_operating_system_words() {
        let e = "/a/b.safetensors/b.safetensors: IoError(Os { code: 28, kind: StorageFull, \
                 message: \"No space left on device\" })";
        assert_eq!(os_message(e), "No space left on device");
        assert_eq!(os_message("plain"), "plain");
    }

    #[test]
    fn floats_round_trip_exactly_including_nan() {
        let log = EpochLog {
            epoch: 3,
            losses: [("total".to_string(), 0.1 + 0.2)].into(),
            train_wall_s: 1.5,
            eval_wall_s: f64::MIN_POSITIVE,
            samples_per_s: 1e300,
            kept: true,
            valid: [("gauc".to_string(), f64::NAN), ("auc".to_string(), 0.7)].into(),
        };
        let text = serde_json::to_string(&SavedLog::of(&log)).unwrap();
        let back: SavedLog = serde_json::from_str(&text).unwrap();
        let l = back.log();
        assert_eq!(l.losses["total"].to_bits(), (0.1f64 + 0.2).to_bits());
        assert!(l.valid["gauc"].is_nan());
        assert_eq!(l.valid["auc"], 0.7);
        assert_eq!(l.samples_per_s, 1e300);
        assert!(l.kept);
    }

    #[test]
    fn a_checkpoint_of_another_config_is_refused_naming_the_flag() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".run.resume");
        let ck = Checkpoints::start(&dir, "aaaa").unwrap();
        let (call, start) = ck.begin("train").unwrap();
        assert!(matches!(start, CallStart::Fresh));
        let w = Tensor::from_slice(&[1.0f32, 2.0]);
        ck.save(
            call,
            CallState {
                phase: "train",
                finished: false,
                logs: &[],
                best: None,
                adam: None,
                model: vec![("w".into(), w.shallow_clone())],
                rng: vec![],
            },
        )
        .unwrap();
        let e = Checkpoints::open(&dir, "bbbb").err().unwrap().to_string();
        assert!(
            e.contains("--resume") && e.contains("different config"),
            "{e}"
        );
        let again = Checkpoints::open(&dir, "aaaa").unwrap().unwrap();
        assert_eq!(again.saved_calls(), 1);
        let (_, start) = again.begin("train").unwrap();
        let CallStart::Partial(r) = start else {
            panic!("expected the interrupted call");
        };
        assert!(r.tensors["model/w"].equal(&w));
        // Replaying a different schedule is refused.
        let other = Checkpoints::open(&dir, "aaaa").unwrap().unwrap();
        let e = other.begin("stage1").err().unwrap().to_string();
        assert!(e.contains("does not replay"), "{e}");
        assert!(Checkpoints::open(&tmp.path().join("none"), "aaaa")
            .unwrap()
            .is_none());
    }
}
