//! Tasks: what a run trains on and is validated by, per data kind. A [`Task`] builds each
//! epoch's batches (any thread, ahead of the step) and validates a model; the one epoch loop
//! ([`crate::fit::fit`]) is the same for every task. CTR: labelled (user, item) samples, AUC /
//! GAUC / logloss. Retrieval: next-item sequences, HR / NDCG / MRR of the target against its
//! sampled negatives (IDW §4.2).

use crate::error::Result;
use crate::retrieval::sampled_metrics;
use crate::trainer::evaluate_ctr;
use longtail_core::Instance;
use longtail_data::batch::{item_logq, BatchSource};
use longtail_data::{seed, BatchIter, CtrDataset, RetrievalData, SeqBatches};
use longtail_eval::Metrics;
use tch::Device;

/// The data side of training: one kind of batches and its validation.
pub trait Task {
    /// The model task this data is for (a CTR model cannot train on retrieval batches).
    fn kind(&self) -> longtail_core::Task;
    /// Training samples per epoch.
    fn train_samples(&self) -> usize;
    /// The batches of training epoch `epoch` (1-based), in an order drawn from `seed_base` and
    /// the epoch, so the same seed gives the same batches.
    fn train_batches(
        &self,
        epoch: usize,
        batch_size: usize,
        seed_base: u64,
    ) -> Result<Box<dyn BatchSource + '_>>;
    /// Validation metrics (flat keys, as in `metrics.json`); empty without a validation split.
    /// `progress`: show a progress bar with ETA.
    fn validate(
        &self,
        model: &Instance,
        batch_size: usize,
        device: Device,
        progress: bool,
    ) -> Result<Metrics>;
}

/// CTR samples ([`CtrDataset`]): fixed-shape batches (the last one padded with weight-0 rows),
/// HIM sessions when the data has them, and PIN's stratified order on request.
pub struct CtrTask<'a> {
    pub data: &'a CtrDataset,
    logq: Vec<f32>,
    max_len: usize,
    stratified: bool,
}

impl<'a> CtrTask<'a> {
    pub fn new(data: &'a CtrDataset) -> Self {
        Self {
            data,
            logq: item_logq(&data.item_freq),
            max_len: ctr_history_len(data),
            stratified: false,
        }
    }

    /// Every epoch visits the samples in a stratified interleaving of the user strata
    /// ([`crate::stratified::stratified_order`]; PIN's aggregated gradient needs every stratum
    /// in every batch).
    pub fn stratified(mut self) -> Self {
        self.stratified = true;
        self
    }
}

/// The history length of a CTR dataset's batches (its feature map's `hist` field, else 50).
pub fn ctr_history_len(data: &CtrDataset) -> usize {
    data.feature_map
        .get("hist")
        .and_then(|f| f.max_len)
        .unwrap_or(50)
}

impl Task for CtrTask<'_> {
    fn kind(&self) -> longtail_core::Task {
        longtail_core::Task::Ctr
    }

    fn train_samples(&self) -> usize {
        self.data.train.len()
    }

    fn train_batches(
        &self,
        epoch: usize,
        batch_size: usize,
        seed_base: u64,
    ) -> Result<Box<dyn BatchSource + '_>> {
        let data = self.data;
        let shuffle = seed::derive_seed(seed_base, &format!("shuffle/epoch{epoch}"));
        let mut batches = BatchIter::try_new(
            &data.train,
            &data.sequences,
            batch_size,
            self.max_len,
            Some(shuffle),
            Some(&self.logq),
        )?;
        if let Some(s) = &data.sessions {
            batches = batches.with_sessions(s, &data.negative_feedback);
        }
        if self.stratified {
            let mut rng = seed::rng(seed_base, &format!("strata/epoch{epoch}"));
            batches =
                batches.with_order(crate::stratified::stratified_order(&data.train, &mut rng));
        }
        Ok(Box::new(batches))
    }

    fn validate(
        &self,
        model: &Instance,
        batch_size: usize,
        device: Device,
        progress: bool,
    ) -> Result<Metrics> {
        if self.data.valid.is_empty() {
            return Ok(Metrics::new());
        }
        evaluate_ctr(
            model,
            &self.data.valid,
            self.data,
            self.max_len,
            batch_size,
            device,
            progress.then_some("valid"),
        )
    }
}

/// Next-item sequences ([`RetrievalData`]): every training sample once per epoch, shuffled, with
/// optional per-item loss weights (IDW's frequency or density weights), validated by the sampled
/// protocol.
pub struct RetrievalTask<'a> {
    pub data: &'a RetrievalData,
    logq: Vec<f32>,
    item_weight: Option<Vec<f32>>,
}

impl<'a> RetrievalTask<'a> {
    pub fn new(data: &'a RetrievalData) -> Self {
        Self {
            data,
            logq: item_logq(&data.label_freq),
            item_weight: None,
        }
    }

    /// Weighs each sample by its target's weight `w[item]`, scaled to mean one over the training
    /// labels (the loss keeps eq. 3's scale).
    pub fn with_item_weights(mut self, w: Option<&[f32]>) -> Self {
        self.item_weight =
            w.map(|w| longtail_data::retrieval::mean_one(w, &self.data.seq.train.target));
        self
    }
}

impl Task for RetrievalTask<'_> {
    fn kind(&self) -> longtail_core::Task {
        longtail_core::Task::Retrieval
    }

    fn train_samples(&self) -> usize {
        self.data.seq.train.len()
    }

    fn train_batches(
        &self,
        epoch: usize,
        batch_size: usize,
        seed_base: u64,
    ) -> Result<Box<dyn BatchSource + '_>> {
        let mut rng = seed::rng(seed_base, &format!("retrieval/shuffle/epoch{epoch}"));
        Ok(Box::new(
            SeqBatches::shuffled(&self.data.seq.train, batch_size, &self.logq, &mut rng)
                .with_item_weights(self.item_weight.as_deref()),
        ))
    }

    fn validate(
        &self,
        model: &Instance,
        batch_size: usize,
        device: Device,
        progress: bool,
    ) -> Result<Metrics> {
        if self.data.seq.valid.is_empty() {
            return Ok(Metrics::new());
        }
        let label = progress.then_some("valid");
        Ok(sampled_metrics(
            model,
            self.data,
            &self.data.seq.valid,
            batch_size,
            device,
            label,
        )?
        .0)
    }
}
