//! The feature map: per feature, its kind, vocabulary size (padding id 0 included), maximum
//! sequence length, and the embedding table it shares. Written as JSON beside the processed data
//! with a content hash; models size themselves from it and fail at build time, with a message that
//! names the model and the missing feature, when a feature they need is absent.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::table::hex;

/// What kind of input a feature is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// One id per sample (user id, item id).
    Categorical,
    /// A variable-length list of ids per sample (the user's history).
    Sequence,
    /// A dense float per sample.
    Numeric,
}

/// One feature of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub name: String,
    pub kind: FeatureKind,
    /// Vocabulary size including the padding id 0 (0 for numeric features).
    pub vocab: usize,
    /// Maximum length of a sequence feature; `None` for the other kinds.
    pub max_len: Option<usize>,
    /// The embedding table this feature looks up: features with the same table share embeddings
    /// (e.g. `hist` shares `item`).
    pub table: String,
    /// The shape of a multi-dimensional feature, e.g. `[S, n]` for HIM sessions (S sessions of
    /// n items); absent for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dims: Option<Vec<usize>>,
}

/// The feature map of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureMap {
    pub dataset: String,
    pub features: Vec<FeatureSpec>,
    /// SHA-256 hex of the canonical JSON of `dataset` and `features`.
    pub hash: String,
}

/// What the hash covers, in a fixed field order (serde_json keeps struct field order).
#[derive(Serialize)]
struct HashedPart<'a> {
    dataset: &'a str,
    features: &'a [FeatureSpec],
}

impl FeatureMap {
    /// A feature map with its hash computed.
    pub fn new(dataset: impl Into<String>, features: Vec<FeatureSpec>) -> FeatureMap {
        let mut fm = FeatureMap {
            dataset: dataset.into(),
            features,
            hash: String::new(),
        };
        fm.hash = fm.compute_hash();
        fm
    }

    /// The standard map of an interaction dataset: `user` and `item` (categorical) and `hist`
    /// (the user's item history, sharing the `item` table).
    pub fn standard(
        dataset: &str,
        num_users: usize,
        num_items: usize,
        max_hist_len: usize,
    ) -> FeatureMap {
        FeatureMap::new(
            dataset,
            vec![
                FeatureSpec {
                    name: "user".into(),
                    kind: FeatureKind::Categorical,
                    vocab: num_users,
                    max_len: None,
                    table: "user".into(),
                    dims: None,
                },
                FeatureSpec {
                    name: "item".into(),
                    kind: FeatureKind::Categorical,
                    vocab: num_items,
                    max_len: None,
                    table: "item".into(),
                    dims: None,
                },
                FeatureSpec {
                    name: "hist".into(),
                    kind: FeatureKind::Sequence,
                    vocab: num_items,
                    max_len: Some(max_hist_len),
                    table: "item".into(),
                    dims: None,
                },
            ],
        )
    }

    /// SHA-256 hex of the canonical JSON of `dataset` and `features` (ignores the stored hash).
    pub fn compute_hash(&self) -> String {
        let part = HashedPart {
            dataset: &self.dataset,
            features: &self.features,
        };
        // Serializing plain strings, numbers and enums cannot fail; an empty string would only make
        // the hash check fail later, never silently pass.
        let json = serde_json::to_vec(&part).unwrap_or_default();
        hex(&Sha256::digest(&json))
    }

    /// The feature called `name`.
    pub fn get(&self, name: &str) -> Option<&FeatureSpec> {
        self.features.iter().find(|f| f.name == name)
    }

    /// The feature called `name`, or an error naming the model `who` that needs it.
    pub fn require(&self, name: &str, who: &str) -> Result<&FeatureSpec> {
        self.get(name).ok_or_else(|| {
            let have: Vec<&str> = self.features.iter().map(|f| f.name.as_str()).collect();
            DataError::Invalid(format!(
                "model '{who}' needs feature '{name}', which the feature map of dataset '{}' lacks; it has: {}",
                self.dataset,
                have.join(", ")
            ))
        })
    }

    /// Vocabulary size of the feature called `name`.
    pub fn vocab(&self, name: &str) -> Option<usize> {
        self.get(name).map(|f| f.vocab)
    }

    /// Writes pretty JSON, atomically (temporary sibling file, then rename).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        crate::atomic::write_json(path, self, true)
    }

    /// Reads a feature map and verifies its hash.
    pub fn read_json(path: &Path) -> Result<FeatureMap> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let fm: FeatureMap = serde_json::from_slice(&bytes).map_err(|e| DataError::Schema {
            path: path.to_path_buf(),
            message: format!("not a valid feature map: {e}"),
        })?;
        let expect = fm.compute_hash();
        if fm.hash != expect {
            return Err(DataError::Schema {
                path: path.to_path_buf(),
                message: format!(
                    "feature map hash mismatch: the file says {} but its content hashes to {expect} \
                     (edited by hand? regenerate it with `prepare`)",
                    fm.hash
                ),
            });
        }
        Ok(fm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_map_and_lookup() {
        let fm = FeatureMap::standard("ml-1m", 11, 21, 50);
        assert_eq!(fm.vocab("user"), Some(11));
        assert_eq!(fm.vocab("item"), Some(21));
        let hist = fm.get("hist").unwrap();
        assert_eq!(hist.kind, FeatureKind::Sequence);
        assert_eq!(hist.max_len, Some(50));
        assert_eq!(hist.table, "item");
        assert_eq!(fm.vocab("price"), None);
        assert_eq!(fm.hash, fm.compute_hash());
        assert_ne!(fm.hash, FeatureMap::standard("ml-1m", 11, 22, 50).hash);
    }

    #[test]
    fn require_names_model_feature_and_dataset() {
        let fm = FeatureMap::standard("ml-1m", 3, 3, 5);
        assert!(fm.require("hist", "din").is_ok());
        let msg = fm.require("price", "dcn").unwrap_err().to_string();
        assert_eq!(
            msg,
            "model 'dcn' needs feature 'price', which the feature map of dataset 'ml-1m' lacks; \
             it has: user, item, hist"
        );
    }

    #[test]
    fn json_round_trip_and_tamper_detection() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("feature_map.json");
        let fm = FeatureMap::standard("synth", 5, 7, 3);
        fm.write_json(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"kind\": \"sequence\""), "{text}");
        assert_eq!(FeatureMap::read_json(&p).unwrap(), fm);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        std::fs::write(&p, text.replace("\"vocab\": 7", "\"vocab\": 8")).unwrap();
        let msg = FeatureMap::read_json(&p).unwrap_err().to_string();
        assert!(msg.contains("hash mismatch"), "{msg}");

        std::fs::write(&p, text.replace("\"dataset\"", "\"datset\"")).unwrap();
        let msg = FeatureMap::read_json(&p).unwrap_err().to_string();
        assert!(msg.contains("datset"), "{msg}");
    }
}
