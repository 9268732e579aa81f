//! One training step of a registered model at fixed shapes, timed: forward, the weighted loss
//! terms, backward and an Adam step, the sequence every run repeats. CTR models train on the
//! demo's synthetic CTR samples (with HIM sessions, so every model finds its inputs); retrieval
//! models on synthetic next-item sequences. The same setup is what a benchmark twin replays
//! (`crate::bench::twin`), so the two time the same work.

use crate::error::{Result, TrainError};
use crate::experiment::ExperimentConfig;
use longtail_core::{BuildContext, DeviceBatch, Instance, Registry, Task};
use longtail_data::batch::item_logq;
use longtail_data::{
    build_ctr_dataset, generate, BatchIter, FeatureMap, HostBatch, SequenceConfig, SynthConfig,
};
use std::time::Instant;
use tch::{Device, Tensor};

/// The shapes of a step benchmark.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepShape {
    /// Rows per batch.
    pub batch_size: usize,
    /// History length (CTR: `samples.max_hist_len`; retrieval: `sequences.max_len`).
    pub hist_len: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Distinct batches cycled through (the timing never reuses one batch back to back).
    pub batches: usize,
}

impl Default for StepShape {
    fn default() -> Self {
        Self {
            batch_size: 256,
            hist_len: 30,
            lr: 1e-3,
            batches: 8,
        }
    }
}

/// Params a model needs to train on the benchmark's synthetic data without other stages (MFN's
/// fixed behavior embeddings come from a stage-1 model otherwise).
pub fn bench_params(model: &str) -> toml::Table {
    let mut t = toml::Table::new();
    if model == "mfn" {
        t.insert("fixed_embeddings".into(), "random".into());
        t.insert("centers".into(), "random".into());
    }
    t
}

/// A model, its optimizer and fixed-shape device batches, ready to step.
pub struct StepBench {
    pub model: Instance,
    pub task: Task,
    pub hosts: Vec<HostBatch>,
    pub batches: Vec<DeviceBatch>,
    pub opt: crate::step::Optimizer,
    /// The step every run takes ([`crate::step::StandardStep`], unit loss weights).
    pub standard: crate::step::StandardStep,
    pub params: toml::Table,
    /// The feature map the model was built on (a benchmark twin rebuilds it from this).
    pub feature_map: FeatureMap,
    pub shape: StepShape,
    pub device: Device,
    next: usize,
}

