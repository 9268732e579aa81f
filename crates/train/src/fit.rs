//! The one epoch loop of every run ([`fit`]): a [`Task`]'s batches built ahead on another
//! thread, one [`TrainStep`] per batch through [`Optimizer::update`], loss terms summed on the
//! device and read every `log_every` steps, a non-finite loss stopped at the next read, validation
//! after each epoch, early stopping in the metric's direction, a progress bar with ETA, per-epoch
//! wall times, and a live per-epoch log ([`Journal`], `RUN/epochs.jsonl`).

use crate::error::{Result, TrainError};
use crate::resume::{CallStart, CallState, Checkpoints};
use crate::step::{Optimizer, TrainStep};
use crate::task::Task;
use crate::trainer::{EpochLog, LrSchedule, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use longtail_core::{DeviceBatch, Instance};
use longtail_data::batch::prefetch_batches;
use longtail_eval::{Direction, Metrics};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// A copy of every named parameter (early stopping keeps the best epoch's).
pub(crate) type Snapshot = Vec<(String, Tensor)>;

/// Training batches built ahead of the step by the prefetch thread.
const PREFETCH: usize = 4;

/// One call of [`fit`]: a training phase.
#[derive(Clone)]
pub struct Fit<'a> {
    /// The phase's name in logs and `epochs.jsonl` (`train`, `stage1`, `wake2`, `calibration`).
    pub phase: String,
    /// Batch sizes, lr, loss weights, logging, early stopping.
    pub train: &'a TrainConfig,
    /// Most epochs of this phase (early stopping may end it sooner).
    pub epochs: usize,
    /// Variables whose names start with one of these are not trained in this phase.
    pub frozen: Vec<String>,
    /// The starting parameters compete too: validated first and kept when no epoch beats them
    /// (with early stopping; PIN's stage 2, IDW's calibration).
    pub keep_start: bool,
    /// The phase's seed (batch orders derive from it and the epoch).
    pub seed_base: u64,
    pub device: Device,
    /// Where each epoch's line goes as soon as it ends.
    pub journal: Option<&'a Journal>,
    /// An optimizer shared with other calls (IDW's wake phases keep Adam's moments across
    /// phases); `None` builds a fresh one from `train` for this call. Its state is saved with the
    /// call's final checkpoint, so a resumed run hands the next call the same moments.
    pub optimizer: Option<&'a RefCell<Optimizer>>,
}

impl<'a> Fit<'a> {
    /// `train.epochs` epochs of phase `phase`, nothing frozen, no start baseline, no journal.
    pub fn new(phase: &str, train: &'a TrainConfig, seed_base: u64, device: Device) -> Self {
        Self {
            phase: phase.into(),
            train,
            epochs: train.epochs,
            frozen: Vec::new(),
            keep_start: false,
            seed_base,
            device,
            journal: None,
            optimizer: None,
        }
    }
}

/// Trains `model` on `task` with `step` for up to `spec.epochs` epochs, validating after each.
/// Returns the epoch logs; the model ends with the kept parameters (the best epoch's under early
/// stopping, else the last).
pub fn fit(
    model: &mut Instance,
    task: &dyn Task,
    step: &mut dyn TrainStep,
    spec: &Fit,
) -> Result<Vec<EpochLog>> {
    spec.train.validate()?;
    if model.task() != task.kind() {
        let message = match task.kind() {
            longtail_core::Task::Retrieval => format!(
                "[sequences] runs need a retrieval model; '{}' is a CTR model (remove \
                 [sequences] to train it on CTR samples)",
                model.name()
            ),
            longtail_core::Task::Ctr => format!(
                "'{}' is a retrieval model and CTR runs need a CTR model (add [sequences] to \
                 train it on next-item sequences)",
                model.name()
            ),
        };
        return Err(TrainError::Config {
            key: "model.name".into(),
            message,
        });
    }
    // Freeze by name: a frozen variable gets no gradient, so Adam leaves it alone.
    let frozen: Vec<Tensor> = model
        .vs()
        .variables()
        .into_iter()
        .filter(|(name, t)| {
            t.requires_grad() && spec.frozen.iter().any(|p| name.starts_with(p.as_str()))
        })
        .map(|(_, t)| t)
        .collect();
    for t in &frozen {
        let _ = t.shallow_clone().requires_grad_(false);
    }
    let out = fit_epochs(model, task, step, spec);
    for t in &frozen {
        let _ = t.shallow_clone().requires_grad_(true);
    }
    out
}

