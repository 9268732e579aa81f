//! Every built-in model checks its `[model.params]` before any data is read: the registry's
//! `check_params` returns the loss terms a built model really returns, and every out-of-range
//! number or unknown word is a `CoreError::Params` naming its key, both from `check_params` and
//! from building the model (never a panic inside libtorch).

use longtail_core::tch::Device;
use longtail_core::{conformance, BuildContext, CoreError, DeviceBatch, Registry};

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn registry() -> Registry {
    longtail_models::builtin_registry().unwrap()
}

/// The loss-term names of `name` built with `params` on the conformance feature map (with its
/// item features and stage-1 tensors), from a training and an evaluation forward of the
/// conformance batch; both must agree.
fn built_terms(r: &Registry, name: &str, params: &toml::Table) -> Vec<String> {
    let fm = conformance::tiny_feature_map();
    let items = conformance::tiny_item_features();
    let stage1 = conformance::tiny_pretrained();
    let ctx = BuildContext::new(&fm, params, Device::Cpu)
        .with_items(Some(&items))
        .with_pretrained(Some(&stage1));
    let model = r
        .build(name, &ctx)
        .unwrap_or_else(|e| panic!("{name} {params:?}: {e}"));
    let batch = DeviceBatch::from_host(&conformance::tiny_batch().unwrap(), Device::Cpu).unwrap();
    let mut seen: Vec<Vec<String>> = Vec::new();
    for train in [true, false] {
        let out = model.forward(&batch, train).unwrap();
        let losses = model.losses(&out, &batch).unwrap();
        seen.push(losses.names().iter().map(|s| s.to_string()).collect());
    }
    assert_eq!(seen[0], seen[1], "{name}: train and eval terms differ");
    seen.remove(0)
}

/// Params whose loss terms (or code paths) differ from the defaults.
const VARIANTS: &[(&str, &str)] = &[
    ("him", "ubc = false"),
    ("him", "ubp = \"positive\"\nubc = false"),
    ("him", "ubp = \"negative_pooling\""),
    ("dien", "hidden_size = 5"),
    ("twotower", "loss = \"focal\""),
    ("twotower", "loss = \"qmargin\"\nitem_norm = \"train\""),
    ("pin", "backbone = \"gru4rec\""),
    ("pin", "backbone = \"transformer\""),
    ("mfn", "combination = false\ncenters = \"random\""),
];

#[test]
fn check_params_returns_the_terms_a_built_model_returns() {
    let r = registry();
    let names = r.names();
    assert!(names.len() >= 14, "{names:?}");
    let cases = names
        .iter()
        .map(|n| (n.as_str(), ""))
        .chain(VARIANTS.iter().copied());
    for (name, params) in cases {
        let t = table(params);
        let terms = r
            .check_params(name, &t)
            .unwrap_or_else(|e| panic!("{name} {params:?}: {e}"));
        assert_eq!(terms, built_terms(&r, name, &t), "{name} {params:?}");
    }
    // Terms that depend on the params.
    let him = |p: &str| r.check_params("him", &table(p)).unwrap();
    assert_eq!(him(""), ["ctr", "group"]);
    assert_eq!(him("ubc = false"), ["ctr"]);
    assert_eq!(
        r.check_params("dien", &toml::Table::new()).unwrap(),
        ["ctr", "aux"]
    );
}

const WIDTH: &[&str] = &["0", "-3", "100000000"];
const WIDTHS: &[&str] = &["[0]", "[8, -3]", "[100000000]"];
const COUNT: &[&str] = &["0", "-3", "100000000"];
const PROB: &[&str] = &["1.5", "1.0", "-0.1", "nan", "inf"];
const POSITIVE: &[&str] = &["0.0", "-1.0", "nan", "inf", "-inf", "1e300"];
const NON_NEGATIVE: &[&str] = &["-1.0", "nan", "inf", "1e300"];
const WORD: &[&str] = &["\"bogus\"", "\"\""];

