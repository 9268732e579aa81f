//! `prepare`'s guards: sizes from the config checked against memory before they are allocated
//! (`sessions.top_n`, `sequences.max_len`), and only a folder longtail prepared is replaced.

use std::path::Path;
use std::time::Instant;

use longtail_data::prepare::{
    is_prepared_folder, max_sequence_samples, prepare, sequences_bytes, sessions_bytes,
    PrepareConfig,
};
use longtail_data::{build_sequences, SequenceConfig, TrainCut, UserSequences};

const GIB: f64 = (1u64 << 30) as f64;

const CFG: &str = r#"
dataset = "guards"
seed = 3

[data]
kind = "synth"
synth = { users = 120, items = 40, clusters = 4, max_len = 20 }

[samples]
neg_per_pos = 1
split = { kind = "random", valid = 0.1, test = 0.2 }
"#;

fn quiet(_: &str) {}

fn config(extra: &str) -> PrepareConfig {
    PrepareConfig::from_toml(&format!("{CFG}{extra}"), "guards.toml").unwrap()
}

fn no_leftovers(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn session_estimates_scale_with_top_n_and_stop_at_one_chunk() {
    // Amazon MI's train split (31,445 samples) with the paper's 4 windows: top_n = 10 is tens
    // of MiB, top_n = 100,000 (the OOM-killed typo) hundreds of GiB.
    let sane = sessions_bytes(31_445, 4, 10, 16);
    assert!(sane > 40e6 && sane < 100e6, "{sane}");
    let huge = sessions_bytes(31_445, 4, 100_000, 16);
    assert!(huge > 500.0 * GIB, "{huge}");
    assert!(sessions_bytes(31_445, 4, 1_000_000, 16) > 9.9 * huge);
    // Sessions are written a chunk at a time: a larger split needs no more.
    assert_eq!(
        sessions_bytes(10_000_000, 4, 10, 2),
        sessions_bytes(1 << 15, 4, 10, 2)
    );
    assert!(sessions_bytes(0, 4, 10, 2) > 0.0);
    assert!(sessions_bytes(usize::MAX, usize::MAX, usize::MAX, 1).is_finite());
}

#[test]
fn sequence_estimates_scale_with_max_len() {
    // Amazon MI cut with a sliding window: ~8,800 samples. max_len = 30 is a few MiB,
    // max_len = 100,000,000 (the OOM-killed typo) terabytes.
    let sane = sequences_bytes(8_832, 30, 99, 1);
    assert!(sane > 1e6 && sane < 50e6, "{sane}");
    assert!(sequences_bytes(8_832, 100_000_000, 10, 1) > 1000.0 * GIB);
    // Item features aligned with the history add their slots.
    assert!(sequences_bytes(8_832, 30, 99, 8) > 2.0 * sane);
    assert!(sequences_bytes(usize::MAX, usize::MAX, 1, 1).is_finite());
}

/// Users with `lens` items each, at distinct increasing times.
fn sequences_of(lens: &[usize]) -> UserSequences {
    let mut s = UserSequences {
        offsets: vec![0, 0],
        ..Default::default()
    };
    for (u, &n) in lens.iter().enumerate() {
        for i in 0..n {
            s.items.push(((u * 7 + i * 3) % 300 + 1) as u32);
            s.ts.push(1000 * u as i64 + i as i64);
        }
        s.offsets.push(s.items.len());
    }
    s
}

#[test]
fn sample_bound_is_exact_without_ties() {
    let lens = [0, 1, 2, 3, 4, 5, 9, 31, 32, 33, 34, 40, 64, 100];
    let seqs = sequences_of(&lens);
    for train_cut in [TrainCut::Chunks, TrainCut::Sliding] {
        for max_len in [1, 2, 3, 5, 30, 31, 32, 1000, usize::MAX] {
            let cfg = SequenceConfig {
                max_len,
                eval_negatives: 3,
                train_cut,
            };
            let bound = max_sequence_samples(&seqs, &cfg);
            if max_len == usize::MAX {
                // Too long to build; longer than every sequence, so as many as with 1000.
                let at_1000 = SequenceConfig {
                    max_len: 1000,
                    ..cfg.clone()
                };
                assert_eq!(
                    bound,
                    max_sequence_samples(&seqs, &at_1000),
                    "{train_cut:?}"
                );
                continue;
            }
            let d = build_sequences(&seqs, 400, &cfg, 1).unwrap();
            let n = d.train.len() + d.valid.len() + d.test.len();
            assert_eq!(bound, n, "{train_cut:?}, max_len {max_len}");
        }
    }
    // Ties only drop samples: the bound stays an upper bound.
    let mut tied = sequences_of(&[10, 10]);
    tied.ts.iter_mut().for_each(|t| *t /= 4);
    let cfg = SequenceConfig {
        max_len: 3,
        eval_negatives: 3,
        train_cut: TrainCut::Sliding,
    };
    let d = build_sequences(&tied, 400, &cfg, 1).unwrap();
    assert!(max_sequence_samples(&tied, &cfg) >= d.train.len() + d.valid.len() + d.test.len());
}

#[test]
fn huge_top_n_and_max_len_fail_fast_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("prep");
    for (extra, key) in [
        (
            "[sessions]\nwindows = [\"14d\", \"all\"]\ntop_n = 1000000000000\n",
            "sessions.top_n",
        ),
        (
            "[sequences]\nmax_len = 1000000000000\neval_negatives = 5\ntrain_cut = \"sliding\"\n",
            "sequences.max_len",
        ),
    ] {
        let started = Instant::now();
        let e = prepare(&config(extra), &out, &quiet)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(key) && e.contains("available") && !e.contains('\n'),
            "{e}"
        );
        assert!(
            started.elapsed().as_secs_f64() < 10.0,
            "{key}: slow refusal"
        );
        no_leftovers(tmp.path());
    }
    // Sane values as the shipped configs use them still pass.
    let m = prepare(
        &config(
            "[sessions]\nwindows = [\"14d\", \"6m\", \"12m\", \"all\"]\ntop_n = 10\n\
             [sequences]\nmax_len = 30\neval_negatives = 5\n",
        ),
        &out,
        &quiet,
    )
    .unwrap();
    assert!(m.train.sequences.is_some_and(|n| n > 0));
    assert!(out.join("sessions/train.parquet").is_file());
}

