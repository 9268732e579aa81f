//! `two_stage`: MFN's pipeline (Multiple and Fine-grained interests, §3: behavior embeddings
//! learned by a vanilla model first). Stage 1 trains the `[pretrain]` model (e.g. `basemodel`) on
//! the same training split, tests it and writes `RUN/stage1/{model.safetensors, metrics.json}`;
//! its checkpoint goes to the main model's builder (`BuildContext::with_pretrained`), which takes
//! what it needs (MFN: the fixed embeddings `item.weight`); then the main model trains as `plain`
//! does. Section: `[pretrain]` ([`PretrainSection`]), or `[schedule] name = "two_stage"` with the
//! same keys.

use super::{LegacyRecords, Schedule, ScheduleContext, ScheduleOutcome};
use crate::error::{io, Result};
use crate::evaluate::{evaluate_scores, write_metrics};
use crate::experiment::{ExperimentConfig, PretrainSection};
use crate::fit::{fit, Fit, Journal};
use crate::manifest::StageRecord;
use crate::step::StandardStep;
use crate::task::CtrTask;
use longtail_core::{checkpoint, seed::seed_everything, BuildContext, Pretrained, Registry, Task};
use std::path::{Path, PathBuf};

pub const NAME: &str = "two_stage";

pub struct TwoStage;

/// The run's stage 1: `[pretrain]`, else `[schedule]`'s keys.
pub fn config(cfg: &ExperimentConfig, params: &toml::Table) -> Result<PretrainSection> {
    match &cfg.pretrain {
        Some(p) => Ok(p.clone()),
        None => super::parse_params(params),
    }
}

impl Schedule for TwoStage {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "MFN's two stages: a vanilla model trained first, its checkpoint handed to the main model's builder"
    }

    fn tasks(&self) -> &'static [Task] {
        &[Task::Ctr]
    }

    fn check(&self, cfg: &ExperimentConfig, params: &toml::Table) -> Result<()> {
        let p = config(cfg, params)?;
        if let Some(t) = &p.train {
            t.validate()?;
        }
        Ok(())
    }

    fn run(&self, cx: &mut ScheduleContext<'_>) -> Result<ScheduleOutcome> {
        let cfg = cx.cfg;
        let p = config(cfg, cx.params)?;
        let super::ScheduleData::Ctr(data) = &cx.data else {
            return Err(super::wrong_task(NAME, Task::Retrieval));
        };
        let data: &longtail_data::CtrDataset = data;
        let stage1 = run_stage1(
            cx.models,
            &p,
            cfg,
            data,
            cx.device,
            cx.dir,
            Some(cx.journal),
        )?;
        let pretrained = Pretrained::load(&cx.dir.join(&stage1.checkpoint))?;
        let mut model = cx.build_model(Some(&pretrained))?;
        let model_pretrain = super::plain::model_pretrain(&mut model, data, cfg, cx.device)?;
        let epochs = fit(
            &mut model,
            cx.task(None).as_ref(),
            &mut StandardStep::new(&cfg.train.loss_weights),
            &cx.fit_spec("train", &cfg.train, cfg.seed),
        )?;
        let record = serde_json::json!({
            "stage1_model": stage1.model,
            "stage1_epochs": stage1.epochs.len(),
            "checkpoint": stage1.checkpoint,
        });
        Ok(ScheduleOutcome {
            model,
            epochs,
            record,
            legacy: LegacyRecords {
                stage1: Some(stage1),
                model_pretrain,
                ..Default::default()
            },
        })
    }
}

/// Trains the stage-1 model of `p` on `data` and writes `dir/stage1/` (checkpoint, test
/// metrics); returns what the manifest records.
pub fn run_stage1(
    registry: &Registry,
    p: &PretrainSection,
    cfg: &ExperimentConfig,
    data: &longtail_data::CtrDataset,
    device: tch::Device,
    dir: &Path,
    journal: Option<&Journal>,
) -> Result<StageRecord> {
    registry.check(&p.model.name)?;
    let train = p.train.as_ref().unwrap_or(&cfg.train);
    train.validate()?;
    let stage_dir = dir.join("stage1");
    std::fs::create_dir_all(&stage_dir).map_err(|e| io(&stage_dir, e))?;
    if cfg.train.progress {
        tracing::info!("stage 1: training {}", p.model.name);
    }
    let ctx = BuildContext::new(&data.feature_map, &p.model.params, device)
        .with_items(data.items.as_ref());
    let seed = longtail_data::seed::derive_seed(cfg.seed, "stage1");
    seed_everything(seed);
    let mut model = registry.build(&p.model.name, &ctx)?;
    let epochs = fit(
        &mut model,
        &CtrTask::new(data),
        &mut StandardStep::new(&train.loss_weights),
        &Fit {
            journal,
            ..Fit::new("stage1", train, seed, device)
        },
    )?;
    let rel = PathBuf::from("stage1").join("model.safetensors");
    checkpoint::save(&model, &dir.join(&rel))?;
    let max_len = data.feature_map.get("hist").and_then(|f| f.max_len);
    let table = crate::trainer::test_scores(
        &model,
        data,
        max_len.unwrap_or(cfg.samples.max_hist_len),
        train.eval_batch_size,
        device,
        cfg.train.progress.then_some("stage1 test"),
    )?;
    let metrics = evaluate_scores(&table, &[])?;
    write_metrics(&stage_dir.join("metrics.json"), &metrics)?;
    let bytes = std::fs::read(dir.join(&rel)).map_err(|e| io(&dir.join(&rel), e))?;
    Ok(StageRecord {
        model: p.model.name.clone(),
        checkpoint: rel.to_string_lossy().into_owned(),
        checkpoint_sha256: crate::manifest::sha256_hex(&bytes),
        epochs,
        metrics,
    })
}
