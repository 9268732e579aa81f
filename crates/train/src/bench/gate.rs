//! The quality gate: fixed, small, same-seed CPU runs (one per model family and per schedule, and
//! one real dataset), whose test metrics `bench compare` holds to a tight tolerance. Same-seed CPU
//! runs repeat exactly at a fixed thread count, so a change of these numbers is a change of
//! behaviour: it must be blessed on purpose (`longtail bench bless`).

use crate::bench::report::QualityRun;
use crate::error::{Result, TrainError};
use crate::experiment::{experiment_names, load_experiment, run_experiment, ExperimentConfig};
use longtail_core::{DeviceSpec, Registry};
use std::path::Path;
use std::time::Instant;

/// The gate's blocks in file order (all of them, or the `only` ones), checked before any runs.
pub fn gate_configs(
    registry: &Registry,
    config: &Path,
    only: Option<&[String]>,
) -> Result<Vec<ExperimentConfig>> {
    let text = std::fs::read_to_string(config).map_err(|e| crate::error::io(config, e))?;
    let origin = config.display().to_string();
    let names = experiment_names(&text);
    if names.is_empty() {
        // A syntax error gives no names: show it (with its line) rather than gate on nothing.
        if toml::from_str::<toml::Table>(&text).is_err() {
            load_experiment(&text, &origin, None)?;
        }
        return Err(TrainError::Config {
            key: "experiments".into(),
            message: format!(
                "{origin} has no [experiments.NAME] blocks: a gate config lists its runs as named \
                 blocks (see benches/gate.toml)"
            ),
        });
    }
    if let Some(only) = only {
        if let Some(o) = only.iter().find(|o| !names.contains(o)) {
            return Err(TrainError::Config {
                key: "only".into(),
                message: format!(
                    "no gate run '{o}' in {origin}; it has: {}",
                    names.join(", ")
                ),
            });
        }
    }
    let mut cfgs = Vec::new();
    for n in names.iter().filter(|n| only.is_none_or(|o| o.contains(n))) {
        let mut cfg = load_experiment(&text, &origin, Some(n))?;
        cfg.train.progress = false;
        crate::check::check_experiment(registry, &cfg)?;
        cfgs.push(cfg);
    }
    Ok(cfgs)
}

/// Runs the gate's blocks on the CPU into `out` and returns each run's finite test metrics.
/// `log` gets one line per run.
pub fn run_gate(
    registry: &Registry,
    cfgs: &[ExperimentConfig],
    out: &Path,
    log: &dyn Fn(&str),
) -> Result<Vec<QualityRun>> {
    let mut runs = Vec::new();
    for (i, cfg) in cfgs.iter().enumerate() {
        let t = Instant::now();
        let outcome = run_experiment(
            registry,
            cfg,
            DeviceSpec::Cpu,
            out,
            "longtail bench gate",
            None,
        )?;
        let wall_s = t.elapsed().as_secs_f64();
        log(&format!(
            "gate [{}/{}] {} ({}) in {wall_s:.1}s",
            i + 1,
            cfgs.len(),
            cfg.name,
            cfg.model.name
        ));
        runs.push(QualityRun {
            id: cfg.name.clone(),
            metrics: outcome
                .manifest
                .metrics
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            wall_s,
        });
    }
    Ok(runs)
}