/// The keys of the embedding and the MLP tower most CTR models share.
const COMMON: &[(&str, &str, &[&str])] = &[
    ("", "embedding_dim", WIDTH),
    ("", "embedding_std", POSITIVE),
    ("", "hidden", WIDTHS),
    ("", "dropout", PROB),
];

/// Per model: `(other params, key, bad values)`; a case's table is the other params plus
/// `key = value`.
fn cases(model: &str) -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    let own: &[(&str, &str, &[&str])] = match model {
        "basemodel" => &[],
        "popularity" | "lr" => return vec![("", "dropout", PROB)],
        "gru4rec" | "dien" => &[("", "hidden_size", WIDTH)],
        "din" => &[("", "attention_hidden", WIDTHS)],
        "him" => &[
            ("", "group_dim", WIDTH),
            ("", "groups", COUNT),
            ("", "negative_users", COUNT),
            ("", "gru_hidden", WIDTH),
            ("", "ubp", WORD),
        ],
        "mind" => &[
            ("", "interests", COUNT),
            ("", "routing_iters", COUNT),
            ("", "pow_p", &["-3", "9", "100000000"]),
        ],
        "comirec-dr" => &[
            ("", "interests", COUNT),
            ("", "routing_iters", COUNT),
            ("", "aggregation", WORD),
        ],
        "comirec-sa" => &[
            ("", "interests", COUNT),
            ("", "attention_hidden", WIDTH),
            ("", "aggregation", WORD),
        ],
        "transformerrec" => &[
            ("", "layers", COUNT),
            ("", "heads", &["0", "-3", "3", "100000000"]),
            ("", "ffn_dim", WIDTH),
            ("", "mlp_dropout", PROB),
        ],
        "mfn" => &[
            ("", "attribute_dim", WIDTH),
            ("", "interests", COUNT),
            ("", "fixed_embeddings", WORD),
            ("", "centers", WORD),
            ("", "center_optimizer", WORD),
            ("", "center_lr", POSITIVE),
            ("", "center_steps", COUNT),
            ("", "center_window", COUNT),
            ("", "center_tol", NON_NEGATIVE),
            ("", "similarity_pooling", WORD),
            ("", "heads", COUNT),
            // Ids only: an 8-wide behavior embedding that 3 heads do not divide.
            ("attributes = []", "heads", &["3"]),
            ("", "combination_hidden", WIDTH),
            ("", "attention_hidden", WIDTHS),
        ],
        "twotower" => {
            return vec![
                ("", "embedding_dim", WIDTH),
                ("", "embedding_std", POSITIVE),
                ("", "interests", COUNT),
                ("", "layers", COUNT),
                ("", "heads", &["0", "-3", "3", "100000000"]),
                ("", "ffn_dim", WIDTH),
                ("", "dropout", PROB),
                (
                    "",
                    "item_hidden",
                    &["[]", "[0, 16]", "[16, 8]", "[100000000]"],
                ),
                ("", "loss", WORD),
                ("", "focal_gamma", NON_NEGATIVE),
                ("", "qmargin_scale", NON_NEGATIVE),
                ("", "item_norm", WORD),
                ("", "temperature", POSITIVE),
            ]
        }
        "pin" => &[
            ("", "backbone", WORD),
            ("", "plugin_hidden", WIDTHS),
            ("", "plugin_init", WORD),
            ("plugin_init = \"shared_head\"", "plugin_hidden", &["[8]"]),
            ("backbone = \"din\"", "attention_hidden", WIDTHS),
            ("backbone = \"gru4rec\"", "hidden_size", WIDTH),
            ("backbone = \"transformer\"", "layers", COUNT),
            (
                "backbone = \"transformer\"",
                "heads",
                &["0", "-3", "3", "100000000"],
            ),
            ("backbone = \"transformer\"", "ffn_dim", WIDTH),
            // An option of another backbone.
            ("backbone = \"din\"", "layers", &["2"]),
            ("backbone = \"transformer\"", "hidden_size", &["8"]),
        ],
        other => panic!("no bad-value cases for model '{other}': add them here"),
    };
    COMMON.iter().chain(own).copied().collect()
}

