//! The reliability contract, end to end through the binary: no output replaces an input or a file
//! longtail did not write, run folders are replaced whole or not at all, every block is checked
//! before the first one trains, numbers from a config never panic, a changed prepared folder is
//! refused, a non-finite loss stops the run cleanly, and killed runs leave nothing behind.

use super::{fails_with, longtail, stderr, train_config};
use std::path::Path;
use std::process::Command;

/// A small, fast CTR config; `extra` is appended (TOML sections or keys of the last section).
fn small(name: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
dataset = "tiny"
seed = 1
[data]
kind = "synth"
synth = {{ users = 200, items = 40, clusters = 4 }}
[samples]
neg_per_pos = 2
max_hist_len = 8
[model]
name = "basemodel"
params = {{ hidden = [8] }}
[train]
epochs = 1
progress = false
{extra}
"#
    )
}

/// Every entry under `dir` (recursively), sorted, as relative paths.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn no_temporaries(dir: &Path) {
    let t = tree(dir);
    assert!(
        !t.iter().any(|p| p.contains(".ltmp-")),
        "temporaries left: {t:?}"
    );
}

#[test]
fn numbers_from_a_config_are_errors_naming_the_key_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 8] = [
        ("lr = 1e300", "", "train.lr"),
        ("", "embedding_dim = 0", "embedding_dim"),
        ("", "embedding_dim = -3", "embedding_dim"),
        ("", "hidden = [0]", "hidden"),
        ("", "embedding_dim = 100000000", "embedding_dim"),
        ("eval_batch_size = 0", "", "train.eval_batch_size"),
        ("batch_size = 100000000000", "", "train.batch_size"),
        ("loss_weights = { ctr = nan }", "", "train.loss_weights.ctr"),
    ];
    for (i, (train, params, key)) in cases.iter().enumerate() {
        let mut cfg = small("x", train);
        if !params.is_empty() {
            cfg = cfg.replace(
                "params = { hidden = [8] }",
                &format!("params = {{ {params} }}"),
            );
        }
        let o = train_config(dir.path(), &format!("c{i}.toml"), &cfg, "runs");
        fails_with(&o, &[key]);
        assert!(
            !dir.path().join("runs/x-basemodel-seed1").exists(),
            "case {i}"
        );
        no_temporaries(dir.path());
    }
    // Negatives per positive beyond what the catalogue can give: refused by name, at once.
    let cfg = small("x", "").replace("neg_per_pos = 2", "neg_per_pos = 100000");
    let o = train_config(dir.path(), "n.toml", &cfg, "runs");
    fails_with(&o, &["samples.neg_per_pos", "unseen"]);
    assert!(!dir.path().join("runs").join("x-basemodel-seed1").exists());
}

#[test]
fn a_loss_weight_must_name_a_term_of_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let o = train_config(
        dir.path(),
        "c.toml",
        &small("x", "loss_weights = { grup = 0.1 }"),
        "runs",
    );
    fails_with(&o, &["train.loss_weights.grup", "ctr"]);
}

#[test]
fn every_block_is_checked_before_the_first_trains_and_all_runs_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let base = r#"
[base]
dataset = "tiny"
seed = 1
[base.data]
kind = "synth"
synth = { users = 200, items = 40, clusters = 4 }
[base.samples]
neg_per_pos = 2
max_hist_len = 8
[base.train]
epochs = 1
progress = false
[experiments.zeta.model]
name = "basemodel"
params = { hidden = [8] }
"#;
    // A bad value in the last block: nothing trains.
    let bad = format!(
        "{base}[experiments.alpha.model]\nname = \"basemodel\"\nparams = {{ hidden = [8], dropout = 1.5 }}\n"
    );
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let o = longtail(
        &[
            "train",
            "--config",
            "bad.toml",
            "--experiment",
            "all",
            "--device",
            "cpu",
            "--out",
            "runs",
        ],
        dir.path(),
    );
    fails_with(&o, &["experiment 'alpha'", "dropout"]);
    assert!(!dir.path().join("runs").exists() || tree(&dir.path().join("runs")).is_empty());
    // File order, not alphabetical: zeta runs first.
    let good = format!("{base}[experiments.alpha.model]\nname = \"lr\"\n");
    std::fs::write(dir.path().join("good.toml"), good).unwrap();
    let o = longtail(
        &[
            "train",
            "--config",
            "good.toml",
            "--experiment",
            "all",
            "--device",
            "cpu",
            "--out",
            "runs",
        ],
        dir.path(),
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let z = err.find("[1/2] zeta").expect(&err);
    let a = err.find("[2/2] alpha").expect(&err);
    assert!(z < a, "{err}");
    // Two blocks that resolve to one run folder: an error before anything trains.
    let clash = format!(
        "{base}[experiments.other]\nname = \"zeta\"\n[experiments.other.model]\nname = \"basemodel\"\n"
    );
    std::fs::write(dir.path().join("clash.toml"), clash).unwrap();
    let before = tree(&dir.path().join("runs"));
    let o = longtail(
        &[
            "train",
            "--config",
            "clash.toml",
            "--experiment",
            "all",
            "--device",
            "cpu",
            "--out",
            "runs2",
        ],
        dir.path(),
    );
    fails_with(&o, &["would both write", "zeta-basemodel-seed1"]);
    assert!(!dir.path().join("runs2").exists());
    assert_eq!(tree(&dir.path().join("runs")), before);
}

