//! Every built-in model passes the conformance check and checks its params before building.

mod params;

use longtail_core::conformance;

#[test]
fn basemodel_conformance() {
    let r = longtail_models::builtin_registry().unwrap();
    let rep = conformance::check(&r, "basemodel").unwrap();
    assert_eq!(rep.loss_terms, vec!["ctr"]);
}

#[test]
fn basemodel_without_user_embedding_conformance() {
    let r = longtail_models::builtin_registry().unwrap();
    let params: toml::Table = toml::from_str("user_embedding = false\nhidden = [16]").unwrap();
    conformance::check_with(&r, "basemodel", &params).unwrap();
}

#[test]
fn every_builtin_model_is_listed() {
    let r = longtail_models::builtin_registry().unwrap();
    for name in [
        "basemodel",
        "popularity",
        "lr",
        "gru4rec",
        "din",
        "dien",
        "him",
    ] {
        assert!(
            r.names().contains(&name.to_string()),
            "{name} not registered"
        );
    }
}
