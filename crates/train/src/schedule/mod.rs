//! Schedules: what a run does between building its model and testing it, as registered plugins
//! beside the model [`Registry`]. A schedule is a sequence of [`crate::fit::fit`] calls with its
//! own steps, phases and state (MFN's two stages, PIN's stratified stage and plugin stage, IDW's
//! sleep/wake iterations and calibration); the loop, the step, the journal and the manifest are
//! the engine's. Built in, one file each: [`plain`], [`two_stage`], [`pin`], [`idw`]. A crate
//! outside the workspace registers its own with [`ScheduleRegistry::register`] and names it in a
//! config's `[schedule]` section (see `examples/custom-model` and docs/adding-a-model.md).
//!
//! Which schedule a run uses: `[schedule] name = "..."` when given; else the built-in whose
//! section the config has (`[pretrain]` = `two_stage`, `[pin]` = `pin`, `[idw]` = `idw`); else
//! `plain`. A schedule declares the tasks it accepts; any other combination is a config error
//! naming both.

pub mod idw;
pub mod pin;
pub mod plain;
pub mod two_stage;

use crate::error::{Result, TrainError};
use crate::experiment::ExperimentConfig;
use crate::fit::{Fit, Journal};
use crate::task::{CtrTask, RetrievalTask, Task};
use crate::trainer::{EpochLog, TrainConfig};
use longtail_core::{BuildContext, Instance, Pretrained, Registry};
use longtail_data::{CtrDataset, ItemFeatures, RetrievalData};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Device;

/// `[schedule]`: a registered schedule by name, with its own keys beside `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSection {
    pub name: String,
    /// The schedule's own keys (it checks them: unknown keys are its errors to report).
    #[serde(flatten)]
    pub params: toml::Table,
}

/// The data a schedule trains on.
pub enum ScheduleData<'a> {
    /// CTR samples; mutable because a schedule may select its training rows (PIN tail-only).
    Ctr(&'a mut CtrDataset),
    Retrieval(&'a RetrievalData),
}

impl ScheduleData<'_> {
    pub fn kind(&self) -> longtail_core::Task {
        match self {
            ScheduleData::Ctr(_) => longtail_core::Task::Ctr,
            ScheduleData::Retrieval(_) => longtail_core::Task::Retrieval,
        }
    }
}

/// Everything a schedule may use.
pub struct ScheduleContext<'a> {
    pub models: &'a Registry,
    pub cfg: &'a ExperimentConfig,
    /// The `[schedule]` section's keys but `name` (empty when the schedule was chosen by a
    /// built-in section or by default).
    pub params: &'a toml::Table,
    pub data: ScheduleData<'a>,
    /// Item side features of a retrieval run, when the data has them (CTR data carry their own).
    pub items: Option<&'a ItemFeatures>,
    pub device: Device,
    /// The run folder being written (staged; files a schedule writes here end up in the run).
    pub dir: &'a Path,
    /// `epochs.jsonl`: give it to every [`Fit`] (see [`ScheduleContext::fit_spec`]).
    pub journal: &'a Journal,
}

impl ScheduleContext<'_> {
    /// Builds the run's model (`[model]`), with a stage-1 checkpoint when given. The libtorch
    /// generator is seeded once when the run starts, so the initial parameters follow from the
    /// seed and what the schedule drew before (a stage-1 model's training, for `two_stage`).
    pub fn build_model(&self, pretrained: Option<&Pretrained>) -> Result<Instance> {
        let fm = match &self.data {
            ScheduleData::Ctr(d) => &d.feature_map,
            ScheduleData::Retrieval(d) => &d.feature_map,
        };
        let items = match &self.data {
            ScheduleData::Ctr(d) => d.items.as_ref(),
            ScheduleData::Retrieval(_) => self.items,
        };
        let ctx = BuildContext::new(fm, &self.cfg.model.params, self.device)
            .with_items(items)
            .with_pretrained(pretrained);
        Ok(self.models.build(&self.cfg.model.name, &ctx)?)
    }

    /// The task of the run's data (batches and validation), with per-item loss weights for
    /// retrieval (ignored for CTR, where the config check refuses them).
    pub fn task(&self, item_weight: Option<&[f32]>) -> Box<dyn Task + '_> {
        match &self.data {
            ScheduleData::Ctr(d) => Box::new(CtrTask::new(d)),
            ScheduleData::Retrieval(d) => {
                Box::new(RetrievalTask::new(d).with_item_weights(item_weight))
            }
        }
    }

    /// A phase of `train.epochs` epochs with the run's journal and device.
    pub fn fit_spec<'t>(&'t self, phase: &str, train: &'t TrainConfig, seed: u64) -> Fit<'t> {
        Fit {
            journal: Some(self.journal),
            ..Fit::new(phase, train, seed, self.device)
        }
    }

    /// The CTR data (an error naming the schedule for retrieval data).
    pub fn ctr_data(&mut self, schedule: &str) -> Result<&mut CtrDataset> {
        match &mut self.data {
            ScheduleData::Ctr(d) => Ok(d),
            ScheduleData::Retrieval(_) => Err(wrong_task(schedule, longtail_core::Task::Retrieval)),
        }
    }

    /// The retrieval data (an error naming the schedule for CTR data).
    pub fn retrieval_data(&self, schedule: &str) -> Result<&RetrievalData> {
        match &self.data {
            ScheduleData::Retrieval(d) => Ok(d),
            ScheduleData::Ctr(_) => Err(wrong_task(schedule, longtail_core::Task::Ctr)),
        }
    }
}

