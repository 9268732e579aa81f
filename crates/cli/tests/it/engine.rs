//! The one training engine: early stopping in the metric's direction and the live per-epoch log.

use super::{journal_matches, train_ok};
use serde_json::Value;

const CTR_TINY: &str = r#"
name = "engine-tiny"
dataset = "synthetic-small"
seed = 4
[data]
kind = "synth"
synth = { users = 300, items = 60, clusters = 6 }
[samples]
neg_per_pos = 2
max_hist_len = 10
[model]
name = "basemodel"
[train]
epochs = 12
lr = 0.05
early_stopping_patience = 2
early_stopping_metric = "logloss"
"#;

/// Early stopping on `logloss` keeps the epoch with the *lowest* validation logloss and stops
/// `patience` epochs after it; `epochs.jsonl` holds every epoch run.json records.
#[test]
fn early_stopping_on_logloss_keeps_the_lowest_and_the_journal_has_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_ok(
        dir.path(),
        "e.toml",
        CTR_TINY,
        "engine-tiny-basemodel-seed4",
    );
    let epochs = run["epochs"].as_array().unwrap();
    let ll: Vec<f64> = epochs
        .iter()
        .map(|e| e["valid"]["logloss"].as_f64().unwrap())
        .collect();
    let best = (0..ll.len())
        .min_by(|&a, &b| ll[a].partial_cmp(&ll[b]).unwrap().then(a.cmp(&b)))
        .unwrap();
    let kept: Vec<usize> = (0..epochs.len())
        .filter(|&i| epochs[i]["kept"].as_bool() == Some(true))
        .collect();
    assert_eq!(
        kept,
        vec![best],
        "kept epoch is the lowest valid logloss: {ll:?}"
    );
    assert!(
        epochs.len() == 12 || epochs.len() == best + 1 + 2,
        "{} epochs, best {best}: {ll:?}",
        epochs.len()
    );
    // At lr 0.05 the model overfits: a later epoch is worse, so higher-is-better would differ.
    assert!(ll.iter().any(|&v| v > ll[best]), "{ll:?}");
    let logged: Vec<(String, Value)> = epochs
        .iter()
        .map(|e| ("train".to_string(), e.clone()))
        .collect();
    journal_matches(
        &dir.path().join("runs/engine-tiny-basemodel-seed4"),
        &logged,
    );
}