fn fit_epochs(
    model: &mut Instance,
    task: &dyn Task,
    step: &mut dyn TrainStep,
    spec: &Fit,
) -> Result<Vec<EpochLog>> {
    let cfg = spec.train;
    let device = spec.device;
    let mut shared = spec.optimizer.map(RefCell::borrow_mut);
    let mut own = None;
    let opt: &mut Optimizer = match shared.as_deref_mut() {
        Some(o) => o,
        None => own.insert(Optimizer::from_config(model, cfg)?),
    };
    // Not `with_capacity(epochs)`: the count is the user's, early stopping usually ends sooner.
    let mut logs = Vec::new();
    let mut stopper = EarlyStopping::new(cfg);
    let metric = &cfg.early_stopping_metric;
    let ck = spec.journal.and_then(Journal::checkpoints);
    let (call, start) = match ck {
        Some(c) => {
            let (i, s) = c.begin(&spec.phase)?;
            (Some(i), s)
        }
        None => (None, CallStart::Fresh),
    };
    let mut first_epoch = 1;
    match start {
        CallStart::Finished(r) => {
            // Trained before the run was interrupted: its kept parameters, its logs and the
            // generator as it was when the call returned.
            load_vars(model, &r.tensors, "model/")?;
            if spec.optimizer.is_some() {
                opt.opt.load_state(&r.adam_steps, &r.tensors)?;
            }
            restore_rng(&r.tensors, device)?;
            replay_journal(spec, &r.logs)?;
            if cfg.progress {
                tracing::info!(
                    "{}: restored from the checkpoint ({} epochs)",
                    spec.phase,
                    r.logs.len()
                );
            }
            return Ok(r.logs);
        }
        CallStart::Partial(r) => {
            load_vars(model, &r.tensors, "model/")?;
            opt.opt.load_state(&r.adam_steps, &r.tensors)?;
            if let Some((v, e)) = r.best {
                stopper.best = Some((v, e, saved_vars(model, &r.tensors, "best/")?));
            }
            replay_journal(spec, &r.logs)?;
            restore_rng(&r.tensors, device)?;
            first_epoch = r.logs.len() + 1;
            if cfg.progress {
                tracing::info!(
                    "{}: resuming after epoch {} from the checkpoint",
                    spec.phase,
                    r.logs.len()
                );
            }
            logs = r.logs;
        }
        CallStart::Fresh => {
            if spec.keep_start && cfg.early_stopping_patience > 0 {
                let v = task.validate(model, cfg.eval_batch_size, device, cfg.progress)?;
                if let Some(start) = v.get(metric).copied().filter(|x| x.is_finite()) {
                    if cfg.progress {
                        tracing::info!("{}: start: valid {metric} {start:.4}", spec.phase);
                    }
                    stopper = stopper.with_baseline(model, Some(start));
                }
            }
        }
    }
    let label = |epoch: usize| {
        if spec.phase == "train" {
            format!("epoch {epoch}/{}", spec.epochs)
        } else {
            format!("{} epoch {epoch}/{}", spec.phase, spec.epochs)
        }
    };
    for epoch in first_epoch..=spec.epochs {
        let source = task.train_batches(epoch, cfg.batch_size, spec.seed_base)?;
        let pb = progress_bar(cfg.progress, source.num_batches() as u64, &label(epoch));
        let start = Instant::now();
        // Sums stay on the device (in f64, weighted by the batch's real rows): no host sync
        // inside the step.
        let mut sums: Vec<(String, Tensor)> = Vec::new();
        let mut total_sum = Tensor::zeros([], (Kind::Double, device));
        let mut seen = 0usize;
        let mut steps = 0usize;
        let mut watch = LossWatch::new(device, cfg.lr);
        let per_epoch = source.num_batches();
        prefetch_batches(source.as_ref(), PREFETCH, |host| -> Result<()> {
            let mut batch = DeviceBatch::from_host(&host, device)?;
            if cfg.lr_schedule != LrSchedule::Constant {
                let global = (epoch - 1) * per_epoch + steps;
                opt.set_lr(
                    cfg.lr_schedule
                        .lr_at(cfg.lr, global, epoch, spec.epochs * per_epoch),
                );
            }
            let out = opt.update(step, model, &mut batch, &host)?;
            watch.observe(&out.total, &out.terms);
            let n = host.valid as f64;
            seen += host.valid;
            tch::no_grad(|| {
                total_sum += out.total.to_kind(Kind::Double) * n;
                for (name, t) in &out.terms {
                    let t = t.to_kind(Kind::Double) * n;
                    match sums.iter_mut().find(|(s, _)| s == name) {
                        Some((_, acc)) => *acc += t,
                        None => sums.push((name.clone(), t)),
                    }
                }
            });
            pb.inc(1);
            steps += 1;
            if steps % cfg.log_every == 0 {
                watch.check(epoch)?;
                pb.set_message(format!(
                    "loss {:.4}",
                    total_sum.double_value(&[]) / seen.max(1) as f64
                ));
            }
            Ok(())
        })?;
        watch.check(epoch)?;
        let train_wall_s = start.elapsed().as_secs_f64();
        pb.finish_and_clear();
        let mut losses: BTreeMap<String, f64> = sums
            .iter()
            .map(|(n, t)| (n.clone(), t.double_value(&[]) / seen.max(1) as f64))
            .collect();
        let total = total_sum.double_value(&[]) / seen.max(1) as f64;
        losses.insert("total".into(), total);
        let eval_start = Instant::now();
        let valid = task.validate(model, cfg.eval_batch_size, device, cfg.progress)?;
        let log = EpochLog {
            epoch,
            losses,
            train_wall_s,
            eval_wall_s: eval_start.elapsed().as_secs_f64(),
            samples_per_s: seen as f64 / train_wall_s.max(1e-9),
            kept: false,
            valid,
        };
        if cfg.progress {
            let m = log
                .valid
                .get(metric)
                .map(|a| format!(" valid {metric} {a:.4}"))
                .unwrap_or_default();
            tracing::info!(
                "{}: loss {total:.4}{m}  ({train_wall_s:.1}s train, {:.0} samples/s)",
                label(epoch),
                log.samples_per_s
            );
        }
        if let Some(j) = spec.journal {
            j.record(&spec.phase, &log)?;
        }
        let stop = stopper.observe(model, &log, cfg.progress)?;
        logs.push(log);
        if stop {
            break;
        }
        // The last epoch's checkpoint is the call's final one, below.
        if let (Some(c), Some(i), true) = (ck, call, epoch < spec.epochs) {
            c.save(
                i,
                CallState {
                    phase: &spec.phase,
                    finished: false,
                    logs: &logs,
                    best: stopper.best.as_ref().map(|(v, e, s)| (*v, *e, s)),
                    adam: Some(opt.opt.state()),
                    model: named_vars(model),
                    rng: rng_tensors(device)?,
                },
            )?;
        }
    }
    stopper.finish(model, &mut logs);
    if let (Some(c), Some(i)) = (ck, call) {
        c.save(
            i,
            CallState {
                phase: &spec.phase,
                finished: true,
                logs: &logs,
                best: None,
                // A shared optimizer lives on into the next call, which must resume from it.
                adam: spec.optimizer.is_some().then(|| opt.opt.state()),
                model: named_vars(model),
                rng: rng_tensors(device)?,
            },
        )?;
    }
    Ok(logs)
}