pub(crate) fn wrong_task(schedule: &str, task: longtail_core::Task) -> TrainError {
    TrainError::Config {
        key: "schedule".into(),
        message: format!("schedule '{schedule}' does not train {task:?} runs"),
    }
}

/// What the built-in schedules record under their historic `run.json` keys (kept so that
/// published manifests and `longtail report` keep reading them).
#[derive(Default)]
pub struct LegacyRecords {
    pub stage1: Option<crate::manifest::StageRecord>,
    pub model_pretrain: Option<longtail_core::PretrainLog>,
    pub pin: Option<crate::stratified::PinLog>,
    pub retrieval: Option<crate::retrieval::RetrievalLog>,
}

/// A schedule's result: the trained model (tested by the run), every epoch in order, and its
/// own record (`run.json` `schedule.record`).
pub struct ScheduleOutcome {
    pub model: Instance,
    pub epochs: Vec<EpochLog>,
    pub record: serde_json::Value,
    pub legacy: LegacyRecords,
}

/// A training schedule.
pub trait Schedule: Send + Sync {
    /// The name a config gives in `[schedule] name = "..."`.
    fn name(&self) -> &'static str;
    /// One line for `longtail schedules`.
    fn description(&self) -> &'static str;
    /// The data kinds it trains.
    fn tasks(&self) -> &'static [longtail_core::Task];
    /// Checks the schedule's keys (`params`: `[schedule]` but `name`) and its sections of `cfg`
    /// before any data is read; errors name the key.
    fn check(&self, cfg: &ExperimentConfig, params: &toml::Table) -> Result<()>;
    /// `params` with this schedule's defaults filled in (what `longtail check` prints and the
    /// config hash covers, so spelling a default out does not change a run's hash). The default
    /// returns them as written; a schedule with typed keys should parse and re-serialise them.
    fn effective_params(&self, params: &toml::Table) -> Result<toml::Table> {
        Ok(params.clone())
    }
    /// Trains: builds the model ([`ScheduleContext::build_model`]) and runs its phases.
    fn run(&self, cx: &mut ScheduleContext<'_>) -> Result<ScheduleOutcome>;
}

/// The registered schedules.
pub struct ScheduleRegistry {
    schedules: Vec<Box<dyn Schedule>>,
}

impl ScheduleRegistry {
    /// An empty registry (see [`ScheduleRegistry::builtin`]).
    pub fn empty() -> Self {
        Self {
            schedules: Vec::new(),
        }
    }

