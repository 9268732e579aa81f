//! Tests of the PNG plots: files written atomically, bad input refused, axis rules.

use super::*;

#[test]
fn bar_range_rules() {
    // AUC-like: zoomed.
    let (r, base) = bar_value_range(0.6, 0.8);
    assert!((r.start - 0.58).abs() < 1e-12 && (r.end - 0.82).abs() < 1e-12);
    assert_eq!(base, r.start);
    // Close to zero: zero-based.
    let (r, base) = bar_value_range(0.1, 0.9);
    assert_eq!((r.start, base), (0.0, 0.0));
    assert!((r.end - 0.98).abs() < 1e-12);
    // Mixed signs: bars from zero.
    let (r, base) = bar_value_range(-0.2, 0.5);
    assert!(r.start < -0.2 && r.end > 0.5);
    assert_eq!(base, 0.0);
    // All negative, far from zero: zoom without crossing zero.
    let (r, base) = bar_value_range(-0.9, -0.7);
    assert!(r.end <= 0.0 && r.start < -0.9);
    assert_eq!(base, r.end);
    // Flat: still a non-empty range.
    let (r, _) = bar_value_range(0.8, 0.8);
    assert!(r.end > r.start);
    let (r, _) = bar_value_range(0.0, 0.0);
    assert!(r.end > r.start);
}

#[test]
fn labels() {
    assert_eq!(format_count(1.0), "1");
    assert_eq!(format_count(5000.0), "5000");
    assert_eq!(format_count(20000.0), "20k");
    assert_eq!(format_count(2.5e6), "2.5M");
    let f = |lo: f64, hi: f64, v: f64| AxisFormat::new(&(lo..hi), N_LABELS).format(v);
    assert_eq!(f(0.25, 0.75, 0.30000000000000004), "0.30");
    assert_eq!(f(0.0, 0.78, 0.30000000000000004), "0.3");
    assert_eq!(f(-0.5, 0.5, -1.3e-17), "0");
    assert_eq!(f(0.0, 50.0, 25.0), "25");
    assert_eq!(f(0.0, 1.3e6, 8e5), "0.8M");
    assert_eq!(f(0.0, 50_000.0, 25_000.0), "25k");
    assert_eq!(f(0.0, 5e-5, 2e-5), "2.00e-5");
    assert!((tick_step(&(0.0..0.78), N_LABELS) - 0.1).abs() < 1e-12);
    let st = tick_step(&(0.0..0.53), N_LABELS);
    assert!((st - 0.05).abs() < 1e-12, "{st}");
    assert_eq!(f(0.0, 0.53, 0.15), "0.15");
    assert_eq!(f(0.47, 0.53, 0.52), "0.52");
    assert_eq!(f(0.495, 0.505, 0.502), "0.502");
    assert_eq!(format_thousands(1234567), "1,234,567");
    assert_eq!(format_thousands(12), "12");
}

#[test]
fn padded_ranges() {
    let r = padded_range(0.0, 10.0, 0.1);
    assert_eq!((r.start, r.end), (-1.0, 11.0));
    let r = padded_range(2.0, 2.0, 0.0);
    assert!(r.start < 2.0 && r.end > 2.0);
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Checks `path` is a real PNG and that `dir` holds nothing but `expected` files (no temp
/// file left behind).
fn assert_png(dir: &Path, path: &Path, expected_files: usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes[..8], PNG_SIGNATURE, "{} is not a PNG", path.display());
    assert!(
        bytes.len() > 5_000,
        "{} is only {} bytes",
        path.display(),
        bytes.len()
    );
    let files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), expected_files, "unexpected files: {files:?}");
    assert!(
        files.iter().all(|f| !f.contains(".tmp")),
        "temp file left: {files:?}"
    );
}

fn assert_no_files(dir: &Path) {
    let n = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(n, 0, "a failed plot left files behind");
}

/// Zipf-like counts: `n` entities, count `~ c / rank^a`, shuffled order, some zeros.
fn zipf_counts(n: usize, a: f64, c: f64) -> Vec<u64> {
    (1..=n)
        .map(|r| (c / (r as f64).powf(a)).floor() as u64)
        .rev()
        .collect()
}

fn bar_series() -> Vec<BarSeries> {
    let groups = ["all", "tail", "body", "head"];
    let models = [
        ("DeepFM", [0.781, 0.702, 0.768, 0.812], 0.004),
        (
            "DeepFM + longtail loss",
            [0.785, 0.731, 0.772, 0.809],
            0.006,
        ),
        ("DIN", [0.792, 0.715, 0.781, 0.823], 0.003),
    ];
    models
        .iter()
        .map(|(name, means, std)| {
            let bars = groups
                .iter()
                .zip(means)
                .enumerate()
                .map(|(i, (g, m))| (g.to_string(), *m, std * (1.0 + i as f64)))
                .collect();
            (name.to_string(), bars)
        })
        .collect()
}

