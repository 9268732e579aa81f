//! `idw`: Iterative Density Weighting (Mehta et al., "Density Weighting for
//! Multi-Interest Personalized Recommendation", Algorithm 1) on a two-tower retrieval model: the model is first
//! trained as `plain` does, then sleep phases (item representations -> kernel density, eq. 7-9
//! in [`longtail_core::density`]) and wake phases (one `fit` with the density weights as per-item
//! loss weights, eq. 10) alternate until `||w(t+1) - w(t)|| < eta` or `max_iterations`; the
//! iteration with the best validation metric is kept (`select_best`); then the user tower is
//! calibrated unweighted with the item tower frozen, its start competing on validation.
//! Section: `[idw]` ([`IdwConfig`]), or `[schedule] name = "idw"` with the same keys.

use super::{LegacyRecords, Schedule, ScheduleContext, ScheduleOutcome};
use crate::error::{Result, TrainError};
use crate::experiment::ExperimentConfig;
use crate::fit::{fit, Fit, Journal};
use crate::retrieval::{
    all_item_reprs, item_silhouette, sampled_metrics, IdwConfig, IdwIteration, RetrievalLog,
};
use crate::step::StandardStep;
use crate::task::RetrievalTask;
use crate::trainer::TrainConfig;
use longtail_core::density::{initial_weights, sleep_phase_with};
use longtail_core::{Instance, Task};
use longtail_data::{seed, RetrievalData};
use longtail_eval::Direction;
use tch::{Device, Kind, Tensor};

pub const NAME: &str = "idw";

pub struct Idw;

/// The run's IDW settings: `[idw]`, else `[schedule]`'s keys, else the defaults.
pub fn config(cfg: &ExperimentConfig, params: &toml::Table) -> Result<IdwConfig> {
    match &cfg.idw {
        Some(c) => Ok(c.clone()),
        None => super::parse_params(params),
    }
}

impl Schedule for Idw {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "IDW (Algorithm 1): plain training, then sleep (density weights) / wake (weighted) iterations, then user-tower calibration"
    }

    fn tasks(&self) -> &'static [Task] {
        &[Task::Retrieval]
    }

    fn check(&self, cfg: &ExperimentConfig, params: &toml::Table) -> Result<()> {
        config(cfg, params)?.validate()
    }

    fn run(&self, cx: &mut ScheduleContext<'_>) -> Result<ScheduleOutcome> {
        let cfg = cx.cfg;
        let idw = config(cfg, cx.params)?;
        let mut model = cx.build_model(None)?;
        let data = cx.retrieval_data(NAME)?;
        let mut log = crate::retrieval::train_plain(
            &mut model,
            data,
            &cfg.train,
            cfg.train.item_weighting,
            cfg.seed,
            cx.device,
            Some(cx.journal),
        )?;
        iterate(
            &mut model,
            data,
            &cfg.train,
            &idw,
            cfg.seed,
            cx.device,
            Some(cx.journal),
            &mut log,
        )?;
        log.silhouette = item_silhouette(&model, data, cx.device)?;
        let epochs = log.phases.iter().flat_map(|(_, e)| e.clone()).collect();
        let record = serde_json::json!({
            "config": idw,
            "iterations": log.idw.len(),
            "selected": log.idw_selected,
            "calibration_kept": log.calibration_kept,
        });
        Ok(ScheduleOutcome {
            model,
            epochs,
            record,
            legacy: LegacyRecords {
                retrieval: Some(log),
                ..Default::default()
            },
        })
    }
}

