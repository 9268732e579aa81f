//! The retrieval path (IDW): calibration, chunked full-catalogue ranking, a run end to end.

use super::{stderr, train_config};
use serde_json::Value;

/// A tiny synthetic retrieval set (50 items in 5 clusters) and its data for direct calls.
fn tiny_retrieval_data() -> longtail_train::retrieval::RetrievalData {
    let synth = longtail_data::SynthConfig {
        users: 80,
        items: 50,
        clusters: 5,
        min_len: 12,
        max_len: 12,
        ..Default::default()
    };
    let d = longtail_data::generate(&synth, 3).unwrap();
    let (pos, _) = longtail_data::ctr::feedback_sequences(&d.interactions, None, "tiny").unwrap();
    let sc = longtail_data::SequenceConfig {
        max_len: 8,
        eval_negatives: 25,
        train_cut: longtail_data::TrainCut::Sliding,
    };
    let seq = longtail_data::build_sequences(&pos, d.interactions.num_items(), &sc, 3).unwrap();
    longtail_train::retrieval::RetrievalData::new(
        "tiny",
        &pos,
        seq,
        d.interactions.num_items(),
        0.2,
        Some(d.item_cluster),
    )
}

fn twotower(data: &longtail_train::retrieval::RetrievalData) -> longtail_core::Instance {
    let reg = longtail_models::builtin_registry().unwrap();
    let params: toml::Table = toml::from_str("interests = 3").unwrap();
    let ctx = longtail_core::BuildContext::new(
        &data.feature_map,
        &params,
        longtail_core::tch::Device::Cpu,
    );
    longtail_core::seed::seed_everything(4);
    reg.build("twotower", &ctx).unwrap()
}

/// IDW's user-tower calibration trains with the item tower frozen: every item-tower variable is
/// bit-identical afterwards, and the user tower did move.
#[test]
fn calibration_leaves_the_item_tower_unchanged() {
    let data = tiny_retrieval_data();
    let mut model = twotower(&data);
    let frozen = model.towers().unwrap().item_tower_prefixes();
    assert_eq!(frozen, vec!["item_tower".to_string()]);
    let frozen = frozen.clone();
    let copy = |m: &longtail_core::Instance| -> Vec<(String, longtail_core::tch::Tensor)> {
        let mut v: Vec<_> = m
            .vs()
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let before = copy(&model);
    let cfg = longtail_train::TrainConfig {
        epochs: 2,
        batch_size: 64,
        lr: 0.01,
        progress: false,
        ..Default::default()
    };
    let logs = longtail_train::fit(
        &mut model,
        &longtail_train::RetrievalTask::new(&data),
        &mut longtail_train::StandardStep::default(),
        &longtail_train::Fit {
            frozen,
            ..longtail_train::Fit::new("calibration", &cfg, 1, longtail_core::tch::Device::Cpu)
        },
    )
    .unwrap();
    assert_eq!(logs.len(), 2);
    let after = copy(&model);
    let (mut item_vars, mut user_moved) = (0, false);
    for ((n, a), (_, b)) in before.iter().zip(&after) {
        if n.starts_with("item_tower") {
            item_vars += 1;
            assert!(a.equal(b), "{n} changed during calibration");
        } else if !a.equal(b) {
            user_moved = true;
        }
    }
    assert!(item_vars >= 3 && user_moved);
    // Frozen variables are trainable again afterwards.
    assert!(model
        .vs()
        .variables()
        .iter()
        .all(|(_, t)| t.requires_grad()));
}

/// Full-catalogue ranking in chunks of 7 items gives exactly the metrics of one chunk.
#[test]
fn full_catalogue_ranking_is_the_same_in_chunks() {
    use longtail_train::retrieval::full_catalogue_metrics;
    let data = tiny_retrieval_data();
    let model = twotower(&data);
    let cpu = longtail_core::tch::Device::Cpu;
    let a = full_catalogue_metrics(&model, &data, &data.seq.test, 16, 7, cpu, None).unwrap();
    let b =
        full_catalogue_metrics(&model, &data, &data.seq.test, 1000, 100_000, cpu, None).unwrap();
    assert_eq!(a, b);
    assert!(a.contains_key("full_hr@20") && a.contains_key("full_hr@5/cluster=tail"));
    assert!(a["full_hr@20"] > 0.0);
}

/// A tiny IDW retrieval run (two iterations, early stopping on NDCG@20).
pub(crate) const IDW_TINY: &str = r#"
name = "idw-tiny"
dataset = "synthetic-skew1.0"
seed = 5
[data]
kind = "synth"
synth = { users = 60, items = 50, clusters = 5, min_len = 12, max_len = 12, interest_skew = 1.0 }
[sequences]
max_len = 8
eval_negatives = 25
train_cut = "sliding"
[model]
name = "twotower"
params = { interests = 2, layers = 1 }
[train]
epochs = 2
batch_size = 64
lr = 0.01
early_stopping_patience = 2
early_stopping_metric = "ndcg@20"
[idw]
max_iterations = 2
"#;

/// A retrieval run with IDW from a config: sleep/wake iterations with their silhouettes, the
/// calibration phase, sampled and full-catalogue metrics. `[idw]` without `[sequences]`, and
/// `[sequences]` with a CTR model, are clear errors.
#[test]
fn idw_retrieval_run_end_to_end_and_its_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IDW_TINY;
    let o = train_config(dir.path(), "idw.toml", cfg, "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("hr@20") && out.contains("full_ndcg@20"),
        "{out}"
    );
    let run: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/idw-tiny-twotower-seed5/run.json")).unwrap(),
    )
    .unwrap();
    let r = &run["retrieval"];
    let iters = r["idw"].as_array().unwrap();
    assert!(!iters.is_empty() && iters.len() <= 2);
    for i in iters {
        assert!(i["sleep"]["bandwidth"].as_f64().unwrap() > 0.0, "{i}");
        assert!(i["silhouette"].as_f64().unwrap().abs() <= 1.0, "{i}");
        // The per-iteration diagnostics (issue 18): own-term shares, density vs frequency,
        // where the wake phase's loss goes.
        let own = i["sleep"]["self_share_median"].as_f64().unwrap();
        assert!(own > 0.0 && own <= 1.0, "{i}");
        let d = &i["diagnostics"];
        assert!(
            d["density_frequency_spearman"].as_f64().unwrap().abs() <= 1.0,
            "{i}"
        );
        for k in ["head_loss_share", "head_loss_share_unweighted"] {
            let v = d[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k}: {i}");
        }
        assert!(
            d["most_over_least_frequent_weight"].as_f64().unwrap() > 0.0,
            "{i}"
        );
    }
    let phases: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"train"));
    assert_eq!(phases.last(), Some(&"calibration"));
    // epochs.jsonl has every phase's epochs, in order, as run.json records them.
    let logged: Vec<(String, Value)> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let name = p[0].as_str().unwrap().to_string();
            p[1].as_array()
                .unwrap()
                .iter()
                .map(move |e| (name.clone(), e.clone()))
        })
        .collect();
    super::journal_matches(&dir.path().join("runs/idw-tiny-twotower-seed5"), &logged);
    let m = &run["metrics"];
    for k in [
        "hr@20",
        "ndcg@5",
        "full_hr@20",
        "full_hr@5/cluster=tail",
        "silhouette",
    ] {
        assert!(m[k].as_f64().is_some(), "{k} missing: {m}");
    }
    assert!(m.get("logloss").is_none());

    let no_seq = cfg.replace(
        "[sequences]\nmax_len = 8\neval_negatives = 25\ntrain_cut = \"sliding\"\n",
        "",
    );
    let o = train_config(dir.path(), "bad1.toml", &no_seq, "runs2");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("idw") && stderr(&o).contains("[sequences]"),
        "{}",
        stderr(&o)
    );
    let ctr = cfg
        .replace(
            "name = \"twotower\"\nparams = { interests = 2, layers = 1 }",
            "name = \"basemodel\"",
        )
        .replace("[idw]\nmax_iterations = 2\n", "");
    let o = train_config(dir.path(), "bad2.toml", &ctr, "runs3");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("retrieval model"), "{}", stderr(&o));
    assert!(!dir.path().join("runs3/idw-tiny-basemodel-seed5").exists());
}