/// The key of a params error, or a description of what came instead.
fn params_key(model: &str, r: longtail_core::Result<impl Sized>) -> Result<String, String> {
    match r {
        Err(CoreError::Params { model: m, key, .. }) if m == model => Ok(key),
        Err(e) => Err(format!("not a params error of '{model}': {e}")),
        Ok(_) => Err("accepted".into()),
    }
}

#[test]
fn bad_values_are_params_errors_naming_the_key() {
    let r = registry();
    let fm = conformance::tiny_feature_map();
    let items = conformance::tiny_item_features();
    let stage1 = conformance::tiny_pretrained();
    let mut checked = 0;
    for name in r.names() {
        for (other, key, values) in cases(&name) {
            for value in values {
                let text = format!("{other}\n{key} = {value}");
                let t = table(&text);
                let what = format!("{name} {text:?}");
                let got = params_key(&name, r.check_params(&name, &t));
                assert_eq!(got.as_deref(), Ok(key), "check_params {what}");
                let ctx = BuildContext::new(&fm, &t, Device::Cpu)
                    .with_items(Some(&items))
                    .with_pretrained(Some(&stage1));
                let got = params_key(&name, r.build(&name, &ctx));
                assert_eq!(got.as_deref(), Ok(key), "build {what}");
                checked += 1;
            }
        }
    }
    assert!(checked > 250, "{checked}");
}

/// A key the model does not have, and a value of the wrong type, name the key too.
#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let r = registry();
    for name in r.names() {
        let got = params_key(&name, r.check_params(&name, &table("no_such_key = 1")));
        assert_eq!(got.as_deref(), Ok("no_such_key"), "{name}");
        let got = params_key(&name, r.check_params(&name, &table("dropout = \"high\"")));
        assert_eq!(got.as_deref(), Ok("dropout"), "{name}");
    }
}

/// Checks that need the data stay in the builders: `check_params` accepts these, building on
/// the conformance feature map refuses them naming the key (or the missing input).
#[test]
fn data_dependent_checks_happen_at_build_time() {
    let r = registry();
    let fm = conformance::tiny_feature_map();
    let items = conformance::tiny_item_features();
    let stage1 = conformance::tiny_pretrained();
    for (name, text, key) in [
        // The conformance items have two attributes: 8 + 2 × 8 = 24 is not divisible by 5.
        ("mfn", "heads = 5", "heads"),
        ("mfn", "attributes = [\"colour\"]", "item_colour"),
        ("mfn", "fixed_tensor = \"user.weight\"", "user.weight"),
        // [6 positions, 4 interests, 8192, 8192] routing weights would be 6.4 GiB.
        ("comirec-dr", "embedding_dim = 8192", "embedding_dim"),
    ] {
        let t = table(text);
        assert!(r.check_params(name, &t).is_ok(), "{name} {text}");
        let ctx = BuildContext::new(&fm, &t, Device::Cpu)
            .with_items(Some(&items))
            .with_pretrained(Some(&stage1));
        let err = r.build(name, &ctx).err().unwrap().to_string();
        assert!(err.contains(key), "{name} {text}: {err}");
    }
}

/// Every choice-valued param: `(model, other params, key, words)`, the default first. Each is a
/// serde enum; these are all the words configs and docs use, and all that is accepted.
const CHOICES: &[(&str, &str, &str, &[&str])] = &[
    ("comirec-dr", "", "aggregation", &["argmax", "softmax"]),
    ("comirec-sa", "", "aggregation", &["argmax", "softmax"]),
    ("him", "", "ubp", &["full", "positive", "negative_pooling"]),
    ("mfn", "", "fixed_embeddings", &["stage1", "random"]),
    ("mfn", "", "centers", &["pretrained", "random"]),
    ("mfn", "", "center_optimizer", &["adam", "sgd"]),
    ("mfn", "", "similarity_pooling", &["sum", "mean"]),
    ("pin", "", "backbone", &["din", "gru4rec", "transformer"]),
    (
        "pin",
        "plugin_hidden = [256, 128, 32]",
        "plugin_init",
        &["fresh", "shared_head"],
    ),
    ("twotower", "", "loss", &["softmax", "focal", "qmargin"]),
    ("twotower", "", "item_norm", &["none", "train", "posthoc"]),
];