/// Algorithm 1 from a trained model: sleep / wake until the weights settle, the best iteration
/// kept, then calibration; every phase is appended to `log`.
#[allow(clippy::too_many_arguments)]
pub fn iterate(
    model: &mut Instance,
    data: &RetrievalData,
    cfg: &TrainConfig,
    idw: &IdwConfig,
    seed_base: u64,
    device: Device,
    journal: Option<&Journal>,
    log: &mut RetrievalLog,
) -> Result<()> {
    let say = |m: &str| {
        if cfg.progress {
            tracing::info!("{m}");
        }
    };
    let mut step = StandardStep::new(&cfg.loss_weights);
    // Algorithm 1: w(0) = normalised item frequency; padding and never-labelled items get none.
    let w0 = initial_weights(&data.label_freq);
    let valid_mask: Vec<bool> = (0..data.num_items)
        .map(|i| i > 0 && data.label_freq[i] > 0)
        .collect();
    let valid_t = Tensor::from_slice(&valid_mask).to_device(device);
    let mut w = Tensor::from_slice(&w0).to_device(device);
    // Early stopping across iterations: the validation metric of the model after each wake
    // phase; the best state (iteration 0 = the unweighted model) is kept when IDW ends.
    let metric = cfg.early_stopping_metric.clone();
    let watch = |model: &Instance| -> Result<Option<f64>> {
        if !(idw.select_best && cfg.early_stopping_patience > 0) || data.seq.valid.is_empty() {
            return Ok(None);
        }
        let label = cfg.progress.then_some("valid");
        let m = sampled_metrics(
            model,
            data,
            &data.seq.valid,
            cfg.eval_batch_size,
            device,
            label,
        )?
        .0;
        Ok(m.get(&metric).copied())
    };
    let mut best_state = watch(model)?.map(|v| (v, 0usize, crate::fit::snapshot(model)));
    for t in 1..=idw.max_iterations {
        let reps = all_item_reprs(model, data.num_items, device)?;
        let (w_new, stats) = tch::no_grad(|| {
            let pb = crate::fit::progress_bar(cfg.progress, 0, &format!("IDW sleep {t}"))
                .with_finish(indicatif::ProgressFinish::AndClear);
            sleep_phase_with(
                &reps,
                &w,
                idw.momentum,
                &valid_t,
                idw.density_chunk,
                &mut |done, rows| {
                    pb.set_length(rows);
                    pb.set_position(done);
                },
            )
        })?;
        let silhouette = item_silhouette(model, data, device)?;
        let stopped = stats.weight_change < idw.eta;
        say(&format!(
            "IDW iteration {t}: bandwidth {:.4}, ||w' - w|| {:.2e}{}{}",
            stats.bandwidth,
            stats.weight_change,
            silhouette
                .map(|s| format!(", silhouette {s:.3}"))
                .unwrap_or_default(),
            if stopped { " (stop)" } else { "" }
        ));
        log.idw.push(IdwIteration {
            iteration: t,
            sleep: stats,
            silhouette,
            stopped,
        });
        if stopped {
            break;
        }
        w = w_new;
        let wv = Vec::<f32>::try_from(w.to_kind(Kind::Float).to_device(Device::Cpu))?;
        let wake_cfg = TrainConfig {
            early_stopping_patience: 0,
            ..cfg.clone()
        };
        let wake = fit(
            model,
            &RetrievalTask::new(data).with_item_weights(Some(&wv)),
            &mut step,
            &Fit {
                epochs: idw.wake_epochs,
                journal,
                ..Fit::new(
                    &format!("wake{t}"),
                    &wake_cfg,
                    seed::derive_seed(seed_base, &format!("idw/wake{t}")),
                    device,
                )
            },
        )?;
        log.phases.push((format!("wake{t}"), wake));
        if let (Some(v), Some((b, _, _))) = (watch(model)?, &best_state) {
            if Direction::of_key(&metric).better(v, *b) {
                best_state = Some((v, t, crate::fit::snapshot(model)));
            }
        }
    }
    if let Some((v, t, snap)) = best_state {
        crate::fit::restore(model, &snap);
        log.idw_selected = Some(t);
        say(&format!(
            "IDW: keeping iteration {t} (valid {metric} {v:.4})"
        ));
    }
    if idw.calibration {
        let frozen = model.towers()?.item_tower_prefixes();
        if frozen.is_empty() {
            return Err(TrainError::Config {
                key: "idw.calibration".into(),
                message: format!(
                    "model '{}' names no item-tower variables to freeze",
                    model.name()
                ),
            });
        }
        say("IDW: user-tower calibration (item tower frozen, unweighted loss)");
        let cal = fit(
            model,
            &RetrievalTask::new(data),
            &mut step,
            &Fit {
                epochs: idw.calibration_epochs.unwrap_or(cfg.epochs),
                frozen,
                keep_start: true,
                journal,
                ..Fit::new(
                    "calibration",
                    cfg,
                    seed::derive_seed(seed_base, "idw/calibration"),
                    device,
                )
            },
        )?;
        log.calibration_kept = Some(cal.iter().any(|e| e.kept));
        log.phases.push(("calibration".into(), cal));
    }
    Ok(())
}
