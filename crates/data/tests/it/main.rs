//! Integration tests of longtail-data: the whole host pipeline, synthetic data -> Parquet ->
//! CTR samples -> fixed-size batches.

mod filter_real;
mod fuzz;
mod import_real;
mod leakage;
mod prepare;
mod prepare_guards;

use longtail_data::batch::item_logq;
use longtail_data::seed::derive_seed;
use longtail_data::{
    build_ctr_dataset, generate, BatchIter, CtrConfig, FeatureMap, Interactions, SplitRule,
    SynthConfig,
};

fn small_synth() -> SynthConfig {
    SynthConfig {
        users: 200,
        items: 60,
        clusters: 6,
        max_len: 30,
        ..Default::default()
    }
}

#[test]
fn synth_parquet_ctr_batches() {
    let data = generate(&small_synth(), 17).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.parquet");
    data.interactions.write_parquet(&path).unwrap();
    let back = Interactions::read_parquet(&path).unwrap();
    assert_eq!(back, data.interactions);
    assert_eq!(back.content_hash(), data.interactions.content_hash());

    for split in [
        SplitRule::LeaveLastOut,
        SplitRule::Random {
            valid: 0.1,
            test: 0.2,
        },
    ] {
        let cfg = CtrConfig {
            split,
            max_hist_len: 8,
            ..Default::default()
        };
        let ds = build_ctr_dataset(&back, "synth", &cfg, 17).unwrap();
        let fm_path = dir.path().join("feature_map.json");
        ds.feature_map.write_json(&fm_path).unwrap();
        let fm = FeatureMap::read_json(&fm_path).unwrap();
        assert_eq!(fm, ds.feature_map);
        let user_vocab = fm.vocab("user").unwrap() as i64;
        let item_vocab = fm.vocab("item").unwrap() as i64;
        let hist_vocab = fm.require("hist", "it").unwrap().vocab as i64;
        assert_eq!(user_vocab, 201);

        let logq = item_logq(&ds.item_freq);
        for (name, samples) in [
            ("train", &ds.train),
            ("valid", &ds.valid),
            ("test", &ds.test),
        ] {
            assert!(!samples.is_empty(), "{name} is empty");
            let it = BatchIter::try_new(
                samples,
                &ds.sequences,
                64,
                cfg.max_hist_len,
                Some(derive_seed(17, "shuffle/epoch0")),
                Some(&logq),
            )
            .unwrap();
            let n_batches = it.num_batches();
            let mut rows = 0;
            let mut positives = 0;
            for b in it {
                b.validate().unwrap();
                assert_eq!(b.size, 64);
                rows += b.valid;
                for r in 0..b.size {
                    assert!(
                        (1..user_vocab).contains(&b.user[r]),
                        "{name} user {}",
                        b.user[r]
                    );
                    assert!(
                        (1..item_vocab).contains(&b.item[r]),
                        "{name} item {}",
                        b.item[r]
                    );
                    assert!(b.label[r] == 0.0 || b.label[r] == 1.0);
                    assert!(b.user_group[r] < 3 && b.item_group[r] < 2);
                    assert!(b.item_logq[r].is_finite() && b.item_logq[r] < 0.0);
                    assert_eq!(b.weight[r], if r < b.valid { 1.0 } else { 0.0 });
                    if r < b.valid && b.label[r] == 1.0 {
                        positives += 1;
                    }
                }
                assert!(b.hist_ids.iter().all(|&x| (1..hist_vocab).contains(&x)));
                let (ids, mask) = b.padded_history();
                assert_eq!(ids.len(), 64 * cfg.max_hist_len);
                assert_eq!(mask.iter().filter(|&&m| m == 1.0).count(), b.hist_ids.len());
            }
            assert_eq!(rows, samples.len(), "{name}: every sample exactly once");
            assert_eq!(positives, samples.num_positives());
            assert_eq!(n_batches, samples.len().div_ceil(64));
        }
        // Every positive of the table is in exactly one split.
        let total = ds.train.num_positives() + ds.valid.num_positives() + ds.test.num_positives();
        assert_eq!(total, back.len());
    }
}

#[test]
fn the_whole_pipeline_is_deterministic() {
    let cfg = CtrConfig::default();
    let a = build_ctr_dataset(
        &generate(&small_synth(), 3).unwrap().interactions,
        "s",
        &cfg,
        3,
    )
    .unwrap();
    let b = build_ctr_dataset(
        &generate(&small_synth(), 3).unwrap().interactions,
        "s",
        &cfg,
        3,
    )
    .unwrap();
    assert_eq!(a, b);
    let batches = |d: &longtail_data::CtrDataset| -> Vec<_> {
        BatchIter::new(&d.train, &d.sequences, 32, 10, Some(9), None).collect()
    };
    assert_eq!(batches(&a), batches(&b));
    let c = build_ctr_dataset(
        &generate(&small_synth(), 4).unwrap().interactions,
        "s",
        &cfg,
        4,
    )
    .unwrap();
    assert_ne!(a.train, c.train);
}

#[test]
fn leave_last_out_tail_users_have_test_only() {
    // With lengths drawn from a power law, many users have a single event: those must end up with
    // a test sample, an empty history, no train positive, and the tail group.
    let data = generate(&small_synth(), 5).unwrap();
    let ds = build_ctr_dataset(&data.interactions, "s", &CtrConfig::default(), 5).unwrap();
    let singles: Vec<u32> = (1..ds.num_users() as u32)
        .filter(|&u| ds.sequences.seq(u).len() == 1)
        .collect();
    assert!(
        singles.len() > 20,
        "expected many one-event users, got {}",
        singles.len()
    );
    for &u in &singles {
        assert_eq!(ds.user_train_positives[u as usize], 0);
    }
    for i in 0..ds.test.len() {
        if singles.contains(&ds.test.user[i]) {
            assert_eq!(ds.test.hist_end[i], 0);
            assert_eq!(ds.test.user_group[i], 0);
        }
    }
    assert!(!ds.train.user.iter().any(|u| singles.contains(u)));
}