#[test]
fn only_a_folder_longtail_prepared_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config("");
    let real = tmp.path().join("real");
    let m = prepare(&cfg, &real, &quiet).unwrap();
    assert!(is_prepared_folder(&real));
    let manifest = std::fs::read_to_string(real.join("prepare.json")).unwrap();
    let fakes = [
        "not json".to_string(),
        "{}".to_string(),
        "[]".to_string(),
        format!(r#"{{"longtail_version": "{}"}}"#, m.longtail_version),
        // Every field, but the hashes are not SHA-256 digests.
        manifest.replace(&m.source_hash, "x"),
        manifest.replace(&m.interactions_hash, ""),
    ];
    for (i, fake) in fakes.iter().enumerate() {
        let mine = tmp.path().join(format!("mine{i}"));
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("prepare.json"), fake).unwrap();
        std::fs::write(mine.join("thesis.tex"), "my thesis").unwrap();
        assert!(!is_prepared_folder(&mine), "{fake}");
        let e = prepare(&cfg, &mine, &quiet).unwrap_err().to_string();
        assert!(
            e.contains(&mine.display().to_string()) && e.contains("not a prepared folder"),
            "{fake}: {e}"
        );
        assert_eq!(
            std::fs::read_to_string(mine.join("thesis.tex")).unwrap(),
            "my thesis"
        );
        assert_eq!(
            &std::fs::read_to_string(mine.join("prepare.json")).unwrap(),
            fake
        );
    }
    // A real prepared folder is replaced, also one prepared before hashes were recorded.
    prepare(&cfg, &real, &quiet).unwrap();
    let mut old: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    old.as_object_mut().unwrap().remove("files");
    std::fs::write(real.join("prepare.json"), old.to_string()).unwrap();
    assert!(is_prepared_folder(&real));
    prepare(&cfg, &real, &quiet).unwrap();
    assert!(!is_prepared_folder(&tmp.path().join("missing")));
}
