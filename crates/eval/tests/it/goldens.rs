//! Compares against scikit-learn reference values stored in `goldens/goldens.json`
//! (written by `goldens/make_goldens.py`; Python is never run here).

use longtail_eval::{
    auc, auc_by_group, ctr_metrics, gauc, logloss, GroupedAucMetric, Metric, ScoredSlice,
};
use serde::Deserialize;

const TOL: f64 = 1e-9;

#[derive(Deserialize)]
struct Goldens {
    sklearn_version: String,
    logloss_eps: f64,
    auc: Vec<Case<Option<f64>>>,
    gauc: Vec<GaucCase>,
    grouped_auc: Vec<GroupedCase>,
    logloss: Vec<Case<f64>>,
}

#[derive(Deserialize)]
struct Case<E> {
    name: String,
    scores: Vec<f32>,
    labels: Vec<f32>,
    expected: E,
}

#[derive(Deserialize)]
struct GaucExpected {
    gauc: Option<f64>,
    users_used: usize,
    users_skipped: usize,
    samples_used: usize,
}

#[derive(Deserialize)]
struct GaucCase {
    name: String,
    users: Vec<u32>,
    scores: Vec<f32>,
    labels: Vec<f32>,
    expected: GaucExpected,
}

#[derive(Deserialize)]
struct GroupedCase {
    name: String,
    groups: Vec<u8>,
    names: Vec<String>,
    scores: Vec<f32>,
    labels: Vec<f32>,
    expected: Vec<Option<f64>>,
}

fn load() -> Goldens {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/goldens.json");
    let text = std::fs::read_to_string(path).expect("read goldens.json");
    let g: Goldens = serde_json::from_str(&text).expect("parse goldens.json");
    assert!(!g.sklearn_version.is_empty());
    g
}

fn assert_opt_close(name: &str, got: Option<f64>, want: Option<f64>) {
    match (got, want) {
        (Some(a), Some(b)) => assert!((a - b).abs() < TOL, "{name}: got {a}, want {b}"),
        (None, None) => {}
        _ => panic!("{name}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn auc_matches_sklearn() {
    let g = load();
    assert!(g.auc.len() >= 5);
    for c in &g.auc {
        assert_opt_close(&c.name, auc(&c.scores, &c.labels).unwrap(), c.expected);
    }
}

#[test]
fn gauc_matches_numpy_sklearn_groupby() {
    for c in &load().gauc {
        let r = gauc(&c.users, &c.scores, &c.labels).unwrap();
        assert_opt_close(&c.name, r.gauc, c.expected.gauc);
        assert_eq!(r.users_used, c.expected.users_used, "{}", c.name);
        assert_eq!(r.users_skipped, c.expected.users_skipped, "{}", c.name);
        assert_eq!(r.samples_used, c.expected.samples_used, "{}", c.name);
    }
}

#[test]
fn grouped_auc_matches_sklearn() {
    for c in &load().grouped_auc {
        let got = auc_by_group(&c.groups, c.names.len(), &c.scores, &c.labels).unwrap();
        assert_eq!(got.len(), c.expected.len());
        for (k, (a, b)) in got.iter().zip(&c.expected).enumerate() {
            assert_opt_close(&format!("{}[{k}]", c.name), *a, *b);
        }
        // The streaming metric and the report give the same values under named keys.
        let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
        let slice = ScoredSlice::new(&c.scores, &c.labels).with_user_group(&c.groups);
        let mut m = GroupedAucMetric::new("user", &names);
        m.update(&slice).unwrap();
        let kv = m.compute().unwrap();
        let report = ctr_metrics(&slice, &names, &[]).unwrap();
        let defined: Vec<_> = c.expected.iter().filter(|e| e.is_some()).collect();
        assert_eq!(kv.len(), defined.len());
        for (k, want) in c.names.iter().zip(&c.expected) {
            let key = format!("auc/user={k}");
            let got = kv.iter().find(|(kk, _)| *kk == key).map(|(_, v)| *v);
            assert_opt_close(&key, got, *want);
            assert_opt_close(&key, report.get(&key).copied(), *want);
        }
    }
}

#[test]
fn logloss_matches_sklearn() {
    let g = load();
    assert_eq!(g.logloss_eps, longtail_eval::LOGLOSS_EPS);
    for c in &g.logloss {
        let v = logloss(&c.scores, &c.labels).unwrap();
        assert!(
            (v - c.expected).abs() < TOL,
            "{}: got {v}, want {}",
            c.name,
            c.expected
        );
    }
}

#[derive(Deserialize)]
struct SpearmanGoldens {
    scipy: String,
    cases: Vec<SpearmanCase>,
}

#[derive(Deserialize)]
struct SpearmanCase {
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
    /// `None`: scipy's NaN (a constant sample).
    expected: Option<f64>,
}

/// Spearman's ρ against `scipy.stats.spearmanr` (`goldens/make_spearman_goldens.py`), ties
/// included (integer counts, as IDW's density-vs-frequency diagnostic feeds it).
#[test]
fn spearman_matches_scipy() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/spearman.json");
    let g: SpearmanGoldens = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(!g.scipy.is_empty() && g.cases.len() >= 10);
    for c in &g.cases {
        let got = longtail_eval::spearman(&c.x, &c.y).unwrap();
        match c.expected {
            None => assert!(got.is_nan(), "{}: got {got}, scipy NaN", c.name),
            Some(want) => assert!(
                (got - want).abs() < 1e-12,
                "{}: got {got}, scipy {want}",
                c.name
            ),
        }
    }
}
