//! End-to-end tests of the `longtail` binary: the demo's outputs, errors for bad input, and the
//! workspace layering rules.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

mod engine;
mod everyday;
mod fuzz_config;
mod guards;
mod mfn;
mod pin;
mod prepare_guards;
mod reader_guards;
mod reliability;
mod resume;
mod retrieval;
mod twins;

fn longtail(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_longtail"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the longtail binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 1 with one line that contains every needle.
fn fails_with(o: &std::process::Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "missing '{n}' in: {err}");
    }
    err
}

/// Writes `cfg` to `dir/file` and runs `longtail train` on it into `dir/out`.
fn train_config(dir: &Path, file: &str, cfg: &str, out: &str) -> Output {
    std::fs::write(dir.join(file), cfg).unwrap();
    longtail(
        &["train", "--config", file, "--device", "cpu", "--out", out],
        dir,
    )
}

/// `train_config` into `dir/runs`, which must succeed, then the run's `run.json`.
fn train_ok(dir: &Path, file: &str, cfg: &str, run: &str) -> Value {
    let o = train_config(dir, file, cfg, "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let path = dir.join("runs").join(run).join("run.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The lines of a run folder's `epochs.jsonl` as `(phase, epoch line)`, checked to agree with
/// the `(phase, epoch)` logs `want` of its `run.json` (losses and validation metrics equal).
fn journal_matches(run_dir: &Path, want: &[(String, Value)]) {
    let text = std::fs::read_to_string(run_dir.join("epochs.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), want.len(), "{text}");
    for (line, (phase, log)) in lines.iter().zip(want) {
        assert_eq!(line["phase"].as_str(), Some(phase.as_str()), "{line}");
        for k in ["epoch", "losses", "valid", "train_wall_s", "samples_per_s"] {
            assert_eq!(line[k], log[k], "{phase} {k}: {line} vs {log}");
        }
    }
}

/// A JSON array of numbers.
fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn demo_writes_run_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let o = longtail(
        &[
            "demo", "--out", "runs", "--device", "cpu", "--epochs", "2", "--seed", "3",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run = dir.path().join("runs/demo-basemodel-seed3");
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "auc",
        "auc/user=tail",
        "auc/user=body",
        "auc/user=head",
        "gauc",
        "logloss",
    ] {
        let v = metrics[key]
            .as_f64()
            .unwrap_or_else(|| panic!("metrics.json lacks {key}: {metrics}"));
        assert!(v.is_finite());
    }
    // Two epochs on the demo data already beat a coin toss.
    assert!(metrics["auc"].as_f64().unwrap() > 0.55, "{metrics}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 3);
    assert_eq!(manifest["device"], "cpu");
    assert_eq!(manifest["model"], "basemodel");
    assert_eq!(manifest["epochs"].as_array().unwrap().len(), 2);
    assert!(manifest["epochs"][0]["losses"]["ctr"]
        .as_f64()
        .unwrap()
        .is_finite());
    assert!(manifest["epochs"][0]["train_wall_s"].as_f64().is_some());
    assert_eq!(manifest["runtime"]["tch"], "0.24.0");
    assert!(manifest["runtime"]["libtorch"]
        .as_str()
        .unwrap()
        .starts_with("2.11."));
    assert_eq!(manifest["config"]["train"]["epochs"], 2);
    assert_eq!(manifest["config_hash"].as_str().unwrap().len(), 64);
    assert_eq!(
        manifest["dataset"]["interactions_hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(run.join("model.safetensors").is_file());
    assert!(run.join("test_scores.parquet").is_file());
    // `eval --run` recomputes the same metrics from the saved scores.
    let o = longtail(&["eval", "--run", "runs/demo-basemodel-seed3"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value =
        serde_json::from_slice(&std::fs::read(run.join("eval/metrics.json")).unwrap()).unwrap();
    assert_eq!(again, metrics);
    assert!(run.join("feature_map.json").is_file());
}

#[test]
fn same_seed_same_cpu_results() {
    let dir = tempfile::tempdir().unwrap();
    for out in ["a", "b"] {
        let o = longtail(
            &["demo", "--out", out, "--device", "cpu", "--epochs", "1"],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let read = |o: &str| {
        std::fs::read_to_string(
            dir.path()
                .join(o)
                .join("demo-basemodel-seed42/metrics.json"),
        )
        .unwrap()
    };
    assert_eq!(read("a"), read("b"));
    // The same experiment name on another dataset does not overwrite that run.
    let cfg = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/demo.toml"
    ))
    .unwrap()
    .replace("dataset = \"synthetic-demo\"", "dataset = \"another\"");
    assert!(cfg.contains("\"another\""));
    std::fs::write(dir.path().join("other.toml"), cfg).unwrap();
    let o = longtail(
        &[
            "train",
            "--config",
            "other.toml",
            "--out",
            "a",
            "--device",
            "cpu",
            "--epochs",
            "1",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("holds a run on dataset 'synthetic-demo'"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read("a"), read("b"), "the earlier run is untouched");
}

#[test]
fn report_aggregates_seeds() {
    let dir = tempfile::tempdir().unwrap();
    for seed in ["1", "2"] {
        let o = longtail(
            &[
                "demo", "--out", "runs", "--device", "cpu", "--epochs", "1", "--seed", seed,
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = longtail(
        &["report", "runs", "--out", "rep", "--base", "basemodel"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("rep/report.json")).unwrap())
            .unwrap();
    let auc = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "auc")
        .unwrap();
    assert_eq!(auc["model"], "basemodel");
    assert_eq!(auc["variant"], "default");
    assert_eq!(auc["n"], 2);
    // Against itself, RelaImpr is 0.
    let ri = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "relaimpr/auc")
        .unwrap();
    assert!(ri["mean"].as_f64().unwrap().abs() < 1e-9);
    let o = longtail(
        &["report", "runs", "--out", "rep2", "--base", "nomodel"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let read = |s: &str| -> f64 {
        let m: Value = serde_json::from_slice(
            &std::fs::read(
                dir.path()
                    .join(format!("runs/demo-basemodel-seed{s}/metrics.json")),
            )
            .unwrap(),
        )
        .unwrap();
        m["auc"].as_f64().unwrap()
    };
    let (a, b) = (read("1"), read("2"));
    assert!((auc["mean"].as_f64().unwrap() - (a + b) / 2.0).abs() < 1e-12);
    assert!((auc["std"].as_f64().unwrap() - (a - b).abs() / 2f64.sqrt()).abs() < 1e-12);
    let md = std::fs::read_to_string(dir.path().join("rep/report.md")).unwrap();
    assert!(md.contains("| basemodel | default | 2 |"), "{md}");
    for png in [
        "auc_by_user_group_synthetic-demo.png",
        "loss_synthetic-demo.png",
    ] {
        let bytes = std::fs::read(dir.path().join("rep").join(png)).unwrap();
        assert_eq!(&bytes[..4], b"\x89PNG", "{png}");
    }
    let o = longtail(&["report", "nothing-here", "--out", "rep"], dir.path());
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn unknown_model_fails_first_and_lists_names() {
    let dir = tempfile::tempdir().unwrap();
    // The config does not exist: the model name must be checked before it is read.
    let o = longtail(
        &["train", "--model", "nosuch", "--config", "missing.toml"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("unknown model 'nosuch'") && err.contains("basemodel"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn misspelled_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/demo.toml"
    ))
    .unwrap()
    .replace("batch_size = 256", "batch_sise = 256");
    std::fs::write(dir.path().join("bad.toml"), cfg).unwrap();
    let o = longtail(&["train", "--config", "bad.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("batch_sise") && err.contains("bad.toml"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unreadable_config_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = longtail(&["train", "--config", "nope.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot read config nope.toml"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_model_param_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/demo.toml"
    ))
    .unwrap()
    .replace("embedding_dim = 8", "embeding_dim = 8");
    std::fs::write(dir.path().join("bad.toml"), cfg).unwrap();
    let o = longtail(
        &["train", "--config", "bad.toml", "--epochs", "1"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("'model.params.embeding_dim'") && err.contains("basemodel"),
        "{err}"
    );
}

#[test]
fn cuda_without_gpu_is_a_clear_error() {
    if tch::Cuda::is_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = longtail(&["demo", "--device", "cuda"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("CUDA is not available"), "{err}");
    assert!(
        !dir.path().join("runs").exists(),
        "nothing is written when the device is wrong"
    );
}

#[test]
fn doctor_and_models_and_bench() {
    let dir = tempfile::tempdir().unwrap();
    let o = longtail(&["doctor"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("libtorch: 2.11.") && out.contains("cuda available:"),
        "{out}"
    );
    let o = longtail(&["models"], dir.path());
    assert!(String::from_utf8_lossy(&o.stdout).contains("basemodel"));
    let o = longtail(
        &[
            "bench",
            "--model",
            "basemodel",
            "--device",
            "cpu",
            "--steps",
            "5",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["train_samples_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["prepare_rows_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn synth_writes_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let o = longtail(&["synth", "--out", "s.parquet", "--seed", "1"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let t = longtail_data::Interactions::read_parquet(&dir.path().join("s.parquet")).unwrap();
    assert!(t.len() > 1000);
    // The paper's setting: 50 items in 5 clusters, fixed length; same seed -> identical bytes.
    let args = [
        "synth",
        "--items",
        "50",
        "--clusters",
        "5",
        "--users",
        "200",
        "--seq-len",
        "20",
        "--interest-skew",
        "2.0",
        "--seed",
        "9",
        "--out",
    ];
    for f in ["a.parquet", "b.parquet"] {
        let mut a = args.to_vec();
        a.push(f);
        let o = longtail(&a, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    assert_eq!(read("a.parquet"), read("b.parquet"));
    assert_eq!(read("a.item_clusters.json"), read("b.item_clusters.json"));
    let t = longtail_data::Interactions::read_parquet(&dir.path().join("a.parquet")).unwrap();
    assert_eq!(t.len(), 200 * 20);
    let clusters: Vec<u32> = serde_json::from_slice(&read("a.item_clusters.json")).unwrap();
    assert_eq!(clusters.len(), 51);
    assert_eq!(clusters[1..].iter().filter(|&&c| c == 4).count(), 10);
    let o = longtail(
        &[
            "synth",
            "--items",
            "51",
            "--clusters",
            "5",
            "--out",
            "c.parquet",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("items"), "{}", stderr(&o));
}

#[test]
fn demo_config_file_matches_builtin_default() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/demo.toml"
    ))
    .unwrap();
    let file = longtail_train::ExperimentConfig::from_toml(&text, "configs/demo.toml").unwrap();
    assert_eq!(file, longtail_train::ExperimentConfig::demo());
}

/// architecture.md's layering: no tch under data or eval; train never depends on models.
#[test]
fn layering_rules_hold() {
    // Only the host platform's crates: a fresh registry holds just what the build fetched, and
    // `--offline` without a filter would need the crates of every target (android, windows...).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let v = Command::new(rustc).arg("-vV").output().unwrap();
    let host = String::from_utf8_lossy(&v.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let o = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(&host)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    let name_of = |id: &str| {
        m["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let nodes = m["resolve"]["nodes"].as_array().unwrap();
    let deps_of = |name: &str| -> Vec<String> {
        let node = nodes
            .iter()
            .find(|n| name_of(n["id"].as_str().unwrap()) == name)
            .unwrap();
        node["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| name_of(d.as_str().unwrap()))
            .collect()
    };
    // Transitive closure (normal, dev and build deps alike: stricter than needed).
    let reach = |root: &str| {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![root.to_string()];
        while let Some(p) = todo.pop() {
            for d in deps_of(&p) {
                if seen.insert(d.clone()) {
                    todo.push(d);
                }
            }
        }
        seen
    };
    for lib in ["longtail-data", "longtail-eval"] {
        let r = reach(lib);
        assert!(
            !r.contains("tch") && !r.contains("torch-sys"),
            "{lib} depends on tch"
        );
    }
    assert!(
        !reach("longtail-train").contains("longtail-models"),
        "train depends on models"
    );
    assert!(
        !reach("longtail-models").contains("longtail-train"),
        "models depends on train"
    );
}

#[test]
fn bad_parquet_input_fails_cleanly_and_leaves_no_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.parquet"), "not parquet").unwrap();
    let cfg = "name = \"x\"\n[data]\nkind = \"parquet\"\npath = \"t.parquet\"\n[model]\nname = \"basemodel\"\n";
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let o = longtail(
        &["train", "--config", "c.toml", "--out", "runs"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("t.parquet") && err.contains("parquet"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!dir.path().join("runs/x-basemodel-seed0").exists());
}

#[test]
fn eval_scores_with_lists() {
    let dir = tempfile::tempdir().unwrap();
    let t = longtail_data::ScoresTable {
        user: vec![1, 1, 1, 2, 2, 2],
        item: vec![1, 2, 3, 4, 5, 6],
        label: vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        score: vec![0.9, 0.1, 0.2, 0.5, 0.6, 0.1],
        user_group: Some(vec![0, 0, 0, 2, 2, 2]),
        item_group: Some(vec![0, 1, 1, 1, 0, 0]),
        list: Some(vec![7, 7, 7, 8, 8, 8]),
    };
    t.write_parquet(&dir.path().join("s.parquet")).unwrap();
    let o = longtail(
        &["eval", "--scores", "s.parquet", "--out", "e", "--k", "1,2"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("e/metrics.json")).unwrap()).unwrap();
    assert_eq!(m["hr@1"], 0.5);
    assert_eq!(m["hr@1/item=tail"], 1.0);
    assert_eq!(m["hr@1/item=head"], 0.0);
    assert!(m["auc/user=tail"].as_f64().is_some());
    let o = longtail(
        &["eval", "--scores", "missing.parquet", "--out", "e"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.parquet"));
}

/// Every config in configs/ and configs/examples/ parses as `train` reads it (includes resolved),
/// every named block included, and names a registered model.
#[test]
fn every_shipped_config_parses() {
    let registry = longtail_models::builtin_registry().unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
    let mut n = 0;
    let mut paths: Vec<_> = [dir.to_string(), format!("{dir}/examples")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .collect();
    paths.sort();
    for path in paths {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let selection = (!longtail_train::experiment_names(&text).is_empty()).then_some("all");
        let configs = longtail_train::load_experiments(&path, selection, &[])
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        for (_, c) in configs {
            // Everything that is checked before a run: params ranges, loss terms, sections.
            longtail_train::check_experiment(&registry, &c)
                .unwrap_or_else(|e| panic!("{origin}, experiment '{}': {e}", c.name));
            n += 1;
        }
    }
    assert!(n >= 4, "{n}");
    // Prepare configs: they parse and their sections validate.
    let mut p = 0;
    for entry in std::fs::read_dir(format!("{dir}/prepare")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = longtail_data::PrepareConfig::from_toml(&text, &path.display().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        cfg.validate().unwrap();
        p += 1;
    }
    assert!(p >= 3, "{p}");
}

/// Imports a real file when ../shared/data is there (CI has it), and checks import's bad input.
#[test]
fn import_real_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::env::var("LONGTAIL_DATA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").into());
    let csv =
        Path::new(&data).join("amazon-musical-instruments-5core-2014/Musical_Instruments_5.csv");
    if csv.is_file() {
        let o = longtail(
            &[
                "import",
                "--format",
                "amazon-csv",
                "--input",
                csv.to_str().unwrap(),
                "--output",
                "mi.parquet",
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let t = longtail_data::Interactions::read_parquet(&dir.path().join("mi.parquet")).unwrap();
        assert_eq!(t.len(), 10_261);
        assert!(dir.path().join("mi.user_vocab.json").is_file());
        // The imported table trains end to end (ratings > 3 are positives, as in HIM).
        let cfg = "name = \"mi\"\ndataset = \"amazon-mi\"\n[data]\nkind = \"parquet\"\npath = \"mi.parquet\"\n\
                   [filters]\nk_core = 3\n[samples]\npositive_threshold = 3.0\n[model]\nname = \"basemodel\"\n";
        std::fs::write(dir.path().join("mi.toml"), cfg).unwrap();
        let o = longtail(
            &[
                "train", "--config", "mi.toml", "--epochs", "1", "--device", "cpu",
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        eprintln!(
            "note: {} not found; real-data import not exercised",
            csv.display()
        );
    }
    if csv.is_file() {
        let o = longtail(&["data", "stats", "mi.parquet", "--json"], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (
                v["interactions"].as_u64(),
                v["users"].as_u64(),
                v["items"].as_u64()
            ),
            (Some(10_261), Some(1_429), Some(900))
        );
        let raw = longtail(
            &[
                "data",
                "stats",
                csv.to_str().unwrap(),
                "--format",
                "amazon-csv",
            ],
            dir.path(),
        );
        assert!(String::from_utf8_lossy(&raw.stdout).contains("10261 interactions"));
    }
    std::fs::write(dir.path().join("bad.csv"), "u1,i1,5,100\nu2,i2,five,200\n").unwrap();
    let o = longtail(
        &[
            "import",
            "--format",
            "amazon-csv",
            "--input",
            "bad.csv",
            "--output",
            "b.parquet",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("bad.csv") && err.contains("line 2"), "{err}");
    assert!(!dir.path().join("b.parquet").exists());
    let o = longtail(
        &[
            "import",
            "--format",
            "nope",
            "--input",
            "bad.csv",
            "--output",
            "b.parquet",
        ],
        dir.path(),
    );
    assert!(stderr(&o).contains("movielens-dat"), "{}", stderr(&o));
}

#[test]
fn eval_bad_input_is_refused_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let base = longtail_data::ScoresTable {
        user: vec![1, 1, 2, 2],
        item: vec![1, 2, 3, 4],
        label: vec![1.0, 0.0, 1.0, 0.0],
        score: vec![0.9, 0.1, 0.4, 0.6],
        user_group: None,
        item_group: None,
        list: Some(vec![7, 7, 8, 8]),
    };
    let cases: Vec<(longtail_data::ScoresTable, &str, &str)> = vec![
        (
            longtail_data::ScoresTable {
                score: vec![0.9, f32::NAN, 0.4, 0.6],
                ..base.clone()
            },
            "2",
            "non-finite value in scores",
        ),
        (
            longtail_data::ScoresTable {
                label: vec![1.0, 1.0, 1.0, 0.0],
                ..base.clone()
            },
            "1",
            "list 7 has 2 positives",
        ),
        (base.clone(), "5", "K = 5 is larger than candidate list 7"),
    ];
    for (i, (t, k, want)) in cases.into_iter().enumerate() {
        let f = format!("s{i}.parquet");
        t.write_parquet(&dir.path().join(&f)).unwrap();
        let o = longtail(
            &["eval", "--scores", &f, "--out", "e", "--k", k],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(err.contains(want) && err.contains(&f), "{err}");
        assert!(!dir.path().join("e/metrics.json").exists());
    }
}

/// Every bad-input case of the data pipeline, through the CLI: exit code 1, one error naming the
/// file and line/column (or the config key), and no output left behind.
#[test]
fn import_and_prepare_bad_input_exit_1_without_output() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = |name: &str, bytes: &[u8]| std::fs::write(d.join(name), bytes).unwrap();
    w("fields.dat", b"1::10::5::978300760\n1::11::4\n");
    w("nan.dat", b"1::10::5::978300760\n1::11::NaN::978300761\n");
    w("word.dat", b"1::10::five::978300760\n");
    w("neg_ts.dat", b"1::10::5::978300760\n2::11::4::-5\n");
    w("ms_ts.dat", b"1::10::5::978300760000\n");
    w("empty.dat", b"");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for u in 0..5000 {
        writeln!(gz, "{u}::{}::4::97830{u:04}", u % 97 + 1).unwrap();
    }
    let gz = gz.finish().unwrap();
    w("cut.dat.gz", &gz[..gz.len() / 2]);
    w("cols.csv", b"uid,iid,when\n1,2,100\n");
    let cases: [(&str, &[&str], &[&str]); 9] = [
        (
            "fields.dat",
            &["--format", "movielens-dat"],
            &["fields.dat", "line 2"],
        ),
        (
            "nan.dat",
            &["--format", "movielens-dat"],
            &["nan.dat", "line 2", "rating"],
        ),
        (
            "word.dat",
            &["--format", "movielens-dat"],
            &["word.dat", "line 1", "rating"],
        ),
        (
            "neg_ts.dat",
            &["--format", "movielens-dat"],
            &["neg_ts.dat", "line 2"],
        ),
        (
            "ms_ts.dat",
            &["--format", "movielens-dat"],
            &["ms_ts.dat", "line 1", "milliseconds"],
        ),
        (
            "empty.dat",
            &["--format", "movielens-dat"],
            &["empty.dat", "no rows"],
        ),
        (
            "cut.dat.gz",
            &["--format", "movielens-dat"],
            &["cut.dat.gz"],
        ),
        (
            "cols.csv",
            &[
                "--format",
                "csv",
                "--columns",
                "user=uid,item=iid,timestamp=ts",
            ],
            &["cols.csv", "ts", "when"],
        ),
        ("cols.csv", &["--format", "csv"], &["columns"]),
    ];
    for (input, flags, want) in cases {
        let mut args = vec!["import", "--input", input, "--output", "out.parquet"];
        args.extend_from_slice(flags);
        let o = longtail(&args, d);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{input} {flags:?}: {err}");
        for wnt in want {
            assert!(
                err.contains(wnt),
                "{input} {flags:?}: '{wnt}' not in: {err}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !d.join("out.parquet").exists(),
            "{input}: output left behind"
        );
    }

    // A truncated Parquet file, as input of data stats and of a prepare config.
    let ok = longtail(
        &[
            "import",
            "--format",
            "movielens-dat",
            "--input",
            "fields.dat",
            "--output",
            "x.parquet",
        ],
        d,
    );
    assert_eq!(ok.status.code(), Some(1));
    w(
        "good.dat",
        b"1::10::5::978300760\n1::11::4::978300761\n2::10::2::978300762\n",
    );
    let ok = longtail(
        &[
            "import",
            "--format",
            "movielens-dat",
            "--input",
            "good.dat",
            "--output",
            "g.parquet",
        ],
        d,
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let bytes = std::fs::read(d.join("g.parquet")).unwrap();
    w("cut.parquet", &bytes[..bytes.len() - 20]);
    let o = longtail(&["data", "stats", "cut.parquet"], d);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cut.parquet"), "{}", stderr(&o));

    // prepare: bad windows, a split without test data, a truncated input; no folder left.
    let base = "dataset = \"t\"\n[data]\nkind = \"synth\"\nsynth = { users = 60, items = 30, clusters = 3 }\n";
    let configs: [(&str, &str); 4] = [
        ("[sessions]\nwindows = []\n", "sessions.windows"),
        (
            "[sessions]\nwindows = [\"6m\", \"14d\", \"all\"]\n",
            "sessions.windows",
        ),
        (
            "[samples]\nsplit = { kind = \"temporal\", valid = 0.1, test = 0.0 }\n",
            "test set empty",
        ),
        ("[samples]\nneg_per_pos = 1\nnegatives = 2\n", "negatives"),
    ];
    for (extra, want) in configs {
        w("p.toml", format!("{base}{extra}").as_bytes());
        let o = longtail(&["prepare", "--config", "p.toml", "--out", "prep"], d);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{extra}: {err}");
        assert!(err.contains(want), "{extra}: '{want}' not in {err}");
        assert!(!d.join("prep").exists(), "{extra}: output left behind");
    }
    w(
        "p.toml",
        b"[data]\nkind = \"parquet\"\npath = \"cut.parquet\"\n",
    );
    let o = longtail(&["prepare", "--config", "p.toml", "--out", "prep"], d);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cut.parquet"), "{}", stderr(&o));
    assert!(!d.join("prep").exists());
    let leftovers: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Thresholds that leave a group empty: a warning, and the job still succeeds.
    w(
        "p.toml",
        format!("{base}[samples]\nactiveness = {{ tail_max = 0, body_max = 1000 }}\n").as_bytes(),
    );
    let o = longtail(&["prepare", "--config", "p.toml", "--out", "prep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: user group"), "{}", stderr(&o));
    assert!(d.join("prep/prepare.json").is_file());
}

/// `prepare` on the real MovieTweetings file with HIM's thresholds, and `data stats` printing its
/// tail/body/head shares.
#[test]
fn movietweetings_stats_and_prepare() {
    let data = std::env::var("LONGTAIL_DATA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").into());
    let file = Path::new(&data).join("movietweetings-100k/ratings.dat");
    if !file.is_file() {
        eprintln!("note: {} not found; skipped", file.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = longtail(
        &[
            "data",
            "stats",
            file.to_str().unwrap(),
            "--format",
            "movietweetings",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("100000 interactions, 16554 users, 10506 items"),
        "{out}"
    );
    for g in ["tail users", "body users", "head users"] {
        assert!(out.contains(g), "{g} missing in {out}");
    }
    let cfg = format!(
        "dataset = \"movietweetings\"\n[data]\nkind = \"raw\"\nformat = \"movietweetings\"\npath = \"{}\"\n\
         [samples]\npositive_threshold = 6.0\nneg_per_pos = 5\nsplit = {{ kind = \"random\", valid = 0.1, test = 0.2 }}\n\
         [sessions]\nwindows = [\"14d\", \"6m\", \"12m\", \"all\"]\n",
        file.display()
    );
    std::fs::write(dir.path().join("mt.toml"), cfg).unwrap();
    let o = longtail(
        &["prepare", "--config", "mt.toml", "--out", "mt"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("mt/prepare.json")).unwrap())
            .unwrap();
    assert_eq!(m["interactions"].as_u64(), Some(100_000));
    assert!(dir.path().join("mt/sessions/test.parquet").is_file());
}

/// HIM trains end to end from a config with `[sessions]` (both loss terms logged per epoch), and
/// early stopping keeps the best validation epoch.
#[test]
fn him_trains_with_sessions_and_early_stopping_keeps_the_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
name = "him-synth"
dataset = "synthetic-small"
seed = 3
[data]
kind = "synth"
synth = { users = 300, items = 60, clusters = 6 }
[samples]
neg_per_pos = 2
max_hist_len = 10
[sessions]
windows = ["2d", "10d", "all"]
top_n = 4
[model]
name = "him"
params = { hidden = [16] }
[train]
epochs = 30
lr = 0.01
loss_weights = { group = 0.001 }
early_stopping_patience = 2
"#;
    let run = train_ok(dir.path(), "him.toml", cfg, "him-synth-him-seed3");
    let epochs = run["epochs"].as_array().unwrap();
    for e in epochs {
        let l = &e["losses"];
        let (ctr, group, total) = (
            l["ctr"].as_f64().unwrap(),
            l["group"].as_f64().unwrap(),
            l["total"].as_f64().unwrap(),
        );
        assert!(ctr.is_finite() && group > 0.0, "{l}");
        // The joint loss (HIM eq. 12): total = alpha * L_g + L_c with alpha = loss_weights.group.
        assert!((total - (ctr + 0.001 * group)).abs() < 1e-5, "{l}");
    }
    let aucs: Vec<f64> = epochs
        .iter()
        .map(|e| e["valid"]["auc"].as_f64().unwrap())
        .collect();
    let kept: Vec<usize> = (0..epochs.len())
        .filter(|&i| epochs[i]["kept"].as_bool() == Some(true))
        .collect();
    assert_eq!(kept.len(), 1, "exactly one kept epoch");
    let best = (0..aucs.len())
        .max_by(|&a, &b| aucs[a].partial_cmp(&aucs[b]).unwrap().then(b.cmp(&a)))
        .unwrap();
    assert_eq!(kept[0], best, "kept epoch is the best valid AUC: {aucs:?}");
    // It stopped `patience` epochs after the best one (or ran to the end).
    assert!(
        epochs.len() == 30 || epochs.len() == best + 1 + 2,
        "{} epochs, best {best}",
        epochs.len()
    );
}
