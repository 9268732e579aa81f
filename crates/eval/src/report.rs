//! Flat metric maps and their JSON text.
//!
//! A report is a `BTreeMap` from flat keys ("auc", "auc/user=tail", "n") to `f64`, so keys come out
//! sorted and diffs between runs stay readable. Undefined values are NaN in memory and `null` in JSON.
//! [`metrics_json`] renders the text and callers write it (through `longtail_data::atomic`); this
//! crate writes no files. [`read_metrics_json`] reads one back.

use std::collections::BTreeMap;
use std::path::Path;

use crate::auc::{auc, gauc};
use crate::error::{EvalError, Result};
use crate::logloss::logloss;
use crate::metric::{grouped_auc_keys, ScoredSlice};

/// Flat metric keys to values.
pub type Metrics = BTreeMap<String, f64>;

/// The CTR metrics of one scored set: "auc", "logloss", "n" (sample count); "gauc" and
/// "gauc_users_skipped" when `users` is given; "auc/user=<name>" when `user_group` is given and
/// "auc/item=<name>" when `item_group` is given (`*_group_names[g]` names group id `g`; groups with
/// no samples or one class are left out). AUC or GAUC undefined for the whole set is NaN.
///
/// Errors on length mismatches, non-finite scores or labels, group ids without a name, or empty input.
pub fn ctr_metrics(
    s: &ScoredSlice,
    user_group_names: &[&str],
    item_group_names: &[&str],
) -> Result<Metrics> {
    s.validate()?;
    if s.is_empty() {
        return Err(EvalError::Empty("ctr_metrics: no samples".into()));
    }
    let mut m = Metrics::new();
    m.insert("n".into(), s.len() as f64);
    m.insert("auc".into(), auc(s.scores, s.labels)?.unwrap_or(f64::NAN));
    m.insert("logloss".into(), logloss(s.scores, s.labels)?);
    if let Some(users) = s.users {
        let g = gauc(users, s.scores, s.labels)?;
        m.insert("gauc".into(), g.gauc.unwrap_or(f64::NAN));
        m.insert("gauc_users_skipped".into(), g.users_skipped as f64);
    }
    if let Some(groups) = s.user_group {
        m.extend(grouped_auc_keys(
            "user",
            user_group_names,
            groups,
            s.scores,
            s.labels,
        )?);
    }
    if let Some(groups) = s.item_group {
        m.extend(grouped_auc_keys(
            "item",
            item_group_names,
            groups,
            s.scores,
            s.labels,
        )?);
    }
    Ok(m)
}

/// `m` as the text of a metrics file: a pretty JSON object with flat keys, non-finite values as
/// `null`, and a trailing newline. The caller writes it (this crate writes no files).
pub fn metrics_json(m: &Metrics) -> Result<String> {
    let obj: serde_json::Map<String, serde_json::Value> = m
        .iter()
        .map(|(k, &v)| {
            let v = serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into);
            (k.clone(), v)
        })
        .collect();
    let mut text =
        serde_json::to_string_pretty(&obj).map_err(|e| EvalError::Json(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Reads a metrics file (the text of [`metrics_json`]) (`null` becomes NaN).
pub fn read_metrics_json(path: &Path) -> Result<Metrics> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let raw: BTreeMap<String, Option<f64>> = serde_json::from_str(&text)
        .map_err(|e| EvalError::Json(format!("{}: {e}", path.display())))?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctr_metrics_keys() {
        let s = [0.1, 0.9, 0.3, 0.4, 0.6, 0.2];
        let l = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
        let u = [1, 1, 2, 2, 3, 3];
        let ug = [0, 0, 1, 1, 1, 1];
        let ig = [1, 0, 1, 0, 1, 0];
        let slice = ScoredSlice::new(&s, &l)
            .with_users(&u)
            .with_user_group(&ug)
            .with_item_group(&ig);
        let m = ctr_metrics(&slice, &["tail", "head"], &["rare", "pop"]).unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "auc",
                "auc/item=pop",
                "auc/item=rare",
                "auc/user=head",
                "auc/user=tail",
                "gauc",
                "gauc_users_skipped",
                "logloss",
                "n"
            ]
        );
        assert_eq!(m["n"], 6.0);
        // users 1 and 3 ranked right, user 2 reversed, two samples each.
        assert!((m["gauc"] - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(m["auc"], auc(&s, &l).unwrap().unwrap());

        let m = ctr_metrics(&ScoredSlice::new(&s, &l), &[], &[]).unwrap();
        assert_eq!(m.len(), 3);
        assert!(matches!(
            ctr_metrics(&slice, &["tail"], &["rare", "pop"]),
            Err(EvalError::GroupOutOfRange { .. })
        ));
        assert!(matches!(
            ctr_metrics(&ScoredSlice::new(&s, &l).with_users(&[1]), &[], &[]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(
            ctr_metrics(&ScoredSlice::new(&[], &[]), &[], &[]),
            Err(EvalError::Empty(_))
        ));
    }

    #[test]
    fn json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        let mut m = Metrics::new();
        m.insert("auc".into(), 0.75);
        m.insert("auc/user=tail".into(), 0.123456789012345);
        m.insert("n".into(), 1000.0);
        m.insert("gauc".into(), f64::NAN);
        let text = metrics_json(&m).unwrap();
        assert!(text.contains("\"gauc\": null"), "{text}");
        assert!(text.ends_with("}\n"), "{text}");
        // Pretty: one key per line.
        assert!(text.contains("\n  \"auc\": 0.75,\n"), "{text}");
        std::fs::write(&path, &text).unwrap();
        let back = read_metrics_json(&path).unwrap();
        assert_eq!(back.len(), m.len());
        for (k, v) in &m {
            let b = back[k];
            assert!(b == *v || (b.is_nan() && v.is_nan()), "{k}: {b} vs {v}");
        }
        // Reading a file that does not exist is an Io error naming it.
        let missing = dir.path().join("missing").join("m.json");
        let err = read_metrics_json(&missing).unwrap_err();
        assert!(matches!(err, EvalError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
