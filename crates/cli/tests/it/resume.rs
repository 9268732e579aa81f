//! Resume: a run killed after epoch k and continued with `--resume` ends with the same
//! parameters (`model.safetensors`, byte for byte), test metrics and epoch logs as the same run
//! never interrupted, for several k: inside a phase, at a phase boundary (between PIN's stages,
//! between MFN's stage 1 and its main stage), and inside an IDW iteration (after a wake phase,
//! before its sleep phase). The kill is real: the process aborts right after a checkpoint
//! (`LONGTAIL_CRASH_AFTER_EPOCHS`, the crash-injection hook), leaving what a kill leaves.

use super::stderr;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// `longtail train --config cfg.toml` into `dir/out`, with the crash hook and `--resume` when
/// asked.
fn train(dir: &Path, out: &str, crash_after: Option<usize>, resume: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_longtail"));
    c.args([
        "train", "--config", "cfg.toml", "--device", "cpu", "--out", out,
    ])
    .current_dir(dir)
    .env_remove("LONGTAIL_CRASH_AFTER_EPOCHS");
    if resume {
        c.arg("--resume");
    }
    if let Some(k) = crash_after {
        c.env("LONGTAIL_CRASH_AFTER_EPOCHS", k.to_string());
    }
    c.output().expect("the longtail binary runs")
}

/// What must be identical between an uninterrupted and a resumed run.
fn outcome(run: &Path) -> (Vec<u8>, Vec<u8>, Vec<Value>, Vec<Value>) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    // Wall times differ between any two runs; everything else of an epoch must not.
    let strip = |mut e: Value| {
        if let Some(o) = e.as_object_mut() {
            for k in ["train_wall_s", "eval_wall_s", "samples_per_s"] {
                o.remove(k);
            }
        }
        e
    };
    let epochs = manifest["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(strip)
        .collect();
    let journal = std::fs::read_to_string(run.join("epochs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| strip(serde_json::from_str(l).unwrap()))
        .collect();
    (
        std::fs::read(run.join("model.safetensors")).unwrap(),
        std::fs::read(run.join("metrics.json")).unwrap(),
        epochs,
        journal,
    )
}

/// Trains `cfg` once uninterrupted, then for each k kills a run after k epochs and resumes it;
/// every resumed run must equal the uninterrupted one.
fn resumes_identically(cfg: &str, run_name: &str, kills: &[usize]) {
    resumes_identically_on(cfg, run_name, kills, |_| {})
}

/// [`resumes_identically`] after `setup` wrote the config's input files.
fn resumes_identically_on(cfg: &str, run_name: &str, kills: &[usize], setup: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    std::fs::write(dir.path().join("cfg.toml"), cfg).unwrap();
    let o = train(dir.path(), "straight", None, false);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = outcome(&dir.path().join("straight").join(run_name));
    let straight: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("straight").join(run_name).join("run.json")).unwrap(),
    )
    .unwrap();
    assert!(
        straight.get("resumed_phases").is_none(),
        "{}",
        straight["resumed_phases"]
    );
    let total = want.3.len();
    assert!(
        kills.iter().all(|&k| k < total),
        "kills {kills:?} must fall inside the run's {total} epochs"
    );
    for &k in kills {
        let out = format!("killed{k}");
        let o = train(dir.path(), &out, Some(k), false);
        assert!(
            !o.status.success(),
            "the run was to be killed after epoch {k}"
        );
        let ck = dir.path().join(&out).join(format!(".{run_name}.resume"));
        assert!(
            ck.join("resume.json").is_file(),
            "no checkpoint after epoch {k}"
        );
        assert!(
            !dir.path().join(&out).join(run_name).exists(),
            "a killed run leaves no run folder"
        );
        let o = train(dir.path(), &out, None, true);
        assert!(o.status.success(), "resume after {k}: {}", stderr(&o));
        assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(&out).join(run_name).join("run.json")).unwrap(),
        )
        .unwrap();
        assert!(
            manifest["resumed_phases"].as_u64().is_some_and(|n| n >= 1),
            "run.json says the run was resumed: {}",
            manifest["resumed_phases"]
        );
        let got = outcome(&dir.path().join(&out).join(run_name));
        assert!(
            got.0 == want.0,
            "{run_name}: parameters differ after a kill at epoch {k}"
        );
        assert_eq!(got.1, want.1, "{run_name}: metrics differ (kill at {k})");
        assert_eq!(
            got.2, want.2,
            "{run_name}: run.json epochs differ (kill at {k})"
        );
        assert_eq!(
            got.3, want.3,
            "{run_name}: epochs.jsonl differs (kill at {k})"
        );
        assert!(!ck.exists(), "the checkpoint goes once the run is in place");
    }
}

