//! PIN's stratified schedule: gradient equivalence and a run from a config.

use super::{floats, stderr, train_config, train_ok};
use serde_json::Value;

/// The gradient of one batch under `how` and `prior` (or the plain joint loss), flattened; the
/// rows' strata are the tiny batch's user groups unless `strata` replaces them.
fn batch_gradient(
    prior: Option<&[f64]>,
    how: longtail_train::stratified::Aggregation,
    strata: Option<&dyn Fn(usize) -> u8>,
) -> Vec<f32> {
    use longtail_core::tch::{nn::OptimizerConfig, Device, Kind, Tensor};
    let reg = longtail_models::builtin_registry().unwrap();
    let fm = longtail_core::conformance::tiny_feature_map();
    let params = toml::Table::new();
    let ctx = longtail_core::BuildContext::new(&fm, &params, Device::Cpu);
    longtail_core::seed::seed_everything(11);
    let model = reg.build("basemodel", &ctx).unwrap();
    let mut host = longtail_core::conformance::tiny_batch().unwrap();
    if let Some(f) = strata {
        host.user_group = (0..host.user_group.len()).map(f).collect();
    }
    let mut batch = longtail_core::DeviceBatch::from_host(&host, Device::Cpu).unwrap();
    use longtail_train::TrainStep;
    let mut opt = longtail_core::tch::nn::Adam::default()
        .build(model.vs(), 1e-3)
        .unwrap();
    opt.zero_grad();
    let mut step: Box<dyn TrainStep> = match prior {
        Some(p) => Box::new(longtail_train::stratified::AggregatedStep {
            prior: p.to_vec(),
            how,
            weights: Default::default(),
        }),
        None => Box::new(longtail_train::StandardStep::default()),
    };
    step.backward(&model, &mut batch, &host).unwrap();
    let mut vars: Vec<_> = model.vs().variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let grads: Vec<Tensor> = vars.iter().map(|(_, t)| t.grad().flatten(0, -1)).collect();
    Vec::<f32>::try_from(Tensor::cat(&grads, 0).to_kind(Kind::Float)).unwrap()
}

/// PIN's aggregated gradient: one pass with P(z)/n_z weights equals one backward per stratum;
/// with P(z) = the batch's sample shares it is plain joint training's gradient; another prior
/// gives another gradient.
#[test]
fn aggregated_gradient_implementations_agree() {
    use longtail_train::stratified::Aggregation;
    let host = longtail_core::conformance::tiny_batch().unwrap();
    let n = host.valid as f64;
    let heads = host.user_group.iter().filter(|&&g| g == 2).count() as f64;
    assert!(heads > 0.0 && heads < n);
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    let user_share = [0.8, 0.0, 0.2];
    let w = batch_gradient(Some(&user_share), Aggregation::Weighted, None);
    let s = batch_gradient(Some(&user_share), Aggregation::PerStratum, None);
    assert_eq!(w.len(), s.len());
    assert!(close(&w, &s), "weighted and per-stratum gradients differ");
    let shares = [(n - heads) / n, 0.0, heads / n];
    let joint = batch_gradient(None, Aggregation::Weighted, None);
    let as_joint = batch_gradient(Some(&shares), Aggregation::Weighted, None);
    assert!(
        close(&joint, &as_joint),
        "sample_share is not joint training"
    );
    assert!(!close(&joint, &w), "user_share should change the gradient");
    // K strata (`pin.buckets`): the two implementations still agree.
    let four: &dyn Fn(usize) -> u8 = &|r| (r % 4) as u8;
    let prior = [0.1, 0.2, 0.3, 0.4];
    let w4 = batch_gradient(Some(&prior), Aggregation::Weighted, Some(four));
    let s4 = batch_gradient(Some(&prior), Aggregation::PerStratum, Some(four));
    assert!(
        close(&w4, &s4),
        "weighted and per-stratum gradients differ with 4 strata"
    );
    assert!(
        !close(&w4, &joint),
        "a 4-stratum prior should change the gradient"
    );
}

/// A tiny PIN run: two strata (head = top 20%), user_share prior, one stage-2 epoch.
pub(crate) const PIN_TINY: &str = r#"
name = "pin-tiny"
dataset = "synthetic-small"
seed = 2
[data]
kind = "synth"
synth = { users = 200, items = 60, clusters = 6 }
[samples]
neg_per_pos = 2
max_hist_len = 10
activeness = { mode = "quantile", head_share = 0.2, body_share = 0.0 }
[model]
name = "pin"
params = { hidden = [16], plugin_hidden = [8] }
[train]
epochs = 2
lr = 0.01
[pin]
prior = "user_share"
stage2_epochs = 1
"#;