/// Writes a restored phase's epoch lines into this run's `epochs.jsonl` again.
fn replay_journal(spec: &Fit, logs: &[EpochLog]) -> Result<()> {
    if let Some(j) = spec.journal {
        for l in logs {
            j.record(&spec.phase, l)?;
        }
    }
    Ok(())
}

/// The model's variables by name, sorted (a checkpoint's `model/...`).
fn named_vars(model: &Instance) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = model.vs().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The default generators' states: the CPU's, and the run device's when it is a GPU.
fn rng_tensors(device: Device) -> Result<Vec<(String, Tensor)>> {
    let mut v = vec![(
        "rng/cpu".to_string(),
        longtail_core::state::rng_state(Device::Cpu)?,
    )];
    if device.is_cuda() {
        v.push(("rng/cuda".into(), longtail_core::state::rng_state(device)?));
    }
    Ok(v)
}

fn restore_rng(tensors: &HashMap<String, Tensor>, device: Device) -> Result<()> {
    if let Some(t) = tensors.get("rng/cpu") {
        longtail_core::state::set_rng_state(Device::Cpu, t)?;
    }
    if let (true, Some(t)) = (device.is_cuda(), tensors.get("rng/cuda")) {
        longtail_core::state::set_rng_state(device, t)?;
    }
    Ok(())
}

