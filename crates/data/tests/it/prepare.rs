//! `prepare`: determinism, round trip through the folder, bad configs, and the real datasets.

use std::path::{Path, PathBuf};

use longtail_data::prepare::{load_prepared_ctr, prepare, read_samples, PrepareConfig};
use longtail_data::{build_ctr_dataset, generate, Frame};

const CFG: &str = r#"
dataset = "tiny-synth"
seed = 7

[data]
kind = "synth"
synth = { users = 150, items = 60, clusters = 6, max_len = 30 }

[filters]
min_user_interactions = 2

[samples]
neg_per_pos = 2
split = { kind = "random", valid = 0.1, test = 0.2 }

[sessions]
windows = ["10d", "60d", "all"]
top_n = 5

[sequences]
max_len = 8
eval_negatives = 20
"#;

fn quiet(_: &str) {}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["", "samples", "sessions", "sequences"] {
        let d = dir.join(sub);
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && p.file_name().unwrap() != "prepare.json" {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_and_the_folder_round_trips() {
    let cfg = PrepareConfig::from_toml(CFG, "t.toml").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let ma = prepare(&cfg, &a, &quiet).unwrap();
    prepare(&cfg, &b, &quiet).unwrap();
    let fa = files(&a);
    assert_eq!(fa, files(&b));
    for f in [
        "interactions.parquet",
        "feature_map.json",
        "samples/train.parquet",
        "sessions/test.parquet",
        "sequences/valid.parquet",
        "item_clusters.json",
    ] {
        assert!(fa.contains(&PathBuf::from(f)), "{f} missing: {fa:?}");
    }
    for f in &fa {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{} differs between two runs with the same seed",
            f.display()
        );
    }
    // Another seed gives other samples.
    let mut other = cfg.clone();
    other.seed = 8;
    let c = tmp.path().join("c");
    prepare(&other, &c, &quiet).unwrap();
    assert_ne!(
        std::fs::read(a.join("samples/train.parquet")).unwrap(),
        std::fs::read(c.join("samples/train.parquet")).unwrap()
    );

    // The folder reads back as the dataset build_ctr_dataset makes from the same table.
    let (d, m) = load_prepared_ctr(&a).unwrap();
    assert_eq!(m, ma);
    let synth = match &cfg.data {
        longtail_data::DataSource::Synth { synth } => synth.clone(),
        _ => unreachable!(),
    };
    let raw = generate(&synth, longtail_data::seed::derive_seed(7, "synth")).unwrap();
    let filtered = longtail_data::apply_filters(&raw.interactions, cfg.filters.as_ref().unwrap())
        .unwrap()
        .interactions;
    let direct = build_ctr_dataset(&filtered, "tiny-synth", &cfg.samples, 7).unwrap();
    assert_eq!(d.train, direct.train);
    assert_eq!(d.valid, direct.valid);
    assert_eq!(d.test, direct.test);
    assert_eq!(d.sequences, direct.sequences);
    assert_eq!(d.item_freq, direct.item_freq);
    assert_eq!(d.user_train_positives, direct.user_train_positives);
    assert_eq!(m.train.samples, direct.train.len());

    // Sessions are row-aligned with the samples; sequences have L columns.
    let sess = Frame::read_parquet(&a.join("sessions/train.parquet"), &["pos_items"]).unwrap();
    assert_eq!(sess.rows(), d.train.len());
    match sess.get("pos_items").unwrap() {
        longtail_data::Column::U32List { width, .. } => assert_eq!(*width, 3 * 5),
        other => panic!("{other:?}"),
    }
    // Each session row is what Sessions::fill gives for that sample's user and time.
    let sessions = longtail_data::Sessions::new(cfg.sessions.as_ref().unwrap()).unwrap();
    let mut slots = sessions.new_slots();
    let mut sess = sess;
    let (pi, pc) = match (
        sess.take("pos_items").unwrap(),
        sess.take("pos_counts").unwrap(),
    ) {
        (
            longtail_data::Column::U32List { values: i, .. },
            longtail_data::Column::F32List { values: c, .. },
        ) => (i, c),
        other => panic!("{other:?}"),
    };
    let w = sessions.slot_len();
    for r in 0..d.train.len() {
        let u = d.train.user[r];
        sessions.fill(
            d.sequences.seq(u),
            d.sequences.seq_ts(u),
            d.negative_feedback.seq(u),
            d.negative_feedback.seq_ts(u),
            d.train.ts[r],
            &mut slots,
        );
        assert_eq!(&pi[r * w..(r + 1) * w], &slots.pos_items[..], "row {r}");
        assert_eq!(&pc[r * w..(r + 1) * w], &slots.pos_counts[..], "row {r}");
    }
    let seq =
        Frame::read_parquet(&a.join("sequences/test.parquet"), &["hist", "negatives"]).unwrap();
    assert_eq!(Some(seq.rows()), m.test.sequences);
    assert!(d.feature_map.get("sessions").is_some() && d.feature_map.get("seq_hist").is_some());

    // A modified folder is refused.
    std::fs::copy(
        c.join("interactions.parquet"),
        a.join("interactions.parquet"),
    )
    .unwrap();
    let e = load_prepared_ctr(&a).unwrap_err().to_string();
    assert!(
        e.contains("interactions.parquet") && e.contains("hash"),
        "{e}"
    );
}

#[test]
fn bad_configs_fail_cleanly_without_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cases: [(&str, &str, &str); 5] = [
        (
            r#"windows = ["10d", "60d", "all"]"#,
            r#"windows = ["60d", "10d", "all"]"#,
            "sessions.windows",
        ),
        (
            r#"windows = ["10d", "60d", "all"]"#,
            "windows = []",
            "sessions.windows",
        ),
        (
            r#"split = { kind = "random", valid = 0.1, test = 0.2 }"#,
            r#"split = { kind = "temporal", valid = 0.1, test = 0.0 }"#,
            "test set empty",
        ),
        ("neg_per_pos = 2", "neg_per_pos = 2\nnegs = 3", "negs"),
        ("max_len = 8", "max_len = 0", "sequences.max_len"),
    ];
    for (from, to, want) in cases {
        let text = CFG.replace(from, to);
        let e = match PrepareConfig::from_toml(&text, "bad.toml") {
            Err(e) => e.to_string(),
            Ok(cfg) => prepare(&cfg, &out, &quiet).unwrap_err().to_string(),
        };
        assert!(e.contains(want), "{to}: {e}");
        assert!(!out.exists(), "{to}: output left behind");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(
            leftovers.is_empty(),
            "{to}: temporary files left: {leftovers:?}"
        );
    }
    // An unknown key names its line.
    let e = PrepareConfig::from_toml(
        "dataset = \"x\"\nseeed = 1\n[data]\nkind = \"synth\"\n",
        "f.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("seeed"), "{e}");
    // A folder that is not a prepared folder is never replaced.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let cfg = PrepareConfig::from_toml(CFG, "t.toml").unwrap();
    let e = prepare(&cfg, &mine, &quiet).unwrap_err().to_string();
    assert!(e.contains("not a prepared folder"), "{e}");
    assert!(mine.join("notes.txt").exists());
}

#[test]
fn real_amazon_him_protocol() {
    let Some(dir) = super::import_real::data_dir() else {
        return;
    };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/prepare/amazon-mi-him.toml"
    ))
    .unwrap();
    let mut cfg = PrepareConfig::from_toml(&text, "amazon-mi-him.toml").unwrap();
    if let longtail_data::DataSource::Raw { path, .. } = &mut cfg.data {
        *path = dir.join(&path);
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mi");
    let m = prepare(&cfg, &out, &quiet).unwrap();
    assert_eq!((m.interactions, m.users, m.items), (10_261, 1_429, 900));
    // Every positive (rating > 3) is a sample in exactly one split.
    let positives = m.train.positives + m.valid.positives + m.test.positives;
    let raw = longtail_data::import(
        longtail_data::ImportFormat::AmazonCsv,
        &dir.join("amazon-musical-instruments-5core-2014/Musical_Instruments_5.csv"),
    )
    .unwrap();
    let n_pos = raw
        .interactions
        .rating
        .unwrap()
        .iter()
        .filter(|&&r| r > 3.0)
        .count();
    assert_eq!(positives, n_pos);
    // 5 negatives per positive (no user saw the whole catalogue).
    assert_eq!(m.train.samples, 6 * m.train.positives);
    let s = read_samples(&out.join("samples/test.parquet")).unwrap();
    assert_eq!(s.len(), m.test.samples);
}

