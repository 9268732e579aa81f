//! Tests of the PNG plots: real PNG bytes of the right size, bad input refused, axis rules.

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

/// Checks `bytes` is a real PNG of `size` pixels with something drawn on the white canvas.
fn assert_png(bytes: &[u8], size: (u32, u32)) {
    assert_eq!(bytes[..8], PNG_SIGNATURE, "not a PNG");
    assert!(bytes.len() > 5_000, "the PNG is only {} bytes", bytes.len());
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), size);
    let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
    let total = (size.0 * size.1) as usize;
    assert!(white > total / 2, "the background is not white");
    assert!(white < total, "nothing was drawn");
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
fn long_tail_renders_png() {
    let mut counts = zipf_counts(50_000, 1.1, 20_000.0);
    counts.extend([0, 0, 0]);
    let png = plot_long_tail(
        &counts,
        "User activeness",
        "users ranked by interactions",
        "interactions",
    )
    .unwrap();
    assert_png(&png, LONG_TAIL_SIZE);
    let png = plot_long_tail(&[5, 3, 1], "tiny", "rank", "count").unwrap();
    assert_png(&png, LONG_TAIL_SIZE);
    // One entity only.
    let png = plot_long_tail(&[7], "one", "rank", "count").unwrap();
    assert_png(&png, LONG_TAIL_SIZE);
}

#[test]
fn long_tail_rejects_empty() {
    assert!(matches!(
        plot_long_tail(&[], "t", "x", "y"),
        Err(EvalError::Empty(_))
    ));
    let err = plot_long_tail(&[0, 0], "Item popularity", "x", "y").unwrap_err();
    assert!(matches!(err, EvalError::Empty(_)), "{err}");
    // The error names the plot by its title.
    assert!(err.to_string().contains("Item popularity"), "{err}");
}

#[test]
fn group_bars_render_png() {
    let png = plot_group_bars(&bar_series(), "AUC by user group", "AUC").unwrap();
    assert_png(&png, CHART_SIZE);
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
    let png = plot_group_bars(&ragged, "ragged", "share").unwrap();
    assert_png(&png, CHART_SIZE);
}

#[test]
fn group_bars_reject_bad_input() {
    assert!(matches!(
        plot_group_bars(&[], "t", "y"),
        Err(EvalError::Empty(_))
    ));
    let empty = vec![("a".to_string(), vec![])];
    assert!(matches!(
        plot_group_bars(&empty, "t", "y"),
        Err(EvalError::Empty(_))
    ));
    for (m, s) in [(f64::NAN, 0.1), (f64::INFINITY, 0.1), (0.5, f64::NAN)] {
        let bad = vec![(
            "a".to_string(),
            vec![("all".to_string(), 0.5, 0.0), ("tail".to_string(), m, s)],
        )];
        match plot_group_bars(&bad, "t", "y") {
            Err(EvalError::NonFinite { index, .. }) => assert_eq!(index, 1),
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }
    let neg = vec![("a".to_string(), vec![("all".to_string(), 0.5, -0.1)])];
    assert!(matches!(
        plot_group_bars(&neg, "t", "y"),
        Err(EvalError::InvalidArgument(_))
    ));
    let dup = vec![(
        "a".to_string(),
        vec![("all".to_string(), 0.5, 0.0), ("all".to_string(), 0.6, 0.0)],
    )];
    assert!(matches!(
        plot_group_bars(&dup, "t", "y"),
        Err(EvalError::InvalidArgument(_))
    ));
}

#[test]
fn curves_render_png() {
    let png = plot_curves(&curve_series(), "Training loss", "epoch", "logloss").unwrap();
    assert_png(&png, CHART_SIZE);
    // A single point, and an empty series beside it.
    let one = vec![
        ("a".to_string(), vec![(1.0, 0.5)]),
        ("b".to_string(), vec![]),
    ];
    let png = plot_curves(&one, "one point", "x", "y").unwrap();
    assert_png(&png, CHART_SIZE);
}

#[test]
fn curves_reject_bad_input() {
    assert!(matches!(
        plot_curves(&[], "t", "x", "y"),
        Err(EvalError::Empty(_))
    ));
    let empty = vec![("a".to_string(), vec![])];
    assert!(matches!(
        plot_curves(&empty, "t", "x", "y"),
        Err(EvalError::Empty(_))
    ));
    for pt in [(f64::NAN, 1.0), (1.0, f64::NEG_INFINITY)] {
        let bad = vec![("a".to_string(), vec![(0.0, 1.0), pt])];
        match plot_curves(&bad, "t", "x", "y") {
            Err(EvalError::NonFinite { index, .. }) => assert_eq!(index, 1),
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }
}

/// Writes example pictures for eyeballing to `$LONGTAIL_PLOT_EXAMPLES` (a folder) when set.
#[test]
fn write_examples_when_asked() {
    let Some(dir) = std::env::var_os("LONGTAIL_PLOT_EXAMPLES") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let save =
        |name: &str, png: Result<Vec<u8>>| std::fs::write(dir.join(name), png.unwrap()).unwrap();
    let users = zipf_counts(200_000, 0.9, 5_000.0);
    save(
        "long_tail_users.png",
        plot_long_tail(
            &users,
            "User activeness",
            "users ranked by interactions",
            "interactions",
        ),
    );
    let items = zipf_counts(30, 1.3, 900.0);
    save(
        "long_tail_items_small.png",
        plot_long_tail(
            &items,
            "Item popularity (small)",
            "items ranked by popularity",
            "interactions",
        ),
    );
    save(
        "bars_auc.png",
        plot_group_bars(
            &bar_series(),
            "AUC by user group (mean ± std over 5 seeds)",
            "AUC",
        ),
    );
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
    save(
        "bars_share.png",
        plot_group_bars(&shares, "Share of recommendations by item group", "share"),
    );
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
    save(
        "bars_mixed.png",
        plot_group_bars(&mixed, "RelaImpr vs baseline", "RelaImpr"),
    );
    save(
        "curves_loss.png",
        plot_curves(&curve_series(), "Training loss", "epoch", "logloss"),
    );
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
    save(
        "long_tail_items_1m.png",
        plot_long_tail(
            &items,
            "Item popularity (1M items)",
            "items ranked by popularity",
            "interactions",
        ),
    );
    save(
        "long_tail_one.png",
        plot_long_tail(&[7], "A single user", "rank", "count"),
    );
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
    save(
        "bars_ragged.png",
        plot_group_bars(&ragged, "Ragged series", "share"),
    );
    let flat = vec![("only".to_string(), vec![("all".to_string(), 0.8, 0.0)])];
    save(
        "bars_flat.png",
        plot_group_bars(&flat, "One flat bar", "AUC"),
    );
    let one = vec![
        ("a".to_string(), vec![(1.0, 0.5)]),
        ("b (no data)".to_string(), vec![]),
    ];
    save(
        "curves_one.png",
        plot_curves(&one, "One point", "epoch", "loss"),
    );
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
    save("curves_30.png", plot_curves(&many, "30 series", "x", "y"));
    save(
        "curves_many.png",
        plot_curves(&long, "Many long series", "step", "loss"),
    );
    save(
        "curves_sweep.png",
        plot_curves(&sweep, "AUC vs popularity skew", "skew exponent", "AUC"),
    );
}