/// PIN from a config: stage 1 with aggregated gradients, stage 2 with plugins; the tail-only
/// baseline trains on tail users' samples only; both logged in run.json.
#[test]
fn pin_schedule_runs_from_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PIN_TINY;
    let run = train_ok(dir.path(), "pin.toml", cfg, "pin-tiny-pin-seed2");
    let pin = &run["pin"];
    assert_eq!(
        (pin["stage1_epochs"].as_u64(), pin["stage2_epochs"].as_u64()),
        (Some(2), Some(1))
    );
    let p = floats(&pin["prior"]);
    assert!(
        (p.iter().sum::<f64>() - 1.0).abs() < 1e-9 && p[0] > p[2] && p[1] == 0.0,
        "{p:?}"
    );
    let epochs = run["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    let phases = ["stage1", "stage1", "stage2"];
    let logged: Vec<(String, Value)> = phases
        .iter()
        .zip(epochs)
        .map(|(p, e)| (p.to_string(), e.clone()))
        .collect();
    super::journal_matches(&dir.path().join("runs/pin-tiny-pin-seed2"), &logged);
    let all = pin["train_samples"].as_u64().unwrap();

    let tail = cfg
        .replace("name = \"pin-tiny\"", "name = \"pin-tail\"")
        .replace(
            "stage2_epochs = 1",
            "stage2 = false\ntrain_users = \"tail\"",
        );
    let run = train_ok(dir.path(), "tail.toml", &tail, "pin-tail-pin-seed2");
    let t = run["pin"]["train_samples"].as_u64().unwrap();
    assert!(t > 0 && t < all, "{t} vs {all}");
    assert_eq!(run["pin"]["stage2_epochs"].as_u64(), Some(0));

    // Stage 2 on a model without phases is a clear error.
    let bad = cfg.replace(
        "name = \"pin\"\nparams = { hidden = [16], plugin_hidden = [8] }",
        "name = \"basemodel\"",
    );
    let o = train_config(dir.path(), "bad.toml", &bad, "runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("phase"), "{}", stderr(&o));
}

/// `pin.buckets`: stage 1's strata are quantile buckets of training activeness (logged with
/// their lower bounds and a prior per bucket); stage 2 still runs; a bad K names the key.
#[test]
fn pin_quantile_buckets_from_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PIN_TINY.replace("stage2_epochs = 1", "stage2_epochs = 1\nbuckets = 3");
    let run = train_ok(dir.path(), "k3.toml", &cfg, "pin-tiny-pin-seed2");
    let pin = &run["pin"];
    let lowest = floats(&pin["buckets"]);
    assert!(
        (2..=3).contains(&lowest.len()) && lowest.windows(2).all(|w| w[0] < w[1]),
        "{lowest:?}"
    );
    let p = floats(&pin["prior"]);
    assert_eq!(p.len(), lowest.len());
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9 && p.iter().all(|&x| x > 0.0));
    assert_eq!(pin["stage2_epochs"].as_u64(), Some(1));

    let o = train_config(
        dir.path(),
        "k1.toml",
        &cfg.replace("buckets = 3", "buckets = 1"),
        "runs",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("pin.buckets"), "{}", stderr(&o));
}

/// Stage 2's start competes on validation: plugins copied from the shared head and then wrecked
/// by a huge learning rate are rolled back, so the run scores exactly like the backbone with its
/// shared head; with `stage2_keep_start = false` the wrecked plugins stay.
#[test]
fn stage2_keeps_its_start_when_no_epoch_beats_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PIN_TINY
        .replace(
            "params = { hidden = [16], plugin_hidden = [8] }",
            "params = { hidden = [16], plugin_hidden = [16], plugin_init = \"shared_head\" }",
        )
        .replace("lr = 0.01", "lr = 0.01\nearly_stopping_patience = 1")
        .replace("stage2_epochs = 1", "stage2_epochs = 2\nstage2_lr = 1.0");
    let kept = train_ok(dir.path(), "kept.toml", &cfg, "pin-tiny-pin-seed2");
    assert_eq!(kept["pin"]["stage2_kept_start"], Value::Bool(true));
    let ga = cfg
        .replace("name = \"pin-tiny\"", "name = \"pin-ga\"")
        .replace("stage2_epochs = 2\nstage2_lr = 1.0", "stage2 = false");
    let ga = train_ok(dir.path(), "ga.toml", &ga, "pin-ga-pin-seed2");
    assert_eq!(kept["metrics"], ga["metrics"]);

    let off = cfg
        .replace("name = \"pin-tiny\"", "name = \"pin-off\"")
        .replace(
            "stage2_lr = 1.0",
            "stage2_lr = 1.0\nstage2_keep_start = false",
        );
    let off = train_ok(dir.path(), "off.toml", &off, "pin-off-pin-seed2");
    assert_eq!(off["pin"]["stage2_kept_start"], Value::Bool(false));
    assert_ne!(off["metrics"], ga["metrics"]);
}
