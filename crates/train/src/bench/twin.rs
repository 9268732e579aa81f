//! The PyTorch eager "twin" of a [`StepBench`]: the same model, written the way a researcher
//! writes it in PyTorch (`benches/peers/twin.py`), trained on the same batches from the same
//! initial parameters with the same loss, optimizer and thread count, so the benchmark can time
//! longtail's step as a ratio against it.
//!
//! The twin is checked, not assumed: [`write_twin_inputs`] writes what the twin needs into a
//! folder (all through `longtail_data::atomic`):
//! - `spec.json`: the model name, task, effective params (`Registry::params_info`), feature map,
//!   shape, learning rate, Adam settings, thread count, device, the RNG seed of the reference
//!   steps, the batch fields, every variable's name, shape and trainability, and the loss terms;
//! - `init.safetensors`: every variable of the model's `VarStore` by name, before any step;
//! - `batches.safetensors`: every tensor of every [`DeviceBatch`], named `b{i}.{field}`
//!   (`b{i}.sessions.pos_items`, ... when the batches carry HIM sessions);
//! - `reference.json`: the weighted total and each loss term of the first steps from the initial
//!   parameters (computed on a rebuilt copy of the model, so the bench itself is left untouched).
//!
//! [`Twin`] runs the script as a long-lived child speaking one line per request on stdin and one
//! JSON line per answer on stdout: `reference` (its own first losses from the initial state),
//! `steps N` (N timed steps, the last loss) and `quit`. [`Twin::compare`] pairs the twin's first
//! losses with longtail's.
//!
//! Randomness: dropout is refused (the bench params keep every dropout at 0.0, so no step draws a
//! mask). The models that sample inside a training step (DIEN's auxiliary negatives, HIM's
//! partner rows) draw with `randint` from the global generator; both sides seed it with
//! [`RNG_SEED`] right before the reference steps, and libtorch 2.11 draws the same numbers from
//! C++ and from Python, so even those steps are compared exactly.
//!
//! Use: build the bench, [`write_twin_inputs`] before its first step, [`Twin::start`] on the
//! folder, [`Twin::compare`] (or [`Twin::check`]) once, then alternate [`StepBench::time`] and
//! [`Twin::time`]. The twin uses the thread count of the thread that wrote the inputs
//! (`tch::get_num_threads`, which OpenMP keeps per thread). Where longtail links the venv's own
//! libtorch (`LIBTORCH_USE_PYTORCH`), every twin's losses equal longtail's exactly on the CPU
//! (`crates/cli/tests/it/twins.rs`), except to float rounding where the eager twin writes out a
//! kernel longtail fuses (twotower's attention, [`TwinStyle`]).

use super::step::StepBench;
use crate::error::{Result, TrainError};
use longtail_core::{BuildContext, DeviceBatch, Registry, Task};
use longtail_data::{atomic, DataError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tch::{nn, Device, Kind, Tensor};

/// The twin's description of the model and the step.
pub const SPEC: &str = "spec.json";
/// Every variable of the model before any step.
pub const INIT: &str = "init.safetensors";
/// Every tensor of every batch.
pub const BATCHES: &str = "batches.safetensors";
/// longtail's first losses from the initial parameters.
pub const REFERENCE: &str = "reference.json";
/// Version of the folder's layout (`spec.json`'s `format`).
pub const FORMAT: u32 = 1;
/// Seed of the global generator right before the reference steps, on both sides.
pub const RNG_SEED: i64 = 20_261_201;
/// Lines of the twin's stderr kept for error messages.
const STDERR_TAIL: usize = 40;
/// Below this magnitude two losses compare absolutely in [`rel_diff`].
const REL_FLOOR: f64 = 1e-6;

/// One step's losses: the weighted total (every weight 1.0, as [`StepBench::step`]) and each
/// unweighted term by name. As JSON: `[total, {"term": value, ...}]`.
pub type StepLosses = (f64, BTreeMap<String, f64>);

/// What `reference.json` holds (and what the twin answers to `reference`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub losses: Vec<StepLosses>,
}

