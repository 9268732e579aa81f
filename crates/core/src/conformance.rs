//! The conformance check every model passes, in one line:
//! `longtail_core::conformance::check(&registry, "name")?`.
//!
//! It builds the model on a tiny feature map, checks that every loss term is finite, that the
//! total loss falls over 20 Adam steps on a fixed batch, that `score` has one finite value per
//! row (and, for retrieval models, that the representations have the documented shapes), and that
//! a save/load round trip through safetensors into a freshly built model gives identical scores.

use crate::batch::DeviceBatch;
use crate::checkpoint;
use crate::error::{CoreError, Result};
use crate::model::{BuildContext, Instance, Task};
use crate::registry::Registry;
use crate::seed::seed_everything;
use longtail_data::{FeatureMap, HostBatch};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// What the check measured, for logs and assertions.
#[derive(Debug, Clone)]
pub struct Report {
    pub model: String,
    pub loss_terms: Vec<String>,
    pub loss_first: f64,
    pub loss_last: f64,
}

pub const USERS: usize = 9;
pub const ITEMS: usize = 24;
pub const HIST_LEN: usize = 6;
pub const BATCH: usize = 16;

/// Sessions in the tiny batch (S) and items per session (n).
pub const SESSIONS: usize = 2;
pub const SESSION_ITEMS: usize = 3;

/// The tiny feature map conformance builds models on (users 1..8, items 1..23, history 6, and
/// HIM sessions `[2, 3]`).
pub fn tiny_feature_map() -> FeatureMap {
    let mut fm = FeatureMap::standard("conformance", USERS, ITEMS, HIST_LEN);
    fm.features.push(longtail_data::FeatureSpec {
        name: "sessions".into(),
        kind: longtail_data::FeatureKind::Sequence,
        vocab: ITEMS,
        max_len: Some(SESSIONS * SESSION_ITEMS),
        table: "item".into(),
        dims: Some(vec![SESSIONS, SESSION_ITEMS]),
    });
    fm.features.extend(tiny_item_features().feature_specs());
    fm.hash = fm.compute_hash();
    fm
}

/// Genre values in the tiny item features (padding 0 included).
pub const GENRES: usize = 5;
/// Embedding width of the tiny stage-1 checkpoint ([`tiny_pretrained`]).
pub const PRETRAINED_DIM: i64 = 8;

/// Tiny item side features: a `genre` list (1 + item % 4, and genre 4 on every third item) and a
/// categorical `parity` field, so models with fine-grained inputs see both kinds.
pub fn tiny_item_features() -> longtail_data::ItemFeatures {
    let mut f = longtail_data::ItemFeatures::new(ITEMS);
    let genres: Vec<Vec<String>> = (0..ITEMS)
        .map(|i| {
            if i == 0 {
                return Vec::new();
            }
            let mut g = vec![format!("g{}", 1 + i % 4)];
            if i % 3 == 0 {
                g.push("g4".into());
            }
            g
        })
        .collect();
    let parity: Vec<Option<String>> = (0..ITEMS)
        .map(|i| (i > 0).then(|| format!("p{}", i % 2)))
        .collect();
    // Both calls validate fixed, well-formed rows.
    f.push_list("genre", &genres)
        .expect("tiny genres are valid");
    f.push_categorical("parity", &parity)
        .expect("tiny parity is valid");
    f
}

/// A stage-1 checkpoint for the tiny feature map: `item.weight` `[ITEMS, 8]` (row 0 zero), fixed
/// values, so two-stage models (MFN) build in conformance as in a real run.
pub fn tiny_pretrained() -> crate::checkpoint::Pretrained {
    let n = ITEMS as i64;
    let w = (Tensor::arange(n * PRETRAINED_DIM, (Kind::Float, Device::Cpu)) * 0.37)
        .sin()
        .view([n, PRETRAINED_DIM])
        * 0.1;
    let w = w.index_fill(0, &Tensor::from_slice(&[0i64]), 0.0);
    crate::checkpoint::Pretrained::from_tensors(
        "conformance-stage1",
        vec![("item.weight".into(), w)],
    )
}