    /// `plain`, `two_stage`, `pin` and `idw`.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        for s in [
            Box::new(plain::Plain) as Box<dyn Schedule>,
            Box::new(two_stage::TwoStage),
            Box::new(pin::Pin),
            Box::new(idw::Idw),
        ] {
            // The built-in names are distinct.
            let _ = r.register(s);
        }
        r
    }

    /// Adds a schedule; a name already registered is an error.
    pub fn register(&mut self, s: Box<dyn Schedule>) -> Result<()> {
        if self.schedules.iter().any(|x| x.name() == s.name()) {
            return Err(TrainError::Config {
                key: "schedule.name".into(),
                message: format!("a schedule named '{}' is already registered", s.name()),
            });
        }
        self.schedules.push(s);
        Ok(())
    }

    /// The schedule named `name`, or an error listing the registered ones.
    pub fn get(&self, name: &str) -> Result<&dyn Schedule> {
        self.schedules
            .iter()
            .find(|s| s.name() == name)
            .map(|s| s.as_ref())
            .ok_or_else(|| TrainError::Config {
                key: "schedule.name".into(),
                message: format!(
                    "unknown schedule '{name}'; registered: {}",
                    self.names().join(", ")
                ),
            })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.schedules.iter().map(|s| s.name()).collect()
    }

    /// `(name, description, tasks)` of every schedule, in registration order.
    pub fn list(&self) -> Vec<(&'static str, &'static str, &'static [longtail_core::Task])> {
        self.schedules
            .iter()
            .map(|s| (s.name(), s.description(), s.tasks()))
            .collect()
    }

    /// The schedule `cfg` runs and its `[schedule]` keys, checked: the name is registered, it
    /// accepts the run's task, at most one built-in section chooses it, and its own check passes.
    pub fn resolve<'c>(
        &self,
        cfg: &'c ExperimentConfig,
    ) -> Result<(&dyn Schedule, std::borrow::Cow<'c, toml::Table>)> {
        let sections: Vec<(&str, &str)> = [
            (cfg.pretrain.is_some(), "pretrain", two_stage::NAME),
            (cfg.pin.is_some(), "pin", pin::NAME),
            (cfg.idw.is_some(), "idw", idw::NAME),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, section, name)| (section, name))
        .collect();
        if sections.len() > 1 {
            return Err(TrainError::Config {
                key: sections[1].0.into(),
                message: format!(
                    "[{}] and [{}] choose two schedules ({} and {}); a run has one",
                    sections[0].0, sections[1].0, sections[0].1, sections[1].1
                ),
            });
        }
        let (name, params) = match (&cfg.schedule, sections.first()) {
            (Some(s), Some((section, implied))) if s.name != *implied => {
                return Err(TrainError::Config {
                    key: "schedule.name".into(),
                    message: format!(
                        "[schedule] name = \"{}\" but [{section}] is the section of schedule \
                         '{implied}'; remove one",
                        s.name
                    ),
                })
            }
            (Some(s), _) => (s.name.as_str(), std::borrow::Cow::Borrowed(&s.params)),
            (None, Some((_, implied))) => (*implied, std::borrow::Cow::Owned(toml::Table::new())),
            (None, None) => (plain::NAME, std::borrow::Cow::Owned(toml::Table::new())),
        };
        let schedule = self.get(name)?;
        let task = if cfg.sequences.is_some() {
            longtail_core::Task::Retrieval
        } else {
            longtail_core::Task::Ctr
        };
        if !schedule.tasks().contains(&task) {
            // The key is what chose the schedule: its section (`[pin]` in a retrieval run) or
            // `[schedule] name`.
            let (key, chosen) = match (&cfg.schedule, sections.first()) {
                (None, Some((section, _))) => (section.to_string(), format!("[{section}] is")),
                _ => ("schedule.name".to_string(), "it is".to_string()),
            };
            let (what, fix) = match task {
                longtail_core::Task::Retrieval => {
                    ("retrieval runs ([sequences])", "remove one of the two")
                }
                longtail_core::Task::Ctr => (
                    "CTR runs (no [sequences])",
                    "add a [sequences] section and a retrieval model such as `twotower`",
                ),
            };
            return Err(TrainError::Config {
                key,
                message: format!(
                    "{chosen} the section of schedule '{name}', which does not train {what} \
                     (it trains {}): {fix}",
                    task_names(schedule.tasks())
                ),
            });
        }
        schedule.check(cfg, &params)?;
        Ok((schedule, params))
    }
}

/// `CTR runs and retrieval runs`, for messages.
fn task_names(tasks: &[longtail_core::Task]) -> String {
    let names: Vec<&str> = tasks
        .iter()
        .map(|t| match t {
            longtail_core::Task::Ctr => "CTR runs",
            longtail_core::Task::Retrieval => "retrieval runs",
        })
        .collect();
    names.join(" and ")
}

impl Default for ScheduleRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

/// A schedule with no keys of its own: any key in `params` is an error naming it.
pub fn no_params(schedule: &str, params: &toml::Table) -> Result<()> {
    match params.keys().next() {
        None => Ok(()),
        Some(k) => Err(TrainError::Config {
            key: format!("schedule.{k}"),
            message: format!("schedule '{schedule}' has no key '{k}'"),
        }),
    }
}

