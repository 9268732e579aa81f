//! Property test of the config loader: mutations of every shipped config (experiment and prepare
//! configs) are parsed and, when they parse, checked the way `train` checks them before a run.
//! Nothing may panic; an error must say something. The budget is `LONGTAIL_FUZZ_CASES` (default
//! 64, fixed seed); `scripts/fuzz` runs a long one.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn shipped_configs() -> Vec<(String, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
    let mut out = Vec::new();
    for dir in [
        root.to_string(),
        format!("{root}/prepare"),
        format!("{root}/examples"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().and_then(|e| e.to_str()) == Some("toml") {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }
    out
}

/// Values that have broken loaders elsewhere: extremes, wrong types, odd strings.
const NASTY: &[&str] = &[
    "0",
    "-1",
    "-3",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "-inf",
    "18446744073709551616",
    "9223372036854775807",
    "[0]",
    "[]",
    "[-1, 0]",
    "\"\"",
    "\"x\"",
    "true",
    "{}",
    "1.5",
    "0.0",
    "[[1]]",
    "\"\\u0000\"",
    "1979-05-27T07:32:00Z",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value of the n-th `key = value` line.
    Value(usize, usize),
    /// Delete the n-th line.
    DeleteLine(usize),
    /// Duplicate the n-th line.
    DuplicateLine(usize),
    /// Truncate the text at a fraction of its length.
    Truncate(u16),
    /// Insert a byte at a fraction of the length.
    Insert(u16, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 0..NASTY.len()).prop_map(|(l, v)| Edit::Value(l, v)),
        1 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => any::<u16>().prop_map(Edit::Truncate),
        1 => (any::<u16>(), any::<u8>()).prop_map(|(a, b)| Edit::Insert(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut tail: Option<(u16, Option<u8>)> = None;
    for e in edits {
        if lines.is_empty() {
            break;
        }
        match *e {
            Edit::Value(l, v) => {
                let kv: Vec<usize> = (0..lines.len())
                    .filter(|&i| {
                        lines[i].contains(" = ") && !lines[i].trim_start().starts_with('#')
                    })
                    .collect();
                if let Some(&i) = kv.get(l % kv.len().max(1)) {
                    let key = lines[i].split(" = ").next().unwrap_or("").to_string();
                    lines[i] = format!("{key} = {}", NASTY[v]);
                }
            }
            Edit::DeleteLine(l) => {
                let i = l % lines.len();
                lines.remove(i);
            }
            Edit::DuplicateLine(l) => {
                let i = l % lines.len();
                let dup = lines[i].clone();
                lines.insert(i, dup);
            }
            Edit::Truncate(f) => tail = Some((f, None)),
            Edit::Insert(f, b) => tail = Some((f, Some(b))),
        }
    }
    let mut s = lines.join("\n");
    if let Some((f, b)) = tail {
        let mut at = (s.len() as u64 * u64::from(f) / u64::from(u16::MAX)) as usize;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        match b {
            None => s.truncate(at),
            Some(b) => s.insert(at, char::from(b)),
        }
    }
    s
}

fn cases() -> u32 {
    std::env::var("LONGTAIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

#[test]
fn mutated_configs_never_panic_the_loader_or_the_checks() {
    let registry = longtail_models::builtin_registry().unwrap();
    let configs = shipped_configs();
    assert!(configs.len() >= 10, "{}", configs.len());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = (0..configs.len(), proptest::collection::vec(edit(), 1..4));
    runner
        .run(&strategy, |(which, edits)| {
            let (origin, text) = &configs[which];
            let text = apply(text, &edits);
            let names = longtail_train::experiment_names(&text);
            let blocks: Vec<Option<&str>> = if names.is_empty() {
                vec![None]
            } else {
                names.iter().map(|n| Some(n.as_str())).collect()
            };
            for b in blocks {
                match longtail_train::load_experiment(&text, origin, b) {
                    Ok(cfg) => {
                        if let Err(e) = longtail_train::check_experiment(&registry, &cfg) {
                            prop_assert!(!e.to_string().trim().is_empty());
                        }
                    }
                    Err(e) => prop_assert!(e.to_string().contains(origin.as_str()), "{e}"),
                }
            }
            if let Err(e) = longtail_data::PrepareConfig::from_toml(&text, origin) {
                prop_assert!(!e.to_string().trim().is_empty());
            }
            Ok(())
        })
        .unwrap();
}