/// A fixed, learnable batch: user `u` likes items of parity `u % 2`; rows alternate labels.
pub fn tiny_batch() -> Result<HostBatch> {
    let mut user = Vec::new();
    let mut item = Vec::new();
    let mut label = Vec::new();
    let mut hist = Vec::new();
    for r in 0..BATCH {
        let u = (r % (USERS - 1)) as i64 + 1;
        let positive = r % 2 == 0;
        let parity = if positive { u % 2 } else { 1 - u % 2 };
        // Distinct target items within the batch, so in-batch softmax has clean negatives.
        let it = (2 * (r as i64 % 11) + parity) % (ITEMS as i64 - 1) + 1;
        let len = 1 + r % HIST_LEN;
        let h: Vec<i64> = (0..len)
            .map(|k| (2 * ((u + k as i64) % 11) + u % 2) % (ITEMS as i64 - 1) + 1)
            .collect();
        user.push(u);
        item.push(it);
        label.push(if positive { 1.0 } else { 0.0 });
        hist.push(h);
    }
    let mut batch = HostBatch::from_dense(user.clone(), item, label, &hist)?;
    // Users 1-2 are head users, the rest tail (PIN routes by this).
    batch.user_group = user.iter().map(|&u| if u <= 2 { 2 } else { 0 }).collect();
    // Sessions: the latest history items in session 0, earlier ones in session 1 (counts 2, 1,
    // 1...), and negative feedback of the other parity in session 0.
    let (s, n) = (SESSIONS, SESSION_ITEMS);
    let mut sb = longtail_data::sessions::SessionBatch {
        batch_size: BATCH,
        num_sessions: s,
        top_n: n,
        pos_items: vec![0; BATCH * s * n],
        pos_counts: vec![0.0; BATCH * s * n],
        neg_items: vec![0; BATCH * s * n],
        neg_counts: vec![0.0; BATCH * s * n],
    };
    for (r, h) in hist.iter().enumerate() {
        for (k, &x) in h.iter().rev().enumerate().take(s * n) {
            let at = r * s * n + k;
            sb.pos_items[at] = x as u32;
            sb.pos_counts[at] = if k % n == 0 { 2.0 } else { 1.0 };
        }
        let u = user[r];
        for k in 0..n {
            let x = (2 * ((u + k as i64) % 11) + (1 - u % 2)) % (ITEMS as i64 - 1) + 1;
            sb.neg_items[r * s * n + k] = x as u32;
            sb.neg_counts[r * s * n + k] = 1.0;
        }
    }
    batch.sessions = Some(sb);
    batch.validate()?;
    Ok(batch)
}

fn fail(model: &str, message: String) -> CoreError {
    CoreError::Conformance {
        model: model.to_string(),
        message,
    }
}

fn total_loss(model: &Instance, batch: &DeviceBatch, train: bool) -> Result<(Tensor, Vec<String>)> {
    let out = model.forward(batch, train)?;
    let losses = model.losses(&out, batch)?;
    let name = model.name().to_string();
    for (n, t) in &losses.0 {
        let v = t.double_value(&[]);
        if !v.is_finite() {
            return Err(fail(&name, format!("loss term '{n}' is not finite ({v})")));
        }
    }
    let names = losses.names().iter().map(|s| s.to_string()).collect();
    let total = losses
        .weighted_total(|_| 1.0)
        .ok_or_else(|| fail(&name, "losses() returned no terms".into()))?;
    Ok((total, names))
}

fn scores(model: &Instance, batch: &DeviceBatch) -> Result<Vec<f32>> {
    let s = tch::no_grad(|| model.score(batch))?;
    if s.size() != [batch.size as i64] {
        return Err(fail(
            model.name(),
            format!(
                "score() returned shape {:?}, expected [{}]",
                s.size(),
                batch.size
            ),
        ));
    }
    let v = Vec::<f32>::try_from(s.to_kind(Kind::Float).to_device(Device::Cpu))?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(fail(
            model.name(),
            format!("score of row {i} is not finite"),
        ));
    }
    Ok(v)
}