/// The loss-share reading of eq. 10 at m = 1 (w stays w(0) = p(y)) is the unweighted loss, so
/// the whole schedule equals the null control bit for bit (§4.6.2: m = 1 is the baseline); the
/// literal reading at m = 1 weighs samples by frequency, puts more of the loss on head items
/// and trains another model. `eta = 0`: with m = 1 the weights never change, and the stopping
/// rule would otherwise end IDW before its first wake phase.
#[test]
fn loss_share_weights_at_momentum_one_are_the_null_control() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, idw: &str| -> Value {
        let cfg = IDW_TINY
            .replace("name = \"idw-tiny\"", &format!("name = \"{name}\""))
            .replace(
                "[idw]\nmax_iterations = 2\n",
                &format!("[idw]\nmax_iterations = 2\n{idw}\n"),
            );
        let o = train_config(dir.path(), &format!("{name}.toml"), &cfg, "runs");
        assert!(o.status.success(), "{}", stderr(&o));
        let path = dir
            .path()
            .join(format!("runs/{name}-twotower-seed5/run.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let share = run("share", "momentum = 1.0\neta = 0.0");
    let null = run("null", "momentum = 1.0\neta = 0.0\nnull_control = true");
    let literal = run(
        "literal",
        "momentum = 1.0\neta = 0.0\nweights = \"literal\"",
    );
    let wakes = |r: &Value| {
        r["retrieval"]["phases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0].as_str().unwrap().starts_with("wake"))
            .count()
    };
    assert_eq!(wakes(&share), 2, "both wake phases ran");
    assert_eq!(share["metrics"], null["metrics"]);
    assert_ne!(literal["metrics"], null["metrics"]);
    let diag = |r: &Value, k: &str| r["retrieval"]["idw"][0]["diagnostics"][k].as_f64().unwrap();
    for r in [&share, &null] {
        assert_eq!(
            diag(r, "head_loss_share"),
            diag(r, "head_loss_share_unweighted")
        );
        assert_eq!(diag(r, "most_over_least_frequent_weight"), 1.0);
    }
    assert!(
        diag(&literal, "head_loss_share") > diag(&literal, "head_loss_share_unweighted"),
        "{}",
        literal["retrieval"]["idw"]
    );
    assert!(diag(&literal, "most_over_least_frequent_weight") > 1.0);
}

/// `full_catalogue_keep_seen` adds `full_all_*`, the full-catalogue ranking with the user's seen
/// items left among the candidates: removing competitors can only raise the target, so every
/// `full_hr@K` is at least its `full_all_hr@K`. Synthetic runs record each true cluster's share of
/// the training targets (skew 1: cluster 0 the most popular). In a CTR run the key is an error.
#[test]
fn keep_seen_full_catalogue_and_cluster_shares() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IDW_TINY.replace("[idw]\nmax_iterations = 2\n", "").replace(
        "early_stopping_metric = \"ndcg@20\"\n",
        "early_stopping_metric = \"ndcg@20\"\nfull_catalogue_keep_seen = true\n",
    );
    let o = train_config(dir.path(), "keep.toml", &cfg, "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let run: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/idw-tiny-twotower-seed5/run.json")).unwrap(),
    )
    .unwrap();
    let m = &run["metrics"];
    for k in [5, 20] {
        let (excl, kept) = (
            m[format!("full_hr@{k}")].as_f64().unwrap(),
            m[format!("full_all_hr@{k}")].as_f64().unwrap(),
        );
        assert!(excl >= kept, "@{k}: {excl} < {kept}");
    }
    assert!(m["full_all_hr@5/cluster=tail"].as_f64().is_some(), "{m}");
    let shares: Vec<f64> = run["dataset"]["cluster_shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(shares.len(), 5);
    assert!(
        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
        "{shares:?}"
    );
    assert!(shares[1..].iter().all(|&x| x < shares[0]), "{shares:?}");

    let ctr = "name = \"c\"\ndataset = \"s\"\n[data]\nkind = \"synth\"\nsynth = { users = 60, items = 50, clusters = 5 }\n[model]\nname = \"basemodel\"\n[train]\nfull_catalogue_keep_seen = true\n";
    let o = train_config(dir.path(), "ctr.toml", ctr, "runs2");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("train.full_catalogue_keep_seen"),
        "{}",
        stderr(&o)
    );
}

