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

/// `--skip-finished` completes an interrupted `--seeds` sweep: finished runs of exactly this
/// config are left as they are, the missing seed trains, and a changed config trains again.
#[test]
fn skip_finished_completes_a_sweep_and_retrains_a_changed_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CTR_TINY
        .replace("epochs = 12", "epochs = 1")
        .replace("early_stopping_patience = 2\n", "");
    std::fs::write(dir.path().join("e.toml"), &cfg).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train", "--config", "e.toml", "--device", "cpu", "--out", "runs",
        ];
        args.extend_from_slice(extra);
        super::longtail(&args, dir.path())
    };
    let o = train(&["--seeds", "1,2"]);
    assert!(o.status.success(), "{}", super::stderr(&o));
    let run1 = dir.path().join("runs/engine-tiny-basemodel-seed1/run.json");
    let before = std::fs::read(&run1).unwrap();
    let o = train(&["--seeds", "1,2,3", "--skip-finished"]);
    let err = super::stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("skip [").count(), 2, "{err}");
    assert_eq!(
        std::fs::read(&run1).unwrap(),
        before,
        "a finished run was rewritten"
    );
    assert!(dir
        .path()
        .join("runs/engine-tiny-basemodel-seed3/run.json")
        .exists());
    // Another epoch count is another config: nothing is skipped.
    let o = train(&["--seeds", "1", "--skip-finished", "--epochs", "2"]);
    let err = super::stderr(&o);
    assert!(o.status.success() && !err.contains("skip ["), "{err}");
    let run: Value = serde_json::from_slice(&std::fs::read(&run1).unwrap()).unwrap();
    assert_eq!(run["epochs"].as_array().unwrap().len(), 2);
}

/// `[sessions]` with a prepared folder would be ignored (its samples train without sessions):
/// a config error naming the key, before any data is read.
#[test]
fn sessions_with_a_prepared_folder_are_refused() {
    let reg = longtail_models::builtin_registry().unwrap();
    let text = "name = \"p\"\n[data]\nkind = \"prepared\"\npath = \"nowhere\"\n\
                [sessions]\nwindows = [\"all\"]\n[model]\nname = \"him\"\n";
    let cfg = longtail_train::ExperimentConfig::from_toml(text, "p.toml").unwrap();
    let e = longtail_train::check_experiment(&reg, &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'sessions'") && e.contains("prepared"), "{e}");
}