/// Runs the whole check on CPU with the model's default params.
pub fn check(registry: &Registry, name: &str) -> Result<Report> {
    check_with(registry, name, &toml::Table::new())
}

/// Runs the check with explicit params (e.g. to cover a variant).
pub fn check_with(registry: &Registry, name: &str, params: &toml::Table) -> Result<Report> {
    registry.check(name)?;
    let fm = tiny_feature_map();
    let device = Device::Cpu;
    let items = tiny_item_features();
    let stage1 = tiny_pretrained();
    let ctx = BuildContext::new(&fm, params, device)
        .with_items(Some(&items))
        .with_pretrained(Some(&stage1));
    seed_everything(7);
    let mut model = registry.build(name, &ctx)?;
    let host = tiny_batch()?;
    let batch = DeviceBatch::from_host(&host, device)?;
    // A model's own pre-training step (if any) sees the fixed batch a few times.
    let mut batches = (0..5).map(|_| DeviceBatch::from_host(&host, device));
    if let Some(log) = model.pretrain(&mut batches)? {
        if !(log.loss_first.is_finite() && log.loss_last.is_finite()) {
            return Err(fail(
                name,
                format!("pre-training loss is not finite: {log:?}"),
            ));
        }
    }

    if model.task() == Task::Retrieval {
        check_retrieval_shapes(&model, &batch)?;
    }

    let (first, loss_terms) = total_loss(&model, &batch, false)?;
    let loss_first = first.double_value(&[]);
    {
        let mut opt = nn::Adam::default().build(model.vs(), 1e-2)?;
        for step in 0..20 {
            let (loss, _) = total_loss(&model, &batch, true)?;
            opt.zero_grad();
            loss.backward();
            opt.step();
            let v = loss.double_value(&[]);
            if !v.is_finite() {
                return Err(fail(name, format!("loss became {v} at step {step}")));
            }
        }
    }
    let loss_last = total_loss(&model, &batch, false)?.0.double_value(&[]);
    if loss_last.partial_cmp(&loss_first) != Some(std::cmp::Ordering::Less) {
        return Err(fail(
            name,
            format!("loss did not fall over 20 steps on a fixed batch: {loss_first:.6} -> {loss_last:.6}"),
        ));
    }

    let before = scores(&model, &batch)?;
    // One folder per check: tests run checks of the same model in parallel threads, and one
    // check removing a shared folder broke the other's save/load.
    static CHECKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "longtail-conformance-{}-{name}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| fail(name, format!("{}: {e}", dir.display())))?;
    let path = dir.join("model.safetensors");
    checkpoint::save(&model, &path)?;
    // A fresh build from another seed has different weights until the checkpoint is loaded.
    seed_everything(8);
    let mut fresh = registry.build(name, &ctx)?;
    checkpoint::load(&mut fresh, &path)?;
    let after = scores(&fresh, &batch)?;
    let _ = std::fs::remove_dir_all(&dir);
    if before != after {
        return Err(fail(
            name,
            "scores differ after a save/load round trip through safetensors".into(),
        ));
    }
    Ok(Report {
        model: name.to_string(),
        loss_terms,
        loss_first,
        loss_last,
    })
}

fn check_retrieval_shapes(model: &Instance, batch: &DeviceBatch) -> Result<()> {
    let name = model.name();
    let towers = model.towers()?;
    let u = towers.user_repr(batch)?;
    let items = Tensor::arange(ITEMS as i64, (Kind::Int64, batch.device()));
    let i = towers.item_repr(&items)?;
    let (us, is) = (u.size(), i.size());
    if us.len() != 3
        || us[0] != batch.size as i64
        || is.len() != 2
        || is[0] != ITEMS as i64
        || us[2] != is[1]
    {
        return Err(fail(
            name,
            format!("user_repr {us:?} / item_repr {is:?} are not [B, K, D] / [N, D]"),
        ));
    }
    Ok(())
}