/// A retrieval run reads a prepared folder's `sequences/`: on the same data, seed and
/// `[sequences]` it gives exactly the metrics of the run that builds them itself; a run whose
/// `[sequences]` differs from the folder's, and a folder prepared without sequences, are errors.
#[test]
fn retrieval_from_a_prepared_folder_equals_building_the_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let synth = "kind = \"synth\"\nsynth = { users = 60, items = 50, clusters = 5, min_len = 12, max_len = 12, interest_skew = 1.0 }\n";
    let seqs = "[sequences]\nmax_len = 8\neval_negatives = 25\ntrain_cut = \"sliding\"\n";
    let prep = format!("dataset = \"s\"\nseed = 5\n[data]\n{synth}{seqs}");
    std::fs::write(d.join("p.toml"), &prep).unwrap();
    let o = super::longtail(&["prepare", "--config", "p.toml", "--out", "prep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = |name: &str, data: &str, seqs: &str| {
        let cfg = format!(
            "name = \"{name}\"\ndataset = \"s\"\nseed = 5\n[data]\n{data}{seqs}\
             [model]\nname = \"twotower\"\nparams = {{ interests = 2, layers = 1 }}\n\
             [train]\nepochs = 2\nbatch_size = 64\nlr = 0.01\nprogress = false\n"
        );
        train_config(d, &format!("{name}.toml"), &cfg, "runs")
    };
    let o = run("raw", synth, seqs);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("prep", "kind = \"prepared\"\npath = \"prep\"\n", seqs);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = |name: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(d.join(format!("runs/{name}-twotower-seed5/metrics.json"))).unwrap(),
        )
        .unwrap()
    };
    let (a, b) = (metrics("raw"), metrics("prep"));
    assert!(a["hr@20"].as_f64().is_some(), "{a}");
    assert_eq!(a, b, "prepared sequences differ from built ones");

    let o = run(
        "other",
        "kind = \"prepared\"\npath = \"prep\"\n",
        &seqs.replace("max_len = 8", "max_len = 6"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("'sequences'") && stderr(&o).contains("prepared folder"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        d.join("p2.toml"),
        format!("dataset = \"s\"\nseed = 5\n[data]\n{synth}"),
    )
    .unwrap();
    let o = super::longtail(&["prepare", "--config", "p2.toml", "--out", "prep2"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("none", "kind = \"prepared\"\npath = \"prep2\"\n", seqs);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no sequences/"), "{}", stderr(&o));
}
