//! Flat metric maps and their JSON files.
//!
//! A report is a `BTreeMap` from flat keys ("auc", "auc/user=tail", "n") to `f64`, so keys come out
//! sorted and diffs between runs stay readable. Undefined values are NaN in memory and `null` in JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Writes `m` as a pretty JSON object with flat keys (non-finite values as `null`). The file is
/// written to a temporary file in the same directory, synced and renamed over `path`, so readers
/// never see a half-written report.
pub fn write_metrics_json(path: &Path, m: &Metrics) -> Result<()> {
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

    let file_name = path.file_name().ok_or_else(|| {
        EvalError::InvalidArgument(format!("not a file path: {}", path.display()))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    // pid + counter: two writers (processes or threads) never share a temporary file.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    tmp_name.push(format!(".tmp{}.{seq}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(EvalError::io(&tmp, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(EvalError::io(path, e));
    }
    Ok(())
}

/// Reads a file written by [`write_metrics_json`] (`null` becomes NaN).
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
    fn json_round_trip_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        let mut m = Metrics::new();
        m.insert("auc".into(), 0.75);
        m.insert("auc/user=tail".into(), 0.123456789012345);
        m.insert("n".into(), 1000.0);
        m.insert("gauc".into(), f64::NAN);
        write_metrics_json(&path, &m).unwrap();
        // Overwrite works too.
        write_metrics_json(&path, &m).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["metrics.json"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"gauc\": null"), "{text}");
        let back = read_metrics_json(&path).unwrap();
        assert_eq!(back.len(), m.len());
        for (k, v) in &m {
            let b = back[k];
            assert!(b == *v || (b.is_nan() && v.is_nan()), "{k}: {b} vs {v}");
        }
        // A directory that does not exist is an Io error, and leaves nothing behind.
        let bad = dir.path().join("missing").join("m.json");
        assert!(matches!(
            write_metrics_json(&bad, &m),
            Err(EvalError::Io { .. })
        ));
    }
}
