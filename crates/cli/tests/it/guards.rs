//! Inputs found by an adversarial pass over every command (2026-12-02): each case here was a
//! panic, an abort, a silently accepted typo or an overwritten user file before, and is a one-line
//! error naming the key, flag or file now.

use super::{fails_with, longtail, stderr};
use std::path::{Path, PathBuf};

fn cfg(extra_top: &str, train: &str, sequences: bool) -> longtail_train::ExperimentConfig {
    let seq = if sequences {
        "[sequences]\nmax_len = 8\n"
    } else {
        ""
    };
    let model = if sequences { "twotower" } else { "basemodel" };
    let text = format!(
        "name = \"g\"\n{extra_top}\n[data]\nkind = \"synth\"\n{seq}[model]\nname = \"{model}\"\n\
         [train]\n{train}\n"
    );
    longtail_train::ExperimentConfig::from_toml(&text, "g.toml").unwrap()
}

fn check(c: &longtail_train::ExperimentConfig) -> Result<(), String> {
    let reg = longtail_models::builtin_registry().unwrap();
    longtail_train::check_experiment(&reg, c).map_err(|e| e.to_string())
}

#[test]
fn epochs_names_and_early_stopping_metrics_are_checked_before_training() {
    // An epoch count of 2^32 - 1 aborted (the epoch log was sized by it).
    let e = check(&cfg("", "epochs = 4294967295", false)).unwrap_err();
    assert!(e.contains("train.epochs"), "{e}");
    // A name is one folder-name component: it wrote outside --out, or hidden, or nameless.
    for name in ["../escaped", "/abs/x", "a/b", "", ".hidden", "tab\there"] {
        let c = cfg("", "", false);
        let c = longtail_train::ExperimentConfig {
            name: name.into(),
            ..c
        };
        let e = check(&c).unwrap_err();
        assert!(e.contains("'name'"), "{name:?}: {e}");
    }
    // A misspelled metric failed after the first epoch, or (without patience) selected nothing.
    for (metric, retrieval) in [
        ("aucc", false),
        ("auc/user=tial", false),
        ("gauc/user=tail", false),
        ("ndcg@20", false),
        ("ndcg@10", true),
        ("logloss", true),
        ("auc/user=tail", true),
    ] {
        let c = cfg(
            "",
            &format!("early_stopping_metric = \"{metric}\""),
            retrieval,
        );
        let e = check(&c).unwrap_err();
        assert!(
            e.contains("train.early_stopping_metric") && e.contains(metric),
            "{metric}: {e}"
        );
    }
    for (metric, retrieval) in [
        ("auc", false),
        ("logloss", false),
        ("auc/user=tail", false),
        ("auc/item=head", false),
        ("ndcg@20", true),
        ("hr@5/item=tail", true),
        ("auc", true),
    ] {
        let c = cfg(
            "",
            &format!("early_stopping_metric = \"{metric}\""),
            retrieval,
        );
        check(&c).unwrap_or_else(|e| panic!("{metric}: {e}"));
    }
}

fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/baseline/bench.json")
}

