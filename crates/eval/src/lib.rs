//! Metrics for longtail on plain host slices: exact ROC AUC (ties as in scikit-learn), GAUC,
//! per-group AUC, logloss, streaming [`Metric`]s and JSON reports.
//!
//! No libtorch here: scores come in as `&[f32]` copied off the device, so everything is `Send + Sync`
//! and parallelized with rayon where it pays. Values are checked against scikit-learn goldens
//! (`goldens/make_goldens.py` writes `goldens/goldens.json`; `tests/it` compares to 1e-9).

pub mod auc;
pub mod error;
pub mod logloss;
pub mod metric;
pub mod report;

pub use auc::{auc, auc_by_group, gauc, GaucResult};
pub use error::{EvalError, Result};
pub use logloss::{logloss, LOGLOSS_EPS};
pub use metric::{
    AucMetric, Direction, GaucMetric, GroupedAucMetric, LoglossMetric, Metric, ScoredSlice,
};
pub use report::{ctr_metrics, read_metrics_json, write_metrics_json, Metrics};
