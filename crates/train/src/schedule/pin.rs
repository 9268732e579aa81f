//! `pin`: PIN's schedule (`../shared/papers/PIN-method-as-we-implement-it.md`; see
//! [`crate::stratified`] for the objective and the two gradient implementations). Stage 1 trains
//! the backbone and shared head with the aggregated gradient `Σ_z P(z) ∇L_z` on stratified
//! batches ([`AggregatedStep`]; with `prior = "sample_share"`, plain joint training); stage 2
//! switches the model to its plugin phase (`Instance::set_phase("plugins")`, the model's `Phases` capability) and trains the
//! per-stratum plugins with the standard step, its start competing on validation
//! (`stage2_keep_start`). `train_users = "tail"` is the tail-only baseline. Section: `[pin]`
//! ([`PinConfig`]), or `[schedule] name = "pin"` with the same keys.

use super::{LegacyRecords, Schedule, ScheduleContext, ScheduleOutcome};
use crate::error::{Result, TrainError};
use crate::experiment::ExperimentConfig;
use crate::fit::{fit, Fit};
use crate::step::{LossWeights, StandardStep};
use crate::stratified::{
    activeness_buckets, group_prior, AggregatedStep, PinConfig, PinLog, Prior, TrainUsers, GROUPS,
};
use crate::task::CtrTask;
use longtail_core::Task;

pub const NAME: &str = "pin";

pub struct Pin;

/// The run's PIN settings: `[pin]`, else `[schedule]`'s keys, else the defaults.
pub fn config(cfg: &ExperimentConfig, params: &toml::Table) -> Result<PinConfig> {
    match &cfg.pin {
        Some(c) => Ok(c.clone()),
        None => super::parse_params(params),
    }
}

impl Schedule for Pin {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "PIN: stratified batches with the aggregated (backdoor-adjusted) gradient, then the head/tail plugin stage"
    }

    fn tasks(&self) -> &'static [Task] {
        &[Task::Ctr]
    }

    fn check(&self, cfg: &ExperimentConfig, params: &toml::Table) -> Result<()> {
        config(cfg, params)?.validate()
    }

    fn run(&self, cx: &mut ScheduleContext<'_>) -> Result<ScheduleOutcome> {
        let cfg = cx.cfg;
        let p = &config(cfg, cx.params)?;
        let mut model = cx.build_model(None)?;
        let (device, journal) = (cx.device, cx.journal);
        let data = cx.ctr_data(NAME)?;
        if p.train_users == TrainUsers::Tail {
            let idx: Vec<usize> = (0..data.train.len())
                .filter(|&i| data.train.user_group[i] == 0)
                .collect();
            if idx.is_empty() {
                return Err(TrainError::Config {
                    key: "pin.train_users".into(),
                    message: "no training samples of tail users".into(),
                });
            }
            data.train = data.train.select(&idx);
        }
        let model_pretrain = super::plain::model_pretrain(&mut model, data, cfg, device)?;
        // Quantile buckets stand in for the user groups in stage 1's training rows only
        // (the shared phase does not route by group); the groups come back for stage 2.
        let (groups, buckets) = match p.buckets {
            Some(k) if p.prior != Prior::SampleShare => {
                let (strata, lowest) = activeness_buckets(&data.train, k);
                let groups = std::mem::replace(&mut data.train.user_group, strata);
                (Some(groups), Some(lowest))
            }
            _ => (None, None),
        };
        let n_strata = buckets.as_ref().map_or(GROUPS, |b| b.len());
        let prior = group_prior(&data.train, p.prior, n_strata);
        // With a prior, every batch is stratified and its gradient aggregated; without
        // (`sample_share`) stage 1 is plain joint training.
        let stage1 = Fit {
            journal: Some(journal),
            ..Fit::new("stage1", &cfg.train, cfg.seed, device)
        };
        let mut logs = match &prior {
            Some(pr) => fit(
                &mut model,
                &CtrTask::new(data).stratified(),
                &mut AggregatedStep {
                    prior: pr.clone(),
                    how: p.aggregation,
                    weights: LossWeights(cfg.train.loss_weights.clone()),
                },
                &stage1,
            )?,
            None => fit(
                &mut model,
                &CtrTask::new(data),
                &mut StandardStep::new(&cfg.train.loss_weights),
                &stage1,
            )?,
        };
        if let Some(g) = groups {
            data.train.user_group = g;
        }
        let stage1_epochs = logs.len();
        if p.stage2 {
            model.set_phase("plugins")?;
            let mut c2 = cfg.train.clone();
            if let Some(e) = p.stage2_epochs {
                c2.epochs = e;
            }
            if let Some(lr) = p.stage2_lr {
                c2.lr = lr;
            }
            if cfg.train.progress {
                tracing::info!("PIN stage 2: plugins, each on its stratum's samples");
            }
            let seed2 = longtail_data::seed::derive_seed(cfg.seed, "pin/stage2");
            logs.extend(fit(
                &mut model,
                &CtrTask::new(data),
                &mut StandardStep::new(&c2.loss_weights),
                &Fit {
                    keep_start: p.stage2_keep_start,
                    journal: Some(journal),
                    ..Fit::new("stage2", &c2, seed2, device)
                },
            )?);
        }
        let stage2 = &logs[stage1_epochs..];
        // The start was kept when early stopping ran and marked no stage-2 epoch.
        let stage2_kept_start = p.stage2
            && p.stage2_keep_start
            && cfg.train.early_stopping_patience > 0
            && !stage2.is_empty()
            && !stage2.iter().any(|l| l.kept);
        let log = PinLog {
            prior,
            buckets,
            train_samples: data.train.len(),
            stage1_epochs,
            stage2_epochs: logs.len() - stage1_epochs,
            stage2_kept_start,
        };
        let record = serde_json::to_value(&log).unwrap_or_default();
        Ok(ScheduleOutcome {
            model,
            epochs: logs,
            record,
            legacy: LegacyRecords {
                pin: Some(log),
                model_pretrain,
                ..Default::default()
            },
        })
    }
}