#[test]
fn bench_outputs_never_replace_inputs_or_user_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(baseline(), d.join("base.json")).unwrap();
    std::fs::copy(baseline(), d.join("new.json")).unwrap();
    std::fs::write(d.join("notes.md"), "my notes").unwrap();
    let compare = |out: &str| {
        longtail(
            &["bench", "compare", "base.json", "new.json", "--out", out],
            d,
        )
    };
    fails_with(&compare("new.json"), &["new.json", "input"]);
    fails_with(
        &compare("notes.md"),
        &["notes.md", "not a comparison table"],
    );
    assert_eq!(
        std::fs::read_to_string(d.join("notes.md")).unwrap(),
        "my notes"
    );
    // Its own earlier table is replaced.
    for _ in 0..2 {
        let o = compare("cmp.md");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = longtail(&["bench", "bless", "new.json", "--baseline", "notes.md"], d);
    fails_with(&o, &["notes.md", "benchmark baseline"]);
    let o = longtail(&["bench", "bless", "new.json", "--baseline", "new.json"], d);
    fails_with(&o, &["new.json", "input"]);
    std::fs::write(
        d.join("tmpl.md"),
        "# t\n<!-- GENERATED -->\n<!-- RESULTS -->\n",
    )
    .unwrap();
    let docs = |out: &str| {
        longtail(
            &[
                "bench",
                "docs",
                "new.json",
                "--template",
                "tmpl.md",
                "--out",
                out,
            ],
            d,
        )
    };
    fails_with(&docs("tmpl.md"), &["tmpl.md", "input"]);
    fails_with(&docs("notes.md"), &["notes.md", "benchmark page"]);
    for _ in 0..2 {
        let o = docs("page.md");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(
        std::fs::read_to_string(d.join("notes.md")).unwrap(),
        "my notes"
    );
}

#[test]
fn bench_sizes_and_gate_configs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 10^8 rows per batch aborted on a failed allocation.
    let o = longtail(
        &[
            "bench",
            "--model",
            "basemodel",
            "--batch-size",
            "100000000",
            "--steps",
            "2",
        ],
        d,
    );
    fails_with(&o, &["--batch-size"]);
    // A gate config that does not parse, or has no blocks, gated nothing and passed.
    std::fs::write(d.join("bad.toml"), "[x\n").unwrap();
    let o = longtail(&["bench", "gate", "--config", "bad.toml"], d);
    fails_with(&o, &["bad.toml", "line 1"]);
    std::fs::write(d.join("empty.toml"), "name = \"x\"\n").unwrap();
    let o = longtail(&["bench", "gate", "--config", "empty.toml"], d);
    fails_with(&o, &["empty.toml", "[experiments.NAME]"]);
}

#[test]
fn a_report_counts_each_run_once_and_needs_a_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = longtail(
        &["demo", "--out", "runs", "--epochs", "1", "--device", "cpu"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run = "runs/demo-basemodel-seed42";
    let o = longtail(&["report", run, &format!("./{run}"), "--out", "rep"], d);
    fails_with(&o, &["given twice"]);
    let o = longtail(&["report", "runs", run, "--out", "rep"], d);
    fails_with(&o, &["given twice"]);
    let o = longtail(&["report", run, "--out", "rep", "--name", ""], d);
    fails_with(&o, &["--name"]);
    let o = longtail(&["report", run, "--out", "rep", "--name", "a/b"], d);
    fails_with(&o, &["--name"]);
    assert!(!d.join("rep").exists());
    let o = longtail(&["report", run, "--out", "rep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn out_must_be_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("afile"), "x").unwrap();
    // It failed inside the checkpoint folder (`afile/.demo-basemodel-seed42.resume: Not a
    // directory`).
    let o = longtail(&["demo", "--out", "afile", "--epochs", "1"], dir.path());
    let e = fails_with(&o, &["--out", "afile", "not a folder"]);
    assert!(!e.contains(".resume"), "{e}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("afile")).unwrap(),
        "x"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // `longtail ... | head` closes the pipe early: printing then failed with "internal error
    // (please report it): failed printing to stdout: Broken pipe".
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_longtail"))
        .arg("models")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("internal error"), "{err}");
    assert!(
        matches!(o.status.code(), Some(0) | Some(141)),
        "{:?} {err}",
        o.status
    );
}

#[test]
fn a_run_folder_clash_names_both_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // Block `c` sets `name = "a"`: the message said "experiments 'a' and 'a'".
    let text = "[base]\n[base.data]\nkind = \"synth\"\n[base.model]\nname = \"lr\"\n\
                [experiments.a]\n[experiments.c]\nname = \"a\"\n";
    std::fs::write(dir.path().join("m.toml"), text).unwrap();
    let o = longtail(
        &[
            "train",
            "--config",
            "m.toml",
            "--experiment",
            "a,c",
            "--out",
            "runs",
        ],
        dir.path(),
    );
    fails_with(&o, &["'a' and 'c'", "would both write"]);
    assert!(!dir.path().join("runs").exists());
}