impl StepBench {
    /// Builds `model` (with [`bench_params`]) on the benchmark data, seeded by `seed`.
    pub fn new(
        registry: &Registry,
        model: &str,
        shape: &StepShape,
        device: Device,
        seed: u64,
    ) -> Result<Self> {
        registry.check(model)?;
        if shape.batch_size == 0 || shape.hist_len == 0 || shape.batches == 0 {
            return Err(TrainError::Config {
                key: "bench".into(),
                message: "batch size, history length and batch count must be at least 1".into(),
            });
        }
        // The host batches are built up front and a retrieval step holds `[B, B]` logits: refuse
        // sizes that cannot fit before allocating (the same estimate as `train`'s).
        let (b, rows) = (
            shape.batch_size as f64,
            (shape.batch_size * shape.batches) as f64,
        );
        let bytes = rows * (shape.hist_len as f64 + 1.0) * crate::check::BYTES_PER_POSITION
            + b * b * 4.0 * 3.0;
        longtail_data::memory::check_fits(
            bytes,
            "--batch-size",
            &format!(
                "{} batches of {b:.0} rows with histories of {}",
                shape.batches, shape.hist_len
            ),
        )?;
        let params = bench_params(model);
        let demo = ExperimentConfig::demo();
        let synth = match &demo.data {
            longtail_data::DataSource::Synth { synth } => synth.clone(),
            _ => SynthConfig::default(),
        };
        let data = generate(&synth, seed)?;
        let mut samples = demo.samples.clone();
        samples.max_hist_len = shape.hist_len;
        let mut ds = build_ctr_dataset(&data.interactions, "bench", &samples, seed)?;
        ds.with_sessions(&longtail_data::SessionConfig::default())?;

        longtail_core::seed::seed_everything(seed);
        // Retrieval models are told apart by building them once on the CTR feature map.
        let probe_ctx = BuildContext::new(&ds.feature_map, &params, device);
        let probe = registry.build(model, &probe_ctx)?;
        let task = probe.task();
        drop(probe);
        longtail_core::seed::seed_everything(seed);
        let (model, hosts, feature_map) = match task {
            Task::Ctr => {
                let m = registry.build(model, &probe_ctx)?;
                let logq = item_logq(&ds.item_freq);
                let iter = BatchIter::try_new(
                    &ds.train,
                    &ds.sequences,
                    shape.batch_size,
                    shape.hist_len,
                    Some(seed),
                    Some(&logq),
                )?;
                let iter = match &ds.sessions {
                    Some(s) => iter.with_sessions(s, &ds.negative_feedback),
                    None => iter,
                };
                let hosts: Vec<HostBatch> = iter.take(shape.batches).collect();
                (m, hosts, ds.feature_map.clone())
            }
            Task::Retrieval => {
                let sc = SequenceConfig {
                    max_len: shape.hist_len,
                    ..SequenceConfig::default()
                };
                let seqs =
                    longtail_data::build_sequences(&ds.sequences, ds.num_items(), &sc, seed)?;
                let rd = crate::retrieval::RetrievalData::new(
                    "bench",
                    &ds.sequences,
                    seqs,
                    ds.num_items(),
                    0.2,
                    None,
                );
                let ctx = BuildContext::new(&rd.feature_map, &params, device);
                let m = registry.build(model, &ctx)?;
                let logq = item_logq(&rd.label_freq);
                let n = rd.seq.train.len();
                let hosts = (0..shape.batches)
                    .map(|b| {
                        let idx: Vec<usize> = (0..shape.batch_size)
                            .map(|r| (b * shape.batch_size + r) % n.max(1))
                            .collect();
                        crate::retrieval::host_batch(&rd.seq.train, &idx, &logq, None)
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                (m, hosts, rd.feature_map.clone())
            }
        };
        Self::from_hosts(model, task, hosts, params, feature_map, shape, device)
    }

    /// One whole training epoch of a retrieval model on `rd`: the batches of epoch 1 of a run
    /// with seed `seed` ([`crate::task::RetrievalTask`]: every training sample once, shuffled,
    /// `batch_size` rows per batch, the last one shorter), so [`StepBench::time`] with
    /// `hosts.len()` steps times an epoch.
    #[allow(clippy::too_many_arguments)]
    pub fn retrieval_epoch(
        registry: &Registry,
        model: &str,
        model_params: &toml::Table,
        rd: &crate::retrieval::RetrievalData,
        batch_size: usize,
        lr: f64,
        device: Device,
        seed: u64,
    ) -> Result<Self> {
        longtail_core::seed::seed_everything(seed);
        let ctx = BuildContext::new(&rd.feature_map, model_params, device);
        let m = registry.build(model, &ctx)?;
        m.towers()?; // a retrieval model, or an error naming it
        use crate::task::Task as _;
        let task = crate::task::RetrievalTask::new(rd);
        let source = task.train_batches(1, batch_size, seed)?;
        let hosts = (0..source.num_batches())
            .map(|b| source.build(b))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let shape = StepShape {
            batch_size,
            hist_len: rd.seq.max_len,
            lr,
            batches: hosts.len(),
        };
        Self::from_hosts(
            m,
            Task::Retrieval,
            hosts,
            model_params.clone(),
            rd.feature_map.clone(),
            &shape,
            device,
        )
    }

    fn from_hosts(
        model: Instance,
        task: Task,
        hosts: Vec<HostBatch>,
        params: toml::Table,
        feature_map: FeatureMap,
        shape: &StepShape,
        device: Device,
    ) -> Result<Self> {
        if hosts.is_empty() {
            return Err(TrainError::Config {
                key: "bench".into(),
                message: "the benchmark data gave no training batch".into(),
            });
        }
        let batches = hosts
            .iter()
            .map(|h| DeviceBatch::from_host(h, device))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let opt = crate::step::Optimizer::adam(&model, shape.lr)?;
        Ok(Self {
            model,
            task,
            hosts,
            batches,
            opt,
            standard: crate::step::StandardStep::default(),
            params,
            feature_map,
            shape: shape.clone(),
            device,
            next: 0,
        })
    }

    /// One training step on the next batch; returns the weighted total (left on the device).
    pub fn step(&mut self) -> Result<Tensor> {
        // The regression check of the benchmark gate builds with this feature to prove that CI
        // catches a 25% slower step; it is never on in a normal build.
        #[cfg(feature = "bench-slowdown")]
        let started = Instant::now();
        let total = self.step_inner()?;
        #[cfg(feature = "bench-slowdown")]
        {
            let _ = total.double_value(&[]);
            std::thread::sleep(started.elapsed().mul_f64(0.25));
        }
        Ok(total)
    }

    fn step_inner(&mut self) -> Result<Tensor> {
        let i = self.next % self.batches.len();
        self.next += 1;
        let out = self.opt.update(
            &mut self.standard,
            &self.model,
            &mut self.batches[i],
            &self.hosts[i],
        )?;
        Ok(out.total)
    }

    /// Steps taken so far (0: the model still holds its initial parameters).
    pub fn steps_taken(&self) -> usize {
        self.next
    }

    /// Runs `steps` steps and returns milliseconds per step and the last loss. One host read at
    /// the end waits for queued device work, so the time is honest on a GPU too.
    pub fn time(&mut self, steps: usize) -> Result<(f64, f64)> {
        let t = Instant::now();
        let mut last = None;
        for _ in 0..steps.max(1) {
            last = Some(self.step()?);
        }
        let loss = last.map(|l| l.double_value(&[])).unwrap_or(f64::NAN);
        Ok((t.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64, loss))
    }
}