/// Every variable of the model from `prefix<name>` in a checkpoint (all must be there, with
/// their shapes).
fn saved_vars(
    model: &Instance,
    tensors: &HashMap<String, Tensor>,
    prefix: &str,
) -> Result<Snapshot> {
    let mut out = Vec::new();
    for (name, t) in named_vars(model) {
        let key = format!("{prefix}{name}");
        let saved = tensors.get(&key).ok_or_else(|| TrainError::Config {
            key: "--resume".into(),
            message: format!(
                "the checkpoint lacks '{key}' of model '{}' (was it written by another model \
                 or version? run without --resume to start over)",
                model.name()
            ),
        })?;
        if saved.size() != t.size() {
            return Err(TrainError::Config {
                key: "--resume".into(),
                message: format!(
                    "the checkpoint's '{key}' has shape {:?}, the model's {:?}",
                    saved.size(),
                    t.size()
                ),
            });
        }
        out.push((name, saved.to_device(t.device()).to_kind(t.kind())));
    }
    Ok(out)
}

fn load_vars(model: &Instance, tensors: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
    let snap = saved_vars(model, tensors, prefix)?;
    restore(model, &snap);
    Ok(())
}

/// One line of `epochs.jsonl`.
#[derive(Serialize)]
struct JournalLine<'a> {
    phase: &'a str,
    epoch: usize,
    losses: &'a BTreeMap<String, f64>,
    valid: &'a Metrics,
    train_wall_s: f64,
    eval_wall_s: f64,
    samples_per_s: f64,
}

/// The live per-epoch log of a run (`epochs.jsonl`): one JSON line per epoch and phase, written
/// and flushed when the epoch ends, so a long run can be watched (`tail -f`) and plotted while it
/// trains. Which epoch was kept is in `run.json` at the end.
pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    /// Where every fit call of the run checkpoints ([`crate::resume`]), when it does.
    checkpoints: Option<Checkpoints>,
}

impl Journal {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|e| TrainError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            checkpoints: None,
        })
    }

    /// Every [`fit`] given this journal checkpoints each epoch into `c` and, when `c` holds an
    /// interrupted run, replays it from there.
    pub fn with_checkpoints(mut self, c: Checkpoints) -> Self {
        self.checkpoints = Some(c);
        self
    }

    pub fn checkpoints(&self) -> Option<&Checkpoints> {
        self.checkpoints.as_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one epoch's line and flushes it.
    pub fn record(&self, phase: &str, log: &EpochLog) -> Result<()> {
        let line = JournalLine {
            phase,
            epoch: log.epoch,
            losses: &log.losses,
            valid: &log.valid,
            train_wall_s: log.train_wall_s,
            eval_wall_s: log.eval_wall_s,
            samples_per_s: log.samples_per_s,
        };
        let mut text = serde_json::to_string(&line).map_err(|e| TrainError::Config {
            key: "epochs.jsonl".into(),
            message: e.to_string(),
        })?;
        text.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(text.as_bytes())
            .and_then(|_| f.flush())
            .map_err(|e| TrainError::Io {
                path: self.path.clone(),
                source: e,
            })
    }
}

