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
    all_item_reprs, item_silhouette, loss_share_weights, sampled_metrics, IdwConfig,
    IdwDiagnostics, IdwIteration, IdwWeights, RetrievalLog,
};
use crate::step::{Optimizer, StandardStep};
use crate::task::RetrievalTask;
use crate::trainer::TrainConfig;
use longtail_core::density::{initial_weights, sleep_phase_with, SleepOptions};
use longtail_core::{Instance, Task};
use longtail_data::groups::ITEM_GROUP_NAMES;
use longtail_data::{seed, RetrievalData};
use longtail_eval::Direction;
use std::cell::RefCell;
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
        // One Adam from the plain training through the last wake phase (`keep_optimizer`).
        let shared = if idw.keep_optimizer {
            Some(RefCell::new(Optimizer::from_config(&model, &cfg.train)?))
        } else {
            None
        };
        let mut log = crate::retrieval::train_plain(
            &mut model,
            data,
            &cfg.train,
            cfg.train.item_weighting,
            cfg.seed,
            cx.device,
            Some(cx.journal),
            shared.as_ref(),
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
            shared.as_ref(),
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
/// kept, then calibration; every phase is appended to `log`. `optimizer`: the Adam the wake
/// phases continue (`keep_optimizer`), else each builds its own.
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
    optimizer: Option<&RefCell<Optimizer>>,
) -> Result<()> {
    let say = |m: &str| {
        if cfg.progress {
            tracing::info!("{m}");
        }
    };
    let mut step = StandardStep::new(&cfg.loss_weights);
    // Algorithm 1: w(0) = normalised item frequency; padding and never-labelled items get none.
    // It is also p(y), the label distribution the loss-share reading divides by.
    let w0 = initial_weights(&data.label_freq);
    let valid_mask: Vec<bool> = (0..data.num_items)
        .map(|i| i > 0 && data.label_freq[i] > 0)
        .collect();
    let valid_t = Tensor::from_slice(&valid_mask).to_device(device);
    let mut w = Tensor::from_slice(&w0).to_device(device);
    let sleep_opts = SleepOptions {
        bandwidth_scale: idw.bandwidth_scale,
        leave_one_out: idw.leave_one_out,
        ..SleepOptions::paper(idw.momentum, idw.density_chunk)
    };
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
    // Wake phases: to convergence (eq. 11) with early stopping unless configured otherwise.
    let wake_cfg = TrainConfig {
        early_stopping_patience: if idw.wake_early_stopping {
            cfg.early_stopping_patience
        } else {
            0
        },
        ..cfg.clone()
    };
    for t in 1..=idw.max_iterations {
        let reps = all_item_reprs(model, data.num_items, device)?;
        let sleep = tch::no_grad(|| {
            let pb = crate::fit::progress_bar(cfg.progress, 0, &format!("IDW sleep {t}"))
                .with_finish(indicatif::ProgressFinish::AndClear);
            sleep_phase_with(&reps, &w, &valid_t, &sleep_opts, &mut |done, rows| {
                pb.set_length(rows);
                pb.set_position(done);
            })
        })?;
        let stats = sleep.stats.clone();
        let silhouette = item_silhouette(model, data, device)?;
        let stopped = stats.weight_change < idw.eta;
        let w_next =
            Vec::<f32>::try_from(sleep.weights.to_kind(Kind::Float).to_device(Device::Cpu))?;
        let sample_w = wake_sample_weights(idw, &w_next, &w0);
        let density =
            Vec::<f32>::try_from(sleep.density.to_kind(Kind::Float).to_device(Device::Cpu))?;
        let diagnostics = diagnose(data, &density, sample_w.as_deref())?;
        say(&format!(
            "IDW iteration {t}: bandwidth {:.4}, ||w' - w|| {:.2e}, own-term share (median) {:.2}, \
             density~frequency rho {:.2}, head loss share {:.3} (unweighted {:.3}){}{}",
            stats.bandwidth,
            stats.weight_change,
            stats.self_share_median,
            diagnostics.density_frequency_spearman,
            diagnostics.head_loss_share,
            diagnostics.head_loss_share_unweighted,
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
            diagnostics: Some(diagnostics),
        });
        if stopped {
            break;
        }
        w = sleep.weights;
        let wake = fit(
            model,
            &RetrievalTask::new(data).with_item_weights(sample_w.as_deref()),
            &mut step,
            &Fit {
                epochs: idw.wake_epochs.unwrap_or(cfg.epochs),
                journal,
                optimizer,
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

/// The per-item sample weights a wake phase trains with (before `mean_one`): `None` (every
/// sample 1) for the null control, `w_y / p(y)` for the loss-share reading, `w_y` for the
/// literal one. `p` is w(0), the label distribution.
pub fn wake_sample_weights(idw: &IdwConfig, w: &[f32], p: &[f32]) -> Option<Vec<f32>> {
    if idw.null_control {
        return None;
    }
    Some(match idw.weights {
        IdwWeights::LossShare => loss_share_weights(w, p),
        IdwWeights::Literal => w.to_vec(),
    })
}

/// [`IdwDiagnostics`] of one sleep phase over the labelled items: the density's rank correlation
/// with frequency, and the head items' share of the wake loss under `sample_w` (per item,
/// before `mean_one`; `None` = every sample 1) and unweighted.
pub fn diagnose(
    data: &RetrievalData,
    density: &[f32],
    sample_w: Option<&[f32]>,
) -> Result<IdwDiagnostics> {
    let items: Vec<usize> = (1..data.num_items)
        .filter(|&i| data.label_freq[i] > 0)
        .collect();
    let freq: Vec<f64> = items.iter().map(|&i| data.label_freq[i] as f64).collect();
    let dens: Vec<f64> = items.iter().map(|&i| f64::from(density[i])).collect();
    let rho = if items.len() < 2 {
        f64::NAN
    } else {
        longtail_eval::spearman(&dens, &freq).map_err(|e| TrainError::Config {
            key: "idw".into(),
            message: format!("density diagnostics: {e}"),
        })?
    };
    let weight = |i: usize| sample_w.map_or(1.0, |w| f64::from(w[i]));
    // The metrics' `item=head` group (ITEM_GROUP_NAMES = ["tail", "head"]).
    let head = |i: usize| ITEM_GROUP_NAMES.get(usize::from(data.item_group[i])) == Some(&"head");
    let share = |wt: &dyn Fn(usize) -> f64| {
        let (mut h, mut all) = (0.0, 0.0);
        for &i in &items {
            let m = data.label_freq[i] as f64 * wt(i);
            all += m;
            if head(i) {
                h += m;
            }
        }
        if all > 0.0 {
            h / all
        } else {
            f64::NAN
        }
    };
    // The first item of the highest and of the lowest frequency.
    let most = items
        .iter()
        .copied()
        .max_by_key(|&i| (data.label_freq[i], std::cmp::Reverse(i)));
    let least = items.iter().copied().min_by_key(|&i| data.label_freq[i]);
    let ratio = match (most, least) {
        (Some(a), Some(b)) if weight(b) > 0.0 => weight(a) / weight(b),
        _ => f64::NAN,
    };
    Ok(IdwDiagnostics {
        density_frequency_spearman: rho,
        head_loss_share: share(&weight),
        head_loss_share_unweighted: share(&|_| 1.0),
        most_over_least_frequent_weight: ratio,
    })
}
