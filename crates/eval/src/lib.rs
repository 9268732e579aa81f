//! Metrics for longtail on plain host slices: exact ROC AUC (ties as in scikit-learn), GAUC,
//! per-group AUC, logloss, ranking metrics (HR/NDCG/MRR@K), silhouette, Spearman's rank
//! correlation, tail share and coverage, RelaImpr, streaming [`Metric`]s, JSON reports and PNG
//! plots.
//!
//! Pure: this crate computes and renders but writes no files. [`metrics_json`] returns a report's
//! text and the `plot_*` functions return PNG bytes; callers write them through
//! `longtail_data::atomic` (the one atomic-write helper; eval does not depend on `longtail-data`).
//!
//! No libtorch here: scores come in as `&[f32]` copied off the device, so everything is `Send + Sync`
//! and parallelized with rayon where it pays. Values are checked against scikit-learn goldens
//! (`goldens/make_goldens.py` writes `goldens/goldens.json`; `tests/it` compares to 1e-9; Spearman
//! against scipy: `goldens/make_spearman_goldens.py` writes `goldens/spearman.json`).

pub mod auc;
pub mod correlation;
pub mod coverage;
pub mod error;
pub mod logloss;
pub mod metric;
pub mod plot;
pub mod ranking;
pub mod relaimpr;
pub mod report;
pub mod silhouette;

pub use auc::{auc, auc_by_group, gauc, GaucResult};
pub use correlation::spearman;
pub use coverage::tail_share_and_coverage;
pub use error::{EvalError, Result};
pub use logloss::{logloss, LOGLOSS_EPS};
pub use metric::{
    AucMetric, Direction, GaucMetric, GroupedAucMetric, LoglossMetric, Metric, ScoredSlice,
};
pub use plot::{plot_curves, plot_group_bars, plot_long_tail};
pub use ranking::{
    check_candidate_lists, list_metrics, list_metrics_by_group, topk_metrics,
    topk_metrics_by_group, RankingMetric,
};
pub use relaimpr::rela_impr;
pub use report::{ctr_metrics, metrics_json, read_metrics_json, Metrics};
pub use silhouette::{silhouette, SilhouetteResult, SILHOUETTE_MAX_EXACT};