fn curve_series() -> Vec<CurveSeries> {
    ["DeepFM", "DIN", "DeepFM + longtail loss"]
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let pts = (1..=20)
                .map(|e| {
                    let e = e as f64;
                    (
                        e,
                        0.42 + 0.25 / (1.0 + 0.4 * e) - 0.01 * m as f64
                            + 0.002 * (e * 1.7 + m as f64).sin(),
                    )
                })
                .collect();
            (name.to_string(), pts)
        })
        .collect()
}

#[test]
fn long_tail_writes_png() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("users.png");
    let mut counts = zipf_counts(50_000, 1.1, 20_000.0);
    counts.extend([0, 0, 0]);
    plot_long_tail(
        &counts,
        "User activeness",
        "users ranked by interactions",
        "interactions",
        &p,
    )
    .unwrap();
    assert_png(dir.path(), &p, 1);
    // Overwrites atomically.
    plot_long_tail(&[5, 3, 1], "tiny", "rank", "count", &p).unwrap();
    assert_png(dir.path(), &p, 1);
    // One entity only.
    plot_long_tail(&[7], "one", "rank", "count", &p).unwrap();
    assert_png(dir.path(), &p, 1);
}

#[test]
fn long_tail_rejects_empty() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.png");
    assert!(matches!(
        plot_long_tail(&[], "t", "x", "y", &p),
        Err(EvalError::Empty(_))
    ));
    assert!(matches!(
        plot_long_tail(&[0, 0], "t", "x", "y", &p),
        Err(EvalError::Empty(_))
    ));
    assert_no_files(dir.path());
}

#[test]
fn group_bars_write_png() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("auc.png");
    plot_group_bars(&bar_series(), "AUC by user group", "AUC", &p).unwrap();
    assert_png(dir.path(), &p, 1);
    // Missing groups in one series, zero std, single series.
    let ragged = vec![
        ("a".to_string(), vec![("all".to_string(), 0.2, 0.0)]),
        (
            "b".to_string(),
            vec![
                ("tail".to_string(), 0.4, 0.1),
                ("all".to_string(), 0.3, 0.05),
            ],
        ),
    ];
    plot_group_bars(&ragged, "ragged", "share", &p).unwrap();
    assert_png(dir.path(), &p, 1);
}

#[test]
fn group_bars_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.png");
    assert!(matches!(
        plot_group_bars(&[], "t", "y", &p),
        Err(EvalError::Empty(_))
    ));
    let empty = vec![("a".to_string(), vec![])];
    assert!(matches!(
        plot_group_bars(&empty, "t", "y", &p),
        Err(EvalError::Empty(_))
    ));
    for (m, s) in [(f64::NAN, 0.1), (f64::INFINITY, 0.1), (0.5, f64::NAN)] {
        let bad = vec![(
            "a".to_string(),
            vec![("all".to_string(), 0.5, 0.0), ("tail".to_string(), m, s)],
        )];
        match plot_group_bars(&bad, "t", "y", &p) {
            Err(EvalError::NonFinite { index, .. }) => assert_eq!(index, 1),
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }
    let neg = vec![("a".to_string(), vec![("all".to_string(), 0.5, -0.1)])];
    assert!(matches!(
        plot_group_bars(&neg, "t", "y", &p),
        Err(EvalError::InvalidArgument(_))
    ));
    let dup = vec![(
        "a".to_string(),
        vec![("all".to_string(), 0.5, 0.0), ("all".to_string(), 0.6, 0.0)],
    )];
    assert!(matches!(
        plot_group_bars(&dup, "t", "y", &p),
        Err(EvalError::InvalidArgument(_))
    ));
    assert_no_files(dir.path());
}

#[test]
fn curves_write_png() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("loss.png");
    plot_curves(&curve_series(), "Training loss", "epoch", "logloss", &p).unwrap();
    assert_png(dir.path(), &p, 1);
    // A single point, and an empty series beside it.
    let one = vec![
        ("a".to_string(), vec![(1.0, 0.5)]),
        ("b".to_string(), vec![]),
    ];
    plot_curves(&one, "one point", "x", "y", &p).unwrap();
    assert_png(dir.path(), &p, 1);
}

#[test]
fn curves_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.png");
    assert!(matches!(
        plot_curves(&[], "t", "x", "y", &p),
        Err(EvalError::Empty(_))
    ));
    let empty = vec![("a".to_string(), vec![])];
    assert!(matches!(
        plot_curves(&empty, "t", "x", "y", &p),
        Err(EvalError::Empty(_))
    ));
    for pt in [(f64::NAN, 1.0), (1.0, f64::NEG_INFINITY)] {
        let bad = vec![("a".to_string(), vec![(0.0, 1.0), pt])];
        match plot_curves(&bad, "t", "x", "y", &p) {
            Err(EvalError::NonFinite { index, .. }) => assert_eq!(index, 1),
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }
    assert_no_files(dir.path());
}

#[test]
fn unwritable_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("no-such-dir").join("x.png");
    let err = plot_curves(&curve_series(), "t", "x", "y", &p).unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    assert!(matches!(err, EvalError::Plot { .. } | EvalError::Io { .. }));
    assert_no_files(dir.path());
}

