//! The leakage property: no sample's inputs use anything at or after its target's time. Checked on
//! random tables with many timestamp ties, for every split rule, with and without rated
//! negatives, for CTR histories, HIM sessions and IDW sequences.

use longtail_data::ctr::CtrSamples;
use longtail_data::{
    build_ctr_dataset, build_sequences, ActivenessRule, CtrConfig, Interactions, SequenceConfig,
    SessionConfig, Sessions, SplitRule,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `users` users with 1..=max_len events each over `items` items; timestamps from a small range
/// (so ties are common); ratings 1..=5.
fn random_table(seed: u64, users: u32, items: u32, max_len: usize) -> Interactions {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Interactions {
        rating: Some(Vec::new()),
        ..Default::default()
    };
    for u in 1..=users {
        let n = rng.gen_range(1..=max_len);
        for _ in 0..n {
            t.user.push(u);
            t.item.push(rng.gen_range(1..=items));
            // Days 0..60 with a coarse clock: many events share a timestamp.
            t.ts.push(rng.gen_range(0..60i64) * 86_400 + rng.gen_range(0..3i64) * 3600);
            t.rating.as_mut().unwrap().push(rng.gen_range(1..=5) as f32);
        }
    }
    // Shuffle rows so table order says nothing about time.
    let n = t.len();
    for i in (1..n).rev() {
        let j = rng.gen_range(0..=i);
        t.user.swap(i, j);
        t.item.swap(i, j);
        t.ts.swap(i, j);
        t.rating.as_mut().unwrap().swap(i, j);
    }
    t
}

fn check_ctr(name: &str, d: &longtail_data::CtrDataset, s: &CtrSamples) {
    for i in 0..s.len() {
        let u = s.user[i];
        let ts = d.sequences.seq_ts(u);
        let end = s.hist_end[i] as usize;
        assert!(
            ts[..end].iter().all(|&x| x < s.ts[i]),
            "{name}: sample {i} (user {u}, t {}) has a history event at or after t",
            s.ts[i]
        );
        // And nothing strictly before t is left out.
        assert_eq!(
            end,
            ts.iter().filter(|&&x| x < s.ts[i]).count(),
            "{name}: sample {i}"
        );
    }
}

#[test]
fn no_input_at_or_after_the_target_time() {
    let splits = [
        SplitRule::LeaveLastOut,
        SplitRule::Random {
            valid: 0.1,
            test: 0.2,
        },
        SplitRule::Temporal {
            valid: 0.1,
            test: 0.2,
        },
    ];
    let sessions = Sessions::new(&SessionConfig {
        windows: vec!["2d".into(), "2w".into(), "1m".into(), "all".into()],
        top_n: 4,
    })
    .unwrap();
    let mut slots = sessions.new_slots();
    for seed in 0..6u64 {
        let t = random_table(seed, 120, 40, 25);
        for (k, &split) in splits.iter().enumerate() {
            let cfg = CtrConfig {
                neg_per_pos: 2,
                split,
                positive_threshold: Some(3.0),
                rated_negatives: seed % 2 == 0,
                activeness: ActivenessRule::default(),
                ..Default::default()
            };
            let name = format!("seed {seed} split {k}");
            let d = build_ctr_dataset(&t, "rand", &cfg, seed).unwrap();
            for s in [&d.train, &d.valid, &d.test] {
                check_ctr(&name, &d, s);
                // Sessions: every filled slot is an event of that user strictly before t, and
                // the counts never exceed the events before t.
                for i in 0..s.len() {
                    let u = s.user[i];
                    let (pi, pt) = (d.sequences.seq(u), d.sequences.seq_ts(u));
                    let (ni, nt) = (d.negative_feedback.seq(u), d.negative_feedback.seq_ts(u));
                    sessions.fill(pi, pt, ni, nt, s.ts[i], &mut slots);
                    for (items, counts, src, src_ts) in [
                        (&slots.pos_items, &slots.pos_counts, pi, pt),
                        (&slots.neg_items, &slots.neg_counts, ni, nt),
                    ] {
                        let before = src_ts.iter().filter(|&&x| x < s.ts[i]).count() as f32;
                        assert!(counts.iter().sum::<f32>() <= before, "{name}: sample {i}");
                        for (&it, &c) in items.iter().zip(counts.iter()) {
                            if it == 0 {
                                continue;
                            }
                            let n = src
                                .iter()
                                .zip(src_ts)
                                .filter(|&(&x, &ts)| x == it && ts < s.ts[i])
                                .count() as f32;
                            assert!(c >= 1.0 && c <= n, "{name}: sample {i} item {it}");
                        }
                    }
                }
            }
            if let SplitRule::Temporal { .. } = split {
                let max = |s: &CtrSamples| s.ts.iter().copied().max().unwrap_or(i64::MIN);
                let min = |s: &CtrSamples| s.ts.iter().copied().min().unwrap_or(i64::MAX);
                assert!(max(&d.train) < min(&d.valid).min(min(&d.test)), "{name}");
                assert!(max(&d.valid) < min(&d.test), "{name}");
            }
        }
        // IDW sequences on the positives of the same table.
        let d = build_ctr_dataset(
            &t,
            "rand",
            &CtrConfig {
                neg_per_pos: 0,
                ..Default::default()
            },
            seed,
        )
        .unwrap();
        let q = build_sequences(
            &d.sequences,
            d.num_items(),
            &SequenceConfig {
                max_len: 5,
                eval_negatives: 5,
                ..Default::default()
            },
            seed,
        )
        .unwrap();
        for s in [&q.train, &q.valid, &q.test] {
            for i in 0..s.len() {
                let u = s.user[i];
                let (items, ts) = (d.sequences.seq(u), d.sequences.seq_ts(u));
                for &h in s.hist_row(i).iter().filter(|&&h| h != 0) {
                    assert!(
                        items
                            .iter()
                            .zip(ts)
                            .any(|(&x, &t)| x == h && t < s.target_ts[i]),
                        "seed {seed}: sequence sample {i} history item {h} not before the target"
                    );
                }
            }
        }
    }
}

/// Batches carry the sessions of each row's own user and time (so they inherit the property).
#[test]
fn batch_sessions_are_each_rows_sessions() {
    let t = random_table(11, 80, 30, 20);
    let cfg = CtrConfig {
        neg_per_pos: 2,
        positive_threshold: Some(3.0),
        split: SplitRule::Random {
            valid: 0.1,
            test: 0.2,
        },
        ..Default::default()
    };
    let mut d = build_ctr_dataset(&t, "rand", &cfg, 3).unwrap();
    let sc = SessionConfig {
        windows: vec!["3d".into(), "1m".into(), "all".into()],
        top_n: 3,
    };
    d.with_sessions(&sc).unwrap();
    assert_eq!(
        d.feature_map.get("sessions").unwrap().dims,
        Some(vec![3, 3])
    );
    let sessions = d.sessions.as_ref().unwrap();
    let it = longtail_data::BatchIter::new(&d.train, &d.sequences, 16, 10, Some(5), None)
        .with_sessions(sessions, &d.negative_feedback);
    let mut slots = sessions.new_slots();
    let w = sessions.slot_len();
    for b in 0..it.num_batches() {
        let batch = it.batch(b).unwrap();
        batch.validate().unwrap();
        let sb = batch.sessions.as_ref().unwrap();
        for r in 0..batch.valid {
            // The row's sample is one of those with its (user, item, label); one must match.
            let u = batch.user[r] as u32;
            let hits: Vec<usize> = (0..d.train.len())
                .filter(|&i| {
                    d.train.user[i] == u
                        && i64::from(d.train.item[i]) == batch.item[r]
                        && d.train.label[i] == batch.label[r]
                })
                .collect();
            let ok = hits.iter().any(|&i| {
                sessions.fill(
                    d.sequences.seq(u),
                    d.sequences.seq_ts(u),
                    d.negative_feedback.seq(u),
                    d.negative_feedback.seq_ts(u),
                    d.train.ts[i],
                    &mut slots,
                );
                sb.pos_items[r * w..(r + 1) * w] == slots.pos_items[..]
                    && sb.neg_counts[r * w..(r + 1) * w] == slots.neg_counts[..]
            });
            assert!(ok, "batch {b} row {r}: sessions are not the row's own");
        }
    }
}
