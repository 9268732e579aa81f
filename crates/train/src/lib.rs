//! longtail-train: the training loop, evaluation of a trained model on a split, and run
//! manifests. It receives models from a `Registry` and never names one.

pub mod error;
pub mod evaluate;
pub mod experiment;
pub mod manifest;
pub mod report;
pub mod retrieval;
pub mod stratified;
pub mod trainer;

pub use error::{Result, TrainError};
pub use evaluate::{evaluate_scores, evaluate_scores_file, TEST_SCORES};
pub use experiment::{
    experiment_names, load_experiment, run_experiment, DataSource, ExperimentConfig, ModelSection,
    RunOutcome,
};
pub use manifest::RunManifest;
pub use report::{aggregate, load_runs, write_report, ReportOptions, ReportRow};
pub use trainer::{evaluate_ctr, fit, score_samples, EpochLog, TrainConfig};
