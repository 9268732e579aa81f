//! The outside schedule trains through the extended CLI; its keys and its task are checked
//! before anything trains.

use std::path::Path;
use std::process::{Command, Output};

const CFG: &str = r#"
name = "warm"
dataset = "synthetic-small"
seed = 3
[data]
kind = "synth"
synth = { users = 200, items = 50, clusters = 5 }
[samples]
neg_per_pos = 2
max_hist_len = 10
[model]
name = "meanpool"
[train]
epochs = 2
lr = 0.01
early_stopping_patience = 2
[schedule]
name = "warmup_finetune"
warmup_epochs = 2
warmup_lr = 0.001
"#;

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_longtail-example-custom-model"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn train(dir: &Path, cfg: &str) -> Output {
    std::fs::write(dir.join("c.toml"), cfg).unwrap();
    cli(
        dir,
        &[
            "train", "--config", "c.toml", "--device", "cpu", "--out", "runs",
        ],
    )
}

#[test]
fn outside_schedule_trains_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let o = train(tmp.path(), CFG);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run_dir = tmp.path().join("runs/warm-meanpool-seed3");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["schedule"]["name"], "warmup_finetune");
    assert_eq!(run["schedule"]["record"]["warmup_epochs"], 2);
    let phases: Vec<String> = std::fs::read_to_string(run_dir.join("epochs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["phase"].as_str().unwrap().to_string()
        })
        .collect();
    // Two warm-up epochs, then fine-tuning (early stopping may end it after one).
    assert_eq!(&phases[..2], ["warmup", "warmup"], "{phases:?}");
    assert!(
        phases[2..].iter().all(|p| p == "finetune") && phases.len() >= 3,
        "{phases:?}"
    );
    assert_eq!(run["epochs"].as_array().unwrap().len(), phases.len());
    let listed = cli(tmp.path(), &["schedules"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    for s in ["plain", "two_stage", "pin", "idw", "warmup_finetune"] {
        assert!(listed.contains(s), "{listed}");
    }
}

#[test]
fn outside_schedule_keys_and_task_are_checked_first() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = CFG.replace("warmup_lr = 0.001", "warmup_lrr = 0.001");
    let o = train(tmp.path(), &typo);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warmup_lrr") && err.contains("schedule"),
        "{err}"
    );
    assert!(!tmp.path().join("runs/warm-meanpool-seed3").exists());

    let unknown = CFG.replace("name = \"warmup_finetune\"", "name = \"warmup\"");
    let o = train(tmp.path(), &unknown);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warmup_finetune") && err.contains("unknown schedule"),
        "{err}"
    );

    let retrieval = CFG
        .replace("name = \"meanpool\"", "name = \"twotower\"")
        .replace(
            "[train]",
            "[sequences]\nmax_len = 8\neval_negatives = 10\n[train]",
        );
    let o = train(tmp.path(), &retrieval);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warmup_finetune") && err.contains("retrieval"),
        "{err}"
    );
}