#[test]
fn a_failed_rerun_leaves_the_finished_run_folder_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let o = train_config(dir.path(), "ok.toml", &small("r", ""), "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let run = dir.path().join("runs/r-basemodel-seed1");
    let snapshot: Vec<(String, Vec<u8>)> = tree(&run)
        .into_iter()
        .filter(|p| run.join(p).is_file())
        .map(|p| {
            let b = std::fs::read(run.join(&p)).unwrap();
            (p, b)
        })
        .collect();
    // This re-run dies after its first epoch (killed: the crash-injection hook aborts it), the
    // old code had rewritten feature_map.json and data/ by then.
    let failing = small("r", "")
        .replace("epochs = 1", "epochs = 3")
        .replace("users = 200", "users = 150");
    std::fs::write(dir.path().join("bad.toml"), &failing).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_longtail"))
        .args([
            "train", "--config", "bad.toml", "--device", "cpu", "--out", "runs",
        ])
        .env(longtail_train::resume::CRASH_AFTER_ENV, "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", stderr(&o));
    let now: Vec<(String, Vec<u8>)> = tree(&run)
        .into_iter()
        .filter(|p| run.join(p).is_file())
        .map(|p| {
            let b = std::fs::read(run.join(&p)).unwrap();
            (p, b)
        })
        .collect();
    assert_eq!(now, snapshot);
    // A successful re-run replaces it whole (and clears what the killed one left).
    let twice = small("r", "").replace("epochs = 1", "epochs = 2");
    let o = train_config(dir.path(), "ok2.toml", &twice, "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(m["epochs"].as_array().unwrap().len(), 2);
    no_temporaries(dir.path());
    // A folder longtail did not write is never replaced.
    let mine = dir.path().join("mine/q-basemodel-seed1");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let o = train_config(dir.path(), "q.toml", &small("q", ""), "mine");
    fails_with(&o, &["not a run folder written by longtail"]);
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep"
    );
}

#[test]
fn a_non_finite_loss_stops_the_run_with_epoch_step_and_terms() {
    let dir = tempfile::tempdir().unwrap();
    // A weight that is finite as f64 but infinite as the f32 loss: the first step is inf.
    let o = train_config(
        dir.path(),
        "c.toml",
        &small("d", "loss_weights = { ctr = 1e300 }"),
        "runs",
    );
    fails_with(&o, &["diverged", "epoch 1, step 1", "ctr =", "train.lr"]);
    assert!(!dir.path().join("runs/d-basemodel-seed1").exists());
    no_temporaries(dir.path());
}

