//! Ranking, top-K, coverage and silhouette against the reference values in `goldens/goldens.json`
//! (independent numpy loops and `sklearn.metrics.silhouette_score`, see `goldens/make_goldens.py`).

use std::collections::BTreeMap;

use longtail_eval::{
    list_metrics, list_metrics_by_group, silhouette, tail_share_and_coverage, topk_metrics, Metric,
    Metrics, RankingMetric, ScoredSlice, SILHOUETTE_MAX_EXACT,
};
use serde::Deserialize;

const TOL: f64 = 1e-9;
const SIL_TOL: f64 = 1e-6;

#[derive(Deserialize)]
struct Goldens {
    list_metrics: Vec<ListCase>,
    topk_metrics: Vec<TopkCase>,
    coverage: Vec<CoverageCase>,
    silhouette: Vec<SilhouetteCase>,
}

type Expected = BTreeMap<String, Option<f64>>;

#[derive(Deserialize)]
struct ListCase {
    name: String,
    list_ids: Vec<u64>,
    scores: Vec<f32>,
    labels: Vec<f32>,
    item_group: Vec<u8>,
    names: Vec<String>,
    ks: Vec<usize>,
    expected: Expected,
}

#[derive(Deserialize)]
struct TopkCase {
    name: String,
    topk: Vec<Vec<u32>>,
    targets: Vec<u32>,
    ks: Vec<usize>,
    expected: Expected,
}

#[derive(Deserialize)]
struct CoverageCase {
    name: String,
    topk: Vec<Vec<u32>>,
    k: usize,
    item_group: Vec<u8>,
    num_items: usize,
    expected: Expected,
}

#[derive(Deserialize)]
struct SilhouetteCase {
    name: String,
    dim: usize,
    points: Vec<f32>,
    labels: Vec<u32>,
    expected: f64,
}

fn load() -> Goldens {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/goldens.json");
    let text = std::fs::read_to_string(path).expect("read goldens.json");
    serde_json::from_str(&text).expect("parse goldens.json")
}

/// `got` has exactly the keys of `want`, values within `TOL` (`null` = NaN).
fn assert_metrics(name: &str, got: &Metrics, want: &Expected) {
    let gk: Vec<&String> = got.keys().collect();
    let wk: Vec<&String> = want.keys().collect();
    assert_eq!(gk, wk, "{name}: keys");
    for (k, w) in want {
        let g = got[k];
        match w {
            Some(w) => assert!((g - w).abs() < TOL, "{name} {k}: got {g}, want {w}"),
            None => assert!(g.is_nan(), "{name} {k}: got {g}, want NaN"),
        }
    }
}

/// The expected keys without the per-group breakdown.
fn overall(want: &Expected) -> Expected {
    want.iter()
        .filter(|(k, _)| !k.contains("/item="))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[test]
fn list_metrics_match_reference() {
    let g = load();
    assert!(g.list_metrics.len() >= 3);
    for c in &g.list_metrics {
        let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
        let by = list_metrics_by_group(
            &c.list_ids,
            &c.scores,
            &c.labels,
            &c.item_group,
            &names,
            &c.ks,
        )
        .unwrap();
        assert_metrics(&c.name, &by, &c.expected);
        let plain = list_metrics(&c.list_ids, &c.scores, &c.labels, &c.ks).unwrap();
        assert_metrics(&c.name, &plain, &overall(&c.expected));

        // Streaming, in three uneven batches, with explicit list ids.
        let mut m = RankingMetric::new(&c.ks).with_item_groups(&names);
        let n = c.scores.len();
        let cuts = [0, n / 3, n / 3 + 1, n];
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let s = ScoredSlice::new(&c.scores[a..b], &c.labels[a..b])
                .with_item_group(&c.item_group[a..b]);
            m.update_lists(&c.list_ids[a..b], &s).unwrap();
        }
        let kv: Metrics = m.compute().unwrap().into_iter().collect();
        assert_metrics(&c.name, &kv, &c.expected);
    }
}

#[test]
fn topk_metrics_match_reference() {
    for c in &load().topk_metrics {
        let m = topk_metrics(&c.topk, &c.targets, &c.ks).unwrap();
        assert_metrics(&c.name, &m, &c.expected);
    }
}

#[test]
fn coverage_matches_reference() {
    for c in &load().coverage {
        let m = tail_share_and_coverage(&c.topk, c.k, &c.item_group, c.num_items).unwrap();
        assert_metrics(&c.name, &m, &c.expected);
    }
}

#[test]
fn silhouette_matches_sklearn() {
    let g = load();
    assert!(g.silhouette.len() >= 2);
    for c in &g.silhouette {
        let r = silhouette(&c.points, c.dim, &c.labels, SILHOUETTE_MAX_EXACT, 0).unwrap();
        assert_eq!(r.sampled, None);
        assert!(
            (r.score - c.expected).abs() < SIL_TOL,
            "{}: got {}, want {}",
            c.name,
            r.score,
            c.expected
        );
        // Sampling every point but one is still close to the exact value, and reproducible.
        let n = c.labels.len();
        let a = silhouette(&c.points, c.dim, &c.labels, n - 1, 3).unwrap();
        assert_eq!(a.sampled, Some(n - 1));
        assert_eq!(
            a,
            silhouette(&c.points, c.dim, &c.labels, n - 1, 3).unwrap()
        );
        assert!(
            (a.score - c.expected).abs() < 0.05,
            "{}: {}",
            c.name,
            a.score
        );
    }
}
