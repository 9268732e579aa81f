//! Everyday use through the binary: `check` and the effective config, `--set`, `include`,
//! `models NAME`, shell completions, choices in `--help`, and help text on every argument.

use super::{fails_with, longtail, stderr};
use clap::CommandFactory;
use serde_json::Value;
use std::path::Path;

/// A small CTR config on synthetic data; `params` is the `[model.params]` inline table.
fn tiny(name: &str, model: &str, params: &str) -> String {
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
name = "{model}"
params = {params}
[train]
epochs = 1
progress = false
"#
    )
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn hash_of(check_out: &str) -> String {
    check_out
        .lines()
        .find_map(|l| l.split("config_hash ").nth(1))
        .map(|h| h.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("no config_hash in: {check_out}"))
}

#[test]
fn check_prints_the_effective_config_and_defaults_spelled_out_hash_alike() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.toml"), tiny("a", "din", "{}")).unwrap();
    // DIN's defaults written out: the same effective config, so the same hash.
    std::fs::write(
        d.path().join("b.toml"),
        tiny(
            "a",
            "din",
            "{ embedding_dim = 8, attention_hidden = [36], hidden = [256, 128, 32] }",
        ),
    )
    .unwrap();
    let a = longtail(&["check", "a.toml"], d.path());
    assert!(a.status.success(), "{}", stderr(&a));
    let out = stdout(&a);
    // Every param with its default, as TOML that parses.
    for needle in [
        "embedding_dim = 8",
        "attention_hidden = [36]",
        "dropout = 0.0",
    ] {
        assert!(out.contains(needle), "missing {needle} in:\n{out}");
    }
    let body: String = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let t: toml::Table = toml::from_str(&body).expect("check prints TOML");
    assert_eq!(t["train"]["epochs"].as_integer(), Some(1));
    assert!(stderr(&a).contains("ok: 1 experiment(s)"), "{}", stderr(&a));
    let b = longtail(&["check", "b.toml"], d.path());
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(hash_of(&out), hash_of(&stdout(&b)));
    // ... and a run records that same hash.
    let o = longtail(
        &[
            "train", "--config", "b.toml", "--device", "cpu", "--out", "runs",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("runs/a-din-seed1/run.json")).unwrap())
            .unwrap();
    assert_eq!(m["config_hash"].as_str(), Some(hash_of(&out).as_str()));
    assert_eq!(m["config"]["model"]["params"]["embedding_dim"], 8);
    // A different value is a different config.
    let c = longtail(
        &["check", "a.toml", "--set", "model.params.embedding_dim=4"],
        d.path(),
    );
    assert!(c.status.success(), "{}", stderr(&c));
    assert_ne!(hash_of(&out), hash_of(&stdout(&c)));
    assert!(stdout(&c).contains("embedding_dim = 4"));
}

