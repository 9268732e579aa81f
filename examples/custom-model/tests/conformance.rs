//! The outside model passes longtail's conformance check and trains through the extended CLI.

#[test]
fn meanpool_passes_conformance() {
    let mut r = longtail_core::Registry::new();
    longtail_example_custom_model::register(&mut r).unwrap();
    longtail_core::conformance::check(&r, "meanpool").unwrap();
}

#[test]
fn params_are_checked_before_building() {
    let mut r = longtail_core::Registry::new();
    longtail_example_custom_model::register(&mut r).unwrap();
    // The terms the registry reports before building are the ones the built model returns.
    let report = longtail_core::conformance::check(&r, "meanpool").unwrap();
    let terms = r.check_params("meanpool", &toml::Table::new()).unwrap();
    assert_eq!(terms, report.loss_terms);
    for bad in ["dim = 0", "dim = -3", "dim = 100000000"] {
        let t: toml::Table = toml::from_str(bad).unwrap();
        match r.check_params("meanpool", &t) {
            Err(longtail_core::CoreError::Params { key, .. }) => assert_eq!(key, "dim", "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn extended_cli_trains_the_outside_model() {
    let dir = std::env::temp_dir().join(format!("longtail-example-{}", std::process::id()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_longtail-example-custom-model"))
        .args([
            "train", "--model", "meanpool", "--epochs", "1", "--device", "cpu", "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = std::fs::read_to_string(dir.join("demo-meanpool-seed42/metrics.json")).unwrap();
    assert!(m.contains("\"auc/user=tail\""), "{m}");
    let models = std::process::Command::new(env!("CARGO_BIN_EXE_longtail-example-custom-model"))
        .arg("models")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&models.stdout);
    assert!(
        listed.contains("meanpool") && listed.contains("basemodel"),
        "{listed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