/// One variable as `spec.json` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarInfo {
    pub name: String,
    pub shape: Vec<i64>,
    pub dtype: String,
    /// `requires_grad` at writing time: the optimizer's variables; the others (MIND's routing
    /// logits, MFN's fixed embeddings and centers, PIN's phase) are buffers in the twin.
    pub trainable: bool,
}

/// A loss of longtail and the twin at one reference step (`term` is `total` or a term's name).
#[derive(Debug, Clone, PartialEq)]
pub struct LossPair {
    pub step: usize,
    pub term: String,
    pub ours: f64,
    pub twin: f64,
}

impl LossPair {
    pub fn rel_diff(&self) -> f64 {
        rel_diff(self.ours, self.twin)
    }
}

/// `|a - b|` relative to the larger magnitude (magnitudes below 1e-6 count as 1e-6, so two
/// near-zero terms compare absolutely); 0 when equal, infinite when either is not finite.
pub fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    if !a.is_finite() || !b.is_finite() {
        return f64::INFINITY;
    }
    (a - b).abs() / a.abs().max(b.abs()).max(REL_FLOOR)
}

fn twin_err(dir: &Path, model: &str, message: impl std::fmt::Display) -> TrainError {
    TrainError::Input {
        path: dir.to_path_buf(),
        message: format!("benchmark twin of model '{model}': {message}"),
    }
}