/// A typed schedule section from `[schedule]`'s keys (unknown keys and wrong types are errors
/// naming `schedule.<key>`).
pub fn parse_params<T: serde::de::DeserializeOwned>(params: &toml::Table) -> Result<T> {
    toml::Value::Table(params.clone())
        .try_into()
        .map_err(|e: toml::de::Error| TrainError::Config {
            key: "schedule".into(),
            message: e.message().trim().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> ExperimentConfig {
        let text = format!(
            "name = \"t\"\n[data]\nkind = \"synth\"\n[model]\nname = \"basemodel\"\n{extra}"
        );
        ExperimentConfig::from_toml(&text, "t.toml").unwrap()
    }

    fn err(extra: &str) -> String {
        match ScheduleRegistry::builtin().resolve(&cfg(extra)) {
            Ok((s, _)) => panic!("{extra}: resolved to {}", s.name()),
            Err(e) => e.to_string(),
        }
    }

    fn name(extra: &str) -> &'static str {
        ScheduleRegistry::builtin()
            .resolve(&cfg(extra))
            .unwrap()
            .0
            .name()
    }

    #[test]
    fn the_schedule_follows_the_config() {
        assert_eq!(name(""), "plain");
        assert_eq!(name("[pin]\nprior = \"user_share\"\n"), "pin");
        assert_eq!(
            name("[pretrain]\nmodel = { name = \"basemodel\" }\n"),
            "two_stage"
        );
        assert_eq!(
            name("[sequences]\nmax_len = 8\n[idw]\nmax_iterations = 2\n"),
            "idw"
        );
        // `[schedule]` with a built-in's keys is that built-in's section.
        assert_eq!(
            name("[schedule]\nname = \"pin\"\nprior = \"user_share\"\n"),
            "pin"
        );
        assert_eq!(name("[schedule]\nname = \"pin\"\n[pin]\n"), "pin");
        let p = pin::config(
            &cfg(""),
            &toml::from_str("prior = \"user_share\"\nstage2 = false").unwrap(),
        )
        .unwrap();
        assert_eq!(p.prior, crate::stratified::Prior::UserShare);
        assert!(!p.stage2);
    }

    #[test]
    fn conflicts_unknown_names_wrong_tasks_and_keys_are_errors() {
        let e = err("[pin]\n[pretrain]\nmodel = { name = \"basemodel\" }\n");
        assert!(e.contains("[pretrain]") && e.contains("[pin]"), "{e}");
        let e = err("[schedule]\nname = \"idw\"\n[pin]\n");
        assert!(e.contains("schedule.name") && e.contains("[pin]"), "{e}");
        let e = err("[schedule]\nname = \"warmup\"\n");
        assert!(e.contains("unknown schedule 'warmup'"), "{e}");
        assert!(e.contains("plain, two_stage, pin, idw"), "{e}");
        let e = err("[sequences]\nmax_len = 8\n[schedule]\nname = \"pin\"\n");
        assert!(e.contains("'pin'") && e.contains("retrieval"), "{e}");
        let e = err("[schedule]\nname = \"idw\"\n");
        assert!(e.contains("'idw'") && e.contains("CTR"), "{e}");
        // A schedule chosen by its section is refused under that section's key.
        for (extra, key) in [
            ("[sequences]\nmax_len = 8\n[pin]\n", "'pin'"),
            (
                "[sequences]\nmax_len = 8\n[pretrain]\nmodel = { name = \"basemodel\" }\n",
                "'pretrain'",
            ),
            ("[idw]\nmax_iterations = 2\n", "'idw'"),
        ] {
            let e = err(extra);
            assert!(
                e.contains(key) && !e.contains("schedule.name"),
                "{extra}: {e}"
            );
        }
        let e = err("[schedule]\nname = \"plain\"\nepochs = 3\n");
        assert!(e.contains("schedule.epochs"), "{e}");
        let e = err("[schedule]\nname = \"pin\"\npriorr = \"user_share\"\n");
        assert!(e.contains("priorr"), "{e}");
        let e = err("[schedule]\nname = \"pin\"\nmomentum = 2.0\n");
        assert!(e.contains("momentum"), "{e}");
    }

    #[test]
    fn registering_a_name_twice_is_an_error() {
        let mut r = ScheduleRegistry::builtin();
        let e = r.register(Box::new(plain::Plain)).unwrap_err().to_string();
        assert!(e.contains("already registered"), "{e}");
        assert_eq!(r.names(), ["plain", "two_stage", "pin", "idw"]);
    }
}