/// Writes example pictures for eyeballing to `$LONGTAIL_PLOT_EXAMPLES` (a folder) when set.
#[test]
fn write_examples_when_asked() {
    let Some(dir) = std::env::var_os("LONGTAIL_PLOT_EXAMPLES") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let users = zipf_counts(200_000, 0.9, 5_000.0);
    plot_long_tail(
        &users,
        "User activeness",
        "users ranked by interactions",
        "interactions",
        &dir.join("long_tail_users.png"),
    )
    .unwrap();
    let items = zipf_counts(30, 1.3, 900.0);
    plot_long_tail(
        &items,
        "Item popularity (small)",
        "items ranked by popularity",
        "interactions",
        &dir.join("long_tail_items_small.png"),
    )
    .unwrap();
    plot_group_bars(
        &bar_series(),
        "AUC by user group (mean ± std over 5 seeds)",
        "AUC",
        &dir.join("bars_auc.png"),
    )
    .unwrap();
    let shares = vec![
        (
            "popularity".to_string(),
            vec![
                ("tail".to_string(), 0.05, 0.01),
                ("body".to_string(), 0.25, 0.02),
                ("head".to_string(), 0.70, 0.03),
            ],
        ),
        (
            "DeepFM".to_string(),
            vec![
                ("tail".to_string(), 0.12, 0.02),
                ("body".to_string(), 0.33, 0.02),
                ("head".to_string(), 0.55, 0.04),
            ],
        ),
    ];
    plot_group_bars(
        &shares,
        "Share of recommendations by item group",
        "share",
        &dir.join("bars_share.png"),
    )
    .unwrap();
    let mixed = vec![
        (
            "model A".to_string(),
            vec![
                ("all".to_string(), 0.02, 0.01),
                ("tail".to_string(), -0.05, 0.02),
                ("head".to_string(), 0.04, 0.01),
            ],
        ),
        (
            "model B".to_string(),
            vec![
                ("all".to_string(), 0.01, 0.005),
                ("tail".to_string(), 0.03, 0.01),
                ("head".to_string(), -0.01, 0.01),
            ],
        ),
    ];
    plot_group_bars(
        &mixed,
        "RelaImpr vs baseline",
        "RelaImpr",
        &dir.join("bars_mixed.png"),
    )
    .unwrap();
    plot_curves(
        &curve_series(),
        "Training loss",
        "epoch",
        "logloss",
        &dir.join("curves_loss.png"),
    )
    .unwrap();
    let sweep: Vec<CurveSeries> = ["all", "tail", "head"]
        .iter()
        .enumerate()
        .map(|(g, name)| {
            let pts = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
                .iter()
                .map(|&s| (s, 0.8 - 0.03 * s * g as f64 + 0.01 * s))
                .collect();
            (name.to_string(), pts)
        })
        .collect();
    let items: Vec<u64> = (1..=1_000_000u64)
        .map(|r| 1 + 3_000_000 / (r + 50))
        .collect();
    plot_long_tail(
        &items,
        "Item popularity (1M items)",
        "items ranked by popularity",
        "interactions",
        &dir.join("long_tail_items_1m.png"),
    )
    .unwrap();
    plot_long_tail(
        &[7],
        "A single user",
        "rank",
        "count",
        &dir.join("long_tail_one.png"),
    )
    .unwrap();
    let ragged = vec![
        ("a".to_string(), vec![("all".to_string(), 0.2, 0.0)]),
        (
            "b".to_string(),
            vec![
                ("tail".to_string(), 0.4, 0.1),
                ("all".to_string(), 0.3, 0.05),
            ],
        ),
    ];
    plot_group_bars(
        &ragged,
        "Ragged series",
        "share",
        &dir.join("bars_ragged.png"),
    )
    .unwrap();
    let flat = vec![("only".to_string(), vec![("all".to_string(), 0.8, 0.0)])];
    plot_group_bars(&flat, "One flat bar", "AUC", &dir.join("bars_flat.png")).unwrap();
    let one = vec![
        ("a".to_string(), vec![(1.0, 0.5)]),
        ("b (no data)".to_string(), vec![]),
    ];
    plot_curves(
        &one,
        "One point",
        "epoch",
        "loss",
        &dir.join("curves_one.png"),
    )
    .unwrap();
    let long: Vec<CurveSeries> = (0..12)
        .map(|k| {
            (
                format!("model with a rather long name number {k}"),
                (0..500)
                    .map(|i| (i as f64 * 10.0, 1e5 * (1.0 + k as f64) / (1.0 + i as f64)))
                    .collect(),
            )
        })
        .collect();
    let many: Vec<CurveSeries> = (0..30)
        .map(|k| {
            (
                format!("s{k}"),
                vec![(0.0, k as f64), (1.0, k as f64 + 1.0)],
            )
        })
        .collect();
    plot_curves(&many, "30 series", "x", "y", &dir.join("curves_30.png")).unwrap();
    plot_curves(
        &long,
        "Many long series",
        "step",
        "loss",
        &dir.join("curves_many.png"),
    )
    .unwrap();
    plot_curves(
        &sweep,
        "AUC vs popularity skew",
        "skew exponent",
        "AUC",
        &dir.join("curves_sweep.png"),
    )
    .unwrap();
}