/// Watches every step's loss for a non-finite value without a host sync inside the step: the
/// first bad step and the loss terms at that step stay on the device and are read by
/// [`LossWatch::check`] at the loop's read points (every `log_every` steps, the end of an epoch).
pub(crate) struct LossWatch {
    /// Steps observed so far (on the device, so the step number needs no host copy).
    step: Tensor,
    /// The first step whose total was not finite; `i64::MAX` while none was.
    first_bad: Tensor,
    /// `[total, term...]` at the first bad step.
    at_bad: Option<Tensor>,
    names: Vec<String>,
    lr: f64,
}

impl LossWatch {
    pub(crate) fn new(device: Device, lr: f64) -> Self {
        Self {
            step: Tensor::zeros([], (Kind::Int64, device)),
            first_bad: Tensor::full([], i64::MAX, (Kind::Int64, device)),
            at_bad: None,
            names: Vec::new(),
            lr,
        }
    }

    /// Records one step's weighted total and its terms (device ops only).
    pub(crate) fn observe(&mut self, total: &Tensor, terms: &[(String, Tensor)]) {
        tch::no_grad(|| {
            let _ = self.step.g_add_scalar_(1);
            let total = total.detach().to_kind(Kind::Float).reshape([1]);
            let mut parts = vec![total.shallow_clone()];
            parts.extend(
                terms
                    .iter()
                    .map(|(_, t)| t.detach().to_kind(Kind::Float).reshape([1])),
            );
            let now = Tensor::cat(&parts, 0);
            let bad = total
                .isfinite()
                .logical_not()
                .squeeze()
                .logical_and(&self.first_bad.eq(i64::MAX));
            if self.names.is_empty() || self.names.len() + 1 != now.size()[0] as usize {
                self.names = terms.iter().map(|(n, _)| n.clone()).collect();
                self.at_bad = None;
            }
            self.at_bad = Some(match &self.at_bad {
                Some(prev) => now.where_self(&bad, prev),
                None => now.where_self(&bad, &Tensor::full_like(&now, f64::NAN)),
            });
            self.first_bad = self.step.where_self(&bad, &self.first_bad);
        });
    }

    /// Fails with the epoch, the step (1-based, counted from the watch's start: make one per
    /// epoch), the loss terms at that step and a hint when a non-finite loss was observed.
    pub(crate) fn check(&self, epoch: usize) -> Result<()> {
        let first = self.first_bad.int64_value(&[]);
        if first == i64::MAX {
            return Ok(());
        }
        let values: Vec<f64> = self
            .at_bad
            .as_ref()
            .and_then(|t| Vec::<f64>::try_from(t.to_kind(Kind::Double).to_device(Device::Cpu)).ok())
            .unwrap_or_default();
        let mut terms: Vec<String> = Vec::new();
        if let Some(t) = values.first() {
            terms.push(format!("total = {t}"));
        }
        for (n, v) in self.names.iter().zip(values.iter().skip(1)) {
            terms.push(format!("{n} = {v}"));
        }
        Err(TrainError::Diverged {
            epoch,
            step: first.max(0) as usize,
            terms: terms.join(", "),
            hint: format!(
                "lower train.lr (now {}), check train.loss_weights, and look for extreme values in \
                 the data; no run folder was written",
                self.lr
            ),
        })
    }
}

/// Early stopping on a validation metric in its [`Direction`]: remembers the best epoch's
/// parameters and restores them at the end.
pub(crate) struct EarlyStopping {
    metric: String,
    direction: Direction,
    patience: usize,
    /// (best value, its epoch, its parameters); epoch 0 = the starting point.
    best: Option<(f64, usize, Snapshot)>,
}