/// Dropout draws from libtorch's generator every step, and early stopping keeps a best epoch:
/// both must come back exactly.
#[test]
fn a_ctr_run_with_dropout_and_early_stopping_resumes_bit_identically() {
    let cfg = r#"
name = "resume-ctr"
dataset = "synthetic-small"
seed = 7
[data]
kind = "synth"
synth = { users = 200, items = 50, clusters = 5 }
[samples]
neg_per_pos = 2
max_hist_len = 10
[model]
name = "basemodel"
params = { hidden = [16, 8], dropout = 0.3 }
[train]
epochs = 5
lr = 0.02
early_stopping_patience = 3
"#;
    resumes_identically(cfg, "resume-ctr-basemodel-seed7", &[1, 3]);
}

/// PIN: killed inside stage 1 and between its stages (stage 2 builds the plugins from the
/// generator, after stage 1's kept parameters).
#[test]
fn a_pin_run_resumes_bit_identically_inside_and_between_its_stages() {
    // Two stage-2 epochs, so a kill can fall inside stage 2 too.
    let cfg = super::pin::PIN_TINY.replace("stage2_epochs = 1", "stage2_epochs = 2");
    assert!(cfg.contains("stage2_epochs = 2"));
    resumes_identically(&cfg, "pin-tiny-pin-seed2", &[1, 2, 3]);
}

/// MFN's two stages: killed in stage 1 (another model), between the stages (the main model is
/// built and its interest centers pre-trained from stage 1's result) and in the main stage.
#[test]
fn an_mfn_two_stage_run_resumes_bit_identically_across_its_stages() {
    resumes_identically_on(
        super::mfn::MFN_TINY,
        "mfn-tiny-mfn-seed2",
        &[1, 2],
        super::mfn::write_tiny_movielens,
    );
}

/// IDW (with early stopping keeping a best epoch, one Adam across the plain training and the
/// wake phases): killed inside a wake phase, after a phase (inside the iteration, before its
/// sleep phase recomputes the density weights) and later.
#[test]
fn an_idw_run_resumes_bit_identically_inside_an_iteration() {
    resumes_identically(
        super::retrieval::IDW_TINY,
        "idw-tiny-twotower-seed5",
        // 2 train epochs, then wake phases of up to 2 epochs sharing the train phase's Adam: 2
        // = between train and wake1 (the shared moments must come back), 4 = after wake1.
        &[1, 2, 3, 4],
    );
}

/// `--resume` with another config is refused naming the flag; without `--resume` a run starts
/// over (saying the old checkpoint is replaced); a finished run is skipped.
#[test]
fn resume_refuses_another_config_and_skips_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
name = "resume-cfg"
dataset = "synthetic-small"
seed = 3
[data]
kind = "synth"
synth = { users = 100, items = 40, clusters = 4 }
[model]
name = "basemodel"
[train]
epochs = 3
"#;
    std::fs::write(dir.path().join("cfg.toml"), cfg).unwrap();
    let o = train(dir.path(), "runs", Some(1), false);
    assert!(!o.status.success());
    std::fs::write(
        dir.path().join("cfg.toml"),
        cfg.replace("epochs = 3", "epochs = 4"),
    )
    .unwrap();
    let o = train(dir.path(), "runs", None, true);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--resume") && e.contains("different config"),
        "{e}"
    );
    let o = train(dir.path(), "runs", None, false);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("starting over"), "{}", stderr(&o));
    let o = train(dir.path(), "runs", None, true);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skip"), "{}", stderr(&o));
}
