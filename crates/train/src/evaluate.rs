//! Metrics from a scores table (`longtail eval`): the CTR family always, ranking metrics per
//! candidate list when the table has a `list` column.

use crate::error::{Result, TrainError};
use longtail_data::atomic::{guard_output, Replaceable};
use longtail_data::{ScoresTable, ITEM_GROUP_NAMES, USER_GROUP_NAMES};
use longtail_eval::{
    check_candidate_lists, ctr_metrics, list_metrics, list_metrics_by_group, Metrics, ScoredSlice,
};
use std::path::Path;

/// The file a run writes its scored test split to.
pub const TEST_SCORES: &str = "test_scores.parquet";

/// AUC, logloss, GAUC and per-group AUC; with `list`, also `hr@K`, `ndcg@K`, `mrr@K` (per item
/// group when `item_group` is present). The CTR family needs scores that are probabilities for
/// logloss to mean anything; AUC-type metrics only need an order.
pub fn evaluate_scores(t: &ScoresTable, ks: &[usize]) -> Result<Metrics> {
    let mut s = ScoredSlice::new(&t.score, &t.label).with_users(&t.user);
    if let Some(g) = &t.user_group {
        s = s.with_user_group(g);
    }
    if let Some(g) = &t.item_group {
        s = s.with_item_group(g);
    }
    let mut m = ctr_metrics(&s, &USER_GROUP_NAMES, &ITEM_GROUP_NAMES)?;
    if let Some(lists) = &t.list {
        if ks.is_empty() {
            return Err(TrainError::Config {
                key: "k".into(),
                message: "ranking metrics need at least one K".into(),
            });
        }
        check_candidate_lists(lists, &t.label, ks)?;
        let ranking = match &t.item_group {
            Some(g) => list_metrics_by_group(lists, &t.score, &t.label, g, &ITEM_GROUP_NAMES, ks)?,
            None => list_metrics(lists, &t.score, &t.label, ks)?,
        };
        m.extend(ranking);
    }
    Ok(m)
}

/// Reads `scores`, evaluates, and writes `out_dir/metrics.json`; returns the metrics.
pub fn evaluate_scores_file(scores: &Path, out_dir: &Path, ks: &[usize]) -> Result<Metrics> {
    check_metrics_output(scores, out_dir)?;
    let t = ScoresTable::read_parquet(scores)?;
    // Metric errors (a NaN score, a list with two positives) are about this file: say so.
    let m = evaluate_scores(&t, ks).map_err(|e| match e {
        TrainError::Eval(e) => TrainError::Input {
            path: scores.to_path_buf(),
            message: e.to_string(),
        },
        other => other,
    })?;
    write_metrics(&out_dir.join("metrics.json"), &m)?;
    Ok(m)
}

/// Checks where [`evaluate_scores_file`] will write before it reads anything: `out_dir/metrics.json`
/// must not be the scores file, and an existing one must be an earlier metrics file.
pub fn check_metrics_output(scores: &Path, out_dir: &Path) -> Result<()> {
    let is_metrics = |p: &Path| longtail_eval::read_metrics_json(p).is_ok();
    guard_output(
        &out_dir.join("metrics.json"),
        &[scores],
        false,
        Replaceable::If(&is_metrics),
        "metrics file",
    )?;
    Ok(())
}

/// Writes `metrics.json` atomically (flat keys, non-finite values as `null`).
pub fn write_metrics(path: &Path, m: &Metrics) -> Result<()> {
    let text = longtail_eval::metrics_json(m)?;
    Ok(longtail_data::atomic::write_bytes(path, text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctr_and_list_metrics_together() {
        // Two lists; the positive ranks 1st in list 7 and 2nd in list 8.
        let t = ScoresTable {
            user: vec![1, 1, 1, 2, 2, 2],
            item: vec![1, 2, 3, 4, 5, 6],
            label: vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            score: vec![0.9, 0.1, 0.2, 0.5, 0.6, 0.1],
            user_group: None,
            item_group: None,
            list: Some(vec![7, 7, 7, 8, 8, 8]),
        };
        let m = evaluate_scores(&t, &[1, 2]).unwrap();
        assert_eq!(m["hr@1"], 0.5);
        assert_eq!(m["hr@2"], 1.0);
        assert!((m["mrr@2"] - 0.75).abs() < 1e-12);
        assert!(m.contains_key("auc") && m.contains_key("gauc"));
        assert!(evaluate_scores(&t, &[]).is_err());
    }
}