fn dtype_name(k: Kind) -> String {
    match k {
        Kind::Float => "float32".into(),
        Kind::Double => "float64".into(),
        Kind::Half => "float16".into(),
        Kind::BFloat16 => "bfloat16".into(),
        Kind::Int64 => "int64".into(),
        Kind::Int => "int32".into(),
        Kind::Bool => "bool".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A host copy that the safetensors writer accepts (CPU, contiguous, detached).
fn host_copy(t: &Tensor) -> Tensor {
    t.detach().to_device(Device::Cpu).contiguous().copy()
}

fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    atomic::write_with_path(path, |p| {
        Tensor::write_safetensors(tensors, p).map_err(|e| DataError::Output {
            path: path.to_path_buf(),
            message: format!("cannot write safetensors: {e}"),
        })
    })?;
    Ok(())
}

/// Every params key naming a dropout must be 0: the twin cannot draw longtail's masks.
fn check_no_dropout(dir: &Path, model: &str, params: &serde_json::Value) -> Result<()> {
    if let Some(map) = params.as_object() {
        for (k, v) in map {
            if k.contains("dropout") && v.as_f64().is_some_and(|p| p != 0.0) {
                return Err(twin_err(
                    dir,
                    model,
                    format!(
                        "params key '{k}' = {v}: a twin needs dropout 0 (its masks cannot be \
                         replayed), as the bench params have"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every tensor of `b` with its field name; sessions as `sessions.{field}` when present.
pub fn batch_fields(b: &DeviceBatch) -> Vec<(&'static str, &Tensor)> {
    let mut v: Vec<(&'static str, &Tensor)> = vec![
        ("user", &b.user),
        ("item", &b.item),
        ("label", &b.label),
        ("weight", &b.weight),
        ("hist", &b.hist),
        ("hist_mask", &b.hist_mask),
        ("hist_len", &b.hist_len),
        ("item_logq", &b.item_logq),
        ("user_group", &b.user_group),
    ];
    if let Some(s) = &b.sessions {
        v.push(("sessions.pos_items", &s.pos_items));
        v.push(("sessions.pos_counts", &s.pos_counts));
        v.push(("sessions.neg_items", &s.neg_items));
        v.push(("sessions.neg_counts", &s.neg_counts));
    }
    v
}

/// longtail's first `steps` losses from the bench's initial parameters, on a rebuilt copy of the
/// model (same feature map, params and device; variables copied from the bench, `requires_grad`
/// too) with a fresh Adam, the global generator seeded with [`RNG_SEED`]. The bench is not
/// stepped; the global generator is left reseeded.
pub fn reference_losses(
    bench: &StepBench,
    registry: &Registry,
    steps: usize,
) -> Result<Vec<StepLosses>> {
    let name = bench.model.name();
    let ctx = BuildContext::new(&bench.feature_map, &bench.params, bench.device);
    let mut copy = registry.build(name, &ctx)?;
    copy.vs_mut().copy(bench.model.vs())?;
    let src = bench.model.vs().variables();
    for (n, t) in copy.vs().variables() {
        if let Some(s) = src.get(&n) {
            if s.requires_grad() != t.requires_grad() {
                let _ = t.set_requires_grad(s.requires_grad());
            }
        }
    }
    // The same step as the bench's and every run's.
    let mut opt = crate::step::Optimizer::adam(&copy, bench.shape.lr)?;
    let mut step = crate::step::StandardStep::default();
    tch::manual_seed(RNG_SEED);
    let mut out = Vec::with_capacity(steps);
    for k in 0..steps {
        let i = k % bench.batches.len();
        let mut b = DeviceBatch::from_host(&bench.hosts[i], bench.device)?;
        let s = opt.update(&mut step, &copy, &mut b, &bench.hosts[i])?;
        let terms = s
            .terms
            .iter()
            .map(|(n, t)| (n.clone(), t.double_value(&[])))
            .collect();
        out.push((s.total.double_value(&[]), terms));
    }
    Ok(out)
}

/// Writes the twin's inputs for `bench` into `dir` (created if missing): `spec.json`,
/// `init.safetensors`, `batches.safetensors` and `reference.json` with `reference_steps`
/// steps (see the module header). The bench must not have stepped yet (its variables are the
/// initial parameters) and is left as it was; call this before timing it.
pub fn write_twin_inputs(
    bench: &StepBench,
    registry: &Registry,
    dir: &Path,
    reference_steps: usize,
) -> Result<()> {
    let name = bench.model.name().to_string();
    if bench.steps_taken() > 0 {
        return Err(twin_err(
            dir,
            &name,
            format!(
                "the bench has already taken {} steps; write the twin inputs before timing it \
                 (init.safetensors must hold the initial parameters)",
                bench.steps_taken()
            ),
        ));
    }
    if reference_steps == 0 {
        return Err(twin_err(dir, &name, "reference_steps must be at least 1"));
    }
    let info = registry.params_info(&name, &bench.params)?;
    check_no_dropout(dir, &name, &info.effective)?;
    std::fs::create_dir_all(dir).map_err(|e| crate::error::io(dir, e))?;

    // The initial parameters, before anything steps.
    let mut vars: Vec<(String, Tensor)> = bench.model.vs().variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let var_info: Vec<VarInfo> = vars
        .iter()
        .map(|(n, t)| VarInfo {
            name: n.clone(),
            shape: t.size(),
            dtype: dtype_name(t.kind()),
            trainable: t.requires_grad(),
        })
        .collect();
    let init: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(n, t)| (n.clone(), host_copy(t)))
        .collect();

    let mut tensors = Vec::new();
    let mut fields: Vec<&str> = Vec::new();
    let mut rows = Vec::new();
    for (i, b) in bench.batches.iter().enumerate() {
        let f = batch_fields(b);
        if i == 0 {
            fields = f.iter().map(|(n, _)| *n).collect();
        } else if f.len() != fields.len() {
            return Err(twin_err(
                dir,
                &name,
                "the batches do not all carry the same fields",
            ));
        }
        for (field, t) in f {
            tensors.push((format!("b{i}.{field}"), host_copy(t)));
        }
        rows.push(serde_json::json!({ "size": b.size, "valid": b.valid }));
    }

    let reference = reference_losses(bench, registry, reference_steps)?;
    for (step, (total, terms)) in reference.iter().enumerate() {
        if !total.is_finite() || terms.values().any(|v| !v.is_finite()) {
            return Err(twin_err(
                dir,
                &name,
                format!(
                    "longtail's loss is not finite at reference step {step}: {total} {terms:?}"
                ),
            ));
        }
    }
    let got: Vec<&str> = reference[0].1.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = info.loss_terms.iter().map(String::as_str).collect();
    want.sort_unstable();
    if got != want {
        return Err(twin_err(
            dir,
            &name,
            format!("the model returned loss terms {got:?}, its params declare {want:?}"),
        ));
    }

    let adam = nn::Adam::default();
    let spec = serde_json::json!({
        "format": FORMAT,
        "model": name,
        "task": match bench.task {
            Task::Ctr => "ctr",
            Task::Retrieval => "retrieval",
        },
        "params": info.effective,
        "loss_terms": info.loss_terms,
        "loss": "the unweighted sum of the loss terms (every weight 1.0), as StepBench::step",
        "feature_map": bench.feature_map,
        "shape": bench.shape,
        "lr": bench.shape.lr,
        "adam": {
            "betas": [adam.beta1, adam.beta2],
            "eps": adam.eps,
            "weight_decay": adam.wd,
            "amsgrad": adam.amsgrad,
        },
        "threads": tch::get_num_threads(),
        "device": longtail_core::device::device_name(bench.device),
        "rng_seed": RNG_SEED,
        "dropout": "none: every dropout of the bench params is 0.0 (checked), so no step draws a \
                    mask; randint draws (DIEN negatives, HIM partners) follow rng_seed",
        "batch_fields": fields,
        "batches": rows,
        "variables": var_info,
        "reference_steps": reference_steps,
        "files": { "init": INIT, "batches": BATCHES, "reference": REFERENCE },
    });
    write_safetensors(&dir.join(INIT), &init)?;
    write_safetensors(&dir.join(BATCHES), &tensors)?;
    atomic::write_json(&dir.join(REFERENCE), &Reference { losses: reference }, true)?;
    // The spec last: a folder with a spec is complete.
    atomic::write_json(&dir.join(SPEC), &spec, true)?;
    Ok(())
}

/// longtail's reference losses as written in `dir/reference.json`.
pub fn read_reference(dir: &Path) -> Result<Vec<StepLosses>> {
    let path = dir.join(REFERENCE);
    let bytes = std::fs::read(&path).map_err(|e| crate::error::io(&path, e))?;
    let r: Reference = serde_json::from_slice(&bytes).map_err(|e| TrainError::Input {
        path: path.clone(),
        message: format!("not a twin reference: {e}"),
    })?;
    Ok(r.losses)
}

/// The twin script of this checkout (`benches/peers/twin.py`).
pub fn twin_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/peers/twin.py")
}

/// A running twin (`python benches/peers/twin.py --dir DIR`). Dropping it sends `quit` and waits
/// briefly for the child, killing it if it does not exit.
pub struct Twin {
    model: String,
    dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    threads: Vec<JoinHandle<()>>,
    reference: Vec<StepLosses>,
    /// How long one answer (loading included) may take before the twin counts as hung.
    pub timeout: Duration,
}

/// How the twin writes the model (`twin.py --style`; `benches/peers/twin_models.py::build`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwinStyle {
    /// The model's equations written out (the attention softmax, eq. 4's softmax over the last
    /// axis), whatever kernel longtail's params choose: what a researcher transcribes.
    Eager,
    /// What a PyTorch user tuning the step writes: fused attention where longtail's params say
    /// `attention = "fused"`, eq. 4 in the product's layout. Only the models of [`LEAN_TWINS`].
    Lean,
}

impl TwinStyle {
    /// The word of `--style` (and of the figures' peer: `pytorch-eager`, `pytorch-lean`).
    pub fn word(self) -> &'static str {
        match self {
            TwinStyle::Eager => "eager",
            TwinStyle::Lean => "lean",
        }
    }
}

/// The models with a [`TwinStyle::Lean`] twin (`LEAN` in `benches/peers/twin_models.py`).
pub const LEAN_TWINS: [&str; 1] = ["twotower"];

impl Twin {
    /// Starts the twin of the inputs in `dir` with the `python` on `PATH` (the torch venv).
    pub fn start(dir: &Path) -> Result<Twin> {
        Self::start_as(dir, TwinStyle::Eager)
    }

    /// [`Twin::start`] with the twin written in `style`.
    pub fn start_as(dir: &Path, style: TwinStyle) -> Result<Twin> {
        Self::start_styled(Path::new("python"), &twin_script(), dir, style)
    }

    /// Starts `python script --dir DIR` (the eager style) and waits until it has loaded (its
    /// `ready` line).
    pub fn start_with(python: &Path, script: &Path, dir: &Path) -> Result<Twin> {
        Self::start_styled(python, script, dir, TwinStyle::Eager)
    }

    /// Starts `python script --dir DIR --style STYLE` and waits until it has loaded.
    pub fn start_styled(
        python: &Path,
        script: &Path,
        dir: &Path,
        style: TwinStyle,
    ) -> Result<Twin> {
        let spec_path = dir.join(SPEC);
        let bytes = std::fs::read(&spec_path).map_err(|e| crate::error::io(&spec_path, e))?;
        let spec: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| TrainError::Input {
                path: spec_path.clone(),
                message: format!("not a twin spec: {e}"),
            })?;
        let model = spec["model"].as_str().unwrap_or("?").to_string();
        let reference = read_reference(dir)?;
        let mut child = Command::new(python)
            .arg(script)
            .arg("--dir")
            .arg(dir)
            .args(["--style", style.word()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                twin_err(
                    dir,
                    &model,
                    format!(
                        "cannot start {} {}: {e} (is the torch venv's python on PATH? \
                         eval \"$(scripts/setup-libtorch --print-env)\")",
                        python.display(),
                        script.display()
                    ),
                )
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        let out_thread = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let end = line.is_err();
                if tx.send(line).is_err() || end {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr);
        let err_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let mut twin = Twin {
            model,
            dir: dir.to_path_buf(),
            child,
            stdin,
            lines,
            stderr,
            threads: vec![out_thread, err_thread],
            reference,
            timeout: Duration::from_secs(600),
        };
        let ready = twin.answer("loading")?;
        if ready.get("ready").and_then(|v| v.as_bool()) != Some(true) {
            return Err(twin.fail(format!("expected a ready line, got {ready}")));
        }
        Ok(twin)
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// longtail's reference losses (from `reference.json`).
    pub fn reference(&self) -> &[StepLosses] {
        &self.reference
    }

    /// Runs `steps` steps on the twin; returns its milliseconds per step and last loss.
    pub fn time(&mut self, steps: usize) -> Result<(f64, f64)> {
        let steps = steps.max(1);
        let v = self.request(&format!("steps {steps}"))?;
        match (v["ms_per_step"].as_f64(), v["loss"].as_f64()) {
            (Some(ms), Some(loss)) => Ok((ms, loss)),
            // A NaN loss arrives as JSON null.
            (Some(ms), None) if v["loss"].is_null() => Ok((ms, f64::NAN)),
            _ => Err(self.fail(format!("unexpected answer to 'steps {steps}': {v}"))),
        }
    }

    /// The twin's first losses from the initial state (it restores the state afterwards).
    pub fn twin_reference(&mut self) -> Result<Vec<StepLosses>> {
        let v = self.request("reference")?;
        let r: Reference = serde_json::from_value(v.clone())
            .map_err(|e| self.fail(format!("unexpected answer to 'reference' ({e}): {v}")))?;
        Ok(r.losses)
    }

    /// Every reference loss (the total and each term, each step) of longtail beside the twin's.
    /// Errors when the twin returns another number of steps or other term names.
    pub fn compare(&mut self) -> Result<Vec<LossPair>> {
        let twin = self.twin_reference()?;
        if twin.len() != self.reference.len() {
            return Err(self.fail(format!(
                "the twin returned {} reference steps, longtail wrote {}",
                twin.len(),
                self.reference.len()
            )));
        }
        let mut pairs = Vec::new();
        for (step, ((ours, our_terms), (theirs, their_terms))) in
            self.reference.iter().zip(&twin).enumerate()
        {
            if our_terms.keys().ne(their_terms.keys()) {
                return Err(self.fail(format!(
                    "loss terms differ at step {step}: longtail {:?}, twin {:?}",
                    our_terms.keys().collect::<Vec<_>>(),
                    their_terms.keys().collect::<Vec<_>>()
                )));
            }
            pairs.push(LossPair {
                step,
                term: "total".into(),
                ours: *ours,
                twin: *theirs,
            });
            for (term, v) in our_terms {
                pairs.push(LossPair {
                    step,
                    term: term.clone(),
                    ours: *v,
                    twin: their_terms[term],
                });
            }
        }
        Ok(pairs)
    }

    /// The reference totals, `(longtail, twin)` per step (see [`Twin::compare`] for the terms).
    pub fn check(&mut self) -> Result<Vec<(f64, f64)>> {
        Ok(self
            .compare()?
            .into_iter()
            .filter(|p| p.term == "total")
            .map(|p| (p.ours, p.twin))
            .collect())
    }

    /// Sends one request line and reads its JSON answer.
    fn request(&mut self, line: &str) -> Result<serde_json::Value> {
        let sent = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin closed")),
        };
        if let Err(e) = sent {
            return Err(self.fail(format!("cannot send '{line}': {e}")));
        }
        self.answer(line)
    }

    /// Reads the next JSON line; an `{"error": ...}` answer is an error.
    fn answer(&mut self, what: &str) -> Result<serde_json::Value> {
        let line = match self.lines.recv_timeout(self.timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(self.fail(format!("reading its answer to '{what}': {e}"))),
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                return Err(self.fail_dead(format!(
                    "no answer to '{what}' within {} s (killed)",
                    self.timeout.as_secs()
                )));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(self.fail_dead(format!("the twin exited during '{what}'")))
            }
        };
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| self.fail(format!("answer to '{what}' is not JSON ({e}): {line}")))?;
        if let Some(msg) = v.get("error") {
            let msg = msg.as_str().map(str::to_string).unwrap_or(msg.to_string());
            return Err(self.fail(format!("'{what}' failed: {msg}")));
        }
        Ok(v)
    }

    /// An error naming the model, with the child's stderr tail (the twin still runs).
    fn fail(&mut self, message: String) -> TrainError {
        self.fail_with(message, false)
    }

    /// An error for a twin that exited or was killed: waits briefly for it, then names its exit
    /// status and its stderr tail.
    fn fail_dead(&mut self, message: String) -> TrainError {
        self.fail_with(message, true)
    }

    fn fail_with(&mut self, mut message: String, dead: bool) -> TrainError {
        let deadline = Instant::now() + Duration::from_secs(if dead { 5 } else { 0 });
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break None,
            }
        };
        if let Some(s) = status {
            // Its pipes are closed: the stderr reader ends once it has read everything.
            self.stdin = None;
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
            message.push_str(&format!(" (twin exited: {s})"));
        }
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        if !tail.is_empty() {
            message.push_str("\n  twin stderr (last lines):");
            for l in tail.iter() {
                message.push_str("\n    ");
                message.push_str(l);
            }
        }
        twin_err(&self.dir, &self.model, message)
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "quit").and_then(|()| stdin.flush());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
