//! `plain`: the model trained once by the standard step for `[train] epochs` (early stopping as
//! configured). CTR runs first give the model its own pre-training step when it has one (MFN's
//! interest centers, Algorithm 1); retrieval runs use `[train] item_weighting` (none, or IDW's
//! frequency balance, eq. 5).

use super::{LegacyRecords, Schedule, ScheduleContext, ScheduleOutcome};
use crate::error::Result;
use crate::experiment::ExperimentConfig;
use crate::fit::fit;
use crate::step::StandardStep;
use longtail_core::Task;

pub const NAME: &str = "plain";

pub struct Plain;

impl Schedule for Plain {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "one training phase with the standard step (CTR: after the model's own pre-training, if any; retrieval: with [train] item_weighting)"
    }

    fn tasks(&self) -> &'static [Task] {
        &[Task::Ctr, Task::Retrieval]
    }

    fn check(&self, _cfg: &ExperimentConfig, params: &toml::Table) -> Result<()> {
        super::no_params(NAME, params)
    }

    fn run(&self, cx: &mut ScheduleContext<'_>) -> Result<ScheduleOutcome> {
        let cfg = cx.cfg;
        let mut model = cx.build_model(None)?;
        let mut legacy = LegacyRecords::default();
        if let super::ScheduleData::Ctr(data) = &cx.data {
            let data: &longtail_data::CtrDataset = data;
            legacy.model_pretrain = model_pretrain(&mut model, data, cfg, cx.device)?;
            let epochs = fit(
                &mut model,
                cx.task(None).as_ref(),
                &mut StandardStep::new(&cfg.train.loss_weights),
                &cx.fit_spec("train", &cfg.train, cfg.seed),
            )?;
            return Ok(ScheduleOutcome {
                model,
                epochs,
                record: serde_json::json!({}),
                legacy,
            });
        }
        let data = cx.retrieval_data(NAME)?;
        let mut log = crate::retrieval::train_plain(
            &mut model,
            data,
            &cfg.train,
            cfg.train.item_weighting,
            cfg.seed,
            cx.device,
            Some(cx.journal),
            None,
        )?;
        log.silhouette = crate::retrieval::item_silhouette(&model, data, cx.device)?;
        let epochs = log.phases.iter().flat_map(|(_, e)| e.clone()).collect();
        legacy.retrieval = Some(log);
        Ok(ScheduleOutcome {
            model,
            epochs,
            record: serde_json::json!({ "item_weighting": cfg.train.item_weighting }),
            legacy,
        })
    }
}

/// The model's own pre-training step ([`crate::experiment::pretrain_model`]), said on stderr.
pub(crate) fn model_pretrain(
    model: &mut longtail_core::Instance,
    data: &longtail_data::CtrDataset,
    cfg: &ExperimentConfig,
    device: tch::Device,
) -> Result<Option<longtail_core::PretrainLog>> {
    let log = crate::experiment::pretrain_model(model, data, &cfg.train, cfg.seed, device)?;
    if let (Some(log), true) = (&log, cfg.train.progress) {
        tracing::info!(
            "{} pre-training: {} steps, loss {:.4} -> {:.4} (stopped by {})",
            log.what,
            log.steps,
            log.loss_first,
            log.loss_last,
            log.stopped_by
        );
    }
    Ok(log)
}