impl EarlyStopping {
    pub(crate) fn new(cfg: &TrainConfig) -> Self {
        Self {
            metric: cfg.early_stopping_metric.clone(),
            direction: Direction::of_key(&cfg.early_stopping_metric),
            patience: cfg.early_stopping_patience,
            best: None,
        }
    }

    /// Makes the current parameters, whose validation value is `v`, the one to beat ("epoch 0").
    pub(crate) fn with_baseline(mut self, model: &Instance, v: Option<f64>) -> Self {
        if let (Some(v), true) = (v, self.patience > 0) {
            self.best = Some((v, 0, snapshot(model)));
        }
        self
    }

    /// Records an epoch; true when training should stop.
    pub(crate) fn observe(
        &mut self,
        model: &Instance,
        log: &EpochLog,
        progress: bool,
    ) -> Result<bool> {
        if self.patience == 0 {
            return Ok(false);
        }
        let Some(v) = log
            .valid
            .get(&self.metric)
            .copied()
            .filter(|v| v.is_finite())
        else {
            return Err(TrainError::Config {
                key: "train.early_stopping_metric".into(),
                message: format!(
                    "validation has no finite '{}' (is the valid split empty? CTR runs report \
                     auc, gauc, logloss; retrieval runs hr@5, hr@20, ndcg@5, ndcg@20, mrr@20, auc)",
                    self.metric
                ),
            });
        };
        let epoch = log.epoch;
        if self
            .best
            .as_ref()
            .is_none_or(|(b, _, _)| self.direction.better(v, *b))
        {
            // A copy of every parameter, restored if later epochs do not beat it.
            self.best = Some((v, epoch, snapshot(model)));
            return Ok(false);
        }
        let (b, e) = self.best.as_ref().map_or((f64::NAN, 0), |x| (x.0, x.1));
        if epoch - e >= self.patience {
            if progress {
                tracing::info!(
                    "early stopping after epoch {epoch}: best valid {} {b:.4} at epoch {e}",
                    self.metric
                );
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Restores the best parameters and marks their epoch `kept` (the last epoch without early
    /// stopping; none when the starting point was best).
    pub(crate) fn finish(self, model: &Instance, logs: &mut [EpochLog]) {
        match self.best {
            Some((_, epoch, snap)) => {
                restore(model, &snap);
                if let Some(l) = logs.iter_mut().find(|l| l.epoch == epoch) {
                    l.kept = true;
                }
            }
            None => {
                if let Some(l) = logs.last_mut() {
                    l.kept = true;
                }
            }
        }
    }
}

/// A copy of every variable of the model (early stopping keeps the best epoch's).
pub(crate) fn snapshot(model: &Instance) -> Snapshot {
    tch::no_grad(|| {
        model
            .vs()
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect()
    })
}

/// Writes a [`snapshot`] back into the model's variables.
pub(crate) fn restore(model: &Instance, snap: &Snapshot) {
    let vars = model.vs().variables();
    tch::no_grad(|| {
        for (name, saved) in snap {
            if let Some(t) = vars.get(name) {
                let mut t = t.shallow_clone();
                t.copy_(saved);
            }
        }
    });
}

pub(crate) fn progress_bar(show: bool, len: u64, prefix: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(prefix.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each epoch's line is on disk as soon as it is recorded (a run can be watched live), one
    /// JSON object per line.
    #[test]
    fn journal_lines_are_flushed_as_they_are_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("epochs.jsonl");
        let j = Journal::create(&path).unwrap();
        let mut log = EpochLog {
            epoch: 1,
            losses: [("total".to_string(), 0.5)].into(),
            train_wall_s: 1.0,
            eval_wall_s: 0.1,
            samples_per_s: 10.0,
            kept: false,
            valid: [("auc".to_string(), 0.7)].into(),
        };
        j.record("train", &log).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        log.epoch = 2;
        j.record("wake1", &log).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["phase"], "wake1");
        assert_eq!(lines[1]["epoch"], 2);
        assert_eq!(lines[0]["valid"]["auc"], 0.7);
    }
}
