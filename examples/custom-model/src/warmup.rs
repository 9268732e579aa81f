//! `warmup_finetune`: a training schedule defined outside the longtail workspace, to show how a
//! team adds its own schedule as a crate. Paper: none (a teaching example: a few epochs at a low
//! learning rate, then fine-tuning at the configured one with early stopping, its start
//! competing on validation).
//!
//! ```toml
//! [schedule]
//! name = "warmup_finetune"
//! warmup_epochs = 1      # epochs of the warm-up phase
//! warmup_lr = 1e-4       # its learning rate ([train] lr is the fine-tuning one)
//! ```

use longtail_train::schedule::{parse_params, LegacyRecords};
use longtail_train::{
    fit, ExperimentConfig, Schedule, ScheduleContext, ScheduleOutcome, StandardStep, TrainConfig,
    TrainError,
};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "warmup_finetune";

/// The schedule's own keys (`[schedule]` beside `name`); unknown keys are errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmupParams {
    pub warmup_epochs: usize,
    pub warmup_lr: f64,
}

impl Default for WarmupParams {
    fn default() -> Self {
        Self {
            warmup_epochs: 1,
            warmup_lr: 1e-4,
        }
    }
}

pub struct WarmupFinetune;

impl Schedule for WarmupFinetune {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "warm-up epochs at a low learning rate, then fine-tuning (outside-crate example)"
    }

    fn tasks(&self) -> &'static [longtail_core::Task] {
        &[longtail_core::Task::Ctr]
    }

    fn check(&self, _cfg: &ExperimentConfig, params: &toml::Table) -> Result<(), TrainError> {
        let p: WarmupParams = parse_params(params)?;
        if p.warmup_epochs == 0 || !(p.warmup_lr > 0.0 && p.warmup_lr.is_finite()) {
            return Err(TrainError::Config {
                key: "schedule.warmup_lr".into(),
                message: "warmup_epochs must be >= 1 and warmup_lr a positive number".into(),
            });
        }
        Ok(())
    }

    fn run(&self, cx: &mut ScheduleContext<'_>) -> Result<ScheduleOutcome, TrainError> {
        let p: WarmupParams = parse_params(cx.params)?;
        let cfg = cx.cfg;
        let mut model = cx.build_model(None)?;
        let task = cx.task(None);
        let mut step = StandardStep::new(&cfg.train.loss_weights);
        // Phase 1: no early stopping, the low learning rate.
        let warm = TrainConfig {
            epochs: p.warmup_epochs,
            lr: p.warmup_lr,
            early_stopping_patience: 0,
            ..cfg.train.clone()
        };
        let mut epochs = fit(
            &mut model,
            task.as_ref(),
            &mut step,
            &cx.fit_spec("warmup", &warm, cfg.seed),
        )?;
        // Phase 2: the configured training, its own batch order, the warm start competing.
        let seed2 = longtail_data::seed::derive_seed(cfg.seed, "finetune");
        epochs.extend(fit(
            &mut model,
            task.as_ref(),
            &mut step,
            &longtail_train::Fit {
                keep_start: true,
                ..cx.fit_spec("finetune", &cfg.train, seed2)
            },
        )?);
        Ok(ScheduleOutcome {
            model,
            epochs,
            record: serde_json::to_value(&p).unwrap_or_default(),
            legacy: LegacyRecords::default(),
        })
    }
}
