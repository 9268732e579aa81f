//! Filters on the real MovieTweetings-100k log in `LONGTAIL_DATA_DIR` (default `../shared/data`
//! beside the project root). When the folder is missing the test prints a note and passes.

use std::path::PathBuf;

use longtail_data::{
    apply_filters, import, DuplicateRule, FilterConfig, ImportFormat, Interactions,
};

fn ratings_path() -> Option<PathBuf> {
    let dir = std::env::var_os("LONGTAIL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    let path = dir.join("movietweetings-100k/ratings.dat");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "note: {} not found (set LONGTAIL_DATA_DIR); skipping",
            path.display()
        );
        None
    }
}

fn counts(ids: &[u32]) -> Vec<usize> {
    let mut c = vec![0usize; ids.iter().copied().max().unwrap_or(0) as usize + 1];
    ids.iter().for_each(|&x| c[x as usize] += 1);
    c
}

fn assert_k_core(t: &Interactions, k: usize) {
    for (name, ids) in [("user", &t.user), ("item", &t.item)] {
        let c = counts(ids);
        // Reindexed: every id 1..vocab occurs, and each at least k times.
        assert_eq!(c[0], 0, "{name} id 0 present");
        for (id, &n) in c.iter().enumerate().skip(1) {
            assert!(n >= k, "{name} {id} has {n} rows < {k}");
        }
    }
}

#[test]
fn movietweetings_5_core() {
    let Some(path) = ratings_path() else { return };
    let t = import(ImportFormat::Movietweetings, &path)
        .unwrap()
        .interactions;
    let cfg = FilterConfig {
        duplicates: DuplicateRule::KeepLast,
        k_core: Some(5),
        ..Default::default()
    };
    let f = apply_filters(&t, &cfg).unwrap();
    let r = &f.report;
    eprintln!("movietweetings-100k 5-core: {r:?}");
    assert!(r.converged);
    assert!(r.k_core_rounds >= 2, "{r:?}");
    assert_eq!(r.rows_in, 100_000);
    assert_eq!((r.users_in, r.items_in), (16_554, 10_506));
    assert!(r.rows_out > 0 && r.rows_out < r.rows_in);
    assert_eq!(r.rows_out, f.interactions.len());
    assert_eq!(f.interactions.num_users(), r.users_out + 1);
    assert_eq!(f.interactions.num_items(), r.items_out + 1);
    assert_eq!(f.user_map.len(), r.users_out + 1);
    assert_eq!(f.item_map.len(), r.items_out + 1);
    f.interactions.validate().unwrap();
    assert_k_core(&f.interactions, 5);
    assert_eq!(
        f.interactions.rating.as_ref().map(Vec::len),
        Some(r.rows_out)
    );

    // Idempotent: a 5-core is its own 5-core, with dense ids already in first-appearance order.
    let again = apply_filters(&f.interactions, &cfg).unwrap();
    assert_eq!(again.interactions, f.interactions);
    assert_eq!(again.report.k_core_rounds, 0);
    assert_eq!(again.report.duplicates_removed, 0);
    assert!(again.report.converged);
    assert_eq!(again.user_map, (0..=r.users_out as u32).collect::<Vec<_>>());

    // Every output row maps back to an input row with the same ts and rating.
    let mut input: std::collections::HashMap<(u32, u32), Vec<(i64, u32)>> = Default::default();
    let rating = t.rating.as_ref().unwrap();
    for (i, r) in rating.iter().enumerate() {
        input
            .entry((t.user[i], t.item[i]))
            .or_default()
            .push((t.ts[i], r.to_bits()));
    }
    let out = &f.interactions;
    let out_rating = out.rating.as_ref().unwrap();
    for (j, r) in out_rating.iter().enumerate() {
        let key = (
            f.user_map[out.user[j] as usize],
            f.item_map[out.item[j] as usize],
        );
        let rows = &input[&key];
        assert!(rows.contains(&(out.ts[j], r.to_bits())));
    }

    // Deterministic.
    assert_eq!(apply_filters(&t, &cfg).unwrap(), f);
}