#[test]
fn real_ml1m_mfn_inputs_align_genres_with_histories() {
    let Some(dir) = super::import_real::data_dir() else {
        return;
    };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/prepare/ml-1m-mfn.toml"
    ))
    .unwrap();
    std::env::set_var("LONGTAIL_DATA_DIR", &dir);
    let cfg = PrepareConfig::from_toml(&text, "ml-1m-mfn.toml").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mfn");
    let m = prepare(&cfg, &out, &quiet).unwrap();
    assert_eq!((m.interactions, m.users, m.items), (487_650, 2_999, 3_615));
    let items = longtail_data::prepare::load_prepared_items(&out)
        .unwrap()
        .unwrap();
    let genres = items.list("genres").unwrap();
    assert_eq!(genres.covered(), 3_615);
    let a = genres.max_len();
    let mut f = Frame::read_parquet(
        &out.join("sequences/test.parquet"),
        &["hist", "hist_genres"],
    )
    .unwrap();
    let (hist, hg) = match (f.take("hist").unwrap(), f.take("hist_genres").unwrap()) {
        (
            longtail_data::Column::U32List {
                width: w1,
                values: h,
            },
            longtail_data::Column::U32List {
                width: w2,
                values: g,
            },
        ) => {
            assert_eq!((w1, w2), (30, 30 * a));
            (h, g)
        }
        other => panic!("{other:?}"),
    };
    // Slot j of row r holds the genres of history item hist[r][j] (padding slots hold none).
    for (slot, &item) in hist.iter().enumerate().take(3000) {
        let got: Vec<u32> = hg[slot * a..(slot + 1) * a]
            .iter()
            .copied()
            .filter(|&g| g != 0)
            .collect();
        let want: Vec<u32> = if item == 0 {
            vec![]
        } else {
            genres.row(item as usize).to_vec()
        };
        assert_eq!(got, want, "slot {slot} item {item}");
    }
}