#[test]
fn a_killed_run_leaves_no_folder_and_the_next_run_sweeps_its_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small("k", "")
        .replace("epochs = 1", "epochs = 200")
        .replace("users = 200", "users = 3000");
    std::fs::write(dir.path().join("k.toml"), cfg).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_longtail"))
        .args([
            "train", "--config", "k.toml", "--device", "cpu", "--out", "runs",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the staged run folder exists, then kill -9.
    let runs = dir.path().join("runs");
    let start = std::time::Instant::now();
    while !tree(&runs).iter().any(|p| p.contains(".ltmp-")) {
        assert!(start.elapsed().as_secs() < 120, "no staged folder appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!runs.join("k-basemodel-seed1").exists());
    // The next run into the same folder removes the dead process's temporary.
    let o = train_config(dir.path(), "ok.toml", &small("k2", ""), "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    no_temporaries(dir.path());
    assert!(runs.join("k2-basemodel-seed1/run.json").is_file());
}

#[test]
fn import_never_overwrites_its_input_or_a_folder_of_the_same_stem() {
    let dir = tempfile::tempdir().unwrap();
    let log = "1::10::5::978300760\n1::11::3::978300761\n2::10::4::978300762\n";
    std::fs::write(dir.path().join("ratings.dat"), log).unwrap();
    let o = longtail(
        &[
            "import",
            "--format",
            "movielens-dat",
            "--input",
            "ratings.dat",
            "--output",
            "ratings.dat",
        ],
        dir.path(),
    );
    fails_with(&o, &["ratings.dat", "input"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ratings.dat")).unwrap(),
        log
    );
    // The same file under another spelling.
    let o = longtail(
        &[
            "import",
            "--format",
            "movielens-dat",
            "--input",
            "ratings.dat",
            "--output",
            "./x/../ratings.dat",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ratings.dat")).unwrap(),
        log
    );
    // A prepared folder `prep/` beside `prep.parquet`: its vocabularies are not touched.
    std::fs::create_dir(dir.path().join("prep")).unwrap();
    std::fs::write(dir.path().join("prep/user_vocab.json"), "[\"\",\"mine\"]").unwrap();
    let o = longtail(
        &[
            "import",
            "--format",
            "movielens-dat",
            "--input",
            "ratings.dat",
            "--output",
            "prep.parquet",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("prep/user_vocab.json")).unwrap(),
        "[\"\",\"mine\"]"
    );
    assert!(dir.path().join("prep.user_vocab.json").is_file());
    // Re-importing over its own outputs is fine; over a user's file of that name it is not.
    let o = longtail(
        &[
            "import",
            "--format",
            "movielens-dat",
            "--input",
            "ratings.dat",
            "--output",
            "prep.parquet",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(dir.path().join("notes.parquet"), "my notes").unwrap();
    let o = longtail(
        &[
            "import",
            "--format",
            "movielens-dat",
            "--input",
            "ratings.dat",
            "--output",
            "notes.parquet",
        ],
        dir.path(),
    );
    fails_with(&o, &["notes.parquet", "not an interaction table"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.parquet")).unwrap(),
        "my notes"
    );
    no_temporaries(dir.path());
}

#[test]
fn prepare_refuses_to_replace_a_folder_holding_its_input_and_train_refuses_a_changed_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("data")).unwrap();
    let log: String = (1..=60)
        .flat_map(|u| {
            (1..=6).map(move |k| format!("{u}::{}::4::{}\n", (u * 7 + k) % 30 + 1, 978300000 + k))
        })
        .collect();
    std::fs::write(d.join("data/ratings.dat"), &log).unwrap();
    let prep = "dataset = \"t\"\n[data]\nkind = \"raw\"\nformat = \"movielens-dat\"\npath = \"data/ratings.dat\"\n[samples]\nneg_per_pos = 1\nmax_hist_len = 5\n";
    std::fs::write(d.join("p.toml"), prep).unwrap();
    let o = longtail(&["prepare", "--config", "p.toml", "--out", "data"], d);
    fails_with(&o, &["holds the input"]);
    assert_eq!(
        std::fs::read_to_string(d.join("data/ratings.dat")).unwrap(),
        log
    );
    let o = longtail(&["prepare", "--config", "p.toml", "--out", "prep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("prep/prepare.json")).unwrap()).unwrap();
    assert!(
        m["files"]["samples/test.parquet"].as_str().unwrap().len() == 64,
        "{m}"
    );
    let cfg = "name = \"p\"\ndataset = \"t\"\n[data]\nkind = \"prepared\"\npath = \"prep\"\n[model]\nname = \"basemodel\"\nparams = { hidden = [8] }\n[train]\nepochs = 1\nprogress = false\n";
    let o = train_config(d, "t.toml", cfg, "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    // Validation samples passed off as test samples: refused, naming the file.
    std::fs::copy(
        d.join("prep/samples/valid.parquet"),
        d.join("prep/samples/test.parquet"),
    )
    .unwrap();
    let o = train_config(d, "t.toml", cfg, "runs2");
    fails_with(&o, &["samples/test.parquet", "prepare.json"]);
    assert!(!d.join("runs2").join("p-basemodel-seed0").exists());
}

#[test]
fn eval_and_report_never_overwrite_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = train_config(d, "c.toml", &small("e", ""), "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let run = d.join("runs/e-basemodel-seed1");
    let scores = std::fs::read(run.join("test_scores.parquet")).unwrap();
    // metrics.json would be the scores file itself.
    std::fs::create_dir(d.join("ev")).unwrap();
    std::fs::copy(run.join("test_scores.parquet"), d.join("ev/metrics.json")).unwrap();
    let o = longtail(&["eval", "--scores", "ev/metrics.json", "--out", "ev"], d);
    fails_with(&o, &["metrics.json", "input"]);
    assert_eq!(std::fs::read(d.join("ev/metrics.json")).unwrap(), scores);
    // A preamble that is also the page the report would write.
    std::fs::create_dir(d.join("page")).unwrap();
    std::fs::write(d.join("page/him.md"), "# my discussion\n").unwrap();
    let o = longtail(
        &[
            "report",
            "runs",
            "--out",
            "page",
            "--name",
            "him",
            "--preamble",
            "page/him.md",
        ],
        d,
    );
    fails_with(&o, &["him.md", "input"]);
    assert_eq!(
        std::fs::read_to_string(d.join("page/him.md")).unwrap(),
        "# my discussion\n"
    );
    assert!(!d.join("page/him.json").exists());
    // A page of the user's own where the report would go is refused too; a report's own is not.
    let o = longtail(&["report", "runs", "--out", "page", "--name", "him"], d);
    fails_with(&o, &["him.md", "not a report page"]);
    let o = longtail(&["report", "runs", "--out", "rep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = longtail(&["report", "runs", "--out", "rep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    no_temporaries(d);
}

#[test]
fn toml_syntax_errors_in_named_blocks_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = "[base]\nseed = 1\n[experiments.a]\nname = \"a\n";
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let o = longtail(
        &[
            "train",
            "--config",
            "c.toml",
            "--experiment",
            "a",
            "--device",
            "cpu",
        ],
        dir.path(),
    );
    fails_with(&o, &["c.toml, line 4"]);
}

#[test]
fn generator_and_bench_sizes_are_checked_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, v, key) in [
        ("--max-len", "1000000000000", "max_len"),
        ("--users", "4000000000", "users"),
        ("--users", "2000000000", "users"),
    ] {
        let o = longtail(&["synth", "--out", "s.parquet", flag, v], dir.path());
        fails_with(&o, &[key]);
        assert!(!dir.path().join("s.parquet").exists());
    }
    let o = longtail(
        &["bench-density", "--items", "100000000", "--device", "cpu"],
        dir.path(),
    );
    fails_with(&o, &["--items"]);
    no_temporaries(dir.path());
}

#[test]
fn bench_compare_fails_on_a_slowdown_or_a_moved_metric_and_bless_writes_the_baseline() {
    use longtail_train::bench::report::{BenchReport, Figure, Machine, QualityRun};
    let dir = tempfile::tempdir().unwrap();
    let report = |slow: f64, auc: f64| BenchReport {
        longtail_version: "0.1.0".into(),
        git_revision: None,
        subset: "ci".into(),
        rounds: 3,
        started_unix_s: 0,
        wall_s: 1.0,
        machine: Machine::default(),
        tch: "0.24.0".into(),
        libtorch: None,
        peer_versions: Default::default(),
        figures: ["step/a", "step/b"]
            .iter()
            .map(|id| {
                Figure::new(
                    id,
                    Some("pytorch-eager"),
                    vec![1.0 * slow, 1.0 * slow, 1.0 * slow],
                    vec![1.5, 1.5, 1.5],
                    Default::default(),
                )
            })
            .collect(),
        quality: vec![QualityRun {
            id: "demo".into(),
            metrics: [("auc".to_string(), auc)].into(),
            wall_s: 1.0,
        }],
        family_spread: Default::default(),
        other_machines: Vec::new(),
    };
    let p = |n: &str| dir.path().join(n);
    report(1.0, 0.75).write(&p("base.json")).unwrap();
    report(1.0, 0.75).write(&p("same.json")).unwrap();
    report(1.25, 0.75).write(&p("slow.json")).unwrap();
    report(1.0, 0.76).write(&p("moved.json")).unwrap();
    let o = longtail(&["bench", "compare", "base.json", "same.json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    for (new, needle) in [
        ("slow.json", "ratio fell 20.0%"),
        ("moved.json", "moved by"),
    ] {
        let o = longtail(&["bench", "compare", "base.json", new], dir.path());
        assert_eq!(o.status.code(), Some(1), "{new}");
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(table.contains("FAIL") && table.contains(needle), "{table}");
        fails_with(&o, &["regression"]);
    }
    // Bless says what changed and makes the new report the baseline.
    let o = longtail(
        &["bench", "bless", "slow.json", "--baseline", "base.json"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL"));
    let o = longtail(&["bench", "compare", "base.json", "slow.json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // Another CPU model: quality is compared at the cross-machine tolerance, and blessing
    // there keeps this machine's entry for exact checks here.
    let mut other = report(1.0, 0.76);
    other.machine.cpu_model = "Other CPU".into();
    other.write(&p("other.json")).unwrap();
    let o = longtail(&["bench", "compare", "base.json", "other.json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("across machines"));
    let o = longtail(
        &[
            "bench",
            "bless",
            "other.json",
            "--baseline",
            "base.json",
            "--stale",
            "nope",
        ],
        dir.path(),
    );
    fails_with(&o, &["--stale", "'nope'"]);
    let o = longtail(
        &["bench", "bless", "other.json", "--baseline", "base.json"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("kept"));
    // Back on the first machine: exact again (0.76 against its own 0.75 fails).
    let o = longtail(&["bench", "compare", "base.json", "moved.json"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let o = longtail(&["bench", "compare", "base.json", "slow.json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // A file that is not a report is one clear line.
    std::fs::write(p("bad.json"), "{}").unwrap();
    let o = longtail(&["bench", "compare", "base.json", "bad.json"], dir.path());
    fails_with(&o, &["bad.json", "bench.json"]);
}