/// Builds `name` with `params` on the conformance inputs.
fn build(r: &Registry, name: &str, params: &toml::Table) -> longtail_core::Result<()> {
    let fm = conformance::tiny_feature_map();
    let items = conformance::tiny_item_features();
    let stage1 = conformance::tiny_pretrained();
    let ctx = BuildContext::new(&fm, params, Device::Cpu)
        .with_items(Some(&items))
        .with_pretrained(Some(&stage1));
    r.build(name, &ctx).map(|_| ())
}

/// Every word of every choice parses, builds, and comes back unchanged in the effective params
/// (run manifests, `longtail models`, the benchmark twins); the default is the first word.
#[test]
fn every_choice_word_parses_and_serializes_as_written() {
    let r = registry();
    for &(name, other, key, words) in CHOICES {
        let info = r.params_info(name, &table(other)).unwrap();
        assert_eq!(info.effective[key], words[0], "{name} default {key}");
        for word in words {
            let text = format!("{other}\n{key} = \"{word}\"");
            let t = table(&text);
            let info = r
                .params_info(name, &t)
                .unwrap_or_else(|e| panic!("{name} {text:?}: {e}"));
            assert_eq!(info.effective[key], *word, "{name} {text:?}");
            build(&r, name, &t).unwrap_or_else(|e| panic!("build {name} {text:?}: {e}"));
        }
    }
}

/// A misspelled word (wrong case, a letter more or less, another model's word) is one line
/// naming the key and listing every word the key takes, from `check_params` and from building;
/// a value that is not a string names the key too.
#[test]
fn misspelled_choices_name_the_key_and_list_the_words() {
    let r = registry();
    for &(name, other, key, words) in CHOICES {
        let mut bad: Vec<String> = Vec::new();
        for w in words.iter() {
            bad.push(format!("\"{}\"", w.to_uppercase()));
            bad.push(format!("\"{w}s\""));
            bad.push(format!("\"{}\"", &w[..w.len() - 1]));
            bad.push(format!("\" {w}\""));
        }
        bad.push("\"argmaxx\"".into());
        bad.push("\"lstm\"".into());
        for value in &bad {
            let text = format!("{other}\n{key} = {value}");
            let t = table(&text);
            let what = format!("{name} {text:?}");
            for err in [r.check_params(name, &t).err(), build(&r, name, &t).err()] {
                let err = err.unwrap_or_else(|| panic!("{what}: accepted"));
                let shown = err.to_string();
                let CoreError::Params {
                    model,
                    key: got,
                    message,
                } = err
                else {
                    panic!("{what}: not a params error: {shown}");
                };
                assert_eq!(
                    (model.as_str(), got.as_str()),
                    (name, key),
                    "{what}: {shown}"
                );
                assert!(!shown.contains('\n'), "{what}: not one line: {shown:?}");
                // serde lists them after "expected" (`a` or `b`; one of `a`, `b`, `c`).
                let (_, list) = message
                    .split_once("expected")
                    .unwrap_or_else(|| panic!("{what}: {message}"));
                let mut listed: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
                let mut want = words.to_vec();
                listed.sort_unstable();
                want.sort_unstable();
                assert_eq!(listed, want, "{what}: {message}");
                let value = value.trim_matches('"');
                assert!(message.contains(&format!("`{value}`")), "{what}: {message}");
            }
        }
        for value in ["3", "true", "[\"x\"]"] {
            let text = format!("{other}\n{key} = {value}");
            let got = params_key(name, r.check_params(name, &table(&text)));
            assert_eq!(got.as_deref(), Ok(key), "{name} {text:?}");
        }
    }
}
