//! longtail-train: the training loop, evaluation of a trained model on a split, and run
//! manifests. It receives models from a `Registry` and never names one.

pub mod bench;
pub mod check;
pub mod error;
pub mod evaluate;
pub mod experiment;
pub mod fit;
pub mod manifest;
pub mod report;
pub mod resume;
pub mod retrieval;
pub mod schedule;
pub mod step;
pub mod stratified;
pub mod task;
pub mod trainer;

pub use check::{check_experiment, check_experiment_with};
pub use error::{Result, TrainError};
pub use evaluate::{
    check_metrics_output, evaluate_scores, evaluate_scores_file, write_metrics, TEST_SCORES,
};
pub use experiment::{
    check_run_dir, config_record, effective_config, effective_toml, experiment_names, finished_run,
    load_experiment, load_experiments, run_dir, run_experiment, run_experiment_with, DataSource,
    ExperimentConfig, ModelSection, RunOutcome,
};
pub use fit::{fit, Fit, Journal};
pub use manifest::RunManifest;
pub use report::{aggregate, load_runs, write_report, ReportOptions, ReportRow};
pub use schedule::{Schedule, ScheduleContext, ScheduleOutcome, ScheduleRegistry};
pub use step::{GradHook, Optimizer, StandardStep, StepOut, TrainStep};
pub use task::{CtrTask, RetrievalTask, Task};
pub use trainer::{evaluate_ctr, score_samples, EpochLog, LrSchedule, TrainConfig};
