//! Integration tests of the contracts with two small test models: a pointwise CTR model and a
//! softmax two-tower retrieval model. Both pass the same conformance check.

mod models;

use longtail_core::{conformance, Registry};

fn registry() -> Registry {
    let mut r = Registry::new();
    models::register(&mut r).unwrap();
    r
}

#[test]
fn ctr_test_model_passes_conformance() {
    let rep = conformance::check(&registry(), "tiny-ctr").unwrap();
    assert_eq!(rep.loss_terms, vec!["ctr"]);
    assert!(rep.loss_last < rep.loss_first);
}

#[test]
fn retrieval_test_model_passes_conformance() {
    let rep = conformance::check(&registry(), "tiny-twotower").unwrap();
    assert_eq!(rep.loss_terms, vec!["softmax"]);
}

#[test]
fn conformance_catches_a_model_that_cannot_learn() {
    let mut r = registry();
    models::register_frozen(&mut r).unwrap();
    let err = conformance::check(&r, "frozen").unwrap_err().to_string();
    assert!(err.contains("did not fall"), "{err}");
}

#[test]
fn registry_errors_list_names() {
    let mut r = registry();
    let dup = models::register(&mut r).unwrap_err().to_string();
    assert!(
        dup.contains("already registered") && dup.contains("tiny-ctr"),
        "{dup}"
    );
    let unknown = r.check("nope").unwrap_err().to_string();
    assert!(unknown.contains("unknown model 'nope'"), "{unknown}");
    assert!(unknown.contains("tiny-ctr, tiny-twotower"), "{unknown}");
    assert_eq!(r.names(), vec!["tiny-ctr", "tiny-twotower"]);
}

/// Builds `tiny-ctr` on CPU from a feature map and a TOML params string.
fn build_tiny(
    fm: &longtail_core::data::FeatureMap,
    params: &str,
) -> longtail_core::Result<longtail_core::Instance> {
    let params: toml::Table = toml::from_str(params).unwrap();
    let ctx = longtail_core::BuildContext::new(fm, &params, tch::Device::Cpu);
    registry().build("tiny-ctr", &ctx)
}

#[test]
fn unknown_param_key_fails_the_build() {
    let fm = conformance::tiny_feature_map();
    let err = build_tiny(&fm, "dimm = 4").err().unwrap().to_string();
    assert!(err.contains("'dimm'"), "{err}");
}

#[test]
fn missing_feature_is_a_build_error() {
    let fm = longtail_core::data::FeatureMap::new("nofeat", vec![]);
    let err = build_tiny(&fm, "").err().unwrap().to_string();
    assert!(err.contains("needs feature 'item'"), "{err}");
}

#[test]
fn checkpoint_rejects_missing_file_and_wrong_extension() {
    let mut m = build_tiny(&conformance::tiny_feature_map(), "").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = longtail_core::checkpoint::save(&m, &dir.path().join("m.bin")).unwrap_err();
    assert!(err.to_string().contains(".safetensors"));
    let err =
        longtail_core::checkpoint::load(&mut m, &dir.path().join("x.safetensors")).unwrap_err();
    assert!(err.to_string().contains("no such file"));
    // Atomic save leaves exactly one file.
    longtail_core::checkpoint::save(&m, &dir.path().join("m.safetensors")).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
