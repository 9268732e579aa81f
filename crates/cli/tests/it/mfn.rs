//! MFN's two-stage run through the binary.

use super::{stderr, train_config};
use serde_json::Value;

/// Writes a tiny MovieLens (`ratings.dat`, `movies.dat`) into `dir`: 80 users rate 12 of 40
/// movies each; genres by movie id.
pub(crate) fn write_tiny_movielens(dir: &std::path::Path) {
    let mut ratings = String::new();
    for u in 1..=80u32 {
        for k in 0..12u32 {
            let m = 1 + (u * 7 + k * (1 + u % 5)) % 40;
            let r = 1 + (u + k + m) % 5;
            ratings.push_str(&format!("{u}::{m}::{r}::{}\n", 1_000_000 + u * 100 + k));
        }
    }
    let genres = ["Drama", "Comedy", "Action", "Horror", "Romance"];
    let movies: String = (1..=40)
        .map(|m| {
            let g = genres[m % 5];
            let g2 = if m % 3 == 0 { "|Thriller" } else { "" };
            format!("{m}::Movie {m} (1999)::{g}{g2}\n")
        })
        .collect();
    std::fs::write(dir.join("ratings.dat"), ratings).unwrap();
    std::fs::write(dir.join("movies.dat"), movies).unwrap();
}

/// MFN's two-stage run on [`write_tiny_movielens`].
pub(crate) const MFN_TINY: &str = r#"
name = "mfn-tiny"
dataset = "tiny-movielens"
seed = 2
[data]
kind = "raw"
format = "movielens-dat"
path = "ratings.dat"
items = { format = "movielens-movies", path = "movies.dat" }
[samples]
positive_threshold = 2.0
neg_per_pos = 2
max_hist_len = 8
[model]
name = "mfn"
params = { hidden = [16], center_steps = 30 }
[train]
epochs = 2
lr = 0.01
[pretrain]
model = { name = "basemodel", params = { hidden = [16] } }
train = { epochs = 1, lr = 0.01 }
"#;

/// MFN's two-stage pipeline from a config: stage 1 (`[pretrain]`, BaseModel) trains first, its
/// `item.weight` becomes MFN's fixed embeddings exactly, the interest centers are pre-trained
/// (Algorithm 1), genres from `movies.dat` are embedded beside the ids, and the manifest records
/// the stage-1 checkpoint and its hash. Without `[pretrain]` the run fails clearly and leaves
/// no run folder.
#[test]
fn mfn_two_stage_pipeline_reloads_stage1_embeddings_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_movielens(dir.path());
    let cfg = MFN_TINY;
    let o = train_config(dir.path(), "mfn.toml", cfg, "runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let run_dir = dir.path().join("runs/mfn-tiny-mfn-seed2");
    let run: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    let stage1 = &run["stage1"];
    assert_eq!(stage1["model"], "basemodel");
    assert_eq!(stage1["checkpoint"], "stage1/model.safetensors");
    assert_eq!(stage1["epochs"].as_array().unwrap().len(), 1);
    assert!(stage1["metrics"]["auc"].as_f64().unwrap().is_finite());
    let bytes = std::fs::read(run_dir.join("stage1/model.safetensors")).unwrap();
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(stage1["checkpoint_sha256"].as_str().unwrap(), sha);
    let pre = &run["model_pretrain"];
    assert_eq!(pre["what"], "interest_centers");
    assert!(pre["steps"].as_u64().unwrap() >= 1, "{pre}");
    let fm: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("feature_map.json")).unwrap()).unwrap();
    assert!(
        fm["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "item_genres"),
        "{fm}"
    );
    use longtail_core::tch::Tensor;
    let s1 = Tensor::read_safetensors(run_dir.join("stage1/model.safetensors")).unwrap();
    let main = Tensor::read_safetensors(run_dir.join("model.safetensors")).unwrap();
    let get = |v: &[(String, Tensor)], n: &str| {
        v.iter()
            .find(|(k, _)| k == n)
            .unwrap_or_else(|| panic!("no {n}"))
            .1
            .shallow_clone()
    };
    assert!(get(&s1, "item.weight").equal(&get(&main, "fixed_item")));
    assert!(main.iter().any(|(k, _)| k.starts_with("attr.genres")));

    // Without a stage 1, MFN says what to add; no run folder is left.
    let no_stage1 = cfg
        .split("[pretrain]")
        .next()
        .unwrap()
        .replace("mfn-tiny", "mfn-nostage");
    let o = train_config(dir.path(), "bad.toml", &no_stage1, "runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("[pretrain]"), "{}", stderr(&o));
    assert!(!dir.path().join("runs/mfn-nostage-mfn-seed2").exists());
}