#[test]
fn check_fails_on_every_kind_of_mistake_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, String, &[&str]); 4] = [
        (
            "params.toml",
            tiny("p", "din", "{ embedding_dim = 0 }"),
            &["params.toml", "model.params.embedding_dim"],
        ),
        (
            "term.toml",
            tiny("t", "basemodel", "{}") + "loss_weights = { nope = 1.0 }\n",
            &["term.toml", "nope"],
        ),
        (
            "data.toml",
            tiny("d", "basemodel", "{}").replace(
                "kind = \"synth\"\nsynth = { users = 200, items = 40, clusters = 4 }",
                "kind = \"parquet\"\npath = \"missing/log.parquet\"",
            ),
            &["data.toml", "missing/log.parquet", "not found"],
        ),
        (
            "model.toml",
            tiny("m", "dinn", "{}"),
            &["model.toml", "dinn", "basemodel"],
        ),
    ];
    for (file, text, needles) in cases {
        std::fs::write(d.path().join(file), text).unwrap();
        let o = longtail(&["check", file], d.path());
        fails_with(&o, needles);
        assert!(
            stdout(&o).is_empty() || !stdout(&o).contains("config_hash"),
            "{file}"
        );
    }
    // Every block of a block file is checked, the last one too.
    std::fs::write(
        d.path().join("blocks.toml"),
        "[base.data]\nkind = \"synth\"\n[experiments.good.model]\nname = \"basemodel\"\n\
         [experiments.bad.model]\nname = \"basemodel\"\nparams = { hidden = [0] }\n",
    )
    .unwrap();
    fails_with(
        &longtail(&["check", "blocks.toml"], d.path()),
        &["experiment 'bad'", "hidden"],
    );
    let o = longtail(
        &["check", "blocks.toml", "--experiment", "good", "--brief"],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn set_overrides_keys_and_a_wrong_key_names_the_set() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("c.toml"), tiny("s", "basemodel", "{}")).unwrap();
    let o = longtail(
        &[
            "train",
            "--config",
            "c.toml",
            "--device",
            "cpu",
            "--out",
            "runs",
            "--set",
            "train.lr=0.02",
            "--set",
            "model.params.hidden=[4]",
            "--set",
            "samples.neg_per_pos=1",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Value = serde_json::from_slice(
        &std::fs::read(d.path().join("runs/s-basemodel-seed1/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["config"]["train"]["lr"], 0.02);
    assert_eq!(
        m["config"]["model"]["params"]["hidden"],
        serde_json::json!([4])
    );
    assert_eq!(m["config"]["samples"]["neg_per_pos"], 1);
    fails_with(
        &longtail(&["check", "c.toml", "--set", "train.lrr=0.1"], d.path()),
        &["lrr", "--set train.lrr"],
    );
    fails_with(
        &longtail(
            &["check", "c.toml", "--set", "model.params.hiden=[4]"],
            d.path(),
        ),
        &["hiden"],
    );
    // Not KEY=VALUE: clap's usage error (exit 2), naming the argument.
    let o = longtail(&["check", "c.toml", "--set", "train.lr"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--set"), "{}", stderr(&o));
}

#[test]
fn include_writes_a_data_block_once_with_paths_beside_the_included_file() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A log with its own folder, named relative to the file that names it.
    let o = longtail(
        &[
            "synth",
            "--out",
            "data/log.parquet",
            "--users",
            "150",
            "--items",
            "40",
            "--clusters",
            "4",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        data.join("shared.toml"),
        "dataset = \"shared\"\n[data]\nkind = \"parquet\"\npath = \"log.parquet\"\n\
         [samples]\nneg_per_pos = 1\nmax_hist_len = 4\n[train]\nepochs = 1\nprogress = false\n",
    )
    .unwrap();
    let exp = d.path().join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(
        exp.join("two.toml"),
        "include = [\"../data/shared.toml\"]\n[experiments.lr.model]\nname = \"lr\"\n\
         [experiments.base.model]\nname = \"basemodel\"\nparams = { hidden = [4] }\n",
    )
    .unwrap();
    // Run from elsewhere: the path resolves beside the included file, not the working directory.
    let o = longtail(
        &[
            "train",
            "--config",
            "exp/two.toml",
            "--experiment",
            "all",
            "--device",
            "cpu",
            "--out",
            "runs",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for run in ["lr-lr-seed0", "base-basemodel-seed0"] {
        let m: Value = serde_json::from_slice(
            &std::fs::read(d.path().join("runs").join(run).join("run.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(m["dataset"]["name"], "shared", "{run}");
    }
    std::fs::write(exp.join("loop.toml"), "include = \"loop.toml\"\n").unwrap();
    fails_with(
        &longtail(&["check", "exp/loop.toml"], d.path()),
        &["loop.toml", "includes itself"],
    );
}

#[test]
fn train_without_config_says_it_trains_the_demo() {
    let d = tempfile::tempdir().unwrap();
    let o = longtail(
        &[
            "train",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--out",
            "runs",
            "--set",
            "data.synth.users=300",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("built-in demo"), "{}", stderr(&o));
    let m: Value = serde_json::from_slice(
        &std::fs::read(d.path().join("runs/demo-basemodel-seed42/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["config"]["data"]["synth"]["users"], 300);
    // -q keeps stderr to warnings; RUST_LOG overrides the flags; results stay on stdout.
    let o = longtail(
        &[
            "-q",
            "train",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--out",
            "runs",
            "--set",
            "data.synth.users=300",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("built-in demo"), "{}", stderr(&o));
    assert!(stdout(&o).contains("auc"), "{}", stdout(&o));
    std::fs::write(d.path().join("t.toml"), tiny("t", "lr", "{}")).unwrap();
    let check = |rust_log: &str, flag: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_longtail"));
        c.args(["check", "t.toml", "--brief"]).current_dir(d.path());
        if !flag.is_empty() {
            c.arg(flag);
        }
        c.env("RUST_LOG", rust_log);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    assert!(check("", "").contains("ok: 1 experiment"));
    assert!(check("", "-q").is_empty());
    assert!(
        check("warn", "").is_empty(),
        "RUST_LOG overrides the default"
    );
    assert!(check("info", "-q").contains("ok: 1"), "... and the flags");
}

#[test]
fn completions_and_choices_in_help() {
    let d = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let o = longtail(&["completions", shell], d.path());
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let s = stdout(&o);
        assert!(s.contains("longtail") && s.contains("train"), "{shell}");
    }
    let o = longtail(&["import", "--help"], d.path());
    let help = stdout(&o);
    for f in ["movielens-dat", "amazon-json", "parquet"] {
        assert!(help.contains(f), "import --help lacks {f}:\n{help}");
    }
    let o = longtail(&["train", "--help"], d.path());
    assert!(stdout(&o).contains("cuda:N"), "{}", stdout(&o));
    // A wrong choice is refused when the arguments are parsed, listing the choices.
    let o = longtail(&["train", "--device", "gpu"], d.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cuda:N"), "{}", stderr(&o));
    let o = longtail(
        &["import", "--format", "cvs", "--input", "x", "--output", "y"],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("movielens-dat"), "{}", stderr(&o));
}

#[test]
fn every_argument_of_every_command_has_help_text() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let here = format!("{path} {}", cmd.get_name());
        if cmd.get_about().is_none() && !cmd.is_hide_set() {
            missing.push(format!("{here} (the command)"));
        }
        for a in cmd.get_arguments() {
            let builtin = ["help", "version"].contains(&a.get_id().as_str());
            if !builtin && !a.is_hide_set() && a.get_help().is_none() && a.get_long_help().is_none()
            {
                missing.push(format!("{here} {}", a.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                walk(sub, &here, missing);
            }
        }
    }
    let mut missing = Vec::new();
    walk(&longtail_cli::Cli::command(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "arguments without help text: {missing:#?}"
    );
}

#[test]
fn train_parallel_spreads_jobs_over_the_visible_gpus() {
    let d = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/train-parallel");
    // A stand-in for the binary: it says which GPU it was given.
    let fake = d.path().join("fake");
    std::fs::write(
        &fake,
        "#!/usr/bin/env bash\necho \"args: $*\"\necho \"visible=${CUDA_VISIBLE_DEVICES:-none}\"\n\
         sleep 0.2\necho 'run folder: x'\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    std::fs::write(
        d.path().join("c.toml"),
        "[experiments.a.model]\nname = \"x\"\n[experiments.b.model]\nname = \"y\"\n",
    )
    .unwrap();
    let run = |out: &str, jobs: &str, device: &str| {
        let o = std::process::Command::new("bash")
            .arg(&script)
            .args(["c.toml", out, "1,2", jobs, "--device", device])
            .env("LONGTAIL_BIN", &fake)
            .env("GPUS", "3,5")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let mut per_gpu = std::collections::BTreeMap::<String, usize>::new();
        for (b, s) in [("a", 1), ("a", 2), ("b", 1), ("b", 2)] {
            let log = std::fs::read_to_string(d.path().join(format!("{out}/logs/{b}-seed{s}.log")))
                .unwrap();
            let vis = log
                .lines()
                .find_map(|l| l.strip_prefix("visible="))
                .unwrap()
                .to_string();
            // Inside a job its one GPU is cuda:0.
            assert!(
                log.contains(&format!(
                    "--device {}",
                    if vis == "none" { device } else { "cuda" }
                )),
                "{log}"
            );
            *per_gpu.entry(vis).or_default() += 1;
        }
        per_gpu
    };
    let spread = run("o1", "2", "cuda");
    assert_eq!(spread.get("3"), Some(&2), "{spread:?}");
    assert_eq!(spread.get("5"), Some(&2), "{spread:?}");
    // cuda:N pins every job to that GPU; the CPU gets no GPU variable at all.
    assert_eq!(run("o2", "2", "cuda:1").get("none"), Some(&4));
    assert_eq!(run("o3", "2", "cpu").get("none"), Some(&4));
}

/// `models NAME` shows every param of every built-in model with its default, type and the doc
/// comment of its params struct; the keys are exactly the ones `check` fills in, so the listing
/// and the config cannot drift apart.
#[test]
fn models_name_describes_every_param_from_the_params_struct() {
    let d = tempfile::tempdir().unwrap();
    let o = longtail(&["models"], d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = stdout(&o)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(names.len() >= 14, "{names:?}");
    let registry = longtail_models::builtin_registry().unwrap();
    for name in &names {
        let o = longtail(&["models", name, "--json"], d.path());
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let params = v["params"].as_array().unwrap();
        let effective = registry
            .params_info(name, &toml::Table::new())
            .unwrap()
            .effective;
        let mut listed: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        let mut filled: Vec<&str> = effective
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        // Unset optional params are null or absent in the effective config, listed with no default.
        listed.retain(|k| {
            params
                .iter()
                .any(|p| p["name"] == *k && !p["default"].is_null())
        });
        listed.sort();
        filled.sort();
        assert_eq!(listed, filled, "{name}");
        for p in params {
            assert!(!p["doc"].as_str().unwrap().is_empty(), "{name}: {p}");
            assert!(!p["type"].as_str().unwrap().is_empty(), "{name}: {p}");
        }
        assert!(!v["loss_terms"].as_array().unwrap().is_empty(), "{name}");
    }
    let o = longtail(&["models", "din"], d.path());
    let text = stdout(&o);
    assert!(text.contains("embedding_std = 0.01  (f64)"), "{text}");
    assert!(
        text.contains("hidden = [256, 128, 32]  (Vec<i64>)"),
        "{text}"
    );
    assert!(
        text.contains("Standard deviation of the normal initialisation"),
        "{text}"
    );
    let o = longtail(&["models", "him"], d.path());
    let text = stdout(&o);
    assert!(text.contains("ubp = \"full\"  (UbpMode)"), "{text}");
    assert!(text.contains("- \"negative_pooling\": "), "{text}");
    let o = longtail(&["models", "pin"], d.path());
    assert!(stdout(&o).contains("hidden_size = unset"), "{}", stdout(&o));
    fails_with(
        &longtail(&["models", "dinn"], d.path()),
        &["registered models: "],
    );
}

/// The shipped CSV example, as a new user runs it: per-group metrics from a headered CSV that
/// pandas wrote (index column, float timestamps), the data path found beside the config, and
/// a run folder whose vocabularies join the scores back to the CSV's own ids. The same log with
/// other column names and millisecond timestamps, mapped with `--set`, trains to the same
/// metrics.
#[test]
fn your_own_csv_start_to_finish_with_per_group_metrics_and_raw_ids() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/examples");
    let d = tempfile::tempdir().unwrap();
    let run_once = |config: &Path, extra: &[&str], out: &str| -> (Value, std::path::PathBuf) {
        let config = config.to_str().unwrap();
        let mut args = vec![
            "train",
            "--config",
            config,
            "--device",
            "cpu",
            "--out",
            out,
            "--set",
            "train.epochs=1",
            "-q",
        ];
        args.extend_from_slice(extra);
        // Run from an unrelated folder: the config's own folder anchors `path = "ratings.csv"`.
        let o = longtail(&args, d.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let runs: Vec<_> = std::fs::read_dir(d.path().join(out))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("metrics.json").is_file())
            .collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let m: Value =
            serde_json::from_slice(&std::fs::read(runs[0].join("metrics.json")).unwrap()).unwrap();
        (m, runs[0].clone())
    };
    // Without any --set too: the config's own text, its path found beside it.
    let o = longtail(
        &[
            "check",
            examples.join("csv-din.toml").to_str().unwrap(),
            "--brief",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (metrics, run) = run_once(&examples.join("csv-din.toml"), &[], "a");
    for key in ["auc", "auc/user=tail", "auc/user=head", "gauc", "logloss"] {
        let v = metrics[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key}: {metrics}"));
        assert!(v.is_finite(), "{key}");
    }
    assert!(
        metrics
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("item=tail")),
        "{metrics}"
    );

    // Raw ids: every positive test row is a (user, item) pair the CSV rates above 3.
    let csv = std::fs::read_to_string(examples.join("ratings.csv")).unwrap();
    let mut liked = std::collections::HashSet::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[3].parse::<f64>().unwrap() > 3.0 {
            liked.insert((f[1].to_string(), f[2].to_string()));
        }
    }
    let users = longtail_data::import::read_vocab(&run.join("user_vocab.json")).unwrap();
    let items = longtail_data::import::read_vocab(&run.join("item_vocab.json")).unwrap();
    let scores =
        longtail_data::ScoresTable::read_parquet(&run.join("test_scores.parquet")).unwrap();
    let mut positives = 0;
    for i in 0..scores.len() {
        if scores.label[i] == 1.0 {
            let pair = (
                users[scores.user[i] as usize].clone(),
                items[scores.item[i] as usize].clone(),
            );
            assert!(
                liked.contains(&pair),
                "{pair:?} is not a liked pair of the CSV"
            );
            positives += 1;
        }
    }
    assert!(positives > 50, "{positives}");

    // The same log under other names, no index column, timestamps in milliseconds.
    let mine = d.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    let mut renamed = String::from("uid,movie,stars,when_ms\n");
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let ms = (f[4].parse::<f64>().unwrap() as i64) * 1000;
        renamed.push_str(&format!("{},{},{},{ms}\n", f[1], f[2], f[3]));
    }
    std::fs::write(mine.join("log.csv"), renamed).unwrap();
    std::fs::copy(examples.join("csv-din.toml"), mine.join("csv-din.toml")).unwrap();
    let (again, _) = run_once(
        &mine.join("csv-din.toml"),
        &[
            "--set",
            // A path given on the command line is read from the working directory.
            "data.path=\"mine/log.csv\"",
            "--set",
            "data.columns={ user = \"uid\", item = \"movie\", timestamp = \"when_ms\", \
             timestamp_unit = \"ms\", rating = \"stars\" }",
        ],
        "b",
    );
    for key in ["auc", "auc/user=tail", "gauc", "logloss"] {
        assert_eq!(again[key], metrics[key], "{key}");
    }
}