#[test]
fn prefetched_and_streamed_batches_equal_the_plain_ones() {
    use longtail_data::batch::{prefetch_batches, stream_sample_batches};
    use longtail_data::BatchIter;
    let text = CFG
        .replace("users = 150", "users = 400")
        .replace("neg_per_pos = 2", "neg_per_pos = 4");
    let cfg = PrepareConfig::from_toml(&text, "t.toml").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    prepare(&cfg, &out, &quiet).unwrap();
    let (d, _) = load_prepared_ctr(&out).unwrap();
    assert!(d.train.len() > 2048, "several Parquet record batches");
    let plain = BatchIter::new(&d.train, &d.sequences, 7, 5, Some(3), None);
    let want: Vec<_> = (0..plain.num_batches())
        .map(|b| plain.batch(b).unwrap())
        .collect();
    let mut got = Vec::new();
    prefetch_batches(&plain, 4, |b| -> Result<(), longtail_data::DataError> {
        got.push(b);
        Ok(())
    })
    .unwrap();
    assert_eq!(got, want);
    // A consumer error stops the producer and comes back.
    let mut seen = 0;
    let e = prefetch_batches(&plain, 2, |_| {
        seen += 1;
        if seen == 3 {
            Err(longtail_data::DataError::Invalid("stop".into()))
        } else {
            Ok(())
        }
    });
    assert_eq!(
        (e.map_err(|e| e.to_string()), seen),
        (Err("stop".into()), 3)
    );

    // Streaming the file in order gives the unshuffled batches.
    let ordered = BatchIter::new(&d.train, &d.sequences, 7, 5, None, None);
    let want: Vec<_> = (0..ordered.num_batches())
        .map(|b| ordered.batch(b).unwrap())
        .collect();
    let mut got = Vec::new();
    stream_sample_batches(
        &out.join("samples/train.parquet"),
        &d.sequences,
        7,
        5,
        3,
        |b| {
            got.push(b);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want);
    // A truncated file is an error naming it, not a panic.
    let p = out.join("samples/valid.parquet");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    let e = stream_sample_batches(&p, &d.sequences, 7, 5, 3, |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("valid.parquet"), "{e}");
}
